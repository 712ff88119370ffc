# Host side of `verifier-kill` (sourced by scripts/vm/in-netns.sh, with the fault proxy logging
# traffic): kills rnfsd with SIGKILL while the guest's copy has UNSTABLE writes answered and not
# yet committed, starts it again, and at the end hands the proxy's log to the check.
#
# Deciding from a live log and then killing is a race: the client can send a COMMIT, and rnfsd
# answer it, between the two. So rnfsd is frozen (SIGSTOP) first, the proxy is given a moment to
# log the replies rnfsd had already written, and the count is taken from that settled log. With
# enough uncommitted writes rnfsd is killed while still frozen; otherwise it resumes (SIGCONT).
wait_for_guest kill-mid-copy
# Counts over the proxy's log: UNSTABLE WRITE replies in all, and those that no answered COMMIT
# covers, i.e. replies logged after the call of the last COMMIT that got an answer (the kernel
# client commits the whole file, offset 0 count 0). A COMMIT still unanswered commits nothing.
outstanding() {
    awk '/proc=COMMIT call/ { match($0, /xid=0x[0-9a-f]+/); call_at[substr($0, RSTART, RLENGTH)] = NR }
        /proc=COMMIT reply/ { match($0, /xid=0x[0-9a-f]+/); x = substr($0, RSTART, RLENGTH)
                              if (x in call_at && call_at[x] > committed_to) committed_to = call_at[x] }
        /proc=WRITE reply .*committed=UNSTABLE/ { all++; unstable_at[all] = NR }
        END { open = 0; for (i = 1; i <= all; i++) if (unstable_at[i] > committed_to) open++
              print all + 0, open + 0 }' "$WORK/faults.log"
}
pid=$(cat "$WORK/server.pid")
all=0 open=0 killed=0
for _ in $(seq 1200); do
    read -r all open < <(outstanding)
    if ((all >= 128 && open >= 8)); then
        kill -STOP "$pid"
        sleep 0.5
        read -r all open < <(outstanding)
        if ((open >= 4)); then
            server_stop KILL
            killed=1
            break
        fi
        kill -CONT "$pid"
    fi
    sleep 0.1
done
if ((!killed)); then
    answer_guest kill-mid-copy "no uncommitted writes to lose: $all UNSTABLE replies, $open not yet committed"
    exit 1
fi
echo "SIGKILL after $all UNSTABLE WRITE replies, $open of them not covered by an answered COMMIT"
sleep 1
server_start
echo "rnfsd started again"
answer_guest kill-mid-copy restarted
wait_for_guest log
cp "$WORK/faults.log" "$JOB/out/faults.log"
answer_guest log copied
