#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit and integration tests (real binaries on
# ephemeral loopback ports), then interop tests with real third-party clients, which this
# script installs from PyPI and npm on first use, browser tests of nsqadmin's web UI in headless
# Chromium (installed from Debian's packages when missing, as is promtool for the /metrics
# checks), and a few seconds of every fuzz target (needs a nightly toolchain; skipped without
# one).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== build"
cargo build --workspace --bins --quiet
# The /metrics tests validate every daemon's page with promtool (Debian's `prometheus` package).
if ! command -v promtool >/dev/null 2>&1 && [ -z "${PROMTOOL:-}" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "== installing promtool (apt-get install prometheus)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "promtool not found: install Debian's 'prometheus' package or set PROMTOOL" >&2
        exit 1
    fi
fi
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
