#!/usr/bin/env bash
# nsqadmin's JSON API under load, against a large fake cluster: `fake_cluster` serves N fake
# nsqd (T topics x C channels x K clients each, NSQ 1.3.0's /stats JSON) and one fake
# nsqlookupd listing them all; nsqadmin is pointed at that lookupd and `bench_http` GETs each
# API endpoint with a few keep-alive connections. One nsqadmin binary, or two side by side (A/B,
# e.g. ours and Go's), against the same fake cluster; each row is one endpoint.
#
# usage: scripts/nsqadmin.sh [NSQADMIN_BIN [NSQADMIN_BIN_B]]
#        NSQADMIN_BIN=... [NSQADMIN_BIN_B=...] scripts/nsqadmin.sh
#
# fake_cluster and bench_http come from $BENCH_BIN_DIR (default: target/release of this
# checkout; build them with `cargo build --release -p nsq-bench`). Needs curl.
#
# Tunables (environment):
#   ADMIN_NODES (10), ADMIN_TOPICS (1000), ADMIN_CHANNELS (5), ADMIN_CLIENTS (1)
#                          the fake cluster's size (every node has every topic)
#   ADMIN_CONCURRENCY (4)  requests in flight (bench_http --concurrency)
#   ADMIN_RUNFOR (10s)     measured time per endpoint
#   ADMIN_WARMUP (2s)      unmeasured load on each endpoint first
#   ADMIN_REPEAT (1)       runs of the whole set; the tables show medians
#   ADMIN_ENDPOINTS ("topic nodes topics node channel counter")  which rows to run:
#       topic   GET /api/topics/t0         one topic aggregated over every node
#       nodes   GET /api/nodes             the node list from nsqlookupd
#       topics  GET /api/topics            the topic list from nsqlookupd
#       node    GET /api/nodes/<node 0>    one node's full stats, clients included
#       channel GET /api/topics/t0/c0      one channel over every node, clients included
#       counter GET /api/counter           every node's full stats (no clients), summed
#   ADMIN_EXTRA_ARGS       more flags for every nsqadmin started
#
# Per endpoint: requests/s, latency p50/p99/max (ms), nsqadmin's CPU time per request and the
# fake cluster's CPU use (it must stay far from a full core for the figures to be nsqadmin's),
# response size and errors (summed over the runs; an answer whose message is a "WARNING: ..."
# about failed upstreams still counts as a response: nsqadmin's warnings and errors are shown
# from its log after each run). Per binary: nsqadmin's peak RSS (VmHWM) and CPU time over the
# whole run (warm-ups included).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BINS=("$@")
if [[ $# -eq 0 ]]; then
    [[ -n ${NSQADMIN_BIN:-} ]] && BINS+=("$NSQADMIN_BIN")
    [[ -n ${NSQADMIN_BIN_B:-} ]] && BINS+=("$NSQADMIN_BIN_B")
fi
if [[ ${#BINS[@]} -eq 0 || ${#BINS[@]} -gt 2 ]]; then
    echo "usage: $0 [NSQADMIN_BIN [NSQADMIN_BIN_B]]   (or set NSQADMIN_BIN, NSQADMIN_BIN_B)" >&2
    exit 2
fi
for b in "${BINS[@]}"; do
    if [[ ! -x $b ]]; then
        echo "$b is not an executable nsqadmin" >&2
        exit 2
    fi
done
BIN_DIR=${BENCH_BIN_DIR:-$HERE/../../../target/release}
NODES=${ADMIN_NODES:-10}
TOPICS=${ADMIN_TOPICS:-1000}
CHANNELS=${ADMIN_CHANNELS:-5}
CLIENTS=${ADMIN_CLIENTS:-1}
CONCURRENCY=${ADMIN_CONCURRENCY:-4}
RUNFOR=${ADMIN_RUNFOR:-10s}
WARMUP=${ADMIN_WARMUP:-2s}
REPEAT=${ADMIN_REPEAT:-1}
ENDPOINTS=${ADMIN_ENDPOINTS:-topic nodes topics node channel counter}
read -ra EXTRA <<<"${ADMIN_EXTRA_ARGS:-}"

for tool in fake_cluster bench_http; do
    if [[ ! -x $BIN_DIR/$tool ]]; then
        echo "missing $BIN_DIR/$tool (cargo build --release -p nsq-bench, or set BENCH_BIN_DIR)" >&2
        exit 2
    fi
done
command -v curl >/dev/null || {
    echo "curl is needed" >&2
    exit 2
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsqadmin-bench.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"
CLUSTER_PID=
ADMIN_PID=
# shellcheck source=lib.sh
source "$HERE/lib.sh"

# stop_pid PID: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

cleanup() {
    [[ -n $ADMIN_PID ]] && stop_pid "$ADMIN_PID"
    [[ -n $CLUSTER_PID ]] && stop_pid "$CLUSTER_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_ticks() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# status_kib PID FIELD: a /proc/PID/status memory line (VmHWM, VmRSS) in KiB.
status_kib() {
    sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"
}

HZ=$(getconf CLK_TCK)

# record BIN ROW METRIC VALUE
record() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:--}" >>"$RESULTS"
}

# The fake cluster, shared by every run and binary. Its output file is created here, not by the
# background redirection, so the poll below never races it.
: >"$WORK/cluster"
"$BIN_DIR/fake_cluster" --nodes="$NODES" --topics="$TOPICS" --channels="$CHANNELS" \
    --clients="$CLIENTS" >"$WORK/cluster" 2>"$WORK/cluster.err" &
CLUSTER_PID=$!
for _ in $(seq 600); do
    grep -qx ready "$WORK/cluster" && break
    kill -0 "$CLUSTER_PID" 2>/dev/null || break
    sleep 0.1
done
if ! grep -qx ready "$WORK/cluster"; then
    echo "fake_cluster did not start:" >&2
    cat "$WORK/cluster.err" >&2
    exit 1
fi
LOOKUPD=$(sed -n 's/^lookupd-http //p' "$WORK/cluster")
NODE0=$(sed -n 's/^nsqd-http //p' "$WORK/cluster" | sed -n 1p)
echo "fake cluster: $NODES nsqd x $TOPICS topics x $CHANNELS channels x $CLIENTS clients, lookupd $LOOKUPD" >&2

endpoint_path() {
    case $1 in
    topic) echo /api/topics/t0 ;;
    nodes) echo /api/nodes ;;
    topics) echo /api/topics ;;
    node) echo "/api/nodes/$NODE0" ;;
    channel) echo /api/topics/t0/c0 ;;
    counter) echo /api/counter ;;
    *)
        echo "unknown endpoint ${1@Q} (topic nodes topics node channel counter)" >&2
        return 1
        ;;
    esac
}

