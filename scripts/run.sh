#!/usr/bin/env bash
# Builds the platform and runs it in the foreground on NSQ's default ports, with data in ./data.
# Ctrl-C stops everything cleanly; if any daemon exits on its own (a port already taken, say),
# the others are stopped too and the script exits with that daemon's status.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
mkdir -p data
declare -A names=()
pids=()
stop_all() {
    trap - INT TERM
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
start() {
    local name=$1
    shift
    target/release/"$name" "$@" &
    pids+=($!)
    names[$!]=$name
}
start nsqlookupd
start nsqd --data-path=data --lookupd-tcp-address=127.0.0.1:4160
start nsqadmin --lookupd-http-address=127.0.0.1:4161
cat >&2 <<'MSG'
run.sh: nsqlookupd  TCP 0.0.0.0:4160  HTTP http://127.0.0.1:4161/
run.sh: nsqd        TCP 0.0.0.0:4150  HTTP http://127.0.0.1:4151/  (data in ./data)
run.sh: nsqadmin    HTTP http://127.0.0.1:4171/
run.sh: try   echo hello | target/release/to_nsq --topic=test --nsqd-tcp-address=127.0.0.1:4150
run.sh: and   target/release/nsq_tail --topic=test --lookupd-http-address=127.0.0.1:4161
run.sh: Ctrl-C stops everything
MSG
status=0
wait -n -p exited "${pids[@]}" || status=$?
echo "run.sh: ${names[$exited]:-a daemon} exited (status $status); stopping the others" >&2
stop_all
exit "$status"
