//! Protocol V1 over raw TCP, byte for byte: the magic, every command and error, fatal closes,
//! registration semantics as seen through HTTP, disconnects, liveness and tombstones.
mod common;

use std::io::Write as _;
use std::net::Shutdown;

use common::*;

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn ping_before_identify_is_answered_with_a_bare_size_prefix() {
    let l = Lookupd::start(&[]);
    let mut c = l.connect();
    c.cmd("PING");
    let mut raw = [0u8; 6];
    std::io::Read::read_exact(&mut c.stream, &mut raw).unwrap();
    assert_eq!(&raw, b"\x00\x00\x00\x02OK");
    // White space around the line and extra parameters are ignored.
    c.expect_ok("  PING extra\r");
    c.expect_ok("\tPING");
}

#[test]
fn bad_magic_gets_e_bad_protocol_and_close() {
    let l = Lookupd::start(&[]);
    for magic in [
        &b"  V2"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x00\x00\x00\x00",
        b"V1  ",
    ] {
        let mut c = V1::raw(l.tcp);
        c.send(magic);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut c.stream, &mut raw).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(raw, b"\x00\x00\x00\x0eE_BAD_PROTOCOL", "{magic:?}");
    }
    // A client that leaves before sending four bytes is dropped silently.
    let mut c = V1::raw(l.tcp);
    c.send(b"  ");
    c.stream.shutdown(Shutdown::Write).unwrap();
    c.expect_closed();
    // The daemon is unharmed.
    let mut c = l.connect();
    c.expect_ok("PING");
}

#[test]
fn identify_reply_is_exact() {
    let l = Lookupd::start(&[]);
    let mut c = l.connect();
    let reply = c.identify(identify_json("nsqd-1", 4151).as_bytes());
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    let hostname = v["hostname"].as_str().unwrap_or_default().to_string();
    assert!(!hostname.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&reply),
        format!(
            r#"{{"broadcast_address":"{BCAST}","hostname":"{hostname}","http_port":{},"tcp_port":{},"version":"1.3.0"}}"#,
            l.http.port(),
            l.tcp.port()
        )
    );
    // The peer is registered as a client and keeps working.
    c.expect_ok("PING");
    let nodes = l.get("/nodes").json();
    assert_eq!(nodes["producers"][0]["remote_address"], c.local().as_str());
}

#[test]
fn identify_twice_is_fatal() {
    let l = Lookupd::start(&[]);
    let mut c = l.nsqd("a", 1);
    let addr = c.local();
    c.expect_ok("REGISTER t");
    c.cmd("IDENTIFY");
    c.expect_fatal(b"E_INVALID cannot IDENTIFY again");
    // The close removed its registrations.
    l.wait_for_log(&format!(
        "DB: client({addr}) UNREGISTER category:topic key:t"
    ));
    assert_eq!(l.lookup_producers("t"), Some(vec![]));
}

#[test]
fn identify_body_size_errors() {
    let l = Lookupd::start(&[]);
    for size in [0i32, -1, i32::MIN, 1024 * 1024 + 1, i32::MAX] {
        let mut c = l.connect();
        let mut v = b"IDENTIFY\n".to_vec();
        v.extend_from_slice(&size.to_be_bytes());
        c.send(&v);
        c.expect_fatal(b"E_BAD_BODY IDENTIFY failed to read body size");
    }
    // The size itself cut short.
    let mut c = l.connect();
    c.send(b"IDENTIFY\n\x00\x00");
    c.stream.shutdown(Shutdown::Write).unwrap();
    c.expect_fatal(b"E_BAD_BODY IDENTIFY failed to read body size");
    // The body cut short.
    let mut c = l.connect();
    c.send(b"IDENTIFY\n\x00\x00\x00\x64{\"broadcast");
    c.stream.shutdown(Shutdown::Write).unwrap();
    c.expect_fatal(b"E_BAD_BODY IDENTIFY failed to read body");
    // The largest allowed size is read in full (and then fails as JSON).
    let mut c = l.connect();
    let reply = c.identify(&vec![b' '; 1024 * 1024]);
    assert_eq!(reply, b"E_BAD_BODY IDENTIFY failed to decode JSON body");
    c.expect_closed();
}

