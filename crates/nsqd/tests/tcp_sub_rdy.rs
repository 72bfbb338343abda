//! TCP protocol V2: SUB, RDY (flow-control window), CLS, fan-out and competing consumers.

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(400);

fn cls(c: &mut Conn) {
    c.cmd("CLS");
    let f = c.read_non_heartbeat();
    assert_eq!(
        (f.kind, f.text()),
        (FRAME_RESPONSE, "CLOSE_WAIT".to_string())
    );
}

// ---------------------------------------------------------------------------------------------
// SUB
// ---------------------------------------------------------------------------------------------

#[test]
fn sub_replies_ok_and_creates_topic_and_channel() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("SUB newtopic newchan");
    assert_eq!(c.read_exact_bytes(10), encode_frame(FRAME_RESPONSE, b"OK"));
    let ch = eventually(|| n.channel_stats("newtopic", "newchan"));
    assert_eq!(ch["client_count"], 1);
}

#[test]
fn sub_ephemeral_names_and_length_limits() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t#ephemeral", "c#ephemeral");

    let name64 = "a".repeat(64);
    let mut c = n.connect();
    c.subscribe(&name64, &name64);

    let name54 = format!("{}#ephemeral", "b".repeat(54));
    assert_eq!(name54.len(), 64);
    let mut c = n.connect();
    c.subscribe("valid.topic_name-1", &name54);
}

#[test]
fn sub_twice_is_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("SUB t c2");
    c.expect_fatal("E_INVALID cannot SUB in current state");
}

#[test]
fn sub_when_closing_is_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    cls(&mut c);
    c.cmd("SUB t c");
    c.expect_fatal("E_INVALID cannot SUB in current state");
}

#[test]
fn sub_insufficient_parameters() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("SUB t");
    c.expect_fatal("E_INVALID SUB insufficient number of parameters");
    let mut c = n.connect();
    c.cmd("SUB");
    c.expect_fatal("E_INVALID SUB insufficient number of parameters");
}

#[test]
fn sub_bad_topic() {
    let n = Nsqd::start(&[]);
    let cases: &[(&str, &str)] = &[
        ("bad!topic", r#""bad!topic""#),
        ("", r#""""#),
        ("t#eph", r#""t#eph""#),
        ("t#ephemeral#ephemeral", r#""t#ephemeral#ephemeral""#),
        ("a\"b", r#""a\"b""#),
        ("a\\b", r#""a\\b""#),
        ("a\x01b", r#""a\x01b""#),
    ];
    for (name, quoted) in cases {
        let mut c = n.connect();
        c.cmd(&format!("SUB {name} c"));
        c.expect_fatal(&format!("E_BAD_TOPIC SUB topic name {quoted} is not valid"));
    }
    let long = "a".repeat(65);
    let mut c = n.connect();
    c.cmd(&format!("SUB {long} c"));
    c.expect_fatal(&format!(
        "E_BAD_TOPIC SUB topic name \"{long}\" is not valid"
    ));
    let long_eph = format!("{}#ephemeral", "a".repeat(55));
    let mut c = n.connect();
    c.cmd(&format!("SUB {long_eph} c"));
    c.expect_fatal(&format!(
        "E_BAD_TOPIC SUB topic name \"{long_eph}\" is not valid"
    ));
}

#[test]
fn sub_bad_channel() {
    let n = Nsqd::start(&[]);
    let cases: &[(&str, &str)] = &[
        ("bad/chan", r#""bad/chan""#),
        ("", r#""""#),
        ("c#", r#""c#""#),
        ("über", r#""über""#),
    ];
    for (name, quoted) in cases {
        let mut c = n.connect();
        c.cmd(&format!("SUB t {name}"));
        c.expect_fatal(&format!(
            "E_BAD_CHANNEL SUB channel name {quoted} is not valid"
        ));
    }
    let long = "c".repeat(65);
    let mut c = n.connect();
    c.cmd(&format!("SUB t {long}"));
    c.expect_fatal(&format!(
        "E_BAD_CHANNEL SUB channel name \"{long}\" is not valid"
    ));
}

#[test]
fn sub_topic_checked_before_channel() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("SUB bad! bad!");
    c.expect_fatal("E_BAD_TOPIC SUB topic name \"bad!\" is not valid");
}

#[test]
fn sub_refused_with_heartbeats_disabled() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"heartbeat_interval":-1}"#);
    assert_eq!(f.text(), "OK");
    c.cmd("SUB t c");
    c.expect_fatal("E_INVALID cannot SUB with heartbeats disabled");
}

#[test]
fn sub_heartbeat_check_comes_before_parameter_check() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"heartbeat_interval":-1}"#);
    assert_eq!(f.text(), "OK");
    c.cmd("SUB");
    c.expect_fatal("E_INVALID cannot SUB with heartbeats disabled");
}

#[test]
fn publisher_with_heartbeats_disabled_can_publish() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"heartbeat_interval":-1}"#);
    assert_eq!(f.text(), "OK");
    c.probe("t");
    c.probe("t");
}

#[test]
fn max_channel_consumers_limit() {
    let n = Nsqd::start(&["--max-channel-consumers=1"]);
    let mut a = n.connect();
    a.subscribe("t", "c");
    let mut b = n.connect();
    b.cmd("SUB t c");
    b.expect_fatal("E_SUB_FAILED SUB failed consumers for t:c exceeds limit of 1");
    // Another channel of the same topic is a separate count.
    let mut d = n.connect();
    d.subscribe("t", "c2");
    // The first consumer is unaffected.
    a.probe("t");
}

#[test]
fn max_channel_consumers_slot_freed_on_disconnect() {
    let n = Nsqd::start(&["--max-channel-consumers=1"]);
    let a = n.connect();
    let mut a = a;
    a.subscribe("t", "c");
    drop(a);
    eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["client_count"] == 0).then_some(())
    });
    let mut b = n.connect();
    b.subscribe("t", "c");
}

#[test]
fn unlimited_channel_consumers_by_default() {
    let n = Nsqd::start(&[]);
    let mut conns = Vec::new();
    for _ in 0..5 {
        let mut c = n.connect();
        c.subscribe("t", "c");
        conns.push(c);
    }
}

// ---------------------------------------------------------------------------------------------
// RDY
// ---------------------------------------------------------------------------------------------

#[test]
fn rdy_in_init_is_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("RDY 1");
    c.expect_fatal("E_INVALID cannot RDY in current state");
}

