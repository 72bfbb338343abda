#!/usr/bin/env python3
"""Side-by-side check of nsq_to_file: NSQ 1.3.0's Go build and ours.

Both run with the same flags against the same nsqd (ours), each on its own channel of the same
topic and with its own output directory, so both archive the same messages. For every case the
script compares exit codes, the fatal lines of bad command lines, the file names (with the host
name, process id and date-time replaced by placeholders), the files' decoded contents, the
messages left on nsqd, and selected log lines.

Usage:
  scripts/compare-utils/nsq_to_file.py [--theirs-dir /tmp/goref/bin] [--ours-dir target/debug]
      [-k CASE] [-v]

Exit status 0 when every case matches.
"""
import argparse
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

STAMP = re.compile(r"^(\[nsq_to_file\] )?\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d{6})? ")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child whose stderr lines are collected in the background."""

    def __init__(self, args, name):
        self.name = name
        self.args = args
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.out = []
        threading.Thread(target=self._drain, args=(self.p.stderr, self.lines), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.p.stdout, self.out), daemon=True).start()

    @staticmethod
    def _drain(stream, into):
        for line in stream:
            into.append(line)

    def wait_line(self, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(needle in l for l in self.lines):
                return True
            if self.p.poll() is not None:
                time.sleep(0.1)
                return any(needle in l for l in self.lines)
            time.sleep(0.02)
        return False

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return "hung"


def http(addr, path, body=None):
    req = urllib.request.Request(f"http://{addr}{path}", data=body,
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


def wait_until(f, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = f()
        if v:
            return v
        time.sleep(0.05)
    return None


def start_daemon(path, args, want=("TCP", "HTTP")):
    p = Proc([path] + args, os.path.basename(path))
    ok = wait_until(lambda: all(any(f"{w}: listening on" in l for l in p.lines) for w in want), 10)
    if not ok:
        raise SystemExit(f"{path} did not start:\n{''.join(p.lines)}")
    return p


def read_tree(root):
    """{relative path: decoded text} for every file under root."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            raw = open(p, "rb").read()
            if n.endswith(".gz"):
                try:
                    raw = gzip.decompress(raw)
                except Exception as e:  # a file still being written
                    raw = b"<undecodable: %s>" % str(e).encode()
            out[os.path.relpath(p, root)] = raw.decode("utf-8", "replace")
    return out


def line_count(root):
    return sum(t.count("\n") for t in read_tree(root).values())


class Env:
    def __init__(self, opts):
        self.opts = opts
        self.tmp = tempfile.mkdtemp(prefix="cmp-to-file-")
        ours = opts.ours_dir
        lt, lh = free_port(), free_port()
        self.lookupd = start_daemon(os.path.join(ours, "nsqlookupd"), [
            f"--tcp-address=127.0.0.1:{lt}", f"--http-address=127.0.0.1:{lh}",
            "--broadcast-address=127.0.0.1"])
        self.lookupd_http = f"127.0.0.1:{lh}"
        t, h = free_port(), free_port()
        os.makedirs(os.path.join(self.tmp, "data"))
        self.nsqd = start_daemon(os.path.join(ours, "nsqd"), [
            f"--data-path={self.tmp}/data", f"--tcp-address=127.0.0.1:{t}",
            f"--http-address=127.0.0.1:{h}", "--https-address=", "--broadcast-address=127.0.0.1",
            f"--lookupd-tcp-address=127.0.0.1:{lt}"])
        self.tcp = f"127.0.0.1:{t}"
        self.http = f"127.0.0.1:{h}"
        self.hostname = socket.gethostname()
        self.count = 0

    def close(self):
        self.nsqd.stop()
        self.lookupd.stop()

    def topic(self, name):
        self.count += 1
        return f"{name}_{self.count}"

    def prepare(self, topic, channels=("go", "rs")):
        http(self.http, f"/topic/create?topic={topic}", b"")
        for c in channels:
            http(self.http, f"/channel/create?topic={topic}&channel={c}", b"")

    def publish(self, topic, bodies):
        for i in range(0, len(bodies), 200):
            http(self.http, f"/mpub?topic={topic}", "\n".join(bodies[i:i + 200]).encode())

    def channel(self, topic, channel):
        d = json.loads(http(self.http, f"/stats?format=json&topic={topic}"))
        for t in d.get("topics") or []:
            for c in t["channels"]:
                if c["channel_name"] == channel:
                    return c
        return None

    def settled(self, topic, channel):
        """Depth once nothing is in flight or deferred."""
        def f():
            c = self.channel(topic, channel)
            if c is None:
                return ("missing",)
            if c["in_flight_count"] == 0 and c["deferred_count"] == 0:
                return (c["depth"],)
            return None
        v = wait_until(f, 15)
        return v[0] if v else "in flight"


