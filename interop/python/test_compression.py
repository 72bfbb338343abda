"""pynsq 0.9.1 with snappy and deflate stream compression (tcp-protocol.md §6.1).

pynsq's snappy encoder starts a new framing stream (stream identifier chunk
included) for every command it sends, and its deflate encoder sync-flushes
after every command, so these also check that nsqd accepts both the way real
clients produce them.
"""

import pytest

from pynsq_harness import async_test, client_stats, roundtrip


def _check_identify(client, **expected):
    assert client.identify_responses, "no IDENTIFY response recorded"
    resp = client.identify_responses[0]
    for key, want in expected.items():
        assert resp.get(key) == want, "IDENTIFY response %s=%r, expected %r (%r)" % (key, resp.get(key), want, resp)


def test_python_snappy_is_installed():
    # pynsq imports snappy lazily and asserts only at upgrade time; make a
    # missing python-snappy an explicit failure rather than a confusing one.
    import snappy  # noqa: F401
    from nsq.snappy_socket import SnappySocket  # noqa: F401


@async_test(timeout=30)
async def test_snappy_pub_sub(nsqd):
    topic = "snappy"
    consumer, producer = await roundtrip(nsqd, topic, dict(snappy=True), {"snappy"})
    try:
        for c in (consumer, producer):
            _check_identify(c, snappy=True, deflate=False, tls_v1=False)
        consumers, producers = client_stats(nsqd, topic)
        assert consumers and consumers[0].get("snappy") is True, consumers
        assert producers and producers[0].get("snappy") is True, producers
    finally:
        consumer.close()
        producer.close()


@async_test(timeout=30)
async def test_deflate_pub_sub(nsqd):
    topic = "deflate"
    consumer, producer = await roundtrip(nsqd, topic, dict(deflate=True), {"deflate"})
    try:
        for c in (consumer, producer):
            # pynsq's default level is 6, the server's default maximum too.
            _check_identify(c, deflate=True, deflate_level=6, max_deflate_level=6, snappy=False)
        consumers, producers = client_stats(nsqd, topic)
        assert consumers and consumers[0].get("deflate") is True, consumers
        assert producers and producers[0].get("deflate") is True, producers
    finally:
        consumer.close()
        producer.close()


@pytest.mark.parametrize("level", [1, 9])
@async_test(timeout=30)
async def test_deflate_level_negotiation(start_nsqd, level):
    # The level a client asks for is capped at --max-deflate-level.
    nsqd = start_nsqd("--max-deflate-level=5")
    consumer, producer = await roundtrip(
        nsqd, "deflate_level_%d" % level, dict(deflate=True, deflate_level=level), {"deflate"}
    )
    try:
        for c in (consumer, producer):
            _check_identify(c, deflate=True, deflate_level=min(level, 5), max_deflate_level=5)
    finally:
        consumer.close()
        producer.close()


@pytest.mark.parametrize(
    "flag,feature",
    [("--snappy=false", "snappy"), ("--deflate=false", "deflate")],
)
@async_test(timeout=30)
async def test_disabled_compression_is_refused_and_client_falls_back(start_nsqd, flag, feature):
    # With the feature switched off nsqd answers false and the client stays uncompressed.
    nsqd = start_nsqd(flag)
    consumer, producer = await roundtrip(nsqd, "no_" + feature, {feature: True}, set())
    try:
        for c in (consumer, producer):
            _check_identify(c, **{feature: False})
    finally:
        consumer.close()
        producer.close()
