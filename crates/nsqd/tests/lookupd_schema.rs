//! nsqlookupd's HTTP API as data: every endpoint's JSON, field for field and with types, with a
//! real nsqd registered, so that Go readers (go-nsq's `/lookup` client, nsqadmin's `/nodes`,
//! `/topics`, `/channels`) decode it. Key order is checked on the raw body where the reference
//! has a fixed one (PeerInfo is a struct; response envelopes are maps, hence alphabetical).
//!
//! Needs the `nsqlookupd` binary next to `nsqd` (`cargo build --bins`).

mod common;

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use common::httpx::{self, assert_err, assert_ok_empty, assert_ok_json, V1_HEADER};
use common::{now_ns, wait_until, HttpResponse, Lookupd, Nsqd, WAIT};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};

/// PeerInfo fields in the reference's struct order (`/lookup` producers, first part of `/nodes`).
const PEER_KEYS: [&str; 8] = [
    "remote_address",
    "hostname",
    "broadcast_address",
    "tcp_port",
    "http_port",
    "version",
    "topology_zone",
    "topology_region",
];

/// `/debug` entry keys (a map in the reference, so any order).
const DEBUG_KEYS: [&str; 11] = [
    "broadcast_address",
    "hostname",
    "http_port",
    "id",
    "last_update",
    "tcp_port",
    "tombstoned",
    "tombstoned_at",
    "topology_region",
    "topology_zone",
    "version",
];

/// Go's zero `time.Time` in Unix nanoseconds: `tombstoned_at` of a never-tombstoned producer.
const GO_ZERO_TIME_NS: i64 = -6795364578871345152;

