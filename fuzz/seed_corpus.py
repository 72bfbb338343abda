#!/usr/bin/env python3
"""Writes the small valid inputs each fuzz target's corpus starts from (fuzz/corpus/<target>/).

Run once when a target is added; the fuzzer grows the corpus from these and `cargo fuzz cmin`
keeps it small. Only the standard library is used, so the checksums are computed here.
"""
import hashlib
import json
import os
import struct
import sys
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def be32(n):
    return struct.pack(">I", n)


MSG_ID = b"0123456789abcdef"


def seed(target, items):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for item in items:
        name = hashlib.sha1(item).hexdigest()
        with open(os.path.join(d, name), "wb") as f:
            f.write(item)


def v2_command():
    ident = json.dumps({"client_id": "c", "feature_negotiation": True, "heartbeat_interval": 1000}).encode()
    mpub = be32(2) + be32(3) + b"abc" + be32(1) + b"d"
    return [
        b"\x01FIN " + MSG_ID + b"\n",
        b"\x01FIN " + MSG_ID + b"\r\nFIN " + MSG_ID + b"\n",
        b"\x00IDENTIFY\n" + be32(len(ident)) + ident + b"SUB topic chan\nRDY 10\n",
        b"\x01RDY 1\nREQ " + MSG_ID + b" 100\nTOUCH " + MSG_ID + b"\nNOP\nCLS\n",
        b"\x00PUB topic\n" + be32(5) + b"hello" + b"DPUB topic 10\n" + be32(1) + b"x",
        b"\x00MPUB topic\n" + be32(len(mpub)) + mpub,
        b"\x00AUTH\n" + be32(6) + b"secret",
        b"\x20PUB topic\n" + be32(5) + b"he",
    ]


def identify():
    return [
        json.dumps(b).encode()
        for b in [
            {},
            {"client_id": "c", "hostname": "h", "user_agent": "u"},
            {"feature_negotiation": True, "tls_v1": True, "snappy": True},
            {"feature_negotiation": True, "deflate": True, "deflate_level": 3},
            {"heartbeat_interval": -1, "output_buffer_size": -1, "output_buffer_timeout": 100},
            {"sample_rate": 50, "msg_timeout": 5000, "HEARTBEAT_INTERVAL": 2000},
        ]
    ] + [b"null"]


def auth():
    answer = json.dumps({
        "ttl": 3600,
        "identity": "i",
        "identity_url": "http://x/",
        "authorizations": [
            {"topic": ".*", "channels": ["^c$", "d.*"], "permissions": ["subscribe", "publish"]},
            {"topic": "t\\d+", "channels": [".*"], "permissions": ["publish"]},
        ],
    }).encode()
    return [
        b"s3cr t\x00topic\x00chan\x00" + answer,
        b"\xff%+\x00t1\x00\x00" + answer,
        b"x\x00t\x00c\x00" + json.dumps({"ttl": 1, "authorizations": []}).encode(),
    ]


def lookupd_v1():
    ident = json.dumps({"broadcast_address": "h", "tcp_port": 4150, "http_port": 4151, "version": "1.3.0"}).encode()
    return [
        b"PING\n",
        b"IDENTIFY\n" + be32(len(ident)) + ident + b"REGISTER t c\nREGISTER t\nUNREGISTER t c\nPING\n",
        b"REGISTER t\n",
        b"  PING \r\n",
    ]


def snappy_frames(plain, compressed):
    out = b"\xff\x06\x00\x00sNaPpY"
    crc = crc32c(plain)
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    if compressed:
        # Varint length, then a single literal element.
        body = bytes([len(plain)]) + bytes([(len(plain) - 1) << 2]) + plain
        kind = 0
    else:
        body = plain
        kind = 1
    payload = struct.pack("<I", masked) + body
    return out + bytes([kind]) + struct.pack("<I", len(payload))[:3] + payload


def snappy_stream():
    return [
        b"\x00\x10" + snappy_frames(b"hello world", False),
        b"\x02\x03\x05\x07" + snappy_frames(b"PUB t\n", True) + b"\xfe\x01\x00\x00x",
    ]


