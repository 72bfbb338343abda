#!/usr/bin/env bash
# The whole benchmark suite against one nsqd binary (ours or NSQ's Go nsqd), printed as one
# table: the machine's loopback ceiling and round-trip floor, throughput (with each figure as a
# fraction of that ceiling, measured in the same run), single-PUB round trips, open-loop
# end-to-end latency at fixed rates, resident memory with a million queued messages, and 10,000
# idle consumers.
#
# usage: scripts/suite.sh NSQD_BIN [EXTRA_NSQD_ARGS...]
#
# EXTRA_NSQD_ARGS go to every nsqd started (NSQ's comparison used --mem-queue-size=1000000 for
# Go nsqd). The bench tools are taken from the directory of NSQD_BIN, or from $BENCH_BIN_DIR
# (build them: `cargo build --release -p nsq-bench -p nsqd`).
#
# Tunables (environment):
#   SUITE_REPEAT (3)       runs of every row; the table shows medians, every run is listed after
#   SUITE_RUNFOR (5s)      length of each throughput and latency run
#   SUITE_BACKLOG (2000000) messages queued before the consume-only run
#   SUITE_DURABLE_ARGS ("--durability=write")  nsqd flags of the "every message on disk" row;
#                          for Go nsqd use "--mem-queue-size=0" (its disk mode)
#   SUITE_RATES ("1000 10000 50000")  end-to-end latency rates, messages/s
#   SUITE_MAX_IN_FLIGHT ("1 200")  the latency consumer's RDY values (1 is go-nsq's and
#                          pynsq's default max_in_flight)
#   SUITE_PIPELINED (4)    MPUBs in flight in the second publish row (the first waits for each
#                          OK, as NSQ's bench_writer)
#   SUITE_QUEUED (1000000) messages queued for the memory row
#   SUITE_IDLE_CONNS (10000), SUITE_IDLE_HEARTBEAT (5s)  the idle-consumer row
#   SUITE_ROWS ("ceiling publish consume pubsub durable rtt e2e memory idle")  rows to run
# Messages are 100 bytes, MPUB batches of 200, consumer RDY 2500, one connection per side.
set -euo pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
    echo "usage: $0 NSQD_BIN [EXTRA_NSQD_ARGS...]   (an executable nsqd)" >&2
    exit 2
fi
NSQD=$1
shift
EXTRA=("$@")
BIN_DIR=${BENCH_BIN_DIR:-$(dirname "$NSQD")}
REPEAT=${SUITE_REPEAT:-3}
RUNFOR=${SUITE_RUNFOR:-5s}
BACKLOG=${SUITE_BACKLOG:-2000000}
read -ra DURABLE <<<"${SUITE_DURABLE_ARGS:---durability=write}"
RATES=${SUITE_RATES:-1000 10000 50000}
MAX_IN_FLIGHT=${SUITE_MAX_IN_FLIGHT:-1 200}
PIPELINED=${SUITE_PIPELINED:-4}
QUEUED=${SUITE_QUEUED:-1000000}
IDLE_CONNS=${SUITE_IDLE_CONNS:-10000}
IDLE_HEARTBEAT=${SUITE_IDLE_HEARTBEAT:-5s}
ROWS=${SUITE_ROWS:-ceiling publish consume pubsub durable rtt e2e memory idle}
SIZE=100
BATCH=200
RDY=2500

for tool in bench_writer bench_reader bench_pubsub bench_latency bench_idle loopback_baseline; do
    if [[ ! -x $BIN_DIR/$tool ]]; then
        echo "missing $BIN_DIR/$tool (build nsq-bench, or set BENCH_BIN_DIR)" >&2
        exit 2
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsq-suite.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"
IDLE_PID=
NSQD_EXTRA=("${EXTRA[@]}")
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

