# Host side of `locks-restart` (sourced by scripts/vm/in-netns.sh): SIGKILLs rnfsd while a guest
# holds a lock and another waits, restarts it, and follows the grace period in its lock report.
wait_for_guest b-waiting
line=$(server_locks) || exit 1
echo "before the kill: $line"
grep -q ' 1 waiter(s)' <<<"$line" || {
    echo "FAIL: expected b's waiter before the kill"
    exit 1
}
t0=$EPOCHREALTIME
server_stop KILL
server_start || exit 1
echo "restarted after SIGKILL in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
grep -q 'lock grace period of 20 s: 2 client(s)' "$WORK/server.log" || {
    echo "FAIL: rnfsd did not announce a grace period for the two recorded clients"
    exit 1
}
# a's lockd reclaims once its statd has the SM_NOTIFY.
line=$(await_locks ' 1 reclaim\(s\) granted' 20) || exit 1
echo "reclaimed $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s after the kill: $line"
grep -q 'grace on' <<<"$line" || {
    echo "FAIL: the reclaim came after grace"
    exit 1
}
locker_start H "$EXPORT/held" --ofd
held=$(locker H test w 0 10)
echo "a host process sees: $held"
[[ $held == "held w 0 100 "* ]] || {
    echo "FAIL: after the reclaim a host process saw '$held', expected a's write lock on [0,100)"
    exit 1
}
locker_stop H
tell reclaimed
line=$(await_locks 'grace off' 40) || exit 1
echo "grace over: $line"
tell grace-over
