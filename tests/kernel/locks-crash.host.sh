# Host side of `locks-crash` (sourced by scripts/vm/in-netns.sh): kills guest a while it holds a
# lock, then speaks for it as its sm-notify would after a reboot.
wait_for_guest kill-a
kill_guest a || {
    echo "FAIL: could not kill guest a"
    exit 1
}
echo "killed guest a"
answer_guest kill-a killed
line=$(server_locks) || exit 1
echo "after the kill: $line"
grep -q ' 1 waiter(s)' <<<"$line" || {
    echo "FAIL: expected a's lock and b's waiter after the kill"
    exit 1
}
wait_until 1200 test -e "$JOB/sync/notify-a"
t0=$EPOCHREALTIME
sm_notify_as a 3 || {
    echo "FAIL: rnfsd did not answer a's SM_NOTIFY"
    exit 1
}
echo "SM_NOTIFY for a answered in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
line=$(await_locks ' 0 waiter\(s\)' 10) || exit 1
echo "after the SM_NOTIFY: $line"
