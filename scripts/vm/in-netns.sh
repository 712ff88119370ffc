#!/usr/bin/env bash
# Runs one guest job against rnfsd inside a private network namespace (run by run-scenario.sh
# under `unshare --net`). The namespace has only `lo`; rnfsd listens on 127.0.0.1 there (NFS+MOUNT
# 2049, MOUNT 20048, embedded portmapper 111), and qemu, with restrict=on user networking, reaches
# those three ports through guestfwd rules whose relays connect to 127.0.0.1. Nothing in here can
# reach any other address.
#
# Everything lives in WORK: export/, state/, job/ (the guest's job folder), server.log,
# console.log, relay.log, host.log (the scenario's host side, if any), and capture.pcap when
# VM_CAPTURE=1.
#
# When WORK/faults exists (a scenario's tests/kernel/NAME.faults: rule lines, `#` comments), the
# fault proxy rnfsd-faultproxy runs on 127.0.0.1:2050 in front of rnfsd's 2049 with those rules
# armed, and the guest's port 2049 leads to the proxy instead (the guest still mounts port 2049).
# Its control socket is WORK/faultproxy.sock, its event log WORK/faults.log (every call, reply
# and fault), its own log WORK/faultproxy.log.
#
# With GUESTS set (a scenario's `# guests: NAME...`), the guests are named and run at once, the way
# the lock scenarios need them: rnfsd listens on 10.0.2.100 (an address added to the namespace's
# lo, the address the guests mount), guest number i (from 0) gets the address 10.0.2.(15+i), both
# inside the guest and on the namespace's lo, and host name guest-NAME; its relays connect from that
# address, so rnfsd sees one client address per guest; and `hostfwd` rules on that address lead to
# the guest's rpcbind (111), lockd (4045) and rpc.statd (1662), so rnfsd can call its lock manager
# back and notify its status monitor. LOCK_GRACE, if set, is rnfsd's --lock-grace. Each guest's
# console goes to WORK/console-NAME.log, its qemu pid to WORK/qemu-NAME.pid; the host side can
# kill_guest NAME (recorded in WORK/killed-NAME) and sm_notify_as NAME STATE.
#
# usage: in-netns.sh WORK GUEST_DIR RNFSD_BIN TIMEOUT_SECONDS [FAULTPROXY_BIN]
# Exit status: qemu's (124 when the timeout stopped it), or 1 when rnfsd or the proxy did not
# start.
set -euo pipefail

