"""pynsq 0.9.1 with AUTH against an HTTP auth server (tcp-protocol.md §6.2, §7).

Each test runs its own auth server (auth_server.py) on 127.0.0.1:0 and points
nsqd at it with --auth-http-address; pynsq sends `auth_secret` after IDENTIFY
when nsqd reports auth_required.
"""

import datetime

import pytest
import tornado.gen

import socket

from auth_server import GOOD_SECRET, NO_PERMS_SECRET, SHORT_TTL_SECRET, AuthServer
from pynsq_harness import (
    Consumer,
    Producer,
    async_test,
    client_stats,
    error_frames,
    expect_nothing,
    http_post,
    roundtrip,
    tls_options,
    wait_for,
)


@pytest.fixture
def auth_server():
    server = AuthServer().start()
    yield server
    server.stop()


def _auth_fields(req):
    """{key: value} of the four fields nsqd sends, checking each is a one-element list."""
    fields = req.fields()
    assert isinstance(fields, dict), req
    out = {}
    for key, values in fields.items():
        assert isinstance(values, list) and len(values) == 1, "%s: %r in %r" % (key, values, req)
        out[key] = values[0]
    return out


def _check_auth_response(client):
    assert client.identify_responses and client.identify_responses[0].get("auth_required") is True, (
        client.identify_responses
    )
    assert client.auth_responses, "no AUTH response"
    resp = client.auth_responses[0]
    assert resp == {"identity": "u", "identity_url": "", "permission_count": 1}, resp


@async_test(timeout=30)
async def test_auth_get_pub_sub(start_nsqd, auth_server):
    nsqd = start_nsqd("--auth-http-address=%s" % auth_server.address)
    topic = "auth_get"
    consumer, producer = await roundtrip(nsqd, topic, dict(auth_secret=GOOD_SECRET), set())
    try:
        _check_auth_response(consumer)
        _check_auth_response(producer)

        reqs = [r for r in auth_server.recorded() if r.secret() == GOOD_SECRET]
        assert len(reqs) == 2, auth_server.recorded()  # one per connection, then cached
        for req in reqs:
            assert req.method == "GET" and req.path == "/auth", req
            assert _auth_fields(req) == {
                "common_name": "",
                "remote_ip": "127.0.0.1",
                "secret": GOOD_SECRET,
                "tls": "false",
            }, req
            assert req.headers.get("accept") == "application/vnd.nsq; version=1.0", req.headers

        consumers, producers = client_stats(nsqd, topic)
        for st in consumers + producers:
            assert st.get("authed") is True and st.get("auth_identity") == "u", st
    finally:
        consumer.close()
        producer.close()


@async_test(timeout=30)
async def test_auth_post_pub_sub(start_nsqd, auth_server):
    nsqd = start_nsqd("--auth-http-address=%s" % auth_server.address, "--auth-http-request-method=post")
    consumer, producer = await roundtrip(nsqd, "auth_post", dict(auth_secret=GOOD_SECRET), set())
    try:
        _check_auth_response(consumer)
        reqs = auth_server.recorded()
        assert len(reqs) == 2, reqs
        for req in reqs:
            assert req.method == "POST" and req.path == "/auth", req
            assert req.query == {}, req
            assert req.headers.get("content-type", "").startswith("application/json"), req.headers
            assert req.body == {
                "common_name": [""],
                "remote_ip": ["127.0.0.1"],
                "secret": [GOOD_SECRET],
                "tls": ["false"],
            }, req
    finally:
        consumer.close()
        producer.close()


@async_test(timeout=30)
async def test_auth_over_tls_with_client_cert(start_nsqd, auth_server, certs):
    nsqd = start_nsqd(
        *certs.server_args(),
        "--tls-root-ca-file=%s" % certs.ca_pem,
        "--tls-client-auth-policy=require-verify",
        "--auth-http-address=%s" % auth_server.address,
    )
    kwargs = dict(tls_v1=True, tls_options=tls_options(certs, "client"), auth_secret=GOOD_SECRET)
    consumer, producer = await roundtrip(nsqd, "auth_tls", kwargs, {"tls"})
    try:
        _check_auth_response(consumer)
        reqs = auth_server.recorded()
        assert len(reqs) == 2, reqs
        for req in reqs:
            # common_name is the Subject CN of the client certificate.
            assert _auth_fields(req) == {
                "common_name": "interop-client",
                "remote_ip": "127.0.0.1",
                "secret": GOOD_SECRET,
                "tls": "true",
            }, req
    finally:
        consumer.close()
        producer.close()


