"""What the side-by-side scripts for to_nsq and nsq_tail share: starting our daemons, raw HTTP
and TCP helpers, and the log-line filter. Imported with `from support import *`."""
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
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Daemon:
    def __init__(self, binary, args, data=None):
        self.data = data
        self.proc = subprocess.Popen([binary] + args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.tcp = self.http = None
        deadline = time.time() + 20
        while time.time() < deadline and (self.tcp is None or self.http is None):
            line = self.proc.stderr.readline()
            if not line:
                break
            m = re.search(r"TCP: listening on (\S+)", line)
            if m:
                self.tcp = m.group(1)
            m = re.search(r"HTTP: listening on (\S+)", line)
            if m:
                self.http = m.group(1)
        if self.tcp is None or self.http is None:
            raise SystemExit(f"{binary} did not start")
        threading.Thread(target=lambda: self.proc.stderr.read(), daemon=True).start()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.data:
            shutil.rmtree(self.data, ignore_errors=True)


def start_nsqd(ours):
    data = tempfile.mkdtemp(prefix="cmp-nsqd-")
    return Daemon(os.path.join(ours, "nsqd"), [
        f"--data-path={data}", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
        "--https-address=", "--broadcast-address=127.0.0.1"], data)


def http(addr, method, path, body=b""):
    req = urllib.request.Request(f"http://{addr}{path}", data=body if method == "POST" else None,
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def channel_depth(nsqd, topic, channel):
    _, body = http(nsqd.http, "GET", f"/stats?format=json&topic={topic}")
    for t in json.loads(body).get("topics") or []:
        if t["topic_name"] == topic:
            for c in t.get("channels") or []:
                if c["channel_name"] == channel:
                    return t["message_count"], c["depth"]
    return 0, 0


def consume(nsqd, topic, channel, count):
    """Takes `count` messages off the channel over TCP and returns their bodies in order."""
    if count == 0:
        return []
    host, port = nsqd.tcp.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"  V2")
    s.sendall(f"SUB {topic} {channel}\n".encode())

    def frame():
        size = struct.unpack(">l", recv(4))[0]
        data = recv(size)
        return struct.unpack(">l", data[:4])[0], data[4:]

    def recv(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise SystemExit("nsqd closed the connection")
            buf += chunk
        return buf

    kind, data = frame()
    assert kind == 0 and data == b"OK", (kind, data)
    s.sendall(b"RDY 100\n")
    bodies = []
    while len(bodies) < count:
        kind, data = frame()
        if kind == 0 and data == b"_heartbeat_":
            s.sendall(b"NOP\n")
        elif kind == 2:
            msg_id = data[10:26]
            bodies.append(data[26:])
            s.sendall(b"FIN " + msg_id + b"\n")
        elif kind == 1:
            raise SystemExit(f"nsqd error: {data!r}")
    s.sendall(b"CLS\n")
    s.close()
    return bodies


CHATTER = re.compile(r"^(INF|ERR|WRN|DBG) ")
