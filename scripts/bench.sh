#!/usr/bin/env bash
# Benchmarks rnfsd against nfs-ganesha (VFS FSAL, NFSv3 only) on the same tmpfs, on loopback in a
# private network namespace, with rnfsd-bench as the client of both. Rounds are interleaved
# (rnfsd, ganesha, rnfsd, ...) and the table gives per workload the median and range of each
# server, the rnfsd/ganesha ratio and the issue's target. Also measured in the same run: a local
# dd to the same tmpfs (the write target) and loopback TCP throughput (the read target).
# The fairness-* workloads give the GETATTR latency of a well-behaved client (127.0.0.1) while
# another address (127.0.0.2) floods 1 MiB READDIRPLUS, READ or WRITE calls.
#
# usage: sudo scripts/bench.sh [--rounds N] [--only w1,w2] [--servers rnfsd,ganesha] [--seconds S]
#                              [--ganesha-attr-expiration SECONDS] [--fs tmpfs|ext4]
# --fs ext4 exports a loop-mounted ext4 image instead of a tmpfs (a disk filesystem: every
# change and large read goes to rnfsd's pool).
# ganesha keeps attributes for Attr_Expiration_Time (60 s unless given), so it may serve them out of
# date; 0 makes it read them afresh, as rnfsd always does.
# Needs root (network and mount namespaces). Installs nfs-ganesha-vfs and rpcbind when missing.
set -euo pipefail

SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."
ROOT=$PWD
SCRIPT=bench
source "$ROOT/scripts/lib.sh"
ROUNDS=3 ONLY=write,read,randread,create,getattr,lookup,readdirplus,tree,clients,fairness-readdirplus,fairness-read,fairness-write
SERVERS=rnfsd,ganesha SECONDS_PER=3 GANESHA_ATTR_EXPIRATION='' EXPORT_FS=tmpfs
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --servers) SERVERS=$2; shift 2 ;;
        --seconds) SECONDS_PER=$2; shift 2 ;;
        --ganesha-attr-expiration) GANESHA_ATTR_EXPIRATION=$2; shift 2 ;;
        --fs) EXPORT_FS=$2; shift 2 ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done
if [[ -n $GANESHA_ATTR_EXPIRATION && ! $GANESHA_ATTR_EXPIRATION =~ ^(-1|[0-9]+)$ ]]; then
    say "--ganesha-attr-expiration takes seconds (or -1 for never)"
    exit 2
fi
[[ $EXPORT_FS == tmpfs || $EXPORT_FS == ext4 ]] || { say "--fs takes tmpfs or ext4"; exit 2; }
need_root "network namespace, tmpfs mount"

