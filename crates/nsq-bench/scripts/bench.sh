#!/usr/bin/env bash
# Compares nsqd's --durability levels: publish-only, consume-only (of a backlog published just
# before) and publish+consume at once, each against a fresh nsqd on ephemeral loopback ports with
# a temporary data directory. Prints one table of messages per second (rows x levels).
#
# Transport mode (BENCH_TRANSPORTS set, e.g. "plain tls snappy deflate tls+snappy"): instead of
# the levels, compares connection transports negotiated in IDENTIFY, publish-only and
# consume-only at --durability=$BENCH_TRANSPORT_LEVEL (write). Each transport is "plain" or
# "+"-joined parts out of tls, snappy and deflate. nsqd gets a throwaway self-signed certificate
# made in the temp dir (openssl if present, else the bench_cert tool), which the tools verify
# with --tls-ca-file.
#
# usage: scripts/bench.sh NSQD_BIN
#
# The bench tools are taken from the directory of NSQD_BIN (build both into the same target dir:
# `cargo build --release -p nsq-bench -p nsqd`), or from $BENCH_BIN_DIR.
# Tunables (environment): BENCH_RUNFOR (5s), BENCH_BACKLOG (messages published before the
# consume-only run, 2000000), BENCH_LEVELS ("memory write fsync"), BENCH_REPEAT (1; more runs the
# whole matrix again and reports medians), BENCH_PIPELINE (1, as NSQ's bench_writer).
# Message shape follows NSQ's published comparison: 100-byte messages, MPUB batches of 200,
# RDY 2500.
set -euo pipefail

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: $0 NSQD_BIN   (an executable nsqd)" >&2
    exit 2
fi
NSQD=$1
BIN_DIR=${BENCH_BIN_DIR:-$(dirname "$NSQD")}
RUNFOR=${BENCH_RUNFOR:-5s}
BACKLOG=${BENCH_BACKLOG:-2000000}
LEVELS=${BENCH_LEVELS:-memory write fsync}
REPEAT=${BENCH_REPEAT:-1}
PIPELINE=${BENCH_PIPELINE:-1}
TRANSPORTS=${BENCH_TRANSPORTS:-}
TRANSPORT_LEVEL=${BENCH_TRANSPORT_LEVEL:-write}
SIZE=100
BATCH=200
RDY=2500

# transport_args TRANSPORT: the bench tools' flags for one transport name, into TARGS.
transport_args() {
    TARGS=()
    local part
    IFS=+ read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        case $part in
        plain) ;;
        tls) TARGS+=(--tls --tls-ca-file="$WORK/cert.pem") ;;
        snappy) TARGS+=(--snappy) ;;
        deflate) TARGS+=(--deflate) ;;
        *)
            echo "unknown transport part ${part@Q} in ${1@Q} (plain, tls, snappy, deflate)" >&2
            return 1
            ;;
        esac
    done
}

for tool in bench_writer bench_reader bench_pubsub; do
    if [[ ! -x $BIN_DIR/$tool ]]; then
        echo "missing $BIN_DIR/$tool (build nsq-bench, or set BENCH_BIN_DIR)" >&2
        exit 2
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsq-bench.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

cleanup() {
    stop_nsqd
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

record() { # run row level value
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:--}" >>"$RESULTS"
}

common=(--size="$SIZE" --runfor="$RUNFOR")
writer=("$BIN_DIR/bench_writer" "${common[@]}" --batch-size="$BATCH" --pipeline="$PIPELINE")
reader=("$BIN_DIR/bench_reader" "${common[@]}" --rdy="$RDY")

# table COLUMNS NOTE: the median over runs of each row and column (a level or a transport), then
# each column relative to the first.
table() {
    awk -F'\t' -v levels="$1" -v note="$2" -v repeat="$REPEAT" -v runfor="$RUNFOR" \
    -v size="$SIZE" -v batch="$BATCH" -v rdy="$RDY" -v pipeline="$PIPELINE" "$median_awk"'
{
    if (!($2 in seen)) { seen[$2] = 1; rows[++nrows] = $2 }
    if ($4 != "-") vals[$2, $3] = vals[$2, $3] " " $4
}
END {
    nl = split(levels, lv, " ")
    printf "\nmsg/s (backlog: messages), median of %d run(s)\n", repeat
    printf "%d-byte messages, MPUB %d, pipeline %d, RDY %d, --runfor %s\n", \
        size, batch, pipeline, rdy, runfor
    if (note != "") printf "%s\n", note
    printf "%-22s", "row"
    for (i = 1; i <= nl; i++) printf " %12s", lv[i]
    for (i = 2; i <= nl; i++) printf " %14s", lv[i] "/" lv[1]
    printf "\n"
    for (r = 1; r <= nrows; r++) {
        row = rows[r]
        printf "%-22s", row
        for (i = 1; i <= nl; i++) {
            m[i] = median(vals[row, lv[i]])
            printf " %12s", (m[i] == "-" ? "-" : sprintf("%.0f", m[i]))
        }
        for (i = 2; i <= nl; i++) {
            if (row ~ /backlog/ || m[1] == "-" || m[i] == "-" || m[1] + 0 == 0) printf " %14s", ""
            else printf " %14.2f", m[i] / m[1]
        }
        printf "\n"
    }
}' "$RESULTS"
}

