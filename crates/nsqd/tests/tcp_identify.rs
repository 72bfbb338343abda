//! TCP protocol V2: IDENTIFY (fields, validation, JSON decoding, response, body framing, state).

mod common;

use common::*;
use std::time::Duration;

const DEFAULT_JSON: &str = r#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250,"topology_region":"","topology_zone":""}"#;

fn identify_fatal(n: &Nsqd, json: &str, err: &str) {
    let mut c = n.connect();
    c.cmd_body("IDENTIFY", json.as_bytes());
    c.expect_fatal(err);
}

fn identify_json(n: &Nsqd, json: &str) -> serde_json::Value {
    let mut c = n.connect();
    let f = c.identify(json);
    assert_eq!(f.kind, FRAME_RESPONSE, "IDENTIFY {json} -> {:?}", f.text());
    serde_json::from_slice(&f.data).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", f.text()))
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

#[test]
fn without_feature_negotiation_replies_ok() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"client_id":"a","hostname":"h","user_agent":"test/1.0"}"#);
    assert_eq!((f.kind, f.text()), (FRAME_RESPONSE, "OK".to_string()));
    c.probe("t");

    let mut c = n.connect();
    let f = c.identify(r#"{"feature_negotiation":false,"heartbeat_interval":5000}"#);
    assert_eq!((f.kind, f.text()), (FRAME_RESPONSE, "OK".to_string()));
    c.probe("t");

    let mut c = n.connect();
    let f = c.identify("{}");
    assert_eq!((f.kind, f.text()), (FRAME_RESPONSE, "OK".to_string()));
    c.probe("t");
}

#[test]
fn feature_negotiation_default_response_exact_bytes() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd_body("IDENTIFY", br#"{"feature_negotiation":true}"#);
    let f = c.read_frame();
    assert_eq!(f.kind, FRAME_RESPONSE);
    assert_eq!(f.text(), DEFAULT_JSON);
    // No further frame follows the JSON when nothing is upgraded.
    c.expect_no_frame(Duration::from_millis(300));
    c.probe("t");
}

#[test]
fn feature_negotiation_reflects_negotiated_values_exact_bytes() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(
        r#"{"feature_negotiation":true,"heartbeat_interval":1000,"output_buffer_size":64,"output_buffer_timeout":25,"sample_rate":99,"msg_timeout":1000}"#,
    );
    assert_eq!(
        f.text(),
        r#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":1000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":99,"auth_required":false,"output_buffer_size":64,"output_buffer_timeout":25,"topology_region":"","topology_zone":""}"#
    );
}

