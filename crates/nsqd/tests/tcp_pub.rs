//! TCP protocol V2: PUB, MPUB, DPUB (every error row, size limits, IDs, ordering, deferral).

mod common;

use common::*;
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(400);

/// Sends `line\n` followed by raw bytes (no automatic size prefix).
fn send_raw(c: &mut Conn, line: &str, rest: &[u8]) {
    let mut v = line.as_bytes().to_vec();
    v.push(b'\n');
    v.extend_from_slice(rest);
    c.send(&v);
}

fn be(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

// ---------------------------------------------------------------------------------------------
// PUB
// ---------------------------------------------------------------------------------------------

#[test]
fn pub_ok_and_delivered() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(1);
    let mut p = n.connect();
    p.cmd_body("PUB t", b"hello");
    assert_eq!(p.read_exact_bytes(10), encode_frame(FRAME_RESPONSE, b"OK"));
    let before = now_ns();
    let m = sub.read_message();
    assert_eq!(m.body, b"hello");
    assert_eq!(m.attempts, 1);
    assert!(is_lower_hex16(&m.id));
    assert!(
        (m.timestamp - before).abs() < 5_000_000_000,
        "timestamp {} vs now {before}",
        m.timestamp
    );
}

#[test]
fn pub_creates_topic() {
    let n = Nsqd::start(&[]);
    let mut p = n.connect();
    p.publish("created_by_pub", b"x");
    let t = eventually(|| n.topic_stats("created_by_pub"));
    assert_eq!(t["message_count"], 1);
    assert_eq!(t["depth"], 1);
}

#[test]
fn pub_insufficient_parameters() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("PUB");
    c.expect_fatal("E_INVALID PUB insufficient number of parameters");
}

#[test]
fn pub_bad_topic() {
    let n = Nsqd::start(&[]);
    for (name, quoted) in [("bad!", r#""bad!""#), ("", r#""""#), ("a#b", r#""a#b""#)] {
        let mut c = n.connect();
        c.cmd(&format!("PUB {name}"));
        c.expect_fatal(&format!("E_BAD_TOPIC PUB topic name {quoted} is not valid"));
    }
    let long = "x".repeat(65);
    let mut c = n.connect();
    c.cmd(&format!("PUB {long}"));
    c.expect_fatal(&format!(
        "E_BAD_TOPIC PUB topic name \"{long}\" is not valid"
    ));
}

#[test]
fn pub_body_size_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    send_raw(&mut c, "PUB t", &[0, 0, 1]);
    c.shutdown_write();
    c.expect_fatal("E_BAD_MESSAGE PUB failed to read message body size");
}

#[test]
fn pub_body_size_zero_and_negative() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    send_raw(&mut c, "PUB t", &be(0));
    c.expect_fatal("E_BAD_MESSAGE PUB invalid message body size 0");

    let mut c = n.connect();
    send_raw(&mut c, "PUB t", &be(0xFFFF_FFFF));
    c.expect_fatal("E_BAD_MESSAGE PUB invalid message body size -1");

    let mut c = n.connect();
    send_raw(&mut c, "PUB t", &be(0x8000_0000));
    c.expect_fatal("E_BAD_MESSAGE PUB invalid message body size -2147483648");
}

#[test]
fn pub_message_too_big_default_limit() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    send_raw(&mut c, "PUB t", &be(1_048_577));
    c.expect_fatal("E_BAD_MESSAGE PUB message too big 1048577 > 1048576");
}

#[test]
fn pub_message_too_big_with_flag() {
    let n = Nsqd::start(&["--max-msg-size=10"]);
    let mut c = n.connect();
    send_raw(&mut c, "PUB t", &be(11));
    c.expect_fatal("E_BAD_MESSAGE PUB message too big 11 > 10");

    let mut c = n.connect();
    c.cmd_body("PUB t", b"0123456789");
    c.expect_ok();
}

