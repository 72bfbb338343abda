//! The fake cluster over real sockets: its nsqd and nsqlookupd answers keep NSQ 1.3.0's keys in
//! NSQ's order, honour the `/stats` filters, and `bench_http` can load them.

use std::fmt;
use std::time::Duration;

use nsq_bench::fake_cluster::content::Shape;
use nsq_bench::fake_cluster::Cluster;
use nsq_bench::http_load::{self, HttpLoadOpts, Target};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// JSON that remembers the order of object keys (serde_json's `Value` sorts them).
#[derive(Debug, Clone)]
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar(Value),
}

impl Ordered {
    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(fields) => fields.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(fields) => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key:?}")),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn items(&self) -> &[Ordered] {
        match self {
            Ordered::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Ordered::Scalar(Value::Null))
    }

    fn value(&self) -> &Value {
        match self {
            Ordered::Scalar(v) => v,
            other => panic!("not a scalar: {other:?}"),
        }
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut fields = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
            fields.push((k, v));
        }
        Ok(Ordered::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Ordered>()? {
            items.push(v);
        }
        Ok(Ordered::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(v.into()))
    }

    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::Null))
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

/// `GET path` on a fresh connection: status, then the body.
async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    (status, body.to_string())
}

async fn get_json(addr: &str, path: &str) -> Ordered {
    let (status, body) = get(addr, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The keys of Go nsqd 1.3.0's `/stats?format=json`, in its order.
const STATS_KEYS: [&str; 6] = [
    "version",
    "health",
    "start_time",
    "topics",
    "memory",
    "producers",
];
const TOPIC_KEYS: [&str; 8] = [
    "topic_name",
    "channels",
    "depth",
    "backend_depth",
    "message_count",
    "message_bytes",
    "paused",
    "e2e_processing_latency",
];
const CHANNEL_KEYS: [&str; 12] = [
    "channel_name",
    "depth",
    "backend_depth",
    "in_flight_count",
    "deferred_count",
    "message_count",
    "requeue_count",
    "timeout_count",
    "client_count",
    "clients",
    "paused",
    "e2e_processing_latency",
];
const CLIENT_KEYS: [&str; 20] = [
    "client_id",
    "hostname",
    "version",
    "remote_address",
    "state",
    "ready_count",
    "in_flight_count",
    "message_count",
    "finish_count",
    "requeue_count",
    "connect_ts",
    "sample_rate",
    "deflate",
    "snappy",
    "user_agent",
    "tls",
    "tls_cipher_suite",
    "tls_version",
    "tls_negotiated_protocol",
    "tls_negotiated_protocol_is_mutual",
];
const MEMORY_KEYS: [&str; 9] = [
    "heap_objects",
    "heap_idle_bytes",
    "heap_in_use_bytes",
    "heap_released_bytes",
    "gc_pause_usec_100",
    "gc_pause_usec_99",
    "gc_pause_usec_95",
    "next_gc_bytes",
    "gc_total_runs",
];
const PEER_KEYS: [&str; 6] = [
    "remote_address",
    "hostname",
    "broadcast_address",
    "tcp_port",
    "http_port",
    "version",
];

const SHAPE: Shape = Shape {
    nodes: 3,
    topics: 25,
    channels: 2,
    clients: 2,
    producers: 2,
};

fn check_latency(l: &Ordered) {
    assert_eq!(l.keys(), ["count", "percentiles"]);
    for p in l.get("percentiles").items() {
        assert_eq!(p.keys(), ["quantile", "value"]);
    }
}

#[tokio::test]
async fn nsqd_stats_have_the_shape_of_nsqd_1_3_0() {
    let cluster = Cluster::start(SHAPE).await.unwrap();
    let node = cluster.nodes[1].http_address();

    // One topic, with clients: the request nsqadmin's channel page makes without `channel`.
    let v = get_json(&node, "/stats?format=json&topic=t7").await;
    assert_eq!(v.keys(), STATS_KEYS);
    assert_eq!(v.get("version").value(), "1.3.0");
    assert_eq!(v.get("health").value(), "OK");
    assert_eq!(v.get("memory").keys(), MEMORY_KEYS);
    let topics = v.get("topics").items();
    assert_eq!(topics.len(), 1);
    let topic = &topics[0];
    assert_eq!(topic.keys(), TOPIC_KEYS);
    assert_eq!(topic.get("topic_name").value(), "t7");
    check_latency(topic.get("e2e_processing_latency"));
    let channels = topic.get("channels").items();
    let names: Vec<&Value> = channels
        .iter()
        .map(|c| c.get("channel_name").value())
        .collect();
    assert_eq!(names, ["c0", "c1"]);
    for c in channels {
        assert_eq!(c.keys(), CHANNEL_KEYS);
        check_latency(c.get("e2e_processing_latency"));
        let clients = c.get("clients").items();
        assert_eq!(clients.len(), 2);
        assert_eq!(c.get("client_count").value(), 2);
        for client in clients {
            assert_eq!(client.keys(), CLIENT_KEYS);
        }
    }
    // Producers come with pub_counts for the selected topic only (t7 is producer 1's).
    let producers = v.get("producers").items();
    assert_eq!(producers.len(), 2);
    assert!(!producers[0].keys().contains(&"pub_counts"));
    let counts = producers[1].get("pub_counts").items();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].keys(), ["topic", "count"]);
    assert_eq!(counts[0].get("topic").value(), "t7");

    // nsqadmin's topic page asks without clients.
    let v = get_json(
        &node,
        "/stats?format=json&topic=t7&channel=c1&include_clients=false",
    )
    .await;
    let channels = v.get("topics").items()[0].get("channels").items();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].get("channel_name").value(), "c1");
    assert!(channels[0].get("clients").is_null());
    assert!(v.get("producers").is_null());

    // Unknown topic and channel, as nsqd answers them.
    let v = get_json(&node, "/stats?format=json&topic=nope").await;
    assert!(v.get("topics").is_null() && v.get("producers").is_null());
    let v = get_json(
        &node,
        "/stats?format=json&topic=t7&channel=nope&include_mem=0",
    )
    .await;
    assert!(v.get("topics").items().is_empty());
    assert_eq!(
        v.keys(),
        ["version", "health", "start_time", "topics", "producers"]
    );

    // Everything: every topic, sorted by name as nsqd sorts them.
    let v = get_json(&node, "/stats?format=json").await;
    let names: Vec<String> = v
        .get("topics")
        .items()
        .iter()
        .map(|t| t.get("topic_name").value().as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 25);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let info = get_json(&node, "/info").await;
    assert_eq!(
        info.keys(),
        [
            "version",
            "broadcast_address",
            "hostname",
            "http_port",
            "tcp_port",
            "start_time",
            "max_heartbeat_interval",
            "max_output_buffer_size",
            "max_output_buffer_timeout",
            "max_deflate_level",
        ]
    );
    assert_eq!(info.get("hostname").value(), "fake-nsqd-1");
    assert_eq!(info.get("http_port").value(), cluster.nodes[1].http_port);
    assert_eq!(get(&node, "/ping").await, (200, "OK".to_string()));
    assert_eq!(get(&node, "/nope").await.0, 404);
}

