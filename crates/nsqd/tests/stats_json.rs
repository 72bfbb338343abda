//! `GET /stats?format=json`: exact schema (nsqd, topic, channel, client, latency, memory),
//! filters, sorting and counters.

mod common;

use common::httpx::{self, assert_ok_empty, assert_ok_text, int};
use common::{eventually, Conn, Nsqd};
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, Debug)]
enum K {
    Int,
    Str,
    Bool,
    Arr,
    ArrOrNull,
    Obj,
}

fn kind_ok(v: &Value, k: K) -> bool {
    match k {
        K::Int => v.is_i64() || v.is_u64(),
        K::Str => v.is_string(),
        K::Bool => v.is_boolean(),
        K::Arr => v.is_array(),
        K::ArrOrNull => v.is_array() || v.is_null(),
        K::Obj => v.is_object(),
    }
}

/// Asserts that `v` is an object holding exactly the `required` keys plus any of `optional`,
/// each with the given JSON type.
#[track_caller]
fn check_object(what: &str, v: &Value, required: &[(&str, K)], optional: &[(&str, K)]) {
    let o: &Map<String, Value> = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
    for (k, t) in required {
        let x = o.get(*k).unwrap_or_else(|| panic!("{what} lacks {k}: {v}"));
        assert!(kind_ok(x, *t), "{what}.{k} should be {t:?}: {x}");
    }
    for (k, x) in o {
        if required.iter().any(|(r, _)| r == k) {
            continue;
        }
        let (_, t) = optional
            .iter()
            .find(|(r, _)| r == k)
            .unwrap_or_else(|| panic!("{what} has unexpected key {k}: {v}"));
        assert!(kind_ok(x, *t), "{what}.{k} should be {t:?}: {x}");
    }
}

const TOP: &[(&str, K)] = &[
    ("version", K::Str),
    ("health", K::Str),
    ("start_time", K::Int),
    ("topics", K::ArrOrNull),
    ("producers", K::ArrOrNull),
];
const TOPIC: &[(&str, K)] = &[
    ("topic_name", K::Str),
    ("channels", K::Arr),
    ("depth", K::Int),
    ("backend_depth", K::Int),
    ("message_count", K::Int),
    ("message_bytes", K::Int),
    ("paused", K::Bool),
    ("e2e_processing_latency", K::Obj),
];
const CHANNEL: &[(&str, K)] = &[
    ("channel_name", K::Str),
    ("depth", K::Int),
    ("backend_depth", K::Int),
    ("in_flight_count", K::Int),
    ("deferred_count", K::Int),
    ("message_count", K::Int),
    ("requeue_count", K::Int),
    ("timeout_count", K::Int),
    ("client_count", K::Int),
    ("clients", K::ArrOrNull),
    ("paused", K::Bool),
    ("e2e_processing_latency", K::Obj),
];
/// Our addition to NSQ's schema, on durable topics and channels (clients ignore unknown keys).
const STORE_HEALTH: &[(&str, K)] = &[("store_health", K::Obj)];
const HEALTH_KEYS: &[(&str, K)] = &[
    ("records_skipped", K::Int),
    ("bytes_cut", K::Int),
    ("last_error", K::Str),
];
const LOCALITY: &[(&str, K)] = &[
    ("zone_local_msg_count", K::Int),
    ("region_local_msg_count", K::Int),
    ("global_msg_count", K::Int),
];
const CLIENT: &[(&str, K)] = &[
    ("client_id", K::Str),
    ("hostname", K::Str),
    ("version", K::Str),
    ("remote_address", K::Str),
    ("state", K::Int),
    ("ready_count", K::Int),
    ("in_flight_count", K::Int),
    ("message_count", K::Int),
    ("finish_count", K::Int),
    ("requeue_count", K::Int),
    ("connect_ts", K::Int),
    ("sample_rate", K::Int),
    ("deflate", K::Bool),
    ("snappy", K::Bool),
    ("user_agent", K::Str),
    ("topology_zone", K::Str),
    ("topology_region", K::Str),
    ("tls", K::Bool),
    ("tls_cipher_suite", K::Str),
    ("tls_version", K::Str),
    ("tls_negotiated_protocol", K::Str),
    ("tls_negotiated_protocol_is_mutual", K::Bool),
];
const CLIENT_OPT: &[(&str, K)] = &[
    ("zone_local_msg_count", K::Int),
    ("region_local_msg_count", K::Int),
    ("global_msg_count", K::Int),
    ("authed", K::Bool),
    ("auth_identity", K::Str),
    ("auth_identity_url", K::Str),
    ("pub_counts", K::Arr),
];
const MEMORY: &[(&str, K)] = &[
    ("heap_objects", K::Int),
    ("heap_idle_bytes", K::Int),
    ("heap_in_use_bytes", K::Int),
    ("heap_released_bytes", K::Int),
    ("gc_pause_usec_100", K::Int),
    ("gc_pause_usec_99", K::Int),
    ("gc_pause_usec_95", K::Int),
    ("next_gc_bytes", K::Int),
    ("gc_total_runs", K::Int),
];

