#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit and integration tests (real binaries on
# ephemeral loopback ports), then interop tests with real third-party clients, which this
# script installs from PyPI and npm on first use, browser tests of nsqadmin's web UI in headless
# Chromium (installed from Debian's packages when missing), and a few seconds of every fuzz
# target (needs a nightly toolchain; skipped without one).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== build"
cargo build --workspace --bins --quiet
echo "== unit and integration tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
    # nextest does not run doctests.
    cargo test --workspace --doc --quiet
else
    cargo test --workspace --no-fail-fast
fi
echo "== interop tests"
NSQD_BIN="$PWD/target/debug/nsqd" scripts/interop.sh
echo "== browser tests"
scripts/browser-test.sh
echo "== fuzz smoke"
scripts/fuzz-smoke.sh
