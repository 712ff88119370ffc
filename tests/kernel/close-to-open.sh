#!/bin/bash
# vm-timeout: 240
# Close-to-open consistency between the guest and a writer on the host (a change made directly
# in the export, behind the client's back): after each host change the guest's next open sees it
# (new content of another size, the same size, an append, a truncate, a replacement by rename);
# and what the guest writes and closes is in the export when the host looks.
source "${BASH_SOURCE%/*}/lib.sh"

nfs_mount
F=$MNT/shared.txt
printf 'guest wrote this\n' >"$F"
expect_eq "$(cat "$F")" "guest wrote this" "first read in the guest"

step "the host sees what the guest closed"
expect_eq "$(ask_host host-reads)" "guest wrote this" "the host's read"

step "host rewrites with another size; the guest's next open sees it"
ask_host rewrite >/dev/null
expect_eq "$(cat "$F")" "host rewrote it, longer" "after a host rewrite"

step "host rewrites with the same size"
ask_host same-size >/dev/null
expect_eq "$(cat "$F")" "HOST REWROTE IT, LONGER" "after a same-size host rewrite"

step "host appends"
ask_host append >/dev/null
expect_eq "$(cat "$F")" $'HOST REWROTE IT, LONGER\nappended' "after a host append"

step "host truncates"
ask_host truncate >/dev/null
# stat alone may answer from the attribute cache (acregmin); the open revalidates.
expect_eq "$(cat "$F")" HOST "after a host truncate"
expect_eq "$(stat -c %s "$F")" 4 "size after the open that saw the truncate"

step "host replaces the file by rename"
ask_host replace >/dev/null
expect_eq "$(cat "$F")" "a new inode" "after a host rename over the file"

step "guest appends, host checks"
printf 'guest appended\n' >>"$F"
expect_eq "$(ask_host host-reads-again)" $'a new inode\nguest appended' "the host's second read"
nfs_umount
step "close-to-open done"