fn check_latency(what: &str, v: &Value) {
    check_object(
        what,
        v,
        &[("count", K::Int), ("percentiles", K::ArrOrNull)],
        &[],
    );
    if let Some(ps) = v["percentiles"].as_array() {
        for p in ps {
            let o = p
                .as_object()
                .unwrap_or_else(|| panic!("{what} percentile entry: {p}"));
            assert_eq!(o.len(), 2, "{what} percentile keys: {p}");
            assert!(
                p["quantile"].is_number() && p["value"].is_number(),
                "{what}: {p}"
            );
        }
    }
}

fn check_client(what: &str, c: &Value) {
    check_object(what, c, CLIENT, CLIENT_OPT);
    assert_eq!(c["version"], "V2", "{what}");
    // keys omitted when zero/false/empty must not be present with such values
    for k in [
        "zone_local_msg_count",
        "region_local_msg_count",
        "global_msg_count",
    ] {
        if let Some(x) = c.get(k) {
            assert!(x.as_i64().unwrap() > 0, "{what}.{k} present with 0");
        }
    }
    if let Some(a) = c.get("authed") {
        assert_eq!(a, &json!(true), "{what}.authed present while false");
    }
    for k in ["auth_identity", "auth_identity_url"] {
        if let Some(x) = c.get(k) {
            assert_ne!(x, &json!(""), "{what}.{k} present while empty");
        }
    }
    if let Some(pc) = c.get("pub_counts") {
        let pc = pc.as_array().unwrap();
        assert!(!pc.is_empty(), "{what}.pub_counts present while empty");
        for e in pc {
            check_object("pub_count", e, &[("topic", K::Str), ("count", K::Int)], &[]);
        }
    }
}

