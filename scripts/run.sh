#!/usr/bin/env bash
# Builds the platform and runs it in the foreground on NSQ's default ports, with data in ./data.
# Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
mkdir -p data
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait
}
trap cleanup INT TERM EXIT
if [ -x target/release/nsqlookupd ]; then
    target/release/nsqlookupd &
    pids+=($!)
    lookupd_args=(--lookupd-tcp-address=127.0.0.1:4160)
else
    lookupd_args=()
fi
target/release/nsqd --data-path=data "${lookupd_args[@]}" &
pids+=($!)
if [ -x target/release/nsqadmin ] && [ -x target/release/nsqlookupd ]; then
    target/release/nsqadmin --lookupd-http-address=127.0.0.1:4161 &
    pids+=($!)
fi
wait
