//! `POST /mpub`: text and binary modes, size limits, validation errors, topic creation.

mod common;

use common::httpx::{self, assert_err, assert_ok_text, int};
use common::{Conn, Nsqd};

fn consumer(n: &Nsqd, topic: &str, channel: &str, rdy: u32) -> Conn {
    let mut c = n.connect();
    c.subscribe(topic, channel);
    c.cmd(&format!("RDY {rdy}"));
    c
}

fn read_bodies(c: &mut Conn, count: usize) -> Vec<Vec<u8>> {
    (0..count).map(|_| c.read_message().body).collect()
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

fn message_count(n: &Nsqd, topic: &str) -> i64 {
    int(
        &httpx::topic(n, topic).expect("topic exists"),
        "message_count",
    )
}

#[test]
fn text_mode_splits_on_newline_keeps_cr_skips_empty_lines() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 10);
    let r = httpx::post(&n, "/mpub?topic=t", b"one\ntwo\r\n\n\nthree\r\n\r\nfour");
    assert_ok_text(&r, "OK");
    let got = read_bodies(&mut c, 5);
    let want: Vec<Vec<u8>> = vec![
        b"one".to_vec(),
        b"two\r".to_vec(),
        b"three\r".to_vec(),
        b"\r".to_vec(),
        b"four".to_vec(),
    ];
    assert_eq!(sorted(got), sorted(want));
    assert_eq!(message_count(&n, "t"), 5);
    c.expect_silence(std::time::Duration::from_millis(150));
}

#[test]
fn text_mode_trailing_newline_and_blank_only_bodies() {
    let n = Nsqd::start(&[]);
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t", b"a\nb\n"), "OK");
    assert_eq!(message_count(&n, "t"), 2);
    // zero resulting messages is fine
    assert_ok_text(&httpx::post(&n, "/mpub?topic=z", b""), "OK");
    assert_ok_text(&httpx::post(&n, "/mpub?topic=z", b"\n\n\n"), "OK");
    assert_eq!(message_count(&n, "z"), 0);
    assert_ok_text(
        &httpx::post(&n, "/mpub?topic=z&binary=false", b"single line no newline"),
        "OK",
    );
    assert_eq!(message_count(&n, "z"), 1);
}

#[test]
fn text_mode_line_longer_than_max_msg_size() {
    let n = Nsqd::start(&["--max-msg-size=100"]);
    let mut body = b"ok\n".to_vec();
    body.extend_from_slice(&[b'x'; 101]);
    body.extend_from_slice(b"\nafter\n");
    assert_err(&httpx::post(&n, "/mpub?topic=t", &body), 413, "MSG_TOO_BIG");
    // all-or-nothing: the valid first line was not enqueued, but the topic exists
    assert_eq!(message_count(&n, "t"), 0);
    // exactly max-msg-size (excluding the newline) is fine; the \r counts towards the size
    let mut ok = vec![b'y'; 100];
    ok.push(b'\n');
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t", &ok), "OK");
    let mut cr = vec![b'y'; 100];
    cr.extend_from_slice(b"\r\n");
    assert_err(&httpx::post(&n, "/mpub?topic=t", &cr), 413, "MSG_TOO_BIG");
    assert_eq!(message_count(&n, "t"), 1);
}

#[test]
fn content_length_over_max_body_size_is_body_too_big_first() {
    let n = Nsqd::start(&["--max-body-size=200", "--max-msg-size=100"]);
    // no body sent: must answer from the header alone, before the topic checks
    let r = httpx::request(n.http, "POST", "/mpub", &[("Content-Length", "201")], b"");
    assert_err(&r, 413, "BODY_TOO_BIG");
    let r = httpx::request(
        n.http,
        "POST",
        "/mpub?topic=t&binary=true",
        &[("Content-Length", "100000")],
        b"",
    );
    assert_err(&r, 413, "BODY_TOO_BIG");
    assert!(httpx::topic_names(&n).is_empty());
}

#[test]
fn text_mode_total_over_max_body_size_without_content_length() {
    let n = Nsqd::start(&["--max-body-size=200", "--max-msg-size=100"]);
    // 3 lines of 67 bytes = 201 bytes, each line below max-msg-size
    let mut body = Vec::new();
    for _ in 0..3 {
        body.extend_from_slice(&[b'a'; 66]);
        body.push(b'\n');
    }
    assert_eq!(body.len(), 201);
    assert_err(
        &httpx::chunked(n.http, "POST", "/mpub?topic=t", &body),
        413,
        "BODY_TOO_BIG",
    );
    assert_eq!(
        message_count(&n, "t"),
        0,
        "topic created, nothing published"
    );
    // exactly 200 bytes is accepted
    body.truncate(200);
    assert_ok_text(
        &httpx::chunked(n.http, "POST", "/mpub?topic=t", &body),
        "OK",
    );
    assert_eq!(message_count(&n, "t"), 3);
}

#[test]
fn query_errors() {
    let n = Nsqd::start(&[]);
    assert_err(
        &httpx::post(&n, "/mpub?topic=t&a=%zz", b"m"),
        400,
        "INVALID_REQUEST",
    );
    assert_err(&httpx::post(&n, "/mpub", b"m"), 400, "MISSING_ARG_TOPIC");
    assert_err(
        &httpx::post(&n, "/mpub?binary=true", b"m"),
        400,
        "MISSING_ARG_TOPIC",
    );
    assert_err(&httpx::post(&n, "/mpub?topic=", b"m"), 400, "INVALID_TOPIC");
    assert_err(
        &httpx::post(&n, "/mpub?topic=no/slash", b"m"),
        400,
        "INVALID_TOPIC",
    );
    assert_err(
        &httpx::post(&n, &format!("/mpub?topic={}", "x".repeat(65)), b"m"),
        400,
        "INVALID_TOPIC",
    );
    assert!(httpx::topic_names(&n).is_empty());
}

