# Host side of `drc-faults` (sourced by scripts/vm/in-netns.sh, with the fault proxy running):
# arms a lost reply and dropped connection for each procedure right before the guest's command,
# tells the guest whether the fault fired, and at the end hands over rnfsd's counters (SIGUSR1)
# and the proxy's event log.
for proc in REMOVE RMDIR RENAME MKDIR LINK SYMLINK CREATE SETATTR; do
    wait_for_guest "arm-$proc"
    fault add drop-reply-close "$proc"
    answer_guest "arm-$proc" armed
    wait_for_guest "fired-$proc"
    if grep -q "proc=$proc action=drop-reply-close" "$WORK/faults.log"; then
        answer_guest "fired-$proc" fired
    else
        # Disarm it, so it cannot fire on a later step.
        fault clear
        answer_guest "fired-$proc" "not fired"
    fi
done
wait_for_guest counters
cp "$WORK/faults.log" "$JOB/out/faults.log"
line=$(server_counters)
echo "$line"
answer_guest counters "$line"