#[test]
fn identify_json_errors() {
    let l = Lookupd::start(&[]);
    let bad_json: [&[u8]; 5] = [
        b"not json",
        b"[1,2]",
        br#"{"broadcast_address":"a","tcp_port":"4150","http_port":4151,"version":"1"}"#,
        br#"{"broadcast_address":"a","tcp_port":4150.5,"http_port":4151,"version":"1"}"#,
        br#"{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"1"} trailing"#,
    ];
    for body in bad_json {
        let mut c = l.connect();
        assert_eq!(
            String::from_utf8_lossy(&c.identify(body)),
            "E_BAD_BODY IDENTIFY failed to decode JSON body"
        );
        c.expect_closed();
    }
    let missing: [&[u8]; 5] = [
        b"{}",
        br#"{"broadcast_address":"","tcp_port":1,"http_port":2,"version":"1"}"#,
        br#"{"broadcast_address":"a","tcp_port":0,"http_port":2,"version":"1"}"#,
        br#"{"broadcast_address":"a","tcp_port":1,"http_port":0,"version":"1"}"#,
        br#"{"broadcast_address":"a","tcp_port":1,"http_port":2}"#,
    ];
    for body in missing {
        let mut c = l.connect();
        assert_eq!(
            String::from_utf8_lossy(&c.identify(body)),
            "E_BAD_BODY IDENTIFY missing fields"
        );
        c.expect_closed();
    }
    // None of them registered anything.
    assert_eq!(l.get("/debug").text(), "{}");
}

#[test]
fn register_and_unregister_need_identify() {
    let l = Lookupd::start(&[]);
    for line in [
        "REGISTER t",
        "UNREGISTER t c",
        "REGISTER",
        "REGISTER bad!name",
    ] {
        let mut c = l.connect();
        c.cmd(line);
        c.expect_fatal(b"E_INVALID client must IDENTIFY");
    }
    assert_eq!(l.topics(), Vec::<String>::new());
}

#[test]
fn every_parameter_error_is_fatal_with_nsqs_text() {
    let l = Lookupd::start(&[]);
    let long = "x".repeat(65);
    let cases: Vec<(String, Vec<u8>)> = vec![
        (
            "REGISTER".into(),
            b"E_INVALID REGISTER insufficient number of params".to_vec(),
        ),
        (
            "UNREGISTER ".into(),
            b"E_INVALID UNREGISTER insufficient number of params".to_vec(),
        ),
        (
            "REGISTER bad!topic".into(),
            b"E_BAD_TOPIC REGISTER topic name 'bad!topic' is not valid".to_vec(),
        ),
        (
            "UNREGISTER bad!topic chan".into(),
            b"E_BAD_TOPIC UNREGISTER topic name 'bad!topic' is not valid".to_vec(),
        ),
        (
            "REGISTER  t".into(),
            b"E_BAD_TOPIC REGISTER topic name '' is not valid".to_vec(),
        ),
        (
            format!("REGISTER {long}"),
            format!("E_BAD_TOPIC REGISTER topic name '{long}' is not valid").into_bytes(),
        ),
        (
            "REGISTER t bad:chan".into(),
            b"E_BAD_CHANNEL REGISTER channel name 'bad:chan' is not valid".to_vec(),
        ),
        (
            "UNREGISTER t #ephemeral".into(),
            b"E_BAD_CHANNEL UNREGISTER channel name '#ephemeral' is not valid".to_vec(),
        ),
        ("FOO bar".into(), b"E_INVALID invalid command FOO".to_vec()),
        (
            "register t".into(),
            b"E_INVALID invalid command register".to_vec(),
        ),
        ("".into(), b"E_INVALID invalid command ".to_vec()),
        (
            "REGISTER\tt".into(),
            b"E_INVALID invalid command REGISTER\tt".to_vec(),
        ),
    ];
    // A bystander whose registrations must survive every failure.
    let mut bystander = l.nsqd("bystander", 1);
    bystander.expect_ok("REGISTER keep c");
    for (line, want) in cases {
        let mut c = l.nsqd("n", 2);
        c.expect_ok("REGISTER mine");
        c.cmd(&line);
        c.expect_fatal(&want);
        // Its own registrations went with the connection; the bystander's did not.
        assert_eq!(l.lookup_producers("mine"), Some(vec![]), "{line:?}");
        assert_eq!(
            l.lookup_producers("keep"),
            Some(vec![bystander.local()]),
            "{line:?}"
        );
    }
    bystander.expect_ok("PING");
    // Non-UTF-8 bytes are echoed as sent.
    let mut c = l.nsqd("n", 2);
    c.send(b"REGISTER t\xff\n");
    c.expect_fatal(b"E_BAD_TOPIC REGISTER topic name 't\xff' is not valid");
    let mut c = l.connect();
    c.send(b"\xfe\xff\n");
    c.expect_fatal(b"E_INVALID invalid command \xfe\xff");
}