/// Full structural check of one `/stats` JSON document.
fn check_stats(s: &Value, expect_memory: bool) {
    check_object("stats", s, TOP, &[("memory", K::Obj)]);
    assert_eq!(
        s.get("memory").is_some(),
        expect_memory,
        "memory presence: {s}"
    );
    if let Some(m) = s.get("memory") {
        check_object("memory", m, MEMORY, &[]);
    }
    for t in s["topics"].as_array().into_iter().flatten() {
        check_object("topic", t, TOPIC, STORE_HEALTH);
        if let Some(h) = t.get("store_health") {
            check_object("topic.store_health", h, HEALTH_KEYS, &[]);
        }
        check_latency("topic.e2e_processing_latency", &t["e2e_processing_latency"]);
        for c in t["channels"].as_array().unwrap() {
            let optional: Vec<(&str, K)> = LOCALITY.iter().chain(STORE_HEALTH).copied().collect();
            check_object("channel", c, CHANNEL, &optional);
            if let Some(h) = c.get("store_health") {
                check_object("channel.store_health", h, HEALTH_KEYS, &[]);
            }
            for k in [
                "zone_local_msg_count",
                "region_local_msg_count",
                "global_msg_count",
            ] {
                if let Some(x) = c.get(k) {
                    assert!(x.as_i64().unwrap() > 0, "channel.{k} present with 0");
                }
            }
            check_latency(
                "channel.e2e_processing_latency",
                &c["e2e_processing_latency"],
            );
            for cl in c["clients"].as_array().into_iter().flatten() {
                check_client("client", cl);
            }
        }
    }
    for p in s["producers"].as_array().into_iter().flatten() {
        check_client("producer", p);
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn consumer(n: &Nsqd, topic: &str, channel: &str, rdy: u32) -> Conn {
    let mut c = n.connect();
    c.subscribe(topic, channel);
    c.cmd(&format!("RDY {rdy}"));
    c
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x[key].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn empty_nsqd() {
    let n = Nsqd::start(&[]);
    let s = httpx::stats(&n, "");
    check_stats(&s, true);
    assert_eq!(s["version"], "1.3.0");
    assert_eq!(s["health"], "OK");
    assert_eq!(s["topics"], json!([]), "no topics -> empty list");
    assert_eq!(s["producers"], Value::Null, "no producers -> null");
    let st = int(&s, "start_time");
    assert!(
        (now_s() - 60..=now_s() + 5).contains(&st),
        "start_time {st}"
    );
    let info = httpx::assert_ok_json(&httpx::get(&n, "/info"));
    assert_eq!(info["start_time"], s["start_time"]);
}

#[test]
fn include_mem_param() {
    let n = Nsqd::start(&[]);
    for q in ["include_mem=false", "include_mem=0"] {
        let s = httpx::stats(&n, q);
        check_stats(&s, false);
        assert!(s.get("memory").is_none(), "{q}");
    }
    for q in [
        "include_mem=true",
        "include_mem=1",
        "include_mem=bogus",
        "include_mem=",
    ] {
        check_stats(&httpx::stats(&n, q), true);
    }
}

#[test]
fn full_schema_and_counts_with_consumer_and_producer() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    let f = c.identify(r#"{"client_id":"cid","hostname":"chost","user_agent":"ua/1.0"}"#);
    assert_eq!(f.text(), "OK");
    c.subscribe("t", "ch");
    c.cmd("RDY 2");

    let mut p = n.connect();
    p.publish("t", b"a");
    p.publish("t", b"bb");
    p.publish("t", b"ccc");

    let m1 = c.read_message();
    let _m2 = c.read_message();
    c.cmd(&format!("FIN {}", m1.id_str()));
    let m3 = c.read_message();
    c.cmd(&format!("REQ {} 0", m3.id_str()));
    let again = c.read_message();
    assert_eq!(again.id, m3.id);
    assert_eq!(again.attempts, 2);

    let s = eventually(|| {
        let s = httpx::stats(&n, "");
        let cl = &s["topics"][0]["channels"][0]["clients"][0];
        (cl["finish_count"] == 1 && cl["requeue_count"] == 1 && cl["in_flight_count"] == 2)
            .then_some(s)
    });
    check_stats(&s, true);

    let t = &s["topics"][0];
    assert_eq!(t["topic_name"], "t");
    assert_eq!(int(t, "message_count"), 3);
    assert_eq!(int(t, "message_bytes"), 6);
    assert_eq!((int(t, "depth"), int(t, "backend_depth")), (0, 0));
    assert_eq!(t["paused"], false);
    assert_eq!(
        t["e2e_processing_latency"],
        json!({"count":0,"percentiles":null})
    );

    let ch = &t["channels"][0];
    assert_eq!(ch["channel_name"], "ch");
    assert_eq!((int(ch, "depth"), int(ch, "backend_depth")), (0, 0));
    assert_eq!(int(ch, "in_flight_count"), 2);
    assert_eq!(int(ch, "deferred_count"), 0);
    assert_eq!(int(ch, "message_count"), 3, "requeues are not counted");
    assert_eq!(int(ch, "requeue_count"), 1);
    assert_eq!(int(ch, "timeout_count"), 0);
    assert_eq!(int(ch, "client_count"), 1);
    assert_eq!(ch["paused"], false);
    assert_eq!(
        ch["e2e_processing_latency"],
        json!({"count":0,"percentiles":null})
    );
    // four deliveries, all from the in-memory path, all to a "global" consumer
    assert_eq!(ch.get("global_msg_count"), Some(&json!(4)), "{ch}");
    assert!(ch.get("zone_local_msg_count").is_none() && ch.get("region_local_msg_count").is_none());

    let cl = &ch["clients"][0];
    assert_eq!(cl["client_id"], "cid");
    assert_eq!(cl["hostname"], "chost");
    assert_eq!(cl["user_agent"], "ua/1.0");
    assert_eq!(
        cl["remote_address"],
        c.stream.local_addr().unwrap().to_string().as_str()
    );
    assert_eq!(int(cl, "state"), 3, "subscribed");
    assert_eq!(int(cl, "ready_count"), 2);
    assert_eq!(int(cl, "in_flight_count"), 2);
    assert_eq!(int(cl, "message_count"), 4, "includes the redelivery");
    assert_eq!(int(cl, "finish_count"), 1);
    assert_eq!(int(cl, "requeue_count"), 1);
    assert_eq!(int(cl, "sample_rate"), 0);
    assert_eq!(
        (
            cl["deflate"].clone(),
            cl["snappy"].clone(),
            cl["tls"].clone()
        ),
        (json!(false), json!(false), json!(false))
    );
    assert_eq!(cl["tls_version"], "");
    assert_eq!(cl["tls_cipher_suite"], "");
    assert_eq!(cl["tls_negotiated_protocol"], "");
    assert_eq!(cl["tls_negotiated_protocol_is_mutual"], false);
    assert_eq!(cl["topology_zone"], "");
    assert_eq!(cl["topology_region"], "");
    assert!(
        cl.get("pub_counts").is_none(),
        "consumer never published: {cl}"
    );
    assert!(cl.get("authed").is_none());
    let ts = int(cl, "connect_ts");
    assert!(
        (now_s() - 60..=now_s() + 5).contains(&ts),
        "connect_ts {ts}"
    );

    let prods = s["producers"]
        .as_array()
        .expect("producers list once a connection published");
    assert_eq!(prods.len(), 1, "{s}");
    let pr = &prods[0];
    assert_eq!(
        pr["remote_address"],
        p.stream.local_addr().unwrap().to_string().as_str()
    );
    assert_eq!(pr["client_id"], "127.0.0.1", "defaults to the peer IP");
    assert_eq!(pr["hostname"], "127.0.0.1");
    assert_eq!(pr["user_agent"], "");
    assert_eq!(int(pr, "state"), 0, "never subscribed");
    assert_eq!(
        (
            int(pr, "ready_count"),
            int(pr, "in_flight_count"),
            int(pr, "message_count")
        ),
        (0, 0, 0)
    );
    assert_eq!(pr["pub_counts"], json!([{"topic":"t","count":3}]));
}

#[test]
fn producers_null_until_publish_and_gone_after_disconnect() {
    let n = Nsqd::start(&[]);
    let mut p = n.connect();
    p.identify(r#"{"client_id":"prod"}"#);
    assert_eq!(
        httpx::stats(&n, "")["producers"],
        Value::Null,
        "identified but not published"
    );
    p.publish("t", b"x");
    let s = httpx::stats(&n, "");
    check_stats(&s, true);
    assert_eq!(names(&s["producers"], "client_id"), vec!["prod"]);
    drop(p);
    eventually(|| httpx::stats(&n, "")["producers"].is_null().then_some(()));
}

#[test]
fn mpub_and_dpub_count_as_publishing() {
    let n = Nsqd::start(&[]);
    let mut p = n.connect();
    p.cmd_body("MPUB t", &Conn::mpub_body(&[b"1", b"2"]));
    p.expect_ok();
    let mut d = n.connect();
    d.cmd_body("DPUB t 1000", b"x");
    d.expect_ok();
    let s = httpx::stats(&n, "");
    check_stats(&s, true);
    let prods = s["producers"].as_array().unwrap();
    assert_eq!(prods.len(), 2);
    let mut counts: Vec<i64> = prods
        .iter()
        .map(|p| int(&p["pub_counts"][0], "count"))
        .collect();
    counts.sort();
    assert_eq!(counts, vec![1, 2]);
}

#[test]
fn subscribed_publisher_is_in_both_lists() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 0);
    c.publish("other", b"x");
    let s = httpx::stats(&n, "");
    check_stats(&s, true);
    let addr = c.stream.local_addr().unwrap().to_string();
    let t = s["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic_name"] == "t")
        .unwrap()
        .clone();
    assert_eq!(
        t["channels"][0]["clients"][0]["remote_address"],
        addr.as_str()
    );
    assert_eq!(
        t["channels"][0]["clients"][0]["pub_counts"],
        json!([{"topic":"other","count":1}])
    );
    assert_eq!(s["producers"][0]["remote_address"], addr.as_str());
    assert_eq!(int(&s["producers"][0], "state"), 3);
}

#[test]
fn include_clients_false_nulls_clients_and_producers() {
    let n = Nsqd::start(&[]);
    let _c = consumer(&n, "t", "c", 1);
    let mut p = n.connect();
    p.publish("t", b"x");
    for q in ["include_clients=false", "include_clients=0"] {
        let s = httpx::stats(&n, q);
        check_stats(&s, true);
        let ch = &s["topics"][0]["channels"][0];
        assert_eq!(ch["clients"], Value::Null, "{q}");
        assert_eq!(int(ch, "client_count"), 1, "count still computed");
        assert_eq!(s["producers"], Value::Null, "{q}");
    }
    for q in [
        "include_clients=true",
        "include_clients=1",
        "include_clients=nope",
    ] {
        let s = httpx::stats(&n, q);
        assert_eq!(
            s["topics"][0]["channels"][0]["clients"]
                .as_array()
                .map(|a| a.len()),
            Some(1),
            "{q}"
        );
        assert_eq!(s["producers"].as_array().map(|a| a.len()), Some(1), "{q}");
    }
}

#[test]
fn channel_without_clients_has_empty_client_list() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c", b""));
    let s = httpx::stats(&n, "");
    check_stats(&s, true);
    let ch = &s["topics"][0]["channels"][0];
    assert_eq!(ch["clients"], json!([]));
    assert_eq!(int(ch, "client_count"), 0);
    assert!(
        ch.get("global_msg_count").is_none(),
        "nothing delivered yet"
    );
}

