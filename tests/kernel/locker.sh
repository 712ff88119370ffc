# Lock holders for the lock scenarios, sourced by lib.sh in the guest and by the host sides
# (tests/kernel/locks-*.host.sh). A locker is one `lockt` process (scripts/vm/lockt.c) on one file,
# kept running so that its locks last across steps, and driven through two FIFOs: `locker ID
# COMMAND` sends a command and prints the answer. LOCKT is the lockt binary.

declare -A LOCKER_IN LOCKER_OUT LOCKER_PID

# locker_start ID FILE [--ofd]: starts locker ID on FILE (--ofd: open file description locks, as a
# host process's).
locker_start() {
    local id=$1 file=$2 mode=${3:-} dir
    dir=$(mktemp -d /tmp/locker.XXXXXX)
    mkfifo "$dir/in" "$dir/out"
    if [[ -n $mode ]]; then
        "$LOCKT" "$mode" "$file" <"$dir/in" >"$dir/out" &
    else
        "$LOCKT" "$file" <"$dir/in" >"$dir/out" &
    fi
    LOCKER_PID[$id]=$!
    local w r
    exec {w}>"$dir/in"
    exec {r}<"$dir/out"
    LOCKER_IN[$id]=$w
    LOCKER_OUT[$id]=$r
    rm -rf "$dir"
}

# locker_send ID COMMAND...: sends a command without waiting for its answer (a lockw that blocks).
locker_send() {
    local id=$1
    shift
    printf '%s\n' "$*" >&"${LOCKER_IN[$id]}"
}

# locker_answer ID [SECONDS]: the answer to the oldest command sent, waiting at most SECONDS
# (default 60); prints TIMEOUT when none came.
locker_answer() {
    local line
    if read -r -t "${2:-60}" line <&"${LOCKER_OUT[$1]}"; then
        printf '%s\n' "$line"
    else
        echo TIMEOUT
    fi
}

# locker_ready ID: whether an answer is waiting (without consuming it).
locker_ready() { read -r -t 0 <&"${LOCKER_OUT[$1]}"; }

# locker ID COMMAND...: sends COMMAND and prints its answer.
locker() {
    local id=$1
    shift
    locker_send "$id" "$@"
    locker_answer "$id"
}

# locker_stop ID: ends locker ID (its file closes, its locks go).
locker_stop() {
    local id=$1
    printf 'quit\n' >&"${LOCKER_IN[$id]}" || true
    wait "${LOCKER_PID[$id]}" || true
    exec {LOCKER_IN[$id]}>&- {LOCKER_OUT[$id]}<&-
    unset "LOCKER_IN[$id]" "LOCKER_OUT[$id]" "LOCKER_PID[$id]"
}

# now_s: the clock, in seconds with microseconds.
now_s() { echo "$EPOCHREALTIME"; }

# seconds_since T: seconds elapsed since now_s gave T, with two decimals.
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# at_most VALUE LIMIT: whether VALUE <= LIMIT (decimals).
at_most() { awk -v v="$1" -v l="$2" 'BEGIN { exit !(v <= l) }'; }
