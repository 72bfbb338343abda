//! TCP protocol V2: heartbeats and read deadlines.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn identified(n: &Nsqd, json: &str) -> Conn {
    let mut c = n.connect();
    let f = c.identify(json);
    assert_eq!(f.text(), "OK");
    c
}

fn is_heartbeat(f: &Frame) -> bool {
    f.kind == FRAME_RESPONSE && f.data == b"_heartbeat_"
}

#[test]
fn heartbeat_arrives_after_interval_exact_bytes() {
    let n = Nsqd::start(&[]);
    let mut c = identified(&n, r#"{"heartbeat_interval":1000}"#);
    let start = Instant::now();
    let raw = c.read_exact_bytes(19);
    let el = start.elapsed();
    let mut want = vec![0, 0, 0, 0x0F, 0, 0, 0, 0];
    want.extend_from_slice(b"_heartbeat_");
    assert_eq!(raw, want);
    assert!(
        el >= Duration::from_millis(800),
        "heartbeat after only {el:?}"
    );
    assert!(el < Duration::from_millis(2500), "heartbeat after {el:?}");
    c.cmd("NOP");
    c.probe("t");
}

#[test]
fn idle_client_disconnected_after_two_missed_heartbeats() {
    let n = Nsqd::start(&[]);
    let mut c = identified(&n, r#"{"heartbeat_interval":1000}"#);
    let start = Instant::now();
    let hb = c.expect_closed_without_error();
    let el = start.elapsed();
    assert!(
        hb >= 1,
        "expected at least one heartbeat before the disconnect"
    );
    assert!(
        el >= Duration::from_millis(1800),
        "disconnected after only {el:?}"
    );
    assert!(
        el < Duration::from_millis(4500),
        "disconnected after {el:?}"
    );
}

#[test]
fn idle_subscriber_disconnected_after_two_missed_heartbeats() {
    let n = Nsqd::start(&[]);
    let mut c = identified(&n, r#"{"heartbeat_interval":1000}"#);
    c.subscribe("t", "c");
    c.rdy(1);
    let start = Instant::now();
    let hb = c.expect_closed_without_error();
    let el = start.elapsed();
    assert!(hb >= 1);
    assert!(
        el >= Duration::from_millis(1800),
        "disconnected after only {el:?}"
    );
    assert!(
        el < Duration::from_millis(4500),
        "disconnected after {el:?}"
    );
    // The consumer is removed from its channel.
    eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["client_count"] == 0).then_some(())
    });
}

#[test]
fn incomplete_command_line_does_not_keep_connection_alive() {
    let n = Nsqd::start(&[]);
    let mut c = identified(&n, r#"{"heartbeat_interval":1000}"#);
    let start = Instant::now();
    c.send(b"PUB t");
    let hb = c.expect_closed_without_error();
    let el = start.elapsed();
    assert!(hb >= 1);
    assert!(
        el >= Duration::from_millis(1800) && el < Duration::from_millis(4500),
        "{el:?}"
    );
}

#[test]
fn nop_keeps_connection_alive() {
    let n = Nsqd::start(&[]);
    let mut c = identified(&n, r#"{"heartbeat_interval":1000}"#);
    let start = Instant::now();
    for _ in 0..3 {
        let f = c.read_frame();
        assert!(is_heartbeat(&f), "got {:?}", f.text());
        c.cmd("NOP");
    }
    assert!(start.elapsed() >= Duration::from_millis(2500));
    c.probe("t");
}

#[test]
fn subscriber_answering_heartbeats_stays_connected() {
    let n = Nsqd::start(&[]);
    let mut c = identified(&n, r#"{"heartbeat_interval":1000}"#);
    c.subscribe("t", "c");
    c.rdy(1);
    for _ in 0..3 {
        let f = c.read_frame();
        assert!(is_heartbeat(&f), "got {:?}", f.text());
        c.cmd("NOP");
    }
    let mut p = n.connect();
    p.publish("t", b"still here");
    assert_eq!(c.read_message().body, b"still here");
}

#[test]
fn heartbeats_are_sent_regardless_of_traffic() {
    let n = Nsqd::start(&[]);
    let mut c = identified(&n, r#"{"heartbeat_interval":1000}"#);
    let start = Instant::now();
    let mut heartbeats = 0;
    let mut oks = 0;
    while start.elapsed() < Duration::from_millis(2700) {
        c.cmd_body("PUB t", b"x");
        loop {
            let f = c.read_frame();
            if is_heartbeat(&f) {
                heartbeats += 1;
                continue;
            }
            assert_eq!((f.kind, f.text()), (FRAME_RESPONSE, "OK".to_string()));
            oks += 1;
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(oks >= 10);
    assert!(
        heartbeats >= 2,
        "only {heartbeats} heartbeats in 2.7 s of traffic"
    );
}

#[test]
fn heartbeats_interleave_with_message_delivery() {
    let n = Nsqd::start(&[]);
    let mut c = identified(&n, r#"{"heartbeat_interval":1000}"#);
    c.subscribe("t", "c");
    c.rdy(100);
    let mut p = n.connect();
    let start = Instant::now();
    let mut heartbeats = 0;
    let mut msgs = 0;
    let mut i = 0;
    while start.elapsed() < Duration::from_millis(2600) {
        p.publish("t", format!("m{i}").as_bytes());
        i += 1;
        while let Some(f) = c.try_read_frame(Duration::from_millis(100)) {
            if is_heartbeat(&f) {
                heartbeats += 1;
                c.cmd("NOP");
            } else {
                assert_eq!(f.kind, FRAME_MESSAGE);
                let m = parse_message(&f.data);
                c.fin(m.id_str());
                msgs += 1;
            }
        }
    }
    assert!(msgs >= 5);
    assert!(
        heartbeats >= 2,
        "only {heartbeats} heartbeats while messages flowed"
    );
}

#[test]
fn publishing_client_with_custom_interval_gets_disconnected_when_silent() {
    let n = Nsqd::start(&[]);
    let mut c = identified(&n, r#"{"heartbeat_interval":1500}"#);
    c.probe("t");
    let start = Instant::now();
    c.expect_closed_without_error();
    let el = start.elapsed();
    assert!(
        el >= Duration::from_millis(2700),
        "disconnected after only {el:?}"
    );
    assert!(
        el < Duration::from_millis(6000),
        "disconnected after {el:?}"
    );
}