#[test]
fn topic_filter() {
    let n = Nsqd::start(&[]);
    let mut p = n.connect();
    p.publish("a", b"1");
    p.publish("b", b"1");
    let s = httpx::stats(&n, "topic=b");
    check_stats(&s, true);
    assert_eq!(names(&s["topics"], "topic_name"), vec!["b"]);
    assert!(s["producers"].is_array());
    // unknown topic: topics null and producers null
    let s = httpx::stats(&n, "topic=nope");
    check_stats(&s, true);
    assert_eq!(s["topics"], Value::Null);
    assert_eq!(s["producers"], Value::Null);
    // an empty filter value means all
    let s = httpx::stats(&n, "topic=");
    assert_eq!(names(&s["topics"], "topic_name"), vec!["a", "b"]);
}

#[test]
fn topic_filter_restricts_pub_counts() {
    let n = Nsqd::start(&[]);
    let mut p = n.connect();
    p.publish("t1", b"x");
    p.publish("t1", b"y");
    p.publish("t2", b"z");
    let s = httpx::stats(&n, "topic=t1");
    check_stats(&s, true);
    assert_eq!(
        s["producers"][0]["pub_counts"],
        json!([{"topic":"t1","count":2}])
    );
    let s = httpx::stats(&n, "topic=t2");
    assert_eq!(
        s["producers"][0]["pub_counts"],
        json!([{"topic":"t2","count":1}])
    );
    // unfiltered: every reported entry is accurate
    let s = httpx::stats(&n, "");
    let pc = s["producers"][0]["pub_counts"].as_array().unwrap().clone();
    assert!(!pc.is_empty());
    for e in pc {
        assert!(
            e == json!({"topic":"t1","count":2}) || e == json!({"topic":"t2","count":1}),
            "{e}"
        );
    }
}

