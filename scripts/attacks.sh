#!/usr/bin/env bash
# Runs the attack tests (tests/attack_*.rs: what an attacker on the network or an unprivileged
# local user tries against rnfsd) inside a private network namespace this script creates, so
# every listener and every flood stays on that namespace's loopback and nothing can route out.
# Each test is marked #[ignore] so a plain `cargo test` does not run floods on the machine's own
# loopback; here they run with --ignored, one at a time (floods must not overlap).
#
# Needs root (unshare --net). Environment:
#   ATTACK_TESTS="attack_transport attack_identity"   only these test targets
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=attacks.sh
source scripts/lib.sh

need_root "unshare --net"

if [[ -n ${ATTACK_TESTS:-} ]]; then
    read -r -a targets <<<"$ATTACK_TESTS"
else
    targets=()
    for f in tests/attack_*.rs; do
        [[ -e $f ]] && targets+=("$(basename "$f" .rs)")
    done
fi
[[ ${#targets[@]} -gt 0 ]] || { say "no tests/attack_*.rs"; exit 0; }

args=()
for t in "${targets[@]}"; do args+=(--test "$t"); done
# Build outside the namespace (the registry is not reachable from inside), run inside it.
cargo test "${args[@]}" --no-run
exec unshare --net -- bash -c '
    set -euo pipefail
    ip link set lo up
    exec cargo test --offline "$@" -- --ignored --test-threads=1
' attacks "${args[@]}"
