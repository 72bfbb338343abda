"""pynsq 0.9.1 over TLS (IDENTIFY tls_v1 upgrade, tcp-protocol.md §6.1), alone and
under snappy/deflate, with and without client certificates; plus the HTTPS
listener checked with `openssl s_client`.

Certificates come from interop/gen-certs.sh (a CA, a server cert for
127.0.0.1/localhost, a CA-signed client cert and a self-signed "rogue" one),
generated once per pytest run into its temp dir.
"""

import datetime
import shutil
import subprocess

import pytest
import tornado.gen

from pynsq_harness import (
    Consumer,
    Producer,
    async_test,
    client_stats,
    error_frames,
    expect_nothing,
    http_get,
    roundtrip,
    stream_layers,
    tls_options,
    wait_for,
)


def _tls_client(certs, cert=None, **extra):
    return dict(tls_v1=True, tls_options=tls_options(certs, cert), **extra)


def _check_identify(client, **expected):
    assert client.identify_responses, "no IDENTIFY response recorded"
    resp = client.identify_responses[0]
    for key, want in expected.items():
        assert resp.get(key) == want, "IDENTIFY response %s=%r, expected %r (%r)" % (key, resp.get(key), want, resp)


def _tls_upgrade_failed(errors):
    # pynsq reports a failed handshake as SendError("failed to upgrade to TLS", <ssl error>).
    return any("failed to upgrade to TLS" in str(e) for e in errors)


def _close(*clients):
    for c in clients:
        c.close()


@async_test(timeout=30)
async def test_tls_pub_sub(start_nsqd, certs):
    nsqd = start_nsqd(*certs.server_args())
    topic = "tls_plain"
    consumer, producer = await roundtrip(nsqd, topic, _tls_client(certs), {"tls"})
    try:
        for c in (consumer, producer):
            _check_identify(c, tls_v1=True, snappy=False, deflate=False)
        # nsqd's own view of the two connections (http-api-nsqd.md ClientStats).
        consumers, producers = client_stats(nsqd, topic)
        assert len(consumers) == 1, consumers
        for who, st in (("consumer", consumers[0]), ("producer", producers[0] if producers else None)):
            assert st is not None, "no producer in /stats"
            assert st.get("tls") is True, "%s stats: %r" % (who, st)
            # pynsq pins PROTOCOL_TLSv1_2.
            assert st.get("tls_version") == "TLS1.2", "%s stats: %r" % (who, st)
            assert st.get("snappy") is False and st.get("deflate") is False, "%s stats: %r" % (who, st)
    finally:
        _close(consumer, producer)


@async_test(timeout=30)
async def test_tls_with_ecdsa_key(start_nsqd, ec_certs):
    # Server key in SEC1 "EC PRIVATE KEY" PEM, as `openssl ecparam -genkey` writes it.
    nsqd = start_nsqd(*ec_certs.server_args())
    consumer, producer = await roundtrip(nsqd, "tls_ec", _tls_client(ec_certs), {"tls"})
    _close(consumer, producer)


@async_test(timeout=30)
async def test_tls_snappy_pub_sub(start_nsqd, certs):
    nsqd = start_nsqd(*certs.server_args())
    consumer, producer = await roundtrip(nsqd, "tls_snappy", _tls_client(certs, snappy=True), {"tls", "snappy"})
    try:
        for c in (consumer, producer):
            _check_identify(c, tls_v1=True, snappy=True, deflate=False)
        consumers, _ = client_stats(nsqd, "tls_snappy")
        assert consumers and consumers[0].get("tls") is True and consumers[0].get("snappy") is True, consumers
    finally:
        _close(consumer, producer)


