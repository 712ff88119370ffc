# Host side of `verifier-kill` (sourced by scripts/vm/in-netns.sh, with the fault proxy logging
# traffic): kills rnfsd with SIGKILL once the guest's copy has UNSTABLE writes answered since the
# last COMMIT, starts it again, and at the end hands the proxy's log to the check.
wait_for_guest kill-mid-copy
# Counts over the proxy's log: UNSTABLE WRITE replies in all, and since the last COMMIT call (a
# COMMIT covers only writes answered before it was sent).
outstanding() {
    awk '/proc=WRITE reply .*committed=UNSTABLE/ { all++; since++ } /proc=COMMIT call/ { since = 0 }
        END { print all + 0, since + 0 }' "$WORK/faults.log"
}
all=0 since=0
for _ in $(seq 1200); do
    read -r all since < <(outstanding)
    ((all >= 128 && since >= 8)) && break
    sleep 0.1
done
if ! ((all >= 128 && since >= 8)); then
    answer_guest kill-mid-copy "no uncommitted writes to lose: $all UNSTABLE replies, $since since the last COMMIT call"
    exit 1
fi
server_stop KILL
echo "SIGKILL after $all UNSTABLE WRITE replies, $since of them since the last COMMIT call"
sleep 1
server_start
echo "rnfsd started again"
answer_guest kill-mid-copy restarted
wait_for_guest log
cp "$WORK/faults.log" "$JOB/out/faults.log"
answer_guest log copied
