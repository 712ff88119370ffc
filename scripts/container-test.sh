#!/usr/bin/env bash
# Runs rnfsd in a real container runtime (podman with runc, from Debian's packages) and checks it
# as a user would, entirely inside a network namespace this script creates, which has only `lo`
# (the containers join it with `--network ns:`, as `--network host` inside it would; nothing is
# published on the machine's network):
#   1. the image of scripts/container.sh with the runtime's default capabilities plus
#      DAC_READ_SEARCH, a volume export: the conformance suite (tests/conformance) against it,
#      with `podman restart` as the suite's restart command, so handles must survive restarts of
#      the container;
#   2. `--cap-drop ALL --cap-add DAC_READ_SEARCH,SETUID,SETGID`: the banner says requests run as
#      the caller, and a user's nfs-cp round trip writes a file the user owns;
#   3. a seccomp profile that refuses name_to_handle_at (as older engines' defaults did): rnfsd
#      stops with an error that names the profile and the fix.
# Podman keeps its storage in a temporary folder (vfs driver), removed at the end.
#
# Installs podman, runc and iproute2 with apt when missing (this runs as root).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SCRIPT=container-test
source scripts/lib.sh
need_root "network namespaces and containers"

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v ip >/dev/null; then
    command -v apt-get >/dev/null || die "needs podman, runc and ip (Debian: apt-get install podman runc iproute2)"
    say "installing podman, runc and iproute2"
    export DEBIAN_FRONTEND=noninteractive
    packages=(podman runc iproute2)
    timeout 600 apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null ||
        { timeout 600 apt-get update -q >/dev/null &&
            timeout 600 apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null; }
fi
RNFSD_BIN=${RNFSD_BIN:-target/release/rnfsd}
[[ -x $RNFSD_BIN ]] || die "$RNFSD_BIN not found (build it first)"

WORK=$(mktemp -d /tmp/rnfsd-container.XXXXXX)
NETNS=rnfsd-ctr-$$
# crun here refuses the hybrid cgroup layout, and root cannot raise limits: runc and explicit
# ulimits (../shared/docs/handles-without-privilege.md).
cat >"$WORK/containers.conf" <<'EOF'
[engine]
runtime = "runc"
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
EOF
export CONTAINERS_CONF=$WORK/containers.conf
PODMAN_ARGS="--root $WORK/storage --runroot $WORK/run --storage-driver vfs"
export PODMAN_ARGS
# shellcheck disable=SC2086 # a list of words
pod() { podman $PODMAN_ARGS "$@"; }
# in_ns COMMAND...: runs COMMAND in the test's network namespace.
in_ns() { ip netns exec "$NETNS" "$@"; }

CID=''
cleanup() {
    local rc=$?
    set +e
    if [[ -n $CID ]]; then
        [[ $rc -eq 0 ]] || pod logs "$CID" 2>&1 | tail -n 40 >&2
        pod rm -f "$CID" >/dev/null 2>&1
    fi
    pod rmi -a -f >/dev/null 2>&1
    ip netns del "$NETNS" 2>/dev/null
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

ip netns add "$NETNS"
in_ns ip link set lo up
IMAGE=localhost/rnfsd-test:$$
RNFSD_BIN=$RNFSD_BIN bash scripts/container.sh "$IMAGE"

# start_container NAME EXPORT_DIR [podman run options...] -- [rnfsd arguments...]: runs the
# image detached in the test's namespace and waits until its NFS port answers.
start_container() {
    local name=$1 export=$2 opts=()
    shift 2
    while [[ $1 != -- ]]; do
        opts+=("$1")
        shift
    done
    shift
    # Joined rather than `ip netns exec podman`: that remounts /sys, and runc needs the cgroups.
    CID=$(pod run -d --name "$name" --network "ns:/run/netns/$NETNS" \
        -v "$export:/export" -v "$WORK/state-$name:/state" "${opts[@]}" "$IMAGE" "$@")
    in_ns bash -c "source scripts/lib.sh; wait_for_port 2049 100" ||
        die "the container $name did not start listening"
}

stop_container() {
    pod rm -f "$CID" >/dev/null
    CID=''
}

say "1. default capabilities plus DAC_READ_SEARCH: the conformance suite, podman restart as the restart"
mkdir -p "$WORK/export1" "$WORK/state-one"
chmod 0777 "$WORK/export1"
start_container one "$WORK/export1" --cap-add DAC_READ_SEARCH -- \
    --udp --export '/export *(rw,no_root_squash,insecure)'
pod logs "$CID" 2>&1 | grep -E '^(identity|file handles|portmapper)' >&2 || true
# The suite runs in the test's namespace through `ip netns exec`, whose mount namespace has
# another /sys; podman restarts the container from this script's namespaces.
cat >"$WORK/restart.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
cd "$ROOT"
source scripts/lib.sh
nsenter --mount=/proc/$$/ns/mnt --net=/proc/$$/ns/net -- podman $PODMAN_ARGS restart -t 10 one >/dev/null
wait_for_port 2049 100
SH
chmod +x "$WORK/restart.sh"
set +e
in_ns env PYTHONPATH="$ROOT/tests/conformance" python3 -m conformance "127.0.0.1:/export" \
    --port 2049 --mount-port 20048 --restart-cmd "$WORK/restart.sh" \
    --known-failures "$ROOT/tests/conformance/known-failures/rnfsd.txt" --json "$WORK/report.json"
status=$?
set -e
((status == 0)) || die "the conformance suite failed against the container (status $status)"
stop_container

say "2. --cap-drop ALL --cap-add DAC_READ_SEARCH,SETUID,SETGID: requests run as the caller"
mkdir -p "$WORK/export2" "$WORK/state-two"
chown 1000:1000 "$WORK/export2"
start_container two "$WORK/export2" --cap-drop ALL --cap-add DAC_READ_SEARCH,SETUID,SETGID -- \
    --export '/export *(rw,insecure)'
identity=$(pod logs "$CID" 2>&1 | grep '^identity: ')
[[ $identity == "identity: running as root: requests run with the caller's uid/gid" ]] ||
    die "unexpected identity line: $identity"
head -c 200000 /dev/urandom >"$WORK/data"
url="nfs://127.0.0.1/export/written?uid=1000&gid=1000&nfsport=2049&mountport=2049"
in_ns nfs-cp "$WORK/data" "$url" >/dev/null || die "nfs-cp to the container failed"
in_ns nfs-cp "$url" "$WORK/back" >/dev/null || die "nfs-cp from the container failed"
cmp "$WORK/data" "$WORK/back" || die "the data came back different"
owner=$(stat -c %u:%g "$WORK/export2/written")
[[ $owner == 1000:1000 ]] || die "the file is owned by $owner, not by the caller 1000:1000"
stop_container

say "3. a seccomp profile refusing name_to_handle_at: a clear error"
cat >"$WORK/seccomp.json" <<'JSON'
{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["name_to_handle_at"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
JSON
mkdir -p "$WORK/export3" "$WORK/state-three"
set +e
refused=$(pod run --rm --network none --cap-add DAC_READ_SEARCH --security-opt "seccomp=$WORK/seccomp.json" \
    -v "$WORK/export3:/export" -v "$WORK/state-three:/state" "$IMAGE" 2>&1)
status=$?
set -e
((status != 0)) || die "rnfsd started although name_to_handle_at is refused: $refused"
[[ $refused == *"name_to_handle_at is refused"*"seccomp profile"*"--security-opt seccomp="* ]] ||
    die "the error does not name the seccomp profile: $refused"
say "all container checks passed"
