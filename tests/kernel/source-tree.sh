#!/bin/bash
# vm-timeout: 600
# A source tree: 5,000 files in 200 directories (plus symlinks, modes and sub-second mtimes)
# generated in the guest's tmpfs, `cp -a` onto the mount, `diff -r` against the original, the
# attributes cp -a preserves compared, a `tar c | tar x` round trip on the mount, `find | wc -l`.
# The host-side check compares SHA-256 manifests of both copies with the guest's.
source "${BASH_SOURCE%/*}/lib.sh"

SRC=/tmp/src
DIRS=200
PER_DIR=25

step "generate $((DIRS * PER_DIR)) files in $DIRS directories in tmpfs"
# One awk process writes every file: an exec costs ~0.1 s under TCG.
awk -v src="$SRC" -v n="$DIRS" 'BEGIN { for (d = 0; d < n; d++) print src "/pkg" int(d / 20) "/mod" d }' >/tmp/dirs
xargs mkdir -p </tmp/dirs
awk -v per="$PER_DIR" '{
    d = NR - 1
    for (f = 0; f < per; f++) {
        n = d * per + f
        path = $0 "/f" f ".c"
        printf "/* file %d of the generated tree */\n", n > path
        for (l = 0; l < n % 37; l++) printf "int v%d_%d = %d;\n", n, l, n * l > path
        close(path)
    }
}' /tmp/dirs
# perl-base is Essential in Debian, so it is in the host root.
perl -nle 'symlink("f0.c", "$_/link-to-f0") or die "symlink in $_: $!"' /tmp/dirs
find "$SRC" -name 'f1.c' -print0 | xargs -0 chmod 0755
find "$SRC" -name 'f2.c' -print0 | xargs -0 touch -d '2003-04-05 06:07:08.123456789'
expect_eq "$(find "$SRC" -type f | wc -l)" $((DIRS * PER_DIR)) "files generated"

nfs_mount
sync_clock
attrs() { (cd "$1" && find . -printf '%p %y %m %s %T@ %l\n' | sort); }

step "cp -a onto the mount"
cp -a "$SRC" "$MNT/tree"
step "diff -r against the original"
diff -r "$SRC" "$MNT/tree" || fail "diff -r after cp -a"
step "attributes preserved by cp -a"
echo 3 >/proc/sys/vm/drop_caches
attrs "$SRC" >"$OUT/attrs.src"
attrs "$MNT/tree" >"$OUT/attrs.tree"
# Directory mtimes change as entries are added after cp -a set them: compare files and links.
grep -v ' d ' "$OUT/attrs.src" >"$OUT/attrs.src.nodirs"
grep -v ' d ' "$OUT/attrs.tree" >"$OUT/attrs.tree.nodirs"
diff "$OUT/attrs.src.nodirs" "$OUT/attrs.tree.nodirs" >"$OUT/attrs.diff" ||
    fail "attributes differ after cp -a: $(head -4 "$OUT/attrs.diff")"

step "tar c | tar x round trip on the mount"
mkdir "$MNT/untarred"
tar -C "$MNT" -cf - tree | tar -C "$MNT/untarred" -xpf -
diff -r "$SRC" "$MNT/untarred/tree" || fail "diff -r after the tar round trip"

step "find | wc -l"
expect_eq "$(find "$MNT/tree" | wc -l)" "$(find "$SRC" | wc -l)" "entries found on the mount"

step "manifest for the host"
(cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$OUT/manifest"
nfs_umount
step "source-tree done"