#[test]
fn rdy_parse_errors() {
    let n = Nsqd::start(&[]);
    for raw in ["-1", "abc", "+1", "1.0", "0x10", "1a", "1\t"] {
        let mut c = n.connect();
        c.subscribe("t", "c");
        c.cmd(&format!("RDY {raw}"));
        c.expect_fatal(&format!("E_INVALID RDY could not parse count {raw}"));
    }
}

#[test]
fn rdy_out_of_range_default_max() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("RDY 2501");
    c.expect_fatal("E_INVALID RDY count 2501 out of range 0-2500");

    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("RDY 2500");
    c.probe("other");
}

#[test]
fn rdy_out_of_range_with_flag() {
    let n = Nsqd::start(&["--max-rdy-count=10"]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("RDY 11");
    c.expect_fatal("E_INVALID RDY count 11 out of range 0-10");

    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("RDY 10");
    c.probe("other");
}

#[test]
fn rdy_overflow_wraps_to_negative_and_is_out_of_range() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    // 2^64 - 1 parses (wrapping uint64) and becomes -1 as int64.
    c.cmd("RDY 18446744073709551615");
    c.expect_fatal("E_INVALID RDY count -1 out of range 0-2500");
}

#[test]
fn rdy_omitted_count_means_one() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("RDY");
    let mut p = n.connect();
    for i in 0..3 {
        p.publish("t", format!("m{i}").as_bytes());
    }
    let m = c.read_message();
    assert_eq!(m.body, b"m0");
    c.expect_no_frame(QUIET);
}

#[test]
fn rdy_empty_count_means_zero() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    // RDY 5 then "RDY " (empty parameter = 0), then a publish on the same connection.
    let mut buf = cmd_bytes("RDY 5", None);
    buf.extend(cmd_bytes("RDY ", None));
    buf.extend(cmd_bytes("PUB t", Some(b"x")));
    c.send(&buf);
    c.expect_ok();
    c.expect_no_frame(QUIET);
    c.rdy(1);
    assert_eq!(c.read_message().body, b"x");
}

#[test]
fn no_delivery_before_rdy() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.probe("t");
    c.expect_no_frame(QUIET);
    c.rdy(1);
    assert_eq!(c.read_message().body, b"probe");
}

#[test]
fn rdy_is_a_window_not_a_credit() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.rdy(2);
    let mut p = n.connect();
    for i in 0..6 {
        p.publish("t", format!("m{i}").as_bytes());
    }
    let a = c.read_message();
    let b = c.read_message();
    // Exactly two in flight.
    c.expect_no_frame(QUIET);
    // Each FIN opens exactly one slot; RDY never has to be re-sent.
    c.fin(a.id_str());
    let m3 = c.read_message();
    c.expect_no_frame(QUIET);
    c.fin(b.id_str());
    c.fin(m3.id_str());
    let m4 = c.read_message();
    let m5 = c.read_message();
    c.expect_no_frame(QUIET);
    let mut bodies: Vec<Vec<u8>> = [&a, &b, &m3, &m4, &m5]
        .iter()
        .map(|m| m.body.clone())
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 5);
    c.fin(m4.id_str());
    let m6 = c.read_message();
    assert!(!bodies.contains(&m6.body));
}

