# Host side of `locks-host` (sourced by scripts/vm/in-netns.sh): a host process looks at and takes
# locks on the exported files with open file description locks.
for when in held closed; do
    wait_for_guest "host-sees-$when"
    # The guest created the files before its first question.
    [[ -n ${LOCKER_PID[HR]:-} ]] || locker_start HR "$EXPORT/ranges" --ofd
    [[ -n ${LOCKER_PID[HW]:-} ]] || locker_start HW "$EXPORT/whole" --ofd
    answer_guest "host-sees-$when" "$(locker HR test w 0 10)|$(locker HR test r 100 10)|$(locker HW test r 0 1)"
done
wait_for_guest host-locks
answer_guest host-locks "$(locker HR lock w 0 50)"
wait_for_guest host-unlocks
answer_guest host-unlocks "$(locker HR unlock 0 50)"
wait_for_guest host-test-guest
answer_guest host-test-guest "$(locker HR test w 0 0)"
locker_stop HR
locker_stop HW
