"""pynsq 0.9.1 (the official Python client) against our nsqd.

Timing notes: nsqd finds expired in-flight and due deferred messages with a
periodic scanner that (in the reference) only picks up a new channel at its
next 5 s refresh, so waits on deferral/timeout carry a ~15 s bound while the
lower bounds ("not before the delay") are exact.
"""

import time

import nsq
import tornado.gen

from pynsq_harness import Consumer, Producer, async_test, expect_nothing, wait_for

# Bound for anything that depends on the timeout/deferral scanner.
SCAN_WAIT = 15.0


def _topic(name):
    # Tests already get their own nsqd; a per-test name keeps logs readable.
    return "pynsq_%s" % name


def _assert_no_errors(*clients):
    for c in clients:
        assert c.errors == [], "client saw error frames: %r" % (c.errors,)


@async_test(timeout=30)
async def test_pub_delivers_body_and_metadata(nsqd):
    topic = _topic("pub")
    consumer = Consumer(nsqd, topic, "ch")
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    before_ns = time.time_ns()
    await producer.pub(topic, b"hello interop")
    await wait_for(lambda: consumer.deliveries, 5.0, "PUBed message")
    after_ns = time.time_ns()

    d = consumer.deliveries[0]
    assert d.body == b"hello interop"
    assert d.attempts == 1
    assert len(d.id) == 16 and all(c in b"0123456789abcdef" for c in d.id), d.id
    # timestamp is the publish time in nanoseconds
    assert before_ns - 1_000_000_000 <= d.timestamp <= after_ns + 1_000_000_000, (
        before_ns,
        d.timestamp,
        after_ns,
    )
    await expect_nothing(lambda: len(consumer.deliveries) > 1, 0.3, "a second delivery of a FINed message")
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()


@async_test(timeout=30)
async def test_mpub_delivers_every_message_once(nsqd):
    topic = _topic("mpub")
    bodies = [b"m-%03d" % i for i in range(25)] + [b"\x00binary\nbody\xff", b"x" * 20000]
    consumer = Consumer(nsqd, topic, "ch", max_in_flight=10)
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    await producer.mpub(topic, bodies)
    await wait_for(lambda: len(consumer.deliveries) >= len(bodies), 10.0, "all MPUB messages")
    await expect_nothing(lambda: len(consumer.deliveries) > len(bodies), 0.3, "duplicate delivery")

    assert sorted(consumer.bodies()) == sorted(bodies)
    assert all(d.attempts == 1 for d in consumer.deliveries)
    assert len({d.id for d in consumer.deliveries}) == len(bodies), "message IDs must be unique"
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()


@async_test(timeout=40)
async def test_dpub_is_held_for_the_delay(nsqd):
    topic = _topic("dpub")
    delay_ms = 1500
    consumer = Consumer(nsqd, topic, "ch", max_in_flight=5)
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    sent = time.monotonic()
    await producer.dpub(topic, delay_ms, b"deferred")
    await producer.pub(topic, b"immediate")

    await wait_for(lambda: b"immediate" in consumer.bodies(), 5.0, "the non-deferred message")
    await wait_for(lambda: b"deferred" in consumer.bodies(), SCAN_WAIT, "the DPUB message")

    by_body = {d.body: d for d in consumer.deliveries}
    assert consumer.bodies()[0] == b"immediate", "deferred message overtook an immediate one"
    waited = by_body[b"deferred"].at - sent
    assert waited >= delay_ms / 1000.0, "DPUB %d ms delivered after only %.3fs" % (delay_ms, waited)
    assert by_body[b"deferred"].attempts == 1
    assert len(consumer.deliveries) == 2
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()


@async_test(timeout=40)
async def test_req_with_delay_redelivers_after_delay(nsqd):
    topic = _topic("req")
    requeued_at = []

    def handler(d):
        if d.attempts == 1:
            requeued_at.append(time.monotonic())
            d.message.requeue(delay=1, backoff=False)
        else:
            d.message.finish()

    consumer = Consumer(nsqd, topic, "ch", handler=handler)
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    await producer.pub(topic, b"requeue me")
    await wait_for(lambda: len(consumer.deliveries) >= 2, SCAN_WAIT, "redelivery after REQ")

    first, second = consumer.deliveries[:2]
    assert (first.attempts, second.attempts) == (1, 2)
    assert second.id == first.id and second.body == first.body
    assert second.timestamp == first.timestamp, "timestamp must keep the original publish time"
    waited = second.at - requeued_at[0]
    assert waited >= 1.0, "REQ with 1000 ms delay came back after %.3fs" % waited
    await expect_nothing(lambda: len(consumer.deliveries) > 2, 0.5, "delivery after FIN")
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()


@async_test(timeout=30)
async def test_req_without_delay_redelivers_immediately(nsqd):
    topic = _topic("req0")

    def handler(d):
        if d.attempts == 1:
            d.message.requeue(delay=0, backoff=False)
        else:
            d.message.finish()

    consumer = Consumer(nsqd, topic, "ch", handler=handler)
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    await producer.pub(topic, b"again")
    # REQ 0 goes straight back to the queue, so no scanner wait is involved.
    await wait_for(lambda: len(consumer.deliveries) >= 2, 3.0, "immediate redelivery after REQ 0")
    assert [d.attempts for d in consumer.deliveries] == [1, 2]
    assert consumer.deliveries[0].id == consumer.deliveries[1].id
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()