cleanup() {
    [[ -n $IDLE_PID ]] && kill -KILL "$IDLE_PID" 2>/dev/null
    stop_nsqd
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# record ROW UNIT VALUE: one measurement ("-" when the run failed).
record() {
    printf '%s\t%s\t%s\n' "$1" "$2" "${3:--}" >>"$RESULTS"
}

# cpu_ticks PID: user + system CPU time of a process, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the command name, which may contain spaces).
cpu_ticks() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

rss_kib() {
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"
}

common=(--size="$SIZE" --runfor="$RUNFOR")
writer=("$BIN_DIR/bench_writer" "${common[@]}" --batch-size="$BATCH")
reader=("$BIN_DIR/bench_reader" "${common[@]}" --rdy="$RDY")

has_row() {
    [[ " $ROWS " == *" $1 "* ]]
}

# publish_row NAME LABEL: bench_writer alone for --runfor on a topic without channels.
publish_row() {
    start_nsqd "$1"
    run_tool "$WORK/out" "${writer[@]}" --pipeline="${PIPELINE:-1}" --nsqd-tcp-address="$TCP" \
        --topic=bench_pub || true
    record "$2" msg/s "$(field 'msgs/s' "$WORK/out")"
    finish_nsqd "$1"
}

# consume_row NAME LABEL: a channel, then a backlog queued for it, then bench_reader reads it.
consume_row() {
    start_nsqd "$1"
    run_tool "$WORK/out" "${reader[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
        --runfor=100ms --count=1 || true
    run_tool "$WORK/out" "${writer[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
        --count="$BACKLOG" --runfor=20s || true
    local published
    published=$(field msgs "$WORK/out")
    if [[ -n $published && $published -gt 0 ]]; then
        run_tool "$WORK/out" "${reader[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
            --count="$published" || true
        record "$2" msg/s "$(field 'msgs/s' "$WORK/out")"
    else
        record "$2" msg/s -
    fi
    finish_nsqd "$1"
}

# pubsub_row NAME LABEL [NSQD_ARGS...]: publisher and consumer at once.
pubsub_row() {
    local name=$1 label=$2
    shift 2
    start_nsqd "$name" "$@"
    run_tool "$WORK/out" "$BIN_DIR/bench_pubsub" "${common[@]}" --batch-size="$BATCH" \
        --rdy="$RDY" --nsqd-tcp-address="$TCP" --topic=bench_pubsub || true
    record "$label: publish" msg/s "$(field 'pub msgs/s' "$WORK/out")"
    record "$label: consume" msg/s "$(field 'sub msgs/s' "$WORK/out")"
    record "$label: backlog" msgs "$(field backlog "$WORK/out")"
    finish_nsqd "$name"
}

latency_fields() { # LABEL FILE KEYS...
    local label=$1 file=$2
    shift 2
    local k
    for k in "$@"; do
        record "$label $k" us "$(field "${k}_us" "$file")"
    done
}

for run in $(seq "$REPEAT"); do
    echo "run $run of $REPEAT: $NSQD ${EXTRA[*]}" >&2
    if has_row ceiling; then
        run_tool "$WORK/out" "$BIN_DIR/loopback_baseline" --runfor=3s --size="$SIZE" || true
        record "loopback ceiling" frames/s "$(sed -n 's/^frames\/s: //p' "$WORK/out" | sed -n 1p)"
        run_tool "$WORK/out" "$BIN_DIR/loopback_baseline" --mode=rtt --runfor=3s \
            --size="$SIZE" || true
        latency_fields "loopback round trip" "$WORK/out" p50 p99
    fi
    has_row publish && publish_row "$run-pub" publish
    has_row publish && PIPELINE=$PIPELINED publish_row "$run-pub4" \
        "publish, $PIPELINED MPUBs in flight"
    has_row consume && consume_row "$run-sub" consume
    has_row pubsub && pubsub_row "$run-pubsub" "pub+sub"
    has_row durable && pubsub_row "$run-durable" "pub+sub (${DURABLE[*]})" "${DURABLE[@]}"
    if has_row rtt; then
        start_nsqd "$run-rtt"
        run_tool "$WORK/out" "$BIN_DIR/bench_latency" --mode=rtt --nsqd-tcp-address="$TCP" \
            --size="$SIZE" --runfor="$RUNFOR" --topic=rtt || true
        latency_fields "PUB round trip" "$WORK/out" p50 p99 p999 max
        finish_nsqd "$run-rtt"
    fi
    if has_row e2e; then
        for mif in $MAX_IN_FLIGHT; do
            for rate in $RATES; do
                name="e2e $rate/s, in-flight $mif"
                start_nsqd "$run-e2e-$rate-$mif"
                run_tool "$WORK/out" "$BIN_DIR/bench_latency" --mode=e2e --rate="$rate" \
                    --max-in-flight="$mif" --nsqd-tcp-address="$TCP" --size="$SIZE" \
                    --runfor="$RUNFOR" --topic=e2e || true
                latency_fields "$name" "$WORK/out" p50 p99 p999 max
                sent=$(field sent "$WORK/out")
                received=$(field received "$WORK/out")
                record "$name: not received" msgs "$(( ${sent:-0} - ${received:-0} ))"
                finish_nsqd "$run-e2e-$rate-$mif"
            done
        done
    fi
    if has_row memory; then
        start_nsqd "$run-mem"
        before=$(rss_kib "$NSQD_PID")
        run_tool "$WORK/out" "${reader[@]}" --nsqd-tcp-address="$TCP" --topic=queued \
            --runfor=100ms --count=1 || true
        run_tool "$WORK/out" "${writer[@]}" --nsqd-tcp-address="$TCP" --topic=queued \
            --count="$QUEUED" --runfor=120s || true
        record "RSS idle" MiB "$(awk -v k="$before" 'BEGIN { printf "%.1f", k / 1024 }')"
        record "RSS with $QUEUED queued" MiB \
            "$(awk -v k="$(rss_kib "$NSQD_PID")" 'BEGIN { printf "%.1f", k / 1024 }')"
        record "queued (published)" msgs "$(field msgs "$WORK/out")"
        finish_nsqd "$run-mem"
    fi
    if has_row idle; then
        start_nsqd "$run-idle"
        # The idle consumers stay connected while publish and consume run again beside them.
        "$BIN_DIR/bench_idle" --nsqd-tcp-address="$TCP" --conns="$IDLE_CONNS" \
            --heartbeat-interval="$IDLE_HEARTBEAT" --runfor=600s --pid="$NSQD_PID" \
            >"$WORK/idle" 2>"$WORK/idle.err" &
        IDLE_PID=$!
        for _ in $(seq 1200); do
            grep -q '^ready' "$WORK/idle" && break
            kill -0 "$IDLE_PID" 2>/dev/null || break
            sleep 0.1
        done
        if grep -q '^ready' "$WORK/idle"; then
            ready_rss=$(rss_kib "$NSQD_PID")
            run_tool "$WORK/out" "${writer[@]}" --nsqd-tcp-address="$TCP" --topic=bench_pub || true
            record "with idle conns: publish" msg/s "$(field 'msgs/s' "$WORK/out")"
            run_tool "$WORK/out" "${reader[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
                --runfor=100ms --count=1 || true
            run_tool "$WORK/out" "${writer[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
                --count="$BACKLOG" --runfor=20s || true
            published=$(field msgs "$WORK/out")
            run_tool "$WORK/out" "${reader[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
                --count="${published:-1}" || true
            record "with idle conns: consume" msg/s "$(field 'msgs/s' "$WORK/out")"
            # Then a quiet stretch of two heartbeat intervals: nsqd's CPU time over it is the
            # idle connections' own cost (bench_idle's figure spans the runs above too).
            quiet_from=$(cpu_ticks "$NSQD_PID")
            quiet_start=$(date +%s.%N)
            sleep "${IDLE_HEARTBEAT%s}"
            sleep "${IDLE_HEARTBEAT%s}"
            quiet_ticks=$(( $(cpu_ticks "$NSQD_PID") - quiet_from ))
            quiet_secs=$(awk -v a="$quiet_start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
            kill -TERM "$IDLE_PID" 2>/dev/null || true
            wait "$IDLE_PID" || true
            IDLE_PID=
            record "idle conns" conns "$(field conns "$WORK/idle")"
            record "idle conns: RSS" MiB "$(awk -v k="$ready_rss" 'BEGIN { printf "%.1f", k / 1024 }')"
            record "idle conns: RSS per conn" bytes "$(field rss_per_conn_bytes "$WORK/idle")"
            record "idle conns: nsqd CPU" "% of a core" \
                "$(awk -v t="$quiet_ticks" -v hz="$(getconf CLK_TCK)" -v s="$quiet_secs" \
                    'BEGIN { printf "%.2f", 100 * t / hz / s }')"
            record "idle conns: heartbeats" count "$(field heartbeats "$WORK/idle")"
        else
            echo "  bench_idle did not get its connections up: $(tail -n 3 "$WORK/idle.err" | tr '\n' ' ')" >&2
            kill -KILL "$IDLE_PID" 2>/dev/null || true
            wait "$IDLE_PID" 2>/dev/null || true
            IDLE_PID=
            record "idle conns" conns -
        fi
        finish_nsqd "$run-idle"
    fi
done

awk -F'\t' -v repeat="$REPEAT" -v runfor="$RUNFOR" -v nsqd="$NSQD ${EXTRA[*]}" "$median_awk"'
{
    if (!($1 in seen)) { seen[$1] = 1; rows[++nrows] = $1; unit[$1] = $2 }
    runs[$1] = runs[$1] (runs[$1] == "" ? "" : ", ") $3
    if ($3 != "-") vals[$1] = vals[$1] " " $3
}
END {
    ceiling = median(vals["loopback ceiling"])
    printf "\n%s\n", nsqd
    printf "median of %d run(s), --runfor %s; %% of ceiling = msg/s over loopback frames/s\n", repeat, runfor
    printf "| %-36s | %-12s | %14s | %10s | %s |\n", "row", "unit", "median", "% ceiling", "runs"
    printf "| %-36s | %-12s | %14s | %10s | %s |\n", "---", "---", "---:", "---:", "---"
    for (r = 1; r <= nrows; r++) {
        row = rows[r]
        m = median(vals[row])
        frac = ""
        if (unit[row] == "msg/s" && m != "-" && ceiling != "-" && ceiling + 0 > 0)
            frac = sprintf("%.1f %%", 100 * m / ceiling)
        shown = (m == "-") ? "-" : (m == int(m) ? sprintf("%d", m) : sprintf("%.1f", m))
        printf "| %-36s | %-12s | %14s | %10s | %s |\n", row, unit[row], shown, frac, runs[row]
    }
}' "$RESULTS"