#[test]
fn feature_negotiation_reflects_server_flags() {
    let n = Nsqd::start(&[
        "--max-rdy-count=100",
        "--max-msg-timeout=10m",
        "--msg-timeout=30s",
        "--max-deflate-level=4",
        "--topology-region=r1",
        "--topology-zone=z1",
        "--output-buffer-timeout=100ms",
    ]);
    let mut c = n.connect();
    let f = c.identify(r#"{"feature_negotiation":true,"deflate_level":9}"#);
    assert_eq!(
        f.text(),
        r#"{"max_rdy_count":100,"version":"1.3.0","max_msg_timeout":600000,"msg_timeout":30000,"tls_v1":false,"deflate":false,"deflate_level":4,"max_deflate_level":4,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":100,"topology_region":"r1","topology_zone":"z1"}"#
    );
}

#[test]
fn max_msg_timeout_bounds_identify_msg_timeout() {
    let n = Nsqd::start(&["--max-msg-timeout=10m"]);
    let v = identify_json(&n, r#"{"feature_negotiation":true,"msg_timeout":600000}"#);
    assert_eq!(v["msg_timeout"], 600000);
    identify_fatal(
        &n,
        r#"{"msg_timeout":600001}"#,
        "E_BAD_BODY IDENTIFY msg timeout (600001) is invalid",
    );
}

#[test]
fn output_buffer_size_minus_one_means_unbuffered() {
    let n = Nsqd::start(&[]);
    let v = identify_json(
        &n,
        r#"{"feature_negotiation":true,"output_buffer_size":-1}"#,
    );
    assert_eq!(v["output_buffer_size"], 1);
    assert_eq!(v["output_buffer_timeout"], 0);
    // -1 also forces the timeout to 0 even when one was requested.
    let v = identify_json(
        &n,
        r#"{"feature_negotiation":true,"output_buffer_size":-1,"output_buffer_timeout":100}"#,
    );
    assert_eq!(v["output_buffer_size"], 1);
    assert_eq!(v["output_buffer_timeout"], 0);
}

#[test]
fn output_buffer_timeout_minus_one_disables_timer() {
    let n = Nsqd::start(&[]);
    let v = identify_json(
        &n,
        r#"{"feature_negotiation":true,"output_buffer_timeout":-1}"#,
    );
    assert_eq!(v["output_buffer_timeout"], 0);
    assert_eq!(v["output_buffer_size"], 16384);
}

#[test]
fn zero_values_keep_defaults() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(
        r#"{"feature_negotiation":true,"heartbeat_interval":0,"output_buffer_size":0,"output_buffer_timeout":0,"sample_rate":0,"msg_timeout":0,"deflate_level":0}"#,
    );
    assert_eq!(f.text(), DEFAULT_JSON);
}

#[test]
fn boundary_values_accepted() {
    let n = Nsqd::start(&[]);
    let v = identify_json(
        &n,
        r#"{"feature_negotiation":true,"heartbeat_interval":60000,"output_buffer_size":65536,"output_buffer_timeout":30000,"sample_rate":1,"msg_timeout":900000}"#,
    );
    assert_eq!(v["output_buffer_size"], 65536);
    assert_eq!(v["output_buffer_timeout"], 30000);
    assert_eq!(v["sample_rate"], 1);
    assert_eq!(v["msg_timeout"], 900000);
    let v = identify_json(
        &n,
        r#"{"feature_negotiation":true,"heartbeat_interval":-1}"#,
    );
    assert_eq!(v["max_rdy_count"], 2500);
}

#[test]
fn tls_requested_without_a_certificate_is_not_negotiated_and_stream_stays_plain() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    // IDENTIFY and a PUB in the same write: the PUB reply must arrive as a plain frame.
    let mut buf = cmd_bytes(
        "IDENTIFY",
        Some(br#"{"feature_negotiation":true,"tls_v1":true}"#),
    );
    buf.extend(cmd_bytes("PUB t", Some(b"x")));
    c.send(&buf);
    let f = c.read_frame();
    let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
    assert_eq!(v["tls_v1"], false);
    assert_eq!(c.read_exact_bytes(10), encode_frame(FRAME_RESPONSE, b"OK"));
}

#[test]
fn compression_disabled_by_flags_is_not_negotiated() {
    let n = Nsqd::start(&["--snappy=false", "--deflate=false"]);
    let mut c = n.connect();
    let mut buf = cmd_bytes(
        "IDENTIFY",
        Some(br#"{"feature_negotiation":true,"snappy":true,"deflate":true,"deflate_level":3}"#),
    );
    buf.extend(cmd_bytes("PUB t", Some(b"x")));
    c.send(&buf);
    let f = c.read_frame();
    assert_eq!(
        f.text(),
        r#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250,"topology_region":"","topology_zone":""}"#
    );
    assert_eq!(c.read_exact_bytes(10), encode_frame(FRAME_RESPONSE, b"OK"));
}

#[test]
fn deflate_level_is_default_when_deflate_not_negotiated() {
    let n = Nsqd::start(&[]);
    // The requested level only counts when deflate is actually negotiated.
    let v = identify_json(&n, r#"{"feature_negotiation":true,"deflate_level":3}"#);
    assert_eq!(v["deflate"], false);
    assert_eq!(v["deflate_level"], 6);
}

#[test]
fn both_compressions_requested_is_refused() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd_body(
        "IDENTIFY",
        br#"{"feature_negotiation":true,"snappy":true,"deflate":true}"#,
    );
    c.expect_fatal("E_IDENTIFY_FAILED cannot enable both deflate and snappy compression");
}

#[test]
fn compression_requested_without_feature_negotiation_is_plain_ok() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut buf = cmd_bytes(
        "IDENTIFY",
        Some(br#"{"snappy":true,"deflate":true,"tls_v1":true}"#),
    );
    buf.extend(cmd_bytes("PUB t", Some(b"x")));
    c.send(&buf);
    let ok = encode_frame(FRAME_RESPONSE, b"OK");
    let mut want = ok.clone();
    want.extend(ok);
    assert_eq!(c.read_exact_bytes(20), want);
}

// ---------------------------------------------------------------------------------------------
// Validation reasons
// ---------------------------------------------------------------------------------------------

#[test]
fn heartbeat_interval_validation() {
    let n = Nsqd::start(&[]);
    for v in ["999", "1", "-2", "60001", "-1000"] {
        identify_fatal(
            &n,
            &format!(r#"{{"heartbeat_interval":{v}}}"#),
            &format!("E_BAD_BODY IDENTIFY heartbeat interval ({v}) is invalid"),
        );
    }
}

#[test]
fn max_heartbeat_interval_flag() {
    let n = Nsqd::start(&["--max-heartbeat-interval=2s"]);
    identify_fatal(
        &n,
        r#"{"heartbeat_interval":2001}"#,
        "E_BAD_BODY IDENTIFY heartbeat interval (2001) is invalid",
    );
    let mut c = n.connect();
    let f = c.identify(r#"{"heartbeat_interval":2000}"#);
    assert_eq!(f.text(), "OK");
}

#[test]
fn output_buffer_timeout_validation() {
    let n = Nsqd::start(&[]);
    for v in ["24", "1", "-2", "30001"] {
        identify_fatal(
            &n,
            &format!(r#"{{"output_buffer_timeout":{v}}}"#),
            &format!("E_BAD_BODY IDENTIFY output buffer timeout ({v}) is invalid"),
        );
    }
}

#[test]
fn output_buffer_timeout_bounds_from_flags() {
    let n = Nsqd::start(&[
        "--min-output-buffer-timeout=50ms",
        "--max-output-buffer-timeout=1s",
    ]);
    identify_fatal(
        &n,
        r#"{"output_buffer_timeout":49}"#,
        "E_BAD_BODY IDENTIFY output buffer timeout (49) is invalid",
    );
    identify_fatal(
        &n,
        r#"{"output_buffer_timeout":1001}"#,
        "E_BAD_BODY IDENTIFY output buffer timeout (1001) is invalid",
    );
    let v = identify_json(
        &n,
        r#"{"feature_negotiation":true,"output_buffer_timeout":50}"#,
    );
    assert_eq!(v["output_buffer_timeout"], 50);
    let v = identify_json(
        &n,
        r#"{"feature_negotiation":true,"output_buffer_timeout":1000}"#,
    );
    assert_eq!(v["output_buffer_timeout"], 1000);
}

#[test]
fn output_buffer_size_validation() {
    let n = Nsqd::start(&[]);
    for v in ["63", "1", "-2", "65537"] {
        identify_fatal(
            &n,
            &format!(r#"{{"output_buffer_size":{v}}}"#),
            &format!("E_BAD_BODY IDENTIFY output buffer size ({v}) is invalid"),
        );
    }
}

#[test]
fn max_output_buffer_size_flag() {
    let n = Nsqd::start(&["--max-output-buffer-size=1000"]);
    identify_fatal(
        &n,
        r#"{"output_buffer_size":1001}"#,
        "E_BAD_BODY IDENTIFY output buffer size (1001) is invalid",
    );
    let v = identify_json(
        &n,
        r#"{"feature_negotiation":true,"output_buffer_size":1000}"#,
    );
    assert_eq!(v["output_buffer_size"], 1000);
}

#[test]
fn sample_rate_validation() {
    let n = Nsqd::start(&[]);
    for v in ["100", "-1", "1000"] {
        identify_fatal(
            &n,
            &format!(r#"{{"sample_rate":{v}}}"#),
            &format!("E_BAD_BODY IDENTIFY sample rate ({v}) is invalid"),
        );
    }
}

#[test]
fn msg_timeout_validation() {
    let n = Nsqd::start(&[]);
    for v in ["999", "1", "-1", "900001"] {
        identify_fatal(
            &n,
            &format!(r#"{{"msg_timeout":{v}}}"#),
            &format!("E_BAD_BODY IDENTIFY msg timeout ({v}) is invalid"),
        );
    }
}

#[test]
fn validation_order() {
    let n = Nsqd::start(&[]);
    identify_fatal(
        &n,
        r#"{"msg_timeout":1,"sample_rate":100,"output_buffer_size":1,"output_buffer_timeout":1,"heartbeat_interval":1}"#,
        "E_BAD_BODY IDENTIFY heartbeat interval (1) is invalid",
    );
    identify_fatal(
        &n,
        r#"{"msg_timeout":1,"sample_rate":100,"output_buffer_size":1,"output_buffer_timeout":1}"#,
        "E_BAD_BODY IDENTIFY output buffer timeout (1) is invalid",
    );
    identify_fatal(
        &n,
        r#"{"msg_timeout":1,"sample_rate":100,"output_buffer_size":1}"#,
        "E_BAD_BODY IDENTIFY output buffer size (1) is invalid",
    );
    identify_fatal(
        &n,
        r#"{"msg_timeout":1,"sample_rate":100}"#,
        "E_BAD_BODY IDENTIFY sample rate (100) is invalid",
    );
    identify_fatal(
        &n,
        r#"{"msg_timeout":1}"#,
        "E_BAD_BODY IDENTIFY msg timeout (1) is invalid",
    );
}

#[test]
fn validation_happens_without_feature_negotiation_too() {
    let n = Nsqd::start(&[]);
    identify_fatal(
        &n,
        r#"{"feature_negotiation":false,"sample_rate":100}"#,
        "E_BAD_BODY IDENTIFY sample rate (100) is invalid",
    );
}

// ---------------------------------------------------------------------------------------------
// JSON decoding
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_json_is_decode_error() {
    let n = Nsqd::start(&[]);
    for body in [
        "not json",
        "{",
        r#"{"client_id":"a""#,
        r#"{"client_id":"a"} trailing"#,
        "[1,2,3]",
        r#""a string""#,
        "123",
        "true",
    ] {
        identify_fatal(&n, body, "E_BAD_BODY IDENTIFY failed to decode JSON body");
    }
}

#[test]
fn wrong_json_types_are_decode_errors() {
    let n = Nsqd::start(&[]);
    for body in [
        r#"{"heartbeat_interval":"1000"}"#,
        r#"{"heartbeat_interval":1000.5}"#,
        r#"{"heartbeat_interval":true}"#,
        r#"{"msg_timeout":"0"}"#,
        r#"{"output_buffer_size":[64]}"#,
        r#"{"output_buffer_timeout":{}}"#,
        r#"{"sample_rate":2147483648}"#,
        r#"{"sample_rate":1.5}"#,
        r#"{"deflate_level":"6"}"#,
        r#"{"feature_negotiation":"true"}"#,
        r#"{"feature_negotiation":1}"#,
        r#"{"tls_v1":"false"}"#,
        r#"{"snappy":0}"#,
        r#"{"deflate":"no"}"#,
        r#"{"client_id":123}"#,
        r#"{"hostname":false}"#,
        r#"{"user_agent":["x"]}"#,
    ] {
        identify_fatal(&n, body, "E_BAD_BODY IDENTIFY failed to decode JSON body");
    }
}

#[test]
fn wrong_json_types_for_topology_fields_are_decode_errors() {
    let n = Nsqd::start(&[]);
    for body in [r#"{"topology_region":1}"#, r#"{"topology_zone":{}}"#] {
        identify_fatal(&n, body, "E_BAD_BODY IDENTIFY failed to decode JSON body");
    }
}

#[test]
fn null_values_are_treated_as_absent() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(
        r#"{"feature_negotiation":true,"client_id":null,"hostname":null,"user_agent":null,"heartbeat_interval":null,"output_buffer_size":null,"output_buffer_timeout":null,"tls_v1":null,"snappy":null,"deflate":null,"deflate_level":null,"sample_rate":null,"msg_timeout":null,"topology_region":null,"topology_zone":null}"#,
    );
    assert_eq!(f.text(), DEFAULT_JSON);
    c.probe("t");
}

#[test]
fn null_feature_negotiation_means_ok() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"feature_negotiation":null}"#);
    assert_eq!(f.text(), "OK");
}

#[test]
fn unknown_keys_are_ignored() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(
        r#"{"short_id":"host","long_id":"host.example","feature_negotiation":true,"whatever":{"nested":[1,2,{"a":null}]},"n":1.5}"#,
    );
    assert_eq!(f.text(), DEFAULT_JSON);
}

#[test]
fn keys_match_case_insensitively() {
    let n = Nsqd::start(&[]);
    let v = identify_json(
        &n,
        r#"{"Feature_Negotiation":true,"MSG_TIMEOUT":5000,"Sample_Rate":7}"#,
    );
    assert_eq!(v["msg_timeout"], 5000);
    assert_eq!(v["sample_rate"], 7);
}

// ---------------------------------------------------------------------------------------------
// Body framing
// ---------------------------------------------------------------------------------------------

#[test]
fn body_size_zero_invalid() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut v = b"IDENTIFY\n".to_vec();
    v.extend_from_slice(&0u32.to_be_bytes());
    c.send(&v);
    c.expect_fatal("E_BAD_BODY IDENTIFY invalid body size 0");
}

#[test]
fn body_size_high_bit_is_negative() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut v = b"IDENTIFY\n".to_vec();
    v.extend_from_slice(&0xFFFF_FFFFu32.to_be_bytes());
    c.send(&v);
    c.expect_fatal("E_BAD_BODY IDENTIFY invalid body size -1");

    let mut c = n.connect();
    let mut v = b"IDENTIFY\n".to_vec();
    v.extend_from_slice(&0x8000_0000u32.to_be_bytes());
    c.send(&v);
    c.expect_fatal("E_BAD_BODY IDENTIFY invalid body size -2147483648");
}

#[test]
fn body_too_big_default_limit() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut v = b"IDENTIFY\n".to_vec();
    v.extend_from_slice(&5_242_881u32.to_be_bytes());
    c.send(&v);
    c.expect_fatal("E_BAD_BODY IDENTIFY body too big 5242881 > 5242880");
}

#[test]
fn body_too_big_with_flag() {
    let n = Nsqd::start(&["--max-body-size=100"]);
    let mut c = n.connect();
    let mut v = b"IDENTIFY\n".to_vec();
    v.extend_from_slice(&101u32.to_be_bytes());
    c.send(&v);
    c.expect_fatal("E_BAD_BODY IDENTIFY body too big 101 > 100");

    // Exactly at the limit is fine.
    let mut c = n.connect();
    let mut body = br#"{"client_id":""#.to_vec();
    while body.len() < 98 {
        body.push(b'x');
    }
    body.extend_from_slice(br#""}"#);
    assert_eq!(body.len(), 100);
    let f = c.identify(std::str::from_utf8(&body).unwrap());
    assert_eq!(f.text(), "OK");
}

#[test]
fn body_size_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.send(b"IDENTIFY\n\x00\x00");
    c.shutdown_write();
    c.expect_fatal("E_BAD_BODY IDENTIFY failed to read body size");
}

#[test]
fn body_unreadable() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut v = b"IDENTIFY\n".to_vec();
    v.extend_from_slice(&20u32.to_be_bytes());
    v.extend_from_slice(b"{\"client");
    c.send(&v);
    c.shutdown_write();
    c.expect_fatal("E_BAD_BODY IDENTIFY failed to read body");
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

#[test]
fn identify_when_subscribed_is_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd_body("IDENTIFY", b"{}");
    c.expect_fatal("E_INVALID cannot IDENTIFY in current state");
}

