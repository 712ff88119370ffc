#!/bin/bash
# vm-timeout: 600
# A 20,000-entry directory: created with few processes (xargs touch), listed by READDIR (`ls -f`)
# and READDIRPLUS (`ls -l`), each time after dropping the client's caches so the listing comes
# from the server, every name exactly once; then removed entirely (`rm`, and `find -delete` for
# a second pass through subdirectories).
source "${BASH_SOURCE%/*}/lib.sh"

N=20000
nfs_mount
D=$MNT/big
mkdir "$D"
cd "$D"
# Names of 48 bytes spread the listing over many READDIR replies.
seq -f 'entry-%05g-with-a-name-long-enough-to-need-pages' "$N" | sort >"$OUT/expected"

step "create $N files"
xargs touch <"$OUT/expected"

step "ls -f (READDIR) after drop_caches"
echo 3 >/proc/sys/vm/drop_caches
ls -f | grep -v '^\.\.\?$' | sort >"$OUT/ls-f"
dups=$(uniq -d "$OUT/ls-f" | wc -l)
expect_eq "$dups" 0 "names listed twice by ls -f"
cmp -s "$OUT/ls-f" "$OUT/expected" ||
    fail "ls -f lists $(wc -l <"$OUT/ls-f") names; diff: $(diff "$OUT/expected" "$OUT/ls-f" | head -5)"

step "ls -l (READDIRPLUS) after drop_caches"
echo 3 >/proc/sys/vm/drop_caches
ls -l --time-style=+%s >"$OUT/ls-l"
awk 'NR > 1 { print $NF }' "$OUT/ls-l" | sort >"$OUT/ls-l-names"
expect_eq "$(uniq -d "$OUT/ls-l-names" | wc -l)" 0 "names listed twice by ls -l"
cmp -s "$OUT/ls-l-names" "$OUT/expected" || fail "ls -l lists $(wc -l <"$OUT/ls-l-names") names"
bad=$(awk 'NR > 1 && ($1 != "-rw-r--r--" || $2 != 1 || $5 != 0)' "$OUT/ls-l" | head -3)
[[ -z $bad ]] || fail "unexpected attributes in ls -l: $bad"

step "rm of all $N"
# Each glob is well under ARG_MAX; rm runs in one or two processes.
rm -f -- entry-*
echo 3 >/proc/sys/vm/drop_caches
left=$(ls -f | grep -cv '^\.\.\?$' || true)
expect_eq "$left" 0 "entries left after rm"

step "mkdir of 2,000 subdirectories with a file each, find | wc -l, find -delete"
seq -f 'dir-%04g' 2000 | xargs mkdir
seq -f 'dir-%04g/file' 2000 | xargs touch
echo 3 >/proc/sys/vm/drop_caches
expect_eq "$(find . -mindepth 1 | wc -l)" 4000 "entries found by find"
find . -mindepth 1 -delete
expect_eq "$(find . -mindepth 1 | wc -l)" 0 "entries left after find -delete"
cd /
nfs_umount
step "bigdir done"
