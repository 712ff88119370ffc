# Helpers for the kernel-client scenarios, sourced by each tests/kernel/NAME.sh. The scenarios run
# in the qemu guest as root, chrooted into the host's root (read-only), so the host's bash,
# coreutils and mount.nfs are what they use; every exec costs ~0.1 s under TCG, so the bulk work
# belongs in few processes.
#
# From scripts/vm/run-scenario.sh: SERVER (the guest-side address of rnfsd), EXPORT (the exported
# path), MNT (where to mount), OUT (a folder the host-side check reads), JOB, LOCKT (the lock
# tool), and in a scenario with named guests (`# guests: a b`) GUEST, this guest's name.
set -euo pipefail

NFS_OPTS=vers=3,proto=tcp,nolock
# The default options the lock scenarios mount with: locking on, as a user's plain mount.
LOCK_OPTS=vers=3
T0=${EPOCHREALTIME/./}

# Microseconds since the scenario started, as seconds with two decimals.
elapsed() {
    local cs=$(((${EPOCHREALTIME/./} - T0) / 10000))
    printf '%d.%02d' $((cs / 100)) $((cs % 100))
}

step() { printf '[%6ss] %s\n' "$(elapsed)" "$*"; }

fail() {
    printf '[%6ss] FAIL: %s\n' "$(elapsed)" "$*"
    exit 1
}

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() {
    [[ $1 == "$2" ]] || fail "$3: got '$1', expected '$2'"
}

# nfs_mount [EXTRA_OPTIONS]: mounts $SERVER:$EXPORT on $MNT with Debian's mount.nfs, which asks
# rnfsd's portmapper for the MOUNT and NFS ports unless EXTRA_OPTIONS names them. With
# NFS_OPTS=$LOCK_OPTS (after start_lock_services) the mount has network locking.
nfs_mount() {
    local opts=$NFS_OPTS
    [[ -n ${1:-} ]] && opts+=",$1"
    mkdir -p "$MNT"
    mount -t nfs -o "$opts" "$SERVER:$EXPORT" "$MNT" || fail "mount -o $opts $SERVER:$EXPORT failed"
}

nfs_umount() {
    umount "$MNT" || fail "umount $MNT failed"
}

# The guest clock starts from the emulated RTC and lags the host by up to a second, which makes
# fresh server timestamps look like the future (make warns of clock skew, ls prints years). Sets it
# from the mtime rnfsd gives a new file, taking that stamp as made at the earliest moment it can
# have been: the guest then runs ahead by at most the round trip, never behind.
sync_clock() {
    local before server probe=$MNT/.clock-probe.$$
    before=$EPOCHREALTIME
    : >"$probe"
    server=$(stat -c %.9Y "$probe")
    rm -f "$probe"
    date -s "@$(awk -v b="$before" -v s="$server" -v n="$EPOCHREALTIME" \
        'BEGIN { printf "%.6f", n + s - b }')" >/dev/null
}

# ask_host NAME: asks the scenario's host side (NAME.host.sh) to do step NAME, waits until it has,
# and prints its answer.
ask_host() {
    local done=$JOB/sync/$1.done
    : >"$JOB/sync/$1"
    for _ in $(seq 3000); do
        if [[ -e $done ]]; then
            cat "$done"
            return 0
        fi
        sleep 0.1
    done
    fail "the host did not answer '$1' within 300 s"
}

# step_file NAME: a flag in the job folder that every guest and the host side see (9p without
# cache): `tell NAME` raises it, `await NAME [SECONDS]` waits for it.
tell() { : >"$JOB/sync/$1.tmp.${GUEST:-x}" && mv "$JOB/sync/$1.tmp.${GUEST:-x}" "$JOB/sync/$1"; }
await() {
    local n=$((${2:-120} * 10))
    for _ in $(seq "$n"); do
        [[ -e $JOB/sync/$1 ]] && return 0
        sleep 0.1
    done
    fail "nobody said '$1' within ${2:-120} s"
}

# start_lock_services: what a client needs for a mount without nolock, as Debian's nfs-common
# gives it: rpcbind (the kernel's lockd registers with it) and rpc.statd (lockd asks it to
# monitor the server, and it takes the server's reboot notices), on the fixed ports that the rig's
# hostfwd rules lead to (lockd 4045, statd 1662).
start_lock_services() {
    echo 4045 >/proc/sys/fs/nfs/nlm_tcpport
    echo 4045 >/proc/sys/fs/nfs/nlm_udpport
    mkdir -p /run/rpcbind /tmp/statd/sm /tmp/statd/sm.bak
    rpcbind || fail "rpcbind did not start"
    rpc.statd -L -P /tmp/statd -p 1662 -o 1663 || fail "rpc.statd did not start"
    NFS_OPTS=$LOCK_OPTS
}

source "${BASH_SOURCE%/*}/locker.sh"

# still_waits ID WHAT: fails when locker ID's blocking lock (sent with locker_send) has returned.
still_waits() { ! locker_ready "$1" || fail "$2 returned: $(locker_answer "$1" 1)"; }

# granted_within ID BOUND RECORD WHAT COMMAND...: runs COMMAND (which makes the holder let go) and
# waits for locker ID's blocking lock to be granted; says how many seconds that took from
# COMMAND's start, writes them to $OUT/RECORD, and fails beyond BOUND seconds.
granted_within() {
    local id=$1 bound=$2 record=$3 what=$4 t0 took
    shift 4
    t0=$(now_s)
    "$@"
    expect_eq "$(locker_answer "$id" 60)" ok "$what"
    took=$(seconds_since "$t0")
    step "$what: got the lock $took s after '$*'"
    echo "$took" >"$OUT/$record"
    at_most "$took" "$bound" || fail "$what took $took s after '$*' (at most $bound s)"
}

# waits_behind ID FILE WHO: starts locker ID on FILE, where WHO holds a write lock on [0,100):
# F_SETLK inside that range fails with EAGAIN, and F_SETLKW of the range is still waiting 2 s
# later (its answer is read with locker_answer ID).
waits_behind() {
    locker_start "$1" "$2"
    expect_eq "$(locker "$1" lock w 0 10)" EAGAIN "F_SETLK inside $3's range"
    locker_send "$1" lockw w 0 100
    sleep 2
    still_waits "$1" "F_SETLKW while $3 held the lock"
}
