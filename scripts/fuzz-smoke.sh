#!/usr/bin/env bash
# Builds every fuzz target and runs each for a few seconds over its committed corpus (and any
# saved regression inputs) plus whatever new inputs it finds in that time. Fails on any crash.
# Needs a nightly toolchain; without one it says so and passes.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET="${FUZZ_SMOKE_SECONDS:-3}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz smoke: skipped: no nightly toolchain"
    exit 0
fi

cargo +nightly fuzz build

# New inputs land in a scratch directory so the committed corpus stays as it is.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in $(cargo +nightly fuzz list); do
    dirs=("$scratch/$target")
    mkdir -p "$scratch/$target"
    [ -d "corpus/$target" ] && dirs+=("corpus/$target")
    [ -d "regressions/$target" ] && dirs+=("regressions/$target")
    echo "== fuzz $target (${SECONDS_PER_TARGET}s)"
    if ! cargo +nightly fuzz run "$target" "${dirs[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1; then
        tail -n 40 "$scratch/$target.log"
        failed+=("$target")
    else
        grep -E '^stat::number_of_executed_units' "$scratch/$target.log" || true
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke: crashes in: ${failed[*]} (inputs saved under fuzz/artifacts/)"
    exit 1
fi
echo "fuzz smoke: all targets ran clean"
