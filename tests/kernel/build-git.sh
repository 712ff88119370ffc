#!/bin/bash
# vm-timeout: 300
# Developer work on the mount: a small C program built with make (and rebuilt incrementally,
# which needs correct mtimes), then git init/add/commit/status/diff/commit -a/fsck on the mount.
# The host-side check runs the binary and `git fsck`/`git log` in the export.
source "${BASH_SOURCE%/*}/lib.sh"

nfs_mount
sync_clock
P=$MNT/proj
mkdir "$P"
cd "$P"
cat >util.h <<'C'
int triple(int x);
C
cat >util.c <<'C'
#include "util.h"
int triple(int x) { return 3 * x; }
C
cat >hello.c <<'C'
#include <stdio.h>
#include "util.h"
int main(void) { printf("hello from nfs: %d\n", triple(14)); return 0; }
C
cat >Makefile <<'M'
hello: hello.o util.o
	$(CC) -o $@ hello.o util.o
%.o: %.c util.h
	$(CC) -O1 -c $<
clean:
	rm -f hello *.o
M

step "make"
make -s
expect_eq "$(./hello)" "hello from nfs: 42" "output of the built program"

step "make with nothing to do"
expect_eq "$(make -q && echo up-to-date)" up-to-date "make -q after a build"

step "incremental rebuild after touching util.c"
sleep 1.1
touch util.c
make >"$OUT/rebuild.log"
expect_eq "$(awk '/ -c / { print $NF }' "$OUT/rebuild.log")" util.c "sources make recompiled"
grep -q -- '-o hello' "$OUT/rebuild.log" || fail "make did not relink hello"

step "git init, add, commit"
G=(/usr/bin/git -c user.name=rnfsd -c user.email=vm@rnfsd.invalid -c init.defaultBranch=main)
"${G[@]}" init -q
printf 'hello\n*.o\n' >.gitignore
"${G[@]}" add -A
"${G[@]}" commit -q -m "first"
expect_eq "$("${G[@]}" status --porcelain)" "" "git status after the first commit"

step "git status and diff see a change; commit -a"
sed -i 's/triple(14)/triple(15)/' hello.c
expect_eq "$("${G[@]}" status --porcelain)" " M hello.c" "git status after an edit"
"${G[@]}" diff --stat | grep -q '1 file changed' || fail "git diff --stat"
"${G[@]}" commit -q -a -m "second"
expect_eq "$("${G[@]}" status --porcelain)" "" "git status after commit -a"
make -s
expect_eq "$(./hello)" "hello from nfs: 45" "output after the rebuild"

step "git fsck, gc"
"${G[@]}" fsck --strict --no-progress
"${G[@]}" gc -q
"${G[@]}" fsck --strict --no-progress
expect_eq "$("${G[@]}" log --format=%s | tr '\n' ' ')" "second first " "git log"
"${G[@]}" rev-parse HEAD >"$OUT/head"
cd /
nfs_umount
step "build-git done"
