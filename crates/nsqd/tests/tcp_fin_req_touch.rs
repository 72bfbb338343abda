//! TCP protocol V2: FIN, REQ, TOUCH (state and parameter errors, non-fatal failures, ownership),
//! message timeouts and redelivery.

mod common;

use common::*;
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(400);
const ID: &str = "0123456789abcdef";

/// A subscribed consumer with RDY `rdy` on t/c.
fn consumer(n: &Nsqd, identify: Option<&str>, rdy: u64) -> Conn {
    let mut c = n.connect();
    if let Some(j) = identify {
        let f = c.identify(j);
        assert_eq!(f.text(), "OK");
    }
    c.subscribe("t", "c");
    if rdy > 0 {
        c.rdy(rdy);
    }
    c
}

fn publish(n: &Nsqd, body: &[u8]) {
    let mut p = n.connect();
    p.publish("t", body);
}

// ---------------------------------------------------------------------------------------------
// State errors
// ---------------------------------------------------------------------------------------------

#[test]
fn fin_req_touch_in_init_are_fatal() {
    let n = Nsqd::start(&[]);
    for (cmd, name) in [
        (format!("FIN {ID}"), "FIN"),
        (format!("REQ {ID} 0"), "REQ"),
        (format!("TOUCH {ID}"), "TOUCH"),
    ] {
        let mut c = n.connect();
        c.cmd(&cmd);
        c.expect_fatal(&format!("E_INVALID cannot {name} in current state"));
    }
}

#[test]
fn state_checked_before_parameters() {
    let n = Nsqd::start(&[]);
    for name in ["FIN", "REQ", "TOUCH"] {
        let mut c = n.connect();
        c.cmd(name);
        c.expect_fatal(&format!("E_INVALID cannot {name} in current state"));
    }
}

// ---------------------------------------------------------------------------------------------
// Parameter errors
// ---------------------------------------------------------------------------------------------

#[test]
fn insufficient_params_wording() {
    let n = Nsqd::start(&[]);
    for (cmd, err) in [
        ("FIN", "E_INVALID FIN insufficient number of params"),
        ("REQ", "E_INVALID REQ insufficient number of params"),
        (
            &format!("REQ {ID}") as &str,
            "E_INVALID REQ insufficient number of params",
        ),
        ("TOUCH", "E_INVALID TOUCH insufficient number of params"),
    ] {
        let mut c = consumer(&n, None, 0);
        c.cmd(cmd);
        c.expect_fatal(err);
    }
}

#[test]
fn invalid_message_id_length() {
    let n = Nsqd::start(&[]);
    for cmd in [
        "FIN 0123456789abcde".to_string(),
        "FIN 0123456789abcdef0".to_string(),
        "FIN ".to_string(),
        "REQ 0123 0".to_string(),
        "REQ 0123456789abcdef0 0".to_string(),
        "TOUCH abc".to_string(),
        "TOUCH 0123456789abcdef00".to_string(),
    ] {
        let mut c = consumer(&n, None, 0);
        c.cmd(&cmd);
        c.expect_fatal("E_INVALID invalid message ID");
    }
}

#[test]
fn req_id_checked_before_timeout() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 0);
    c.cmd("REQ short xyz");
    c.expect_fatal("E_INVALID invalid message ID");
}

#[test]
fn req_timeout_parse_errors() {
    let n = Nsqd::start(&[]);
    for raw in ["abc", "-1", "+1", "1.5", "1s"] {
        let mut c = consumer(&n, None, 0);
        c.cmd(&format!("REQ {ID} {raw}"));
        c.expect_fatal(&format!("E_INVALID REQ could not parse timeout {raw}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Non-fatal failures
// ---------------------------------------------------------------------------------------------

#[test]
fn fin_not_in_flight_is_non_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 0);
    c.fin(ID);
    let f = c.read_non_heartbeat();
    let text = format!("E_FIN_FAILED FIN {ID} failed ID not in flight");
    assert_eq!(f.kind, FRAME_ERROR);
    assert_eq!(f.text(), text);
    // Connection stays usable.
    c.probe("other");
    c.fin(ID);
    c.expect_error(&text);
    c.probe("other");
}

#[test]
fn fin_failed_exact_bytes() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 0);
    c.fin(ID);
    let text = format!("E_FIN_FAILED FIN {ID} failed ID not in flight");
    assert_eq!(
        c.read_exact_bytes(8 + text.len()),
        encode_frame(FRAME_ERROR, text.as_bytes())
    );
}