if [[ -n $TRANSPORTS ]]; then
    for t in $TRANSPORTS; do
        transport_args "$t" || exit 2
    done
    if command -v openssl >/dev/null; then
        # CA:FALSE so that the certificate can also be verified as its own trust anchor.
        openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost \
            -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
            -days 1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
    else
        "$BIN_DIR/bench_cert" "$WORK/cert.pem" "$WORK/key.pem"
    fi
    tls_flags=(--tls-cert="$WORK/cert.pem" --tls-key="$WORK/key.pem")
    for run in $(seq "$REPEAT"); do
        for t in $TRANSPORTS; do
            echo "run $run, transport $t, --durability=$TRANSPORT_LEVEL" >&2
            transport_args "$t"

            name=$run-$t-pub
            start_nsqd "$name" --durability="$TRANSPORT_LEVEL" "${tls_flags[@]}"
            run_tool "$WORK/out" "${writer[@]}" "${TARGS[@]}" --nsqd-tcp-address="$TCP" \
                --topic=bench_pub || true
            record "$run" publish "$t" "$(field 'msgs/s' "$WORK/out")"
            finish_nsqd "$name"

            # As in the level comparison: create the channel, queue a backlog (plain, so every
            # transport reads the same backlog), then read it through the transport.
            name=$run-$t-sub
            start_nsqd "$name" --durability="$TRANSPORT_LEVEL" "${tls_flags[@]}"
            run_tool "$WORK/out" "${reader[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
                --runfor=100ms --count=1 || true
            run_tool "$WORK/out" "${writer[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
                --count="$BACKLOG" --runfor=20s || true
            published=$(field msgs "$WORK/out")
            if [[ -n $published && $published -gt 0 ]]; then
                run_tool "$WORK/out" "${reader[@]}" "${TARGS[@]}" --nsqd-tcp-address="$TCP" \
                    --topic=bench_sub --count="$published" || true
                record "$run" consume "$t" "$(field 'msgs/s' "$WORK/out")"
            else
                record "$run" consume "$t" -
            fi
            finish_nsqd "$name"
        done
    done
    table "$TRANSPORTS" "columns are transports, nsqd --durability=$TRANSPORT_LEVEL"
else
    for run in $(seq "$REPEAT"); do
        for level in $LEVELS; do
            echo "run $run, --durability=$level" >&2

            name=$run-$level-pub
            start_nsqd "$name" --durability="$level"
            run_tool "$WORK/out" "${writer[@]}" --nsqd-tcp-address="$TCP" --topic=bench_pub || true
            record "$run" publish "$level" "$(field 'msgs/s' "$WORK/out")"
            finish_nsqd "$name"

            name=$run-$level-sub
            start_nsqd "$name" --durability="$level"
            # Subscribe once (nothing to read yet) so the channel exists and the backlog is queued
            # for it, as it would be for a consumer that fell behind.
            run_tool "$WORK/out" "${reader[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
                --runfor=100ms --count=1 || true
            # The backlog is bounded by count and by time, so a slow level cannot stall the script.
            run_tool "$WORK/out" "${writer[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
                --count="$BACKLOG" --runfor=20s || true
            published=$(field msgs "$WORK/out")
            if [[ -n $published && $published -gt 0 ]]; then
                run_tool "$WORK/out" "${reader[@]}" --nsqd-tcp-address="$TCP" --topic=bench_sub \
                    --count="$published" || true
                record "$run" consume "$level" "$(field 'msgs/s' "$WORK/out")"
            else
                record "$run" consume "$level" -
            fi
            finish_nsqd "$name"

            name=$run-$level-pubsub
            start_nsqd "$name" --durability="$level"
            run_tool "$WORK/out" "$BIN_DIR/bench_pubsub" "${common[@]}" --batch-size="$BATCH" \
                --pipeline="$PIPELINE" --rdy="$RDY" --nsqd-tcp-address="$TCP" \
                --topic=bench_pubsub || true
            record "$run" "pub+sub: publish" "$level" "$(field 'pub msgs/s' "$WORK/out")"
            record "$run" "pub+sub: consume" "$level" "$(field 'sub msgs/s' "$WORK/out")"
            record "$run" "pub+sub: backlog" "$level" "$(field backlog "$WORK/out")"
            finish_nsqd "$name"
        done
    done

    table "$LEVELS" ""
fi


if [[ $REPEAT -gt 1 ]]; then
    echo
    echo "every run (run, row, level or transport, value):"
    sed 's/^/  /' "$RESULTS"
fi
