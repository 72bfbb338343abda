//! `POST /pub`: check order, every error, success, delivery to TCP consumers and deferral.

mod common;

use common::httpx::{self, assert_err, assert_ok_text, int};
use common::{eventually, Nsqd};
use std::time::{Duration, Instant};

fn consumer(n: &Nsqd, topic: &str, channel: &str, rdy: u32) -> common::Conn {
    let mut c = n.connect();
    c.subscribe(topic, channel);
    c.cmd(&format!("RDY {rdy}"));
    c
}

#[test]
fn content_length_over_max_is_rejected_before_reading() {
    let n = Nsqd::start(&["--max-msg-size=100"]);
    // Content-Length announces 101 bytes but none are sent: the answer must come without the body,
    // and before any query check (no topic given).
    let r = httpx::request(n.http, "POST", "/pub", &[("Content-Length", "101")], b"");
    assert_err(&r, 413, "MSG_TOO_BIG");
    let r = httpx::request(
        n.http,
        "POST",
        "/pub?topic=t",
        &[("Content-Length", "5000")],
        b"",
    );
    assert_err(&r, 413, "MSG_TOO_BIG");
    assert!(
        httpx::topic_names(&n).is_empty(),
        "topic must not be created"
    );
}

#[test]
fn body_over_max_without_content_length_is_413() {
    let n = Nsqd::start(&["--max-msg-size=100"]);
    let r = httpx::chunked(n.http, "POST", "/pub", &[b'x'; 101]);
    assert_err(&r, 413, "MSG_TOO_BIG");
    let r = httpx::chunked(n.http, "POST", "/pub?topic=t", &[b'x'; 101]);
    assert_err(&r, 413, "MSG_TOO_BIG");
    assert!(httpx::topic_names(&n).is_empty());
    // exactly max is fine, chunked or not
    assert_ok_text(
        &httpx::chunked(n.http, "POST", "/pub?topic=t", &[b'y'; 100]),
        "OK",
    );
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", &[b'z'; 100]), "OK");
    let t = httpx::topic(&n, "t").expect("topic");
    assert_eq!(int(&t, "message_count"), 2);
    assert_eq!(int(&t, "message_bytes"), 200);
}

#[test]
fn empty_body_is_msg_empty_before_query_checks() {
    let n = Nsqd::start(&[]);
    assert_err(&httpx::post(&n, "/pub?topic=t", b""), 400, "MSG_EMPTY");
    assert_err(&httpx::post(&n, "/pub", b""), 400, "MSG_EMPTY");
    assert_err(&httpx::post(&n, "/pub?topic=bad!", b""), 400, "MSG_EMPTY");
    assert_err(&httpx::post(&n, "/pub?topic=%zz", b""), 400, "MSG_EMPTY");
    assert_err(
        &httpx::post(&n, "/pub?topic=t&defer=x", b""),
        400,
        "MSG_EMPTY",
    );
    assert_err(
        &httpx::chunked(n.http, "POST", "/pub?topic=t", b""),
        400,
        "MSG_EMPTY",
    );
    assert!(
        httpx::topic_names(&n).is_empty(),
        "no topic for a rejected body"
    );
}

