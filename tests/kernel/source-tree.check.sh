#!/bin/bash
# Host side of `source-tree`: both copies on the export (cp -a and the tar round trip) have
# exactly the files, contents and symlinks the guest generated.
set -euo pipefail
fail() {
    echo "check: $*"
    exit 1
}
for copy in tree untarred/tree; do
    (cd "$EXPORT/$copy" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$OUT/manifest.host"
    cmp -s "$OUT/manifest" "$OUT/manifest.host" ||
        fail "$copy: manifest differs: $(diff "$OUT/manifest" "$OUT/manifest.host" | head -4)"
    links=$(find "$EXPORT/$copy" -type l -name link-to-f0 -lname f0.c | wc -l)
    [[ $links == 200 ]] || fail "$copy: $links of 200 symlinks point at f0.c"
done
echo "check: both copies match the guest's manifest ($(wc -l <"$OUT/manifest") files)"
