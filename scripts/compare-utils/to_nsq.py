#!/usr/bin/env python3
"""Runs Go's to_nsq and ours side by side with the same flags and stdin against the same nsqd
(ours) and compares exit codes, stderr (timestamps, the program path and the client library's
INF/ERR chatter removed), the topic's message count and the bodies consumed from it.

Usage: scripts/compare-utils/to_nsq.py [--theirs-dir /tmp/goref/bin] [--ours-dir target/debug]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from support import *  # noqa: E402,F401,F403


def normalize(text, binary):
    text = re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", text, flags=re.M)
    text = text.replace(f"Usage of {binary}:", "Usage of PROGRAM:")
    return "".join(l for l in text.splitlines(True) if not CHATTER.match(l))


def run_case(binary, args, stdin, nsqds, topic, slow_feed=False):
    for n in nsqds:
        http(n.http, "POST", f"/topic/delete?topic={topic}")
        http(n.http, "POST", f"/topic/create?topic={topic}")
        http(n.http, "POST", f"/channel/create?topic={topic}&channel=cmp")
    start = time.time()
    p = subprocess.Popen([binary] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    if slow_feed:
        # Feed a few records, then SIGTERM while stdin is still open.
        p.stdin.write(stdin)
        p.stdin.flush()
        time.sleep(1.0)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    else:
        out, err = p.communicate(stdin, timeout=60)
    elapsed = time.time() - start
    results = []
    for n in nsqds:
        count, depth = channel_depth(n, topic, "cmp")
        results.append((count, consume(n, topic, "cmp", depth)))
    return (p.returncode, out.decode(errors="replace"),
            normalize(err.decode(errors="replace"), binary), results), elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--theirs-dir", default="/tmp/goref/bin")
    ap.add_argument("--ours-dir", default=os.path.join(ROOT, "target", "debug"))
    a = ap.parse_args()
    theirs = os.path.join(a.theirs_dir, "to_nsq")
    ours = os.path.join(a.ours_dir, "to_nsq")
    n1 = start_nsqd(a.ours_dir)
    n2 = start_nsqd(a.ours_dir)
    try:
        t1 = f"--nsqd-tcp-address={n1.tcp}"
        t2 = f"--nsqd-tcp-address={n2.tcp}"
        big = b"x" * (1024 * 1024 + 10) + b"\n"
        cases = [
            # (name, args, stdin, options)
            ("no flags", [], b"", {}),
            ("help", ["-h"], b"", {}),
            ("version is not a flag", ["--version"], b"", {}),
            ("unknown flag", ["--bogus"], b"", {}),
            ("no topic", [t1], b"a\n", {}),
            ("no address", ["--topic=t"], b"a\n", {}),
            ("two-byte delimiter", ["--topic=t", t1, "--delimiter=ab"], b"a\n", {}),
            ("empty delimiter", ["--topic=t", t1, "--delimiter="], b"a\n", {}),
            ("multibyte delimiter", ["--topic=t", t1, "--delimiter=é"], b"a\n", {}),
            ("bad rate", ["--topic=t", t1, "--rate=x"], b"", {}),
            ("unknown producer-opt", ["--topic=t", t1, "--producer-opt=bogus,1"], b"", {}),
            ("bad producer-opt value", ["--topic=t", t1, "--producer-opt=max_attempts,x"], b"", {}),
            ("bare non-bool producer-opt", ["--topic=t", t1, "--producer-opt=max_attempts"], b"", {}),
            ("snappy and deflate", ["--topic=t", t1, "--producer-opt=snappy",
                                    "--producer-opt=deflate"], b"a\n", {}),
            ("simple lines", ["--topic=t", t1], b"one\ntwo\nthree\n", {}),
            ("no trailing newline", ["--topic=t", t1], b"one\ntwo\nthree", {}),
            ("one byte last record", ["--topic=t", t1], b"one\nt", {}),
            ("empty records", ["--topic=t", t1], b"\n\na\n\n\nb\n\n", {}),
            ("crlf", ["--topic=t", t1], b"a\r\nb\r\n", {}),
            ("empty input", ["--topic=t", t1], b"", {}),
            ("comma delimiter", ["--topic=t", t1, "--delimiter=,"], b"a,b,,c\n,d", {}),
            ("binary bodies", ["--topic=t", t1, "--delimiter=|"], bytes(range(1, 124)) + b"|\x00\xff|", {}),
            ("two nsqds", ["--topic=t", t1, t2], b"a\nb\nc\n", {}),
            ("same nsqd twice", ["--topic=t", t1, t1], b"a\nb\n", {}),
            ("many records", ["--topic=t", t1], b"".join(b"msg%d\n" % i for i in range(500)), {}),
            ("rate 5", ["--topic=t", t1, "--rate=5"], b"a\nb\nc\nd\ne\nf\n", {"timed": True}),
            ("rate 0", ["--topic=t", t1, "--rate=0"], b"a\nb\n", {}),
            ("rate -3", ["--topic=t", t1, "--rate=-3"], b"a\nb\n", {}),
            ("message too big", ["--topic=t", t1], b"ok\n" + big + b"after\n", {}),
            ("unreachable nsqd", ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1"], b"a\n", {}),
            ("unreachable, no input", ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1"], b"", {}),
            ("reachable and unreachable", ["--topic=t", t1, "--nsqd-tcp-address=127.0.0.1:1"],
             b"a\nb\n", {"unordered": True}),
            ("invalid topic", ["--topic=bad!", t1], b"a\n", {}),
            ("topic with a space", ["--topic=sp ace", t1], b"a\n", {}),
            ("user_agent opt ignored", ["--topic=t", t1, "--producer-opt=user_agent,x"], b"a\n", {}),
            ("SIGTERM with stdin open", ["--topic=t", t1], b"a\nb\n", {"slow": True}),
        ]
        failures = 0
        for name, args, stdin, o in cases:
            nsqds = [n1, n2]
            topic = "t"
            if any(x.startswith("--topic=") for x in args):
                topic = [x for x in args if x.startswith("--topic=")][0].split("=", 1)[1]
                if not re.fullmatch(r"[.a-zA-Z0-9_-]+", topic):
                    topic = "t"
            got_t, el_t = run_case(theirs, args, stdin, nsqds, topic, o.get("slow", False))
            got_o, el_o = run_case(ours, args, stdin, nsqds, topic, o.get("slow", False))
            # A space splits the PUB command, so nsqd sees the first word as the topic.
            if name == "topic with a space":
                got_t = got_t[:3] + (got_t[3], channel_depth(n1, "sp", "cmp"))
                got_o = got_o[:3] + (got_o[3], channel_depth(n1, "sp", "cmp"))
                http(n1.http, "POST", "/topic/delete?topic=sp")
            if o.get("unordered"):
                # Go publishes to its producers in random map order; the outcome on the
                # reachable nsqd depends on that order, so only compare the exit and error.
                got_t, got_o = got_t[:3], got_o[:3]
            same = got_t == got_o
            if o.get("timed"):
                same = same and abs(el_t - el_o) < 0.5
            if same:
                print(f"SAME  {name}")
            else:
                failures += 1
                print(f"DIFF  {name}  {args}")
                for label, t, ov in zip(("rc", "stdout", "stderr", "nsqd"), got_t, got_o):
                    if t != ov:
                        print(f"  {label}:\n    theirs: {str(t)[:400]}\n    ours:   {str(ov)[:400]}")
                if o.get("timed"):
                    print(f"  elapsed: theirs {el_t:.2f}s ours {el_o:.2f}s")
        print(f"\nto_nsq: {len(cases) - failures}/{len(cases)} cases identical")
        return 1 if failures else 0
    finally:
        n1.stop()
        n2.stop()


if __name__ == "__main__":
    sys.exit(main())
