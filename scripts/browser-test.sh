#!/usr/bin/env bash
# Browser tests of the nsqadmin web UI: a real cluster (nsqlookupd, two nsqd,
# nsqadmin) on 127.0.0.1 ephemeral ports, driven through headless Chromium.
#
# Usage: scripts/browser-test.sh [node --test args...]
#   NSQD_BIN, NSQLOOKUPD_BIN, NSQADMIN_BIN   binaries (default target/debug/<name>; build them first:
#                                            cargo build -p nsqd -p nsqlookupd -p nsqadmin)
#   CHROMIUM_BIN                             browser (default /usr/bin/chromium)
#   BROWSER_ARTIFACTS                        screenshot folder (default target/browser-artifacts)
#   BROWSER_TEST_LOG=1                       copy the daemons' stderr to this terminal
#
# Setup is idempotent: Chromium comes from Debian's `chromium` package (apt-get,
# only when the browser is missing), the Node dependencies (playwright-core,
# pinned by package-lock.json) are installed with `npm ci` only when the lock
# file or the Node version changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TEST_DIR="$ROOT/crates/nsqadmin/tests/browser"

abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
NSQD_BIN="$(abs "${NSQD_BIN:-target/debug/nsqd}")"
NSQLOOKUPD_BIN="$(abs "${NSQLOOKUPD_BIN:-target/debug/nsqlookupd}")"
NSQADMIN_BIN="$(abs "${NSQADMIN_BIN:-target/debug/nsqadmin}")"
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
export NSQD_BIN NSQLOOKUPD_BIN NSQADMIN_BIN CHROMIUM_BIN

for bin in "$NSQD_BIN" "$NSQLOOKUPD_BIN" "$NSQADMIN_BIN"; do
  if [ ! -x "$bin" ]; then
    echo "browser-test: binary not found or not executable: $bin" >&2
    echo "browser-test: build with 'cargo build -p nsqd -p nsqlookupd -p nsqadmin' or set NSQD_BIN/NSQLOOKUPD_BIN/NSQADMIN_BIN" >&2
    exit 1
  fi
done

ensure_chromium() {
  [ -x "$CHROMIUM_BIN" ] && return 0
  if [ "$CHROMIUM_BIN" = /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "browser-test: installing chromium (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  if [ ! -x "$CHROMIUM_BIN" ]; then
    echo "browser-test: Chromium not found at $CHROMIUM_BIN; install Debian's 'chromium' package or set CHROMIUM_BIN" >&2
    exit 1
  fi
}

ensure_node_deps() {
  command -v node >/dev/null 2>&1 || { echo "browser-test: node is required" >&2; exit 1; }
  local want
  want="$(cat "$TEST_DIR/package.json" "$TEST_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)-$(node --version)"
  if [ -d "$TEST_DIR/node_modules" ] && [ "$(cat "$TEST_DIR/node_modules/.browser-test-stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "browser-test: installing Node dependencies (npm ci) in $TEST_DIR"
  (cd "$TEST_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$TEST_DIR/node_modules/.browser-test-stamp"
}

ensure_chromium
ensure_node_deps

echo "browser-test: $("$CHROMIUM_BIN" --version 2>/dev/null | head -1) against $NSQADMIN_BIN"
cd "$TEST_DIR"
status=0
node --test --test-concurrency=1 "$@" || status=$?
echo "browser-test: screenshots in ${BROWSER_ARTIFACTS:-$ROOT/target/browser-artifacts}"
exit "$status"
