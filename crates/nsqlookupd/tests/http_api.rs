//! The HTTP API: every endpoint and error with exact bodies, JSON types and key order.
mod common;

use common::*;
use serde_json::json;

/// A PeerInfo as the raw body must show it (NSQ's key order).
fn peer_json(c: &V1, bcast: &str, http_port: u16) -> String {
    format!(
        r#"{{"remote_address":"{}","hostname":"host-{bcast}","broadcast_address":"{bcast}","tcp_port":4150,"http_port":{http_port},"version":"1.3.0","topology_zone":"zone-a","topology_region":"region-1"}}"#,
        c.local()
    )
}

#[test]
fn ping_and_info() {
    let l = Lookupd::start(&[]);
    let r = l.get("/ping");
    assert_eq!((r.status, r.text()), (200, "OK".to_string()));
    // Plain text: no V1 header.
    assert_eq!(r.header("X-NSQ-Content-Type"), None);
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let r = l.get("/info");
    assert_eq!(r.json_ok(), r#"{"version":"1.3.0"}"#);
}

#[test]
fn lookup_exact_body() {
    let l = Lookupd::start(&[]);
    let r = l.get("/lookup");
    r.assert_error(400, "MISSING_ARG_TOPIC");
    l.get("/lookup?topic=nope")
        .assert_error(404, "TOPIC_NOT_FOUND");
    l.get("/lookup?topic=%zz")
        .assert_error(400, "INVALID_REQUEST");
    l.get("/lookup?topic=a;b")
        .assert_error(400, "INVALID_REQUEST");

    let mut a = l.nsqd("nsqd-a", 4151);
    a.expect_ok("REGISTER orders archive");
    assert_eq!(
        l.get("/lookup?topic=orders").json_ok(),
        format!(
            r#"{{"channels":["archive"],"producers":[{}]}}"#,
            peer_json(&a, "nsqd-a", 4151)
        )
    );
    // Types: ports are numbers, the rest strings.
    let v = l.get("/lookup?topic=orders").json();
    assert_eq!(v["producers"][0]["tcp_port"], json!(4150));
    assert_eq!(v["producers"][0]["http_port"], json!(4151));
    // Repeated keys: the first value wins.
    assert_eq!(l.get("/lookup?topic=orders&topic=nope").status, 200);
}

#[test]
fn lookup_of_an_empty_topic_has_empty_arrays() {
    let l = Lookupd::start(&[]);
    l.post("/topic/create?topic=t").assert_empty_ok();
    assert_eq!(
        l.get("/lookup?topic=t").json_ok(),
        r#"{"channels":[],"producers":[]}"#
    );
    // The name is not validated for lookups: an invalid one is simply not found.
    l.get("/lookup?topic=bad!name")
        .assert_error(404, "TOPIC_NOT_FOUND");
    l.get("/lookup?topic=").assert_error(404, "TOPIC_NOT_FOUND");
}

#[test]
fn topics_and_channels() {
    let l = Lookupd::start(&[]);
    assert_eq!(l.get("/topics").json_ok(), r#"{"topics":[]}"#);
    assert_eq!(l.get("/channels?topic=x").json_ok(), r#"{"channels":[]}"#);
    l.get("/channels").assert_error(400, "MISSING_ARG_TOPIC");
    l.get("/channels?topic=%")
        .assert_error(400, "INVALID_REQUEST");

    let mut a = l.nsqd("a", 1);
    a.expect_ok("REGISTER t1 c1");
    l.post("/channel/create?topic=t1&channel=c2")
        .assert_empty_ok();
    l.post("/topic/create?topic=t2").assert_empty_ok();
    assert_eq!(l.topics(), ["t1", "t2"]);
    let v = l.get("/channels?topic=t1").json();
    assert_eq!(sorted_strings(&v["channels"]), ["c1", "c2"]);
    assert_eq!(l.get("/channels?topic=t2").json_ok(), r#"{"channels":[]}"#);
    // A bad query string is only an error where parameters are read.
    assert_eq!(l.get("/topics?%zz").status, 200);
}

#[test]
fn nodes_exact_body() {
    let l = Lookupd::start(&[]);
    assert_eq!(l.get("/nodes").json_ok(), r#"{"producers":[]}"#);
    let mut a = l.nsqd("nsqd-a", 4151);
    assert_eq!(
        l.get("/nodes").json_ok(),
        format!(
            r#"{{"producers":[{},"tombstones":[],"topics":[]}}]}}"#,
            peer_json(&a, "nsqd-a", 4151).trim_end_matches('}')
        )
    );
    a.expect_ok("REGISTER clicks");
    a.expect_ok("REGISTER orders c");
    l.post("/topic/tombstone?topic=orders&node=nsqd-a:4151")
        .assert_empty_ok();
    assert_eq!(
        l.get("/nodes").json_ok(),
        format!(
            r#"{{"producers":[{},"tombstones":[false,true],"topics":["clicks","orders"]}}]}}"#,
            peer_json(&a, "nsqd-a", 4151).trim_end_matches('}')
        )
    );
}

#[test]
fn topic_create_and_delete() {
    let l = Lookupd::start(&[]);
    l.post("/topic/create")
        .assert_error(400, "MISSING_ARG_TOPIC");
    l.post("/topic/create?topic=bad!")
        .assert_error(400, "INVALID_ARG_TOPIC");
    l.post("/topic/create?topic=")
        .assert_error(400, "INVALID_ARG_TOPIC");
    l.post("/topic/create?topic=%gg")
        .assert_error(400, "INVALID_REQUEST");
    l.post("/topic/create?topic=t").assert_empty_ok();
    l.post("/topic/create?topic=t").assert_empty_ok();
    l.post("/topic/create?topic=e%23ephemeral")
        .assert_empty_ok();
    assert_eq!(l.topics(), ["e#ephemeral", "t"]);

    let mut a = l.nsqd("a", 1);
    a.expect_ok("REGISTER t c");
    l.post("/channel/create?topic=t&channel=d")
        .assert_empty_ok();
    l.post("/topic/delete")
        .assert_error(400, "MISSING_ARG_TOPIC");
    l.post("/topic/delete?topic=t").assert_empty_ok();
    assert_eq!(l.topics(), ["e#ephemeral"]);
    l.get("/lookup?topic=t")
        .assert_error(404, "TOPIC_NOT_FOUND");
    assert_eq!(l.get("/channels?topic=t").json_ok(), r#"{"channels":[]}"#);
    // Always 200, even for nothing or an invalid name.
    l.post("/topic/delete?topic=t").assert_empty_ok();
    l.post("/topic/delete?topic=bad!").assert_empty_ok();
    // The producer's other registrations are untouched.
    let debug = l.get("/debug").json();
    assert!(debug["client::"].is_array());
    assert!(debug.get("topic:t:").is_none());
    // GET on a POST route is 405.
    let r = l.get("/topic/create?topic=x");
    r.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("Allow"), Some("OPTIONS, POST"));
}

#[test]
fn channel_create_and_delete() {
    let l = Lookupd::start(&[]);
    for (path, status, msg) in [
        ("/channel/create", 400, "MISSING_ARG_TOPIC"),
        ("/channel/create?channel=c", 400, "MISSING_ARG_TOPIC"),
        (
            "/channel/create?topic=bad!&channel=c",
            400,
            "INVALID_ARG_TOPIC",
        ),
        ("/channel/create?topic=t", 400, "MISSING_ARG_CHANNEL"),
        (
            "/channel/create?topic=t&channel=bad!",
            400,
            "INVALID_ARG_CHANNEL",
        ),
        (
            "/channel/create?topic=t&channel=",
            400,
            "INVALID_ARG_CHANNEL",
        ),
        ("/channel/create?topic=t&channel=%", 400, "INVALID_REQUEST"),
        ("/channel/delete", 400, "MISSING_ARG_TOPIC"),
        (
            "/channel/delete?topic=bad!&channel=c",
            400,
            "INVALID_ARG_TOPIC",
        ),
        ("/channel/delete?topic=t", 400, "MISSING_ARG_CHANNEL"),
        (
            "/channel/delete?topic=t&channel=bad!",
            400,
            "INVALID_ARG_CHANNEL",
        ),
        (
            "/channel/delete?topic=t&channel=c",
            404,
            "CHANNEL_NOT_FOUND",
        ),
    ] {
        l.post(path).assert_error(status, msg);
    }
    assert_eq!(l.topics(), Vec::<String>::new());
    l.post("/channel/create?topic=t&channel=c")
        .assert_empty_ok();
    assert_eq!(
        l.get("/lookup?topic=t").json_ok(),
        r#"{"channels":["c"],"producers":[]}"#
    );
    l.post("/channel/delete?topic=t&channel=c")
        .assert_empty_ok();
    l.post("/channel/delete?topic=t&channel=c")
        .assert_error(404, "CHANNEL_NOT_FOUND");
    // The topic stays.
    assert_eq!(
        l.get("/lookup?topic=t").json_ok(),
        r#"{"channels":[],"producers":[]}"#
    );
    // Deleting a channel with producers removes them with it.
    let mut a = l.nsqd("a", 1);
    a.expect_ok("REGISTER t busy");
    l.post("/channel/delete?topic=t&channel=busy")
        .assert_empty_ok();
    assert!(l.get("/debug").json().get("channel:t:busy").is_none());
    assert_eq!(l.lookup_producers("t"), Some(vec![a.local()]));
}

#[test]
fn tombstone_arguments() {
    let l = Lookupd::start(&[]);
    l.post("/topic/tombstone")
        .assert_error(400, "MISSING_ARG_TOPIC");
    l.post("/topic/tombstone?node=a:1")
        .assert_error(400, "MISSING_ARG_TOPIC");
    l.post("/topic/tombstone?topic=t")
        .assert_error(400, "MISSING_ARG_NODE");
    l.post("/topic/tombstone?topic=t&node=%")
        .assert_error(400, "INVALID_REQUEST");
    // Nothing to match is still 200.
    l.post("/topic/tombstone?topic=t&node=a:1")
        .assert_empty_ok();
    let mut a = l.nsqd("node-a", 4151);
    a.expect_ok("REGISTER t");
    // The node is <broadcast_address>:<http_port>, not the TCP port or remote address.
    l.post("/topic/tombstone?topic=t&node=node-a:4150")
        .assert_empty_ok();
    l.post(&format!("/topic/tombstone?topic=t&node={}", a.local()))
        .assert_empty_ok();
    assert_eq!(l.lookup_producers("t"), Some(vec![a.local()]));
    l.post("/topic/tombstone?topic=t&node=node-a:4151")
        .assert_empty_ok();
    assert_eq!(l.lookup_producers("t"), Some(vec![]));
}

#[test]
fn debug_exact_body() {
    let l = Lookupd::start(&[]);
    assert_eq!(l.get("/debug").json_ok(), "{}");
    let before = now_ns();
    let mut a = l.nsqd("nsqd-a", 4151);
    let after = now_ns();
    a.expect_ok("REGISTER t c");
    l.post("/topic/create?topic=empty").assert_empty_ok();
    let body = l.get("/debug").json_ok();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let last_update = v["client::"][0]["last_update"].as_i64().unwrap();
    assert!(
        (before..=after).contains(&last_update),
        "{before} <= {last_update} <= {after}"
    );
    let entry = |tombstoned: bool, at: i64| {
        format!(
            r#"[{{"broadcast_address":"nsqd-a","hostname":"host-nsqd-a","http_port":4151,"id":"{}","last_update":{last_update},"tcp_port":4150,"tombstoned":{tombstoned},"tombstoned_at":{at},"topology_region":"region-1","topology_zone":"zone-a","version":"1.3.0"}}]"#,
            a.local()
        )
    };
    let never = -6795364578871345152i64;
    assert_eq!(
        body,
        format!(
            r#"{{"channel:t:c":{},"client::":{},"topic:t:":{}}}"#,
            entry(false, never),
            entry(false, never),
            entry(false, never)
        )
    );
    let before = now_ns();
    l.post("/topic/tombstone?topic=t&node=nsqd-a:4151")
        .assert_empty_ok();
    let after = now_ns();
    let v = l.get("/debug").json();
    let at = v["topic:t:"][0]["tombstoned_at"].as_i64().unwrap();
    assert!((before..=after).contains(&at));
    assert_eq!(v["topic:t:"][0]["tombstoned"], json!(true));
    assert_eq!(v["channel:t:c"][0]["tombstoned"], json!(false));
    // PING moves last_update forward in every registration at once.
    a.expect_ok("PING");
    let v = l.get("/debug").json();
    let newer = v["channel:t:c"][0]["last_update"].as_i64().unwrap();
    assert!(newer > last_update);
    assert_eq!(v["topic:t:"][0]["last_update"].as_i64(), Some(newer));
}

#[test]
fn router_conventions() {
    let l = Lookupd::start(&[]);
    l.get("/nope").assert_error(404, "NOT_FOUND");
    // Pre-1.0 endpoints are gone.
    for path in [
        "/create_topic?topic=t",
        "/delete_topic?topic=t",
        "/tombstone_topic_producer",
    ] {
        l.get(path).assert_error(404, "NOT_FOUND");
        l.post(path).assert_error(404, "NOT_FOUND");
    }
    let r = l.post("/lookup?topic=t");
    r.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("Allow"), Some("GET, OPTIONS"));
    let r = l.request("HEAD", "/ping");
    assert_eq!(r.status, 405);
    let r = l.request("OPTIONS", "/lookup");
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.header("Allow"), Some("GET, OPTIONS"));
    let r = l.get("/topics/");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/topics"));
    let r = l.post("/topic/create/?topic=t");
    assert_eq!(r.status, 307);
}
