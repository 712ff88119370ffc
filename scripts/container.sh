#!/usr/bin/env bash
# Builds the rnfsd container image without any registry: a `FROM scratch` image holding the
# release binary, the shared libraries `ldd` names and the dynamic loader, nothing else. The
# entrypoint is `rnfsd serve --state-dir /state`, and the default command exports `/export`;
# arguments given to `podman run IMAGE ...` replace that command (e.g. `--export '/export
# *(rw,insecure)'`).
#
# usage: scripts/container.sh [TAG]        (default TAG: rnfsd:latest)
#
# Environment:
#   RNFSD_BIN   binary to put in the image (default: build target/release/rnfsd with cargo)
#   ENGINE      podman or docker (default: podman if found, else docker); PODMAN_ARGS are
#               passed to it before `build` (e.g. a storage --root for tests)
set -euo pipefail

cd "$(dirname "$0")/.."
SCRIPT=container
source scripts/lib.sh

TAG=${1:-rnfsd:latest}
ENGINE=${ENGINE:-$(command -v podman || command -v docker || true)}
[[ -n $ENGINE ]] || die "needs podman or docker (Debian: apt-get install podman runc)"
if [[ -z ${RNFSD_BIN:-} ]]; then
    cargo build --release --quiet -p rnfsd
    RNFSD_BIN=target/release/rnfsd
fi
[[ -x $RNFSD_BIN ]] || die "$RNFSD_BIN not found"

STAGE=$(mktemp -d /tmp/rnfsd-image.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/rootfs/export" "$STAGE/rootfs/state" "$STAGE/rootfs/tmp"
chmod 1777 "$STAGE/rootfs/tmp"
cp "$RNFSD_BIN" "$STAGE/rootfs/rnfsd"
# The libraries and the loader, at the paths the binary asks for.
while read -r lib; do
    mkdir -p "$STAGE/rootfs$(dirname "$lib")"
    cp -L "$lib" "$STAGE/rootfs$lib"
done < <(ldd "$RNFSD_BIN" | grep -o '/[^ ]*' | sort -u)
cat >"$STAGE/Containerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
VOLUME ["/state"]
EXPOSE 2049/tcp 2049/udp 111/tcp 111/udp 20048/tcp 20048/udp
ENTRYPOINT ["/rnfsd", "serve", "--state-dir", "/state"]
CMD ["/export"]
EOF
# shellcheck disable=SC2086 # PODMAN_ARGS is a list of words
"$ENGINE" ${PODMAN_ARGS:-} build -q -t "$TAG" "$STAGE" >/dev/null
say "built $TAG from $RNFSD_BIN ($(du -sh "$STAGE/rootfs" | cut -f1))"
