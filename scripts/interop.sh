#!/usr/bin/env bash
# Interop tests: drive our nsqd with real third-party NSQ clients
# (pynsq from PyPI, nsqjs from npm).
#
# Usage: scripts/interop.sh [python|node]...   (default: both)
#   NSQD_BIN        nsqd binary to test (default: target/debug/nsqd; build it first)
#   NSQLOOKUPD_BIN  nsqlookupd binary for the discovery tests (default: target/debug/nsqlookupd)
#   INTEROP_VENV    Python venv location (default: target/interop-venv)
#
# Setup is idempotent: the venv and node_modules are reused while their pinned
# inputs (requirements.txt / package-lock.json) are unchanged.
#
# The TLS tests need the `openssl` command (certificates are generated at test
# time by interop/gen-certs.sh; the HTTPS checks use `openssl s_client`). When
# it is missing it is installed with apt-get if possible, otherwise the script
# stops with an error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

NSQD_BIN="${NSQD_BIN:-target/debug/nsqd}"
case "$NSQD_BIN" in /*) ;; *) NSQD_BIN="$ROOT/$NSQD_BIN" ;; esac
export NSQD_BIN
NSQLOOKUPD_BIN="${NSQLOOKUPD_BIN:-target/debug/nsqlookupd}"
case "$NSQLOOKUPD_BIN" in /*) ;; *) NSQLOOKUPD_BIN="$ROOT/$NSQLOOKUPD_BIN" ;; esac
export NSQLOOKUPD_BIN
VENV="${INTEROP_VENV:-$ROOT/target/interop-venv}"
PY_REQ="$ROOT/interop/python/requirements.txt"
NODE_DIR="$ROOT/interop/node"

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(python node)
for s in "${suites[@]}"; do
  case "$s" in python|node) ;; *) echo "interop: unknown suite '$s' (expected python or node)" >&2; exit 2 ;; esac
done

if [ ! -x "$NSQD_BIN" ]; then
  echo "interop: nsqd binary not found or not executable: $NSQD_BIN" >&2
  echo "interop: build it with 'cargo build -p nsqd' or point NSQD_BIN at one" >&2
  exit 1
fi

if [ ! -x "$NSQLOOKUPD_BIN" ]; then
  echo "interop: nsqlookupd binary not found or not executable: $NSQLOOKUPD_BIN" >&2
  echo "interop: the discovery tests will fail; build it with 'cargo build --bins' or point NSQLOOKUPD_BIN at one" >&2
fi

ensure_openssl() {
  command -v openssl >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "interop: installing openssl (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl; } >/dev/null 2>&1 || true
  fi
  if ! command -v openssl >/dev/null 2>&1; then
    echo "interop: the openssl command is required for the TLS tests (certificate generation, s_client);" >&2
    echo "interop: install it (e.g. 'apt-get install openssl') and re-run" >&2
    exit 1
  fi
}

fingerprint() { # file... -> one line that changes whenever an input changes
  { "$@" 2>/dev/null; } | sha256sum | cut -d' ' -f1
}

setup_python() {
  local want
  want="$(fingerprint cat "$PY_REQ")-$(python3 -c 'import sys; print(sys.version)' | tr -d ' \n')"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.interop-stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "interop: setting up Python venv at $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$PY_REQ"
  echo "$want" > "$VENV/.interop-stamp"
}

setup_node() {
  local want
  want="$(fingerprint cat "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json")-$(node --version)"
  if [ -d "$NODE_DIR/node_modules" ] && [ "$(cat "$NODE_DIR/node_modules/.interop-stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "interop: installing Node dependencies (npm ci) in $NODE_DIR"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$NODE_DIR/node_modules/.interop-stamp"
}

ensure_openssl

status=0
for s in "${suites[@]}"; do
  case "$s" in
    python)
      setup_python
      echo "interop: pynsq suite against $NSQD_BIN (and $NSQLOOKUPD_BIN)"
      (cd "$ROOT/interop/python" && PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest -p no:cacheprovider) || status=1
      ;;
    node)
      setup_node
      echo "interop: nsqjs suite against $NSQD_BIN (and $NSQLOOKUPD_BIN)"
      (cd "$NODE_DIR" && node --test) || status=1
      ;;
  esac
done

if [ "$status" -ne 0 ]; then
  echo "interop: FAILED" >&2
else
  echo "interop: all suites passed"
fi
exit "$status"
