# Host side of `server-restart` (sourced by scripts/vm/in-netns.sh): restarts rnfsd when asked.
restart() {
    local signal=$1 t0=$EPOCHREALTIME
    server_stop "$signal"
    server_start
    echo "restart after SIG$signal: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
}
wait_for_guest restart-term
restart TERM
answer_guest restart-term restarted
wait_for_guest restart-kill
restart KILL
answer_guest restart-kill restarted
wait_for_guest restart-term-idle
restart TERM
answer_guest restart-term-idle restarted
