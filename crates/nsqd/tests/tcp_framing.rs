//! TCP protocol V2: connection bootstrap (magic), frame layout on the wire, command-line parsing,
//! unknown commands, line length limit, NOP and pipelining.

mod common;

use common::*;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Magic
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_magic_gets_bare_e_bad_protocol_and_close() {
    let n = Nsqd::start(&[]);
    let mut c = Conn::connect_raw(&n);
    c.send(b"  V1");
    let raw = c.read_to_close();
    // size 18 = 4 + len("E_BAD_PROTOCOL"), type 1 (error), no description.
    let mut want = vec![0, 0, 0, 0x12, 0, 0, 0, 1];
    want.extend_from_slice(b"E_BAD_PROTOCOL");
    assert_eq!(raw, want);
}

#[test]
fn bad_magic_variants_all_rejected() {
    let n = Nsqd::start(&[]);
    for magic in [&b"V2  "[..], b"  v2", b"HTTP", b"\0\0\0\0", b" V2\n"] {
        let mut c = Conn::connect_raw(&n);
        c.send(magic);
        let raw = c.read_to_close();
        assert_eq!(
            raw,
            encode_frame(FRAME_ERROR, b"E_BAD_PROTOCOL"),
            "magic {magic:?}"
        );
    }
}

#[test]
fn eof_before_magic_closes_silently() {
    let n = Nsqd::start(&[]);
    let mut c = Conn::connect_raw(&n);
    c.send(b"  ");
    c.shutdown_write();
    let raw = c.read_to_close();
    assert!(raw.is_empty(), "expected silent close, got {raw:?}");
    // The server is still fine afterwards.
    let mut c2 = n.connect();
    c2.probe("after_eof");
}

#[test]
fn immediate_disconnect_does_not_hurt_server() {
    let n = Nsqd::start(&[]);
    for _ in 0..5 {
        let c = Conn::connect_raw(&n);
        drop(c);
    }
    let mut c = n.connect();
    c.probe("still_alive");
}

#[test]
fn no_greeting_after_magic() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.expect_no_frame(Duration::from_millis(300));
    c.probe("t");
}

#[test]
fn magic_and_commands_in_same_write() {
    let n = Nsqd::start(&[]);
    let mut c = Conn::connect_raw(&n);
    let mut buf = b"  V2".to_vec();
    buf.extend(cmd_bytes("PUB t", Some(b"x")));
    c.send(&buf);
    c.expect_ok();
}

// ---------------------------------------------------------------------------------------------
// Frame layout
// ---------------------------------------------------------------------------------------------

#[test]
fn ok_frame_exact_bytes() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd_body("PUB t", b"hello");
    assert_eq!(
        c.read_exact_bytes(10),
        vec![0, 0, 0, 6, 0, 0, 0, 0, b'O', b'K']
    );
    c.expect_no_frame(Duration::from_millis(200));
}

#[test]
fn error_frame_exact_bytes() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("FOO");
    let raw = c.read_to_close();
    let text = b"E_INVALID invalid command FOO";
    let mut want = vec![0, 0, 0, (4 + text.len()) as u8, 0, 0, 0, 1];
    want.extend_from_slice(text);
    assert_eq!(want[3], 0x21);
    assert_eq!(raw, want);
}

#[test]
fn message_frame_layout() {
    let n = Nsqd::start(&[]);
    let mut sub = n.connect();
    sub.subscribe("t", "c");
    sub.rdy(1);
    let body = b"some body bytes \x00\x01\xff";
    let before = now_ns();
    let mut p = n.connect();
    p.publish("t", body);
    let after = now_ns();

    let hdr = sub.read_exact_bytes(8);
    let size = u32::from_be_bytes(hdr[0..4].try_into().unwrap()) as usize;
    let kind = u32::from_be_bytes(hdr[4..8].try_into().unwrap());
    assert_eq!(kind, 2, "frame type must be message");
    assert_eq!(size, 30 + body.len(), "size field = 4 + 26 + body");
    let d = sub.read_exact_bytes(size - 4);
    let ts = i64::from_be_bytes(d[0..8].try_into().unwrap());
    let attempts = u16::from_be_bytes(d[8..10].try_into().unwrap());
    let id = &d[10..26];
    assert!(
        ts >= before - 1_000_000_000 && ts <= after + 1_000_000_000,
        "timestamp {ts} not in [{before},{after}]"
    );
    assert_eq!(attempts, 1);
    assert!(is_lower_hex16(id), "id {:?}", String::from_utf8_lossy(id));
    assert_eq!(&d[26..], body);
}

#[test]
fn response_frames_for_multiple_commands_are_exact_stream() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut buf = cmd_bytes("PUB t", Some(b"a"));
    buf.extend(cmd_bytes("NOP", None));
    buf.extend(cmd_bytes("PUB t", Some(b"b")));
    c.send(&buf);
    let ok = encode_frame(FRAME_RESPONSE, b"OK");
    let mut want = ok.clone();
    want.extend(ok);
    assert_eq!(c.read_exact_bytes(20), want);
}