#[test]
fn overlong_line_closes_without_answer() {
    let l = Lookupd::start(&[]);
    let mut c = l.connect();
    // Written in the background: the server may close before reading all of it.
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&vec![b'A'; 200 * 1024]);
    });
    c.expect_closed();
    let _ = writer.join();
    l.connect().expect_ok("PING");
}

#[test]
fn register_topic_and_channel() {
    let l = Lookupd::start(&[]);
    let mut a = l.nsqd("a", 1);
    a.expect_ok("REGISTER t c1");
    a.expect_ok("REGISTER t c2");
    a.expect_ok("REGISTER t c2");
    a.expect_ok("REGISTER solo");
    assert_eq!(l.topics(), strs(&["solo", "t"]));
    assert_eq!(l.lookup_channels("t"), strs(&["c1", "c2"]));
    assert_eq!(l.lookup_producers("t"), Some(vec![a.local()]));
    assert_eq!(l.lookup_channels("solo"), Vec::<String>::new());
    let debug = l.get("/debug").json();
    let mut keys: Vec<&String> = debug.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "channel:t:c1",
            "channel:t:c2",
            "client::",
            "topic:solo:",
            "topic:t:"
        ]
    );
    // Registered once each, however often REGISTER was sent.
    for (_, v) in debug.as_object().unwrap() {
        assert_eq!(v.as_array().unwrap().len(), 1);
    }
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let l = Lookupd::start(&[]);
    let mut c = V1::raw(l.tcp);
    let body = identify_json("p", 9);
    let mut all = b"  V1PING\nIDENTIFY\n".to_vec();
    all.extend_from_slice(&(body.len() as u32).to_be_bytes());
    all.extend_from_slice(body.as_bytes());
    all.extend_from_slice(b"REGISTER t c\nUNREGISTER t c\nPING\nNOPE\nPING\n");
    c.send(&all);
    assert_eq!(c.read_response(), b"OK");
    assert!(c.read_response().starts_with(b"{\"broadcast_address\""));
    assert_eq!(c.read_response(), b"OK");
    assert_eq!(c.read_response(), b"OK");
    assert_eq!(c.read_response(), b"OK");
    c.expect_fatal(b"E_INVALID invalid command NOPE");
}

