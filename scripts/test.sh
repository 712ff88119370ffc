#!/usr/bin/env bash
# Runs every test of rnfsd: formatting, lints, the Rust test suites, a fuzzing smoke run
# (scripts/fuzz.sh, FUZZ_SECONDS per target, default 10), then a release build and the
# interoperability checks with real NFS clients (scripts/interop.sh), the conformance suite
# (scripts/conformance.sh), as root a bench smoke run, the writeback-error checks
# (scripts/writeback-faults.sh) and the container checks (scripts/container-test.sh, podman), and
# the kernel-client scenarios in a qemu guest (scripts/vm).
# Installs the Debian packages those clients and tools come from when they are missing and this
# runs as root with apt.
#
# Environment:
#   SKIP_INTEROP=1   stop after `cargo test` (no release build, no real clients)
set -euo pipefail

cd "$(dirname "$0")/.."
SCRIPT=test.sh
source scripts/lib.sh

section() { printf '\n==== %s ====\n' "$*"; }

section "toolchain"
command -v cargo >/dev/null ||
    die "cargo not found: install a Rust toolchain (rustup, https://rustup.rs) and put ~/.cargo/bin on PATH"
cargo --version
cargo fmt --version >/dev/null 2>&1 || die "rustfmt is missing: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || die "clippy is missing: rustup component add clippy"

CLIENT_TOOLS=(rpcinfo showmount nfs-cp nfs-ls strace mkfs.ext4 mkfs.btrfs mkfs.xfs bindfs)
missing_tools() {
    local t
    for t in "${CLIENT_TOOLS[@]}"; do
        command -v "$t" >/dev/null || echo "$t"
    done
}

if [[ ${SKIP_INTEROP:-0} != 1 ]]; then
    section "NFS client tools (nfs-common, libnfs-utils) and test tools (strace, e2fsprogs, btrfs-progs, xfsprogs, bindfs)"
    if [[ -n $(missing_tools) ]]; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            export DEBIAN_FRONTEND=noninteractive
            timeout 600 apt-get update -q
            timeout 900 apt-get install -y -q --no-install-recommends nfs-common libnfs-utils rpcbind strace e2fsprogs btrfs-progs xfsprogs bindfs
        else
            die "missing $(missing_tools | tr '\n' ' '): install nfs-common, libnfs-utils, strace, e2fsprogs, btrfs-progs, xfsprogs and bindfs (needs root and apt), or run with SKIP_INTEROP=1"
        fi
    fi
    [[ -z $(missing_tools) ]] || die "still missing after install: $(missing_tools | tr '\n' ' ')"
    echo "found: ${CLIENT_TOOLS[*]}"
fi

section "cargo fmt --all --check"
cargo fmt --all --check

section "cargo clippy --workspace --all-targets -- -D warnings"
timeout 1800 cargo clippy --workspace --all-targets -- -D warnings

section "cargo test --workspace"
timeout 2400 cargo test --workspace

if [[ ${SKIP_INTEROP:-0} == 1 ]]; then
    section "interop skipped (SKIP_INTEROP=1)"
    exit 0
fi

section "scripts/fuzz.sh (every fuzz target, ${FUZZ_SECONDS:-10} s each)"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} timeout 900 bash scripts/fuzz.sh

section "cargo build --release -p rnfsd -p rnfsd-faultproxy -p rnfsd-bench"
timeout 1800 cargo build --release -p rnfsd -p rnfsd-faultproxy -p rnfsd-bench

section "scripts/interop.sh (rpcinfo, showmount, libnfs nfs-cp/nfs-ls)"
RNFSD_BIN=target/release/rnfsd timeout 1200 bash scripts/interop.sh

section "scripts/conformance.sh (the NFSv3 conformance suite, tests/conformance)"
RNFSD_BIN=target/release/rnfsd timeout 900 bash scripts/conformance.sh
if [[ -d /dev/shm && -w /dev/shm ]]; then
    section "scripts/conformance.sh again with the exports on tmpfs (memory-backed execution paths)"
    CONFORMANCE_TMP=/dev/shm RNFSD_BIN=target/release/rnfsd timeout 900 bash scripts/conformance.sh
fi

if [[ $(id -u) -eq 0 ]]; then
    section "scripts/attacks.sh (attack tests, tests/attack_*.rs, in a private network namespace)"
    timeout 900 bash scripts/attacks.sh
    section "scripts/bench.sh smoke run (every workload, tiny sizes, data verified; not a measurement)"
    BENCH_SMOKE=1 timeout 600 bash scripts/bench.sh --rounds 1 --seconds 0.3
    section "scripts/writeback-faults.sh (sync calls per stability; COMMIT and stable WRITEs on a failing device)"
    RNFSD_BIN=target/release/rnfsd timeout 600 bash scripts/writeback-faults.sh
    section "scripts/container-test.sh (the image in podman: conformance with podman restart, identity capabilities only)"
    RNFSD_BIN=target/release/rnfsd timeout 900 bash scripts/container-test.sh
fi

section "scripts/vm/run-scenario.sh (the Linux kernel NFS client in a qemu guest, tests/kernel)"
if [[ $(id -u) -eq 0 ]]; then
    RNFSD_BIN=target/release/rnfsd timeout 2700 bash scripts/vm/run-scenario.sh
else
    die "the kernel-client scenarios need root (unshare --net, open_by_handle_at): run as root, or SKIP_INTEROP=1 for the Rust tests only"
fi

section "all tests passed"