#[test]
fn pub_body_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut rest = be(10).to_vec();
    rest.extend_from_slice(b"abc");
    send_raw(&mut c, "PUB t", &rest);
    c.shutdown_write();
    c.expect_fatal("E_BAD_MESSAGE PUB failed to read message body");
}

#[test]
fn pub_failed_body_publishes_nothing() {
    let n = Nsqd::start(&["--max-msg-size=10"]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(10);
    let mut c = n.connect();
    send_raw(&mut c, "PUB t", &be(11));
    c.expect_fatal("E_BAD_MESSAGE PUB message too big 11 > 10");
    let mut p = n.connect();
    p.publish("t", b"marker");
    assert_eq!(sub.read_message().body, b"marker");
}

#[test]
fn pub_binary_body_roundtrip() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(1);
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut p = n.connect();
    p.publish("t", &body);
    let m = sub.read_message();
    assert_eq!(m.body, body);
}

#[test]
fn pub_allowed_in_every_state() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.publish("t", b"init");
    c.subscribe("t", "c");
    c.publish("t", b"subscribed");
    c.cmd("CLS");
    assert_eq!(c.read_non_heartbeat().text(), "CLOSE_WAIT");
    c.publish("t", b"closing");
    c.cmd_body("MPUB t", &Conn::mpub_body(&[b"m1"]));
    c.expect_ok();
    c.cmd_body("DPUB t 0", b"d");
    c.expect_ok();
}

// ---------------------------------------------------------------------------------------------
// Message IDs
// ---------------------------------------------------------------------------------------------

#[test]
fn ids_unique_and_increasing_per_topic() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(500);
    let mut p = n.connect();
    // Pipelined single PUBs plus one MPUB.
    let mut buf = Vec::new();
    for i in 0..150 {
        buf.extend(cmd_bytes("PUB t", Some(format!("{i:04}").as_bytes())));
    }
    p.send(&buf);
    for _ in 0..150 {
        p.expect_ok();
    }
    let bodies: Vec<Vec<u8>> = (150..300).map(|i| format!("{i:04}").into_bytes()).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    p.cmd_body("MPUB t", &Conn::mpub_body(&refs));
    p.expect_ok();

    let mut by_body: Vec<(usize, String)> = (0..300)
        .map(|_| {
            let m = sub.read_message();
            assert!(is_lower_hex16(&m.id), "bad id {:?}", m.id_str());
            let idx: usize = std::str::from_utf8(&m.body).unwrap().parse().unwrap();
            (idx, m.id_str().to_string())
        })
        .collect();
    by_body.sort();
    for (i, (idx, _)) in by_body.iter().enumerate() {
        assert_eq!(*idx, i, "every message delivered exactly once");
    }
    // Publish order == ID order (fixed-width lowercase hex compares like the number).
    for w in by_body.windows(2) {
        assert!(
            w[0].1 < w[1].1,
            "ID not increasing: {} then {}",
            w[0].1,
            w[1].1
        );
    }
}

#[test]
fn ids_per_topic_each_increasing() {
    let n = Nsqd::start(&[]);
    let mut s1 = n.connect();
    s1.subscribe("ta", "c");
    s1.rdy(100);
    let mut s2 = n.connect();
    s2.subscribe("tb", "c");
    s2.rdy(100);
    let mut p = n.connect();
    for i in 0..20 {
        p.publish(
            if i % 2 == 0 { "ta" } else { "tb" },
            format!("{i:02}").as_bytes(),
        );
    }
    for s in [&mut s1, &mut s2] {
        let mut v: Vec<(Vec<u8>, String)> = (0..10)
            .map(|_| s.read_message())
            .map(|m| (m.body.clone(), m.id_str().to_string()))
            .collect();
        v.sort();
        for w in v.windows(2) {
            assert!(w[0].1 < w[1].1);
        }
    }
}

