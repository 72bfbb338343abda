//! nsqadmin's JSON API and actions against a real cluster: nsqlookupd and two nsqd, with
//! consumers holding messages in flight, a paused channel and an ephemeral channel.
mod common;

use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;

struct Cluster {
    _dirs: Vec<tempfile::TempDir>,
    lookupd: Proc,
    nsqd: Vec<Proc>,
    _consumers: Vec<Consumer>,
}

/// Topic `orders` on both nodes (3 + 2 messages); channel `archive` (paused) on the first,
/// `live` on both with a consumer holding 2 messages in flight on the first, and an ephemeral
/// channel with a consumer on the second.
fn cluster() -> Cluster {
    let lookupd = start_lookupd();
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let nsqd: Vec<Proc> = dirs
        .iter()
        .map(|d| start_nsqd(d.path(), lookupd.tcp, &[]))
        .collect();
    let (a, b) = (nsqd[0].http, nsqd[1].http);
    nsqd_post(a, "/topic/create?topic=orders", "");
    nsqd_post(b, "/topic/create?topic=orders", "");
    nsqd_post(a, "/channel/create?topic=orders&channel=archive", "");
    nsqd_post(a, "/channel/create?topic=orders&channel=live", "");
    nsqd_post(b, "/channel/create?topic=orders&channel=live", "");
    nsqd_post(a, "/channel/pause?topic=orders&channel=archive", "");
    nsqd_post(a, "/mpub?topic=orders", "1\n2\n3");
    nsqd_post(b, "/mpub?topic=orders", "4\n5");
    let consumers = vec![
        Consumer::subscribe(nsqd[0].tcp.expect("tcp"), "orders", "live", 2),
        Consumer::subscribe(nsqd[1].tcp.expect("tcp"), "orders", "tmp#ephemeral", 0),
    ];
    // Both producers registered the topic with the lookupd.
    eventually(|| {
        let v = get_json(lookupd.http, "/lookup?topic=orders");
        (v["producers"].as_array().map_or(0, Vec::len) == 2).then_some(())
    });
    // The consumer holds its two messages.
    eventually(|| {
        let v = get_json(a, "/stats?format=json&topic=orders&channel=live");
        (v["topics"][0]["channels"][0]["in_flight_count"] == 2).then_some(())
    });
    Cluster {
        _dirs: dirs,
        lookupd,
        nsqd,
        _consumers: consumers,
    }
}

fn admin_for(c: &Cluster, extra: &[&str]) -> Proc {
    let mut args = vec![format!("--lookupd-http-address={}", c.lookupd.http)];
    args.extend(extra.iter().map(|s| s.to_string()));
    start_admin(&args)
}