WORK=$1 GUEST=$2 BIN=$3 LIMIT=$4 PROXY_BIN=${5:-}
EXPORT=$WORK/export
QEMU_PIDS=() CAPTURE_PID='' HOST_PID='' PROXY_PID=''
read -r -a NAMED <<<"${GUESTS:-}"
SERVER_ADDR=127.0.0.1
((${#NAMED[@]} == 0)) || SERVER_ADDR=10.0.2.100
# guest_addr I: the address of named guest number I.
guest_addr() { echo "10.0.2.$((15 + $1))"; }

SCRIPT=vm
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Every step runs, whatever the ones before it did.
cleanup() {
    set +e
    local pid
    for pid in "${QEMU_PIDS[@]}"; do
        stop_pid "$pid" TERM 50
    done
    stop_pid "$HOST_PID" TERM 20
    stop_pid "$PROXY_PID" TERM 20
    server_stop TERM
    # tshark writes its last packets on SIGINT.
    stop_pid "$CAPTURE_PID" INT 50
}
trap cleanup EXIT
trap 'say "interrupted"; exit 143' TERM INT HUP

ip link set lo up
if ((${#NAMED[@]} > 0)); then
    [[ ! -f $WORK/faults ]] || {
        say "fault rules and named guests do not go together"
        exit 1
    }
    ip addr add "$SERVER_ADDR/32" dev lo
    for i in "${!NAMED[@]}"; do
        ip addr add "$(guest_addr "$i")/32" dev lo
    done
fi

if [[ ${VM_CAPTURE:-0} == 1 ]]; then
    command -v tshark >/dev/null || {
        say "VM_CAPTURE=1 needs tshark"
        exit 1
    }
    tshark -q -i lo -f 'port 2049 or port 20048 or port 111 or port 4045 or port 1662' -w "$WORK/capture.pcap" \
        >"$WORK/tshark.log" 2>&1 &
    CAPTURE_PID=$!
    wait_for_line "$WORK/tshark.log" 'Capturing on' 50 "$CAPTURE_PID" || true
fi

# The server's pid lives in a file, so that a scenario's host script (running in a subshell) can
# restart it and cleanup still finds the current one.
server_start() {
    local log_start
    log_start=$(stat -c %s "$WORK/server.log" 2>/dev/null || echo 0)
    local extra=()
    [[ -z ${LOCK_GRACE:-} ]] || extra+=(--lock-grace "$LOCK_GRACE")
    "$BIN" serve --bind "$SERVER_ADDR" --port 2049 --mount-port 20048 --portmap embedded \
        --state-dir "$WORK/state" --export "$EXPORT *(rw,no_root_squash,insecure,sync)" "${extra[@]}" \
        >>"$WORK/server.log" 2>&1 &
    echo $! >"$WORK/server.pid"
    # The banner's last section means every listener is bound.
    wait_for_line "$WORK/server.log" '^mount with:' 100 "$(cat "$WORK/server.pid")" "$log_start" && return 0
    say "rnfsd did not start"
    return 1
}

# server_stop SIGNAL: stops the server with SIGNAL and waits for it to exit.
server_stop() {
    local pid
    pid=$(cat "$WORK/server.pid" 2>/dev/null) || return 0
    stop_pid "$pid" "$1" 150
    rm -f "$WORK/server.pid"
}

# lines_logged PATTERN: how many server log lines match PATTERN (grep -E).
lines_logged() { grep -cE "$1" "$WORK/server.log" || true; }
# more_logged PATTERN N: whether more than N server log lines match PATTERN.
more_logged() { (($(lines_logged "$1") > $2)); }

# server_report PATTERN: has rnfsd log its report (SIGUSR1) and prints the report's line that
# matches PATTERN.
server_report() {
    local before
    before=$(lines_logged "$1")
    kill -USR1 "$(cat "$WORK/server.pid")" || return 1
    if wait_until 100 more_logged "$1" "$before"; then
        grep -E "$1" "$WORK/server.log" | tail -n 1
        return 0
    fi
    say "rnfsd did not log its report line '$1'"
    return 1
}

# server_counters: rnfsd's call and DRC counters line (SIGUSR1).
server_counters() { server_report 'counters: '; }

# server_locks: rnfsd's lock report line (SIGUSR1): locks held, waiters, clients, grace, reclaims.
server_locks() { server_report ' locks: '; }

# await_locks PATTERN SECONDS: asks for the lock report every half second until a line matches
# PATTERN (grep -E), and prints it; fails after SECONDS.
await_locks() {
    local line n=$(($2 * 2))
    for _ in $(seq "$n"); do
        line=$(server_locks) || return 1
        if grep -qE "$1" <<<"$line"; then
            printf '%s\n' "$line"
            return 0
        fi
        sleep 0.5
    done
    say "no lock report matched '$1' within $2 s (last: $line)"
    return 1
}

# kill_guest NAME: kills named guest NAME's qemu at once, as a crash would (the recorded pid is
# that of the `timeout` that runs qemu; SIGKILL goes to qemu itself, its only child).
kill_guest() {
    local tpid qpid
    tpid=$(cat "$WORK/qemu-$1.pid")
    qpid=$(cat "/proc/$tpid/task/$tpid/children")
    [[ -n $qpid ]] || return 1
    : >"$WORK/killed-$1"
    kill -KILL $qpid
}

# sm_notify_as NAME STATE: sends the SM_NOTIFY a rebooted named guest NAME would send (UDP, from
# its address, naming its host name, with its new NSM state STATE) to rnfsd's status monitor.
sm_notify_as() {
    local i
    for i in "${!NAMED[@]}"; do
        [[ ${NAMED[$i]} == "$1" ]] || continue
        python3 "$RIG/sm-notify.py" --from "$(guest_addr "$i")" --server "$SERVER_ADDR" \
            --mon-name "guest-$1" --state "$2"
        return
    done
    say "no guest named $1"
    return 1
}
RIG=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

server_start || exit 1

# The port the guest's 2049 leads to: rnfsd, or the fault proxy in front of it.
NFS_TARGET=2049
if [[ -f $WORK/faults ]]; then
    [[ -n $PROXY_BIN && -x $PROXY_BIN ]] || {
        say "the scenario has fault rules but no rnfsd-faultproxy binary (got '${PROXY_BIN}')"
        exit 1
    }
    rules=()
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%%#*}
        read -r line <<<"$line" || true
        [[ -n $line ]] && rules+=(--rule "$line")
    done <"$WORK/faults"
    "$PROXY_BIN" --listen 127.0.0.1:2050 --upstream 127.0.0.1:2049 --control "$WORK/faultproxy.sock" \
        --log "$WORK/faults.log" --log-traffic "${rules[@]}" >>"$WORK/faultproxy.log" 2>&1 &
    PROXY_PID=$!
    proxy_ready() { line_in "$WORK/faultproxy.log" 'listening on' && [[ -S $WORK/faultproxy.sock ]]; }
    wait_until --while-alive "$PROXY_PID" 100 proxy_ready || true
    [[ -S $WORK/faultproxy.sock ]] || {
        say "rnfsd-faultproxy did not start: $(tail -n 5 "$WORK/faultproxy.log")"
        exit 1
    }
    NFS_TARGET=2050
fi

# fault COMMAND...: a command to the fault proxy's control socket (add RULE, clear, rules, events).
fault() { "$PROXY_BIN" ctl "$WORK/faultproxy.sock" "$@"; }

# A scenario's host side (tests/kernel/NAME.host.sh, copied to WORK/host.sh) runs alongside the
# guest, with server_start/server_stop/server_counters/server_locks (and fault, with a proxy;
# kill_guest and sm_notify_as, with named guests; the lockers of tests/kernel/locker.sh) at hand,
# and talks to the guest through files in JOB/sync (lib.sh's ask_host, tell and await on the
# guest side).
if [[ -f $WORK/host.sh ]]; then
    mkdir -p "$WORK/job/sync"
    (
        trap - EXIT
        JOB=$WORK/job
        # wait_for_guest NAME: the guest's request NAME, or failure after the guest's time limit.
        wait_for_guest() { wait_until $((LIMIT * 10)) test -e "$JOB/sync/$1"; }
        # answer_guest NAME TEXT: ends the guest's wait for NAME; TEXT is what it reads back.
        answer_guest() { printf '%s\n' "$2" >"$JOB/sync/$1.done.tmp" && mv "$JOB/sync/$1.done.tmp" "$JOB/sync/$1.done"; }
        # tell NAME: raises the flag NAME that the guests await.
        tell() { : >"$JOB/sync/$1.tmp.host" && mv "$JOB/sync/$1.tmp.host" "$JOB/sync/$1"; }
        LOCKT=$JOB/lockt
        # shellcheck source=/dev/null
        source "$JOB/locker.sh"
        rc=0
        # shellcheck source=/dev/null
        (source "$WORK/host.sh") || rc=$?
        echo "$rc" >"$WORK/host.rc"
    ) >"$WORK/host.log" 2>&1 &
    HOST_PID=$!
fi

RELAY=$GUEST/relay
export RELAY_LOG=$WORK/relay.log

# start_guest NAME INDEX: boots one guest in the background (INDEX -1: the unnamed guest of the
# other scenarios) and records its qemu's pid.
start_guest() {
    local name=$1 index=$2 fwd='' append="rnfsd_job=$WORK/job" console=$WORK/console.log from='' port target
    if ((index >= 0)); then
        local addr
        addr=$(guest_addr "$index")
        from="--from $addr "
        append+=" rnfsd_guest=$name rnfsd_ip=$addr"
        console=$WORK/console-$name.log
        for port in 111 4045 1662; do
            fwd+=",hostfwd=tcp:$addr:$port-$addr:$port"
        done
        fwd+=",hostfwd=udp:$addr:1662-$addr:1662"
    fi
    for port in 2049 20048 111; do
        target=$port
        [[ $port == 2049 ]] && target=$NFS_TARGET
        fwd+=",guestfwd=tcp:10.0.2.100:$port-cmd:$RELAY $from$SERVER_ADDR $target"
    done
    # Host-clock stamps on the console lines give boot and step timings.
    local fifo=$WORK/console${name:+-$name}.fifo
    mkfifo "$fifo"
    (
        started=${EPOCHREALTIME/./}
        while IFS= read -r line; do
            now=${EPOCHREALTIME/./}
            cs=$(((now - started) / 10000))
            printf '%4d.%02d %s\n' $((cs / 100)) $((cs % 100)) "${line%$'\r'}"
        done <"$fifo" >"$console"
    ) &
    STAMPER_PIDS+=($!)
    timeout -k 10 "$LIMIT" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 \
        -display none -monitor none -serial stdio -no-reboot \
        -kernel "$GUEST/vmlinux" -initrd "$GUEST/initramfs.gz" \
        -append "console=ttyS0 quiet loglevel=4 panic=-1 $append" \
        -netdev "user,id=n0,restrict=on,ipv6=off$fwd" \
        -device virtio-net-pci,netdev=n0 \
        -device virtio-rng-pci \
        -virtfs "local,path=$WORK/job,mount_tag=job,security_model=none,multidevs=remap" \
        -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
        </dev/null >"$fifo" 2>&1 &
    QEMU_PIDS+=($!)
    [[ -z $name ]] || echo $! >"$WORK/qemu-$name.pid"
}

STAMPER_PIDS=()
if ((${#NAMED[@]} == 0)); then
    start_guest '' -1
else
    for i in "${!NAMED[@]}"; do
        start_guest "${NAMED[$i]}" "$i"
    done
fi
# The first failure is the status; a guest killed on purpose (kill_guest) does not count.
rc=0
for i in "${!QEMU_PIDS[@]}"; do
    r=0
    wait "${QEMU_PIDS[$i]}" || r=$?
    if ((${#NAMED[@]} > 0)) && [[ -e $WORK/killed-${NAMED[$i]} ]]; then
        r=0
    fi
    ((rc != 0)) || rc=$r
done
QEMU_PIDS=()
# Let the stampers drain the consoles.
for pid in "${STAMPER_PIDS[@]}"; do
    wait "$pid" || true
done
exit "$rc"