#[test]
fn binary_mode_true_and_one() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 10);
    let body = Conn::mpub_body(&[b"first", b"sec\nond", b"\r\n"]);
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t&binary=true", &body), "OK");
    let got = read_bodies(&mut c, 3);
    assert_eq!(
        sorted(got),
        sorted(vec![
            b"first".to_vec(),
            b"sec\nond".to_vec(),
            b"\r\n".to_vec()
        ])
    );
    let body = Conn::mpub_body(&[b"x", b"y"]);
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t&binary=1", &body), "OK");
    assert_eq!(
        sorted(read_bodies(&mut c, 2)),
        vec![b"x".to_vec(), b"y".to_vec()]
    );
    assert_eq!(message_count(&n, "t"), 5);
}

#[test]
fn binary_param_other_values_mean_binary() {
    let n = Nsqd::start(&[]);
    let body = Conn::mpub_body(&[b"a", b"b"]);
    for v in ["yes", "TRUE", "on", "", "2"] {
        let t = format!("t{}", v.len());
        let r = httpx::post(
            &n,
            &format!("/mpub?topic={t}_{}&binary={v}", v.to_lowercase()),
            &body,
        );
        assert_ok_text(&r, "OK");
        assert_eq!(
            message_count(&n, &format!("{t}_{}", v.to_lowercase())),
            2,
            "binary={v:?}"
        );
    }
}

#[test]
fn binary_false_or_zero_means_text() {
    let n = Nsqd::start(&[]);
    // a binary body without any newline is one text message of the whole body
    let body = Conn::mpub_body(&[b"a", b"b"]);
    assert!(!body.contains(&b'\n'));
    assert_ok_text(&httpx::post(&n, "/mpub?topic=f&binary=false", &body), "OK");
    assert_ok_text(&httpx::post(&n, "/mpub?topic=z&binary=0", &body), "OK");
    assert_eq!(message_count(&n, "f"), 1);
    assert_eq!(message_count(&n, "z"), 1);
    let mut c = consumer(&n, "f", "c", 1);
    assert_eq!(c.read_message().body, body);
}

#[test]
fn binary_validation_failures_are_413_bad_body_or_bad_message() {
    let n = Nsqd::start(&["--max-msg-size=100", "--max-body-size=1000"]);
    let be = |v: u32| v.to_be_bytes().to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty body", vec![], "BAD_BODY"),
        ("short count", vec![0, 0], "BAD_BODY"),
        ("zero count", be(0), "BAD_BODY"),
        ("negative count", be(0xFFFF_FFFF), "BAD_BODY"),
        // (1000 - 4) / 5 = 199 messages at most
        (
            "count too big",
            [be(200), be(1), b"a".to_vec()].concat(),
            "BAD_BODY",
        ),
        ("missing size", be(1), "BAD_MESSAGE"),
        ("zero size", [be(1), be(0)].concat(), "BAD_MESSAGE"),
        (
            "negative size",
            [be(1), be(0xFFFF_FFFE)].concat(),
            "BAD_MESSAGE",
        ),
        (
            "message too big",
            [be(1), be(101), vec![b'x'; 101]].concat(),
            "BAD_MESSAGE",
        ),
        (
            "truncated body",
            [be(1), be(10), b"abc".to_vec()].concat(),
            "BAD_MESSAGE",
        ),
        (
            "second message missing",
            [be(2), be(1), b"a".to_vec()].concat(),
            "BAD_MESSAGE",
        ),
    ];
    for (i, (what, body, msg)) in cases.iter().enumerate() {
        let topic = format!("bad{i}");
        let r = httpx::post(&n, &format!("/mpub?topic={topic}&binary=true"), body);
        assert_eq!(r.status, 413, "{what}: {}", r.text());
        assert_err(&r, 413, msg);
        // the topic was created before the body was validated, nothing was published
        assert_eq!(message_count(&n, &topic), 0, "{what}");
    }
    // exactly 199 one-byte messages and a max-size message are accepted
    let bodies: Vec<&[u8]> = vec![b"a"; 199];
    assert_ok_text(
        &httpx::post(
            &n,
            "/mpub?topic=good&binary=true",
            &Conn::mpub_body(&bodies),
        ),
        "OK",
    );
    let big = [b'm'; 100];
    assert_ok_text(
        &httpx::post(
            &n,
            "/mpub?topic=good&binary=true",
            &Conn::mpub_body(&[&big]),
        ),
        "OK",
    );
    assert_eq!(message_count(&n, "good"), 200);
}

#[test]
fn binary_mode_all_or_nothing() {
    let n = Nsqd::start(&["--max-msg-size=10"]);
    let body = Conn::mpub_body(&[b"ok", b"ok2", b"this is too long"]);
    assert_err(
        &httpx::post(&n, "/mpub?topic=t&binary=true", &body),
        413,
        "BAD_MESSAGE",
    );
    assert_eq!(message_count(&n, "t"), 0);
}

#[test]
fn mpub_message_bytes_and_delivery_order_within_one_request() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 100);
    let lines: Vec<String> = (0..20).map(|i| format!("msg-{i:02}")).collect();
    let body = lines.join("\n");
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t", body.as_bytes()), "OK");
    let got: Vec<String> = read_bodies(&mut c, 20)
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect();
    let mut sorted_got = got.clone();
    sorted_got.sort();
    assert_eq!(sorted_got, lines);
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(int(&t, "message_count"), 20);
    assert_eq!(int(&t, "message_bytes"), 20 * 6);
}
