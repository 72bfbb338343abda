#!/usr/bin/env python3
"""Side-by-side check of nsq_to_nsq: NSQ 1.3.0's Go binary and ours relay the same messages with
the same flags between our nsqd; the messages left on each destination nsqd, what stays on the
source channel, the exit codes and the error output for bad command lines must match.

Usage: scripts/compare-utils/nsq_to_nsq.py [--theirs-dir DIR] [--ours-dir DIR] [-v]
Exits 0 when every case matches. Shares its helpers with nsq_to_http.py.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nsq_to_http import (  # noqa: E402
    Nsqd, Report, common_args, free_port, run_flags, stop_tool, wait_until)

JSON_MESSAGES = [
    b'{"kind":"a","x":1.0,"y":2}',
    b'{"kind":"b","x":1}',
    b"not json",
    b'{"kind":"a","x":1.5,"z":"<&>\\u2028\\u0001\\b","w":[1.0,2e21,{"b":1,"a":null}]}',
    b'{"kind":7,"x":3}',
    b'{"kind":"a","big":12345678901234567890,"neg":-0.0,"tiny":1e-7,"x":9007199254740993}',
    b'{"kind":"a"}',
]

# name, flags, source messages, messages expected on the destinations in total, number of
# destinations, what should stay on the source channel.
CASES = [
    ("plain relay", [], [b"a", b"b", b"c"], 3, 1, 0),
    ("destination topic", ["--destination-topic={dest}"], [b"x", b"y"], 2, 1, 0),
    ("round-robin", ["--mode=round-robin", "--max-in-flight=1"],
     [b"1", b"2", b"3", b"4", b"5"], 5, 2, 0),
    ("hostpool", ["--max-in-flight=1"], [b"1", b"2", b"3", b"4"], 4, 2, 0),
    ("unknown mode", ["--mode=zzz", "--max-in-flight=1"], [b"1", b"2", b"3"], 3, 2, 0),
    ("require field", ["--require-json-field=kind"], JSON_MESSAGES, 6, 1, 0),
    ("require string value", ["--require-json-field=kind", "--require-json-value=a"],
     JSON_MESSAGES, 4, 1, 0),
    ("require number value", ["--require-json-field=kind", "--require-json-value=7"],
     JSON_MESSAGES, 1, 1, 0),
    ("whitelist", ["--whitelist-json-field=x", "--whitelist-json-field=z",
                   "--whitelist-json-field=w", "--whitelist-json-field=big",
                   "--whitelist-json-field=neg", "--whitelist-json-field=tiny"],
     JSON_MESSAGES, 6, 1, 0),
    ("require and whitelist", ["--require-json-field=kind", "--require-json-value=a",
                               "--whitelist-json-field=x"], JSON_MESSAGES, 4, 1, 0),
]

FLAG_CASES = [
    [],
    ["--topic=t"],
    ["--topic=a/b"],
    ["--topic=t", "--destination-topic=a b"],
    ["--topic=t", "--channel=x/y"],
    ["--topic=t", "--channel="],
    ["--topic=t", "--nsqd-tcp-address=x"],
    ["--topic=t", "--nsqd-tcp-address=x", "--lookupd-http-address=y"],
    ["--bogus"],
    ["--max-in-flight=x"],
    ["--producer-opt=bogus"],
    ["--consumer-opt=max_in_flight,-1"],
    ["--version"],
    ["-h"],
]


def main():
    args = common_args()
    report = Report(args.verbose)
    theirs = os.path.join(args.theirs_dir, "nsq_to_nsq")
    ours = os.path.join(args.ours_dir, "nsq_to_nsq")

    for flags in FLAG_CASES:
        report.check(f"flags {flags}", run_flags(theirs, flags), run_flags(ours, flags))

    nsqd_bin = os.path.join(args.ours_dir, "nsqd")
    src = Nsqd(nsqd_bin)
    dsts = [Nsqd(nsqd_bin), Nsqd(nsqd_bin)]
    try:
        dead = f"127.0.0.1:{free_port()}"
        res = []
        for b in (theirs, ours):
            code, _, err = run_flags(b, ["--topic=t", f"--nsqd-tcp-address={dead}",
                                         f"--destination-nsqd-tcp-address={dead}"])
            res.append((code, err.splitlines()[-1] if err else ""))
        report.check("unreachable source nsqd", res[0], res[1])

        for i, (name, flags, messages, expect, ndest, left) in enumerate(CASES):
            results = []
            for side, binary in (("theirs", theirs), ("ours", ours)):
                topic = f"c{i}_{side}"
                dest_topic = f"d{i}_{side}" if any("{dest}" in f for f in flags) else topic
                src.publish(topic, messages)
                argv = [binary, f"--topic={topic}", f"--nsqd-tcp-address={src.tcp}"]
                argv += [f"--destination-nsqd-tcp-address={d.tcp}" for d in dsts[:ndest]]
                argv += [f.format(dest=dest_topic) for f in flags]
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

                def count():
                    return sum((d.topic(dest_topic) or {}).get("message_count", 0)
                               for d in dsts[:ndest])
                try:
                    wait_until(lambda: count() >= expect, what=f"{name}: {expect} relayed")
                    src.wait_settled(topic, "nsq_to_nsq", left)
                finally:
                    code = stop_tool(proc)
                got = []
                for d in dsts[:ndest]:
                    n = (d.topic(dest_topic) or {}).get("message_count", 0)
                    got.append(sorted(d.read_topic(dest_topic, n)) if n else [])
                results.append((code, got))
            report.check(name, results[0], results[1])
    finally:
        src.stop()
        for d in dsts:
            d.stop()
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
