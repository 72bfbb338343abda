"""Thin helpers around pynsq 0.9.1 so tests can await client events.

pynsq is callback driven on a tornado IOLoop; each test gets a fresh loop so a
misbehaving connection from one test can never deliver into the next.
"""

import datetime
import functools
import time

import nsq
import tornado.gen
import tornado.ioloop
from tornado.concurrent import Future


def async_test(timeout):
    """Run a coroutine test on a private IOLoop, failing if it exceeds `timeout` seconds."""

    def wrap(fn):
        @functools.wraps(fn)
        def runner(*args, **kwargs):
            io_loop = tornado.ioloop.IOLoop()
            io_loop.make_current()
            try:
                io_loop.run_sync(lambda: fn(*args, **kwargs), timeout=timeout)
            finally:
                io_loop.clear_current()
                io_loop.close(all_fds=True)

        return runner

    return wrap


async def wait_for(cond, timeout, what):
    """Poll `cond` until it is truthy; the bound turns a lost event into a clear failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        await tornado.gen.sleep(0.01)


async def expect_nothing(cond, duration, what):
    """Assert that `cond` stays false for `duration` seconds (for "must not happen" checks)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if cond():
            raise AssertionError("unexpected: %s" % what)
        await tornado.gen.sleep(0.01)
    if cond():
        raise AssertionError("unexpected: %s" % what)


class Delivery:
    __slots__ = ("at", "message", "body", "attempts", "id", "timestamp")

    def __init__(self, message):
        self.at = time.monotonic()
        self.message = message
        self.body = bytes(message.body)
        self.attempts = message.attempts
        self.id = message.id
        self.timestamp = message.timestamp


class _NegotiationLog:
    """Mixin for pynsq clients: keeps the IDENTIFY and AUTH responses nsqd sent."""

    def _init_negotiation_log(self):
        self.identify_responses = []
        self.auth_responses = []

    def _on_connection_identify_response(self, conn, data, **kwargs):
        self.identify_responses.append(data)
        return super()._on_connection_identify_response(conn, data, **kwargs)

    def _on_connection_auth_response(self, conn, data, **kwargs):
        self.auth_responses.append(data)
        return super()._on_connection_auth_response(conn, data, **kwargs)


def stream_layers(conn):
    """What a pynsq connection really runs on: {"tls", "snappy", "deflate"} subset.

    pynsq silently stays in plain text when nsqd answers a feature with false,
    so tests check the socket objects it installed, not only what was asked for.
    """
    import ssl

    from nsq.deflate_socket import DeflateSocket

    try:
        from nsq.snappy_socket import SnappySocket
    except ImportError:  # python-snappy missing
        SnappySocket = ()
    layers = set()
    sock = conn.socket
    if isinstance(sock, SnappySocket):
        layers.add("snappy")
        sock = sock._socket
    elif isinstance(sock, DeflateSocket):
        layers.add("deflate")
        sock = sock._socket
    if isinstance(sock, ssl.SSLSocket):
        layers.add("tls")
    return layers


class _RecordingReader(_NegotiationLog, nsq.Reader):
    """nsq.Reader that remembers error frames and the SUB acknowledgement."""

    def __init__(self, *args, **kwargs):
        self.errors = []
        self.subscribed = False
        self.heartbeats = 0
        self.closed_conns = 0
        self._init_negotiation_log()
        super().__init__(*args, **kwargs)

    def heartbeat(self, conn):
        self.heartbeats += 1

    def _on_connection_close(self, conn, **kwargs):
        self.closed_conns += 1
        return super()._on_connection_close(conn, **kwargs)

    def _on_connection_error(self, conn, error, **kwargs):
        self.errors.append(error)
        return super()._on_connection_error(conn, error, **kwargs)

    def _on_connection_ready(self, conn, **kwargs):
        result = super()._on_connection_ready(conn, **kwargs)
        # The first plain OK after IDENTIFY is the reply to SUB; waiting for it
        # guarantees the channel exists before anything is published.
        conn.on("response", self._on_response)
        return result

    def _on_response(self, conn, data, **kwargs):
        if data == b"OK":
            self.subscribed = True


class Consumer:
    """A Reader that records every delivery; `handler(delivery)` decides FIN/REQ/hold.

    Connects to `nsqd` directly, or (with nsqd=None) to whatever the
    `lookupd_http_addresses` reader argument discovers.

    Every message is switched to async mode before the handler runs, so a
    handler that does nothing leaves the message in flight on the server.
    """

    def __init__(self, nsqd, topic, channel, handler=None, **reader_kwargs):
        self.deliveries = []
        self.handler = handler if handler is not None else (lambda d: d.message.finish())
        # nsqd=None: discovery only, through `lookupd_http_addresses` in reader_kwargs.
        if nsqd is not None:
            reader_kwargs["nsqd_tcp_addresses"] = [nsqd.tcp_address]
        self.reader = _RecordingReader(
            topic,
            channel,
            message_handler=self._on_message,
            **reader_kwargs
        )

    def _on_message(self, message):
        message.enable_async()
        d = Delivery(message)
        self.deliveries.append(d)
        self.handler(d)

    @property
    def errors(self):
        return self.reader.errors

    @property
    def identify_responses(self):
        return self.reader.identify_responses

    @property
    def auth_responses(self):
        return self.reader.auth_responses

    def connections(self):
        return list(self.reader.conns.values())

    def bodies(self):
        return [d.body for d in self.deliveries]

    async def ready(self, timeout=5.0):
        await wait_for(lambda: self.reader.subscribed, timeout, "SUB acknowledged by nsqd")

    def close(self):
        self.reader.close()


