#!/usr/bin/env bash
# The nsqadmin web UI against a large fake cluster (10 nsqd x 1,000 topics x 5 channels x 1
# client by default), in headless Chromium: how long each page takes to show its data, what each
# automatic refresh costs the browser's main thread and how long key presses wait meanwhile.
# See crates/nsqadmin/tests/browser/scale.js for the figures and the SCALE_* settings.
#
# Usage: scripts/browser-scale.sh
#   FAKE_CLUSTER_BIN, NSQADMIN_BIN   binaries (default target/release/<name>; build them first:
#                                    cargo build --release -p nsq-bench -p nsqadmin)
#   SCALE_STATIC_DIR=crates/nsqadmin/assets/static   try the UI as it is in the work tree,
#                                    without rebuilding nsqadmin
#
# Prints a table per page; details go to target/browser-artifacts/scale.json and screenshots
# to target/browser-artifacts/scale-*.png. Takes about five minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEST_DIR="$ROOT/crates/nsqadmin/tests/browser"
cd "$ROOT"

for bin in "${FAKE_CLUSTER_BIN:-target/release/fake_cluster}" "${NSQADMIN_BIN:-target/release/nsqadmin}"; do
  if [ ! -x "$bin" ]; then
    echo "browser-scale: $bin is missing; build with 'cargo build --release -p nsq-bench -p nsqadmin'" >&2
    exit 1
  fi
done
if [ ! -d "$TEST_DIR/node_modules/playwright-core" ]; then
  echo "browser-scale: installing Node dependencies (npm ci) in $TEST_DIR"
  (cd "$TEST_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ]; then
  echo "browser-scale: Chromium not found at ${CHROMIUM_BIN:-/usr/bin/chromium} (scripts/browser-test.sh installs it)" >&2
  exit 1
fi

exec node "$TEST_DIR/scale.js"
