#!/bin/bash
# vm-timeout: 240
# The duplicate-request cache with the kernel client. The fault proxy sits between the guest and
# rnfsd (drc-faults.faults). For each of rm, rmdir, mv, mkdir, ln, ln -s, touch (a new file) and
# chmod, the host arms `drop-reply-close` for the procedure the command sends (REMOVE, RMDIR,
# RENAME, MKDIR, LINK, SYMLINK, CREATE, SETATTR): the proxy swallows the reply and closes the
# connection, the client reconnects and retransmits the same xid, and the server's cache must
# answer with the original success. Each command must succeed silently; the host checks that the
# fault fired each time, the tree on disk shows each effect once (drc-faults.check.sh), and the
# server's counters show the cache hits.
source "${BASH_SOURCE%/*}/lib.sh"

# timeo=50: a retransmission after a lost reply without a reconnect would come within 5 s.
nfs_mount timeo=50
mkdir "$MNT/d"
cd "$MNT/d"
printf 'remove me\n' >file-rm
mkdir dir-rm
printf 'moved once\n' >file-mv
printf 'linked once\n' >file-ln

# faulty PROC COMMAND...: has the host arm a lost reply for PROC, runs COMMAND, which must succeed
# without a word, then asks the host whether the fault fired.
faulty() {
    local proc=$1 err
    shift
    expect_eq "$(ask_host "arm-$proc")" armed "the host arming $proc"
    step "$proc with a lost reply and a dropped connection: $*"
    err=$("$@" 2>&1) || fail "$* failed: $err"
    [[ -z $err ]] || fail "$* said: $err"
    expect_eq "$(ask_host "fired-$proc")" fired "the fault on $proc"
}

faulty REMOVE rm file-rm
faulty RMDIR rmdir dir-rm
faulty RENAME mv file-mv file-moved
faulty MKDIR mkdir dir-new
faulty LINK ln file-ln file-ln2
faulty SYMLINK ln -s 'target/of/the link' sym
faulty CREATE touch file-new
faulty SETATTR chmod 600 file-ln

step "the client's view"
expect_eq "$(ls -A | tr '\n' ' ')" "dir-new file-ln file-ln2 file-moved file-new sym " "listing"
expect_eq "$(stat -c '%h %a' file-ln)" "2 600" "links and mode of file-ln"
expect_eq "$(readlink sym)" "target/of/the link" "symlink target"
expect_eq "$(cat file-moved)" "moved once" "the renamed file"
cd /
nfs_umount

step "the server's counters"
counters=$(ask_host counters)
echo "$counters"
printf '%s\n' "$counters" >"$OUT/counters"
step "drc-faults done"