def normalize_names(tree, pid, hostname, stamp_texts):
    out = {}
    short = hostname.split(".")[0]
    for name, text in tree.items():
        n = name
        for s in stamp_texts:
            if s:
                n = n.replace(s, "<DT>")
        n = n.replace(str(pid), "<PID>").replace(hostname, "<HOSTNAME>").replace(short, "<SHORT>")
        out[n] = text
    return out


def log_tail(line):
    return STAMP.sub("", line.rstrip("\n"))


class Case:
    def __init__(self, name, flags, messages=0, expect_lines=None, pre=None, during=None,
                 datetime_formats=(), channels_pattern=False, logs=(), lookupd=False,
                 settle_files=None, no_topic=False):
        self.name = name
        self.flags = flags
        self.messages = messages
        self.expect_lines = messages if expect_lines is None else expect_lines
        self.pre = pre
        self.during = during
        self.datetime_formats = datetime_formats
        self.logs = logs
        self.lookupd = lookupd
        self.settle_files = settle_files
        self.no_topic = no_topic


def run_side(env, case, side, binary, topic, bodies):
    out = os.path.join(env.tmp, case.name, side, "out")
    work = os.path.join(env.tmp, case.name, side, "work")
    os.makedirs(out)
    os.makedirs(work)
    if case.pre:
        case.pre(out, work)
    args = [binary]
    if not case.no_topic:
        args.append(f"--topic={topic}")
    if case.lookupd:
        args.append(f"--lookupd-http-address={env.lookupd_http}")
    else:
        args.append(f"--nsqd-tcp-address={env.tcp}")
    args += [f"--channel={side}", f"--output-dir={out}"]
    args += [f.replace("{work}", work).replace("{topic}", topic) for f in case.flags]
    p = Proc(args, side)
    return p, out, work


def compare_case(env, case, verbose):
    topic = env.topic(case.name)
    if not case.lookupd:
        env.prepare(topic)
    bodies = [f"{case.name} message {i:04d}" for i in range(case.messages)]
    sides = {}
    for side, binary in (("go", os.path.join(env.opts.theirs_dir, "nsq_to_file")),
                         ("rs", os.path.join(env.opts.ours_dir, "nsq_to_file"))):
        sides[side] = run_side(env, case, side, binary, topic, bodies)
    try:
        return compare_sides(env, case, verbose, topic, bodies, sides)
    finally:
        for p, _, _ in sides.values():
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()


def compare_sides(env, case, verbose, topic, bodies, sides):
    if case.lookupd:
        # Topics appear through discovery: create them with both channels first.
        for t in case.lookupd(env, topic):
            env.prepare(t)
    time.sleep(0.3)
    if bodies:
        env.publish(topic, bodies)
    results = {}
    for side, (p, out, work) in sides.items():
        want = case.expect_lines
        wait_until(lambda: line_count(out) + line_count(work) >= want, 15)
        if case.settle_files is not None:
            wait_until(lambda: len(read_tree(out)) >= case.settle_files, 10)
    if case.during:
        case.during(env, topic, sides)
    for side, (p, out, work) in sides.items():
        code = p.stop()
        stamps = [subprocess.run(["date", "+" + f], capture_output=True, text=True).stdout.strip()
                  for f in case.datetime_formats]
        tree = normalize_names(read_tree(out), p.p.pid, env.hostname, stamps)
        work_left = sorted(read_tree(work))
        depth = env.settled(topic, side)
        logs = []
        for needle in case.logs:
            logs.append(sorted({log_tail(l).replace(out, "<OUT>").replace(work, "<WORK>")
                                .replace(f"/{side}]", "/<CHANNEL>]")
                                for l in p.lines if needle in l}))
        results[side] = {"exit": code, "files": tree, "work_left": work_left, "depth": depth,
                         "logs": logs}
    diffs = []
    for k in ("exit", "files", "work_left", "depth", "logs"):
        if results["go"][k] != results["rs"][k]:
            diffs.append(k)
    if verbose or diffs:
        for side in ("go", "rs"):
            r = results[side]
            print(f"    {side}: exit={r['exit']} depth={r['depth']} work_left={r['work_left']}")
            for n, t in sorted(r["files"].items()):
                print(f"      {n}: {t.count(chr(10))} lines, {len(t)} chars")
            for l in r["logs"]:
                print(f"      log: {l}")
    return diffs


