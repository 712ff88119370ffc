#!/bin/bash
# vm-timeout: 600
# The write verifier across a crash: the guest copies 1 GiB of random bytes onto the mount with
# plain buffered writes, which the kernel client sends as UNSTABLE WRITEs and commits in batches.
# While some of them are answered but not yet committed, the host kills rnfsd with SIGKILL and
# starts it again (same state folder). The new lifetime has a new write verifier, so the client
# must write those ranges again; the copy completes and its SHA-256 matches. The fault proxy sits
# in front of rnfsd with no rules, only to log every WRITE and COMMIT with its offsets and
# verifiers, and verifier-kill.check.sh proves the resend from that log.
source "${BASH_SOURCE%/*}/lib.sh"

MIB=1024
nfs_mount
mkdir "$MNT/work"

step "copy $MIB MiB with buffered writes (UNSTABLE) in the background"
(
    head -c "${MIB}M" /dev/urandom | tee >(sha256sum | cut -d' ' -f1 >"$OUT/sum.payload") |
        dd of="$MNT/work/copy" bs=1M iflag=fullblock status=none
    wait
) &
copy_pid=$!

step "host: SIGKILL rnfsd while written data is uncommitted, then start it again"
expect_eq "$(ask_host kill-mid-copy)" restarted "the host's answer"

step "wait for the copy (dd's close flushes and commits)"
wait "$copy_pid" || fail "the copy exited with status $?"
[[ -s $OUT/sum.payload ]] || fail "no checksum of the payload"
t_copy=$(elapsed)
expect_eq "$(stat -c %s "$MNT/work/copy")" $((MIB * 1048576)) "size of the copy"

step "read back after drop_caches (copy done at ${t_copy}s)"
echo 3 >/proc/sys/vm/drop_caches
expect_eq "$(sha256sum <"$MNT/work/copy" | cut -d' ' -f1)" "$(cat "$OUT/sum.payload")" "SHA-256 of the copy"

expect_eq "$(ask_host log)" copied "the host's answer"
nfs_umount
step "verifier-kill done"