class _RecordingWriter(_NegotiationLog, nsq.Writer):
    def __init__(self, *args, **kwargs):
        self.errors = []
        self._init_negotiation_log()
        super().__init__(*args, **kwargs)

    def _on_connection_error(self, conn, error, **kwargs):
        self.errors.append(error)
        return super()._on_connection_error(conn, error, **kwargs)


class Producer:
    """A Writer on one nsqd; `writer_kwargs` go to nsq.Writer (tls_v1, snappy, auth_secret, ...)."""

    def __init__(self, nsqd, **writer_kwargs):
        self.writer = _RecordingWriter([nsqd.tcp_address], **writer_kwargs)

    @property
    def errors(self):
        return self.writer.errors

    @property
    def identify_responses(self):
        return self.writer.identify_responses

    @property
    def auth_responses(self):
        return self.writer.auth_responses

    def connections(self):
        return list(self.writer.conns.values())

    async def ready(self, timeout=5.0):
        await wait_for(
            lambda: any(c.connected() for c in self.writer.conns.values()),
            timeout,
            "Writer connected to nsqd",
        )

    def _call(self, method, *args):
        fut = Future()

        def done(conn, data):
            if not fut.done():
                fut.set_result(data)

        getattr(self.writer, method)(*args, callback=done)
        return fut

    async def _checked(self, what, fut, timeout=5.0):
        data = await tornado.gen.with_timeout(datetime.timedelta(seconds=timeout), fut)
        if isinstance(data, nsq.Error):
            raise AssertionError("%s failed: %r" % (what, data))
        assert data == b"OK", "%s: expected response OK, got %r" % (what, data)

    async def pub(self, topic, body):
        await self._checked("PUB", self._call("pub", topic, body))

    async def mpub(self, topic, bodies):
        await self._checked("MPUB", self._call("mpub", topic, list(bodies)))

    async def dpub(self, topic, delay_ms, body):
        await self._checked("DPUB", self._call("dpub", topic, delay_ms, body))

    def close(self):
        for conn in list(self.writer.conns.values()):
            conn.close()


def tls_options(certs, cert=None):
    """pynsq `tls_options` (tornado ssl_options keys) trusting the test CA.

    pynsq adds cert_reqs=CERT_REQUIRED and ssl_version=PROTOCOL_TLSv1_2 itself;
    `cert` = "client" or "rogue" also presents that client certificate.
    """
    opts = {"ca_certs": certs.ca_pem}
    if cert is not None:
        opts["certfile"] = getattr(certs, cert + "_pem")
        opts["keyfile"] = getattr(certs, cert + "_key")
    return opts


def http_get(address, path, timeout=5.0):
    """GET http://address/path -> (status, body bytes); HTTP errors are returned, not raised."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen("http://%s%s" % (address, path), timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_post(address, path, body=b"", timeout=5.0):
    import urllib.request

    req = urllib.request.Request("http://%s%s" % (address, path), data=body, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


def client_stats(nsqd, topic):
    """(channel clients, producers) from nsqd's /stats JSON for `topic`."""
    import json

    status, body = http_get(nsqd.http_address, "/stats?format=json&topic=%s" % topic)
    assert status == 200, (status, body)
    stats = json.loads(body)
    consumers = []
    for t in stats.get("topics") or []:
        for ch in t.get("channels") or []:
            consumers.extend(ch.get("clients") or [])
    return consumers, stats.get("producers") or []


def error_frames(errors):
    """The raw bodies of the nsqd error frames among pynsq errors (b"E_... text")."""
    out = []
    for e in errors:
        if type(e) is nsq.Error and e.args and isinstance(e.args[0], bytes):
            out.append(e.args[0])
    return out


def sample_bodies():
    """Bodies that exercise framing under compression/TLS: tiny, every byte value,
    larger than one 64 KiB snappy chunk / TLS record (compressible), and incompressible."""
    import os

    return [
        b"hello",
        bytes(range(256)) * 4,
        b"compressible " * 10000,  # 130 KB
        os.urandom(300 * 1024),
    ]


def _digests(bodies):
    import hashlib

    return sorted((len(b), hashlib.sha256(b).hexdigest()[:16]) for b in bodies)


async def roundtrip(nsqd, topic, client_kwargs, layers, reader_kwargs=None, writer_kwargs=None, timeout=10.0):
    """Publish (PUB + MPUB) and consume over connections made with `client_kwargs`.

    Checks that both connections really run on `layers` (subset of tls/snappy/
    deflate), that every body arrives intact exactly once, and that neither
    client saw an error. Returns (consumer, producer), both still open; the
    caller closes them.
    """
    consumer = Consumer(nsqd, topic, "ch", max_in_flight=10, **dict(client_kwargs, **(reader_kwargs or {})))
    producer = Producer(nsqd, **dict(client_kwargs, **(writer_kwargs or {})))
    try:
        await consumer.ready()
        await producer.ready()
        for who, client in (("Reader", consumer), ("Writer", producer)):
            conns = client.connections()
            assert len(conns) == 1, "%s connections: %r" % (who, conns)
            got = stream_layers(conns[0])
            assert got == set(layers), "%s runs on %s, expected %s (IDENTIFY response %r)" % (
                who,
                sorted(got),
                sorted(layers),
                client.identify_responses,
            )

        bodies = sample_bodies()
        await producer.pub(topic, bodies[0])
        await producer.mpub(topic, bodies[1:])
        await wait_for(lambda: len(consumer.deliveries) >= len(bodies), timeout, "all %d messages" % len(bodies))
        await expect_nothing(lambda: len(consumer.deliveries) > len(bodies), 0.3, "duplicate delivery")
        assert _digests(consumer.bodies()) == _digests(bodies), "bodies differ after the round trip"
        assert consumer.errors == [] and producer.errors == [], (consumer.errors, producer.errors)
        return consumer, producer
    except BaseException:
        consumer.close()
        producer.close()
        raise
