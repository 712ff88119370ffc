#!/usr/bin/env bash
# Builds and runs rnfsd's coverage-guided fuzz targets (fuzz/, libFuzzer through cargo-fuzz, on
# the stable toolchain: no sanitizer, debug assertions on so overflows panic). Each target runs
# for FUZZ_SECONDS from its committed corpus (fuzz/corpus/TARGET) plus what earlier runs found
# (fuzz/target/corpus/TARGET, not committed). Fails on the first crash, leak of the memory limit
# or hang, and prints the input that caused it and how to replay it. Installs cargo-fuzz with
# `cargo install --locked` when it is missing.
#
# Usage: scripts/fuzz.sh [run|build|seeds|cmin] [TARGET...]
#   run (default)  build, then fuzz each TARGET (default: all) for FUZZ_SECONDS
#   build          build the targets only
#   seeds          regenerate the seed files of fuzz/corpus with the project's encoders
#   cmin           merge what runs found into fuzz/corpus/TARGET and minimize it (cargo fuzz cmin)
#
# Environment:
#   FUZZ_SECONDS=60   seconds per target (scripts/test.sh runs a 10 s smoke)
#   FUZZ_RSS_MB=1024  libFuzzer's -rss_limit_mb and -malloc_limit_mb: one input that allocates
#                     more than this fails the run
set -euo pipefail

cd "$(dirname "$0")/.."
SCRIPT=fuzz.sh
source scripts/lib.sh

MODE=run
case ${1:-} in
run | build | seeds | cmin)
    MODE=$1
    shift
    ;;
esac
ALL_TARGETS=(rpc_record nfs3_args mount_args nlm_args portmap_args exports_parse server)
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target $t (targets: ${ALL_TARGETS[*]})"
done
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
RSS_MB=${FUZZ_RSS_MB:-1024}

command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain and put ~/.cargo/bin on PATH"
command -v c++ >/dev/null || die "a C++ compiler is needed to build libFuzzer (apt-get install g++)"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz (cargo install --locked cargo-fuzz)"
    timeout 900 cargo install --locked cargo-fuzz
fi

# -s none: the sanitizers need nightly; coverage instrumentation and libFuzzer do not.
# -a: debug assertions and overflow checks, so an arithmetic overflow is a crash, not a wrap.
FUZZ_FLAGS=(-s none -a --fuzz-dir fuzz)

if [[ $MODE == seeds ]]; then
    cargo run --manifest-path fuzz/Cargo.toml --example seeds
    exit 0
fi

start=$(date +%s)
timeout 1800 cargo fuzz build "${FUZZ_FLAGS[@]}"
echo "fuzz.sh: built the fuzz targets in $(($(date +%s) - start)) s"
[[ $MODE == build ]] && exit 0

# The server target serves scratch exports; keep them out of the way and remove them after.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export RNFSD_FUZZ_DIR=$scratch

if [[ $MODE == cmin ]]; then
    for t in "${TARGETS[@]}"; do
        if [[ -d fuzz/target/corpus/$t ]]; then
            cp -n fuzz/target/corpus/"$t"/* fuzz/corpus/"$t"/ 2>/dev/null || true
        fi
        cargo fuzz cmin "${FUZZ_FLAGS[@]}" "$t" fuzz/corpus/"$t"
        echo "fuzz.sh: $t corpus: $(find fuzz/corpus/"$t" -type f | wc -l) files, $(du -sh fuzz/corpus/"$t" | cut -f1)"
    done
    exit 0
fi

for t in "${TARGETS[@]}"; do
    if [[ $t == server && $(id -u) -ne 0 ]]; then
        # The export root handles need CAP_DAC_READ_SEARCH, as for the server itself.
        echo "fuzz.sh: skipping target server: it needs root (run as root to fuzz the whole server)"
        continue
    fi
    work=fuzz/target/corpus/$t
    mkdir -p "$work" fuzz/artifacts/"$t"
    log=fuzz/target/$t.log
    echo "fuzz.sh: fuzzing $t for ${SECONDS_PER_TARGET} s (log: $log)"
    # The first corpus directory receives new inputs; the committed corpus is only read.
    if ! cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "$work" fuzz/corpus/"$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" \
        -timeout=30 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | cut -d' ' -f5 || true)
        [[ -n $artifact ]] || artifact=$(ls -t fuzz/artifacts/"$t"/* 2>/dev/null | head -n 1 || true)
        die "target $t failed; input: ${artifact:-(none written, see $log)}; replay: cargo fuzz run ${FUZZ_FLAGS[*]} $t ${artifact:-INPUT}"
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed "s/^/fuzz.sh: $t: /" || true
done
echo "fuzz.sh: ${#TARGETS[@]} targets fuzzed for ${SECONDS_PER_TARGET} s each; total $(($(date +%s) - start)) s"
