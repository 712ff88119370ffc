#!/bin/bash
# Host side of `bigfile`: the file in the export has the SHA-256 the guest computed after its last
# change, and its first quarter is the first quarter of what the guest wrote.
set -euo pipefail
F=$EXPORT/big.bin
fail() {
    echo "check: $*"
    exit 1
}
[[ $(sha256sum <"$F" | cut -d' ' -f1) == $(cat "$OUT/sum.truncated") ]] ||
    fail "SHA-256 of big.bin on the host differs from the guest's"
echo "check: big.bin ($(stat -c %s "$F") bytes) has the guest's SHA-256"
