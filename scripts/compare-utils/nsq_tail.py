#!/usr/bin/env python3
"""Runs Go's nsq_tail and ours side by side with the same flags against the same nsqd and
nsqlookupd (ours) and compares exit codes, stdout, stderr (timestamps, the program path and the
client library's INF/ERR chatter removed) and what is left on the channel afterwards.

Usage: scripts/compare-utils/nsq_tail.py [--theirs-dir /tmp/goref/bin] [--ours-dir target/debug]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from support import *  # noqa: E402,F401,F403


def normalize(text, binary):
    text = re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", text, flags=re.M)
    text = re.sub(r"tail\d{6}#ephemeral", "tailNNNNNN#ephemeral", text)
    text = text.replace(f"Usage of {binary}:", "Usage of PROGRAM:")
    return "".join(l for l in text.splitlines(True) if not CHATTER.match(l))




def start_lookupd(ours):
    return Daemon(os.path.join(ours, "nsqlookupd"), [
        "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
        "--broadcast-address=127.0.0.1"])


def start_nsqd_with(ours, lookupd):
    data = tempfile.mkdtemp(prefix="cmp-nsqd-")
    return Daemon(os.path.join(ours, "nsqd"), [
        f"--data-path={data}", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
        "--https-address=", "--broadcast-address=127.0.0.1",
        f"--lookupd-tcp-address={lookupd.tcp}"], data)


def channel_state(nsqd, topic, channel):
    """(depth, in_flight) once nothing is in flight, or the last reading after 10 s."""
    deadline = time.time() + 10
    state = None
    while time.time() < deadline:
        _, body = http(nsqd.http, "GET", f"/stats?format=json&topic={topic}")
        state = None
        for t in json.loads(body).get("topics") or []:
            if t["topic_name"] == topic:
                for c in t.get("channels") or []:
                    if c["channel_name"] == channel:
                        state = (c["depth"], c["in_flight_count"], c["client_count"])
        if state is None or (state[1] == 0 and state[2] == 0):
            return state
        time.sleep(0.05)
    return state


def setup(nsqd, topics, bodies):
    for t in topics:
        http(nsqd.http, "POST", f"/topic/delete?topic={t}")
        http(nsqd.http, "POST", f"/topic/create?topic={t}")
        http(nsqd.http, "POST", f"/channel/create?topic={t}&channel=cmp")
        for b in bodies.get(t, []):
            http(nsqd.http, "POST", f"/pub?topic={t}", b)


def run_case(binary, args, nsqd, topics, bodies, stop_after, sort_out):
    setup(nsqd, topics, bodies)
    p = subprocess.Popen([binary] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=stop_after or 30)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    out = out.decode(errors="replace")
    if sort_out:
        out = "".join(sorted(out.splitlines(True)))
    left = [channel_state(nsqd, t, "cmp") for t in topics]
    return (p.returncode, out, normalize(err.decode(errors="replace"), binary), left)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--theirs-dir", default="/tmp/goref/bin")
    ap.add_argument("--ours-dir", default=os.path.join(ROOT, "target", "debug"))
    a = ap.parse_args()
    theirs = os.path.join(a.theirs_dir, "nsq_tail")
    ours = os.path.join(a.ours_dir, "nsq_tail")
    lookupd = start_lookupd(a.ours_dir)
    n1 = start_nsqd_with(a.ours_dir, lookupd)
    try:
        t1 = f"--nsqd-tcp-address={n1.tcp}"
        lk = f"--lookupd-http-address={lookupd.http}"
        five = {"a": [b"m%d" % i for i in range(5)]}
        cases = [
            # (name, args, topics, bodies, stop_after seconds (None: runs to its end), sort stdout)
            ("no flags", [], [], {}, None, False),
            ("help", ["-h"], [], {}, None, False),
            ("version", ["--version"], [], {}, None, False),
            ("version with bad opt", ["--version", "--consumer-opt=nope"], [], {}, None, False),
            ("unknown flag", ["--bogus"], [], {}, None, False),
            ("no topic", [t1], [], {}, None, False),
            ("both sources", ["--topic=a", t1, lk], [], {}, None, False),
            ("bad -n", ["-n=x"], [], {}, None, False),
            ("bad max-in-flight", ["--max-in-flight=1.5"], [], {}, None, False),
            ("unknown consumer-opt", ["--topic=a", t1, "--consumer-opt=nope,1"], [], {}, None, False),
            ("bare non-bool consumer-opt", ["--topic=a", t1, "--consumer-opt=max_attempts"], [], {}, None, False),
            ("negative max-in-flight", ["--topic=a", t1, "--max-in-flight=-1"], [], {}, None, False),
            ("invalid topic", ["--topic=a!", t1], [], {}, None, False),
            ("invalid channel", ["--topic=a", "--channel=b c", t1], [], {}, None, False),
            ("snappy and deflate", ["--topic=a", t1, "--consumer-opt=snappy",
                                    "--consumer-opt=deflate"], ["a"], {}, None, False),
            ("unreachable nsqd", ["--topic=a", "--nsqd-tcp-address=127.0.0.1:1"], [], {}, None, False),
            ("-n 3", ["--topic=a", "--channel=cmp", t1, "-n=3"], ["a"], five, None, False),
            ("-n 1", ["--topic=a", "--channel=cmp", t1, "-n=1"], ["a"], five, None, False),
            ("-n 5 exactly", ["--topic=a", "--channel=cmp", t1, "-n=5"], ["a"], five, None, False),
            ("-n with small max-in-flight", ["--topic=a", "--channel=cmp", t1, "-n=4",
                                             "--max-in-flight=1"], ["a"], five, None, False),
            ("print-topic", ["--topic=a", "--channel=cmp", t1, "-n=2", "--print-topic"], ["a"], five,
             None, False),
            ("two topics, -n per topic", ["--topic=a", "--topic=b", "--channel=cmp", t1, "-n=2",
                                          "--print-topic"], ["a", "b"], five, None, False),
            ("via lookupd", ["--topic=a", "--channel=cmp", lk, "-n=2"], ["a"], five, None, False),
            ("binary and empty bodies", ["--topic=a", "--channel=cmp", t1, "-n=3"], ["a"],
             {"a": [b"\x00\x01\xff", b"line\nbreak", b"tab\t"]}, None, False),
            ("runs until SIGTERM", ["--topic=a", "--topic=b", "--channel=cmp", t1, "--print-topic"],
             ["a", "b"], {"a": [b"a1", b"a2"], "b": [b"b1", b"b2", b"b3"]}, 1.5, True),
            ("default ephemeral channel", ["--topic=a", t1, "-n=2"], ["a"], {}, 1.0, False),
        ]
        failures = 0
        for name, args, topics, bodies, stop_after, sort_out in cases:
            got_t = run_case(theirs, args, n1, topics, bodies, stop_after, sort_out)
            got_o = run_case(ours, args, n1, topics, bodies, stop_after, sort_out)
            n = [int(x[3:]) for x in args if x.startswith("-n=") and x[3:].isdigit()]
            if n and stop_after is None:
                # With -n N Go exits before finishing the Nth message, and the FIN of the one
                # before races its exit, so Go leaves N-1 or N (sometimes more) messages behind.
                # Ours must leave exactly N on the topic that reached N (N-1 finished) and
                # never fewer than Go.
                left_t = [st[0] + st[1] if st else 0 for st in got_t[3]]
                left_o = [st[0] + st[1] if st else 0 for st in got_o[3]]
                expected = [len(bodies.get(t, [])) - (n[0] - 1) if len(bodies.get(t, [])) >= n[0]
                            else len(bodies.get(t, [])) for t in topics]
                lenient_ok = left_o == expected and all(a >= b for a, b in zip(left_t, left_o))
                if lenient_ok:
                    got_t = got_t[:3] + ("ok",)
                    got_o = got_o[:3] + ("ok",)
            if got_t == got_o:
                print(f"SAME  {name}")
            else:
                failures += 1
                print(f"DIFF  {name}  {args}")
                for label, t, o in zip(("rc", "stdout", "stderr", "left on nsqd"), got_t, got_o):
                    if t != o:
                        print(f"  {label}:\n    theirs: {str(t)[:600]!r}\n    ours:   {str(o)[:600]!r}")
        print(f"\nnsq_tail: {len(cases) - failures}/{len(cases)} cases identical")
        return 1 if failures else 0
    finally:
        n1.stop()
        lookupd.stop()


if __name__ == "__main__":
    sys.exit(main())
