# Shell functions shared by the benchmark scripts (sourced, not run): starting and stopping a
# throwaway nsqd, running a bench tool and reading its `key: value` result lines.
#
# The sourcing script sets NSQD (the binary), WORK (its temp dir) and optionally the array
# NSQD_EXTRA (flags for every nsqd it starts). These functions set NSQD_PID and TCP.

NSQD_PID=
TCP=

# stop_nsqd: SIGTERM lets nsqd flush and exit cleanly; a hung daemon is killed after 30 s.
stop_nsqd() {
    if [[ -n $NSQD_PID ]]; then
        kill -TERM "$NSQD_PID" 2>/dev/null || true
        for _ in $(seq 300); do
            kill -0 "$NSQD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$NSQD_PID" 2>/dev/null || true
        wait "$NSQD_PID" 2>/dev/null || true
        NSQD_PID=
    fi
}

# start_nsqd NAME [NSQD_ARGS...]: a fresh daemon on ephemeral loopback ports with its own data
# directory; sets NSQD_PID and TCP (its listening address, read from its log).
start_nsqd() {
    local name=$1
    shift
    local data=$WORK/data-$name log=$WORK/nsqd-$name.log
    rm -rf "$data"
    mkdir -p "$data"
    # Created here, not by the background redirection, so the poll below never races it.
    : >"$log"
    "$NSQD" --data-path="$data" --tcp-address=127.0.0.1:0 --http-address=127.0.0.1:0 \
        ${NSQD_EXTRA[@]+"${NSQD_EXTRA[@]}"} "$@" 2>"$log" &
    NSQD_PID=$!
    TCP=
    for _ in $(seq 100); do
        TCP=$(sed -n 's/.*TCP: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | sed -n 1p)
        [[ -n $TCP ]] && break
        if ! kill -0 "$NSQD_PID" 2>/dev/null; then
            echo "nsqd exited during start-up:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [[ -z $TCP ]]; then
        echo "nsqd did not report its TCP address within 10 s:" >&2
        cat "$log" >&2
        exit 1
    fi
}

# finish_nsqd NAME: stops the daemon, shows the first of any warning or error lines it logged,
# drops its data.
finish_nsqd() {
    local name=$1 n
    stop_nsqd
    n=$(grep -cE 'ERROR|FATAL|WARN' "$WORK/nsqd-$name.log" || true)
    if [[ $n -gt 0 ]]; then
        echo "  nsqd logged $n warning/error line(s) in $name, first:" >&2
        # sed, not head: head would leave grep with SIGPIPE, a failure under pipefail.
        grep -E 'ERROR|FATAL|WARN' "$WORK/nsqd-$name.log" | sed -n '1,3s/^/    /p' >&2
    fi
    rm -rf "$WORK/data-$name"
}

# field KEY FILE: the value of a `KEY: value` line in a tool's stdout.
field() {
    sed -n "s|^$1: ||p" "$2" | sed -n 1p
}

# run_tool OUT TOOL ARGS...: a bench tool's stdout into OUT, its last log lines to the terminal;
# on failure OUT is emptied (so the row reads "-") and the caller's run goes on.
run_tool() {
    local out=$1
    shift
    if ! "$@" >"$out" 2>"$out.err"; then
        echo "  $(basename "$1") failed: $(tail -n 3 "$out.err" | tr '\n' ' ')" >&2
        : >"$out"
        return 1
    fi
    grep -v '^$' "$out.err" | tail -n 2 | sed 's/^/  /' >&2 || true
}

# median_awk: an awk function `median(list)` over a space-separated list ("-" when empty).
median_awk='
function median(list,    n, v, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
            t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
        }
    if (n == 0) return "-"
    if (n % 2) return v[(n + 1) / 2]
    return (v[n / 2] + v[n / 2 + 1]) / 2
}'
