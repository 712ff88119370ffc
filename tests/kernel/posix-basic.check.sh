#!/bin/bash
# Host side of `posix-basic`: the guest's view matches the export byte for byte and attribute for
# attribute: contents, mode, owner, size, mtime, and fileid = the host's inode number.
set -euo pipefail
D=$EXPORT/posix
fail() {
    echo "check: $*"
    exit 1
}
cmp "$D/a" "$OUT/a.expected" || fail "posix/a differs from what the guest read"
[[ $(tail -c 1 "$D/gap") == X ]] || fail "posix/gap does not end with X"
(cd "$D" && stat -c '%n %a %u %g %s %Y' -- *) >"$OUT/attrs.host"
diff "$OUT/attrs.guest" "$OUT/attrs.host" || fail "attributes differ (guest < > host)"
while read -r ino path; do
    host=$(stat -c %i "$EXPORT/$path")
    [[ $ino == "$host" ]] || fail "fileid of $path is $ino in the guest, inode $host on the host"
done <"$OUT/fileids"
echo "check: contents, attributes and fileids agree"