// ---------------------------------------------------------------------------------------------
// Command parsing
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_line_is_fatal_invalid_command_with_trailing_space() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.send(b"\n");
    let raw = c.read_to_close();
    assert_eq!(
        raw,
        encode_frame(FRAME_ERROR, b"E_INVALID invalid command ")
    );
}

#[test]
fn crlf_only_line_is_empty_command() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.send(b"\r\n");
    c.expect_fatal("E_INVALID invalid command ");
}

#[test]
fn unknown_command_fatal() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("FOO bar baz");
    c.expect_fatal("E_INVALID invalid command FOO");
}

#[test]
fn command_names_are_case_sensitive() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd_body("pub t", b"x");
    c.expect_fatal("E_INVALID invalid command pub");

    let mut c = n.connect();
    c.cmd("Nop");
    c.expect_fatal("E_INVALID invalid command Nop");
}

#[test]
fn leading_space_makes_empty_command_name() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd(" NOP");
    c.expect_fatal("E_INVALID invalid command ");
}

#[test]
fn unknown_command_after_successful_commands() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.probe("t");
    c.cmd("NOP");
    c.cmd("BOGUS");
    c.expect_fatal("E_INVALID invalid command BOGUS");
}

#[test]
fn trailing_cr_is_stripped() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    // "PUB t\r\n" -> topic "t" (valid); an unstripped \r would make the topic invalid.
    let mut v = b"PUB t\r\n".to_vec();
    v.extend_from_slice(&1u32.to_be_bytes());
    v.push(b'x');
    c.send(&v);
    c.expect_ok();
    c.send(b"NOP\r\n");
    c.probe("t");
}

#[test]
fn only_one_trailing_cr_is_stripped() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.send(b"PUB t\r\r\n");
    c.expect_fatal("E_BAD_TOPIC PUB topic name \"t\\r\" is not valid");
}

#[test]
fn nothing_else_is_trimmed_tab() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("PUB t\t");
    c.expect_fatal("E_BAD_TOPIC PUB topic name \"t\\t\" is not valid");
}

#[test]
fn double_space_gives_empty_parameter() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("PUB  t");
    c.expect_fatal("E_BAD_TOPIC PUB topic name \"\" is not valid");

    let mut c = n.connect();
    c.cmd("SUB t  c");
    c.expect_fatal("E_BAD_CHANNEL SUB channel name \"\" is not valid");
}

#[test]
fn extra_parameters_are_ignored() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd_body("PUB t extra params here", b"x");
    c.expect_ok();
    c.cmd_body("PUB t ", b"x"); // trailing space = one extra empty parameter
    c.expect_ok();
    c.cmd("NOP with params");
    c.cmd("SUB t c extra");
    c.expect_ok();
    c.cmd("RDY 1 extra");
    // Exactly one message is delivered (RDY 1), proving the count parameter was used.
    let m = c.read_message();
    assert_eq!(m.body, b"x");
    c.expect_no_frame(Duration::from_millis(300));
}

#[test]
fn line_of_16384_bytes_including_lf_is_accepted() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    // "NOP" + spaces, total 16383 bytes + LF = 16384 bytes.
    let mut line = b"NOP".to_vec();
    line.resize(16383, b' ');
    line.push(b'\n');
    assert_eq!(line.len(), 16384);
    c.send(&line);
    c.probe("t");
}

#[test]
fn line_longer_than_16384_closes_without_error_frame() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut line = b"NOP".to_vec();
    line.resize(16384, b' ');
    line.push(b'\n');
    assert_eq!(line.len(), 16385);
    c.send(&line);
    let hb = c.expect_closed_without_error();
    assert_eq!(hb, 0);
}

#[test]
fn long_line_without_newline_closes_without_error_frame() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut line = b"PUB ".to_vec();
    line.resize(20000, b'a');
    // Written in one go; the server must give up at 16384 bytes without a newline.
    let _ = std::io::Write::write_all(&mut c.stream, &line);
    c.expect_closed_without_error();
}

#[test]
fn partial_line_then_eof_closes_silently() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.send(b"PUB t");
    c.shutdown_write();
    c.expect_closed_without_error();
}

#[test]
fn client_eof_between_commands_closes_cleanly() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.probe("t");
    c.shutdown_write();
    c.expect_closed_without_error();
}

// ---------------------------------------------------------------------------------------------
// NOP
// ---------------------------------------------------------------------------------------------

#[test]
fn nop_has_no_reply_in_init() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("NOP");
    c.expect_no_frame(Duration::from_millis(300));
    c.probe("t");
}