#[test]
fn identify_state_checked_before_body_is_read() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    // No body at all: the state error must come without waiting for one.
    c.cmd("IDENTIFY");
    c.expect_fatal("E_INVALID cannot IDENTIFY in current state");
}

#[test]
fn identify_when_closing_is_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("CLS");
    let f = c.read_non_heartbeat();
    assert_eq!(f.text(), "CLOSE_WAIT");
    c.cmd_body("IDENTIFY", b"{}");
    c.expect_fatal("E_INVALID cannot IDENTIFY in current state");
}

#[test]
fn identify_then_publish_and_subscribe() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(
        r#"{"client_id":"c1","hostname":"h1","user_agent":"ua/1","feature_negotiation":true}"#,
    );
    assert!(f.data.starts_with(b"{"));
    c.probe("t");
    c.subscribe("t", "c");
    c.rdy(1);
    let m = c.read_message();
    assert_eq!(m.body, b"probe");
}

// ---------------------------------------------------------------------------------------------
// Identity fields and applied settings (observed through /stats)
// ---------------------------------------------------------------------------------------------

fn client_stats(n: &Nsqd, topic: &str, channel: &str) -> serde_json::Value {
    eventually(|| {
        let ch = n.channel_stats(topic, channel)?;
        let clients = ch["clients"].as_array()?.clone();
        clients.into_iter().next()
    })
}

