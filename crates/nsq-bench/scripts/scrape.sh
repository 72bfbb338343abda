#!/usr/bin/env bash
# What scraping nsqd's /metrics costs, on one fresh nsqd (ephemeral loopback ports, temporary
# data directory) holding SCRAPE_TOPICS topics x SCRAPE_CHANNELS channels:
#  1. the time and size of one /metrics page against /stats?format=json (bench_scrape, the two
#     pages in turn, SCRAPE_COUNT times each; median, p90, max);
#  2. bench_pubsub throughput without and with a scraper GETting /metrics every second,
#     alternating (without, with, without, with, ...) SCRAPE_REPEAT times; medians.
#
# usage: scripts/scrape.sh NSQD_BIN
#
# The bench tools are taken from the directory of NSQD_BIN (`cargo build --release -p nsq-bench
# -p nsqd`), or from $BENCH_BIN_DIR. Tunables (environment): SCRAPE_TOPICS (2000),
# SCRAPE_CHANNELS (5), SCRAPE_COUNT (9), SCRAPE_REPEAT (3), SCRAPE_RUNFOR (10s), plus nsqd
# flags in NSQD_EXTRA_ARGS (space-separated).
set -euo pipefail

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: $0 NSQD_BIN   (an executable nsqd)" >&2
    exit 2
fi
NSQD=$1
BIN_DIR=${BENCH_BIN_DIR:-$(dirname "$NSQD")}
TOPICS=${SCRAPE_TOPICS:-2000}
CHANNELS=${SCRAPE_CHANNELS:-5}
COUNT=${SCRAPE_COUNT:-9}
REPEAT=${SCRAPE_REPEAT:-3}
RUNFOR=${SCRAPE_RUNFOR:-10s}
read -ra NSQD_EXTRA <<<"${NSQD_EXTRA_ARGS:-}"

for tool in bench_scrape bench_pubsub; do
    if [[ ! -x $BIN_DIR/$tool ]]; then
        echo "missing $BIN_DIR/$tool (build nsq-bench, or set BENCH_BIN_DIR)" >&2
        exit 2
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsq-scrape.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
SCRAPER=
cleanup() {
    [[ -n $SCRAPER ]] && kill "$SCRAPER" 2>/dev/null
    stop_nsqd
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_nsqd scrape
HTTP=$(sed -n 's/.*HTTP: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$WORK/nsqd-scrape.log" | sed -n 1p)

echo "== one scrape: $TOPICS topics x $CHANNELS channels, $COUNT GETs of each page in turn"
"$BIN_DIR/bench_scrape" --nsqd-http-address="$HTTP" --create-topics="$TOPICS" \
    --channels-per-topic="$CHANNELS" --count="$COUNT" --path=/metrics --path='/stats?format=json'

echo
echo "== bench_pubsub (100-byte messages, MPUB 200, RDY 2500, --runfor $RUNFOR) without and with a 1 Hz /metrics scraper"
for run in $(seq "$REPEAT"); do
    for mode in without with; do
        SCRAPER=
        if [[ $mode == with ]]; then
            "$BIN_DIR/bench_scrape" --nsqd-http-address="$HTTP" --interval=1s \
                --runfor="$RUNFOR" >"$WORK/scraper" 2>/dev/null &
            SCRAPER=$!
        fi
        run_tool "$WORK/out" "$BIN_DIR/bench_pubsub" --size=100 --batch-size=200 --rdy=2500 \
            --runfor="$RUNFOR" --nsqd-tcp-address="$TCP" --topic="pubsub-$run-$mode" || true
        if [[ -n $SCRAPER ]]; then
            wait "$SCRAPER" || true
            SCRAPER=
            echo "  scraper: $(field scrapes "$WORK/scraper") scrapes, median $(field p50_ms "$WORK/scraper") ms" >&2
        fi
        printf '%s\t%s\t%s\t%s\n' "$run" "$mode" "$(field 'pub msgs/s' "$WORK/out")" \
            "$(field 'sub msgs/s' "$WORK/out")" >>"$RESULTS"
    done
done

awk -F'\t' "$median_awk"'
{ pub[$2] = pub[$2] " " $3; sub_[$2] = sub_[$2] " " $4 }
END {
    printf "\nmsg/s, median of %d runs each (every run: publish / consume)\n", NR / 2
    for (m in pub) printf "%-8s publish %10.0f   consume %10.0f   runs:%s /%s\n", m, median(pub[m]), median(sub_[m]), pub[m], sub_[m]
}' "$RESULTS"