#[test]
fn node_id_is_embedded_in_ids() {
    let n = Nsqd::start(&["--node-id=1023"]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(1);
    let mut p = n.connect();
    p.publish("t", b"x");
    let m = sub.read_message();
    let v = u64::from_str_radix(m.id_str(), 16).unwrap();
    assert_eq!((v >> 12) & 0x3FF, 1023, "id {}", m.id_str());
    assert_eq!(v >> 63, 0);
    // ts part: (unix_nanos >> 20) - 1288834974288
    let ts = (v >> 22) as i64;
    let now = (now_ns() >> 20) - 1_288_834_974_288;
    assert!((now - ts).abs() < 10_000, "id time part {ts} vs {now}");
}

// ---------------------------------------------------------------------------------------------
// MPUB
// ---------------------------------------------------------------------------------------------

#[test]
fn mpub_ok_order_and_ids() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(100);
    let bodies: Vec<Vec<u8>> = (0..20).map(|i| format!("b{i:02}").into_bytes()).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    let mut p = n.connect();
    p.cmd_body("MPUB t", &Conn::mpub_body(&refs));
    assert_eq!(p.read_exact_bytes(10), encode_frame(FRAME_RESPONSE, b"OK"));
    let got: Vec<Msg> = (0..20).map(|_| sub.read_message()).collect();
    sub.expect_no_frame(QUIET);
    let got_bodies: Vec<Vec<u8>> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(got_bodies, bodies, "MPUB messages delivered in body order");
    for w in got.windows(2) {
        assert!(w[0].id_str() < w[1].id_str());
    }
    for m in &got {
        assert_eq!(m.attempts, 1);
    }
}

#[test]
fn mpub_single_message() {
    let n = Nsqd::start(&[]);
    let mut p = n.connect();
    p.cmd_body("MPUB t", &Conn::mpub_body(&[b"only"]));
    p.expect_ok();
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(5);
    assert_eq!(sub.read_message().body, b"only");
}

#[test]
fn mpub_insufficient_parameters() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("MPUB");
    c.expect_fatal("E_INVALID MPUB insufficient number of parameters");
}

#[test]
fn mpub_bad_topic_has_doubled_code() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("MPUB bad!");
    c.expect_fatal("E_BAD_TOPIC E_BAD_TOPIC MPUB topic name \"bad!\" is not valid");
    let mut c = n.connect();
    c.cmd("MPUB ");
    c.expect_fatal("E_BAD_TOPIC E_BAD_TOPIC MPUB topic name \"\" is not valid");
}

#[test]
fn mpub_body_size_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    send_raw(&mut c, "MPUB t", &[0, 0]);
    c.shutdown_write();
    c.expect_fatal("E_BAD_BODY MPUB failed to read body size");
}

#[test]
fn mpub_body_size_zero_and_negative() {
    let n = Nsqd::start(&["--max-body-size=100"]);
    let mut c = n.connect();
    send_raw(&mut c, "MPUB t", &be(0));
    c.expect_fatal("E_BAD_BODY MPUB invalid body size 0");

    let mut c = n.connect();
    send_raw(&mut c, "MPUB t", &be(0xFFFF_FFFE));
    c.expect_fatal("E_BAD_BODY MPUB invalid body size -2");
}

#[test]
fn mpub_body_too_big_with_flag() {
    let n = Nsqd::start(&["--max-body-size=100"]);
    let mut c = n.connect();
    send_raw(&mut c, "MPUB t", &be(101));
    c.expect_fatal("E_BAD_BODY MPUB body too big 101 > 100");
}

#[test]
fn mpub_body_too_big_default_limit() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    send_raw(&mut c, "MPUB t", &be(5_242_881));
    c.expect_fatal("E_BAD_BODY MPUB body too big 5242881 > 5242880");
}

#[test]
fn mpub_message_count_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut rest = be(50).to_vec();
    rest.extend_from_slice(&[0, 0, 0]);
    send_raw(&mut c, "MPUB t", &rest);
    c.shutdown_write();
    c.expect_fatal("E_BAD_BODY MPUB failed to read message count");
}

