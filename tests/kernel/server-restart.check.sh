#!/bin/bash
# Host side of `server-restart`: the copy made across the restarts is intact in the export.
set -euo pipefail
sum=$(sha256sum <"$EXPORT/work/copy" | cut -d' ' -f1)
[[ $sum == $(cat "$OUT/sum.payload") ]] || { echo "check: work/copy on the host has SHA-256 $sum"; exit 1; }
echo "check: work/copy is intact on the host"