#[test]
fn req_and_touch_not_in_flight_are_non_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 0);
    c.cmd(&format!("REQ {ID} 0"));
    c.expect_error(&format!("E_REQ_FAILED REQ {ID} failed ID not in flight"));
    c.cmd(&format!("TOUCH {ID}"));
    c.expect_error(&format!(
        "E_TOUCH_FAILED TOUCH {ID} failed ID not in flight"
    ));
    // Empty REQ timeout parses as 0; the lookup then fails non-fatally.
    c.cmd(&format!("REQ {ID} "));
    c.expect_error(&format!("E_REQ_FAILED REQ {ID} failed ID not in flight"));
    c.probe("other");
}

#[test]
fn message_id_need_not_be_hex() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 0);
    let weird = "zz!!..--__ZZ##@@";
    assert_eq!(weird.len(), 16);
    c.fin(weird);
    c.expect_error(&format!("E_FIN_FAILED FIN {weird} failed ID not in flight"));
    c.probe("other");
}

#[test]
fn fin_req_touch_client_does_not_own_message() {
    let n = Nsqd::start(&[]);
    let mut owner = consumer(&n, None, 1);
    let mut other = consumer(&n, None, 0);
    publish(&n, b"x");
    let m = owner.read_message();
    let id = m.id_str().to_string();
    other.fin(&id);
    other.expect_error(&format!(
        "E_FIN_FAILED FIN {id} failed client does not own message"
    ));
    other.cmd(&format!("REQ {id} 0"));
    other.expect_error(&format!(
        "E_REQ_FAILED REQ {id} failed client does not own message"
    ));
    other.cmd(&format!("TOUCH {id}"));
    other.expect_error(&format!(
        "E_TOUCH_FAILED TOUCH {id} failed client does not own message"
    ));
    other.probe("other");
    // The owner can still finish it.
    owner.fin(&id);
    owner.probe("other");
}

#[test]
fn fin_of_message_from_another_channel_is_not_in_flight() {
    let n = Nsqd::start(&[]);
    let mut a = n.connect();
    a.subscribe("t", "c1");
    a.rdy(1);
    let mut b = n.connect();
    b.subscribe("t", "c2");
    publish(&n, b"x");
    let m = a.read_message();
    b.fin(m.id_str());
    b.expect_error(&format!(
        "E_FIN_FAILED FIN {} failed ID not in flight",
        m.id_str()
    ));
}

#[test]
fn double_fin_second_fails_non_fatally() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 1);
    publish(&n, b"x");
    let m = c.read_message();
    c.fin(m.id_str());
    c.fin(m.id_str());
    c.expect_error(&format!(
        "E_FIN_FAILED FIN {} failed ID not in flight",
        m.id_str()
    ));
    c.probe("other");
}

/// FINs sent together are applied together; their errors must still come out in order and
/// before the response of any command after them, and the good ones must all count.
#[test]
fn fins_in_one_write_keep_their_order_with_other_commands() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 3);
    for body in [b"a", b"b", b"c"] {
        publish(&n, body);
    }
    let ids: Vec<String> = (0..3)
        .map(|_| c.read_message().id_str().to_string())
        .collect();
    let mut burst = Vec::new();
    burst.extend(cmd_bytes(&format!("FIN {}", ids[0]), None));
    burst.extend(cmd_bytes("FIN 000000000000000a", None));
    burst.extend(cmd_bytes(&format!("FIN {}", ids[1]), None));
    burst.extend(cmd_bytes("FIN 000000000000000b", None));
    burst.extend(cmd_bytes("PUB t", Some(b"d")));
    burst.extend(cmd_bytes("FIN 000000000000000c", None));
    burst.extend(cmd_bytes(&format!("FIN {}", ids[2]), None));
    c.send(&burst);
    c.expect_error("E_FIN_FAILED FIN 000000000000000a failed ID not in flight");
    c.expect_error("E_FIN_FAILED FIN 000000000000000b failed ID not in flight");
    // The published message may be delivered before or after the OK: RDY is free again.
    let mut msgs = Vec::new();
    let f = c.read_response_collecting(&mut msgs);
    assert_eq!(f.text(), "OK");
    let f = c.read_response_collecting(&mut msgs);
    assert_eq!(
        f.text(),
        "E_FIN_FAILED FIN 000000000000000c failed ID not in flight"
    );
    let ch = eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["clients"][0]["finish_count"] == 3).then_some(ch)
    });
    assert_eq!(ch["message_count"], 4);
}