@async_test(timeout=30)
async def test_tls_deflate_pub_sub(start_nsqd, certs):
    nsqd = start_nsqd(*certs.server_args())
    consumer, producer = await roundtrip(
        nsqd, "tls_deflate", _tls_client(certs, deflate=True, deflate_level=3), {"tls", "deflate"}
    )
    try:
        for c in (consumer, producer):
            _check_identify(c, tls_v1=True, snappy=False, deflate=True, deflate_level=3)
        consumers, _ = client_stats(nsqd, "tls_deflate")
        assert consumers and consumers[0].get("tls") is True and consumers[0].get("deflate") is True, consumers
    finally:
        _close(consumer, producer)


@async_test(timeout=30)
async def test_tls_client_cert_require_verify(start_nsqd, certs):
    nsqd = start_nsqd(
        *certs.server_args(),
        "--tls-root-ca-file=%s" % certs.ca_pem,
        "--tls-client-auth-policy=require-verify",
    )
    consumer, producer = await roundtrip(nsqd, "tls_mutual", _tls_client(certs, "client"), {"tls"})
    _close(consumer, producer)


@async_test(timeout=30)
async def test_tls_require_verify_rejects_missing_or_untrusted_client_cert(start_nsqd, certs):
    nsqd = start_nsqd(
        *certs.server_args(),
        "--tls-root-ca-file=%s" % certs.ca_pem,
        "--tls-client-auth-policy=require-verify",
    )
    # No certificate at all, then a self-signed one the CA never issued.
    for cert in (None, "rogue"):
        consumer = Consumer(nsqd, "tls_reject", "ch", **_tls_client(certs, cert))
        try:
            await wait_for(lambda: consumer.errors, 10.0, "the TLS handshake to fail (client cert %s)" % cert)
            assert _tls_upgrade_failed(consumer.errors), consumer.errors
            await expect_nothing(lambda: consumer.reader.subscribed, 0.5, "SUB accepted without a valid client cert")
            assert consumer.deliveries == []
        finally:
            consumer.close()
    # The same server still serves a properly authenticated client.
    consumer, producer = await roundtrip(nsqd, "tls_reject_ok", _tls_client(certs, "client"), {"tls"})
    _close(consumer, producer)


@async_test(timeout=30)
async def test_tls_client_auth_require_accepts_any_cert(start_nsqd, certs):
    # `require` asks for a certificate but does not verify it (Go's RequireAnyClientCert).
    nsqd = start_nsqd(*certs.server_args(), "--tls-client-auth-policy=require")
    consumer, producer = await roundtrip(nsqd, "tls_any_cert", _tls_client(certs, "rogue"), {"tls"})
    _close(consumer, producer)


@pytest.mark.parametrize("flag", ["--tls-required", "--tls-required=tcp-https"])
@async_test(timeout=30)
async def test_tls_required_rejects_plaintext(start_nsqd, certs, flag):
    nsqd = start_nsqd(*certs.server_args(), flag)
    topic = "tls_required"

    # A client that does not upgrade gets through IDENTIFY (exempt from the
    # TLS gate) but its first PUB is refused, fatally.
    plain = Producer(nsqd)
    try:
        await plain.ready()
        assert stream_layers(plain.connections()[0]) == set()
        result = await tornado.gen.with_timeout(
            datetime.timedelta(seconds=5), plain._call("pub", topic, b"must not be accepted")
        )
        frames = error_frames([result])
        assert frames and frames[0].startswith(b"E_INVALID"), result
        assert b"TLS required" in frames[0], frames[0]
    finally:
        plain.close()

    status, body = http_get(nsqd.http_address, "/ping")
    if flag == "--tls-required":
        # Plain HTTP answers 403 TLS_REQUIRED with the HTTPS port (http-api-nsqd.md §1.4).
        assert status == 403, (status, body)
        assert b"TLS_REQUIRED" in body and (b'"https_port": %d' % nsqd.https_port) in body, body
    else:
        # tcp-https: only TCP must upgrade, plain HTTP is still served.
        assert (status, body) == (200, b"OK"), (status, body)

    consumer, producer = await roundtrip(nsqd, topic, _tls_client(certs), {"tls"})
    _close(consumer, producer)


