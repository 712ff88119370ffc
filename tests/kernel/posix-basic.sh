#!/bin/bash
# vm-timeout: 240
# Basic POSIX through the kernel client: create/write/read/append, writes at an offset, truncate
# (shrink, extend sparse, to zero), chmod (incl. setuid), chown as root (the export is
# no_root_squash), utimes and `touch -d` with sub-second times, timestamps that move (or not)
# with each operation, nlink of files and directories, and fileids stable across a remount.
# Leaves files and their expected attributes in $OUT for the host-side check.
source "${BASH_SOURCE%/*}/lib.sh"

nfs_mount
sync_clock
D=$MNT/posix
mkdir "$D"
cd "$D"

step "create, write, read, append"
printf 'hello\n' >a
expect_eq "$(cat a)" hello "content after create"
printf 'world\n' >>a
expect_eq "$(cat a)" $'hello\nworld' "content after append"
expect_eq "$(stat -c %s a)" 12 "size after append"
expect_eq "$(stat -c %h a)" 1 "nlink of a new file"

step "write at an offset"
printf 'J' | dd of=a bs=1 seek=6 conv=notrunc status=none
expect_eq "$(cat a)" $'hello\nJorld' "content after an overwrite at offset 6"
printf 'X' | dd of=gap bs=1 seek=100000 status=none
expect_eq "$(stat -c %s gap)" 100001 "size of a file written past its end"
expect_eq "$(head -c 100000 gap | tr -d '\0' | wc -c)" 0 "the hole reads as zeros"

step "truncate: shrink, extend, zero"
truncate -s 3 a
expect_eq "$(cat a)" hel "content after truncate to 3"
truncate -s 5000 a
expect_eq "$(stat -c %s a)" 5000 "size after extending truncate"
expect_eq "$(tail -c 4997 a | tr -d '\0' | wc -c)" 0 "extended part reads as zeros"
cp a "$OUT/a.expected"
: >z
printf 'abc' >z
truncate -s 0 z
expect_eq "$(stat -c %s z)" 0 "size after truncate to 0"

step "chmod"
for mode in 640 600 755 4755 2750 1777 0; do
    chmod "$mode" a
    expect_eq "$(stat -c %a a)" "$mode" "mode after chmod $mode"
done
chmod 644 a

step "chown as root (no_root_squash)"
touch owned
chown 1234:5678 owned
expect_eq "$(stat -c %u:%g owned)" 1234:5678 "owner after chown"
chown :4321 owned
expect_eq "$(stat -c %u:%g owned)" 1234:4321 "group after chgrp"
chown 0:0 owned
expect_eq "$(stat -c %u:%g owned)" 0:0 "owner after chown back to root"
chown 65534:65534 owned
# The new owner can be read back without the attribute cache: a fresh stat after drop_caches.
echo 3 >/proc/sys/vm/drop_caches
expect_eq "$(stat -c %u:%g owned)" 65534:65534 "owner after drop_caches"

step "utimes and touch -d (nanoseconds)"
touch -d '2001-02-03 04:05:06.123456789 UTC' t
expect_eq "$(stat -c %.9Y t)" 981173106.123456789 "mtime after touch -d"
expect_eq "$(stat -c %.9X t)" 981173106.123456789 "atime after touch -d"
touch -m -d '2010-01-01 00:00:00 UTC' t
expect_eq "$(stat -c %Y:%X t)" 1262304000:981173106 "mtime set alone keeps atime"
touch -a -d '1999-12-31 23:59:59 UTC' t
expect_eq "$(stat -c %Y:%X t)" 1262304000:946684799 "atime set alone keeps mtime"
touch -d '@0' epoch
expect_eq "$(stat -c %Y epoch)" 0 "mtime 0"
touch -d '@4294967295' y2106
expect_eq "$(stat -c %Y y2106)" 4294967295 "the largest NFSv3 time"
touch -d '2001-02-03 04:05:06 UTC' t
echo 3 >/proc/sys/vm/drop_caches
expect_eq "$(stat -c %Y t)" 981173106 "mtime after drop_caches"

step "timestamps move with the operations"
touch -d '2001-01-01 UTC' m
old_ctime=$(stat -c %Z m)
sleep 1.1
printf x >>m
now=$(date +%s)
mtime=$(stat -c %Y m)
((mtime >= now - 3 && mtime <= now + 3)) || fail "mtime after a write is $mtime, now is $now"
ctime=$(stat -c %Z m)
((ctime > old_ctime)) || fail "ctime did not move on write ($old_ctime -> $ctime)"
touch -d '2001-01-01 UTC' m
sleep 1.1
c1=$(stat -c %Z m)
chmod 600 m
echo 3 >/proc/sys/vm/drop_caches
expect_eq "$(stat -c %Y m)" 978307200 "chmod leaves mtime"
((c1 <= $(stat -c %Z m))) || fail "ctime went back on chmod"
dir_mtime=$(stat -c %.9Y .)
sleep 1.1
touch newentry
[[ $(stat -c %.9Y .) != "$dir_mtime" ]] || fail "directory mtime did not change on create"

step "nlink of directories"
mkdir -p sub/one sub/two sub/three
expect_eq "$(stat -c %h sub)" 5 "nlink of a directory with 3 subdirectories"
rmdir sub/three
expect_eq "$(stat -c %h sub)" 4 "nlink after rmdir"

step "fileids stable across a remount"
cd /
ls -i -d "$D" "$D"/* | sort -k2 >"$OUT/fileids.before"
stat -c '%n %a %u %g %s %Y' "$D"/* | sed "s|^$D/||" >"$OUT/attrs.guest"
nfs_umount
nfs_mount
ls -i -d "$D" "$D"/* | sort -k2 >"$OUT/fileids.after"
cmp "$OUT/fileids.before" "$OUT/fileids.after" ||
    fail "fileids changed across the remount: $(diff "$OUT/fileids.before" "$OUT/fileids.after")"
sed "s|$D|posix|" "$OUT/fileids.after" >"$OUT/fileids"
nfs_umount
step "posix-basic done"
