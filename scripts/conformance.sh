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
if [[ -z ${RNFSD_BIN:-} ]]; then
    cargo build --release --quiet
    RNFSD_BIN=$ROOT/target/release/rnfsd
fi
[[ -x $RNFSD_BIN ]] || { echo "conformance: $RNFSD_BIN not found" >&2; exit 1; }

WORK=$(mktemp -d "${CONFORMANCE_TMP:-/tmp}/rnfsd-conformance.XXXXXX")
mkdir -p "$WORK/export" "$WORK/restricted" "$WORK/secure" "$WORK/state"
chmod 0777 "$WORK/export"
PIDFILE=$WORK/server.pid
LOG=$WORK/server.log
JSON=${CONFORMANCE_JSON:-$WORK/report.json}

# Three ports free on both TCP and UDP of 127.0.0.1.
read -r NFS_PORT MOUNT_PORT PMAP_PORT < <(python3 - <<'PY'
import socket
ports = []
while len(ports) < 3:
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
)

# The restart command given to the suite: stop the server (SIGTERM, wait) and start it again
# on the same ports with the same state directory.
cat >"$WORK/server.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
if [[ -s $PIDFILE ]]; then
    pid=\$(cat $PIDFILE)
    kill -TERM "\$pid" 2>/dev/null || true
    for _ in \$(seq 100); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "\$pid" 2>/dev/null || true
fi
"$RNFSD_BIN" serve --bind 127.0.0.1 --port $NFS_PORT --mount-port $MOUNT_PORT \\
    --portmap embedded --portmap-port $PMAP_PORT --state-dir "$WORK/state" --udp \\
    --export "$WORK/export *(rw,no_root_squash,insecure)" \\
    --export "$WORK/restricted 192.0.2.1(rw,insecure)" \\
    --export "$WORK/secure *(rw,no_root_squash,secure)" >>"$LOG" 2>&1 &
echo \$! >$PIDFILE
for _ in \$(seq 100); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", $NFS_PORT), 1)' \\
        2>/dev/null && exit 0
    sleep 0.1
done
echo "conformance: rnfsd did not start; log:" >&2
cat "$LOG" >&2
exit 1
SH
chmod +x "$WORK/server.sh"

cleanup() {
    local rc=$?
    if [[ -s $PIDFILE ]]; then
        pid=$(cat "$PIDFILE")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
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
