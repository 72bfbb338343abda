#!/usr/bin/env bash
# Restart after a crash: how long nsqd takes to come back after kill -9 with a large backlog and
# messages in flight, and how many of those messages it still has.
#
# usage: scripts/restart.sh NSQD_BIN [EXTRA_NSQD_ARGS...]
#
# Each run: a fresh nsqd on loopback ports with a temporary --data-path; channel `ch` of topic
# `restart` is created, 1,000,000 messages of 100 bytes are published to the topic (bench_writer,
# MPUB batches of 200), then consumers on `ch` take 10,000 of them and hold them unfinished
# (bench_reader --no-fin, RDY 2500 each, nsqd's default --max-rdy-count, so 4 connections).
# Once /stats shows them in flight, nsqd is killed with SIGKILL and started again on the same
# data path and ports. Measured from the restart's exec:
#   ping      until GET /ping answers 200 OK
#   complete  until /stats shows depth + in_flight + deferred of `ch` at 1,000,000 again ("-"
#             when it never does: a broker that loses what it held in memory or in flight)
# and, at the end of the wait, what /stats shows (depth/in_flight/deferred): the messages that
# survived. nsqd always gets --msg-timeout=10m first (the default 60 s could time messages out
# during the run); EXTRA_NSQD_ARGS follow and override it. For Go nsqd, --mem-queue-size=0 is its
# only setting that has the backlog on disk when killed.
#
# The bench tools are taken from the directory of NSQD_BIN, or from $BENCH_BIN_DIR (build them:
# `cargo build --release -p nsq-bench -p nsqd`). Needs curl.
#
# Tunables (environment):
#   RESTART_REPEAT (3)           runs; medians and every run are printed
#   RESTART_MESSAGES (1000000)   messages published
#   RESTART_IN_FLIGHT (10000)    messages held in flight when nsqd is killed
#   RESTART_SETTLE (3)           seconds between reaching that state and the kill, so neither
#                                broker is caught inside a periodic flush (Go's disk queue syncs
#                                every 2 s): the state killed is a steady one
#   RESTART_STABLE (10)          seconds the count may stay the same, below the total, before the
#                                wait for "complete" gives up
#   RESTART_TIMEOUT (300)        seconds any single wait may take
#
# The last line is one summary row (medians; every run in brackets), ready to paste.
set -euo pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
    echo "usage: $0 NSQD_BIN [EXTRA_NSQD_ARGS...]   (an executable nsqd)" >&2
    exit 2
fi
NSQD=$1
shift
EXTRA=("$@")
BIN_DIR=${BENCH_BIN_DIR:-$(dirname "$NSQD")}
REPEAT=${RESTART_REPEAT:-3}
MESSAGES=${RESTART_MESSAGES:-1000000}
IN_FLIGHT=${RESTART_IN_FLIGHT:-10000}
SETTLE=${RESTART_SETTLE:-3}
STABLE=${RESTART_STABLE:-10}
TIMEOUT=${RESTART_TIMEOUT:-300}
SIZE=100
BATCH=200
HOLD_RDY=2500
TOPIC=restart
CHANNEL=ch

for tool in bench_writer bench_reader; do
    if [[ ! -x $BIN_DIR/$tool ]]; then
        echo "missing $BIN_DIR/$tool (build nsq-bench, or set BENCH_BIN_DIR)" >&2
        exit 2
    fi
done
for cmd in curl; do
    command -v "$cmd" >/dev/null || {
        echo "$cmd is needed" >&2
        exit 2
    }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsq-restart.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"
HOLDERS=()
NSQD_EXTRA=(--msg-timeout=10m "${EXTRA[@]}")
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

stop_holders() {
    local pid
    for pid in ${HOLDERS[@]+"${HOLDERS[@]}"}; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    HOLDERS=()
}