endpoint_row() {
    case $1 in
    node) echo "GET /api/nodes/:node" ;;
    *) echo "GET $(endpoint_path "$1")" ;;
    esac
}

# start_admin BIN LOG: nsqadmin on an ephemeral port; sets ADMIN_PID and ADMIN (its address).
start_admin() {
    : >"$2"
    "$1" --http-address=127.0.0.1:0 --lookupd-http-address="$LOOKUPD" \
        ${EXTRA[@]+"${EXTRA[@]}"} >"$2" 2>&1 &
    ADMIN_PID=$!
    ADMIN=
    for _ in $(seq 100); do
        ADMIN=$(sed -n 's/.*HTTP: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$2" | sed -n 1p)
        [[ -n $ADMIN ]] && break
        if ! kill -0 "$ADMIN_PID" 2>/dev/null; then
            echo "nsqadmin exited during start-up:" >&2
            cat "$2" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [[ -z $ADMIN ]]; then
        echo "nsqadmin did not log \"HTTP: listening on\" within 10 s:" >&2
        cat "$2" >&2
        exit 1
    fi
}

# check_answer NAME PATH: one GET with curl; complains about anything but a 200 whose
# message is empty (a "WARNING: ..." message means some upstream failed).
check_answer() {
    local status
    status=$(curl -s -o "$WORK/answer" -w '%{http_code}' "http://$ADMIN$2" || echo 000)
    if [[ $status != 200 ]]; then
        echo "  $2: status $status: $(head -c 300 "$WORK/answer")" >&2
    elif ! grep -q '"message": *""' "$WORK/answer"; then
        echo "  $2: $(grep -o '"message": *"[^"]*"' "$WORK/answer" | head -c 300)" >&2
    fi
    if [[ $1 == nodes ]]; then
        local n
        n=$(grep -o '"hostname": *"fake-nsqd-[0-9]*"' "$WORK/answer" | sort -u | wc -l)
        [[ $n -eq $NODES ]] || echo "  $2 lists $n of the $NODES nodes" >&2
    fi
}

for run in $(seq "$REPEAT"); do
    for i in "${!BINS[@]}"; do
        bin=${BINS[$i]}
        label=$([[ $i -eq 0 ]] && echo A || echo B)
        echo "run $run of $REPEAT, $label: $bin" >&2
        start_admin "$bin" "$WORK/admin-$label.log"
        for ep in $ENDPOINTS; do
            path=$(endpoint_path "$ep")
            row=$(endpoint_row "$ep")
            check_answer "$ep" "$path"
            load=("$BIN_DIR/bench_http" --url="http://$ADMIN$path" --concurrency="$CONCURRENCY")
            run_tool "$WORK/out" "${load[@]}" --runfor="$WARMUP" >/dev/null 2>&1 || true
            admin_from=$(cpu_ticks "$ADMIN_PID")
            cluster_from=$(cpu_ticks "$CLUSTER_PID")
            run_tool "$WORK/out" "${load[@]}" --runfor="$RUNFOR" || true
            admin_ticks=$(($(cpu_ticks "$ADMIN_PID") - admin_from))
            cluster_ticks=$(($(cpu_ticks "$CLUSTER_PID") - cluster_from))
            requests=$(field requests "$WORK/out")
            secs=$(field duration_s "$WORK/out")
            record "$label" "$row" "req/s" "$(field 'req/s' "$WORK/out")"
            record "$label" "$row" "p50 ms" "$(field p50_ms "$WORK/out")"
            record "$label" "$row" "p99 ms" "$(field p99_ms "$WORK/out")"
            record "$label" "$row" "max ms" "$(field max_ms "$WORK/out")"
            if [[ -n $requests && $requests -gt 0 ]]; then
                record "$label" "$row" "CPU ms/req" \
                    "$(awk -v t="$admin_ticks" -v hz="$HZ" -v n="$requests" \
                        'BEGIN { printf "%.2f", 1000 * t / hz / n }')"
                record "$label" "$row" "fake CPU %" \
                    "$(awk -v t="$cluster_ticks" -v hz="$HZ" -v s="$secs" \
                        'BEGIN { printf "%.1f", 100 * t / hz / s }')"
                record "$label" "$row" "KiB/resp" \
                    "$(awk -v b="$(field bytes_per_response "$WORK/out")" \
                        'BEGIN { printf "%.1f", b / 1024 }')"
            fi
            record "$label" "$row" "errors" "$(field errors "$WORK/out")"
        done
        record "$label" "peak RSS (VmHWM)" "MiB" \
            "$(awk -v k="$(status_kib "$ADMIN_PID" VmHWM)" 'BEGIN { printf "%.1f", k / 1024 }')"
        record "$label" "RSS at the end" "MiB" \
            "$(awk -v k="$(status_kib "$ADMIN_PID" VmRSS)" 'BEGIN { printf "%.1f", k / 1024 }')"
        record "$label" "CPU time, whole run" "s" \
            "$(awk -v t="$(cpu_ticks "$ADMIN_PID")" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')"
        stop_pid "$ADMIN_PID"
        ADMIN_PID=
        n=$(grep -cE 'ERROR|FATAL|WARN' "$WORK/admin-$label.log" || true)
        if [[ $n -gt 0 ]]; then
            echo "  nsqadmin logged $n warning/error line(s), first:" >&2
            grep -E 'ERROR|FATAL|WARN' "$WORK/admin-$label.log" | sed -n '1,3s/^/    /p' >&2
        fi
    done
done

header="${#BINS[@]}"
for i in "${!BINS[@]}"; do
    label=$([[ $i -eq 0 ]] && echo A || echo B)
    version=$("${BINS[$i]}" --version 2>&1 | sed -n 1p || true)
    header="$header"$'\t'"$label: ${BINS[$i]} ($version)"
done

awk -F'\t' -v header="$header" -v repeat="$REPEAT" -v runfor="$RUNFOR" \
    -v conc="$CONCURRENCY" -v shape="$NODES nsqd x $TOPICS topics x $CHANNELS channels x $CLIENTS clients" \
    "$median_awk"'
{
    if (!($2 in seen)) { seen[$2] = 1; rows[++nrows] = $2 }
    if (!(($2, $3) in mseen)) { mseen[$2, $3] = 1; metrics[$2] = metrics[$2] (metrics[$2] == "" ? "" : SUBSEP) $3 }
    if ($4 != "-") vals[$1, $2, $3] = vals[$1, $2, $3] " " $4
    runs[$1, $2, $3] = runs[$1, $2, $3] (runs[$1, $2, $3] == "" ? "" : ", ") $4
    labels[$1] = 1
}
function cell(l, r, m,    v, n, i, sum) {
    if (m != "errors") return median(vals[l, r, m])
    # Errors are summed over the runs: a median would hide a run that had some.
    n = split(vals[l, r, m], v, " ")
    if (n == 0) return "-"
    for (i = 1; i <= n; i++) sum += v[i]
    return sum
}
END {
    n = split(header, h, "\t")
    printf "\nfake cluster: %s; %d keep-alive connections, --runfor %s, median of %d run(s)\n", shape, conc, runfor, repeat
    for (i = 2; i <= n; i++) print h[i]
    nl = n - 1
    split("A B", lab, " ")
    cols = "req/s|p50 ms|p99 ms|max ms|CPU ms/req|fake CPU %|KiB/resp|errors"
    nc = split(cols, c, "|")
    printf "\n| %-24s | bin |", "endpoint"
    for (j = 1; j <= nc; j++) printf " %10s |", c[j]
    printf " req/s of each run |"
    printf "\n| %-24s | --- |", "---"
    for (j = 1; j <= nc; j++) printf " %10s |", "---:"
    printf " --- |"
    printf "\n"
    for (r = 1; r <= nrows; r++) {
        row = rows[r]
        if (row !~ /^GET /) continue
        for (k = 1; k <= nl; k++) {
            printf "| %-24s | %-3s |", (k == 1 ? row : ""), lab[k]
            for (j = 1; j <= nc; j++) printf " %10s |", cell(lab[k], row, c[j])
            printf " %s |\n", runs[lab[k], row, "req/s"]
        }
    }
    printf "\n| %-24s |", "nsqadmin process"
    for (k = 1; k <= nl; k++) printf " %10s |", lab[k]
    printf " each run |"
    printf "\n| %-24s |", "---"
    for (k = 1; k <= nl; k++) printf " %10s |", "---:"
    printf " --- |"
    printf "\n"
    for (r = 1; r <= nrows; r++) {
        row = rows[r]
        if (row ~ /^GET /) continue
        m = metrics[row]
        printf "| %-24s |", row ", " m
        for (k = 1; k <= nl; k++) printf " %10s |", cell(lab[k], row, m)
        all = ""
        for (k = 1; k <= nl; k++) all = all (k > 1 ? "; " : "") lab[k] ": " runs[lab[k], row, m]
        printf " %s |\n", all
    }
}' "$RESULTS"
