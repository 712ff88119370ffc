#!/bin/bash
# vm-timeout: 600
# A large file (BIGFILE_MIB, default 1024 MiB) of random bytes written with `dd conv=fsync`, read
# back after the client's caches are dropped, with equal SHA-256 sums on the way in, on the way
# out, and (in bigfile.check.sh) on the host; then an overwrite in the middle, and a truncate.
source "${BASH_SOURCE%/*}/lib.sh"

MIB=${BIGFILE_MIB:-1024}
nfs_mount
F=$MNT/big.bin

step "write $MIB MiB with dd conv=fsync"
head -c "${MIB}M" /dev/urandom | tee >(sha256sum | cut -d' ' -f1 >"$OUT/sum.written") |
    dd of="$F" bs=1M iflag=fullblock conv=fsync status=none
wait
t_written=$(elapsed)
expect_eq "$(stat -c %s "$F")" $((MIB * 1048576)) "size after the write"

step "read back after drop_caches (write took ${t_written}s)"
echo 3 >/proc/sys/vm/drop_caches
dd if="$F" bs=1M status=none | sha256sum | cut -d' ' -f1 >"$OUT/sum.read"
expect_eq "$(cat "$OUT/sum.read")" "$(cat "$OUT/sum.written")" "SHA-256 read back"

step "overwrite 1 MiB in the middle, fsync, read back"
head -c 1M /dev/urandom >/tmp/patch
dd if=/tmp/patch of="$F" bs=1M seek=$((MIB / 2)) conv=notrunc,fsync status=none
echo 3 >/proc/sys/vm/drop_caches
cmp <(dd if="$F" bs=1M skip=$((MIB / 2)) count=1 status=none) /tmp/patch ||
    fail "the overwritten MiB does not read back"
sha256sum <"$F" | cut -d' ' -f1 >"$OUT/sum.final"
cp /tmp/patch "$OUT/patch"

step "truncate to $((MIB / 4)) MiB"
truncate -s $((MIB / 4))M "$F"
echo 3 >/proc/sys/vm/drop_caches
expect_eq "$(stat -c %s "$F")" $((MIB / 4 * 1048576)) "size after truncate"
sha256sum <"$F" | cut -d' ' -f1 >"$OUT/sum.truncated"
nfs_umount
step "bigfile done"