#[test]
fn mpub_message_count_invalid() {
    // max count = (100 - 4) / 5 = 19
    let n = Nsqd::start(&["--max-body-size=100"]);
    for (count, shown) in [(0u32, "0"), (0xFFFF_FFFF, "-1"), (20, "20")] {
        let mut c = n.connect();
        let mut rest = be(50).to_vec();
        rest.extend_from_slice(&be(count));
        send_raw(&mut c, "MPUB t", &rest);
        // Only the count has been sent: the error must not wait for the rest of the body.
        c.expect_fatal(&format!("E_BAD_BODY MPUB invalid message count {shown}"));
    }
}

#[test]
fn mpub_message_count_at_limit_is_accepted() {
    let n = Nsqd::start(&["--max-body-size=100"]);
    let mut c = n.connect();
    let mut rest = be(50).to_vec();
    rest.extend_from_slice(&be(19));
    send_raw(&mut c, "MPUB t", &rest);
    c.shutdown_write();
    // 19 is within the limit: the error is then about the missing messages, not the count.
    c.expect_fatal("E_BAD_MESSAGE MPUB failed to read message(0) body size");
}

#[test]
fn mpub_message_count_limit_default() {
    let n = Nsqd::start(&[]);
    // (5242880 - 4) / 5 = 1048575
    let mut c = n.connect();
    let mut rest = be(100).to_vec();
    rest.extend_from_slice(&be(1_048_576));
    send_raw(&mut c, "MPUB t", &rest);
    c.expect_fatal("E_BAD_BODY MPUB invalid message count 1048576");
}

#[test]
fn mpub_message_size_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut rest = be(50).to_vec();
    rest.extend_from_slice(&be(2));
    rest.extend_from_slice(&be(1));
    rest.push(b'a');
    rest.extend_from_slice(&[0, 0]);
    send_raw(&mut c, "MPUB t", &rest);
    c.shutdown_write();
    c.expect_fatal("E_BAD_MESSAGE MPUB failed to read message(1) body size");
}

#[test]
fn mpub_message_size_zero_and_negative() {
    let n = Nsqd::start(&[]);
    for (size, shown) in [(0u32, "0"), (0xFFFF_FFFF, "-1")] {
        let mut c = n.connect();
        let mut rest = be(50).to_vec();
        rest.extend_from_slice(&be(3));
        rest.extend_from_slice(&be(1));
        rest.push(b'a');
        rest.extend_from_slice(&be(size));
        send_raw(&mut c, "MPUB t", &rest);
        c.expect_fatal(&format!(
            "E_BAD_MESSAGE MPUB invalid message(1) body size {shown}"
        ));
    }
}

#[test]
fn mpub_message_too_big() {
    let n = Nsqd::start(&["--max-msg-size=10"]);
    let mut c = n.connect();
    let mut rest = be(50).to_vec();
    rest.extend_from_slice(&be(1));
    rest.extend_from_slice(&be(11));
    send_raw(&mut c, "MPUB t", &rest);
    c.expect_fatal("E_BAD_MESSAGE MPUB message too big 11 > 10");

    // Exactly max-msg-size is fine.
    let mut c = n.connect();
    c.cmd_body("MPUB t", &Conn::mpub_body(&[b"0123456789", b"x"]));
    c.expect_ok();
}

#[test]
fn mpub_message_body_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut rest = be(50).to_vec();
    rest.extend_from_slice(&be(1));
    rest.extend_from_slice(&be(5));
    rest.extend_from_slice(b"ab");
    send_raw(&mut c, "MPUB t", &rest);
    c.shutdown_write();
    c.expect_fatal("E_BAD_MESSAGE MPUB failed to read message body");
}

