#!/usr/bin/env bash
# Runs the NFSv3 conformance suite (tests/conformance) against nfs-ganesha (FSAL_VFS), NFSv3 only,
# on 127.0.0.1 inside a private network namespace (only `lo`) with a private /run, so neither
# ganesha nor the rpcbind it needs can clash with anything on the host. Needs root.
#
# Installs nfs-ganesha, nfs-ganesha-vfs and rpcbind with apt when they are missing. Exports a
# temporary directory (RW, no root squash), a client-restricted export and a PrivilegedPort one,
# and gives the suite a restart command. Exits with the suite's status, judged against
# tests/conformance/known-failures/ganesha.txt.
#
# Environment:
#   CONFORMANCE_ARGS   extra arguments for the suite (flags or codes)
#   CONFORMANCE_JSON   where to write the JSON report
set -euo pipefail

SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."
ROOT=$PWD
SCRIPT=conformance-ganesha
source "$ROOT/scripts/lib.sh"

need_root "network namespace, ganesha's open_by_handle_at"

if [[ -z ${CONFORMANCE_IN_NETNS:-} ]]; then
    missing=()
    command -v ganesha.nfsd >/dev/null || missing+=(nfs-ganesha)
    dpkg -s nfs-ganesha-vfs >/dev/null 2>&1 || missing+=(nfs-ganesha-vfs)
    command -v rpcbind >/dev/null || missing+=(rpcbind)
    command -v ip >/dev/null || missing+=(iproute2)
    if [[ ${#missing[@]} -gt 0 ]]; then
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" nfs-ganesha-vfs >/dev/null
    fi
    exec unshare --net --mount --propagation private -- \
        env CONFORMANCE_IN_NETNS=1 bash "$SELF" "$@"
fi

# From here on: inside the namespace.
ip link set lo up
mount -t tmpfs -o mode=0755 conformance-run /run
mkdir -p /run/lock /run/rpcbind /run/ganesha
chown _rpc /run/rpcbind 2>/dev/null || true

WORK=$(mktemp -d /tmp/ganesha-conformance.XXXXXX)
mkdir -p "$WORK/export" "$WORK/restricted" "$WORK/secure"
chmod 0777 "$WORK/export"
CONF=$WORK/ganesha.conf
LOG=$WORK/ganesha.log
PIDFILE=$WORK/ganesha.pid
JSON=${CONFORMANCE_JSON:-$WORK/report.json}

cat >"$CONF" <<CONF
NFS_CORE_PARAM {
    NFS_Port = 2049; MNT_Port = 20048; Enable_NLM = false; Enable_RQUOTA = false;
    Enable_UDP = true; Protocols = 3;
}
NFS_KRB5 { Active_krb5 = false; }
NFSV4 { Graceless = true; }
EXPORT {
    Export_Id = 1; Path = $WORK/export; Pseudo = /export; Access_Type = RW;
    Squash = No_Root_Squash; SecType = sys; Protocols = 3; Transports = TCP, UDP;
    FSAL { Name = VFS; }
}
EXPORT {
    Export_Id = 2; Path = $WORK/restricted; Pseudo = /restricted; Access_Type = None;
    Squash = No_Root_Squash; SecType = sys; Protocols = 3; Transports = TCP, UDP;
    CLIENT { Clients = 192.0.2.1; Access_Type = RW; }
    FSAL { Name = VFS; }
}
EXPORT {
    Export_Id = 3; Path = $WORK/secure; Pseudo = /secure; Access_Type = RW;
    Squash = No_Root_Squash; SecType = sys; Protocols = 3; Transports = TCP, UDP;
    PrivilegedPort = true;
    FSAL { Name = VFS; }
}
CONF

rpcbind -f &
RPCBIND_PID=$!

cat >"$WORK/server.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
SCRIPT=conformance-ganesha
source "$ROOT/scripts/lib.sh"
[[ -s $PIDFILE ]] && stop_pid "\$(cat $PIDFILE)"
ganesha.nfsd -F -f "$CONF" -L "$LOG" -p "$PIDFILE.ganesha" -N NIV_EVENT &
echo \$! >$PIDFILE
wait_for_port 2049 200 "\$(cat $PIDFILE)" && exit 0
say "ganesha did not start; log:"
tail -n 50 "$LOG" >&2
exit 1
SH
chmod +x "$WORK/server.sh"

# Every step runs, whatever the ones before it did.
cleanup() {
    local rc=$?
    set +e
    [[ -s $PIDFILE ]] && stop_pid "$(cat "$PIDFILE")"
    stop_pid "$RPCBIND_PID"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

wait_for_port 111 50 "$RPCBIND_PID" || true
"$WORK/server.sh"
# ganesha answers before its exports are ready; wait for MOUNT to hand out the handle.
sleep 2
echo "conformance-ganesha: $(ganesha.nfsd -v 2>&1 | head -1) on 127.0.0.1 (network namespace)"

set +e
PYTHONPATH=$ROOT/tests/conformance python3 -m conformance "127.0.0.1:$WORK/export" \
    --port 2049 --mount-port 20048 --portmap-port 111 \
    --restart-cmd "$WORK/server.sh; sleep 2" \
    --restricted-export "$WORK/restricted" --secure-export "$WORK/secure" \
    --known-failures "$ROOT/tests/conformance/known-failures/ganesha.txt" \
    --json "$JSON" ${CONFORMANCE_ARGS:-}
status=$?
set -e
exit "$status"