if [[ -z ${BENCH_IN_NETNS:-} ]]; then
    if [[ ,$SERVERS, == *,ganesha,* ]]; then
        missing=()
        command -v ganesha.nfsd >/dev/null || missing+=(nfs-ganesha)
        dpkg -s nfs-ganesha-vfs >/dev/null 2>&1 || missing+=(nfs-ganesha-vfs)
        command -v rpcbind >/dev/null || missing+=(rpcbind)
        if [[ ${#missing[@]} -gt 0 ]]; then
            say "installing ${missing[*]}"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        fi
    fi
    cargo build --release --quiet -p rnfsd -p rnfsd-bench
    exec env BENCH_SMOKE="${BENCH_SMOKE:-0}" unshare --net --mount --propagation private -- env BENCH_IN_NETNS=1 bash "$SELF" \
        --rounds "$ROUNDS" --only "$ONLY" --servers "$SERVERS" --seconds "$SECONDS_PER" --fs "$EXPORT_FS" \
        ${GANESHA_ATTR_EXPIRATION:+--ganesha-attr-expiration "$GANESHA_ATTR_EXPIRATION"}
fi

ip link set lo up
# ganesha and rpcbind want /run; a private one keeps the host's untouched.
mount -t tmpfs -o mode=0755 bench-run /run
mkdir -p /run/lock /run/rpcbind /run/ganesha
chown _rpc /run/rpcbind 2>/dev/null || true
WORK=$(mktemp -d /tmp/rnfsd-bench.XXXXXX)
EXPORT=$WORK/export
mkdir -p "$EXPORT" "$WORK/state"
if [[ $EXPORT_FS == ext4 ]]; then
    truncate -s 6G "$WORK/ext4.img"
    mkfs.ext4 -q -F "$WORK/ext4.img"
    mount -o loop "$WORK/ext4.img" "$EXPORT"
else
    mount -t tmpfs -o size=4g bench-export "$EXPORT"
fi
chmod 0777 "$EXPORT"
RESULTS=$WORK/results
SERVER_PID='' RPCBIND_PID=''

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=''
}
# Every step runs, whatever the ones before it did (rpcbind may have exited already: the export
# must still be unmounted).
cleanup() {
    set +e
    stop_server
    stop_pid "$RPCBIND_PID"
    umount "$EXPORT" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() { wait_for_port "$1" 300 "$SERVER_PID"; }

start_rnfsd() {
    "$ROOT/target/release/rnfsd" serve --bind 127.0.0.1 --port 2049 --mount-port 20048 --portmap off \
        --state-dir "$WORK/state" --export "$EXPORT *(rw,no_root_squash,insecure,async)" >"$WORK/rnfsd.log" 2>&1 &
    SERVER_PID=$!
    wait_port 2049 && wait_port 20048
}

start_ganesha() {
    if [[ -z $RPCBIND_PID ]]; then
        rpcbind -f &
        RPCBIND_PID=$!
        wait_for_port 111 300 "$RPCBIND_PID"
    fi
    cat >"$WORK/ganesha.conf" <<CONF
NFS_CORE_PARAM { NFS_Port = 2049; MNT_Port = 20048; Enable_NLM = false; Enable_RQUOTA = false; Protocols = 3; }
NFS_KRB5 { Active_krb5 = false; }
NFSV4 { Graceless = true; }
EXPORT {
    Export_Id = 1; Path = $EXPORT; Pseudo = /export; Access_Type = RW; Squash = No_Root_Squash;
    SecType = sys; Protocols = 3; Transports = TCP; FSAL { Name = VFS; }
    ${GANESHA_ATTR_EXPIRATION:+Attr_Expiration_Time = $GANESHA_ATTR_EXPIRATION;}
}
CONF
    ganesha.nfsd -F -f "$WORK/ganesha.conf" -L "$WORK/ganesha.log" -p "$WORK/ganesha.pid" -N NIV_EVENT &
    SERVER_PID=$!
    wait_port 2049 && wait_port 20048
    # ganesha answers once its exports are loaded, a moment after the ports open.
    sleep 2
}

# BENCH_SMOKE=1 (CI) shrinks every workload: it checks that the client, both servers and the
# script work and that data reads back right, and measures nothing.
SIZES=()
[[ ${BENCH_SMOKE:-0} == 1 ]] && SIZES=(--mib 16 --files 300 --entries 500 --tree-dirs 3 --tree-files 20 --clients 20)

run_client() { # SERVER ROUND
    "$ROOT/target/release/rnfsd-bench" --port 2049 --mount-port 20048 --export "$EXPORT" \
        --workload "$ONLY" --seconds "$SECONDS_PER" --server-pid "$SERVER_PID" "${SIZES[@]}" |
        sed -n "s/^result /server=$1 round=$2 /p" >>"$RESULTS"
}

echo "bench: $ROUNDS rounds of $ONLY on $EXPORT_FS, loopback in a private network namespace"
for round in $(seq "$ROUNDS"); do
    for server in ${SERVERS//,/ }; do
        "start_$server" || { say "$server did not start"; tail -20 "$WORK/$server.log" >&2; exit 1; }
        set -o pipefail
        run_client "$server" "$round" || { say "the client failed against $server"; exit 1; }
        stop_server
        echo "bench: round $round $server done"
    done
    # Reference points on the same machine in the same run.
    dd if=/dev/zero of="$EXPORT/dd" bs=1M count=1024 conv=fdatasync 2>&1 |
        awk -v r="$round" '/copied/ { for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) s = $(i - 1); printf "server=dd round=%s workload=write mib_per_s=%.1f\n", r, 1024 / s }' >>"$RESULTS"
    rm -f "$EXPORT/dd"
    python3 - "$round" >>"$RESULTS" <<'PY'
import socket, sys, threading, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def sink():
    c, _ = srv.accept(); buf = bytearray(1 << 20); n = 0
    while True:
        k = c.recv_into(buf)
        if not k: break
threading.Thread(target=sink, daemon=True).start()
s = socket.create_connection(srv.getsockname()); data = b"x" * (1 << 20); t = time.time(); sent = 0
while time.time() - t < 2: s.sendall(data); sent += len(data)
print("server=tcp round=%s workload=read mib_per_s=%.1f" % (sys.argv[1], sent / (time.time() - t) / 1048576))
PY
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in line.split()) for line in open(sys.argv[1])]
def vals(server, wl, key):
    return [float(r[key]) for r in rows if r["server"] == server and r["workload"] == wl and key in r]
# metric, unit, higher-is-better, target
table = [
    ("write", "mib_per_s", "MiB/s", True, ">= 0.95 x dd"),
    ("read", "mib_per_s", "MiB/s", True, ">= 1.5 x ganesha, >= 0.8 x tcp"),
    ("randread", "ops_per_s", "ops/s", True, ">= 2 x ganesha"),
    ("create", "ops_per_s", "ops/s", True, ">= 2 x ganesha"),
    ("getattr", "ops_per_s", "ops/s", True, ">= 2 x ganesha"),
    ("lookup", "ops_per_s", "ops/s", True, ">= 2 x ganesha"),
    ("readdirplus", "listing_ms", "ms/listing", False, "<= 0.5 x ganesha"),
    ("readdirplus", "first_listing_ms", "ms/first listing", False, "-"),
    ("tree", "ops_per_s", "ops/s", True, "> 1 x ganesha"),
    ("clients", "ops_per_s", "ops/s", True, "> 1 x ganesha"),
    ("fairness-readdirplus", "p50_us", "GETATTR p50 us", False, "-"),
    ("fairness-readdirplus", "p99_us", "GETATTR p99 us", False, "small factor of alone"),
    ("fairness-read", "p50_us", "GETATTR p50 us", False, "-"),
    ("fairness-read", "p99_us", "GETATTR p99 us", False, "small factor of alone"),
    ("fairness-write", "p50_us", "GETATTR p50 us", False, "-"),
    ("fairness-write", "p99_us", "GETATTR p99 us", False, "small factor of alone"),
]
def cell(v):
    if not v: return "-"
    return "%.0f (%.0f-%.0f)" % (statistics.median(v), min(v), max(v)) if max(v) >= 100 else "%.2f (%.2f-%.2f)" % (statistics.median(v), min(v), max(v))
print()
print("| workload | unit | rnfsd median (range) | ganesha median (range) | rnfsd/ganesha | reference | rnfsd cpu s | ganesha cpu s | target |")
print("|---|---|---|---|---|---|---|---|---|")
for wl, key, unit, _, target in table:
    r, g = vals("rnfsd", wl, key), vals("ganesha", wl, key)
    if not r and not g: continue
    ratio = "%.2f" % (statistics.median(r) / statistics.median(g)) if r and g else "-"
    ref = ""
    if wl == "write" and vals("dd", "write", "mib_per_s"):
        d = statistics.median(vals("dd", "write", "mib_per_s")); ref = "dd %.0f MiB/s; rnfsd/dd %.2f" % (d, statistics.median(r) / d if r else 0)
    if wl == "read" and vals("tcp", "read", "mib_per_s"):
        t = statistics.median(vals("tcp", "read", "mib_per_s")); ref = "tcp %.0f MiB/s; rnfsd/tcp %.2f" % (t, statistics.median(r) / t if r else 0)
    if wl.startswith("fairness-"):
        alone = "alone_" + key
        a = lambda s: "%.0f" % statistics.median(vals(s, wl, alone)) if vals(s, wl, alone) else "-"
        f = lambda s: "%.0f" % statistics.median(vals(s, wl, "flood_mib_per_s")) if vals(s, wl, "flood_mib_per_s") else "-"
        ref = "alone: rnfsd %s, ganesha %s; flood MiB/s: rnfsd %s, ganesha %s" % (a("rnfsd"), a("ganesha"), f("rnfsd"), f("ganesha"))
    cpu = lambda s: "%.2f" % statistics.median(vals(s, wl, "server_cpu_s")) if vals(s, wl, "server_cpu_s") else "-"
    print(f"| {wl} | {unit} | {cell(r)} | {cell(g)} | {ratio} | {ref} | {cpu('rnfsd')} | {cpu('ganesha')} | {target} |")
# Memory: each server's resident set after the workload and its peak so far (a fresh server per
# round runs the workloads in order, so the peak accumulates along the list).
print()
print("| after workload | rnfsd RSS MiB | rnfsd peak MiB | ganesha RSS MiB | ganesha peak MiB |")
print("|---|---|---|---|---|")
for wl in dict.fromkeys(row[0] for row in table):
    m = lambda s, k: "%.1f" % (statistics.median(vals(s, wl, k)) / 1024) if vals(s, wl, k) else "-"
    if vals("rnfsd", wl, "server_rss_kib") or vals("ganesha", wl, "server_rss_kib"):
        print(f"| {wl} | {m('rnfsd', 'server_rss_kib')} | {m('rnfsd', 'server_hwm_kib')} | {m('ganesha', 'server_rss_kib')} | {m('ganesha', 'server_hwm_kib')} |")
PY
