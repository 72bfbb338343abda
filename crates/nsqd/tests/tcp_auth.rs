//! TCP protocol V2: AUTH while no auth server is configured (body framing, state, the disabled
//! error) and the `auth_required` advertisement.

mod common;

use common::*;
use std::time::Duration;

fn be(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

fn send_raw(c: &mut Conn, line: &str, rest: &[u8]) {
    let mut v = line.as_bytes().to_vec();
    v.push(b'\n');
    v.extend_from_slice(rest);
    c.send(&v);
}

// ---------------------------------------------------------------------------------------------
// Auth disabled (no --auth-http-address)
// ---------------------------------------------------------------------------------------------

#[test]
fn auth_disabled() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd_body("AUTH", b"secret");
    c.expect_fatal("E_AUTH_DISABLED AUTH disabled");
}

#[test]
fn auth_required_false_without_auth_servers() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"feature_negotiation":true}"#);
    let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
    assert_eq!(v["auth_required"], false);
    // Publishing and subscribing need no AUTH.
    c.probe("t");
    c.subscribe("t", "c");
}

#[test]
fn auth_invalid_number_of_parameters() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("AUTH secret");
    c.expect_fatal("E_INVALID AUTH invalid number of parameters");
    let mut c = n.connect();
    c.cmd("AUTH ");
    c.expect_fatal("E_INVALID AUTH invalid number of parameters");
}

#[test]
fn auth_in_wrong_state() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("AUTH");
    c.expect_fatal("E_INVALID cannot AUTH in current state");

    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("CLS");
    assert_eq!(c.read_non_heartbeat().text(), "CLOSE_WAIT");
    c.cmd("AUTH x");
    c.expect_fatal("E_INVALID cannot AUTH in current state");
}

#[test]
fn auth_body_size_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    send_raw(&mut c, "AUTH", &[0, 0, 0]);
    c.shutdown_write();
    c.expect_fatal("E_BAD_BODY AUTH failed to read body size");
}

#[test]
fn auth_body_size_errors() {
    let n = Nsqd::start(&["--max-body-size=100"]);
    let mut c = n.connect();
    send_raw(&mut c, "AUTH", &be(101));
    c.expect_fatal("E_BAD_BODY AUTH body too big 101 > 100");

    let mut c = n.connect();
    send_raw(&mut c, "AUTH", &be(0));
    c.expect_fatal("E_BAD_BODY AUTH invalid body size 0");

    let mut c = n.connect();
    send_raw(&mut c, "AUTH", &be(0xFFFF_FFFF));
    c.expect_fatal("E_BAD_BODY AUTH invalid body size -1");
}

#[test]
fn auth_body_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut rest = be(10).to_vec();
    rest.extend_from_slice(b"abc");
    send_raw(&mut c, "AUTH", &rest);
    c.shutdown_write();
    c.expect_fatal("E_BAD_BODY AUTH failed to read body");
}

#[test]
fn auth_body_read_before_disabled_check() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    // The body must be consumed (the error comes only once it is complete).
    c.send(b"AUTH\n\x00\x00\x00\x04ab");
    c.expect_no_frame(Duration::from_millis(300));
    c.send(b"cd");
    c.expect_fatal("E_AUTH_DISABLED AUTH disabled");
}

#[test]
fn auth_required_advertised() {
    // Advertising needs only the flag; talking to the auth server is not exercised here.
    let n = Nsqd::start(&["--auth-http-address=127.0.0.1:1"]);
    let mut c = n.connect();
    let f = c.identify(r#"{"feature_negotiation":true}"#);
    let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
    assert_eq!(v["auth_required"], true);
}
