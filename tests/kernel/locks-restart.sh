#!/bin/bash
# vm-timeout: 360
# guests: a b
# lock-grace: 20
# rnfsd is SIGKILLed while guest a holds a write lock and guest b waits for it (F_SETLKW); the host
# side restarts it with the same state directory (locks-restart.host.sh):
#   1. rnfsd enters its grace period and tells both guests it restarted (SM_NOTIFY); a's lockd
#      reclaims the lock (a LOCK with reclaim=1, counted by rnfsd's lock report), and a host
#      process sees it held again;
#   2. b does not get the lock during grace, nor after it while a still holds it;
#   3. after grace a unlocks, and b's F_SETLKW gets the lock.
source "${BASH_SOURCE%/*}/lib.sh"

start_lock_services
nfs_mount
sync_clock
F=$MNT/held

case $GUEST in
a)
    printf 'held across a server restart\n' >"$F"
    locker_start L "$F"
    expect_eq "$(locker L lock w 0 100)" ok "a: F_SETLK write [0,100)"
    tell a-locked
    await reclaimed 120
    step "a's lock was reclaimed after the restart"
    await a-unlock 120
    expect_eq "$(locker L unlock 0 100)" ok "a: unlock [0,100) after the restart"
    locker_stop L
    ;;
b)
    await a-locked
    waits_behind L "$F" a
    step "b waits for a's lock; the host kills and restarts rnfsd"
    tell b-waiting
    await reclaimed 120
    still_waits L "b: F_SETLKW during grace"
    await grace-over 120
    sleep 2
    still_waits L "b: F_SETLKW after grace while a held the lock"
    step "b still waits after grace; a unlocks"
    granted_within L 10 restart-wakeup "b: F_SETLKW after a's unlock" tell a-unlock
    expect_eq "$(locker L unlock 0 100)" ok "b: unlock [0,100)"
    locker_stop L
    tell b-done
    ;;
esac
await b-done 120
nfs_umount
step "locks-restart done"