cleanup() {
    stop_holders
    stop_nsqd
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# now_ms: wall-clock milliseconds, without running date.
now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((10#$t / 1000))
}

# log_addr NAME WHAT: the address nsqd logged for WHAT (TCP, HTTP) in its current log.
log_addr() {
    sed -n "s/.*$2: listening on \([0-9.]*:[0-9]*\).*/\1/p" "$WORK/nsqd-$1.log" | sed -n 1p
}

# http_get PATH: GET over bash's /dev/tcp into BODY; fails unless the answer is 200. Not curl
# (nor jq): the polls below run every few milliseconds, and two processes per poll would both
# blur the timings and take CPU from the nsqd that is starting.
http_get() {
    local fd resp=
    BODY=
    { exec {fd}<>"/dev/tcp/${HTTP%:*}/${HTTP##*:}"; } 2>/dev/null || return 1
    if printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$HTTP" >&"$fd" 2>/dev/null; then
        # Up to the close that ends an HTTP/1.0 answer; read reports that end as a failure.
        IFS= read -r -d '' -t 5 resp <&"$fd" || true
    fi
    exec {fd}>&-
    [[ $resp == "HTTP/1."?" 200"* ]] || return 1
    BODY=${resp#*$'\r\n\r\n'}
}

ping_ok() {
    http_get /ping && [[ $BODY == OK* ]]
}

# channel_counts: "depth in_flight deferred" of the channel in /stats ("0 0 0" before it shows).
# The query narrows /stats to this topic and channel, so after the channel's name the first
# "depth" is the channel's (the topic's own comes after its channel list, or before the name);
# the two counts exist only in channels (and clients, left out).
channel_counts() {
    local rest re='"depth":[[:space:]]*([0-9]+)' d i f
    if http_get "/stats?format=json&topic=$TOPIC&channel=$CHANNEL&include_clients=false" &&
        [[ $BODY =~ \"channel_name\":[[:space:]]*\"$CHANNEL\"(.*) ]]; then
        rest=${BASH_REMATCH[1]}
        [[ $rest =~ $re ]] && d=${BASH_REMATCH[1]}
        [[ $rest =~ \"in_flight_count\":[[:space:]]*([0-9]+) ]] && i=${BASH_REMATCH[1]}
        [[ $rest =~ \"deferred_count\":[[:space:]]*([0-9]+) ]] && f=${BASH_REMATCH[1]}
    fi
    echo "${d:-0} ${i:-0} ${f:-0}"
}

total() { # "depth in_flight deferred" -> sum
    local a b c
    read -r a b c <<<"$1"
    echo $((a + b + c))
}

# wait_counts WANT_TOTAL WANT_IN_FLIGHT: polls /stats until the channel holds WANT_TOTAL
# messages (and WANT_IN_FLIGHT of them in flight, unless that is "-"); sets COUNTS.
wait_counts() {
    local deadline=$(($(now_ms) + TIMEOUT * 1000)) inflight
    while :; do
        COUNTS=$(channel_counts)
        read -r _ inflight _ <<<"$COUNTS"
        if [[ $(total "$COUNTS") -eq $1 && ($2 == - || $inflight -eq $2) ]]; then
            return 0
        fi
        if [[ $(now_ms) -gt $deadline ]]; then
            echo "  gave up after ${TIMEOUT}s waiting for $1 messages ($2 in flight)," \
                "/stats shows depth/in_flight/deferred $COUNTS" >&2
            return 1
        fi
        sleep 0.1
    done
}

# record RUN KEY VALUE
record() {
    printf '%s\t%s\t%s\n' "$1" "$2" "${3:--}" >>"$RESULTS"
}

# one_run RUN: the whole cycle once; a failure leaves its values out ("-").
one_run() {
    local run=$1 name=run$1 data="$WORK/data-run$1"
    start_nsqd "$name"
    HTTP=$(log_addr "$name" HTTP)
    [[ -n $HTTP ]] || {
        echo "  nsqd did not log its HTTP address" >&2
        return 1
    }
    # Go nsqd creates no topic for /channel/create.
    curl -sf -X POST "http://$HTTP/topic/create?topic=$TOPIC" >/dev/null &&
        curl -sf -X POST "http://$HTTP/channel/create?topic=$TOPIC&channel=$CHANNEL" \
            >/dev/null || return 1

    run_tool "$WORK/out" "$BIN_DIR/bench_writer" --nsqd-tcp-address="$TCP" --topic="$TOPIC" \
        --size="$SIZE" --batch-size="$BATCH" --count="$MESSAGES" --runfor="${TIMEOUT}s" ||
        return 1
    if [[ $(field msgs "$WORK/out") != "$MESSAGES" ]]; then
        echo "  published $(field msgs "$WORK/out") of $MESSAGES" >&2
        return 1
    fi
    wait_counts "$MESSAGES" - || return 1

    local left=$IN_FLIGHT n i=0
    while [[ $left -gt 0 ]]; do
        n=$((left < HOLD_RDY ? left : HOLD_RDY))
        "$BIN_DIR/bench_reader" --nsqd-tcp-address="$TCP" --topic="$TOPIC" \
            --channel="$CHANNEL" --size="$SIZE" --rdy="$n" --count="$n" --no-fin \
            --runfor="${TIMEOUT}s" >"$WORK/hold$i" 2>"$WORK/hold$i.err" &
        HOLDERS+=($!)
        left=$((left - n))
        i=$((i + 1))
    done
    wait_counts "$MESSAGES" "$IN_FLIGHT" || return 1
    record "$run" before "$COUNTS"
    sleep "$SETTLE"

    kill -KILL "$NSQD_PID"
    wait "$NSQD_PID" 2>/dev/null || true
    NSQD_PID=
    stop_holders

    # Same data path and ports: a restart in place, as a supervisor would do it.
    local log="$WORK/nsqd-$name.log" t0 t_ping= t_complete= last_change now prev=
    echo "--- restart ---" >>"$log"
    t0=$(now_ms)
    "$NSQD" --data-path="$data" --tcp-address="$TCP" --http-address="$HTTP" \
        "${NSQD_EXTRA[@]}" 2>>"$log" &
    NSQD_PID=$!
    while ! ping_ok; do
        if ! kill -0 "$NSQD_PID" 2>/dev/null; then
            echo "  nsqd exited during the restart:" >&2
            sed -n '/^--- restart ---$/,$p' "$log" | tail -n 5 >&2
            NSQD_PID=
            return 1
        fi
        if [[ $(($(now_ms) - t0)) -gt $((TIMEOUT * 1000)) ]]; then
            echo "  /ping did not answer OK within ${TIMEOUT}s" >&2
            return 1
        fi
        sleep 0.002
    done
    t_ping=$(($(now_ms) - t0))
    record "$run" ping_ms "$t_ping"

    last_change=$(now_ms)
    while :; do
        COUNTS=$(channel_counts)
        now=$(now_ms)
        if [[ $(total "$COUNTS") -eq $MESSAGES ]]; then
            t_complete=$((now - t0))
            break
        fi
        if [[ $COUNTS != "$prev" ]]; then
            prev=$COUNTS
            last_change=$now
        elif [[ $((now - last_change)) -gt $((STABLE * 1000)) ||
            $((now - t0)) -gt $((TIMEOUT * 1000)) ]]; then
            break
        fi
        sleep 0.005
    done
    record "$run" complete_ms "$t_complete"
    record "$run" after "$COUNTS"
    record "$run" recovered "$(total "$COUNTS")"
    echo "  run $run: /ping after ${t_ping} ms, all $MESSAGES back after ${t_complete:--} ms;" \
        "depth/in_flight/deferred before the kill $(field_of "$run" before), after the" \
        "restart $COUNTS" >&2
    finish_nsqd "$name"
}

field_of() { # RUN KEY
    awk -F'\t' -v r="$1" -v k="$2" '$1 == r && $2 == k { print $3 }' "$RESULTS"
}

version=$("$NSQD" --version 2>&1 | sed -n 1p) || version="?"
label="$version, ${NSQD_EXTRA[*]}"
for run in $(seq "$REPEAT"); do
    echo "run $run of $REPEAT: $NSQD ${NSQD_EXTRA[*]}" >&2
    if ! one_run "$run"; then
        echo "  run $run failed" >&2
        stop_holders
        finish_nsqd "run$run"
    fi
done

echo
echo "$label"
echo "$MESSAGES messages of $SIZE bytes queued for one channel, $IN_FLIGHT of them in flight, then kill -9 and restart"
echo "every run (run, measure, value):"
sed 's/^/  /' "$RESULTS"
awk -F'\t' -v label="$label" -v total="$MESSAGES" "$median_awk"'
function join(list,    n, v, i, out) {
    n = split(list, v, " ")
    for (i = 1; i <= n; i++) out = out (i > 1 ? ", " : "") v[i]
    return out
}
$2 == "ping_ms" || $2 == "complete_ms" || $2 == "recovered" {
    all[$2] = all[$2] " " $3
    if ($3 != "-") vals[$2] = vals[$2] " " $3
}
END {
    printf "| %s | /ping %s ms (%s) | all %d back %s ms (%s) | after restart %s of %d (%s) |\n", \
        label, median(vals["ping_ms"]), join(all["ping_ms"]), total, \
        median(vals["complete_ms"]), join(all["complete_ms"]), \
        median(vals["recovered"]), total, join(all["recovered"])
}' "$RESULTS"