@async_test(timeout=40)
async def test_touch_keeps_message_in_flight(nsqd):
    topic = _topic("touch")
    def handler(d):
        # "touched" is held (and touched) by the test; "control" is left to time
        # out once and finished when it comes back.
        if d.body == b"control" and d.attempts > 1:
            d.message.finish()

    consumer = Consumer(nsqd, topic, "ch", handler=handler, max_in_flight=2, msg_timeout=1.0)
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    await producer.mpub(topic, [b"touched", b"control"])
    await wait_for(lambda: len(consumer.deliveries) >= 2, 5.0, "both messages")
    touched = next(d for d in consumer.deliveries if d.body == b"touched")

    stop = []

    async def keep_touching():
        # 250 ms is well inside the 1 s msg_timeout, so every deadline is extended in time.
        while not stop:
            touched.message.touch()
            await tornado.gen.sleep(0.25)

    toucher = tornado.gen.convert_yielded(keep_touching())

    def redelivered(body):
        return [d for d in consumer.deliveries if d.body == body and d.attempts > 1]

    # The untouched control message timing out proves the server is actively
    # expiring messages on this channel; only then is "no redelivery" meaningful.
    await wait_for(lambda: redelivered(b"control"), SCAN_WAIT, "untouched control message to time out")
    await expect_nothing(lambda: redelivered(b"touched"), 2.5, "touched message timed out despite TOUCH")
    stop.append(True)
    await toucher

    touched.message.finish()
    await expect_nothing(lambda: redelivered(b"touched"), 0.5, "touched message redelivered after FIN")
    assert len([d for d in consumer.deliveries if d.body == b"touched"]) == 1
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()


@async_test(timeout=40)
async def test_unfinished_message_times_out_and_comes_back(nsqd):
    topic = _topic("timeout")

    def handler(d):
        if d.attempts >= 2:
            d.message.finish()
        # attempt 1: never answered, so nsqd must expire it after msg_timeout

    consumer = Consumer(nsqd, topic, "ch", handler=handler, msg_timeout=1.0)
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    await producer.pub(topic, b"slow consumer")
    await wait_for(lambda: len(consumer.deliveries) >= 2, SCAN_WAIT, "redelivery after msg timeout")

    first, second = consumer.deliveries[:2]
    assert (first.attempts, second.attempts) == (1, 2)
    assert first.id == second.id and first.body == second.body
    gap = second.at - first.at
    # 1000 ms timeout measured from the server's send; allow for delivery latency.
    assert gap >= 0.75, "message came back %.3fs after delivery, before its 1s timeout" % gap
    await expect_nothing(lambda: len(consumer.deliveries) > 2, 1.5, "redelivery after FIN of attempt 2")
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()


@async_test(timeout=30)
async def test_consumers_on_one_channel_share_messages(nsqd):
    topic = _topic("shared")
    n = 30
    consumers = []
    held = []

    def make_handler(index):
        def handler(d):
            other = consumers[1 - index]
            if not other.deliveries:
                # Hold until the other consumer gets something: this makes
                # "both consumers receive messages" deterministic.
                held.append(d)
                return
            d.message.finish()
            while held:
                held.pop().message.finish()

        return handler

    consumers.append(Consumer(nsqd, topic, "shared", handler=make_handler(0), max_in_flight=2))
    consumers.append(Consumer(nsqd, topic, "shared", handler=make_handler(1), max_in_flight=2))
    producer = Producer(nsqd)
    for c in consumers:
        await c.ready()
    await producer.ready()

    bodies = [b"s-%02d" % i for i in range(n)]
    await producer.mpub(topic, bodies)
    total = lambda: sum(len(c.deliveries) for c in consumers)  # noqa: E731
    await wait_for(lambda: total() >= n and not held, 10.0, "all messages across both consumers")
    await expect_nothing(lambda: total() > n, 0.3, "a message delivered twice")

    got = [b for c in consumers for b in c.bodies()]
    assert sorted(got) == sorted(bodies), "each message must reach exactly one consumer"
    assert all(c.deliveries for c in consumers), [len(c.deliveries) for c in consumers]
    assert all(d.attempts == 1 for c in consumers for d in c.deliveries)
    _assert_no_errors(producer, *consumers)
    for c in consumers:
        c.close()
    producer.close()