def flag_cases():
    """Command lines that fail or print without running: (args, ...)."""
    return [
        [], ["-h"], ["--version"], ["--bogus"], ["--max-in-flight=x"], ["--sync-interval=soon"],
        ["--gzip=maybe"], ["--topic=t"], ["--topic=t", "--nsqd-tcp-address=a", "extra"],
        ["--topic=t", "--nsqd-tcp-address=a", "--log-level=loud"],
        ["--log-level=loud", "--version"],
        ["--topic=t", "--nsqd-tcp-address=a", "--channel="],
        ["--topic=t", "--nsqd-tcp-address=a", "--http-client-connect-timeout=0"],
        ["--topic=t", "--nsqd-tcp-address=a", "--http-client-request-timeout=-1s"],
        ["--topic=t", "--nsqd-tcp-address=a", "--lookupd-http-address=b"],
        ["--topic=t", "--nsqd-tcp-address=a", "--gzip-level=0"],
        ["--topic=t", "--nsqd-tcp-address=a", "--gzip-level=10"],
        ["--nsqd-tcp-address=a"], ["--nsqd-tcp-address=a", "--topic-pattern=x"],
        ["--topic"], ["-topic-refresh"],
    ]


def compare_flags(opts, verbose):
    failures = 0
    for args in flag_cases():
        res = {}
        for side, d in (("go", opts.theirs_dir), ("rs", opts.ours_dir)):
            p = subprocess.run([os.path.join(d, "nsq_to_file")] + args, capture_output=True,
                               text=True, timeout=10, stdin=subprocess.DEVNULL)
            res[side] = (p.returncode, p.stdout, [log_tail(l) for l in p.stderr.splitlines()])
        ok = res["go"] == res["rs"]
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} flags {args}")
        if not ok or verbose:
            for side in ("go", "rs"):
                code, out, err = res[side]
                print(f"    {side}: exit={code} stdout={out!r} stderr[:3]={err[:3]}")
    return len(flag_cases()), failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--theirs-dir", default="/tmp/goref/bin")
    ap.add_argument("--ours-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "debug"))
    ap.add_argument("-k", help="only cases whose name contains this")
    ap.add_argument("-v", action="store_true")
    opts = ap.parse_args()
    opts.ours_dir = os.path.abspath(opts.ours_dir)

    total, failures = 0, 0
    if not opts.k or "flags" in opts.k:
        n, f = compare_flags(opts, opts.v)
        total, failures = n, f

    def collide(out, work):
        host = "H"
        # rev 0 and 1 are taken in the output directory before the run.
        for rev in (0, 1):
            open(os.path.join(out, f"TOPIC.{host}-{rev:06d}.D.log"), "w").write("old\n")

    def hup(env, topic, sides):
        for side, (p, out, work) in sides.items():
            p.p.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        env.publish(topic, [f"after hup {i}" for i in range(5)])
        for side, (p, out, work) in sides.items():
            wait_until(lambda: line_count(out) >= 25, 10)

    def late_messages(env, topic, sides):
        env.publish(topic, [f"late {i}" for i in range(3)])
        time.sleep(1)

    def second_burst(env, topic, sides):
        time.sleep(1.5)
        env.publish(topic, [f"second burst {i}" for i in range(10)])
        for side, (p, out, work) in sides.items():
            wait_until(lambda: line_count(out) >= 20, 10)

    def pause(env, topic, sides):
        time.sleep(1)

    def discovery(env, topic):
        return [f"{topic}_a", f"{topic}_b", f"other_{topic}"]

    def discovery_publish(env, topic, sides):
        for t in discovery(env, topic):
            env.publish(t, [f"{t} body"])
        for side, (p, out, work) in sides.items():
            wait_until(lambda: line_count(out) >= 2, 10)

    fixed = ["--host-identifier=H", "--datetime-format=D"]
    cases = [
        Case("plain", fixed + ["--sync-interval=200ms"], messages=50),
        Case("tokens", ["--filename-format=<TOPIC>/<HOST>.<PID>.<DATETIME><REV>.log",
                        "--sync-interval=200ms"], messages=20, datetime_formats=["%Y-%m-%d_%H"]),
        Case("host_identifier", ["--host-identifier=<SHORT_HOST>+<HOSTNAME>", "--datetime-format=D",
                                 "--sync-interval=200ms"], messages=5),
        Case("datetime_layout", ["--host-identifier=H", "--datetime-format=v1_%Y%m%d.%%.%q",
                                 "--sync-interval=200ms"], messages=5,
             datetime_formats=["v%-m_%Y%m%d.%%.%%q"]),
        Case("gzip_rotate_size", fixed + ["--gzip", "--rotate-size=2000", "--max-in-flight=7",
                                          "--sync-interval=200ms"], messages=300),
        Case("gzip_level_suffix", fixed + ["--gzip", "--gzip-level=9",
                                           "--filename-format=<TOPIC><REV>.gz",
                                           "--sync-interval=200ms"], messages=40),
        Case("rotate_size_plain", fixed + ["--rotate-size=500", "--sync-interval=200ms"],
             messages=120),
        Case("batches_at_max_in_flight", fixed + ["--max-in-flight=10"], messages=200,
             expect_lines=190),
        Case("rotate_interval", fixed + ["--rotate-interval=1s", "--skip-empty-files",
                                         "--sync-interval=200ms"], messages=10,
             during=second_burst),
        Case("work_dir", fixed + ["--work-dir={work}", "--sync-interval=200ms"], messages=30),
        Case("work_dir_collision", ["--host-identifier=H", "--datetime-format=D",
                                    "--filename-format=TOPIC.<HOST><REV>.<DATETIME>.log",
                                    "--work-dir={work}", "--sync-interval=200ms"],
             messages=10, pre=collide, logs=["output file already exists"]),
        Case("missing_rev", fixed + ["--gzip", "--filename-format=<TOPIC>.log"], messages=3,
             expect_lines=0, logs=["couldn't create logger"]),
        Case("empty_file_at_tick", fixed + ["--sync-interval=300ms"], settle_files=1,
             during=pause),
        Case("skip_empty_files", fixed + ["--sync-interval=300ms", "--skip-empty-files"],
             during=pause),
        Case("sighup_reopens", fixed + ["--sync-interval=200ms"], messages=20, during=hup,
             expect_lines=20),
        Case("stop_syncs_pending", fixed, messages=30, during=late_messages, expect_lines=1),
        Case("topic_pattern", ["--host-identifier=H", "--datetime-format=D",
                               "--topic-pattern=_a$|_b$", "--topic-refresh=200ms",
                               "--sync-interval=200ms"],
             lookupd=discovery, no_topic=True, during=discovery_publish,
             logs=["skipping topic other_"]),
    ]
    env = Env(opts)
    try:
        for case in cases:
            if opts.k and opts.k not in case.name:
                continue
            total += 1
            diffs = compare_case(env, case, opts.v)
            failures += bool(diffs)
            print(f"{'ok  ' if not diffs else 'FAIL'} {case.name}" +
                  (f" (differs: {', '.join(diffs)})" if diffs else ""))
    finally:
        env.close()
    print(f"{total - failures}/{total} cases match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