#[test]
fn mpub_is_all_or_nothing() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(10);
    let mut c = n.connect();
    let mut inner = be(3).to_vec();
    inner.extend_from_slice(&be(1));
    inner.push(b'a');
    inner.extend_from_slice(&be(1));
    inner.push(b'b');
    inner.extend_from_slice(&be(0)); // third message invalid
    let mut rest = be(inner.len() as u32).to_vec();
    rest.extend_from_slice(&inner);
    send_raw(&mut c, "MPUB t", &rest);
    c.expect_fatal("E_BAD_MESSAGE MPUB invalid message(2) body size 0");
    let mut p = n.connect();
    p.publish("t", b"marker");
    assert_eq!(sub.read_message().body, b"marker");
    sub.expect_no_frame(QUIET);
}

#[test]
fn mpub_creates_topic_even_if_body_fails() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    send_raw(&mut c, "MPUB mpub_created", &be(0));
    c.expect_fatal("E_BAD_BODY MPUB invalid body size 0");
    let t = eventually(|| n.topic_stats("mpub_created"));
    assert_eq!(t["message_count"], 0);
}

#[test]
fn mpub_total_size_is_not_checked_against_content() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(10);
    let mut c = n.connect();
    let mut rest = be(1).to_vec(); // claims 1 byte, actually 4 + 4 + 3 + 4 + 3
    rest.extend_from_slice(&be(2));
    rest.extend_from_slice(&be(3));
    rest.extend_from_slice(b"abc");
    rest.extend_from_slice(&be(3));
    rest.extend_from_slice(b"def");
    send_raw(&mut c, "MPUB t", &rest);
    c.expect_ok();
    c.probe("other");
    assert_eq!(sub.read_message().body, b"abc");
    assert_eq!(sub.read_message().body, b"def");
}

// ---------------------------------------------------------------------------------------------
// DPUB
// ---------------------------------------------------------------------------------------------

#[test]
fn dpub_insufficient_parameters() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("DPUB t");
    c.expect_fatal("E_INVALID DPUB insufficient number of parameters");
    let mut c = n.connect();
    c.cmd("DPUB");
    c.expect_fatal("E_INVALID DPUB insufficient number of parameters");
}

#[test]
fn dpub_bad_topic() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("DPUB bad! 10");
    c.expect_fatal("E_BAD_TOPIC DPUB topic name \"bad!\" is not valid");
}

#[test]
fn dpub_topic_checked_before_timeout() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("DPUB bad! xyz");
    c.expect_fatal("E_BAD_TOPIC DPUB topic name \"bad!\" is not valid");
}

#[test]
fn dpub_timeout_parse_errors() {
    let n = Nsqd::start(&[]);
    for raw in ["abc", "-1", "+5", "1.5", "10ms"] {
        let mut c = n.connect();
        c.cmd(&format!("DPUB t {raw}"));
        c.expect_fatal(&format!("E_INVALID DPUB could not parse timeout {raw}"));
    }
}

#[test]
fn dpub_timeout_out_of_range_default() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("DPUB t 3600001");
    c.expect_fatal("E_INVALID DPUB timeout 3600001 out of range 0-3600000");
    let mut c = n.connect();
    c.cmd_body("DPUB t 3600000", b"x");
    c.expect_ok();
}

#[test]
fn dpub_timeout_out_of_range_with_flag() {
    let n = Nsqd::start(&["--max-req-timeout=1s"]);
    let mut c = n.connect();
    c.cmd("DPUB t 1001");
    c.expect_fatal("E_INVALID DPUB timeout 1001 out of range 0-1000");
    let mut c = n.connect();
    c.cmd_body("DPUB t 1000", b"x");
    c.expect_ok();
}

#[test]
fn dpub_range_checked_before_body() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    // No body sent: the range error must not wait for one.
    c.cmd("DPUB t 99999999");
    c.expect_fatal("E_INVALID DPUB timeout 99999999 out of range 0-3600000");
}

#[test]
fn dpub_body_size_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    send_raw(&mut c, "DPUB t 10", &[0]);
    c.shutdown_write();
    c.expect_fatal("E_BAD_MESSAGE DPUB failed to read message body size");
}

