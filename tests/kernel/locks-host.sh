#!/bin/bash
# vm-timeout: 240
# guests: a
# Network locks are real host locks. The guest mounts with the default options (no nolock), with
# rpcbind and rpc.statd running as nfs-common runs them; then:
#   1. its fcntl write lock on [0,100) and its flock are seen by a host process's F_OFD_GETLK, as a
#      byte range and as a whole-file lock, and are gone after close;
#   2. a host process holds a lock: the guest's F_SETLK fails with EAGAIN and its F_GETLK reports
#      the host's range; the guest's F_SETLKW gets the lock within 3 s of the host's unlock (rnfsd
#      polls a waiter blocked by a host process, then calls the guest's lock manager back).
source "${BASH_SOURCE%/*}/lib.sh"

start_lock_services
step "mount -o $NFS_OPTS (no nolock)"
nfs_mount
opts=$(awk -v m="$MNT" '$2 == m && $3 == "nfs" { print $4 }' /proc/mounts)
[[ ,$opts, != *,nolock,* && ,$opts, == *,local_lock=none,* ]] || fail "the mount does not lock over NFS: $opts"
printf 'some data\n' >"$MNT/ranges"
printf 'more data\n' >"$MNT/whole"

step "1. fcntl lock [0,100) and flock, seen from the host"
locker_start R "$MNT/ranges"
locker_start W "$MNT/whole"
expect_eq "$(locker R lock w 0 100)" ok "F_SETLK write [0,100)"
expect_eq "$(locker W flock ex)" ok "flock LOCK_EX"
expect_eq "$(ask_host host-sees-held)" "held w 0 100 -1|free|held w 0 0 -1" "the host's F_OFD_GETLK"
locker_stop R
locker_stop W
expect_eq "$(ask_host host-sees-closed)" "free|free|free" "the host's F_OFD_GETLK after close"

step "2. a host process holds [0,50)"
expect_eq "$(ask_host host-locks)" ok "the host's lock"
locker_start R "$MNT/ranges"
expect_eq "$(locker R lock w 10 10)" EAGAIN "F_SETLK over the host's lock"
held=$(locker R test w 10 10)
[[ $held == "held w 0 50 "* ]] || fail "F_GETLK: got '$held', expected the host's write lock on [0,50)"
expect_eq "$(locker R lock r 60 10)" ok "F_SETLK read [60,70) beside the host's lock"
locker_send R lockw w 10 10
sleep 2
still_waits R "F_SETLKW while the host held the lock"
host_unlocks() { expect_eq "$(ask_host host-unlocks)" ok "the host's unlock"; }
granted_within R 3 host-unlock-wakeup "F_SETLKW after the host's unlock" host_unlocks
expect_eq "$(ask_host host-test-guest)" "held w 10 10 -1" "the host sees the guest's new lock"
locker_stop R
nfs_umount
step "locks-host done"
