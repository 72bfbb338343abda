#!/usr/bin/env python3
"""Runs Go's nsqd and ours side by side, each pushing to its own UDP listener, drives the same
workload into both and compares what they send to statsd.

Each configuration starts one nsqd of each kind (ephemeral ports, temporary data directories,
`--statsd-interval=2s`, since Go panics at 1s). The workload: topics with durable and
`#ephemeral` channels, an ephemeral topic, PUB, MPUB, DPUB and HTTP publishes, a consumer that
FINs some messages, REQs some and lets some time out. Once the counters have been quiet for two
pushes, a few more pushes are captured. Then, per configuration:

  * the set of metric names and their types, and their order within a push;
  * every line carries the expanded prefix;
  * no packet exceeds `--statsd-udp-packet-size` and every packet ends at a line end;
  * the counters summed over all pushes (the first push is cumulative), and `/stats` agrees;
  * gauges at quiescence (`mem.*` and e2e latency values excepted: only zero/non-zero is
    compared for latencies);
  * packets spread over the interval minus one second.

Finally ours is checked to push every second with `--statsd-interval=1s`.

Prints PASS/FAIL per check and a summary; exits 1 on any failure.

Usage: scripts/compare-statsd.py [--theirs /tmp/goref/bin/nsqd] [--ours target/debug/nsqd]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERVAL = 2.0


class Listener:
    """A UDP socket collecting (arrival time, packet) pairs in a thread."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.packets = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._run, daemon=True).start()

    @property
    def addr(self):
        return "%s:%d" % self.sock.getsockname()

    def _run(self):
        while not self.stopped:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.packets.append((time.monotonic(), data))

    def snapshot(self):
        with self.lock:
            return list(self.packets)

    def close(self):
        self.stopped = True
        self.sock.close()