#[test]
fn fin_success_has_no_reply_and_is_counted() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 1);
    publish(&n, b"x");
    let m = c.read_message();
    c.fin(m.id_str());
    c.expect_no_frame(QUIET);
    let ch = eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["clients"][0]["finish_count"] == 1).then_some(ch)
    });
    assert_eq!(ch["in_flight_count"], 0);
}

// ---------------------------------------------------------------------------------------------
// REQ
// ---------------------------------------------------------------------------------------------

#[test]
fn req_zero_redelivers_with_attempts_incremented() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 1);
    publish(&n, b"again");
    let m1 = c.read_message();
    assert_eq!(m1.attempts, 1);
    c.cmd(&format!("REQ {} 0", m1.id_str()));
    let m2 = c.read_message();
    assert_eq!(m2.attempts, 2);
    assert_eq!(m2.id, m1.id);
    assert_eq!(
        m2.timestamp, m1.timestamp,
        "timestamp is the original publish time"
    );
    assert_eq!(m2.body, b"again");
    c.cmd(&format!("REQ {} 0", m2.id_str()));
    let m3 = c.read_message();
    assert_eq!(m3.attempts, 3);
    c.fin(m3.id_str());
    c.expect_no_frame(QUIET);
    let ch = eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["requeue_count"] == 2).then_some(ch)
    });
    assert_eq!(ch["clients"][0]["requeue_count"], 2);
}

#[test]
fn req_zero_frees_the_rdy_slot() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 1);
    publish(&n, b"a");
    let a = c.read_message();
    // Requeued message goes to the tail; with RDY 1 it comes straight back.
    c.cmd(&format!("REQ {} 0", a.id_str()));
    let again = c.read_message();
    assert_eq!(again.id, a.id);
    c.expect_no_frame(QUIET);
}

#[test]
fn req_with_delay_redelivers_no_earlier_than_delay() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 1);
    publish(&n, b"x");
    let m = c.read_message();
    let start = Instant::now();
    c.cmd(&format!("REQ {} 600", m.id_str()));
    let m2 = c.read_message();
    let el = start.elapsed();
    assert_eq!(m2.id, m.id);
    assert_eq!(m2.attempts, 2);
    assert!(
        el >= Duration::from_millis(600),
        "redelivered after only {el:?}"
    );
    assert!(el < Duration::from_millis(8000), "redelivery took {el:?}");
}

#[test]
fn req_delay_frees_slot_for_other_messages() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 1);
    publish(&n, b"first");
    let m = c.read_message();
    publish(&n, b"second");
    c.cmd(&format!("REQ {} 60000", m.id_str()));
    let m2 = c.read_message();
    assert_eq!(m2.body, b"second");
    let ch = eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["deferred_count"] == 1).then_some(ch)
    });
    assert_eq!(ch["in_flight_count"], 1);
}

#[test]
fn req_delay_above_max_is_clamped_not_an_error() {
    let n = Nsqd::start(&["--max-req-timeout=1s"]);
    let mut c = consumer(&n, None, 1);
    publish(&n, b"x");
    let m = c.read_message();
    let start = Instant::now();
    c.cmd(&format!("REQ {} 3600000", m.id_str()));
    // No error frame; the message comes back after the clamped 1 s.
    let f = c.read_non_heartbeat();
    let el = start.elapsed();
    assert_eq!(
        f.kind,
        FRAME_MESSAGE,
        "expected redelivery, got {:?}",
        f.text()
    );
    let m2 = parse_message(&f.data);
    assert_eq!(m2.id, m.id);
    assert_eq!(m2.attempts, 2);
    assert!(
        el >= Duration::from_millis(990),
        "redelivered after only {el:?}"
    );
    assert!(el < Duration::from_millis(8000), "clamped REQ took {el:?}");
}

#[test]
fn req_huge_delay_with_default_max_is_accepted() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 1);
    publish(&n, b"x");
    let m = c.read_message();
    c.cmd(&format!("REQ {} 99999999999", m.id_str()));
    c.expect_no_frame(QUIET);
    c.probe("other");
}

