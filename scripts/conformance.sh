#!/usr/bin/env bash
# Runs the NFSv3 conformance suite (tests/conformance) against a freshly built rnfsd on 127.0.0.1.
#
# Builds the release binary, serves a temporary export (rw,no_root_squash,insecure) plus a
# client-restricted export and a `secure` one, with the embedded portmapper on a free port, and
# runs the suite with a restart command so the handle-across-restart tests run too. Exits with the
# suite's status: non-zero iff a test failed that is not in known-failures/rnfsd.txt.
#
# Environment:
#   RNFSD_BIN          binary to test (default: build and use target/release/rnfsd)
#   CONFORMANCE_ARGS   extra arguments for the suite (flags or codes, e.g. "rpc WRT*")
#   CONFORMANCE_JSON   where to write the JSON report (default: inside the temp dir, then printed)
#   CONFORMANCE_TMP    where the exports live (default /tmp; /dev/shm tests the memory-backed
#                      paths, where changes run on the async workers)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SCRIPT=conformance
source "$ROOT/scripts/lib.sh"
if [[ -z ${RNFSD_BIN:-} ]]; then
    cargo build --release --quiet
    RNFSD_BIN=$ROOT/target/release/rnfsd
fi
[[ -x $RNFSD_BIN ]] || die "$RNFSD_BIN not found"

WORK=$(mktemp -d "${CONFORMANCE_TMP:-/tmp}/rnfsd-conformance.XXXXXX")
mkdir -p "$WORK/export" "$WORK/restricted" "$WORK/secure" "$WORK/state"
chmod 0777 "$WORK/export"
PIDFILE=$WORK/server.pid
LOG=$WORK/server.log
JSON=${CONFORMANCE_JSON:-$WORK/report.json}

# Three ports free on both TCP and UDP of 127.0.0.1.
read -r NFS_PORT MOUNT_PORT PMAP_PORT < <(free_ports 3)

# The restart command given to the suite: stop the server (SIGTERM, wait) and start it again
# on the same ports with the same state directory.
cat >"$WORK/server.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
SCRIPT=conformance
source "$ROOT/scripts/lib.sh"
[[ -s $PIDFILE ]] && stop_pid "\$(cat $PIDFILE)"
"$RNFSD_BIN" serve --bind 127.0.0.1 --port $NFS_PORT --mount-port $MOUNT_PORT \\
    --portmap embedded --portmap-port $PMAP_PORT --state-dir "$WORK/state" --udp \\
    --export "$WORK/export *(rw,no_root_squash,insecure)" \\
    --export "$WORK/restricted 192.0.2.1(rw,insecure)" \\
    --export "$WORK/secure *(rw,no_root_squash,secure)" >>"$LOG" 2>&1 &
echo \$! >$PIDFILE
wait_for_port $NFS_PORT 100 "\$(cat $PIDFILE)" && exit 0
say "rnfsd did not start; log:"
cat "$LOG" >&2
exit 1
SH
chmod +x "$WORK/server.sh"

# Every step runs, whatever the ones before it did.
cleanup() {
    local rc=$?
    set +e
    [[ -s $PIDFILE ]] && stop_pid "$(cat "$PIDFILE")"
    if [[ $rc -ne 0 ]]; then
        echo "---- rnfsd log (last 50 lines) ----" >&2
        tail -n 50 "$LOG" >&2 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

"$WORK/server.sh"
echo "conformance: rnfsd on 127.0.0.1 nfs $NFS_PORT mount $MOUNT_PORT portmap $PMAP_PORT"

set +e
PYTHONPATH=$ROOT/tests/conformance python3 -m conformance "127.0.0.1:$WORK/export" \
    --port "$NFS_PORT" --mount-port "$MOUNT_PORT" --portmap-port "$PMAP_PORT" \
    --restart-cmd "$WORK/server.sh" \
    --restricted-export "$WORK/restricted" --secure-export "$WORK/secure" \
    --known-failures "$ROOT/tests/conformance/known-failures/rnfsd.txt" \
    --json "$JSON" ${CONFORMANCE_ARGS:-}
status=$?
set -e
exit "$status"