class Nsqd:
    def __init__(self, binary, args):
        self.data = tempfile.mkdtemp(prefix="cmp-statsd-")
        self.proc = subprocess.Popen(
            [binary, f"--data-path={self.data}", "--tcp-address=127.0.0.1:0",
             "--http-address=127.0.0.1:0", "--https-address=", "--broadcast-address=127.0.0.1"]
            + args,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.tcp = self.http = None
        self.log = []
        deadline = time.time() + 20
        while time.time() < deadline and (self.tcp is None or self.http is None):
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"TCP: listening on (\S+)", line)
            if m:
                self.tcp = m.group(1)
            m = re.search(r"HTTP: listening on (\S+)", line)
            if m:
                self.http = m.group(1)
        if self.tcp is None or self.http is None:
            raise SystemExit(f"{binary} did not start: {''.join(self.log)}")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    @property
    def http_port(self):
        return int(self.http.rsplit(":", 1)[1])

    def post(self, path, body=b""):
        req = urllib.request.Request(f"http://{self.http}{path}", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def stats(self):
        with urllib.request.urlopen(f"http://{self.http}/stats?format=json", timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.data, ignore_errors=True)


class Conn:
    """A V2 protocol connection."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=10)
        self.s.sendall(b"  V2")

    def send(self, line, body=None):
        data = line.encode() + b"\n"
        if body is not None:
            data += struct.pack(">I", len(body)) + body
        self.s.sendall(data)

    def frame(self):
        while True:
            hdr = self._read(8)
            size, kind = struct.unpack(">iI", hdr)
            data = self._read(size - 4)
            if kind == 0 and data == b"_heartbeat_":
                self.send("NOP")
                continue
            return kind, data

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise SystemExit("connection closed")
            out += chunk
        return out

    def ok(self):
        kind, data = self.frame()
        if (kind, data) != (0, b"OK"):
            raise SystemExit(f"expected OK, got {kind} {data!r}")

    def message_id(self):
        kind, data = self.frame()
        if kind != 2:
            raise SystemExit(f"expected a message, got {kind} {data!r}")
        return data[10:26].decode()

    def close(self):
        self.s.close()


def mpub_body(bodies):
    out = struct.pack(">I", len(bodies))
    for b in bodies:
        out += struct.pack(">I", len(b)) + b
    return out


def workload(n):
    """The same traffic for every nsqd. Returns connections that must stay open."""
    keep = []
    n.post("/topic/create?topic=alpha")
    n.post("/channel/create?topic=alpha&channel=c1")
    n.post("/channel/create?topic=alpha&channel=c2")
    n.post("/topic/create?topic=gamma")
    tail = Conn(n.tcp)
    tail.send("SUB alpha tail#ephemeral")
    tail.ok()
    keep.append(tail)
    eph = Conn(n.tcp)
    eph.send("SUB beta#ephemeral x")
    eph.ok()
    keep.append(eph)

    p = Conn(n.tcp)
    for i in range(5):
        p.send("PUB alpha", b"pub-%d" % i)
        p.ok()
    p.send("MPUB alpha", mpub_body([b"mpub-%d" % i for i in range(5)]))
    p.ok()
    p.send("DPUB alpha 60000", b"deferred")
    p.ok()
    for i in range(3):
        n.post("/pub?topic=beta%23ephemeral", b"http-%d" % i)
    n.post("/mpub?topic=gamma", b"g1\ng2\ng3\ng4")
    p.close()

    c = Conn(n.tcp)
    c.send("IDENTIFY", json.dumps({"msg_timeout": 1000}).encode())
    c.frame()
    c.send("SUB alpha c1")
    c.ok()
    c.send("RDY 10")
    ids = [c.message_id() for _ in range(10)]
    c.send("RDY 0")
    for mid in ids[:5]:
        c.send(f"FIN {mid}")
    for mid in ids[5:8]:
        c.send(f"REQ {mid} 0")
    # ids[8:] time out after 1s.
    keep.append(c)
    return keep


def parse_lines(packet, prefix):
    out = []
    for raw in packet.decode().splitlines():
        name, rest = raw.rsplit(":", 1)
        value, kind = rest.split("|", 1)
        out.append((name, int(value), kind, name.startswith(prefix)))
    return out


def split_pushes(packets):
    """Groups packets into pushes: a new push starts when a name repeats."""
    pushes = []
    cur, seen = [], set()
    for t, p in packets:
        names = [l.rsplit(":", 1)[0] for l in p.decode().splitlines()]
        if cur and seen.intersection(names):
            pushes.append(cur)
            cur, seen = [], set()
        cur.append((t, p))
        seen.update(names)
    if cur:
        pushes.append(cur)
    return pushes


def push_lines(push, prefix):
    lines = []
    for _, p in push:
        lines.extend(parse_lines(p, prefix))
    return lines


def strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class Side:
    def __init__(self, label, binary, args, prefix_template, interval_flag):
        self.label = label
        self.listener = Listener()
        self.nsqd = Nsqd(binary, [f"--statsd-address={self.listener.addr}", interval_flag] + args)
        if prefix_template == "":
            self.prefix = ""
        else:
            p = prefix_template.replace("%s", f"127_0_0_1_{self.nsqd.http_port}")
            self.prefix = p if p.endswith(".") else p + "."

    def pushes(self):
        return split_pushes(self.listener.snapshot())

    def close(self):
        self.nsqd.stop()
        self.listener.close()


class Report:
    def __init__(self):
        self.failed = 0
        self.total = 0

    def check(self, name, ok, detail=""):
        self.total += 1
        if not ok:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"\n      {detail}" if detail and not ok else ""))

    def info(self, text):
        print(f"INFO  {text}")


def quiet(side):
    """True once the last two complete pushes carry only zero counters (mem.gc_runs aside)."""
    ps = side.pushes()[:-1]  # the last may be incomplete
    if len(ps) < 2:
        return False
    for push in ps[-2:]:
        for name, value, kind, _ in push_lines(push, side.prefix):
            if kind == "c" and value != 0 and not name.endswith("mem.gc_runs"):
                return False
    return True


def run_case(report, title, theirs_bin, ours_bin, args, prefix_template, packet_size):
    print(f"\n== {title}: {' '.join(args)}")
    theirs = Side("theirs", theirs_bin, args, prefix_template, f"--statsd-interval={INTERVAL:g}s")
    ours = Side("ours", ours_bin, args, prefix_template, f"--statsd-interval={INTERVAL:g}s")
    keep = []
    try:
        for s in (theirs, ours):
            keep.extend(workload(s.nsqd))
        deadline = time.time() + 40
        while time.time() < deadline and not (quiet(theirs) and quiet(ours)):
            time.sleep(0.2)
        report.check(f"{title}: both reach quiescence", quiet(theirs) and quiet(ours))
        # Two more complete pushes at quiescence.
        counts = [len(s.pushes()) for s in (theirs, ours)]
        deadline = time.time() + 20
        while time.time() < deadline and any(len(s.pushes()) < c + 3 for s, c in zip((theirs, ours), counts)):
            time.sleep(0.2)
        results = {}
        for s in (theirs, ours):
            pushes = s.pushes()[:-1]
            stats = s.nsqd.stats()
            results[s.label] = (pushes, stats)
        compare(report, title, theirs, ours, results, packet_size)
    finally:
        for c in keep:
            c.close()
        theirs.close()
        ours.close()


def compare(report, title, theirs, ours, results, packet_size):
    summary = {}
    for s in (theirs, ours):
        pushes, stats = results[s.label]
        types, order, sums, last = {}, None, {}, {}
        bad_prefix, big, cut = [], [], []
        spans = []
        for push in pushes:
            lines = push_lines(push, s.prefix)
            names = [strip(n, s.prefix) for n, _, _, _ in lines]
            if order is None or len(names) > len(order):
                order = names
            for name, value, kind, has_prefix in lines:
                short = strip(name, s.prefix)
                types[short] = kind
                if s.prefix and not has_prefix:
                    bad_prefix.append(name)
                if kind == "c":
                    sums[short] = sums.get(short, 0) + value
            for _, p in push:
                if len(p) > packet_size:
                    big.append(len(p))
                if not p.endswith(b"\n"):
                    cut.append(p[-20:])
            if len(push) > 1:
                spans.append((len(push), push[-1][0] - push[0][0]))
        if pushes:
            last = {strip(n, s.prefix): (v, k) for n, v, k, _ in push_lines(pushes[-1], s.prefix)}
        summary[s.label] = dict(types=types, order=order or [], sums=sums, last=last,
                                bad_prefix=bad_prefix, big=big, cut=cut, spans=spans,
                                stats=stats, pushes=len(pushes))
    t, o = summary["theirs"], summary["ours"]
    report.info(f"{title}: pushes captured: theirs {t['pushes']}, ours {o['pushes']}")

    report.check(f"{title}: same metric names", set(t["types"]) == set(o["types"]),
                 f"only theirs: {sorted(set(t['types']) - set(o['types']))}; "
                 f"only ours: {sorted(set(o['types']) - set(t['types']))}")
    same_types = all(t["types"][n] == o["types"][n] for n in set(t["types"]) & set(o["types"]))
    report.check(f"{title}: same metric types", same_types,
                 str({n: (t['types'][n], o['types'][n]) for n in set(t['types']) & set(o['types'])
                      if t['types'][n] != o['types'][n]}))
    report.check(f"{title}: same line order within a push", t["order"] == o["order"],
                 f"theirs {t['order']}\n      ours   {o['order']}")
    for label, s in (("theirs", t), ("ours", o)):
        report.check(f"{title}: {label}: every line has the expanded prefix", not s["bad_prefix"],
                     str(s["bad_prefix"][:5]))
        report.check(f"{title}: {label}: packets within {packet_size} bytes and whole lines",
                     not s["big"] and not s["cut"], f"too big {s['big'][:5]}, cut {s['cut'][:5]}")

    counters = sorted(n for n, k in t["types"].items() if k == "c" and not n.startswith("mem."))
    diff = {n: (t["sums"].get(n), o["sums"].get(n)) for n in counters
            if t["sums"].get(n) != o["sums"].get(n)}
    report.check(f"{title}: counter totals over all pushes ({len(counters)} counters)", not diff,
                 str(diff))

    def from_stats(stats, name):
        m = re.match(r"topic\.(.+?)\.(?:channel\.(.+)\.)?(message_count|message_bytes|requeue_count|timeout_count)$", name)
        if not m:
            return None
        topic, channel, field = m.groups()
        for tp in stats.get("topics") or []:
            if tp["topic_name"] != topic:
                continue
            if channel is None:
                return tp[field]
            for ch in tp["channels"]:
                if ch["channel_name"] == channel:
                    return ch[field]
        return None

    for label, s in (("theirs", t), ("ours", o)):
        off = {n: (s["sums"].get(n), from_stats(s["stats"], n)) for n in counters
               if from_stats(s["stats"], n) is not None and s["sums"].get(n) != from_stats(s["stats"], n)}
        report.check(f"{title}: {label}: counter totals equal /stats (first push cumulative)",
                     not off, str(off))

    gauges = sorted(n for n, k in t["types"].items() if k == "g" and not n.startswith("mem."))
    gdiff = {}
    for n in gauges:
        tv, ov = t["last"].get(n, (None,))[0], o["last"].get(n, (None,))[0]
        if "e2e_processing_latency" in n:
            if (tv is None) != (ov is None) or (tv or 0) > 0 and (ov or 0) == 0 or (tv or 0) == 0 and (ov or 0) > 0:
                gdiff[n] = (tv, ov)
        elif tv != ov:
            gdiff[n] = (tv, ov)
    report.check(f"{title}: gauges at quiescence ({len(gauges)} gauges)", not gdiff, str(gdiff))

    window = max(INTERVAL - 1.0, 0)
    for label, s in (("theirs", t), ("ours", o)):
        # Packets k = 0..n-1 go out at k * window / n: the first-to-last span is (n-1)/n of it.
        # Sleeps overshoot on a busy machine, so the median push is judged, not every one.
        ratios = sorted(span / (window * (n - 1) / n) for n, span in s["spans"] if window > 0)
        median = ratios[len(ratios) // 2] if ratios else 0
        report.info(f"{title}: {label}: (packets, first-to-last seconds) per push: "
                    f"{[(n, round(sp, 2)) for n, sp in s['spans']]}")
        report.check(f"{title}: {label}: packets spread over interval - 1s "
                     f"(median span {median:.2f} of expected)", 0.75 <= median <= 1.25,
                     str(s["spans"]))


def check_one_second(report, theirs_bin, ours_bin):
    print("\n== --statsd-interval=1s")
    listener = Listener()
    ours = Nsqd(ours_bin, [f"--statsd-address={listener.addr}", "--statsd-interval=1s"])
    try:
        time.sleep(4.5)
        alive = ours.proc.poll() is None
        pushes = [l for l in ours.log if "STATSD: pushing stats to" in l]
    finally:
        ours.stop()
        listener.close()
    report.check("ours: --statsd-interval=1s pushes every second and keeps running",
                 alive and len(pushes) >= 3, f"alive={alive} pushes={len(pushes)}")
    listener = Listener()
    go = Nsqd(theirs_bin, [f"--statsd-address={listener.addr}", "--statsd-interval=1s"])
    try:
        deadline = time.time() + 5
        while time.time() < deadline and go.proc.poll() is None:
            time.sleep(0.1)
        report.info(f"theirs with --statsd-interval=1s: "
                    f"{'exited with status %s' % go.proc.poll() if go.proc.poll() is not None else 'still running'}"
                    f"{' (panic)' if any('panic' in l for l in go.log) else ''}")
    finally:
        go.stop()
        listener.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--theirs", default="/tmp/goref/bin/nsqd")
    ap.add_argument("--ours", default=os.path.join(ROOT, "target", "debug", "nsqd"))
    a = ap.parse_args()
    report = Report()
    run_case(report, "prefix+e2e+mem", a.theirs, a.ours,
             ["--statsd-prefix=cmp.%s.nsqd", "--e2e-processing-latency-percentile=1.0,0.99,0.5",
              "--statsd-udp-packet-size=200"], "cmp.%s.nsqd", 200)
    run_case(report, "no-prefix+exclude-ephemeral+no-mem", a.theirs, a.ours,
             ["--statsd-prefix=", "--statsd-mem-stats=false", "--statsd-exclude-ephemeral"],
             "", 508)
    check_one_second(report, a.theirs, a.ours)
    print(f"\nstatsd: {report.total - report.failed}/{report.total} checks passed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