// ---------------------------------------------------------------------------------------------
// A JSON value that keeps object keys in document order (serde_json's Value sorts them).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Ordered {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Ordered>),
    Obj(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
        Ok(Ordered::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
        Ok(Ordered::Num(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
        Ok(Ordered::Num(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Ordered, E> {
        serde_json::Number::from_f64(v)
            .map(Ordered::Num)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
        Ok(Ordered::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Ordered, E> {
        Ok(Ordered::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element()? {
            v.push(x);
        }
        Ok(Ordered::Arr(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
        let mut v = Vec::new();
        while let Some((k, x)) = a.next_entry::<String, Ordered>()? {
            v.push((k, x));
        }
        Ok(Ordered::Obj(v))
    }
}

impl Ordered {
    #[track_caller]
    fn parse(r: &HttpResponse) -> Ordered {
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
    }

    #[track_caller]
    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Obj(kv) => kv.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("expected an object, got {other:?}"),
        }
    }

    #[track_caller]
    fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Obj(kv) => kv
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key:?} in {self:?}")),
            other => panic!("expected an object, got {other:?}"),
        }
    }

    #[track_caller]
    fn items(&self) -> &[Ordered] {
        match self {
            Ordered::Arr(v) => v,
            other => panic!("expected an array, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn os_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

#[track_caller]
fn post_ok(n: &Nsqd, path: &str) {
    let r = n.http_post(path, b"");
    assert_eq!(r.status, 200, "nsqd POST {path}: {}", r.text());
}

#[track_caller]
fn get(l: &Lookupd, path: &str) -> HttpResponse {
    httpx::request(l.http, "GET", path, &[], b"")
}

#[track_caller]
fn req(l: &Lookupd, method: &str, path: &str) -> HttpResponse {
    httpx::request(l.http, method, path, &[], b"")
}

/// Asserts a 200 V1 JSON answer whose body is exactly `text`.
#[track_caller]
fn assert_json_text(r: &HttpResponse, text: &str) {
    assert_ok_json(r);
    assert_eq!(r.text(), text);
}

/// Starts a lookupd and an nsqd registered with it (`--broadcast-address=127.0.0.1`), and waits
/// until the node is listed in `/nodes`.
fn registered(lookupd_extra: &[&str], nsqd_extra: &[&str]) -> (Lookupd, Nsqd) {
    let l = Lookupd::start(lookupd_extra);
    let n = Nsqd::start_with_lookupds(&[&l], nsqd_extra);
    wait_until(WAIT, "the nsqd to appear in /nodes", || {
        let nodes = l.nodes();
        if nodes.iter().any(|p| n.is_producer(p)) {
            Ok(())
        } else {
            Err(format!("{nodes:?}"))
        }
    });
    (l, n)
}

/// Checks one PeerInfo object: key order, types and the values this nsqd announced. Returns its
/// `remote_address`.
#[track_caller]
fn check_peer_info(p: &Ordered, n: &Nsqd, zone: &str, region: &str) -> String {
    assert_eq!(
        &p.keys()[..PEER_KEYS.len()],
        PEER_KEYS,
        "PeerInfo key order: {p:?}"
    );
    let v: Value = ordered_to_value(p);
    let remote = v["remote_address"]
        .as_str()
        .unwrap_or_else(|| panic!("remote_address not a string: {v}"));
    let remote_addr: SocketAddr = remote
        .parse()
        .unwrap_or_else(|e| panic!("remote_address {remote:?} is not ip:port: {e}"));
    assert_eq!(
        remote_addr.ip().to_string(),
        "127.0.0.1",
        "remote_address ip"
    );
    assert_ne!(remote_addr.port(), 0, "remote_address port");
    assert_eq!(
        v["hostname"],
        json!(os_hostname()),
        "hostname is nsqd's OS hostname: {v}"
    );
    assert_eq!(v["broadcast_address"], "127.0.0.1", "{v}");
    assert_eq!(
        v["tcp_port"],
        json!(n.tcp.port()),
        "tcp_port is an integer port: {v}"
    );
    assert_eq!(
        v["http_port"],
        json!(n.http.port()),
        "http_port is an integer port: {v}"
    );
    assert!(v["tcp_port"].is_u64() && v["http_port"].is_u64(), "{v}");
    assert_eq!(v["version"], "1.3.0", "{v}");
    assert_eq!(v["topology_zone"], json!(zone), "{v}");
    assert_eq!(v["topology_region"], json!(region), "{v}");
    remote.to_string()
}

fn ordered_to_value(o: &Ordered) -> Value {
    match o {
        Ordered::Null => Value::Null,
        Ordered::Bool(b) => Value::Bool(*b),
        Ordered::Num(n) => Value::Number(n.clone()),
        Ordered::Str(s) => Value::String(s.clone()),
        Ordered::Arr(v) => Value::Array(v.iter().map(ordered_to_value).collect()),
        Ordered::Obj(kv) => Value::Object(
            kv.iter()
                .map(|(k, v)| (k.clone(), ordered_to_value(v)))
                .collect(),
        ),
    }
}

#[test]
fn empty_lookupd_answers_empty_collections() {
    let l = Lookupd::start(&[]);
    assert_json_text(&get(&l, "/topics"), r#"{"topics":[]}"#);
    assert_json_text(&get(&l, "/nodes"), r#"{"producers":[]}"#);
    assert_json_text(&get(&l, "/channels?topic=nope"), r#"{"channels":[]}"#);
    assert_json_text(&get(&l, "/debug"), "{}");
    assert_json_text(&get(&l, "/info"), r#"{"version":"1.3.0"}"#);
    assert_err(&get(&l, "/lookup?topic=nope"), 404, "TOPIC_NOT_FOUND");

    let r = get(&l, "/ping");
    assert_eq!((r.status, r.text()), (200, "OK".to_string()), "/ping");
    assert_ne!(
        r.header("Content-Type"),
        Some(httpx::JSON_CT),
        "/ping is plain text"
    );

    // A topic key without producers (created over HTTP) is listed but has nobody to offer.
    assert_ok_empty(&req(&l, "POST", "/topic/create?topic=empty"));
    assert_json_text(&get(&l, "/topics"), r#"{"topics":["empty"]}"#);
    assert_json_text(
        &get(&l, "/lookup?topic=empty"),
        r#"{"channels":[],"producers":[]}"#,
    );
    // Keys with zero producers do not appear in /debug.
    assert_json_text(&get(&l, "/debug"), "{}");
}

#[test]
fn lookup_lists_channels_and_peer_info_in_struct_order() {
    let (l, n) = registered(&[], &[]);
    post_ok(&n, "/topic/create?topic=orders");
    post_ok(&n, "/channel/create?topic=orders&channel=archive");
    wait_until(WAIT, "orders/archive in /lookup", || {
        let chans = l.lookup_channels("orders");
        let prods = l.lookup_ports("orders");
        if chans.contains("archive") && prods.contains(&n.ports()) {
            Ok(())
        } else {
            Err(format!("channels {chans:?} producers {prods:?}"))
        }
    });

    // What go-nsq, pynsq and nsqjs send.
    let r = httpx::request(
        l.http,
        "GET",
        "/lookup?topic=orders",
        &[("Accept", "application/vnd.nsq; version=1.0")],
        b"",
    );
    assert_ok_json(&r);
    let o = Ordered::parse(&r);
    assert_eq!(
        o.keys(),
        ["channels", "producers"],
        "/lookup body: {}",
        r.text()
    );
    let chans = ordered_to_value(o.get("channels"));
    assert_eq!(chans, json!(["archive"]), "/lookup channels");
    let prods = o.get("producers").items();
    assert_eq!(prods.len(), 1, "one producer: {}", r.text());
    assert_eq!(
        prods[0].keys(),
        PEER_KEYS,
        "PeerInfo has exactly these keys: {}",
        r.text()
    );
    let remote = check_peer_info(&prods[0], &n, "", "");

    // The same peer, same id, in /debug.
    let d = l.debug();
    let client = d["client::"].as_array().expect("client:: in /debug");
    assert_eq!(client.len(), 1, "{d}");
    assert_eq!(
        client[0]["id"],
        json!(remote),
        "/debug id is the remote address: {d}"
    );

    // Without the Accept header, the same document.
    let plain = get(&l, "/lookup?topic=orders");
    assert_ok_json(&plain);
    assert_eq!(plain.json(), r.json());
}

#[test]
fn topology_fields_carry_what_nsqd_announced() {
    let (l, n) = registered(
        &[],
        &["--topology-zone=zone-a", "--topology-region=region-1"],
    );
    post_ok(&n, "/topic/create?topic=topo");
    wait_until(WAIT, "topo in /lookup", || {
        let p = l.lookup_ports("topo");
        if p.contains(&n.ports()) {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    });
    let r = get(&l, "/lookup?topic=topo");
    let o = Ordered::parse(&r);
    check_peer_info(&o.get("producers").items()[0], &n, "zone-a", "region-1");
    let r = get(&l, "/nodes");
    let o = Ordered::parse(&r);
    check_peer_info(&o.get("producers").items()[0], &n, "zone-a", "region-1");
}

#[test]
fn nodes_are_peer_info_plus_tombstones_and_topics() {
    let (l, n) = registered(&[], &[]);

    // Registered, no topics yet: empty arrays, never null.
    let r = get(&l, "/nodes");
    assert_ok_json(&r);
    let o = Ordered::parse(&r);
    assert_eq!(o.keys(), ["producers"], "/nodes body: {}", r.text());
    let nodes = o.get("producers").items();
    assert_eq!(nodes.len(), 1, "{}", r.text());
    let mut node_keys: Vec<&str> = PEER_KEYS.to_vec();
    node_keys.extend(["tombstones", "topics"]);
    assert_eq!(nodes[0].keys(), node_keys, "Node key order: {}", r.text());
    check_peer_info(&nodes[0], &n, "", "");
    let v = ordered_to_value(&nodes[0]);
    assert_eq!(v["tombstones"], json!([]), "{v}");
    assert_eq!(v["topics"], json!([]), "{v}");

    post_ok(&n, "/topic/create?topic=t1");
    post_ok(&n, "/topic/create?topic=t2");
    post_ok(&n, "/channel/create?topic=t2&channel=c");
    let v = wait_until(WAIT, "both topics in /nodes", || {
        let node = l.node_of(&n).ok_or("node missing")?;
        if node["topics"].as_array().map(|t| t.len()) == Some(2) {
            Ok(node)
        } else {
            Err(node.to_string())
        }
    });
    let topics: BTreeSet<&str> = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().expect("topic names are strings"))
        .collect();
    assert_eq!(topics, ["t1", "t2"].into_iter().collect(), "{v}");
    assert_eq!(v["tombstones"], json!([false, false]), "{v}");

    // Tombstone t2: its flag (at t2's index) turns true, nothing else changes.
    let r = req(
        &l,
        "POST",
        &format!("/topic/tombstone?topic=t2&node={}", n.lookupd_node_id()),
    );
    assert_ok_empty(&r);
    let v = l.node_of(&n).expect("a tombstoned node stays in /nodes");
    let arr = v["topics"].as_array().unwrap();
    let tombs = v["tombstones"].as_array().unwrap();
    assert_eq!(arr.len(), tombs.len(), "{v}");
    for (t, b) in arr.iter().zip(tombs) {
        assert_eq!(b.as_bool(), Some(t == "t2"), "tombstone flag of {t}: {v}");
    }
    // Hidden from /lookup?topic=t2 (but the key and channels remain).
    assert_json_text(
        &get(&l, "/lookup?topic=t2"),
        r#"{"channels":["c"],"producers":[]}"#,
    );
}

#[test]
fn topics_and_channels_are_string_arrays() {
    let (l, n) = registered(&[], &[]);
    post_ok(&n, "/topic/create?topic=alpha");
    post_ok(&n, "/channel/create?topic=alpha&channel=one");
    post_ok(&n, "/channel/create?topic=alpha&channel=two");
    post_ok(&n, "/topic/create?topic=beta");
    wait_until(WAIT, "topics and channels registered", || {
        let t = l.topics();
        let c = l.channels("alpha");
        if t.len() == 2 && c.len() == 2 {
            Ok(())
        } else {
            Err(format!("topics {t:?} channels {c:?}"))
        }
    });

    let r = get(&l, "/topics");
    assert_ok_json(&r);
    let o = Ordered::parse(&r);
    assert_eq!(o.keys(), ["topics"], "{}", r.text());
    let mut t: Vec<String> = o
        .get("topics")
        .items()
        .iter()
        .map(|x| match x {
            Ordered::Str(s) => s.clone(),
            other => panic!("topic name not a string: {other:?}"),
        })
        .collect();
    t.sort();
    assert_eq!(t, ["alpha", "beta"]);

    let r = get(&l, "/channels?topic=alpha");
    assert_ok_json(&r);
    let o = Ordered::parse(&r);
    assert_eq!(o.keys(), ["channels"], "{}", r.text());
    let mut c: Vec<String> = o
        .get("channels")
        .items()
        .iter()
        .map(|x| match x {
            Ordered::Str(s) => s.clone(),
            other => panic!("channel name not a string: {other:?}"),
        })
        .collect();
    c.sort();
    assert_eq!(c, ["one", "two"]);
    assert_json_text(&get(&l, "/channels?topic=beta"), r#"{"channels":[]}"#);
}

#[test]
fn debug_dumps_every_registration_with_producer_details() {
    let started = now_ns();
    let (l, n) = registered(&[], &[]);
    post_ok(&n, "/topic/create?topic=dbg");
    post_ok(&n, "/channel/create?topic=dbg&channel=c");
    // A key without producers, for contrast.
    assert_ok_empty(&req(&l, "POST", "/topic/create?topic=lonely"));
    let d = wait_until(WAIT, "dbg/c registered", || {
        let d = l.debug();
        if d.get("channel:dbg:c").is_some() && d.get("topic:dbg:").is_some() {
            Ok(d)
        } else {
            Err(d.to_string())
        }
    });
    let keys: BTreeSet<&str> = d
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        ["client::", "topic:dbg:", "channel:dbg:c"]
            .into_iter()
            .collect(),
        "/debug keys (zero-producer keys are omitted): {d}"
    );
    let now = now_ns();
    let remote = l.lookup("dbg").expect("dbg")["producers"][0]["remote_address"].clone();
    for (key, entries) in d.as_object().unwrap() {
        let entries = entries
            .as_array()
            .unwrap_or_else(|| panic!("{key}: not an array: {d}"));
        assert_eq!(entries.len(), 1, "{key}: {d}");
        let e = &entries[0];
        let got: BTreeSet<&str> = e
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            got,
            DEBUG_KEYS.into_iter().collect(),
            "{key}: entry keys: {e}"
        );
        assert_eq!(e["id"], remote, "{key}: id is the remote address: {e}");
        assert_eq!(e["hostname"], json!(os_hostname()), "{e}");
        assert_eq!(e["broadcast_address"], "127.0.0.1", "{e}");
        assert_eq!(e["tcp_port"], json!(n.tcp.port()), "{e}");
        assert_eq!(e["http_port"], json!(n.http.port()), "{e}");
        assert_eq!(e["version"], "1.3.0", "{e}");
        assert_eq!(e["topology_zone"], "", "{e}");
        assert_eq!(e["topology_region"], "", "{e}");
        let lu = e["last_update"]
            .as_i64()
            .unwrap_or_else(|| panic!("last_update not an integer: {e}"));
        assert!(
            (started - 1_000_000_000..=now + 1_000_000_000).contains(&lu),
            "last_update {lu} is Unix ns of the IDENTIFY (test ran {started}..{now}): {e}"
        );
        assert_eq!(e["tombstoned"], false, "{e}");
        assert_eq!(
            e["tombstoned_at"].as_i64(),
            Some(GO_ZERO_TIME_NS),
            "tombstoned_at of a never-tombstoned producer is Go's zero time in ns: {e}"
        );
    }

    let before = now_ns();
    assert_ok_empty(&req(
        &l,
        "POST",
        &format!("/topic/tombstone?topic=dbg&node={}", n.lookupd_node_id()),
    ));
    let after = now_ns();
    let d = l.debug();
    let e = &d["topic:dbg:"][0];
    assert_eq!(e["tombstoned"], true, "{e}");
    let at = e["tombstoned_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("tombstoned_at not an integer: {e}"));
    assert!(
        (before - 1_000_000_000..=after + 1_000_000_000).contains(&at),
        "tombstoned_at {at} is Unix ns of the tombstone ({before}..{after}): {e}"
    );
    assert_eq!(
        d["channel:dbg:c"][0]["tombstoned"], false,
        "only the topic entry: {d}"
    );
}

#[test]
fn write_endpoints_answer_empty_200_and_change_the_data() {
    let l = Lookupd::start(&[]);
    assert_ok_empty(&req(&l, "POST", "/channel/create?topic=w&channel=c1"));
    // channel/create creates the topic key as well
    assert_json_text(&get(&l, "/topics"), r#"{"topics":["w"]}"#);
    assert_json_text(&get(&l, "/channels?topic=w"), r#"{"channels":["c1"]}"#);
    assert_json_text(
        &get(&l, "/lookup?topic=w"),
        r#"{"channels":["c1"],"producers":[]}"#,
    );
    assert_ok_empty(&req(&l, "POST", "/channel/delete?topic=w&channel=c1"));
    assert_json_text(&get(&l, "/channels?topic=w"), r#"{"channels":[]}"#);
    assert_err(
        &req(&l, "POST", "/channel/delete?topic=w&channel=c1"),
        404,
        "CHANNEL_NOT_FOUND",
    );
    assert_ok_empty(&req(&l, "POST", "/channel/create?topic=w&channel=c2"));
    assert_ok_empty(&req(&l, "POST", "/topic/delete?topic=w"));
    assert_json_text(&get(&l, "/topics"), r#"{"topics":[]}"#);
    assert_json_text(&get(&l, "/channels?topic=w"), r#"{"channels":[]}"#);
    // Always 200, even for nothing.
    assert_ok_empty(&req(&l, "POST", "/topic/delete?topic=never"));
    assert_ok_empty(&req(
        &l,
        "POST",
        "/topic/tombstone?topic=never&node=127.0.0.1:1",
    ));
    // Ephemeral names are valid names.
    assert_ok_empty(&req(&l, "POST", "/topic/create?topic=e%23ephemeral"));
    assert_json_text(&get(&l, "/topics"), r#"{"topics":["e#ephemeral"]}"#);
}

#[test]
fn errors_are_v1_json_messages() {
    let l = Lookupd::start(&[]);
    let long = "x".repeat(65);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("GET", "/lookup".into(), 400, "MISSING_ARG_TOPIC"),
        ("GET", "/lookup?topic=nope".into(), 404, "TOPIC_NOT_FOUND"),
        ("GET", "/lookup?topic=%zz".into(), 400, "INVALID_REQUEST"),
        ("GET", "/channels".into(), 400, "MISSING_ARG_TOPIC"),
        ("POST", "/topic/create".into(), 400, "MISSING_ARG_TOPIC"),
        (
            "POST",
            "/topic/create?topic=bad!name".into(),
            400,
            "INVALID_ARG_TOPIC",
        ),
        (
            "POST",
            format!("/topic/create?topic={long}"),
            400,
            "INVALID_ARG_TOPIC",
        ),
        ("POST", "/topic/delete".into(), 400, "MISSING_ARG_TOPIC"),
        ("POST", "/channel/create".into(), 400, "MISSING_ARG_TOPIC"),
        (
            "POST",
            "/channel/create?topic=bad!".into(),
            400,
            "INVALID_ARG_TOPIC",
        ),
        (
            "POST",
            "/channel/create?topic=t".into(),
            400,
            "MISSING_ARG_CHANNEL",
        ),
        (
            "POST",
            "/channel/create?topic=t&channel=bad!".into(),
            400,
            "INVALID_ARG_CHANNEL",
        ),
        ("POST", "/channel/delete".into(), 400, "MISSING_ARG_TOPIC"),
        (
            "POST",
            "/channel/delete?topic=t".into(),
            400,
            "MISSING_ARG_CHANNEL",
        ),
        (
            "POST",
            "/channel/delete?topic=t&channel=bad!".into(),
            400,
            "INVALID_ARG_CHANNEL",
        ),
        (
            "POST",
            "/channel/delete?topic=t&channel=c".into(),
            404,
            "CHANNEL_NOT_FOUND",
        ),
        ("POST", "/topic/tombstone".into(), 400, "MISSING_ARG_TOPIC"),
        (
            "POST",
            "/topic/tombstone?topic=t".into(),
            400,
            "MISSING_ARG_NODE",
        ),
        ("GET", "/nope".into(), 404, "NOT_FOUND"),
        ("POST", "/nope".into(), 404, "NOT_FOUND"),
        // removed pre-1.0 endpoints
        ("POST", "/create_topic?topic=t".into(), 404, "NOT_FOUND"),
        ("GET", "/delete_topic?topic=t".into(), 404, "NOT_FOUND"),
        (
            "POST",
            "/create_channel?topic=t&channel=c".into(),
            404,
            "NOT_FOUND",
        ),
        (
            "GET",
            "/tombstone_topic_producer?topic=t&node=n".into(),
            404,
            "NOT_FOUND",
        ),
    ];
    for (m, p, status, msg) in &cases {
        let r = req(&l, m, p);
        assert_eq!(
            (r.status, r.text()),
            (*status, format!("{{\"message\":\"{msg}\"}}")),
            "{m} {p}"
        );
        assert_err(&r, *status, msg);
    }
    // Nothing above created anything.
    assert_json_text(&get(&l, "/topics"), r#"{"topics":[]}"#);

    for (m, p, allowed) in [
        ("POST", "/lookup?topic=t", "GET"),
        ("POST", "/topics", "GET"),
        ("POST", "/channels?topic=t", "GET"),
        ("POST", "/nodes", "GET"),
        ("POST", "/info", "GET"),
        ("DELETE", "/debug", "GET"),
        ("GET", "/topic/create?topic=t", "POST"),
        ("GET", "/topic/delete?topic=t", "POST"),
        ("GET", "/channel/create?topic=t&channel=c", "POST"),
        ("PUT", "/channel/delete?topic=t&channel=c", "POST"),
        ("GET", "/topic/tombstone?topic=t&node=n", "POST"),
    ] {
        let r = req(&l, m, p);
        assert_err(&r, 405, "METHOD_NOT_ALLOWED");
        let allow = r
            .header("Allow")
            .unwrap_or_else(|| panic!("{m} {p}: no Allow header"));
        assert!(
            allow.split(',').any(|a| a.trim() == allowed),
            "{m} {p}: Allow {allow:?} lacks {allowed}"
        );
    }
    assert_json_text(&get(&l, "/topics"), r#"{"topics":[]}"#);
    assert_eq!(
        get(&l, "/info").header("X-NSQ-Content-Type"),
        Some(V1_HEADER),
        "/info carries the V1 header"
    );
}

#[test]
fn inactive_producers_are_hidden_from_lookup_and_nodes_only() {
    // IDENTIFY is the node's last sign of life until its first PING 15 s later, so with a 1 s
    // timeout it is hidden from /lookup and /nodes shortly after registering.
    let (l, n) = {
        let l = Lookupd::start(&["--inactive-producer-timeout=1s"]);
        let n = Nsqd::start_with_lookupds(&[&l], &[]);
        (l, n)
    };
    post_ok(&n, "/topic/create?topic=quiet");
    wait_until(WAIT, "quiet registered in /debug", || {
        let p = l.debug_ports("topic:quiet:");
        if p.contains(&n.ports()) {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    });
    wait_until(
        Duration::from_secs(1) + WAIT,
        "the node to go inactive",
        || {
            let r = get(&l, "/lookup?topic=quiet");
            let nodes = get(&l, "/nodes");
            if r.text() == r#"{"channels":[],"producers":[]}"#
                && nodes.text() == r#"{"producers":[]}"#
            {
                Ok(())
            } else {
                Err(format!("/lookup {} /nodes {}", r.text(), nodes.text()))
            }
        },
    );
    // Still registered (the connection is open); /topics lists keys regardless of activity.
    assert_eq!(
        l.debug_ports("topic:quiet:"),
        [n.ports()].into_iter().collect()
    );
    assert_json_text(&get(&l, "/topics"), r#"{"topics":["quiet"]}"#);
}