#[test]
fn dpub_body_size_invalid_and_too_big() {
    let n = Nsqd::start(&["--max-msg-size=10"]);
    let mut c = n.connect();
    send_raw(&mut c, "DPUB t 10", &be(0));
    c.expect_fatal("E_BAD_MESSAGE DPUB invalid message body size 0");

    let mut c = n.connect();
    send_raw(&mut c, "DPUB t 10", &be(0xFFFF_FFFF));
    c.expect_fatal("E_BAD_MESSAGE DPUB invalid message body size -1");

    let mut c = n.connect();
    send_raw(&mut c, "DPUB t 10", &be(11));
    c.expect_fatal("E_BAD_MESSAGE DPUB message too big 11 > 10");

    let mut c = n.connect();
    c.cmd_body("DPUB t 10", b"0123456789");
    c.expect_ok();
}

#[test]
fn dpub_body_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut rest = be(5).to_vec();
    rest.extend_from_slice(b"ab");
    send_raw(&mut c, "DPUB t 10", &rest);
    c.shutdown_write();
    c.expect_fatal("E_BAD_MESSAGE DPUB failed to read message body");
}

#[test]
fn dpub_delivered_after_delay() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(10);
    let mut p = n.connect();
    let start = Instant::now();
    p.cmd_body("DPUB t 700", b"later");
    p.expect_ok();
    p.publish("t", b"now");
    assert_eq!(sub.read_message().body, b"now");
    let m = sub.read_message();
    let el = start.elapsed();
    assert_eq!(m.body, b"later");
    assert_eq!(m.attempts, 1);
    assert!(
        el >= Duration::from_millis(700),
        "deferred message arrived after only {el:?}"
    );
    assert!(
        el < Duration::from_millis(8000),
        "deferred message took {el:?}"
    );
}

#[test]
fn dpub_zero_and_empty_delay_are_immediate() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(10);
    let mut p = n.connect();
    let start = Instant::now();
    p.cmd_body("DPUB t 0", b"zero");
    p.expect_ok();
    p.cmd_body("DPUB t ", b"empty");
    p.expect_ok();
    let mut got = vec![sub.read_message().body, sub.read_message().body];
    got.sort();
    assert_eq!(got, vec![b"empty".to_vec(), b"zero".to_vec()]);
    assert!(start.elapsed() < Duration::from_millis(2000));
}

#[test]
fn dpub_deferred_counted_in_stats() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    let mut p = n.connect();
    p.cmd_body("DPUB t 60000", b"x");
    p.expect_ok();
    let ch = eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["deferred_count"] == 1).then_some(ch)
    });
    assert_eq!(ch["depth"], 0);
    sub.rdy(1);
    sub.expect_no_frame(QUIET);
}

#[test]
fn pub_bad_topic_quoting_of_non_printable_bytes() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.send(b"PUB a\xffb\n");
    c.expect_fatal(r#"E_BAD_TOPIC PUB topic name "a\xffb" is not valid"#);

    let mut c = n.connect();
    c.send("PUB a\u{200b}b\n".as_bytes());
    c.expect_fatal(r#"E_BAD_TOPIC PUB topic name "a\u200bb" is not valid"#);

    let mut c = n.connect();
    c.send(b"PUB a\x00\x7fb\n");
    c.expect_fatal(r#"E_BAD_TOPIC PUB topic name "a\x00\x7fb" is not valid"#);

    let mut c = n.connect();
    c.send("PUB é\n".as_bytes());
    c.expect_fatal(r#"E_BAD_TOPIC PUB topic name "é" is not valid"#);
}

#[test]
fn pub_exactly_default_max_msg_size() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(1);
    let body = vec![b'm'; 1_048_576];
    let mut p = n.connect();
    p.publish("t", &body);
    let m = sub.read_message();
    assert_eq!(m.body.len(), 1_048_576);
}