#[test]
fn req_and_fin_allowed_when_closing() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, None, 2);
    publish(&n, b"a");
    publish(&n, b"b");
    let a = c.read_message();
    let b = c.read_message();
    c.cmd("CLS");
    assert_eq!(c.read_non_heartbeat().text(), "CLOSE_WAIT");
    c.cmd(&format!("TOUCH {}", a.id_str()));
    c.fin(a.id_str());
    c.cmd(&format!("REQ {} 0", b.id_str()));
    // No errors and no redelivery to a closing connection.
    c.expect_no_frame(QUIET);
    c.probe("other");
    let mut d = consumer(&n, None, 1);
    let m = d.read_message();
    assert_eq!(m.id, b.id);
    assert_eq!(m.attempts, 2);
}

// ---------------------------------------------------------------------------------------------
// Message timeout and TOUCH
// ---------------------------------------------------------------------------------------------

#[test]
fn msg_timeout_redelivers_with_attempts_two() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, Some(r#"{"msg_timeout":1000}"#), 1);
    publish(&n, b"slow");
    let m1 = c.read_message();
    let start = Instant::now();
    let m2 = c.read_message();
    let el = start.elapsed();
    assert_eq!(m2.id, m1.id);
    assert_eq!(m2.attempts, 2);
    assert_eq!(m2.timestamp, m1.timestamp);
    assert!(
        el >= Duration::from_millis(900),
        "timed out after only {el:?}"
    );
    assert!(el < Duration::from_millis(8000), "timeout took {el:?}");
    let ch = eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["timeout_count"] == 1).then_some(ch)
    });
    assert_eq!(ch["in_flight_count"], 1);
}