#[test]
fn unregister_channel_keeps_the_key_unless_ephemeral() {
    let l = Lookupd::start(&[]);
    let mut a = l.nsqd("a", 1);
    let mut b = l.nsqd("b", 2);
    a.expect_ok("REGISTER t c");
    a.expect_ok("REGISTER t e#ephemeral");
    b.expect_ok("REGISTER t e#ephemeral");
    a.expect_ok("UNREGISTER t c");
    // Non-ephemeral: the channel stays listed with no producers; the topic entry is untouched.
    assert_eq!(l.lookup_channels("t"), strs(&["c", "e#ephemeral"]));
    assert_eq!(l.lookup_producers("t").map(|p| p.len()), Some(2));
    a.expect_ok("UNREGISTER t e#ephemeral");
    assert_eq!(l.lookup_channels("t"), strs(&["c", "e#ephemeral"]));
    b.expect_ok("UNREGISTER t e#ephemeral");
    assert_eq!(l.lookup_channels("t"), strs(&["c"]));
    // Unregistering something never registered is fine.
    a.expect_ok("UNREGISTER t never");
    a.expect_ok("UNREGISTER never");
}

#[test]
fn topic_unregister_removes_the_peer_from_its_channels() {
    let l = Lookupd::start(&[]);
    let mut a = l.nsqd("a", 1);
    let mut b = l.nsqd("b", 2);
    a.expect_ok("REGISTER t c");
    b.expect_ok("REGISTER t c");
    a.expect_ok("UNREGISTER t");
    l.wait_for_log(&format!(
        "client({}) unexpected UNREGISTER category:channel key:t subkey:c",
        a.local()
    ));
    assert_eq!(l.lookup_producers("t"), Some(vec![b.local()]));
    let debug = l.get("/debug").json();
    let ids: Vec<&str> = debug["channel:t:c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b.local()]);
    // A non-ephemeral topic stays when its last producer leaves.
    b.expect_ok("UNREGISTER t");
    assert_eq!(l.lookup_producers("t"), Some(vec![]));
    assert_eq!(l.lookup_channels("t"), strs(&["c"]));
}

#[test]
fn ephemeral_topic_disappears_with_its_last_producer() {
    let l = Lookupd::start(&[]);
    let mut a = l.nsqd("a", 1);
    let mut b = l.nsqd("b", 2);
    a.expect_ok("REGISTER t#ephemeral");
    b.expect_ok("REGISTER t#ephemeral");
    a.expect_ok("UNREGISTER t#ephemeral");
    assert_eq!(l.lookup_producers("t#ephemeral"), Some(vec![b.local()]));
    b.expect_ok("UNREGISTER t#ephemeral");
    assert_eq!(l.lookup_producers("t#ephemeral"), None);
    assert_eq!(l.topics(), Vec::<String>::new());
}

#[test]
fn disconnect_removes_registrations_but_keeps_keys() {
    let l = Lookupd::start(&[]);
    let mut a = l.nsqd("a", 1);
    let mut b = l.nsqd("b", 2);
    a.expect_ok("REGISTER t c");
    a.expect_ok("REGISTER x#ephemeral y#ephemeral");
    b.expect_ok("REGISTER t");
    l.disconnect(a);
    assert_eq!(l.lookup_producers("t"), Some(vec![b.local()]));
    assert_eq!(l.lookup_channels("t"), strs(&["c"]));
    // Even ephemeral keys stay after a disconnect (only UNREGISTER deletes them).
    assert_eq!(l.lookup_producers("x#ephemeral"), Some(vec![]));
    assert_eq!(l.lookup_channels("x#ephemeral"), strs(&["y#ephemeral"]));
    let nodes = l.get("/nodes").json();
    assert_eq!(nodes["producers"].as_array().map(|a| a.len()), Some(1));
    let debug = l.get("/debug").json();
    let mut keys: Vec<&String> = debug.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["client::", "topic:t:"]);
}

