#!/usr/bin/env python3
"""Side-by-side check of nsq_to_http: NSQ 1.3.0's Go binary and ours, same flags, same messages,
same nsqd (ours). Compares the HTTP requests each makes (method, path and query, headers, body),
which endpoint got which message, the exit codes, and the error output for bad command lines.

Usage: scripts/compare-utils/nsq_to_http.py [--theirs-dir DIR] [--ours-dir DIR] [-v]
Exits 0 when every case matches. The helpers here are shared with nsq_to_nsq.py.
"""
import argparse
import http.server
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(cond, timeout=20.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise TimeoutError(what)


class Nsqd:
    """Our nsqd on free loopback ports with a temporary data directory."""

    def __init__(self, binary, extra=()):
        self.dir = tempfile.TemporaryDirectory()
        self.tcp = f"127.0.0.1:{free_port()}"
        self.http = f"127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [binary, f"--data-path={self.dir.name}", f"--tcp-address={self.tcp}",
             f"--http-address={self.http}", "--https-address=", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._up, what="nsqd start")

    def _up(self):
        try:
            return self.get("/ping") == b"OK"
        except OSError:
            return False

    def get(self, path):
        with urllib.request.urlopen(f"http://{self.http}{path}", timeout=5) as r:
            return r.read()

    def post(self, path, body):
        req = urllib.request.Request(f"http://{self.http}{path}", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read()

    def publish(self, topic, bodies):
        for b in bodies:
            self.post(f"/pub?topic={topic}", b)

    def topic(self, topic):
        stats = json.loads(self.get(f"/stats?format=json&topic={topic}"))
        for t in stats.get("topics") or []:
            if t["topic_name"] == topic:
                return t
        return None

    def channel(self, topic, channel):
        t = self.topic(topic)
        for c in (t or {}).get("channels") or []:
            if c["channel_name"] == channel:
                return c
        return None

    def wait_settled(self, topic, channel, depth=0, timeout=20.0):
        def settled():
            c = self.channel(topic, channel)
            return c is not None and c["depth"] == depth and c["in_flight_count"] == 0 \
                and c["deferred_count"] == 0
        wait_until(settled, timeout, f"{topic}/{channel} settled at depth {depth}")

    def read_topic(self, topic, n, timeout=10.0):
        """Reads n messages off topic through a fresh channel (a tiny NSQ TCP consumer)."""
        host, port = self.tcp.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=timeout)
        s.sendall(b"  V2")
        s.sendall(f"SUB {topic} compare\n".encode())
        out = []
        buf = b""

        def frame():
            nonlocal buf
            while len(buf) < 4 or len(buf) < 4 + struct.unpack(">l", buf[:4])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError("nsqd closed the connection")
                buf += chunk
            size = struct.unpack(">l", buf[:4])[0]
            data, buf = buf[4:4 + size], buf[4 + size:]
            return struct.unpack(">l", data[:4])[0], data[4:]

        ftype, data = frame()
        if data != b"OK":
            raise RuntimeError(f"SUB: {data!r}")
        s.sendall(b"RDY 1000\n")
        while len(out) < n:
            ftype, data = frame()
            if ftype == 0 and data == b"_heartbeat_":
                s.sendall(b"NOP\n")
            elif ftype == 2:
                msg_id, body = data[10:26], data[26:]
                out.append(body)
                s.sendall(b"FIN " + msg_id + b"\n")
        s.close()
        return out

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()


class Recorder:
    """An HTTP server recording every request; `statuses` gives the answers in order
    (200 once it runs out)."""

    def __init__(self):
        self.requests = []
        self.statuses = []
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                headers = sorted((k.lower(), v) for k, v in self.headers.items())
                with rec.lock:
                    rec.requests.append((self.command, self.path, headers, body))
                    status = rec.statuses.pop(0) if rec.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = handle_any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.addr = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self):
        with self.lock:
            r, self.requests = self.requests, []
            return r

    def count(self):
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.server.shutdown()


STAMP = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", re.M)


def normalize_stderr(text, binary):
    text = STAMP.sub("", text)
    return text.replace(f"Usage of {binary}:", "Usage of <app>:")


def run_flags(binary, args):
    p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout, normalize_stderr(p.stderr, binary)


def first_lines(text, n):
    return "\n".join(text.splitlines()[:n])