#[test]
fn channel_filter_drops_topics_without_the_channel() {
    let n = Nsqd::start(&[]);
    for (t, c) in [
        ("t1", "shared"),
        ("t1", "only1"),
        ("t2", "shared"),
        ("t3", "other"),
    ] {
        assert_ok_empty(&httpx::post(&n, &format!("/topic/create?topic={t}"), b""));
        assert_ok_empty(&httpx::post(
            &n,
            &format!("/channel/create?topic={t}&channel={c}"),
            b"",
        ));
    }
    let s = httpx::stats(&n, "channel=shared");
    check_stats(&s, true);
    assert_eq!(names(&s["topics"], "topic_name"), vec!["t1", "t2"]);
    for t in s["topics"].as_array().unwrap() {
        assert_eq!(names(&t["channels"], "channel_name"), vec!["shared"]);
    }
    let s = httpx::stats(&n, "channel=missing");
    assert_eq!(s["topics"], json!([]), "all topics dropped -> empty list");
    let s = httpx::stats(&n, "topic=t1&channel=only1");
    assert_eq!(names(&s["topics"], "topic_name"), vec!["t1"]);
    assert_eq!(
        names(&s["topics"][0]["channels"], "channel_name"),
        vec!["only1"]
    );
    let s = httpx::stats(&n, "topic=t3&channel=shared");
    assert_eq!(s["topics"], json!([]));
}

