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


class _RecordingReader(nsq.Reader):
    """nsq.Reader that remembers error frames and the SUB acknowledgement."""

    def __init__(self, *args, **kwargs):
        self.errors = []
        self.subscribed = False
        self.heartbeats = 0
        self.closed_conns = 0
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

    def bodies(self):
        return [d.body for d in self.deliveries]

    async def ready(self, timeout=5.0):
        await wait_for(lambda: self.reader.subscribed, timeout, "SUB acknowledged by nsqd")

    def close(self):
        self.reader.close()


class Producer:
    def __init__(self, nsqd):
        self.errors = []
        self.writer = nsq.Writer([nsqd.tcp_address])
        orig = self.writer._on_connection_error

        def on_error(conn, error, **kwargs):
            self.errors.append(error)
            return orig(conn, error, **kwargs)

        self.writer._on_connection_error = on_error

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
