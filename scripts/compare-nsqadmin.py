#!/usr/bin/env python3
"""Side-by-side check of two nsqadmin binaries (ours and NSQ 1.3.0's Go build).

Starts two identical clusters (nsqlookupd, two nsqd with distinct hostnames, consumers holding
messages in flight, a paused channel, an ephemeral channel), points one nsqadmin at each, sends
both the same sequence of API requests and actions, and compares status codes, headers that
matter, JSON bodies and the notifications each sends. Addresses, ports and clocks differ between
the clusters, so they are replaced by names before comparing.

Usage:
  scripts/compare-nsqadmin.py --ours target/debug/nsqadmin --theirs /path/to/go/nsqadmin
      [--nsqd target/debug/nsqd] [--nsqlookupd target/debug/nsqlookupd] [-v]

Needs root for `unshare -u` (each nsqd gets its own hostname so that node order, which both
programs sort by hostname, is deterministic). Exit status 0 when every answer matches.
"""
import argparse
import gzip
import zlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

LISTEN = re.compile(r"(TCP|HTTP): listening on (\S+)")


class Proc:
    def __init__(self, args, name):
        self.name = name
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        self.addrs = {}
        self.lines = []
        deadline = time.time() + 10
        want = {"HTTP"} if "nsqadmin" in name else {"TCP", "HTTP"}
        while want - set(self.addrs) and time.time() < deadline:
            line = self.p.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            m = LISTEN.search(line)
            if m:
                self.addrs[m.group(1)] = m.group(2)
        if want - set(self.addrs):
            raise SystemExit(f"{name} did not start:\n{''.join(self.lines)}")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.p.stderr:
            self.lines.append(line)

    def stop(self):
        self.p.kill()
        self.p.wait()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def request(method, url, body=None, headers=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with OPENER.open(req, timeout=15) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.server.bodies.append(json.loads(self.rfile.read(n)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Cluster:
    def __init__(self, label, opts):
        self.label = label
        self.dir = tempfile.mkdtemp(prefix=f"nsqadmin-compare-{label}-")
        self.lookupd = Proc([opts.nsqlookupd, "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                             "--broadcast-address=127.0.0.1"], "nsqlookupd")
        self.nsqd = []
        for i, host in enumerate(["nsqd-a", "nsqd-b"]):
            data = os.path.join(self.dir, host)
            os.mkdir(data)
            cmd = (f"hostname {host} && exec {opts.nsqd} --data-path={data} --tcp-address=127.0.0.1:0 "
                   f"--http-address=127.0.0.1:0 --https-address= --broadcast-address=127.0.0.1 "
                   f"--lookupd-tcp-address={self.lookupd.addrs['TCP']} "
                   f"--e2e-processing-latency-percentile=0.99,0.5")
            self.nsqd.append(Proc(["unshare", "-u", "sh", "-c", cmd], f"nsqd-{i}"))
        self.hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.hook.bodies = []
        threading.Thread(target=self.hook.serve_forever, daemon=True).start()
        self.consumers = []
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.dead = f"127.0.0.1:{s.getsockname()[1]}"
        s.close()

    def http(self, i):
        return self.nsqd[i].addrs["HTTP"]

    def setup(self):
        a, b = self.http(0), self.http(1)
        for node in (a, b):
            request("POST", f"http://{node}/topic/create?topic=orders")
            request("POST", f"http://{node}/channel/create?topic=orders&channel=live")
        request("POST", f"http://{a}/channel/create?topic=orders&channel=archive")
        request("POST", f"http://{a}/channel/pause?topic=orders&channel=archive")
        request("POST", f"http://{a}/mpub?topic=orders", "1\n2\n3")
        request("POST", f"http://{b}/mpub?topic=orders", "4\n5")
        request("POST", f"http://{a}/pub?topic=other", "x")
        for node, channel, rdy in [(0, "live", 2), (1, "tmp#ephemeral", 0)]:
            s = socket.create_connection(tuple(self.nsqd[node].addrs["TCP"].rsplit(":", 1)))
            s.sendall(b"  V2" + f"SUB orders {channel}\nRDY {rdy}\n".encode())
            s.recv(10)
            self.consumers.append(s)
        deadline = time.time() + 10
        while time.time() < deadline:
            _, _, body = request("GET", f"http://{a}/stats?format=json&topic=orders&channel=live")
            if json.loads(body)["topics"][0]["channels"][0]["in_flight_count"] == 2:
                _, _, body = request("GET", f"http://{self.lookupd.addrs['HTTP']}/lookup?topic=orders")
                if len(json.loads(body)["producers"]) == 2:
                    return
            time.sleep(0.05)
        raise SystemExit(f"{self.label}: cluster setup did not settle")

    def start_admin(self, binary, extra=(), nsqd_mode=False):
        self.nsqd_mode = nsqd_mode
        if nsqd_mode:
            # Both nodes plus one that is down: every answer is partial.
            upstreams = [f"--nsqd-http-address={p.addrs['HTTP']}" for p in self.nsqd]
            upstreams.append(f"--nsqd-http-address={self.dead}")
        else:
            upstreams = [f"--lookupd-http-address={self.lookupd.addrs['HTTP']}"]
        self.admin = Proc([binary, "--http-address=127.0.0.1:0", *upstreams,
                           f"--notification-http-endpoint=http://127.0.0.1:{self.hook.server_address[1]}/hook",
                           *extra], f"nsqadmin-{self.label}")

    def names(self):
        """Address -> symbolic name, longest first."""
        m = {self.lookupd.addrs["HTTP"]: "<lookupd-http>", self.lookupd.addrs["TCP"]: "<lookupd-tcp>",
             self.admin.addrs["HTTP"]: "<nsqadmin>", self.dead: "<dead>"}
        for i, p in enumerate(self.nsqd):
            m[p.addrs["HTTP"]] = f"<nsqd{i}-http>"
            m[p.addrs["TCP"]] = f"<nsqd{i}-tcp>"
            port_http = p.addrs["HTTP"].rsplit(":", 1)[1]
            port_tcp = p.addrs["TCP"].rsplit(":", 1)[1]
            m[f'"http_port":{port_http}'] = f'"http_port":"<nsqd{i}-http-port>"'
            m[f'"tcp_port":{port_tcp}'] = f'"tcp_port":"<nsqd{i}-tcp-port>"'
        return sorted(m.items(), key=lambda kv: -len(kv[0]))

    def stop(self):
        for s in self.consumers:
            s.close()
        for p in [getattr(self, "admin", None), *self.nsqd, self.lookupd]:
            if p:
                p.stop()
        self.hook.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)


VOLATILE_KEYS = {"connect_ts", "connected", "timestamp", "start_time", "user_agent"}


def normalize(text, cluster):
    for addr, name in cluster.names():
        text = text.replace(addr, name)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    text = re.sub(r"\[::1\]:\d+", "[::1]:<port>", text)
    return text


def scrub(v):
    if isinstance(v, dict):
        return {k: ("<volatile>" if k in VOLATILE_KEYS else scrub(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [scrub(x) for x in v]
    return v


def answer(cluster, method, path, body=None, headers=None):
    if path.endswith("#gzip") or path.endswith("#deflate"):
        path, enc = path.rsplit("#", 1)
        headers = {**(headers or {}), "Accept-Encoding": enc}
    url = f"http://{cluster.admin.addrs['HTTP']}{path}"
    status, hdrs, raw = request(method, url, body, headers)
    encoding = {k.lower(): v for k, v in hdrs.items()}.get("content-encoding")
    if encoding == "gzip":
        raw = gzip.decompress(raw)
    elif encoding == "deflate":
        raw = zlib.decompress(raw, -15)
    text = normalize(raw.decode(errors="replace"), cluster)
    try:
        parsed = scrub(json.loads(text))
        # Map keys are sorted by real address, which differs between the clusters.
        if isinstance(parsed, dict) and isinstance(parsed.get("stats"), dict):
            parsed["stats"] = dict(sorted(parsed["stats"].items()))
        # With --nsqd-http-address the reference lists nodes in the order their answers
        # arrived, which varies from run to run; ours keeps the configured order.
        if cluster.nsqd_mode and isinstance(parsed, dict) and isinstance(parsed.get("nodes"), list):
            parsed["nodes"] = sorted(parsed["nodes"], key=lambda n: json.dumps(n))
        keys_in_order = list(parsed) if isinstance(parsed, dict) else None
    except ValueError:
        parsed, keys_in_order = text, None
    wanted = {k.lower(): v for k, v in hdrs.items()
              if k.lower() in ("content-type", "x-nsq-content-type", "content-encoding", "location", "allow")}
    # Serialised again so that key order (nested too) takes part in the comparison.
    return {"status": status, "headers": wanted, "body": json.dumps(parsed), "key_order": keys_in_order}


READS = [
    ("GET", "/ping"),
    ("GET", "/api/topics"),
    ("GET", "/api/topics#gzip"),
    ("GET", "/api/nodes#deflate"),
    ("GET", "/api/nope#gzip"),
    ("GET", "/api/topics?inactive=true"),
    ("GET", "/api/topics/orders"),
    ("GET", "/api/topics/other"),
    ("GET", "/api/topics/orders/live"),
    ("GET", "/api/topics/orders/archive"),
    ("GET", "/api/topics/orders/tmp%23ephemeral"),
    ("GET", "/api/topics/orders/nope"),
    ("GET", "/api/topics/nope"),
    ("GET", "/api/nodes"),
    ("GET", "/api/nodes/<nsqd0-http>"),
    ("GET", "/api/nodes/<nsqd1-http>"),
    ("GET", "/api/nodes/127.0.0.1:1"),
    ("GET", "/api/counter"),
    ("GET", "/api/graphite?metric=rate&target=x"),
    ("GET", "/api/graphite?metric=depth"),
    ("GET", "/api/graphite?metric=rate"),
    ("GET", "/api/topics/"),
    ("GET", "/api/nope"),
    ("PATCH", "/api/topics"),
    ("GET", "/static/nope.js"),
    ("GET", "/config/http_client_request_timeout"),
    ("GET", "/config/nsqlookupd_http_addresses"),
    ("GET", "/config/admin_users"),
    ("GET", "/config/log_level"),
    ("GET", "/config/statsd_prefix"),
    ("GET", "/config/nope"),
]

BAD_INPUT = [
    ("POST", "/api/topics/orders", '{"action":"explode"}'),
    ("POST", "/api/topics/orders", ""),
    ("POST", "/api/topics/orders", "]"),
    ("POST", "/api/topics", '{"topic":"bad name"}'),
    ("POST", "/api/topics", '{"topic":"ok","channel":"bad/chan"}'),
    ("DELETE", "/api/nodes/x:1", "garbage"),
    ("DELETE", "/api/nodes/x:1", '{"topic":"no good"}'),
    ("PUT", "/config/log_level", "loud"),
    ("PUT", "/config/log_level", ""),
    ("PUT", "/config/statsd_prefix", "x"),
]

ACTIONS = [
    ("POST", "/api/topics/orders/archive", '{"action":"unpause"}'),
    ("POST", "/api/topics/orders/archive", '{"action":"pause"}'),
    ("POST", "/api/topics/orders/archive", '{"action":"empty"}'),
    ("POST", "/api/topics/orders", '{"action":"pause"}'),
    ("POST", "/api/topics/orders", '{"action":"unpause"}'),
    ("POST", "/api/topics/orders", '{"action":"empty"}'),
    ("POST", "/api/topics", '{"topic":"fresh","channel":"first"}'),
    ("POST", "/api/topics", '{"topic":"solo"}'),
    ("GET", "/api/topics?inactive=true"),
    ("DELETE", "/api/topics/orders/live", ""),
    ("DELETE", "/api/nodes/<nsqd1-http>", '{"topic":"orders"}'),
    ("GET", "/api/nodes"),
    ("DELETE", "/api/topics/orders", ""),
    ("DELETE", "/api/topics/nope", ""),
    ("GET", "/api/topics"),
    ("GET", "/api/counter"),
]


def expand(path, cluster):
    for addr, name in cluster.names():
        if name.startswith("<") and name in path:
            path = path.replace(name, addr)
    return path


def run(opts, nsqd_mode):
    print(f"== {'nsqd' if nsqd_mode else 'nsqlookupd'} mode")
    clusters = {"ours": Cluster("ours", opts), "theirs": Cluster("theirs", opts)}
    failures = 0
    total = 0
    try:
        for c in clusters.values():
            c.setup()
        clusters["ours"].start_admin(opts.ours, nsqd_mode=nsqd_mode)
        clusters["theirs"].start_admin(opts.theirs, nsqd_mode=nsqd_mode)
        auth = {"Authorization": "Basic YWxpY2U6c2VjcmV0", "User-Agent": "compare/1"}
        for group, reqs in [("read", READS), ("bad input", BAD_INPUT), ("action", ACTIONS)]:
            for method, path, *body in reqs:
                total += 1
                got = {}
                for label, c in clusters.items():
                    got[label] = answer(c, method, expand(path, c), body[0] if body else None,
                                        auth if method != "GET" else None)
                if got["ours"] == got["theirs"]:
                    if opts.verbose:
                        print(f"same  {group}: {method} {path} -> {got['ours']['status']}")
                    continue
                failures += 1
                print(f"DIFF  {group}: {method} {path}")
                print("  ours:  ", json.dumps(got["ours"], sort_keys=False)[:3000])
                print("  theirs:", json.dumps(got["theirs"], sort_keys=False)[:3000])
        # Notifications: same actions, same bodies (bar clocks and ports).
        time.sleep(1)
        notes = {}
        for label, c in clusters.items():
            notes[label] = sorted(
                (json.dumps(scrub(json.loads(normalize(json.dumps(b), c))), sort_keys=True)
                 for b in c.hook.bodies))
        total += 1
        if notes["ours"] != notes["theirs"]:
            failures += 1
            print("DIFF  notifications")
            print("  ours:  ", "\n          ".join(notes["ours"]))
            print("  theirs:", "\n          ".join(notes["theirs"]))
        elif opts.verbose:
            print(f"same  notifications: {len(notes['ours'])} bodies")
    finally:
        for c in clusters.values():
            c.stop()
    print(f"{total - failures}/{total} identical")
    return failures, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--ours", default=os.path.join(root, "target/debug/nsqadmin"))
    ap.add_argument("--theirs", required=True)
    ap.add_argument("--nsqd", default=os.path.join(root, "target/debug/nsqd"))
    ap.add_argument("--nsqlookupd", default=os.path.join(root, "target/debug/nsqlookupd"))
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()
    results = [run(opts, nsqd_mode) for nsqd_mode in (False, True)]
    failures = sum(f for f, _ in results)
    total = sum(t for _, t in results)
    print(f"overall: {total - failures}/{total} identical")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