#[test]
fn query_errors_in_order() {
    let n = Nsqd::start(&[]);
    assert_err(
        &httpx::post(&n, "/pub?topic=t&x=%zz", b"m"),
        400,
        "INVALID_REQUEST",
    );
    assert_err(&httpx::post(&n, "/pub", b"m"), 400, "MISSING_ARG_TOPIC");
    assert_err(
        &httpx::post(&n, "/pub?channel=c", b"m"),
        400,
        "MISSING_ARG_TOPIC",
    );
    assert_err(&httpx::post(&n, "/pub?topic=", b"m"), 400, "INVALID_TOPIC");
    assert_err(
        &httpx::post(&n, "/pub?topic=bad!", b"m"),
        400,
        "INVALID_TOPIC",
    );
    assert_err(
        &httpx::post(&n, "/pub?topic=a%20b", b"m"),
        400,
        "INVALID_TOPIC",
    );
    assert_err(
        &httpx::post(&n, "/pub?topic=t%23ephemeralx", b"m"),
        400,
        "INVALID_TOPIC",
    );
    let long = "a".repeat(65);
    assert_err(
        &httpx::post(&n, &format!("/pub?topic={long}"), b"m"),
        400,
        "INVALID_TOPIC",
    );
    // topic is validated before defer
    assert_err(
        &httpx::post(&n, "/pub?topic=bad!&defer=zz", b"m"),
        400,
        "INVALID_TOPIC",
    );
    assert!(httpx::topic_names(&n).is_empty());
    // 64 bytes is the limit
    let max = "b".repeat(64);
    assert_ok_text(&httpx::post(&n, &format!("/pub?topic={max}"), b"m"), "OK");
    assert_ok_text(&httpx::post(&n, "/pub?topic=a.b_c-D9", b"m"), "OK");
    assert_ok_text(&httpx::post(&n, "/pub?topic=e%23ephemeral", b"m"), "OK");
    let mut names = httpx::topic_names(&n);
    names.sort();
    let mut want = vec![max, "a.b_c-D9".to_string(), "e#ephemeral".to_string()];
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn invalid_defer_values() {
    let n = Nsqd::start(&["--max-req-timeout=10s"]);
    for d in [
        "abc",
        "1.5",
        "",
        "-1",
        "10001",
        "1e3",
        "0x10",
        "99999999999999999999",
        "+5",
        "%2D1",
    ] {
        let r = httpx::post(&n, &format!("/pub?topic=t&defer={d}"), b"m");
        assert_err(&r, 400, "INVALID_DEFER");
    }
    // the topic was created before the defer check
    assert_eq!(httpx::topic_names(&n), vec!["t".to_string()]);
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(
        int(&t, "message_count"),
        0,
        "nothing published on INVALID_DEFER"
    );
    // boundaries and an explicit sign are accepted ("%2B" is "+"; a raw "+" decodes to a space)
    for d in ["0", "10000", "%2B5", "1"] {
        assert_ok_text(
            &httpx::post(&n, &format!("/pub?topic=t&defer={d}"), b"m"),
            "OK",
        );
    }
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(int(&t, "message_count"), 4);
}

#[test]
fn defer_uses_first_value() {
    let n = Nsqd::start(&["--max-req-timeout=10s"]);
    assert_err(
        &httpx::post(&n, "/pub?topic=t&defer=x&defer=5", b"m"),
        400,
        "INVALID_DEFER",
    );
    assert_ok_text(&httpx::post(&n, "/pub?topic=t&defer=5&defer=x", b"m"), "OK");
}

#[test]
fn success_returns_ok_and_creates_topic() {
    let n = Nsqd::start(&[]);
    let r = httpx::post(&n, "/pub?topic=new_topic", b"hello");
    assert_ok_text(&r, "OK");
    assert_ne!(r.header("Content-Type"), Some(httpx::JSON_CT));
    let t = httpx::topic(&n, "new_topic").expect("created");
    assert_eq!(int(&t, "message_count"), 1);
    assert_eq!(int(&t, "message_bytes"), 5);
    assert_eq!(
        int(&t, "depth"),
        1,
        "no channel: message waits in the topic"
    );
}

#[test]
fn content_type_of_request_is_ignored() {
    let n = Nsqd::start(&[]);
    let r = httpx::request(
        n.http,
        "POST",
        "/pub?topic=t",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"topic=other&a=b",
    );
    assert_ok_text(&r, "OK");
    let mut c = consumer(&n, "t", "c", 1);
    let m = c.read_message();
    assert_eq!(m.body, b"topic=other&a=b");
    assert_eq!(httpx::topic_names(&n), vec!["t".to_string()]);
}

#[test]
fn published_message_reaches_tcp_consumer_verbatim() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 10);
    let body: Vec<u8> = (0u8..=255).chain(b"\n\r\n\0end".iter().copied()).collect();
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", &body), "OK");
    let m = c.read_message();
    assert_eq!(m.body, body);
    assert_eq!(m.attempts, 1);
    assert!(
        m.id.iter().all(|b| b.is_ascii_hexdigit()),
        "id {:?}",
        m.id_str()
    );
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    assert!(
        (now_ns - m.timestamp).abs() < 60_000_000_000,
        "timestamp {} vs {now_ns}",
        m.timestamp
    );
}

#[test]
fn chunked_body_is_published() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 1);
    assert_ok_text(
        &httpx::chunked(n.http, "POST", "/pub?topic=t", b"chunky"),
        "OK",
    );
    assert_eq!(c.read_message().body, b"chunky");
}

#[test]
fn deferred_publish_is_held_then_delivered() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 10);
    let start = Instant::now();
    assert_ok_text(&httpx::post(&n, "/pub?topic=t&defer=700", b"later"), "OK");
    // while waiting it is counted as deferred, not as depth
    let ch = eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (int(&ch, "deferred_count") == 1).then_some(ch)
    });
    assert_eq!(int(&ch, "depth"), 0);
    assert_eq!(int(&ch, "message_count"), 1);
    assert!(
        start.elapsed() < Duration::from_millis(700),
        "stats too slow to observe deferral"
    );
    let m = c.read_message();
    let waited = start.elapsed();
    assert_eq!(m.body, b"later");
    assert!(
        waited >= Duration::from_millis(690),
        "delivered after {waited:?}, expected >= 700ms"
    );
    // a channel younger than the scanner's 5 s list refresh may wait for that refresh
    assert!(
        waited < Duration::from_secs(8),
        "delivered after {waited:?}"
    );
}

#[test]
fn defer_zero_is_immediate() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 1);
    let start = Instant::now();
    assert_ok_text(&httpx::post(&n, "/pub?topic=t&defer=0", b"now"), "OK");
    assert_eq!(c.read_message().body, b"now");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn pub_on_tcp_and_http_share_topic_counts() {
    let n = Nsqd::start(&[]);
    let mut p = n.connect();
    p.publish("t", b"tcp");
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"http"), "OK");
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(int(&t, "message_count"), 2);
    assert_eq!(int(&t, "message_bytes"), 7);
    // HTTP publishes do not make a TCP producer entry of their own
    let s = httpx::stats(&n, "");
    assert_eq!(s["producers"].as_array().map(|a| a.len()), Some(1), "{s}");
}
