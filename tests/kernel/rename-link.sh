#!/bin/bash
# vm-timeout: 240
# Namespace operations through the kernel client: rename over an existing file, across
# directories, of a directory whose files are open (they stay usable), renames that must fail;
# hard links and nlink (also of an unlinked open file); symlinks absolute, relative and dangling;
# mkfifo and mknod; `rm -rf` of a 40-level deep tree. The host-side check compares the result.
source "${BASH_SOURCE%/*}/lib.sh"

nfs_mount
D=$MNT/names
mkdir "$D"
cd "$D"

step "rename over an existing file"
printf old >target
printf new >source
ino=$(stat -c %i source)
mv -f source target
expect_eq "$(cat target)" new "content of the renamed file"
expect_eq "$(stat -c %i target)" "$ino" "fileid follows the renamed file"
[[ ! -e source ]] || fail "source still exists after rename"

step "rename across directories"
mkdir -p d1/inner d2
printf moved >d1/file
mv d1/file d2/file
[[ ! -e d1/file && $(cat d2/file) == moved ]] || fail "cross-directory rename"
mv d1/inner d2/inner
expect_eq "$(stat -c %h d1)" 2 "nlink of the directory a subdirectory left"
expect_eq "$(stat -c %h d2)" 3 "nlink of the directory a subdirectory entered"
mv d2/inner d2/inner-renamed
[[ -d d2/inner-renamed ]] || fail "rename of a directory in place"

step "rename of a directory with open files inside"
mkdir busy
printf 'first\n' >busy/log
exec 7>>busy/log 8<busy/log
mv busy busy-renamed
printf 'second\n' >&7
read -r line <&8
expect_eq "$line" first "read through a descriptor opened before the rename"
exec 7>&- 8<&-
expect_eq "$(cat busy-renamed/log)" $'first\nsecond' "write through a descriptor opened before the rename"

step "renames that must fail"
mkdir -p full/x empty
if mv -T empty full 2>/dev/null; then fail "rename over a non-empty directory succeeded"; fi
if mv -T target full 2>/dev/null; then fail "rename of a file over a directory succeeded"; fi
if mv full full/x/inside 2>/dev/null; then fail "rename of a directory into itself succeeded"; fi
mv -T empty full/x
[[ -d full/x && ! -e empty ]] || fail "rename of a directory over an empty one"

step "hard links and nlink"
printf linked >h1
ln h1 h2
ln h1 d2/h3
expect_eq "$(stat -c %h h1)" 3 "nlink after two links"
expect_eq "$(stat -c %i h2)" "$(stat -c %i h1)" "fileid of a hard link"
rm h1
expect_eq "$(stat -c %h h2)" 2 "nlink after unlinking one name"
expect_eq "$(cat d2/h3)" linked "content through the remaining link"
if ln d1 dirlink 2>/dev/null; then fail "hard link to a directory succeeded"; fi
if ln h2 d2/h3 2>/dev/null; then fail "link over an existing name succeeded"; fi

step "unlink of an open file"
printf 'still here\n' >open-unlinked
exec 9<open-unlinked
rm open-unlinked
[[ ! -e open-unlinked ]] || fail "unlinked file still visible"
read -r line <&9
expect_eq "$line" "still here" "read from an open unlinked file"
exec 9<&-

step "symlinks: absolute, relative, dangling"
ln -s "$D/d2/file" abs
ln -s d2/file rel
ln -s nowhere/at/all dangling
ln -s ../names/d2 dirlink
expect_eq "$(readlink abs)" "$D/d2/file" "target of an absolute symlink"
expect_eq "$(readlink rel)" d2/file "target of a relative symlink"
expect_eq "$(cat abs)" moved "read through an absolute symlink"
expect_eq "$(cat rel)" moved "read through a relative symlink"
expect_eq "$(cat dirlink/file)" moved "lookup through a directory symlink"
[[ -L dangling && ! -e dangling ]] || fail "dangling symlink"
expect_eq "$(stat -c %F dangling)" "symbolic link" "type of a dangling symlink"
long=$(printf 'x%.0s' $(seq 1000))
ln -s "$long" longlink
expect_eq "$(readlink longlink)" "$long" "1000-byte symlink target"
mv rel rel-renamed
expect_eq "$(readlink rel-renamed)" d2/file "renamed symlink keeps its target"
ln rel-renamed rel-hardlink
expect_eq "$(stat -c %h rel-renamed)" 2 "nlink of a hard-linked symlink"

step "mkfifo and mknod"
mkfifo -m 0620 fifo
expect_eq "$(stat -c %F:%a fifo)" "fifo:620" "type and mode of a fifo"
mknod chr c 1 3
expect_eq "$(stat -c '%F %t %T' chr)" "character special file 1 3" "character device"
mknod blk b 7 1
expect_eq "$(stat -c '%F %t %T' blk)" "block special file 7 1" "block device"
# A fifo on NFS is a local pipe in the client: it works across processes.
(printf 'through the fifo\n' >fifo) &
read -r line <fifo
wait
expect_eq "$line" "through the fifo" "data through a fifo on the mount"

step "rm -rf of a deep tree"
deep=deep
for i in $(seq 40); do deep+=/level$i; done
mkdir -p "$deep"
for dir in deep deep/level1/level2 "$deep"; do
    printf leaf >"$dir/leaf"
    ln -s leaf "$dir/leaflink"
done
rm -rf deep
[[ ! -e deep ]] || fail "deep tree still present after rm -rf"

step "listing for the host"
cd /
(cd "$D" && find . -printf '%p %y %n %s %l\n' | sort) >"$OUT/tree.guest"
nfs_umount
step "rename-link done"
