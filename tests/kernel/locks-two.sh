#!/bin/bash
# vm-timeout: 300
# guests: a b
# Two guests, each with its own address and host name, lock the same files through one rnfsd:
#   1. b's F_SETLK over a's write lock fails with EAGAIN, beside it succeeds, and its F_GETLK
#      reports a's range;
#   2. b's F_SETLKW gets the lock within 2 s of a's unlock (rnfsd's GRANTED callback to b's lockd);
#   3. flock excludes across guests, and a blocked flock wakes on release;
#   4. both write one SQLite database at once; it stays consistent (integrity_check, no lost
#      update).
source "${BASH_SOURCE%/*}/lib.sh"

start_lock_services
nfs_mount
sync_clock
F=$MNT/shared
# A file of its own for flock: on NFS a flock is a whole-file POSIX lock of another owner, which
# a fcntl lock of the same process on the same file would block.
G=$MNT/flocked
DB=$MNT/counter.db
ROUNDS=60

case $GUEST in
a)
    printf 'shared by two guests\n' >"$F"
    printf 'flocked by two guests\n' >"$G"
    sqlite3 "$DB" 'CREATE TABLE t (who TEXT, n INTEGER); CREATE TABLE c (n INTEGER); INSERT INTO c VALUES (0);'
    locker_start L "$F"
    expect_eq "$(locker L lock w 0 100)" ok "a: F_SETLK write [0,100)"
    locker_start K "$G"
    expect_eq "$(locker K flock ex)" ok "a: flock LOCK_EX"
    tell a-locked
    await a-unlock
    expect_eq "$(locker L unlock 0 100)" ok "a: unlock [0,100)"
    await a-unflock
    expect_eq "$(locker K flock un)" ok "a: flock LOCK_UN"
    locker_stop K
    ;;
b)
    await a-locked
    locker_start L "$F"
    step "1. b against a's lock"
    expect_eq "$(locker L lock w 50 10)" EAGAIN "b: F_SETLK inside a's range"
    expect_eq "$(locker L lock w 200 10)" ok "b: F_SETLK beside a's range"
    held=$(locker L test w 0 10)
    [[ $held == "held w 0 100 "* ]] || fail "b: F_GETLK got '$held', expected a's write lock on [0,100)"
    expect_eq "$(locker L unlock 200 10)" ok "b: unlock [200,210)"
    step "2. b waits for a's range"
    locker_send L lockw w 0 100
    sleep 2
    still_waits L "b: F_SETLKW while a held the lock"
    granted_within L 2 two-guest-wakeup "b: F_SETLKW after a's unlock" tell a-unlock
    expect_eq "$(locker L unlock 0 100)" ok "b: unlock [0,100)"
    step "3. flock across guests"
    locker_start K "$G"
    expect_eq "$(locker K flock ex nb)" EAGAIN "b: flock LOCK_EX|LOCK_NB while a holds its flock"
    locker_send K flock ex
    sleep 2
    still_waits K "b: flock while a held its flock"
    granted_within K 2 two-guest-flock-wakeup "b: flock LOCK_EX after a's release" tell a-unflock
    locker_stop K
    tell b-done-locking
    ;;
esac
locker_stop L
await b-done-locking

step "4. both guests write the SQLite database at once ($ROUNDS transactions each)"
tell "sqlite-ready-$GUEST"
await sqlite-ready-a
await sqlite-ready-b
{
    echo '.timeout 60000'
    for i in $(seq "$ROUNDS"); do
        echo "BEGIN IMMEDIATE; INSERT INTO t VALUES ('$GUEST', $i); UPDATE c SET n = n + 1; COMMIT;"
    done
} | sqlite3 "$DB" || fail "sqlite3 failed"
tell "sqlite-done-$GUEST"
await sqlite-done-a 240
await sqlite-done-b 240
if [[ $GUEST == a ]]; then
    expect_eq "$(sqlite3 "$DB" 'PRAGMA integrity_check;')" ok "PRAGMA integrity_check"
    expect_eq "$(sqlite3 "$DB" 'SELECT count(*) FROM t; SELECT n FROM c;' | tr '\n' ' ')" \
        "$((2 * ROUNDS)) $((2 * ROUNDS)) " "rows and counter"
    expect_eq "$(sqlite3 "$DB" "SELECT count(DISTINCT n) FROM t WHERE who = 'b';")" "$ROUNDS" "b's rows"
    tell checked
fi
await checked
nfs_umount
step "locks-two done"
