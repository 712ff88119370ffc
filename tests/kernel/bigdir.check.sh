#!/bin/bash
# Host side of `bigdir`: the directory the guest filled and emptied is empty on the host too.
set -euo pipefail
left=$(find "$EXPORT/big" -mindepth 1 | wc -l)
[[ $left == 0 ]] || { echo "check: $left entries left in big/ on the host"; exit 1; }
echo "check: big/ is empty on the host"