@async_test(timeout=30)
async def test_tls_min_version_refuses_older_client(start_nsqd, certs):
    # pynsq pins TLS 1.2, so --tls-min-version=tls1.3 must refuse its handshake.
    nsqd = start_nsqd(*certs.server_args(), "--tls-min-version=tls1.3")
    consumer = Consumer(nsqd, "tls_min_version", "ch", **_tls_client(certs))
    try:
        await wait_for(lambda: consumer.errors, 10.0, "the TLS 1.2 handshake to be refused")
        assert _tls_upgrade_failed(consumer.errors), consumer.errors
        await expect_nothing(lambda: consumer.reader.subscribed, 0.5, "SUB over TLS 1.2 with tls1.3 minimum")
    finally:
        consumer.close()
    # A TLS 1.3 client is fine.
    code, out, err = _s_client(nsqd.https_port, certs, extra=["-tls1_3"])
    _assert_ping_ok(code, out, err)


# --- HTTPS listener, driven by the openssl command line client ----------------


def _openssl():
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("the openssl command is required for the HTTPS checks (apt-get install openssl)")
    return path


def _s_client(port, certs, cert=None, extra=(), request=b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"):
    args = [
        _openssl(),
        "s_client",
        "-connect",
        "127.0.0.1:%d" % port,
        "-CAfile",
        certs.ca_pem,
        "-verify_return_error",
        "-verify_ip",
        "127.0.0.1",
        # -quiet: stdout is only what the server sent (implies -ign_eof: wait for
        # the server to close); the verification trace goes to stderr.
        "-quiet",
    ]
    args += list(extra)
    if cert is not None:
        args += ["-cert", getattr(certs, cert + "_pem"), "-key", getattr(certs, cert + "_key")]
    try:
        res = subprocess.run(args, input=request, capture_output=True, timeout=15)
    except subprocess.TimeoutExpired as e:
        # -ign_eof waits for the server to close; nsqd should after "Connection: close".
        pytest.fail(
            "openssl s_client still connected after 15 s; stdout:\n%s\nstderr:\n%s"
            % ((e.stdout or b"").decode("utf-8", "replace"), (e.stderr or b"").decode("utf-8", "replace"))
        )
    return res.returncode, res.stdout.decode("utf-8", "replace"), res.stderr.decode("utf-8", "replace")


def _http_response(out):
    """The HTTP response s_client printed, "" if none."""
    return out if out.startswith("HTTP/1.") else ""


def _assert_ping_ok(code, out, err):
    assert "depth=0 CN = localhost" in err and "verify error" not in err, (code, out, err)
    resp = _http_response(out)
    assert resp.startswith("HTTP/1.1 200"), (code, out, err)
    head, sep, body = resp.partition("\r\n\r\n")
    assert sep and body == "OK", resp
    assert code == 0, (code, out, err)


def test_https_ping_with_openssl_s_client(start_nsqd, certs):
    nsqd = start_nsqd(*certs.server_args())
    _assert_ping_ok(*_s_client(nsqd.https_port, certs))


def test_https_client_cert_require_verify_with_openssl_s_client(start_nsqd, certs):
    nsqd = start_nsqd(
        *certs.server_args(),
        "--tls-root-ca-file=%s" % certs.ca_pem,
        "--tls-client-auth-policy=require-verify",
    )
    _assert_ping_ok(*_s_client(nsqd.https_port, certs, cert="client"))

    # Without a client certificate, or with one the CA did not issue, the
    # server ends the handshake with an alert: no HTTP response.
    for cert in (None, "rogue"):
        code, out, err = _s_client(nsqd.https_port, certs, cert=cert)
        assert _http_response(out) == "", (cert, code, out, err)
        assert code != 0 and "alert" in err, (cert, code, out, err)
