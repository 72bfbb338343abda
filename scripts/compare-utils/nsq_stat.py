#!/usr/bin/env python3
"""Runs Go's nsq_stat and ours side by side against the same nsqd/nsqlookupd (ours) and
compares stdout, stderr (timestamps and the program path removed) and exit codes.

Nothing is published while a case runs, so the rate columns are zero for both and the tables
can be compared byte for byte.

Usage: scripts/compare-utils/nsq_stat.py [--theirs-dir /tmp/goref/bin] [--ours-dir target/debug]
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from support import Daemon  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_lookupd(ours):
    return Daemon(
        os.path.join(ours, "nsqlookupd"),
        ["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", "--broadcast-address=127.0.0.1"],
    )


def start_nsqd(ours, lookupd=None):
    data = tempfile.mkdtemp(prefix="cmp-nsqd-")
    args = [
        f"--data-path={data}",
        "--tcp-address=127.0.0.1:0",
        "--http-address=127.0.0.1:0",
        "--https-address=",
        "--broadcast-address=127.0.0.1",
    ]
    if lookupd:
        args.append(f"--lookupd-tcp-address={lookupd.tcp}")
    return Daemon(os.path.join(ours, "nsqd"), args, data)


def http(addr, method, path, body=b""):
    req = urllib.request.Request(f"http://{addr}{path}", data=body if method == "POST" else None, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def normalize(text, binary):
    text = re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", text, flags=re.M)
    text = text.replace(f"Usage of {binary}:", "Usage of PROGRAM:")
    # Go lists the errors of parallel queries in the order they finished; sort them.
    idx = text.find('Get "')
    if idx >= 0:
        rest = text[idx:].rstrip("\n").split("\n")
        if all(line.startswith('Get "') for line in rest):
            text = text[:idx] + "\n".join(sorted(rest)) + "\n"
    return text


def run(binary, args, timeout=30, stop_after=None):
    p = subprocess.Popen([binary] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=stop_after or timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=timeout)
    return (p.returncode, normalize(out.decode(errors="replace"), binary),
            normalize(err.decode(errors="replace"), binary))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--theirs-dir", default="/tmp/goref/bin")
    ap.add_argument("--ours-dir", default=os.path.join(ROOT, "target", "debug"))
    a = ap.parse_args()
    theirs = os.path.join(a.theirs_dir, "nsq_stat")
    ours = os.path.join(a.ours_dir, "nsq_stat")

    lookupd = start_lookupd(a.ours_dir)
    nsqd = start_nsqd(a.ours_dir, lookupd)
    nsqd2 = start_nsqd(a.ours_dir, lookupd)
    try:
        for d in (nsqd, nsqd2):
            http(d.http, "POST", "/topic/create?topic=t")
            http(d.http, "POST", "/channel/create?topic=t&channel=c")
        for i in range(3):
            http(nsqd.http, "POST", "/pub?topic=t", f"m{i}".encode())
        for i in range(4):
            http(nsqd2.http, "POST", "/pub?topic=t", f"n{i}".encode())
        http(nsqd.http, "POST", "/topic/create?topic=solo")
        http(nsqd.http, "POST", "/channel/create?topic=solo&channel=c#ephemeral")
        # Wait for nsqlookupd to know both nsqds.
        deadline = time.time() + 10
        while time.time() < deadline:
            if http(lookupd.http, "GET", "/lookup?topic=t").count(b"broadcast_address") == 2:
                break
            time.sleep(0.1)

        n1, n2, lk = nsqd.http, nsqd2.http, lookupd.http
        fast = ["--interval=100ms"]
        cases = [
            [],
            ["-h"],
            ["--version"],
            ["--bogus"],
            ["--topic=t"],
            ["--channel=c"],
            ["--topic=t", "--channel=c"],
            ["--topic=t", "--channel=c", "--interval=0"],
            ["--topic=t", "--channel=c", "--interval=-1s"],
            ["--topic=t", "--channel=c", "--interval=1x"],
            ["--topic=t", "--channel=c", "--http-client-connect-timeout=0"],
            ["--topic=t", "--channel=c", "--http-client-request-timeout=-2s"],
            ["--topic=t", "--channel=c", "--count=0"],
            ["--topic=t", "--channel=c", "--count=-1"],
            ["--topic=t", "--channel=c", "--count=x"],
            ["--topic=t", "--channel=c", "--count=0x10"],
            ["--topic=t", "--channel=c", "--count=99999999999"],
            ["--topic=t", "--channel=c", "--count"],
            ["--topic=t", "--channel=c", f"--nsqd-http-address={n1}", f"--lookupd-http-address={lk}"],
            ["--topic=t", "--channel=c", f"--nsqd-http-address=http://{n1}"],
            ["--topic=t", "--channel=c", "--lookupd-http-address=httpx"],
            ["--topic=t", "--channel=c", "--nsqd-http-address=127.0.0.1:1"],
            ["--topic=t", "--channel=c", "--lookupd-http-address=127.0.0.1:1"],
            ["--topic=t", "--channel=c", "--lookupd-http-address=127.0.0.1:1",
             "--lookupd-http-address=127.0.0.1:2"],
            ["--topic=t", "--channel=c", f"--nsqd-http-address={n1}", "--count=2"] + fast,
            ["--topic=t", "--channel=c", f"--nsqd-http-address={n1}",
             f"--nsqd-http-address={n2}", "--count=3"] + fast,
            ["--topic=t", "--channel=c", f"--lookupd-http-address={lk}", "--count=2"] + fast,
            ["--topic=t", "--channel=c", f"--nsqd-http-address={n1}", "--count=27",
             "--interval=20ms"],
            ["--topic=t", "--channel=nope", f"--nsqd-http-address={n1}", "--count=1"] + fast,
            ["--topic=nope", "--channel=c", f"--nsqd-http-address={n1}", "--count=1"] + fast,
            ["--topic=nope", "--channel=c", f"--lookupd-http-address={lk}", "--count=1"] + fast,
            ["--topic=solo", "--channel=c#ephemeral", f"--lookupd-http-address={lk}",
             "--count=1"] + fast,
            ["--topic=t", "--channel=c", f"--nsqd-http-address={n1}",
             "--nsqd-http-address=127.0.0.1:1", "--count=1"] + fast,
        ]
        failures = 0
        for args in cases:
            got_theirs = run(theirs, args)
            got_ours = run(ours, args)
            if got_theirs == got_ours:
                print(f"SAME  {' '.join(args)}")
            else:
                failures += 1
                print(f"DIFF  {' '.join(args)}")
                for name, t, o in zip(("rc", "stdout", "stderr"), got_theirs, got_ours):
                    if t != o:
                        print(f"  {name}:\n    theirs: {t!r}\n    ours:   {o!r}")
        # Runs until a signal: both stop on SIGTERM with status 0 and the same table so far.
        args = ["--topic=t", "--channel=c", f"--nsqd-http-address={n1}", "--interval=300ms"]
        t = run(theirs, args, stop_after=1.0)
        o = run(ours, args, stop_after=1.0)
        same = t[0] == o[0] == 0 and t[1].splitlines()[:3] == o[1].splitlines()[:3]
        print(f"{'SAME' if same else 'DIFF'}  {' '.join(args)} (SIGTERM after 1s)")
        if not same:
            failures += 1
            print(f"    theirs: {t!r}\n    ours:   {o!r}")
        total = len(cases) + 1
        print(f"\nnsq_stat: {total - failures}/{total} cases identical")
        return 1 if failures else 0
    finally:
        nsqd.stop()
        nsqd2.stop()
        lookupd.stop()


if __name__ == "__main__":
    sys.exit(main())
