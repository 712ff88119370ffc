#!/bin/bash
# Host side of `rename-link`: the tree the guest listed (names, types, link counts, sizes, symlink
# targets) is the tree in the export, and the renamed files hold what the guest wrote.
set -euo pipefail
D=$EXPORT/names
fail() {
    echo "check: $*"
    exit 1
}
(cd "$D" && find . -printf '%p %y %n %s %l\n' | sort) >"$OUT/tree.host"
diff "$OUT/tree.guest" "$OUT/tree.host" || fail "tree differs (guest < > host)"
[[ $(cat "$D/target") == new ]] || fail "names/target"
[[ $(cat "$D/busy-renamed/log") == $'first\nsecond' ]] || fail "names/busy-renamed/log"
[[ $(stat -c %i "$D/h2") == $(stat -c %i "$D/d2/h3") ]] || fail "h2 and d2/h3 are not one inode"
# The guest wrote its own absolute path (under its mount point) into the symlink.
[[ $(readlink "$D/abs") == */names/d2/file ]] || fail "names/abs target: $(readlink "$D/abs")"
[[ -p $D/fifo && -c $D/chr && -b $D/blk ]] || fail "special files have the wrong types"
[[ ! -e $D/deep ]] || fail "names/deep still exists"
echo "check: tree, contents, links and special files agree"