fn node_name(p: &Proc) -> String {
    format!("127.0.0.1:{}", p.http.port())
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn read_endpoints_aggregate_the_cluster() {
    let c = cluster();
    let admin = admin_for(&c, &[]);
    let h = admin.http;

    assert_eq!(get(h, "/ping").text(), "OK");
    assert_eq!(
        get_json(h, "/api/topics"),
        json!({"topics": ["orders"], "message": ""})
    );

    let t = get_json(h, "/api/topics/orders");
    assert_eq!(t["node"], "*");
    assert_eq!(t["topic_name"], "orders");
    assert_eq!(t["message_count"], 5);
    assert_eq!(t["nodes"].as_array().map(Vec::len), Some(2));
    let channels: Vec<&str> = t["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["channel_name"].as_str())
        .collect();
    assert!(
        channels.contains(&"archive") && channels.contains(&"live"),
        "{channels:?}"
    );
    assert!(channels.contains(&"tmp#ephemeral"), "{channels:?}");
    assert_eq!(
        keys(&t),
        [
            "backend_depth",
            "channels",
            "depth",
            "e2e_processing_latency",
            "hostname",
            "memory_depth",
            "message",
            "message_count",
            "node",
            "nodes",
            "paused",
            "topic_name"
        ]
    );
    // Raw body key order is the reference's, not alphabetical.
    assert!(get(h, "/api/topics/orders")
        .text()
        .starts_with(r#"{"node":"*","hostname":"","topic_name":"orders","depth":"#));

    let live = get_json(h, "/api/topics/orders/live");
    assert_eq!(live["node"], "*");
    assert_eq!(live["in_flight_count"], 2);
    assert_eq!(live["message_count"], 5);
    assert_eq!(live["nodes"].as_array().map(Vec::len), Some(2));
    let clients = live["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), 1);
    let client = &clients[0];
    assert_eq!(client["node"], node_name(&c.nsqd[0]));
    assert_eq!(client["in_flight_count"], 2);
    assert_eq!(client["ready_count"], 2);
    for key in [
        "remote_address",
        "version",
        "client_id",
        "hostname",
        "user_agent",
        "connect_ts",
        "connected",
        "finish_count",
        "requeue_count",
        "message_count",
        "sample_rate",
        "deflate",
        "snappy",
        "authed",
        "auth_identity",
        "auth_identity_url",
        "tls",
        "tls_cipher_suite",
        "tls_version",
        "tls_negotiated_protocol",
        "tls_negotiated_protocol_is_mutual",
    ] {
        assert!(client.get(key).is_some(), "client lacks {key}: {client}");
    }
    assert!(
        client.get("topology_zone").is_none(),
        "1.3.0 has no topology keys"
    );

    let archive = get_json(h, "/api/topics/orders/archive");
    assert_eq!(archive["paused"], true);
    assert_eq!(archive["depth"], 3);
    assert_eq!(archive["clients"], Value::Null);

    // An unknown channel of a known topic: only the message, as the reference answers.
    assert_eq!(
        get(h, "/api/topics/orders/nope").text(),
        r#"{"message":""}"#
    );
    let unknown = get(h, "/api/topics/nope");
    assert_eq!(unknown.status, 502);
    assert!(
        unknown
            .text()
            .starts_with(r#"{"message":"UPSTREAM_ERROR: failed to query any nsqlookupd: got response 404 Not Found"#),
        "{}",
        unknown.text()
    );

    let nodes = get_json(h, "/api/nodes");
    let list = nodes["nodes"].as_array().expect("nodes");
    assert_eq!(list.len(), 2);
    for n in list {
        assert_eq!(
            n["remote_addresses"].as_array().map(Vec::len),
            Some(1),
            "{n}"
        );
        assert_eq!(n["version"], "1.3.0");
        assert_eq!(n["out_of_date"], false);
        assert_eq!(
            n["topics"][0],
            json!({"topic": "orders", "tombstoned": false})
        );
    }

    let node = get_json(h, &format!("/api/nodes/{}", node_name(&c.nsqd[0])));
    assert_eq!(node["node"], node_name(&c.nsqd[0]));
    assert_eq!(node["total_messages"], 3);
    assert_eq!(node["total_clients"], 1);
    assert_eq!(node["topics"][0]["topic_name"], "orders");
    get(h, "/api/nodes/127.0.0.1:1").assert_error(404, "NODE_NOT_FOUND");

    let counter = get_json(h, "/api/counter");
    let key = format!("orders:live:{}", node_name(&c.nsqd[0]));
    assert_eq!(
        counter["stats"][&key],
        json!({"node": node_name(&c.nsqd[0]), "topic_name": "orders", "channel_name": "live", "message_count": 3})
    );
    assert_eq!(counter["stats"].as_object().map(|o| o.len()), Some(4));

    // Every producer has the topic, so nothing is inactive.
    assert_eq!(
        get_json(h, "/api/topics?inactive=true"),
        json!({"topics": {}, "message": ""})
    );
}

#[test]
fn ui_routes_static_files_and_compression() {
    let c = cluster();
    let admin = admin_for(&c, &["--base-path=/admin"]);
    let h = admin.http;
    for page in [
        "/admin",
        "/admin/topics",
        "/admin/topics/orders",
        "/admin/topics/orders/live",
        "/admin/nodes",
        "/admin/nodes/x:1",
        "/admin/counter",
        "/admin/lookup",
    ] {
        let r = get(h, page);
        assert_eq!(r.status, 200, "{page}");
        assert_eq!(r.header("Content-Type"), Some("text/html"), "{page}");
        let text = r.text();
        assert!(text.contains(r#""base_path":"/admin/""#), "{page}: {text}");
        assert!(text.contains(r#""is_admin":true"#), "{page}");
        assert!(!text.contains("%CONFIG%"), "{page}");
    }
    assert_eq!(get(h, "/api/topics").status, 404);
    assert_eq!(get(h, "/admin/ping").text(), "OK");
    let missing = get(h, "/admin/static/nope.js");
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, "NOT_FOUND")
    );

    let gz = http_request_with(
        h,
        "GET",
        "/admin/api/topics",
        "Accept-Encoding: gzip\r\n",
        b"",
    );
    assert_eq!(gz.header("Content-Encoding"), Some("gzip"));
    assert_eq!(gz.header("Vary"), Some("Accept-Encoding"));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut out)
        .expect("gunzip");
    assert_eq!(out, r#"{"topics":["orders"],"message":""}"#);
}

fn nsqd_channel(nsqd: SocketAddr, topic: &str, channel: &str) -> Option<Value> {
    let v = get_json(nsqd, &format!("/stats?format=json&topic={topic}"));
    v["topics"][0]["channels"]
        .as_array()?
        .iter()
        .find(|c| c["channel_name"] == channel)
        .cloned()
}

#[test]
fn actions_take_effect_and_are_notified() {
    let c = cluster();
    let hook = FakeHttp::start(200, "");
    let admin = admin_for(
        &c,
        &[&format!(
            "--notification-http-endpoint=http://{}/hook",
            hook.addr
        )],
    );
    let h = admin.http;
    let (a, b) = (c.nsqd[0].http, c.nsqd[1].http);
    let ok = |r: HttpResponse| assert_eq!((r.status, r.text()), (200, r#"{"message":""}"#.into()));

    let partial = |r: HttpResponse| {
        assert_eq!(r.status, 200);
        let msg = r.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(
            msg.starts_with("WARNING: got response 404 Not Found"),
            "{msg}"
        );
        assert!(msg.contains("CHANNEL_NOT_FOUND"), "{msg}");
    };
    partial(post(
        h,
        "/api/topics/orders/archive",
        r#"{"action":"unpause"}"#,
    ));
    assert_eq!(
        nsqd_channel(a, "orders", "archive").expect("archive")["paused"],
        false
    );

    // The second node lacks `archive`: each channel action there fails, reported as a
    // warning while the first node acts.
    partial(post(
        h,
        "/api/topics/orders/archive",
        r#"{"action":"pause"}"#,
    ));
    assert_eq!(
        nsqd_channel(a, "orders", "archive").expect("archive")["paused"],
        true
    );

    partial(post(
        h,
        "/api/topics/orders/archive",
        r#"{"action":"empty"}"#,
    ));
    assert_eq!(
        nsqd_channel(a, "orders", "archive").expect("archive")["depth"],
        0
    );
    ok(post(h, "/api/topics/orders", r#"{"action":"pause"}"#));
    for n in [a, b] {
        assert_eq!(
            get_json(n, "/stats?format=json&topic=orders")["topics"][0]["paused"],
            true
        );
    }
    ok(post(h, "/api/topics/orders", r#"{"action":"unpause"}"#));
    ok(post(h, "/api/topics/orders", r#"{"action":"empty"}"#));

    ok(post(
        h,
        "/api/topics",
        r#"{"topic":"fresh","channel":"first"}"#,
    ));
    let topics = get_json(c.lookupd.http, "/topics");
    assert!(topics["topics"]
        .as_array()
        .expect("topics")
        .contains(&json!("fresh")));
    assert_eq!(
        get_json(c.lookupd.http, "/channels?topic=fresh")["channels"],
        json!(["first"])
    );

    ok(delete(h, "/api/topics/orders/live", ""));
    assert!(nsqd_channel(a, "orders", "live").is_none());
    assert!(nsqd_channel(b, "orders", "live").is_none());

    ok(delete(
        h,
        &format!("/api/nodes/{}", node_name(&c.nsqd[1])),
        r#"{"topic":"orders"}"#,
    ));
    let no_topics = |n: SocketAddr| {
        let v = get_json(n, "/stats?format=json&topic=orders");
        v["topics"].as_array().map_or(0, Vec::len) == 0
    };
    assert!(no_topics(b));

    ok(delete(h, "/api/topics/orders", ""));
    assert!(no_topics(a));

    let actions = eventually(|| {
        let got = hook.requests();
        (got.len() >= 11).then_some(got)
    });
    let bodies: Vec<Value> = actions
        .iter()
        .map(|r| {
            assert!(r.starts_with("POST /hook HTTP/1.1"), "{r}");
            assert!(
                r.to_ascii_lowercase()
                    .contains("content-type: application/json"),
                "{r}"
            );
            let (_, body) = r.split_once("\r\n\r\n").expect("body");
            serde_json::from_str(body).expect("json body")
        })
        .collect();
    let names: Vec<&str> = bodies.iter().filter_map(|b| b["action"].as_str()).collect();
    for expected in [
        "unpause_channel",
        "pause_channel",
        "empty_channel",
        "pause_topic",
        "unpause_topic",
        "empty_topic",
        "create_topic",
        "create_channel",
        "delete_channel",
        "tombstone_topic_producer",
        "delete_topic",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    let tomb = bodies
        .iter()
        .find(|b| b["action"] == "tombstone_topic_producer")
        .expect("tombstone");
    assert_eq!(tomb["node"], node_name(&c.nsqd[1]));
    assert_eq!(tomb["topic"], "orders");
    assert_eq!(
        tomb["remote_ip"]
            .as_str()
            .map(|s| s.starts_with("127.0.0.1:")),
        Some(true)
    );
    assert_eq!(
        tomb["url"],
        format!("http://{h}/api/nodes/{}", node_name(&c.nsqd[1]))
    );
    assert!(tomb.get("channel").is_none() && tomb.get("user").is_none());
    assert!(tomb["timestamp"].as_i64().is_some() && tomb["via"].as_str().is_some());
}

#[test]
fn admin_users_and_bad_input() {
    let c = cluster();
    let admin = admin_for(&c, &["--admin-user=alice"]);
    let h = admin.http;
    post(h, "/api/topics/orders", r#"{"action":"pause"}"#).assert_error(403, "FORBIDDEN");
    delete(h, "/api/topics/orders", "").assert_error(403, "FORBIDDEN");
    delete(h, "/api/nodes/x:1", r#"{"topic":"orders"}"#).assert_error(403, "FORBIDDEN");
    let r = http_request_with(h, "GET", "/", "X-Forwarded-User: bob\r\n", b"");
    assert!(r.text().contains(r#""is_admin":false"#));
    let as_alice = |method: &str, path: &str, body: &str| {
        http_request_with(
            h,
            method,
            path,
            "X-Forwarded-User: alice\r\n",
            body.as_bytes(),
        )
    };
    assert!(as_alice("GET", "/", "")
        .text()
        .contains(r#""is_admin":true"#));

    as_alice("POST", "/api/topics/orders", r#"{"action":"explode"}"#)
        .assert_error(400, "INVALID_ACTION");
    as_alice("POST", "/api/topics/orders", "").assert_error(400, "EOF");
    as_alice("POST", "/api/topics/orders", "{oops")
        .assert_error(400, "json: key must be a string at line 1 column 2");
    as_alice("POST", "/api/topics/orders", "]")
        .assert_error(400, "invalid character ']' looking for beginning of value");
    as_alice("POST", "/api/topics", r#"{"topic":"bad name"}"#).assert_error(400, "INVALID_TOPIC");
    as_alice(
        "POST",
        "/api/topics",
        r#"{"topic":"ok","channel":"bad/chan"}"#,
    )
    .assert_error(400, "INVALID_CHANNEL");
    as_alice("DELETE", "/api/nodes/x:1", "garbage").assert_error(400, "INVALID_BODY");
    as_alice("DELETE", "/api/nodes/x:1", r#"{"topic":"no good"}"#)
        .assert_error(400, "INVALID_TOPIC");

    get(h, "/api/graphite?metric=depth").assert_error(400, "INVALID_ARG_METRIC");
    get(h, "/api/graphite?metric=rate").assert_error(400, "INVALID_ARG_TARGET");
    get(h, "/api/graphite?metric=rate&target=x").assert_error(500, "INTERNAL_ERROR");

    // /config: from loopback only, by config name, with NSQ's encodings.
    assert_eq!(get(h, "/config/acl_http_header").text(), "X-Forwarded-User");
    assert_eq!(get(h, "/config/admin_users").text(), r#"["alice"]"#);
    assert_eq!(
        get(h, "/config/http_client_request_timeout").text(),
        "5000000000"
    );
    get(h, "/config/nope").assert_error(400, "INVALID_OPTION");
    let put = |opt: &str, body: &str| {
        http_request_with(h, "PUT", &format!("/config/{opt}"), "", body.as_bytes())
    };
    assert_eq!(put("log_level", "debug").text(), "1");
    put("log_level", "loud").assert_error(400, "INVALID_VALUE");
    put("log_level", "").assert_error(413, "INVALID_VALUE");
    put("statsd_prefix", "x").assert_error(400, "INVALID_OPTION");
    let moved = put(
        "nsqlookupd_http_addresses",
        &format!(r#"["{}"]"#, c.lookupd.http),
    );
    assert_eq!(moved.text(), format!(r#"["{}"]"#, c.lookupd.http));

    // Unknown routes and methods answer as NSQ's router does.
    get(h, "/api/nope").assert_error(404, "NOT_FOUND");
    http_request_with(h, "PATCH", "/api/topics", "", b"").assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(get(h, "/api/topics/").status, 301);
}

#[test]
fn dead_slow_and_garbage_nodes_make_partial_answers_in_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live = start_nsqd(dir.path(), None, &[]);
    nsqd_post(live.http, "/pub?topic=t", "x");
    let dead = dead_address();
    let (_silent, slow) = silent_upstream();
    let garbage = FakeHttp::start(200, "<html>not json</html>");
    let admin = start_admin(&[
        format!("--nsqd-http-address={}", live.http),
        format!("--nsqd-http-address={dead}"),
        format!("--nsqd-http-address={slow}"),
        format!("--nsqd-http-address={}", garbage.addr),
        "--http-client-request-timeout=300ms".into(),
    ]);
    // The silent node never answers: the page arrives only because nsqadmin's request timeout
    // fired (the "Client.Timeout exceeded" warning below), not the test client's.
    let v = get_json(admin.http, "/api/topics");
    assert_eq!(v["topics"], json!(["t"]));
    let msg = v["message"].as_str().expect("message");
    assert!(msg.starts_with("WARNING: "), "{msg}");
    assert!(
        msg.contains(&format!("dial tcp {dead}: connect: connection refused")),
        "{msg}"
    );
    assert!(msg.contains("Client.Timeout exceeded"), "{msg}");
    assert!(
        msg.contains("invalid character '<' looking for beginning of value"),
        "{msg}"
    );

    let t = get_json(admin.http, "/api/topics/t");
    assert_eq!(t["message_count"], 1);
    assert!(t["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("WARNING: ")));
    let nodes = get_json(admin.http, "/api/nodes");
    assert_eq!(nodes["nodes"].as_array().map(Vec::len), Some(1));

    // Nothing reachable at all: 502.
    let lonely = start_admin(&[
        format!("--nsqd-http-address={dead}"),
        format!("--nsqd-http-address={}", garbage.addr),
    ]);
    let r = get(lonely.http, "/api/nodes");
    assert_eq!(r.status, 502);
    assert!(
        r.text()
            .starts_with(r#"{"message":"UPSTREAM_ERROR: failed to query any nsqd: "#),
        "{}",
        r.text()
    );
    // An action whose producers cannot be found is an upstream error too.
    let r = post(lonely.http, "/api/topics/t", r#"{"action":"pause"}"#);
    assert_eq!(r.status, 502);
}

#[test]
fn history_fills_from_the_cluster() {
    let c = cluster();
    let admin = admin_for(&c, &["--history-interval=200ms"]);
    let h = admin.http;
    let samples = eventually(|| {
        let v = get_json(h, "/api/history/topics/orders/live");
        let s = v["samples"].as_array()?.clone();
        (s.len() >= 2).then_some(s)
    });
    assert_eq!(samples[0]["in_flight_count"], 2);
    assert_eq!(samples[0]["message_count"], 5);
    assert_eq!(samples[0]["clients"], 1);
    let topic = get_json(h, "/api/history/topics/orders");
    assert_eq!(topic["samples"][0]["message_count"], 5);
    assert_eq!(topic["samples"][0]["in_flight_count"], 2);
    assert_eq!(
        get_json(h, "/api/history/topics/nope")["samples"],
        json!([])
    );
}

#[test]
fn refuses_to_start_without_a_valid_configuration() {
    for (args, expected) in [
        (
            vec![],
            "--nsqd-http-address or --lookupd-http-address required",
        ),
        (
            vec!["--nsqd-http-address=a:1", "--lookupd-http-address=b:2"],
            "use --nsqd-http-address or --lookupd-http-address not both",
        ),
        (
            vec!["--nsqd-http-address=a:1", "--http-client-tls-key=k"],
            "--http-client-tls-cert must be specified with --http-client-tls-key",
        ),
    ] {
        let out = std::process::Command::new(admin_bin())
            .args(&args)
            .arg("--http-address=127.0.0.1:0")
            .output()
            .expect("run nsqadmin");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "FATAL: failed to instantiate nsqadmin - {expected}"
            )),
            "{args:?}: {err}"
        );
    }
    let out = std::process::Command::new(admin_bin())
        .arg("--version")
        .output()
        .expect("run nsqadmin");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("nsqadmin v1.3.0 (built w/"));
    let out = std::process::Command::new(admin_bin())
        .arg("--no-such-flag")
        .output()
        .expect("run nsqadmin");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn graphite_rate_and_render_proxy() {
    let graphite = FakeHttp::start(200, r#"[{"target":"x","datapoints":[[120,1700000000]]}]"#);
    let admin = start_admin(&[
        "--nsqd-http-address=127.0.0.1:1".into(),
        format!("--graphite-url=http://u:p@{}", graphite.addr),
        "--proxy-graphite".into(),
    ]);
    assert_eq!(
        get(
            admin.http,
            "/api/graphite?metric=rate&target=nsq.*.message_count"
        )
        .text(),
        r#"{"rate":"2.00"}"#
    );
    let rendered = get(admin.http, "/render?target=x&format=json");
    assert_eq!(rendered.status, 200);
    assert_eq!(
        rendered.text(),
        r#"[{"target":"x","datapoints":[[120,1700000000]]}]"#
    );
    let seen = graphite.requests();
    assert!(
        seen[0].starts_with(
            "GET /render?format=json&from=-120sec&target=nsq.%2A.message_count&until=-60sec HTTP/1.1"
        ),
        "{}",
        seen[0]
    );
    assert!(
        seen[1].starts_with("GET /render?target=x&format=json HTTP/1.1"),
        "{}",
        seen[1]
    );
    assert!(
        seen[1].contains("authorization: Basic dTpw")
            || seen[1].contains("Authorization: Basic dTpw"),
        "{}",
        seen[1]
    );
    // The UI is told to use the proxy.
    let shell = get(admin.http, "/").text();
    assert!(shell.contains(r#""graph_enabled":true"#) && shell.contains(r#""graphite_url":"""#));
}