#[test]
fn rdy_zero_pauses_delivery() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.rdy(1);
    let mut p = n.connect();
    p.publish("t", b"a");
    let a = c.read_message();
    c.rdy(0);
    p.publish("t", b"b");
    // Finishing the in-flight message must not open a slot while RDY is 0.
    c.fin(a.id_str());
    c.expect_no_frame(QUIET);
    c.rdy(1);
    assert_eq!(c.read_message().body, b"b");
}

#[test]
fn rdy_lowered_keeps_messages_in_flight() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.rdy(3);
    let mut p = n.connect();
    for i in 0..5 {
        p.publish("t", format!("m{i}").as_bytes());
    }
    let ms: Vec<Msg> = (0..3).map(|_| c.read_message()).collect();
    c.rdy(1);
    // Two FINs leave one in flight = RDY 1: still nothing new.
    c.fin(ms[0].id_str());
    c.fin(ms[1].id_str());
    c.expect_no_frame(QUIET);
    // Already-sent messages remain finishable.
    c.fin(ms[2].id_str());
    let m = c.read_message();
    c.expect_no_frame(QUIET);
    c.fin(m.id_str());
    c.read_message();
}

#[test]
fn rdy_same_value_again_is_harmless() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.rdy(1);
    c.rdy(1);
    c.rdy(1);
    let mut p = n.connect();
    p.publish("t", b"a");
    p.publish("t", b"b");
    let a = c.read_message();
    c.expect_no_frame(QUIET);
    c.fin(a.id_str());
    assert_eq!(c.read_message().body, b"b");
}

// ---------------------------------------------------------------------------------------------
// CLS
// ---------------------------------------------------------------------------------------------

#[test]
fn cls_exact_reply_bytes() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("CLS");
    assert_eq!(
        c.read_exact_bytes(18),
        encode_frame(FRAME_RESPONSE, b"CLOSE_WAIT")
    );
}

#[test]
fn cls_in_init_is_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("CLS");
    c.expect_fatal("E_INVALID cannot CLS in current state");
}

#[test]
fn second_cls_is_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    cls(&mut c);
    c.cmd("CLS");
    c.expect_fatal("E_INVALID cannot CLS in current state");
}

#[test]
fn server_does_not_close_after_cls() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    cls(&mut c);
    c.expect_no_frame(QUIET);
    c.probe("t");
    c.cmd("NOP");
    c.probe("t");
}

#[test]
fn cls_stops_delivery_and_allows_finishing_in_flight() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.rdy(1);
    let mut p = n.connect();
    p.publish("t", b"a");
    p.publish("t", b"b");
    let a = c.read_message();
    cls(&mut c);
    c.fin(a.id_str());
    c.expect_no_frame(QUIET);
    // RDY in closing state is silently ignored: no error, no delivery, connection stays up.
    c.rdy(5);
    c.expect_no_frame(QUIET);
    c.probe("other");
    // The remaining message goes to another consumer.
    let mut d = n.connect();
    d.subscribe("t", "c");
    d.rdy(1);
    assert_eq!(d.read_message().body, b"b");
}

#[test]
fn rdy_parse_error_ignored_when_closing() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    cls(&mut c);
    // The closing-state check comes first, so even an invalid count is ignored.
    c.cmd("RDY abc");
    c.cmd("RDY 999999");
    c.probe("t");
}

#[test]
fn cls_forces_rdy_to_zero_in_stats() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.rdy(7);
    eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["clients"][0]["ready_count"] == 7).then_some(())
    });
    cls(&mut c);
    let ch = eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["clients"][0]["state"] == 4).then_some(ch)
    });
    assert_eq!(ch["clients"][0]["ready_count"], 0);
}

// ---------------------------------------------------------------------------------------------
// Fan-out and competition
// ---------------------------------------------------------------------------------------------

#[test]
fn each_channel_gets_every_message() {
    let n = Nsqd::start(&[]);
    let mut c1 = n.connect();
    c1.subscribe("t", "ch1");
    c1.rdy(100);
    let mut c2 = n.connect();
    c2.subscribe("t", "ch2");
    c2.rdy(100);
    let mut p = n.connect();
    for i in 0..10 {
        p.publish("t", format!("m{i}").as_bytes());
    }
    let r1: Vec<Msg> = (0..10).map(|_| c1.read_message()).collect();
    let r2: Vec<Msg> = (0..10).map(|_| c2.read_message()).collect();
    c1.expect_no_frame(QUIET);
    c2.expect_no_frame(Duration::from_millis(50));
    let m1: HashMap<Vec<u8>, (String, i64)> = r1
        .iter()
        .map(|m| (m.body.clone(), (m.id_str().to_string(), m.timestamp)))
        .collect();
    let m2: HashMap<Vec<u8>, (String, i64)> = r2
        .iter()
        .map(|m| (m.body.clone(), (m.id_str().to_string(), m.timestamp)))
        .collect();
    assert_eq!(m1.len(), 10);
    // Same ID and timestamp for each channel copy.
    assert_eq!(m1, m2);
}

