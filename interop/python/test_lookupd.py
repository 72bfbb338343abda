"""pynsq 0.9.1 discovering our nsqd nodes through our nsqlookupd.

Every test gets one nsqlookupd and two nsqd registered with it
(--lookupd-tcp-address, --broadcast-address=127.0.0.1). The Reader is given
only the lookupd's HTTP address and polls it every second; it must find both
nodes and consume what is published to either of them.
"""

import json
import sys

import pytest
import tornado.gen
import tornado.ioloop
from tornado.httpclient import AsyncHTTPClient

from nsqd_proc import NsqdProcess, NsqlookupdProcess
from pynsq_harness import Consumer, Producer, async_test, expect_nothing, wait_for


@pytest.fixture
def cluster(request):
    procs = []
    try:
        lookupd = NsqlookupdProcess().start()
        procs.append(lookupd)
        nodes = []
        for _ in range(2):
            node = NsqdProcess(
                [
                    "--broadcast-address=127.0.0.1",
                    "--lookupd-tcp-address=%s" % lookupd.tcp_address,
                ]
            ).start()
            procs.append(node)
            nodes.append(node)
        yield lookupd, nodes
    finally:
        for p in reversed(procs):
            p.stop()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            for p in procs:
                sys.stderr.write(
                    "\n----- %s stderr (%s) -----\n%s\n"
                    % (p.name, request.node.name, p.log_text()[-6000:])
                )


async def http(method, address, path):
    """One request to a daemon's HTTP API; returns (status, parsed JSON or raw body)."""
    resp = await AsyncHTTPClient().fetch(
        "http://%s%s" % (address, path),
        method=method,
        body=b"" if method == "POST" else None,
        raise_error=False,
        request_timeout=5,
    )
    body = resp.body or b""
    try:
        return resp.code, json.loads(body.decode("utf-8"))
    except ValueError:
        return resp.code, body


async def create_topic(node, topic):
    code, body = await http("POST", node.http_address, "/topic/create?topic=%s" % topic)
    assert code == 200, "nsqd /topic/create: %s %r" % (code, body)


async def lookup(lookupd, topic):
    """(producer addresses, channels) of /lookup?topic=T; empty sets if the topic is unknown."""
    code, body = await http("GET", lookupd.http_address, "/lookup?topic=%s" % topic)
    if code == 404:
        return set(), set()
    assert code == 200, "lookupd /lookup: %s %r" % (code, body)
    producers = {"%s:%d" % (p["broadcast_address"], p["tcp_port"]) for p in body["producers"]}
    return producers, set(body["channels"])


async def channel_clients(node, topic, channel):
    """Number of consumers subscribed to topic/channel on `node` (None if the channel is absent)."""
    code, body = await http(
        "GET", node.http_address, "/stats?format=json&topic=%s&channel=%s" % (topic, channel)
    )
    assert code == 200, "nsqd /stats: %s %r" % (code, body)
    for t in body.get("topics") or []:
        if t["topic_name"] == topic:
            for c in t.get("channels") or []:
                if c["channel_name"] == channel:
                    return len(c.get("clients") or [])
    return None


async def wait_async(cond, timeout, what):
    """Like wait_for, for a coroutine condition; returns the last (truthy) value."""
    deadline = tornado.ioloop.IOLoop.current().time() + timeout
    last = None
    while True:
        last = await cond()
        if last:
            return last
        if tornado.ioloop.IOLoop.current().time() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        await tornado.gen.sleep(0.05)


def _assert_no_errors(*clients):
    for c in clients:
        assert c.errors == [], "client saw error frames: %r" % (c.errors,)


@async_test(timeout=30)
async def test_reader_consumes_from_both_nodes_via_lookupd(cluster):
    lookupd, (a, b) = cluster
    topic = "pynsq_lookupd_both"
    for node in (a, b):
        await create_topic(node, topic)
    want = {a.tcp_address, b.tcp_address}

    async def both_registered():
        producers, _ = await lookup(lookupd, topic)
        return producers == want

    await wait_async(both_registered, 10.0, "both nodes in lookupd's /lookup producers")

    consumer = Consumer(
        None,
        topic,
        "ch",
        lookupd_http_addresses=["http://%s" % lookupd.http_address],
        lookupd_poll_interval=1,
        max_in_flight=10,
    )

    async def subscribed_to_both():
        return all([(await channel_clients(n, topic, "ch")) == 1 for n in (a, b)])

    await wait_async(subscribed_to_both, 10.0, "the Reader subscribed on both nodes")

    async def channel_registered():
        _, channels = await lookup(lookupd, topic)
        return "ch" in channels

    await wait_async(channel_registered, 10.0, "the channel in lookupd's /lookup channels")

    pa, pb = Producer(a), Producer(b)
    await pa.ready()
    await pb.ready()
    sent = []
    for i in range(5):
        for name, p in (("a", pa), ("b", pb)):
            body = b"%s-%d" % (name.encode(), i)
            await p.pub(topic, body)
            sent.append(body)

    await wait_for(lambda: len(consumer.deliveries) >= len(sent), 10.0, "every message from both nodes")
    await expect_nothing(lambda: len(consumer.deliveries) > len(sent), 0.3, "duplicate delivery")
    assert sorted(consumer.bodies()) == sorted(sent)
    assert all(d.attempts == 1 for d in consumer.deliveries)
    _assert_no_errors(consumer, pa, pb)
    consumer.close()
    pa.close()
    pb.close()


@async_test(timeout=30)
async def test_reader_discovers_node_that_gains_the_topic_later(cluster):
    lookupd, (a, b) = cluster
    topic = "pynsq_lookupd_late"
    await create_topic(a, topic)

    async def a_registered():
        producers, _ = await lookup(lookupd, topic)
        return producers == {a.tcp_address}

    await wait_async(a_registered, 10.0, "node A in lookupd's /lookup producers")

    consumer = Consumer(
        None,
        topic,
        "ch",
        lookupd_http_addresses=["http://%s" % lookupd.http_address],
        lookupd_poll_interval=1,
        max_in_flight=10,
    )

    async def subscribed_to_a():
        return (await channel_clients(a, topic, "ch")) == 1

    await wait_async(subscribed_to_a, 10.0, "the Reader subscribed on node A")

    async def channel_registered():
        _, channels = await lookup(lookupd, topic)
        return "ch" in channels

    await wait_async(channel_registered, 10.0, "the channel in lookupd's /lookup channels")
    assert await channel_clients(b, topic, "ch") is None, "node B must not have the topic yet"

    # Node B's first publish creates the topic there; nsqd pre-creates the channel lookupd
    # knows, so the message waits for the Reader, which finds B on its next lookupd poll.
    pb = Producer(b)
    await pb.ready()
    await pb.pub(topic, b"late-b")
    assert await channel_clients(b, topic, "ch") is not None, "channel pre-created on node B"
    await wait_for(lambda: b"late-b" in consumer.bodies(), 10.0, "the message published on node B")
    assert await channel_clients(b, topic, "ch") == 1, "the Reader subscribed on node B"

    pa = Producer(a)
    await pa.ready()
    await pa.pub(topic, b"then-a")
    await wait_for(lambda: b"then-a" in consumer.bodies(), 5.0, "the message published on node A")
    await expect_nothing(lambda: len(consumer.deliveries) > 2, 0.3, "duplicate delivery")
    assert sorted(consumer.bodies()) == [b"late-b", b"then-a"]
    _assert_no_errors(consumer, pa, pb)
    consumer.close()
    pa.close()
    pb.close()