def deflate_stream():
    out = []
    for level, data, sizes in [(6, b"hello hello hello", b"\x05"), (1, b"x" * 300, b"\x01\x02")]:
        c = zlib.compressobj(level, zlib.DEFLATED, -15)
        wire = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        n = (len(sizes) - 1) | (level << 4)
        out.append(bytes([n]) + sizes + wire)
    return out


def record(seq, body, ts=1, attempts=0):
    rest = struct.pack(">QqH", seq, ts, attempts) + MSG_ID + body
    # The length counts the checksum too.
    return be32(len(rest) + 4) + be32(crc32c(rest)) + rest


def store_record():
    return [b"\x00" + record(5, b"hi"), b"\x07" + record(0, b""), b"\x01" + record(1, b"x" * 40)]


def event(kind, payload):
    body = bytes([kind]) + payload
    return be32(len(body) + 4) + be32(crc32c(body)) + body


def message(body):
    return MSG_ID + struct.pack(">qHI", 7, 1, len(body)) + body


def store_journal():
    events = (
        event(1, struct.pack(">Q", 10))
        + event(2, be32(1) + MSG_ID)
        + event(3, be32(2) + MSG_ID + MSG_ID)
        + event(4, MSG_ID + struct.pack(">q", 99))
        + event(5, struct.pack(">q", 5) + message(b"deferred"))
        + event(6, struct.pack(">Q", 11))
    )
    return [b"\x00" + events, b"\x01" + events[:40]]


def store_checkpoint():
    body = struct.pack(">QQ", 3, 10) + be32(2)
    body += struct.pack(">q", 0) + message(b"a")
    body += struct.pack(">q", 50) + MSG_ID[::-1] + struct.pack(">qHI", 1, 2, 0)
    full = b"NSQRSCK1" + be32(crc32c(body)) + body
    return [b"\x00" + full, b"\x01" + body, b"\x01" + struct.pack(">QQ", 0, 0) + be32(0)]


def store_segment():
    recs = b"".join(record(i, b"m%d" % i) for i in range(3))
    return [
        # Second segment at 3: the first holds 0..2.
        bytes([2, 0]) + recs,
        bytes([2, 0x21]) + b"NSQRSEG1" + struct.pack(">Q", 0) + recs + b"\x00\x00\x00\x30" + b"torn",
    ]


def go_message(body):
    return struct.pack(">qH", 1, 0) + MSG_ID + body


def diskqueue():
    recs = b"".join(be32(len(m)) + m for m in [go_message(b"one"), go_message(b"two")])
    meta = b"2\n0,0\n1,%d\n" % len(recs)
    head = lambda flags, seg0, seg1: bytes([flags, len(meta)]) + struct.pack(">HH", seg0, seg1)
    return [
        head(0x0B, len(recs), len(recs)) + meta + recs + recs,
        head(0x07, len(recs), 0) + meta + recs + recs,
        head(0x19, len(recs) - 3, 0) + meta + recs,
    ]


def nsqd_dat():
    md = {
        "topics": [
            {"name": "t", "paused": False, "channels": [{"name": "c", "paused": True}]},
            {"name": "u", "channels": None},
        ],
        "version": "1.3.0",
    }
    return [json.dumps(md).encode(), b'{"topics":null}', b"{}"]


def http_query():
    return [
        b"topic=t&channel=c",
        b"topic=a%20b&binary=true&defer=10",
        b"a=1;b=2",
        b"%zz=1&+=+",
        b"/a/../b/./c//d/",
    ]


def http_body():
    mpub = be32(2) + be32(3) + b"abc" + be32(1) + b"d"
    return [b"\x10one\ntwo\n\nthree\r\n", b"\x10" + mpub, b'\x10["127.0.0.1:4160"]', b"\x10debug"]


TARGETS = {
    "v2_command": v2_command,
    "identify": identify,
    "auth": auth,
    "lookupd_v1": lookupd_v1,
    "snappy_stream": snappy_stream,
    "deflate_stream": deflate_stream,
    "store_record": store_record,
    "store_journal": store_journal,
    "store_checkpoint": store_checkpoint,
    "store_segment": store_segment,
    "diskqueue": diskqueue,
    "nsqd_dat": nsqd_dat,
    "http_query": http_query,
    "http_body": http_body,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        seed(name, TARGETS[name]())