#[test]
fn identity_fields_are_recorded() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(
        r#"{"client_id":"my-client","hostname":"my-host.example","user_agent":"go-nsq/1.1.0","sample_rate":42}"#,
    );
    assert_eq!(f.text(), "OK");
    c.subscribe("t", "c");
    let cl = client_stats(&n, "t", "c");
    assert_eq!(cl["client_id"], "my-client");
    assert_eq!(cl["hostname"], "my-host.example");
    assert_eq!(cl["user_agent"], "go-nsq/1.1.0");
    assert_eq!(cl["sample_rate"], 42);
    assert_eq!(cl["state"], 3);
    assert_eq!(cl["deflate"], false);
    assert_eq!(cl["snappy"], false);
}

#[test]
fn topology_fields_are_recorded() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"topology_region":"reg","topology_zone":"zon"}"#);
    assert_eq!(f.text(), "OK");
    c.subscribe("t", "c");
    let cl = client_stats(&n, "t", "c");
    assert_eq!(cl["topology_region"], "reg");
    assert_eq!(cl["topology_zone"], "zon");
}

#[test]
fn client_id_and_hostname_default_to_peer_ip_before_identify() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    let cl = client_stats(&n, "t", "c");
    assert_eq!(cl["client_id"], "127.0.0.1");
    assert_eq!(cl["hostname"], "127.0.0.1");
}