#[test]
fn many_nsqds_at_once() {
    let l = Lookupd::start(&[]);
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let addr = l.tcp;
            std::thread::spawn(move || {
                let mut c = V1::raw(addr);
                c.send(b"  V1");
                let reply = c.identify(identify_json(&format!("n{i}"), 1000 + i).as_bytes());
                assert!(reply.starts_with(b"{"));
                for t in 0..5 {
                    c.expect_ok(&format!("REGISTER topic{t} ch{i}"));
                }
                c
            })
        })
        .collect();
    let conns: Vec<V1> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(l.topics().len(), 5);
    assert_eq!(l.lookup_producers("topic3").map(|p| p.len()), Some(16));
    assert_eq!(l.lookup_channels("topic0").len(), 16);
    let nodes = l.get("/nodes").json();
    let nodes = nodes["producers"].as_array().unwrap();
    assert_eq!(nodes.len(), 16);
    assert!(nodes
        .iter()
        .all(|n| n["topics"].as_array().unwrap().len() == 5));
    for c in conns {
        l.disconnect(c);
    }
    assert_eq!(l.get("/nodes").text(), r#"{"producers":[]}"#);
}

#[test]
fn ping_keeps_a_producer_active() {
    let l = Lookupd::start(&["--inactive-producer-timeout=1s"]);
    let mut a = l.nsqd("a", 1);
    a.expect_ok("REGISTER t");
    assert_eq!(l.lookup_producers("t"), Some(vec![a.local()]));
    // Time is the subject here: wait for the timeout to pass without a PING.
    eventually(|| (l.lookup_producers("t") == Some(vec![])).then_some(()));
    assert_eq!(l.get("/nodes").text(), r#"{"producers":[]}"#);
    // Still registered, only hidden.
    assert!(l.get("/debug").json()["topic:t:"].is_array());
    a.expect_ok("PING");
    assert_eq!(l.lookup_producers("t"), Some(vec![a.local()]));
    assert_eq!(
        l.get("/nodes").json()["producers"][0]["remote_address"],
        a.local().as_str()
    );
}

#[test]
fn tombstones_hide_a_node_for_their_lifetime() {
    let l = Lookupd::start(&["--tombstone-lifetime=1s"]);
    let mut a = l.nsqd("node-a", 4151);
    let mut b = l.nsqd("node-b", 4151);
    a.expect_ok("REGISTER t");
    a.expect_ok("REGISTER u");
    b.expect_ok("REGISTER t");
    l.post("/topic/tombstone?topic=t&node=node-a:4151")
        .assert_empty_ok();
    assert_eq!(l.lookup_producers("t"), Some(vec![b.local()]));
    assert_eq!(l.lookup_producers("u"), Some(vec![a.local()]));
    let nodes = l.get("/nodes").json();
    let na = nodes["producers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["broadcast_address"] == "node-a")
        .cloned()
        .unwrap();
    assert_eq!(na["topics"], serde_json::json!(["t", "u"]));
    assert_eq!(na["tombstones"], serde_json::json!([true, false]));
    // REGISTER does not clear a tombstone.
    a.expect_ok("REGISTER t");
    assert_eq!(l.lookup_producers("t"), Some(vec![b.local()]));
    // Time is the subject: after the lifetime the node is found again.
    eventually(|| (l.lookup_producers("t").map(|p| p.len()) == Some(2)).then_some(()));
    let nodes = l.get("/nodes").json();
    for n in nodes["producers"].as_array().unwrap() {
        assert!(n["tombstones"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t == false));
    }
    // The flag itself stays visible in /debug.
    let debug = l.get("/debug").json();
    let entry = debug["topic:t:"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["broadcast_address"] == "node-a")
        .cloned()
        .unwrap();
    assert_eq!(entry["tombstoned"], true);
    assert!(entry["tombstoned_at"].as_i64().unwrap() > 0);
}

#[test]
fn unregister_then_register_clears_a_tombstone() {
    let l = Lookupd::start(&[]);
    let mut a = l.nsqd("node-a", 4151);
    a.expect_ok("REGISTER t");
    l.post("/topic/tombstone?topic=t&node=node-a:4151")
        .assert_empty_ok();
    assert_eq!(l.lookup_producers("t"), Some(vec![]));
    a.expect_ok("UNREGISTER t");
    a.expect_ok("REGISTER t");
    assert_eq!(l.lookup_producers("t"), Some(vec![a.local()]));
}
