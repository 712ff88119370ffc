#!/bin/bash
# vm-timeout: 300
# guests: a b
# Guest a is killed (its qemu SIGKILLed) while it holds a write lock that guest b waits for
# (F_SETLKW); the host side then sends the SM_NOTIFY that a's sm-notify would send when it boots
# again (UDP, from a's address, a new state), as nfs-utils does (locks-crash.host.sh):
#   1. while a is dead and nobody has said so, rnfsd keeps a's lock: b still waits;
#   2. the SM_NOTIFY releases every lock a held, and b's F_SETLKW gets the lock within 2 s.
source "${BASH_SOURCE%/*}/lib.sh"

start_lock_services
nfs_mount
sync_clock
F=$MNT/orphaned

case $GUEST in
a)
    printf 'locked by a guest that crashes\n' >"$F"
    locker_start L "$F"
    expect_eq "$(locker L lock w 0 100)" ok "a: F_SETLK write [0,100)"
    step "a holds [0,100) and waits to be killed"
    tell a-locked
    # The host side kills this guest; it never gets past this wait.
    await never 280
    fail "a was not killed"
    ;;
b)
    await a-locked
    waits_behind L "$F" a
    step "b waits for a's lock; the host kills a"
    expect_eq "$(ask_host kill-a)" killed "the host killed a"
    sleep 3
    still_waits L "b: F_SETLKW after a was killed, before any SM_NOTIFY"
    step "b still waits; the host sends SM_NOTIFY for a"
    granted_within L 2 crash-wakeup "b: F_SETLKW after a's SM_NOTIFY" tell notify-a
    expect_eq "$(locker L unlock 0 100)" ok "b: unlock [0,100)"
    locker_stop L
    nfs_umount
    step "locks-crash done"
    ;;
esac