@async_test(timeout=30)
async def test_every_channel_gets_every_message(nsqd):
    topic = _topic("fanout")
    channels = ["alpha", "beta", "gamma"]
    consumers = {ch: Consumer(nsqd, topic, ch, max_in_flight=5) for ch in channels}
    producer = Producer(nsqd)
    for c in consumers.values():
        await c.ready()
    await producer.ready()

    bodies = [b"f-%02d" % i for i in range(10)]
    await producer.mpub(topic, bodies)
    await producer.pub(topic, b"f-single")
    bodies.append(b"f-single")

    for ch, c in consumers.items():
        await wait_for(lambda: len(c.deliveries) >= len(bodies), 10.0, "all messages on channel %s" % ch)
    await expect_nothing(
        lambda: any(len(c.deliveries) > len(bodies) for c in consumers.values()), 0.3, "duplicate on a channel"
    )

    reference = {d.body: (d.id, d.timestamp) for d in consumers["alpha"].deliveries}
    for ch, c in consumers.items():
        assert sorted(c.bodies()) == sorted(bodies), "channel %s" % ch
        # each channel gets a copy of the same message: same ID and timestamp
        assert {d.body: (d.id, d.timestamp) for d in c.deliveries} == reference, "channel %s" % ch
    _assert_no_errors(producer, *consumers.values())
    for c in consumers.values():
        c.close()
    producer.close()


@async_test(timeout=30)
async def test_max_in_flight_one_delivers_one_at_a_time(nsqd):
    topic = _topic("rdy1")
    n = 8
    held = []
    overlaps = []

    def handler(d):
        if held:
            overlaps.append(d.body)
        held.append(d)

    consumer = Consumer(nsqd, topic, "ch", handler=handler, max_in_flight=1)
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    await producer.mpub(topic, [b"one-%d" % i for i in range(n)])
    for step in range(n):
        await wait_for(lambda: held, 5.0, "message %d with RDY 1" % (step + 1))
        if step < 3:
            # With one message in flight and RDY 1 the server must not send another.
            await expect_nothing(lambda: len(consumer.deliveries) > step + 1, 0.3, "second message while RDY 1 is used")
        held.pop().message.finish()

    assert overlaps == [], "messages delivered beyond RDY 1: %r" % overlaps
    assert sorted(consumer.bodies()) == sorted(b"one-%d" % i for i in range(n))
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()


@async_test(timeout=40)
async def test_set_max_in_flight_pauses_and_resumes(nsqd):
    topic = _topic("rdy_change")
    held = []
    hold = []

    def handler(d):
        if hold:
            held.append(d)
        else:
            d.message.finish()

    consumer = Consumer(nsqd, topic, "ch", handler=handler, max_in_flight=4)
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    await producer.mpub(topic, [b"a-%d" % i for i in range(5)])
    await wait_for(lambda: len(consumer.deliveries) >= 5, 5.0, "first batch")

    consumer.reader.set_max_in_flight(0)  # RDY 0
    await barrier(consumer)
    await producer.mpub(topic, [b"b-%d" % i for i in range(5)])
    await expect_nothing(lambda: len(consumer.deliveries) > 5, 0.8, "delivery while RDY 0")

    hold.append(True)
    consumer.reader.set_max_in_flight(3)  # RDY 1, then RDY 3 after the first message
    await wait_for(lambda: len(held) >= 3, 5.0, "3 messages in flight after raising max_in_flight to 3")
    await expect_nothing(lambda: len(held) > 3, 0.5, "more than 3 messages in flight with RDY 3")

    hold.clear()
    while held:
        held.pop().message.finish()
    await wait_for(lambda: len(consumer.deliveries) >= 10, 5.0, "rest of the second batch")
    assert sorted(consumer.bodies()) == sorted([b"a-%d" % i for i in range(5)] + [b"b-%d" % i for i in range(5)])
    assert all(d.attempts == 1 for d in consumer.deliveries)
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()


async def barrier(consumer, timeout=5.0):
    """Round-trip on the consumer's own connection(s).

    nsqd answers commands on a connection in order, so once a PUB sent after
    RDY 0 on that connection is acknowledged, the RDY 0 has been applied.
    """
    conns = list(consumer.reader.conns.values())
    assert conns, "consumer has no connection"
    acks = []
    for conn in conns:
        conn.on("response", lambda conn, data, **kw: acks.append(data) if data == b"OK" else None)
        conn.send(nsq.protocol.pub("pynsq_barrier", b"."))
    await wait_for(lambda: len(acks) >= len(conns), timeout, "PUB acknowledged on the consumer connection")


@async_test(timeout=30)
async def test_heartbeats_keep_idle_consumer_connected(nsqd):
    topic = _topic("heartbeat")
    # pynsq answers each _heartbeat_ with NOP; nsqd must keep sending them at
    # the negotiated 1 s interval and must not drop a connection that answers.
    consumer = Consumer(nsqd, topic, "ch", heartbeat_interval=1)
    producer = Producer(nsqd)
    await consumer.ready()
    await producer.ready()

    started = time.monotonic()
    await wait_for(lambda: consumer.reader.heartbeats >= 3, 6.0, "3 heartbeats at a 1 s interval")
    elapsed = time.monotonic() - started
    assert elapsed >= 1.5, "3 heartbeats within %.2fs: interval not honoured" % elapsed
    assert consumer.reader.closed_conns == 0, "idle consumer was disconnected"

    await producer.pub(topic, b"still there")
    await wait_for(lambda: consumer.deliveries, 3.0, "delivery on the long-idle connection")
    assert consumer.reader.closed_conns == 0
    _assert_no_errors(consumer, producer)
    consumer.close()
    producer.close()
