#!/bin/bash
# vm-timeout: 420
# rnfsd restarts under a hard mount while the guest is busy: a 256 MiB copy runs onto the mount;
# meanwhile the host stops rnfsd with SIGTERM and starts it again, then with SIGKILL and starts it
# again (same state folder, so file handles stay valid). The copy must complete with the right
# SHA-256, and a file descriptor opened before the restarts and the current directory (on the
# mount) must stay usable.
source "${BASH_SOURCE%/*}/lib.sh"

MIB=256
nfs_mount
mkdir "$MNT/work"
cd "$MNT/work"
printf 'before the restarts\n' >held
exec 7<>held
head -c "${MIB}M" /dev/urandom >/tmp/payload
sha256sum </tmp/payload | cut -d' ' -f1 >"$OUT/sum.payload"

step "copy $MIB MiB in the background"
dd if=/tmp/payload of=copy bs=1M conv=fsync status=none &
copy_pid=$!
sleep 3
kill -0 "$copy_pid" 2>/dev/null || fail "the copy finished before the first restart; make it bigger"

step "host: SIGTERM and restart"
expect_eq "$(ask_host restart-term)" restarted "the host's answer"
kill -0 "$copy_pid" 2>/dev/null || step "(the copy finished before the SIGKILL restart)"

step "host: SIGKILL and restart"
expect_eq "$(ask_host restart-kill)" restarted "the host's answer"

step "wait for the copy"
wait "$copy_pid" || fail "dd exited with status $?"
echo 3 >/proc/sys/vm/drop_caches
expect_eq "$(sha256sum <copy | cut -d' ' -f1)" "$(cat "$OUT/sum.payload")" "SHA-256 of the copy"

step "the descriptor and the current directory survived"
read -r line <&7
expect_eq "$line" "before the restarts" "read through the old descriptor"
printf 'after the restarts\n' >&7
exec 7>&-
expect_eq "$(cat held)" $'before the restarts\nafter the restarts' "content written through the old descriptor"
printf 'made in the old cwd\n' >new-in-cwd
expect_eq "$(ls | sort | tr '\n' ' ')" "copy held new-in-cwd " "listing of the current directory"

step "a third restart while idle, then a fresh mount sees everything"
expect_eq "$(ask_host restart-term-idle)" restarted "the host's answer"
expect_eq "$(cat new-in-cwd)" "made in the old cwd" "read after an idle restart"
cd /
nfs_umount
nfs_mount
expect_eq "$(sha256sum <"$MNT/work/copy" | cut -d' ' -f1)" "$(cat "$OUT/sum.payload")" "SHA-256 after a remount"
nfs_umount
step "server-restart done"