#[test]
fn topics_and_channels_sorted_by_name() {
    let n = Nsqd::start(&[]);
    for t in ["zeta", "Alpha", "mid", "alpha", "b.c", "b-c", "b_c"] {
        assert_ok_empty(&httpx::post(&n, &format!("/topic/create?topic={t}"), b""));
    }
    for c in ["c3", "a1", "b2", "B0", "a1#ephemeral"] {
        assert_ok_empty(&httpx::post(
            &n,
            &format!("/channel/create?topic=mid&channel={}", httpx::enc(c)),
            b"",
        ));
    }
    let s = httpx::stats(&n, "");
    check_stats(&s, true);
    // byte-wise ordering
    assert_eq!(
        names(&s["topics"], "topic_name"),
        vec!["Alpha", "alpha", "b-c", "b.c", "b_c", "mid", "zeta"]
    );
    let mid = s["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic_name"] == "mid")
        .unwrap()
        .clone();
    assert_eq!(
        names(&mid["channels"], "channel_name"),
        vec!["B0", "a1", "a1#ephemeral", "b2", "c3"]
    );
}

#[test]
fn timeout_count_and_redelivery() {
    let n = Nsqd::start(&["--msg-timeout=300ms"]);
    let mut c = consumer(&n, "t", "c", 1);
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"slow"), "OK");
    let m = c.read_message();
    let again = c.read_message();
    assert_eq!((again.id, again.attempts), (m.id, 2));
    c.cmd(&format!("FIN {}", again.id_str()));
    let ch = eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (int(&ch["clients"][0], "finish_count") == 1 && int(&ch, "in_flight_count") == 0)
            .then_some(ch)
    });
    assert_eq!(int(&ch, "timeout_count"), 1);
    assert_eq!(
        int(&ch, "message_count"),
        1,
        "timeouts are not counted as messages"
    );
    assert_eq!(int(&ch, "requeue_count"), 0);
    assert_eq!(int(&ch, "depth"), 0);
    assert_eq!(int(&ch["clients"][0], "message_count"), 2);
    assert_eq!(int(&ch["clients"][0], "in_flight_count"), 0);
}

