#!/usr/bin/env bash
# Stable writes, COMMIT and writeback errors against a filesystem whose writeback really fails
# (tests/writeback_faults.py has the checks). Needs root: it loop-mounts, in a private mount
# namespace that vanishes with it, a sparse 256 MiB ext4 image kept on a 16 MiB tmpfs, so ext4
# accepts writes into the page cache that the device under it can no longer store, and rnfsd
# exports that ext4. strace counts rnfsd's fsync/fdatasync calls while the filesystem is healthy.
#
# usage: scripts/writeback-faults.sh
# Environment: RNFSD_BIN (default: build target/release/rnfsd).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCRIPT=writeback-faults
source "$ROOT/scripts/lib.sh"
need_root "loop device, mount namespace"

if [[ ${1:-} != --in-namespace ]]; then
    for tool in strace mkfs.ext4 losetup unshare python3; do
        command -v "$tool" >/dev/null || die "needs $tool (scripts/test.sh installs it)"
    done
    if [[ -z ${RNFSD_BIN:-} ]]; then
        cargo build --release --quiet -p rnfsd
        RNFSD_BIN=$ROOT/target/release/rnfsd
    fi
    export RNFSD_BIN
    exec timeout -k 10 300 unshare --mount --propagation private -- "$0" --in-namespace
fi

WORK=$(mktemp -d /tmp/rnfsd-writeback.XXXXXX)
# Every step runs, whatever the ones before it did.
cleanup() {
    set +e
    umount "$WORK/backing/fs" 2>/dev/null || true
    umount "$WORK/backing" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir "$WORK/backing"
mount -t tmpfs -o size=16m rnfsd-writeback "$WORK/backing"
truncate -s 256M "$WORK/backing/ext4.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/backing/ext4.img"
mkdir "$WORK/backing/fs"
# errors=continue: the device errors must reach rnfsd's syncs, not turn the filesystem read-only.
mount -o loop,errors=continue "$WORK/backing/ext4.img" "$WORK/backing/fs"
mkdir "$WORK/backing/fs/export"
say "ext4 of $(df --output=size -h "$WORK/backing/fs" | tail -1 | tr -d ' ') on a tmpfs of 16M"
python3 "$ROOT/tests/writeback_faults.py" --rnfsd "$RNFSD_BIN" --export "$WORK/backing/fs/export" \
    --work "$WORK" --fill-mib 64