#[test]
fn consumers_of_one_channel_compete() {
    let n = Nsqd::start(&[]);
    let mut a = n.connect();
    a.subscribe("t", "c");
    a.rdy(100);
    let mut b = n.connect();
    b.subscribe("t", "c");
    b.rdy(100);
    let bodies: Vec<Vec<u8>> = (0..40).map(|i| format!("m{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    let mut p = n.connect();
    p.cmd_body("MPUB t", &Conn::mpub_body(&refs));
    p.expect_ok();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while seen.len() < 40 && std::time::Instant::now() < deadline {
        for c in [&mut a, &mut b] {
            while let Some(f) = c.try_read_frame(Duration::from_millis(20)) {
                assert_eq!(f.kind, FRAME_MESSAGE);
                let m = parse_message(&f.data);
                c.fin(m.id_str());
                seen.push(m.body);
            }
        }
    }
    a.expect_no_frame(QUIET);
    b.expect_no_frame(Duration::from_millis(50));
    assert_eq!(
        seen.len(),
        40,
        "each message exactly once across the channel's consumers"
    );
    let set: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(set.len(), 40);
}

#[test]
fn topic_holds_messages_until_first_channel() {
    let n = Nsqd::start(&[]);
    let mut p = n.connect();
    for i in 0..3 {
        p.publish("held", format!("m{i}").as_bytes());
    }
    let mut c = n.connect();
    c.subscribe("held", "first");
    c.rdy(10);
    let mut got: Vec<Vec<u8>> = (0..3).map(|_| c.read_message().body).collect();
    got.sort();
    assert_eq!(got, vec![b"m0".to_vec(), b"m1".to_vec(), b"m2".to_vec()]);

    // A channel created later does not see messages that already left the topic.
    let mut late = n.connect();
    late.subscribe("held", "late");
    late.rdy(10);
    late.expect_no_frame(QUIET);
    p.publish("held", b"new");
    assert_eq!(late.read_message().body, b"new");
    assert_eq!(c.read_message().body, b"new");
}

#[test]
fn consumer_only_receives_its_own_topic() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("mine", "c");
    c.rdy(10);
    let mut p = n.connect();
    p.publish("other", b"x");
    p.publish("mine", b"y");
    assert_eq!(c.read_message().body, b"y");
    c.expect_no_frame(QUIET);
}

#[test]
fn consumer_that_also_publishes() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.rdy(1);
    c.cmd_body("PUB t", b"self");
    let mut msgs = Vec::new();
    let f = c.read_response_collecting(&mut msgs);
    assert_eq!(f.text(), "OK");
    let m = if msgs.is_empty() {
        c.read_message()
    } else {
        msgs.remove(0)
    };
    assert_eq!(m.body, b"self");
    // FIN and publish interleaved on the same connection.
    c.fin(m.id_str());
    c.cmd_body("MPUB t", &Conn::mpub_body(&[b"a", b"b"]));
    let f = c.read_response_collecting(&mut msgs);
    assert_eq!(f.text(), "OK");
    let m = if msgs.is_empty() {
        c.read_message()
    } else {
        msgs.remove(0)
    };
    assert_eq!(m.body, b"a");
}

#[test]
fn ephemeral_channel_and_topic_deleted_after_last_consumer_leaves() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("e#ephemeral", "c#ephemeral");
    let mut keep = n.connect();
    keep.subscribe("durable", "c#ephemeral");
    let mut durable = n.connect();
    durable.subscribe("durable", "plain");
    eventually(|| n.channel_stats("e#ephemeral", "c#ephemeral"));
    drop(c);
    // Last consumer gone: ephemeral channel deleted, and with it the ephemeral topic.
    eventually(|| n.topic_stats("e#ephemeral").is_none().then_some(()));
    // Non-ephemeral channels stay after their consumer leaves.
    drop(durable);
    eventually(|| {
        let ch = n.channel_stats("durable", "plain")?;
        (ch["client_count"] == 0).then_some(())
    });
    assert!(n.channel_stats("durable", "c#ephemeral").is_some());
    drop(keep);
    eventually(|| {
        n.channel_stats("durable", "c#ephemeral")
            .is_none()
            .then_some(())
    });
    assert!(n.topic_stats("durable").is_some());
    assert!(n.channel_stats("durable", "plain").is_some());
}
