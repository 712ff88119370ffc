#!/usr/bin/env bash
# Interoperability with real NFS clients from Debian's packages, against the rnfsd binary, all on
# 127.0.0.1:
#   - rpcinfo -p lists the portmapper, NFS v3 (tcp only: NFS over UDP is off without --udp) and
#     MOUNT v1/v3 (tcp, udp);
#   - showmount -e lists the export;
#   - libnfs nfs-cp copies a 100 MiB random file in and back out, byte-exact on both sides;
#   - libnfs nfs-ls lists a 10,000-entry directory, every name exactly once.
#
# rpcinfo and showmount only talk to a portmapper on port 111, so rnfsd serves its embedded
# portmapper there when 111 is free, and registers with the running rpcbind otherwise.
#
# Environment:
#   RNFSD_BIN       binary to test (default: target/release/rnfsd)
#   INTEROP_STEPS   comma-separated subset of "portmap,copy,readdir" (default: all)
#   INTEROP_BIG_MIB size of the copied file (default: 100)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${RNFSD_BIN:-target/release/rnfsd}
STEPS=${INTEROP_STEPS:-portmap,copy,readdir}
BIG_MIB=${INTEROP_BIG_MIB:-100}
ENTRIES=10000

SCRIPT=interop
source scripts/lib.sh
fail() { die "FAILED: $*"; }
want() { [[ ",$STEPS," == *",$1,"* ]]; }

[[ -x $BIN ]] || fail "$BIN not found; build it first (cargo build --release) or set RNFSD_BIN"
for tool in rpcinfo showmount nfs-cp nfs-ls timeout cmp; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install nfs-common libnfs-utils)"
done

WORK=$(mktemp -d /tmp/rnfsd-interop.XXXXXX)
EXPORT=$WORK/export
STATE=$WORK/state
LOG=$WORK/server.log
mkdir -p "$EXPORT" "$STATE"
# The export is root_squash: libnfs running as root acts as nobody there, so let anyone write.
chmod 0777 "$EXPORT"
SERVER_PID=

# Every step runs, whatever the ones before it did.
cleanup() {
    local rc=$?
    set +e
    stop_pid "$SERVER_PID" TERM 50
    if [[ $rc -ne 0 && -f $LOG ]]; then
        echo "---- rnfsd log ($LOG) ----" >&2
        tail -n 200 "$LOG" >&2
        echo "---- end of rnfsd log ----" >&2
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

if timeout 5 rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
    PORTMAP=register
    say "a portmapper already answers on 127.0.0.1:111: registering with it"
else
    PORTMAP=embedded
    say "port 111 is free: serving the embedded portmapper there"
fi
read -r NFS_PORT MOUNT_PORT < <(free_ports 2)

"$BIN" serve "$EXPORT" --bind 127.0.0.1 --port "$NFS_PORT" --mount-port "$MOUNT_PORT" \
    --portmap "$PORTMAP" --state-dir "$STATE" >"$LOG" 2>&1 &
SERVER_PID=$!
started=0
wait_for_line "$LOG" '^mount with:' 100 "$SERVER_PID" || started=$?
[[ $started -ne 2 ]] || fail "rnfsd exited during startup"
[[ $started -eq 0 ]] || fail "rnfsd did not print its banner within 10 s"
say "rnfsd is serving $EXPORT (pid $SERVER_PID)"
sed 's/^/    /' "$LOG"

if want portmap; then
    say "rpcinfo -p 127.0.0.1"
    RPCINFO=$(timeout 20 rpcinfo -p 127.0.0.1) || fail "rpcinfo -p failed"
    echo "$RPCINFO" | sed 's/^/    /'
    has() { echo "$RPCINFO" | awk -v p="$1" -v v="$2" -v t="$3" '$1==p && $2==v && $3==t {f=1} END {exit !f}'; }
    has 100000 2 tcp || fail "rpcinfo: portmapper v2/tcp missing"
    has 100003 3 tcp || fail "rpcinfo: NFS v3/tcp missing"
    has 100003 3 udp && fail "rpcinfo: NFS v3/udp is listed, but NFS over UDP is off by default"
    for v in 1 3; do
        has 100005 $v tcp || fail "rpcinfo: MOUNT v$v/tcp missing"
        has 100005 $v udp || fail "rpcinfo: MOUNT v$v/udp missing"
    done
    say "rpcinfo -t/-u pings NFS v3 and MOUNT v3"
    timeout 20 rpcinfo -t 127.0.0.1 100003 3 || fail "rpcinfo -t nfs 3"
    timeout 20 rpcinfo -u 127.0.0.1 100003 3 && fail "rpcinfo -u nfs 3 answered, but NFS over UDP is off"
    timeout 20 rpcinfo -t 127.0.0.1 100005 3 || fail "rpcinfo -t mountd 3"
    timeout 20 rpcinfo -u 127.0.0.1 100005 3 || fail "rpcinfo -u mountd 3"

    say "showmount -e 127.0.0.1"
    SHOWMOUNT=$(timeout 20 showmount -e 127.0.0.1) || fail "showmount -e failed"
    echo "$SHOWMOUNT" | sed 's/^/    /'
    echo "$SHOWMOUNT" | awk -v e="$EXPORT" '$1==e {f=1} END {exit !f}' || fail "showmount does not list $EXPORT"
fi

URL="nfs://127.0.0.1$EXPORT"

if want copy; then
    say "nfs-cp: a ${BIG_MIB} MiB random file in and back out"
    head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$WORK/big.src"
    timeout 300 nfs-cp "$WORK/big.src" "$URL/big?version=3" || fail "nfs-cp into the export failed"
    cmp "$WORK/big.src" "$EXPORT/big" || fail "the file written through NFS differs on the host"
    timeout 300 nfs-cp "$URL/big?version=3" "$WORK/big.back" || fail "nfs-cp out of the export failed"
    cmp "$WORK/big.src" "$WORK/big.back" || fail "the file read back through NFS differs"
    rm -f "$WORK/big.src" "$WORK/big.back" "$EXPORT/big"
fi

if want readdir; then
    say "nfs-ls: a directory of $ENTRIES entries"
    mkdir "$EXPORT/many"
    (cd "$EXPORT/many" && seq -f 'f%05g' 1 "$ENTRIES" | xargs touch)
    timeout 300 nfs-ls "$URL/many?version=3" >"$WORK/ls.out" || fail "nfs-ls failed"
    awk '{print $NF}' "$WORK/ls.out" | grep -E '^f[0-9]{5}$' | sort >"$WORK/names"
    DUPS=$(uniq -d "$WORK/names" | head -n 5)
    [[ -z $DUPS ]] || fail "nfs-ls listed names more than once: $DUPS"
    COUNT=$(wc -l <"$WORK/names")
    [[ $COUNT -eq $ENTRIES ]] || fail "nfs-ls listed $COUNT of $ENTRIES names"
fi

say "SIGTERM: rnfsd must exit 0"
kill -TERM "$SERVER_PID"
RC=0
timeout 30 tail --pid="$SERVER_PID" -f /dev/null || fail "rnfsd did not exit within 30 s of SIGTERM"
wait "$SERVER_PID" || RC=$?
SERVER_PID=
[[ $RC -eq 0 ]] || fail "rnfsd exited with status $RC after SIGTERM"
say "all checks passed ($STEPS)"
