#!/usr/bin/env bash
# Runs one guest job against rnfsd inside a private network namespace (run by run-scenario.sh
# under `unshare --net`). The namespace has only `lo`; rnfsd listens on 127.0.0.1 there (NFS+MOUNT
# 2049, MOUNT 20048, embedded portmapper 111), and qemu, with restrict=on user networking, reaches
# those three ports through guestfwd rules whose relays connect to 127.0.0.1. Nothing in here can
# reach any other address.
#
# Everything lives in WORK: export/, state/, job/ (the guest's job folder), server.log,
# console.log, relay.log, and capture.pcap when VM_CAPTURE=1.
#
# usage: in-netns.sh WORK GUEST_DIR RNFSD_BIN TIMEOUT_SECONDS
# Exit status: qemu's (124 when the timeout stopped it), or 1 when rnfsd did not start.
set -euo pipefail

WORK=$1 GUEST=$2 BIN=$3 LIMIT=$4
EXPORT=$WORK/export
SERVER_PID= QEMU_PID= CAPTURE_PID=

say() { printf 'vm: %s\n' "$*" >&2; }

stop_pid() {
    local pid=$1 signal=$2 tries=$3
    [[ -n $pid ]] || return 0
    kill -"$signal" "$pid" 2>/dev/null || return 0
    for _ in $(seq "$tries"); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    stop_pid "$QEMU_PID" TERM 50
    stop_pid "$SERVER_PID" TERM 120
    # tshark writes its last packets on SIGINT.
    stop_pid "$CAPTURE_PID" INT 50
}
trap cleanup EXIT
trap 'say "interrupted"; exit 143' TERM INT HUP

ip link set lo up

if [[ ${VM_CAPTURE:-0} == 1 ]]; then
    command -v tshark >/dev/null || {
        say "VM_CAPTURE=1 needs tshark"
        exit 1
    }
    tshark -q -i lo -f 'tcp port 2049 or tcp port 20048 or tcp port 111' -w "$WORK/capture.pcap" \
        >"$WORK/tshark.log" 2>&1 &
    CAPTURE_PID=$!
    for _ in $(seq 50); do
        grep -q 'Capturing on' "$WORK/tshark.log" 2>/dev/null && break
        sleep 0.1
    done
fi

"$BIN" serve --bind 127.0.0.1 --port 2049 --mount-port 20048 --portmap embedded \
    --state-dir "$WORK/state" --export "$EXPORT *(rw,no_root_squash,insecure,sync)" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
# The banner's last section means every listener is bound.
for _ in $(seq 100); do
    grep -q '^mount with:' "$WORK/server.log" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q '^mount with:' "$WORK/server.log" || {
    say "rnfsd did not start"
    exit 1
}

RELAY=$GUEST/relay
FWD=
for port in 2049 20048 111; do
    FWD+=",guestfwd=tcp:10.0.2.100:$port-cmd:$RELAY 127.0.0.1 $port"
done
export RELAY_LOG=$WORK/relay.log

# Host-clock stamps on the console lines give boot and step timings.
mkfifo "$WORK/console.fifo"
started=${EPOCHREALTIME/./}
while IFS= read -r line; do
    now=${EPOCHREALTIME/./}
    cs=$(((now - started) / 10000))
    printf '%4d.%02d %s\n' $((cs / 100)) $((cs % 100)) "${line%$'\r'}"
done <"$WORK/console.fifo" >"$WORK/console.log" &
STAMPER_PID=$!

timeout -k 10 "$LIMIT" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 \
    -display none -monitor none -serial stdio -no-reboot \
    -kernel "$GUEST/vmlinux" -initrd "$GUEST/initramfs.gz" \
    -append "console=ttyS0 quiet loglevel=4 panic=-1 rnfsd_job=$WORK/job" \
    -netdev "user,id=n0,restrict=on,ipv6=off$FWD" \
    -device virtio-net-pci,netdev=n0 \
    -device virtio-rng-pci \
    -virtfs "local,path=$WORK/job,mount_tag=job,security_model=none,multidevs=remap" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    </dev/null >"$WORK/console.fifo" 2>&1 &
QEMU_PID=$!
wait "$QEMU_PID" && rc=0 || rc=$?
QEMU_PID=
# Let the stamper drain the console.
wait "$STAMPER_PID" || true
exit "$rc"