#[test]
fn nop_has_no_reply_in_every_state() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.cmd("NOP");
    c.subscribe("t", "c");
    c.cmd("NOP");
    c.cmd("NOP");
    c.probe("other");
    c.cmd("CLS");
    let f = c.read_non_heartbeat();
    assert_eq!(
        (f.kind, f.text()),
        (FRAME_RESPONSE, "CLOSE_WAIT".to_string())
    );
    c.cmd("NOP");
    c.probe("other");
}

// ---------------------------------------------------------------------------------------------
// Pipelining
// ---------------------------------------------------------------------------------------------

#[test]
fn pipelined_pubs_answered_in_order() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut buf = Vec::new();
    for i in 0..200 {
        buf.extend(cmd_bytes(
            &format!("PUB t{}", i % 3),
            Some(format!("m{i}").as_bytes()),
        ));
    }
    c.send(&buf);
    for _ in 0..200 {
        c.expect_ok();
    }
    c.expect_no_frame(Duration::from_millis(200));
}

#[test]
fn pipelined_mixed_responses_keep_command_order() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let mut buf = cmd_bytes("IDENTIFY", Some(br#"{"feature_negotiation":true}"#));
    buf.extend(cmd_bytes("PUB t", Some(b"1")));
    buf.extend(cmd_bytes("NOP", None));
    buf.extend(cmd_bytes("SUB t c", None));
    buf.extend(cmd_bytes("FIN 0000000000000000", None));
    buf.extend(cmd_bytes("MPUB t", Some(&Conn::mpub_body(&[b"2", b"3"]))));
    buf.extend(cmd_bytes("REQ 0000000000000001 0", None));
    buf.extend(cmd_bytes("DPUB t 0", Some(b"4")));
    buf.extend(cmd_bytes("TOUCH 0000000000000002", None));
    buf.extend(cmd_bytes("CLS", None));
    buf.extend(cmd_bytes("PUB t", Some(b"5")));
    c.send(&buf);
    let mut msgs = Vec::new();
    let f = c.read_response_collecting(&mut msgs);
    assert_eq!(f.kind, FRAME_RESPONSE);
    assert!(
        f.data.starts_with(b"{"),
        "IDENTIFY JSON expected, got {:?}",
        f.text()
    );
    let expect = [
        (FRAME_RESPONSE, "OK"),
        (FRAME_RESPONSE, "OK"),
        (
            FRAME_ERROR,
            "E_FIN_FAILED FIN 0000000000000000 failed ID not in flight",
        ),
        (FRAME_RESPONSE, "OK"),
        (
            FRAME_ERROR,
            "E_REQ_FAILED REQ 0000000000000001 failed ID not in flight",
        ),
        (FRAME_RESPONSE, "OK"),
        (
            FRAME_ERROR,
            "E_TOUCH_FAILED TOUCH 0000000000000002 failed ID not in flight",
        ),
        (FRAME_RESPONSE, "CLOSE_WAIT"),
        (FRAME_RESPONSE, "OK"),
    ];
    for (kind, text) in expect {
        let f = c.read_response_collecting(&mut msgs);
        assert_eq!((f.kind, f.text()), (kind, text.to_string()));
    }
    // RDY was never sent, so nothing may have been delivered.
    assert!(msgs.is_empty());
}

#[test]
fn many_commands_in_one_write_consumer_flow() {
    let n = Nsqd::start(&[]);
    let mut c = Conn::connect_raw(&n);
    let mut buf = b"  V2".to_vec();
    buf.extend(cmd_bytes("IDENTIFY", Some(br#"{"client_id":"x"}"#)));
    buf.extend(cmd_bytes("SUB t c", None));
    buf.extend(cmd_bytes("RDY 10", None));
    buf.extend(cmd_bytes("PUB t", Some(b"one")));
    buf.extend(cmd_bytes("NOP", None));
    buf.extend(cmd_bytes("PUB t", Some(b"two")));
    c.send(&buf);
    let mut msgs = Vec::new();
    for _ in 0..4 {
        let f = c.read_response_collecting(&mut msgs);
        assert_eq!((f.kind, f.text()), (FRAME_RESPONSE, "OK".to_string()));
    }
    while msgs.len() < 2 {
        msgs.push(c.read_message());
    }
    let mut bodies: Vec<_> = msgs.iter().map(|m| m.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, vec![b"one".to_vec(), b"two".to_vec()]);
}

#[test]
fn command_split_across_many_writes() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let all = cmd_bytes("PUB split_topic", Some(b"hello world"));
    for b in all.chunks(1) {
        c.send(b);
        std::thread::sleep(Duration::from_millis(1));
    }
    c.expect_ok();
}

#[test]
fn server_keeps_serving_other_connections_after_fatal_error() {
    let n = Nsqd::start(&[]);
    let mut good = n.connect();
    let mut bad = n.connect();
    bad.cmd("XYZ");
    bad.expect_fatal("E_INVALID invalid command XYZ");
    good.probe("t");
    let mut third = n.connect();
    third.probe("t");
}