#[test]
fn deferred_count_from_req_with_delay() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 1);
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"m"), "OK");
    let m = c.read_message();
    c.cmd(&format!("REQ {} 60000", m.id_str()));
    let ch = eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (int(&ch, "deferred_count") == 1).then_some(ch)
    });
    assert_eq!((int(&ch, "in_flight_count"), int(&ch, "depth")), (0, 0));
    assert_eq!(int(&ch, "requeue_count"), 1);
    assert_eq!(int(&ch["clients"][0], "requeue_count"), 1);
    assert_eq!(int(&ch["clients"][0], "in_flight_count"), 0);
}

#[test]
fn deferred_publish_counts_per_channel() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=a", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=b", b""));
    assert_ok_text(&httpx::post(&n, "/pub?topic=t&defer=60000", b"d"), "OK");
    let t = eventually(|| {
        let t = httpx::topic(&n, "t")?;
        t["channels"]
            .as_array()?
            .iter()
            .all(|c| c["deferred_count"] == 1)
            .then_some(t)
    });
    for ch in t["channels"].as_array().unwrap() {
        assert_eq!((int(ch, "depth"), int(ch, "message_count")), (0, 1), "{ch}");
    }
    assert_eq!(int(&t, "depth"), 0);
}

#[test]
fn client_states_ready_count_and_close_wait() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 7);
    let cl = eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (ch["clients"][0]["ready_count"] == 7).then_some(ch["clients"][0].clone())
    });
    assert_eq!(int(&cl, "state"), 3);
    c.cmd("CLS");
    let f = c.read_non_heartbeat();
    assert_eq!(f.text(), "CLOSE_WAIT");
    let cl = eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (ch["clients"][0]["state"] == 4).then_some(ch["clients"][0].clone())
    });
    assert_eq!(int(&cl, "ready_count"), 0, "CLS forces RDY 0");
}

#[test]
fn identify_can_blank_client_id_and_sets_topology() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.identify(
        r#"{"user_agent":"x/1","topology_zone":"z1","topology_region":"r1","sample_rate":10}"#,
    );
    c.subscribe("t", "c");
    let s = httpx::stats(&n, "");
    check_stats(&s, true);
    let cl = &s["topics"][0]["channels"][0]["clients"][0];
    assert_eq!(
        cl["client_id"], "",
        "IDENTIFY without client_id sets it to empty"
    );
    assert_eq!(cl["hostname"], "");
    assert_eq!(cl["topology_zone"], "z1");
    assert_eq!(cl["topology_region"], "r1");
    assert_eq!(int(cl, "sample_rate"), 10);
}

#[test]
fn paused_flags_in_stats() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c1", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c2", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/pause?topic=t&channel=c2", b""));
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(t["paused"], false);
    assert_eq!(t["channels"][0]["paused"], false);
    assert_eq!(t["channels"][1]["paused"], true);
    assert_ok_empty(&httpx::post(&n, "/topic/pause?topic=t", b""));
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(t["paused"], true);
    assert_eq!(t["channels"][0]["paused"], false);
    assert_ok_empty(&httpx::post(&n, "/channel/unpause?topic=t&channel=c2", b""));
    assert_ok_empty(&httpx::post(&n, "/topic/unpause?topic=t", b""));
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(
        (t["paused"].clone(), t["channels"][1]["paused"].clone()),
        (json!(false), json!(false))
    );
}

#[test]
fn global_msg_count_appears_after_memory_delivery() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c", b""));
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"m"), "OK");
    eventually(|| (int(&httpx::channel(&n, "t", "c")?, "depth") == 1).then_some(()));
    let ch = httpx::channel(&n, "t", "c").unwrap();
    assert!(
        ch.get("global_msg_count").is_none(),
        "queued but not delivered: {ch}"
    );
    let mut c = consumer(&n, "t", "c", 1);
    c.read_message();
    let ch = eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        ch.get("global_msg_count").is_some().then_some(ch)
    });
    assert_eq!(ch["global_msg_count"], 1);
    assert!(ch.get("zone_local_msg_count").is_none());
    assert!(ch.get("region_local_msg_count").is_none());
}