#[test]
fn identify_overwrites_identity_fields_unconditionally() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"user_agent":"x"}"#);
    assert_eq!(f.text(), "OK");
    c.subscribe("t", "c");
    let cl = client_stats(&n, "t", "c");
    assert_eq!(cl["client_id"], "");
    assert_eq!(cl["hostname"], "");
    assert_eq!(cl["user_agent"], "x");
}

#[test]
fn sample_rate_drops_most_messages() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"sample_rate":1}"#);
    assert_eq!(f.text(), "OK");
    c.subscribe("t", "c");
    c.rdy(500);
    let bodies: Vec<Vec<u8>> = (0..300).map(|i| format!("m{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    let mut p = n.connect();
    p.cmd_body("MPUB t", &Conn::mpub_body(&refs));
    p.expect_ok();
    // All 300 are consumed from the channel (dropped ones are not requeued)...
    eventually(|| {
        let ch = n.channel_stats("t", "c")?;
        (ch["depth"] == 0).then_some(())
    });
    // ...but only about 2% are delivered.
    let mut got = 0;
    while let Some(f) = c.try_read_frame(Duration::from_millis(600)) {
        if f.kind == FRAME_MESSAGE {
            got += 1;
        }
    }
    assert!(got < 40, "sample_rate 1 delivered {got} of 300");
    let ch = n.channel_stats("t", "c").unwrap();
    assert_eq!(ch["in_flight_count"], got);
}

#[test]
fn second_identify_in_init_is_applied_or_rejected_fatally() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    assert_eq!(c.identify(r#"{"client_id":"a"}"#).text(), "OK");
    c.cmd_body(
        "IDENTIFY",
        br#"{"client_id":"b","feature_negotiation":true}"#,
    );
    let f = c.read_non_heartbeat();
    if f.kind == FRAME_ERROR {
        assert_eq!(f.text(), "E_INVALID cannot IDENTIFY in current state");
        c.expect_closed();
    } else {
        assert_eq!(f.kind, FRAME_RESPONSE);
        let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
        assert_eq!(v["version"], "1.3.0");
        c.probe("t");
    }
}