@pytest.mark.parametrize(
    "secret,code",
    [
        ("wrong-secret", b"E_AUTH_FAILED"),  # auth server answers 403
        (NO_PERMS_SECRET, b"E_UNAUTHORIZED"),  # 200 with no authorizations
    ],
)
@async_test(timeout=30)
async def test_auth_bad_secret_cannot_consume(start_nsqd, auth_server, secret, code):
    nsqd = start_nsqd("--auth-http-address=%s" % auth_server.address)
    topic, channel = "auth_bad", "ch"
    # The HTTP API is not behind AUTH: queue a message on the channel first.
    assert http_post(nsqd.http_address, "/topic/create?topic=%s" % topic)[0] == 200
    assert http_post(nsqd.http_address, "/channel/create?topic=%s&channel=%s" % (topic, channel))[0] == 200
    assert http_post(nsqd.http_address, "/pub?topic=%s" % topic, b"secret payload")[0] == 200

    bad = Consumer(nsqd, topic, channel, auth_secret=secret)
    try:
        await wait_for(lambda: error_frames(bad.errors), 10.0, "nsqd to refuse AUTH")
        frames = error_frames(bad.errors)
        assert frames[0].startswith(code), frames
        assert bad.auth_responses == [], bad.auth_responses
        await expect_nothing(lambda: bad.deliveries or bad.reader.subscribed, 1.0, "a delivery with a bad secret")
    finally:
        bad.close()
    assert any(r.secret() == secret for r in auth_server.recorded()), auth_server.recorded()

    # The message was there all along: the right secret gets it.
    good = Consumer(nsqd, topic, channel, auth_secret=GOOD_SECRET)
    try:
        await wait_for(lambda: good.deliveries, 10.0, "the queued message with the right secret")
        assert good.bodies() == [b"secret payload"]
        assert good.errors == [], good.errors
    finally:
        good.close()


@async_test(timeout=30)
async def test_auth_required_before_sub_and_pub(start_nsqd, auth_server):
    nsqd = start_nsqd("--auth-http-address=%s" % auth_server.address)
    topic = "auth_first"

    consumer = Consumer(nsqd, topic, "ch")  # no auth_secret
    try:
        await wait_for(lambda: error_frames(consumer.errors), 10.0, "SUB refused without AUTH")
        frames = error_frames(consumer.errors)
        assert frames[0] == b"E_AUTH_FIRST AUTH required before SUB", frames
    finally:
        consumer.close()

    producer = Producer(nsqd)
    try:
        await producer.ready()
        result = await tornado.gen.with_timeout(datetime.timedelta(seconds=5), producer._call("pub", topic, b"x"))
        assert error_frames([result]) == [b"E_AUTH_FIRST AUTH required before PUB"], result
    finally:
        producer.close()
    assert auth_server.recorded() == [], "nsqd queried the auth server without a secret"


@async_test(timeout=30)
async def test_auth_server_unreachable_fails_auth(start_nsqd):
    # A loopback port with nothing listening: nsqd's auth request is refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = "127.0.0.1:%d" % s.getsockname()[1]
    nsqd = start_nsqd("--auth-http-address=%s" % dead)
    consumer = Consumer(nsqd, "auth_dead", "ch", auth_secret=GOOD_SECRET)
    try:
        await wait_for(lambda: error_frames(consumer.errors), 10.0, "nsqd to fail AUTH")
        assert error_frames(consumer.errors)[0] == b"E_AUTH_FAILED AUTH failed", consumer.errors
        assert consumer.auth_responses == [] and not consumer.reader.subscribed
    finally:
        consumer.close()


@async_test(timeout=30)
async def test_auth_ttl_expiry_queries_again(start_nsqd, auth_server):
    # The authorization is cached per connection for `ttl` seconds; the first
    # PUB after it expired makes nsqd ask the auth server again.
    nsqd = start_nsqd("--auth-http-address=%s" % auth_server.address)
    topic = "auth_ttl"
    producer = Producer(nsqd, auth_secret=SHORT_TTL_SECRET)
    try:
        await producer.ready()
        await producer.pub(topic, b"one")
        await producer.pub(topic, b"two")
        assert len(auth_server.recorded()) == 1, auth_server.recorded()  # still cached
        await tornado.gen.sleep(1.2)
        await producer.pub(topic, b"three")
        reqs = auth_server.recorded()
        assert len(reqs) == 2, reqs
        assert all(r.secret() == SHORT_TTL_SECRET for r in reqs), reqs
        assert producer.errors == [], producer.errors
    finally:
        producer.close()