#[test]
fn e2e_latency_without_percentiles_is_count_zero_null() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 1);
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"m"), "OK");
    let m = c.read_message();
    c.cmd(&format!("FIN {}", m.id_str()));
    let t = eventually(|| {
        let t = httpx::topic(&n, "t")?;
        (t["channels"][0]["clients"][0]["finish_count"] == 1).then_some(t)
    });
    assert_eq!(
        t["e2e_processing_latency"],
        json!({"count":0,"percentiles":null})
    );
    assert_eq!(
        t["channels"][0]["e2e_processing_latency"],
        json!({"count":0,"percentiles":null})
    );
}

#[test]
fn e2e_latency_with_percentile() {
    let n = Nsqd::start(&["--e2e-processing-latency-percentile=0.99"]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=bare", b""));
    let t = httpx::topic(&n, "bare").unwrap();
    assert_eq!(
        t["e2e_processing_latency"],
        json!({"count":0,"percentiles":null}),
        "topic without channels"
    );

    let mut c = consumer(&n, "t", "c", 1);
    let ch = httpx::channel(&n, "t", "c").unwrap();
    let lat = &ch["e2e_processing_latency"];
    check_latency("channel", lat);
    assert_eq!(int(lat, "count"), 0);
    let ps = lat["percentiles"]
        .as_array()
        .expect("one entry per configured quantile");
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["quantile"].as_f64(), Some(0.99));
    assert_eq!(ps[0]["value"].as_f64(), Some(0.0), "no samples -> 0");

    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"m"), "OK");
    let m = c.read_message();
    std::thread::sleep(std::time::Duration::from_millis(5));
    c.cmd(&format!("FIN {}", m.id_str()));
    let t = eventually(|| {
        let t = httpx::topic(&n, "t")?;
        (int(&t["channels"][0]["e2e_processing_latency"], "count") >= 1).then_some(t)
    });
    let s = httpx::stats(&n, "");
    check_stats(&s, true);
    let lat = &t["channels"][0]["e2e_processing_latency"];
    assert_eq!(int(lat, "count"), 1);
    let ps = lat["percentiles"].as_array().unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["quantile"].as_f64(), Some(0.99));
    let v = ps[0]["value"].as_f64().unwrap();
    assert!((5_000_000.0..60e9).contains(&v), "latency value in ns: {v}");
    let tl = &t["e2e_processing_latency"];
    let tps = tl["percentiles"]
        .as_array()
        .expect("topic with channels has percentiles");
    assert_eq!(tps.len(), 1);
    assert_eq!(tps[0]["quantile"].as_f64(), Some(0.99));
    assert!(tps[0]["value"].as_f64().unwrap() > 0.0);
}

#[test]
fn e2e_latency_percentiles_in_descending_order() {
    let n = Nsqd::start(&[
        "--e2e-processing-latency-percentile=0.5",
        "--e2e-processing-latency-percentile=0.99,1.0",
    ]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c", b""));
    let ch = httpx::channel(&n, "t", "c").unwrap();
    let qs: Vec<f64> = ch["e2e_processing_latency"]["percentiles"]
        .as_array()
        .expect("percentiles")
        .iter()
        .map(|p| p["quantile"].as_f64().unwrap())
        .collect();
    assert_eq!(qs, vec![1.0, 0.99, 0.5]);
}

#[test]
fn ephemeral_channel_leaves_stats_when_consumer_disconnects() {
    let n = Nsqd::start(&[]);
    let c = consumer(&n, "t", "tail123456#ephemeral", 1);
    let s = httpx::stats(&n, "");
    check_stats(&s, true);
    assert_eq!(
        names(&s["topics"][0]["channels"], "channel_name"),
        vec!["tail123456#ephemeral"]
    );
    drop(c);
    eventually(|| {
        httpx::stats(&n, "")["topics"][0]["channels"]
            .as_array()?
            .is_empty()
            .then_some(())
    });
}
