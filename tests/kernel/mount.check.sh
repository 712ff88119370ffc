#!/bin/bash
# Host side of the `mount` scenario: every file the guest wrote through each mount path is in the
# export with the content it wrote.
set -euo pipefail
for tag in portmapper explicit-ports mount-on-nfs-port direct-mount2 version-negotiated; do
    f=$EXPORT/written-by-$tag
    [[ -f $f ]] || { echo "check: $f is missing"; exit 1; }
    [[ $(cat "$f") == "mounted via $tag" ]] || { echo "check: $f holds '$(cat "$f")'"; exit 1; }
done
echo "check: all 5 files present with their content"
