#!/usr/bin/env python3
"""Times nsq-client against tokio-nsq on one nsqd, run after run, and prints medians.

Starts its own nsqd (ephemeral ports, a temporary data directory), then for each run and each
client, alternating which client goes first:
- pub: publishes COUNT messages to a new topic and deletes it afterwards;
- sub: fills a new topic with COUNT messages (through nsq-client, untimed), consumes and FINs
  all of them, then deletes the topic.
Each figure is the rate the tool reports and the CPU time (user + system) the client process
used, taken from the kernel's accounting of the finished process.

    cargo build --release -p nsqd
    (cd crates/nsq-client/compare && cargo build --release)
    python3 crates/nsq-client/compare/bench.py --nsqd target/release/nsqd --runs 5
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "target", "release", "nsq-client-compare")
CLIENTS = ["ours", "tokio-nsq"]


def start_nsqd(binary, data_dir, extra):
    p = subprocess.Popen(
        [binary, "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
         f"--data-path={data_dir}", "--mem-queue-size=100000000", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tcp = http = None
    for line in p.stderr:
        m = re.search(r"TCP: listening on (\S+)", line)
        if m:
            tcp = m.group(1)
        m = re.search(r"HTTP: listening on (\S+)", line)
        if m:
            http = m.group(1)
        if tcp and http:
            break
    if not (tcp and http):
        p.kill()
        sys.exit("nsqd did not start")
    # Keep draining its log so nsqd never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, tcp, http


def run_tool(args):
    """Runs the tool; returns (msg/s it printed, CPU seconds of the process)."""
    p = subprocess.Popen([TOOL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate()
    # communicate() has reaped the child; its rusage is in RUSAGE_CHILDREN, so measure deltas.
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({p.returncode}): {err.strip()}")
    m = re.search(r"= (\d+) msg/s", out)
    if not m:
        sys.exit(f"unexpected output: {out!r}")
    return int(m.group(1))


def children_cpu():
    r = os.times()
    return r.children_user + r.children_system


def delete_topic(http, topic):
    req = urllib.request.Request(f"http://{http}/topic/delete?topic={topic}", method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def timed(args):
    before = children_cpu()
    rate = run_tool(args)
    return rate, children_cpu() - before


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsqd", required=True, help="nsqd binary to run the clients against")
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--pub-window", type=int, default=100, help="unanswered PUBs at most")
    ap.add_argument("--max-in-flight", type=int, default=2500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--modes", default="pub,sub")
    ap.add_argument("--nsqd-arg", action="append", default=[])
    a = ap.parse_args()
    if not os.access(TOOL, os.X_OK):
        sys.exit(f"build the tool first: (cd {HERE} && cargo build --release)")
    data = tempfile.mkdtemp(prefix="nsq-client-compare-")
    nsqd, tcp, http = start_nsqd(a.nsqd, data, a.nsqd_arg)
    results = {(m, c): [] for m in a.modes.split(",") for c in CLIENTS}
    try:
        for run in range(a.runs):
            order = CLIENTS if run % 2 == 0 else CLIENTS[::-1]
            for mode in a.modes.split(","):
                for client in order:
                    topic = f"{mode}_{client.replace('-', '_')}_{run}"
                    if mode == "pub":
                        r = timed([client, "pub", tcp, topic, str(a.count), str(a.size),
                                   str(a.pub_window)])
                    else:
                        run_tool(["ours", "pub", tcp, topic, str(a.count), str(a.size), "200"])
                        r = timed([client, "sub", tcp, topic, str(a.count), str(a.size),
                                   str(a.max_in_flight)])
                    results[(mode, client)].append(r)
                    print(f"run {run + 1} {mode} {client}: {r[0]:,} msg/s, "
                          f"{r[1]:.2f} CPU s", flush=True)
                    delete_topic(http, topic)
    finally:
        nsqd.terminate()
        nsqd.wait()
        shutil.rmtree(data, ignore_errors=True)
    print()
    print(f"{a.count:,} messages of {a.size} bytes, {a.runs} runs; median (min-max)")
    print("| mode | client | msg/s | client CPU s |")
    print("| --- | --- | --- | --- |")
    for (mode, client), rs in results.items():
        rates = [r for r, _ in rs]
        cpus = [c for _, c in rs]
        print(f"| {mode} | {client} | {statistics.median(rates):,.0f} "
              f"({min(rates):,}-{max(rates):,}) | {statistics.median(cpus):.2f} "
              f"({min(cpus):.2f}-{max(cpus):.2f}) |")
    for mode in a.modes.split(","):
        ours = statistics.median(r for r, _ in results[(mode, "ours")])
        theirs = statistics.median(r for r, _ in results[(mode, "tokio-nsq")])
        print(f"{mode}: nsq-client / tokio-nsq = {ours / theirs:.2f}x (median rates)")


if __name__ == "__main__":
    main()
