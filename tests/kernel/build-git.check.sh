#!/bin/bash
# Host side of `build-git`: the program built in the guest runs on the host, and the repository
# the guest committed to is sound and at the same commit.
set -euo pipefail
P=$EXPORT/proj
fail() {
    echo "check: $*"
    exit 1
}
[[ $("$P/hello") == "hello from nfs: 45" ]] || fail "proj/hello prints '$("$P/hello")'"
/usr/bin/git -C "$P" fsck --strict --no-progress || fail "git fsck on the host"
[[ $(/usr/bin/git -C "$P" rev-parse HEAD) == $(cat "$OUT/head") ]] || fail "HEAD differs"
[[ -z $(/usr/bin/git -C "$P" status --porcelain) ]] || fail "git status on the host is not clean"
echo "check: the binary runs and the repository is sound on the host"
