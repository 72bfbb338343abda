#!/usr/bin/env bash
# Instructions per message in nsqd, counted by valgrind's callgrind: a figure that does not move
# with the noise of a shared machine, for comparing builds before and after a change.
#
# usage: scripts/callgrind.sh NSQD_BIN [EXTRA_NSQD_ARGS...]
#
# Each workload runs against a fresh nsqd under callgrind twice, with CALLGRIND_SMALL and
# CALLGRIND_LARGE messages (defaults 20000 and 220000), and reports the difference in
# instructions divided by the difference in messages, so start-up, shutdown and connection set-up
# cancel out:
#   publish: bench_writer MPUBs (100-byte messages, batches of 200, one connection) to a topic
#            without channels;
#   consume: a channel is created, the messages are published as above, then bench_reader reads
#            them all (RDY 2500, a FIN per message); the publish run's count is subtracted.
# Every instruction of nsqd's process is counted (all threads); the bench tools run natively.
# The bench tools are taken from the directory of NSQD_BIN, or from $BENCH_BIN_DIR.
set -euo pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
    echo "usage: $0 NSQD_BIN [EXTRA_NSQD_ARGS...]   (an executable nsqd)" >&2
    exit 2
fi
NSQD=$1
shift
EXTRA=("$@")
BIN_DIR=${BENCH_BIN_DIR:-$(dirname "$NSQD")}
SMALL=${CALLGRIND_SMALL:-20000}
LARGE=${CALLGRIND_LARGE:-220000}
command -v valgrind >/dev/null || {
    echo "valgrind is not installed" >&2
    exit 2
}
for tool in bench_writer bench_reader; do
    [[ -x $BIN_DIR/$tool ]] || {
        echo "missing $BIN_DIR/$tool (build nsq-bench, or set BENCH_BIN_DIR)" >&2
        exit 2
    }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsq-callgrind.XXXXXX")
PID=
cleanup() {
    [[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# measure NAME COUNT CONSUME: runs one workload under callgrind, prints nsqd's instruction count.
measure() {
    local name=$1 count=$2 consume=$3
    local data=$WORK/data-$name log=$WORK/$name.log out=$WORK/$name.out
    mkdir -p "$data"
    : >"$log"
    valgrind --tool=callgrind --callgrind-out-file="$out" --log-file="$WORK/$name.vg" \
        "$NSQD" --data-path="$data" --tcp-address=127.0.0.1:0 --http-address=127.0.0.1:0 \
        "${EXTRA[@]}" 2>"$log" &
    PID=$!
    local tcp=
    for _ in $(seq 600); do
        tcp=$(sed -n 's/.*TCP: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -n1)
        [[ -n $tcp ]] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $tcp ]]; then
        echo "nsqd under valgrind did not start:" >&2
        cat "$log" "$WORK/$name.vg" >&2
        exit 1
    fi
    local common=(--nsqd-tcp-address="$tcp" --topic=cg --size=100 --runfor=600s)
    if [[ $consume == 1 ]]; then
        "$BIN_DIR/bench_reader" "${common[@]}" --runfor=100ms --count=1 >/dev/null 2>&1 || true
    fi
    "$BIN_DIR/bench_writer" "${common[@]}" --batch-size=200 --count="$count" \
        >"$WORK/$name.w" 2>&1
    if [[ $consume == 1 ]]; then
        "$BIN_DIR/bench_reader" "${common[@]}" --rdy=2500 --count="$count" \
            >"$WORK/$name.r" 2>&1
    fi
    kill -TERM "$PID"
    wait "$PID" || true
    PID=
    # callgrind's "summary:" line holds the total of the first event, instructions (Ir).
    local ir
    ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out" | head -n1)
    [[ -n $ir ]] || ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out" | head -n1)
    if [[ -z $ir ]]; then
        echo "no instruction total in $out" >&2
        exit 1
    fi
    echo "$ir"
}

echo "counting instructions in $NSQD ${EXTRA[*]} ($SMALL and $LARGE messages)" >&2
pub_s=$(measure pub-s "$SMALL" 0)
pub_l=$(measure pub-l "$LARGE" 0)
sub_s=$(measure sub-s "$SMALL" 1)
sub_l=$(measure sub-l "$LARGE" 1)
awk -v ps="$pub_s" -v pl="$pub_l" -v ss="$sub_s" -v sl="$sub_l" -v s="$SMALL" -v l="$LARGE" '
BEGIN {
    n = l - s
    pub = (pl - ps) / n
    sub_ = ((sl - pl) - (ss - ps)) / n
    printf "publish_instructions_per_msg: %.0f\n", pub
    printf "consume_instructions_per_msg: %.0f\n", sub_
    printf "raw: pub %s/%s, pub+consume %s/%s instructions\n", ps, pl, ss, sl
}'