def stop_tool(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "hung"


class Report:
    def __init__(self, verbose):
        self.verbose = verbose
        self.passed = 0
        self.failed = 0

    def check(self, name, theirs, ours):
        if theirs == ours:
            self.passed += 1
            if self.verbose:
                print(f"ok   {name}: {str(theirs)[:300]}")
        else:
            self.failed += 1
            print(f"FAIL {name}\n  theirs: {theirs!r}\n  ours:   {ours!r}")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1


def common_args(default_theirs="/tmp/goref/bin"):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--theirs-dir", default=default_theirs)
    ap.add_argument("--ours-dir", default=os.path.join(ROOT, "target", "debug"))
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args()


# Each case: flags ({0}, {1} are the recording servers' addresses), messages, the number of
# requests each implementation must make before it is stopped, statuses the servers answer
# with first, and the number of servers.
CASES = [
    ("post", ["--post=http://{0}/in?x=1"], [b"hello", b"a b", b'{"j":1}'], 3, [], 1),
    ("post headers and content type",
     ["--post=http://{0}/p", "--content-type=text/plain; charset=utf-8",
      "--header=x-foo: bar", "--header=X-Two:  spaced value ", "--header=user-agent: custom"],
     [b"m1", b"m2"], 2, [], 1),
    ("get escaping", ["--get=http://{0}/g?data=%s&k=v"],
     [b"a b&c=d/e?f", "caf\u00e9 \u2603".encode(), b"~-_.!*'()"], 3, [], 1),
    ("get path template", ["--get=http://{0}/path/%s/end"], [b"x y", b"1"], 2, [], 1),
    ("round-robin", ["--post=http://{0}/a", "--post=http://{1}/b", "--mode=round-robin",
                     "-n=1", "--max-in-flight=1"], [b"1", b"2", b"3", b"4", b"5"], 5, [], 2),
    ("hostpool", ["--post=http://{0}/a", "--post=http://{1}/b", "-n=1", "--max-in-flight=1"],
     [b"1", b"2", b"3", b"4"], 4, [], 2),
    ("unknown mode sends to all", ["--post=http://{0}/a", "--post=http://{1}/b",
                                   "--mode=fanout"], [b"x", b"y"], 4, [], 2),
    ("500 then success requeues",
     ["--post=http://{0}/r", "--consumer-opt=default_requeue_delay,0",
      "--consumer-opt=backoff_multiplier,10ms"], [b"retry me"], 3, [500, 502], 1),
    ("get non-200 requeues",
     ["--get=http://{0}/r?d=%s", "--consumer-opt=default_requeue_delay,0",
      "--consumer-opt=backoff_multiplier,10ms"], [b"g"], 2, [201], 1),
    ("max_attempts gives up",
     ["--post=http://{0}/m", "--consumer-opt=default_requeue_delay,0",
      "--consumer-opt=backoff_multiplier,10ms", "--consumer-opt=max_attempts,2"],
     [b"doomed"], 2, [500, 500, 500, 500], 1),
    ("sample 0", ["--post=http://{0}/s", "--sample=0"], [b"a", b"b"], 0, [], 1),
]

FLAG_CASES = [
    [],
    ["--topic=t"],
    ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1"],
    ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--get=http://a/"],
    ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--get=http://a/%s", "--post=http://b/"],
    ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--lookupd-http-address=x", "--post=a"],
    ["--header=novalue"],
    ["--topic=t", "--nsqd-tcp-address=x", "--get=http://a/%s", "--content-type=x"],
    ["--topic=t", "--nsqd-tcp-address=x", "--post=http://a/", "--content-type="],
    ["--topic=t", "--nsqd-tcp-address=x", "--post=http://a/", "--sample=1.5"],
    ["--topic=t", "--channel=", "--post=http://a/", "--nsqd-tcp-address=x"],
    ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--post=http://a/", "--max-in-flight=-1"],
    ["--bogus"],
    ["--n=abc"],
    ["--consumer-opt=bogus,1"],
    ["--consumer-opt=max_attempts,x"],
    ["--version"],
    ["-h"],
]


def main():
    args = common_args()
    report = Report(args.verbose)
    theirs = os.path.join(args.theirs_dir, "nsq_to_http")
    ours = os.path.join(args.ours_dir, "nsq_to_http")

    for flags in FLAG_CASES:
        t = run_flags(theirs, flags)
        o = run_flags(ours, flags)
        report.check(f"flags {flags}", t, o)

    nsqd = Nsqd(os.path.join(args.ours_dir, "nsqd"))
    servers = [Recorder(), Recorder()]
    try:
        # A refused nsqd connection is fatal at start.
        dead = f"127.0.0.1:{free_port()}"
        res = []
        for b in (theirs, ours):
            code, out, err = run_flags(b, ["--topic=t", f"--nsqd-tcp-address={dead}",
                                           "--post=http://127.0.0.1:1/"])
            res.append((code, err.splitlines()[-1] if err else ""))
        report.check("unreachable nsqd", res[0], res[1])

        for i, (name, flags, messages, expect, statuses, nservers) in enumerate(CASES):
            results = []
            for side, binary in (("theirs", theirs), ("ours", ours)):
                topic = f"c{i}_{side}"
                for s in servers:
                    s.take()
                    s.statuses = list(statuses)
                nsqd.publish(topic, messages)
                argv = [binary, f"--topic={topic}", f"--nsqd-tcp-address={nsqd.tcp}"]
                argv += [f.format(*[s.addr for s in servers]) for f in flags]
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                try:
                    wait_until(lambda: sum(s.count() for s in servers[:nservers]) >= expect,
                               what=f"{name}: {expect} requests")
                    nsqd.wait_settled(topic, "nsq_to_http", 0)
                finally:
                    code = stop_tool(proc)
                reqs = [sorted(s.take()) for s in servers[:nservers]]
                results.append((code, reqs))
            report.check(name, results[0], results[1])
    finally:
        for s in servers:
            s.stop()
        nsqd.stop()
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