#[tokio::test]
async fn lookupd_lists_every_node_for_every_topic() {
    let cluster = Cluster::start(SHAPE).await.unwrap();
    let lookupd = cluster.lookupd.to_string();

    let v = get_json(&lookupd, "/nodes").await;
    let producers = v.get("producers").items();
    assert_eq!(producers.len(), 3);
    for (p, node) in producers.iter().zip(&cluster.nodes) {
        let mut keys = PEER_KEYS.to_vec();
        keys.extend(["tombstones", "topics"]);
        assert_eq!(p.keys(), keys);
        assert_eq!(p.get("http_port").value(), node.http_port);
        assert_eq!(p.get("tcp_port").value(), node.tcp_port);
        assert_eq!(p.get("topics").items().len(), 25);
        assert!(p
            .get("tombstones")
            .items()
            .iter()
            .all(|t| t.value() == false));
    }
    let tcp_ports: std::collections::HashSet<u16> =
        cluster.nodes.iter().map(|n| n.tcp_port).collect();
    assert_eq!(tcp_ports.len(), 3, "nsqadmin tells nodes apart by TCP port");

    let v = get_json(&lookupd, "/lookup?topic=t24").await;
    assert_eq!(v.keys(), ["channels", "producers"]);
    assert_eq!(v.get("producers").items().len(), 3);
    assert_eq!(v.get("producers").items()[0].keys(), PEER_KEYS);
    assert_eq!(get(&lookupd, "/lookup?topic=t25").await.0, 404);
    assert_eq!(get(&lookupd, "/lookup").await.0, 400);

    let v = get_json(&lookupd, "/topics").await;
    assert_eq!(v.get("topics").items().len(), 25);
    let v = get_json(&lookupd, "/channels?topic=t3").await;
    assert_eq!(v.get("channels").items().len(), 2);
    let v = get_json(&lookupd, "/channels?topic=zz").await;
    assert!(v.get("channels").items().is_empty());
    assert_eq!(get(&lookupd, "/info").await.1, r#"{"version":"1.3.0"}"#);
    assert_eq!(get(&lookupd, "/ping").await, (200, "OK".to_string()));
}

#[tokio::test]
async fn bench_http_loads_the_fake_cluster() {
    let cluster = Cluster::start(SHAPE).await.unwrap();
    let node = cluster.nodes[0].http_address();
    let opts = HttpLoadOpts {
        targets: vec![
            Target::parse(&format!("http://{node}/stats?format=json&topic=t1")).unwrap(),
            Target::parse(&format!("http://{}/nodes", cluster.lookupd)).unwrap(),
        ],
        concurrency: 3,
        runfor: Duration::from_secs(30),
        count: 60,
        timeout: Duration::from_secs(10),
        accept_encoding: None,
    };
    let r = http_load::run_async(opts).await.unwrap();
    assert_eq!((r.ok, r.errors), (60, 0), "{:?}", r.first_errors);
    assert!(r.bytes > 60 * 100);
    let lines = r.machine_lines();
    assert!(lines.starts_with("requests: 60\nerrors: 0\n"), "{lines}");

    // A missing page counts as an error, not as a response.
    let opts = HttpLoadOpts {
        targets: vec![Target::parse(&format!("http://{node}/missing")).unwrap()],
        concurrency: 1,
        runfor: Duration::from_secs(30),
        count: 2,
        timeout: Duration::from_secs(10),
        accept_encoding: None,
    };
    let r = http_load::run_async(opts).await.unwrap();
    assert_eq!((r.ok, r.errors), (0, 2));
    assert!(
        r.first_errors[0].contains("status 404"),
        "{:?}",
        r.first_errors
    );
}
