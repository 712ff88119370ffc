# shellcheck shell=bash
# What the scripts under scripts/ share: messages, the root check, stopping a process, waiting for
# a condition (a port, a log line) and choosing free ports. Source it first thing:
#
#   SCRIPT=interop                                  # the prefix of say/die's messages
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # scripts/vm: .../../lib.sh
#
# Every function here is safe under `set -euo pipefail` and in an EXIT trap: the ones that clean
# up never fail, the ones that wait return non-zero instead of exiting.

# say TEXT...: a progress message on stderr, prefixed with the script's name.
say() { printf '%s: %s\n' "${SCRIPT:-${0##*/}}" "$*" >&2; }

# die TEXT...: the message, then exit 1.
die() {
    say "$@"
    exit 1
}

# need_root WHY: exits unless running as root, saying why root is needed.
need_root() { [[ $(id -u) -eq 0 ]] || die "needs root ($1)"; }

# stop_pid PID [SIGNAL [TENTHS]]: sends SIGNAL (default TERM) to the process PID, waits up to
# TENTHS tenths of a second (default 100) for it to exit, then sends KILL; reaps it when it is
# this shell's child. By PID only, never by name. An empty PID or a process already gone is fine;
# it never fails.
stop_pid() {
    local pid=${1:-} signal=${2:-TERM} tenths=${3:-100}
    [[ -n $pid ]] || return 0
    if kill -"$signal" "$pid" 2>/dev/null; then
        wait_until "$tenths" gone "$pid" || {
            kill -KILL "$pid" 2>/dev/null || true
            wait_until 50 gone "$pid" || return 0
        }
    fi
    wait "$pid" 2>/dev/null || true
    return 0
}

# gone PID: whether the process PID no longer exists.
gone() { ! kill -0 "$1" 2>/dev/null; }

# wait_until [--while-alive PID] TENTHS COMMAND...: runs COMMAND every tenth of a second until it
# succeeds (returns 0), TENTHS tries have failed (returns 1) or, with --while-alive, the process
# PID has exited (returns 2).
wait_until() {
    local pid=''
    if [[ $1 == --while-alive ]]; then
        pid=$2
        shift 2
    fi
    local tenths=$1 _
    shift
    for _ in $(seq "$tenths"); do
        "$@" && return 0
        [[ -z $pid ]] || ! gone "$pid" || return 2
        sleep 0.1
    done
    "$@" && return 0
    return 1
}

# port_open PORT: whether something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for_port PORT [TENTHS [PID]]: waits (default 10 s) until 127.0.0.1:PORT accepts TCP
# connections; with PID, gives up as soon as that process has exited. Status as wait_until's.
wait_for_port() {
    if [[ -n ${3:-} ]]; then
        wait_until --while-alive "$3" "${2:-100}" port_open "$1"
    else
        wait_until "${2:-100}" port_open "$1"
    fi
}

# wait_for_line FILE REGEX [TENTHS [PID [FROM]]]: waits (default 10 s) until a line of FILE,
# from byte FROM on (default 0), matches the extended REGEX; with PID, gives up as soon as that
# process has exited. Status as wait_until's.
wait_for_line() {
    local file=$1 regex=$2 tenths=${3:-100} pid=${4:-} from=${5:-0}
    if [[ -n $pid ]]; then
        wait_until --while-alive "$pid" "$tenths" line_in "$file" "$regex" "$from"
    else
        wait_until "$tenths" line_in "$file" "$regex" "$from"
    fi
}

# line_in FILE REGEX [FROM]: whether a line of FILE from byte FROM on matches REGEX.
# (No pipe: under pipefail, grep -q leaving early would fail the pipeline with tail's SIGPIPE.)
line_in() { grep -Eq -- "$2" <(tail -c +$((${3:-0} + 1)) "$1" 2>/dev/null); }

# free_ports N: N distinct ports, each free on both TCP and UDP of 127.0.0.1 (the kernel chooses
# them), on one line.
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
ports = []
while len(ports) < int(sys.argv[1]):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        t.close(); u.close()
    if p not in ports:
        ports.append(p)
print(*ports)
PY
}