/// Publishes A then B, then subscribes with RDY 1 and a 1 s message timeout; returns the
/// consumer and A as first delivered.
fn two_queued_then_consumer(n: &Nsqd) -> (Conn, Msg) {
    publish(n, b"A");
    publish(n, b"B");
    let mut c = consumer(n, Some(r#"{"msg_timeout":1000}"#), 1);
    let a = c.read_message();
    assert_eq!((a.body.as_slice(), a.attempts), (&b"A"[..], 1));
    (c, a)
}

/// A message put back in the channel's queue waits behind what was already queued there.
fn expect_b_then_a_again(c: &mut Conn, a: &Msg) {
    let b = c.read_message();
    assert_eq!(
        (b.body.as_slice(), b.attempts),
        (&b"B"[..], 1),
        "the queued B comes before A's redelivery"
    );
    c.fin(b.id_str());
    let again = c.read_message();
    assert_eq!((again.id, again.attempts), (a.id, 2));
    assert_eq!(
        (again.timestamp, again.body.as_slice()),
        (a.timestamp, &b"A"[..])
    );
    c.fin(again.id_str());
    c.expect_no_frame(QUIET);
}

#[test]
fn timed_out_message_goes_behind_the_queued_ones() {
    let n = Nsqd::start(&[]);
    let (mut c, a) = two_queued_then_consumer(&n);
    expect_b_then_a_again(&mut c, &a);
}

#[test]
fn req_zero_goes_behind_the_queued_ones() {
    let n = Nsqd::start(&[]);
    let (mut c, a) = two_queued_then_consumer(&n);
    c.cmd(&format!("REQ {} 0", a.id_str()));
    expect_b_then_a_again(&mut c, &a);
}

#[test]
fn msg_timeout_flag_default_applies_without_identify() {
    let n = Nsqd::start(&["--msg-timeout=1s"]);
    let mut c = consumer(&n, None, 1);
    publish(&n, b"x");
    let m1 = c.read_message();
    let start = Instant::now();
    let m2 = c.read_message();
    assert_eq!(m2.id, m1.id);
    assert_eq!(m2.attempts, 2);
    assert!(start.elapsed() >= Duration::from_millis(900));
}

#[test]
fn late_fin_after_timeout_fails() {
    let n = Nsqd::start(&[]);
    let mut slow = consumer(&n, Some(r#"{"msg_timeout":1000}"#), 1);
    publish(&n, b"x");
    let m = slow.read_message();
    // Take the message away: RDY 0 so it cannot come back to us, then another consumer picks
    // it up after the timeout.
    slow.rdy(0);
    let mut other = consumer(&n, None, 1);
    let m2 = other.read_message();
    assert_eq!(m2.id, m.id);
    assert_eq!(m2.attempts, 2);
    slow.fin(m.id_str());
    slow.expect_error(&format!(
        "E_FIN_FAILED FIN {} failed client does not own message",
        m.id_str()
    ));
    slow.probe("other");
}

#[test]
fn disconnect_does_not_requeue_immediately() {
    let n = Nsqd::start(&[]);
    let mut a = consumer(&n, Some(r#"{"msg_timeout":1000}"#), 1);
    publish(&n, b"x");
    let m = a.read_message();
    let start = Instant::now();
    drop(a);
    let mut b = consumer(&n, None, 1);
    let m2 = b.read_message();
    let el = start.elapsed();
    assert_eq!(m2.id, m.id);
    assert_eq!(m2.attempts, 2);
    assert!(
        el >= Duration::from_millis(800),
        "requeued after only {el:?}"
    );
}

/// The in-flight scanner may only pick up a channel after its periodic channel-list refresh (5 s),
/// so deadline tests keep going until well past that point.
const SCANNER_SETTLED: Duration = Duration::from_millis(6500);

#[test]
fn touch_extends_the_deadline() {
    let started = Instant::now();
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, Some(r#"{"msg_timeout":1000}"#), 1);
    publish(&n, b"x");
    let m = c.read_message();
    let delivered = Instant::now();
    // Keep touching every 300 ms: the message must never time out.
    while started.elapsed() < SCANNER_SETTLED {
        c.expect_no_frame(Duration::from_millis(300));
        c.cmd(&format!("TOUCH {}", m.id_str()));
    }
    c.expect_no_frame(Duration::from_millis(300));
    assert!(delivered.elapsed() > Duration::from_millis(3000));
    c.fin(m.id_str());
    c.probe("other");
    let ch = n.channel_stats("t", "c").unwrap();
    assert_eq!(ch["timeout_count"], 0);
    assert_eq!(ch["in_flight_count"], 0);
}

#[test]
fn touch_cannot_extend_beyond_max_msg_timeout() {
    let n = Nsqd::start(&["--max-msg-timeout=1s"]);
    let mut c = consumer(&n, Some(r#"{"msg_timeout":1000}"#), 1);
    publish(&n, b"x");
    let m = c.read_message();
    let start = Instant::now();
    // Touching every 300 ms would keep the message forever without the cap at
    // delivery + max-msg-timeout.
    let mut redelivered = None;
    while start.elapsed() < Duration::from_millis(8000) {
        if let Some(f) = c.try_read_frame(Duration::from_millis(300)) {
            if f.kind == FRAME_MESSAGE {
                redelivered = Some(parse_message(&f.data));
                break;
            }
            // Once expired, TOUCH fails non-fatally until the message is delivered again.
            assert_eq!(f.kind, FRAME_ERROR, "unexpected frame {:?}", f.text());
            assert_eq!(
                f.text(),
                format!(
                    "E_TOUCH_FAILED TOUCH {} failed ID not in flight",
                    m.id_str()
                )
            );
            continue;
        }
        c.cmd(&format!("TOUCH {}", m.id_str()));
    }
    let el = start.elapsed();
    let m2 = redelivered
        .unwrap_or_else(|| panic!("TOUCH extended the deadline beyond --max-msg-timeout"));
    assert_eq!(m2.id, m.id);
    assert_eq!(m2.attempts, 2);
    assert!(
        el >= Duration::from_millis(900),
        "redelivered after only {el:?}"
    );
}

#[test]
fn touch_after_timeout_fails_not_in_flight() {
    let n = Nsqd::start(&[]);
    let mut a = consumer(&n, Some(r#"{"msg_timeout":1000}"#), 1);
    publish(&n, b"x");
    let m = a.read_message();
    a.rdy(0);
    // Wait for the timeout to be processed (visible in stats), nobody else can take it.
    eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["timeout_count"] == 1).then_some(())
    });
    a.cmd(&format!("TOUCH {}", m.id_str()));
    a.expect_error(&format!(
        "E_TOUCH_FAILED TOUCH {} failed ID not in flight",
        m.id_str()
    ));
    a.cmd(&format!("REQ {} 0", m.id_str()));
    a.expect_error(&format!(
        "E_REQ_FAILED REQ {} failed ID not in flight",
        m.id_str()
    ));
    a.probe("other");
}
