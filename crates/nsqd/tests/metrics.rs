//! `GET /metrics`: the Prometheus page is valid (promtool), agrees with `/stats` after real
//! traffic, labels ephemeral channels, forgets deleted topics and channels, and counts the
//! store's writes and fsyncs.

mod common;

use std::collections::HashMap;

use common::{eventually, Conn, Nsqd};
use nsq_testkit::promtool_check;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every sample of a page, keyed by its series exactly as written (`name{labels}`).
fn samples(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample line");
            let v = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")),
            };
            (series.to_string(), v)
        })
        .collect()
}

fn scrape(n: &Nsqd) -> String {
    let r = n.http_get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some(CONTENT_TYPE));
    r.text()
}

fn get(s: &HashMap<String, f64>, series: &str) -> f64 {
    *s.get(series)
        .unwrap_or_else(|| panic!("no sample {series}; page has {:?}", keys(s)))
}

fn keys(s: &HashMap<String, f64>) -> Vec<&String> {
    let mut k: Vec<_> = s.keys().collect();
    k.sort();
    k
}

fn tc(topic: &str, channel: &str) -> String {
    format!("{{topic=\"{topic}\",channel=\"{channel}\"}}")
}

fn stats(n: &Nsqd) -> serde_json::Value {
    let r = n.http_get("/stats?format=json");
    assert_eq!(r.status, 200);
    r.json()
}

fn u(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_u64()
        .or_else(|| v[key].as_i64().map(|i| i as u64))
        .unwrap_or_else(|| panic!("no number {key} in {v}")) as f64
}

fn flag(v: &serde_json::Value, key: &str) -> f64 {
    if v[key].as_bool().expect("bool") {
        1.0
    } else {
        0.0
    }
}

fn consumer(n: &Nsqd, topic: &str, channel: &str) -> Conn {
    let mut c = n.connect();
    c.subscribe(topic, channel);
    c
}

#[test]
fn page_passes_promtool_with_the_prometheus_content_type() {
    let n = Nsqd::start(&[]);
    let mut p = n.connect();
    p.publish("promtool", b"x");
    n.http_post("/channel/create?topic=promtool&channel=c", b"")
        .assert_empty_ok();
    let page = scrape(&n);
    promtool_check(&page);
    for needle in [
        "nsq_build_info{app=\"nsqd\",version=\"1.3.0\"} 1\n",
        "# TYPE process_cpu_seconds_total counter\n",
        "# TYPE nsq_channel_e2e_processing_latency_seconds histogram\n",
        "# TYPE nsq_store_fsync_duration_seconds histogram\n",
        "nsq_healthy 1\n",
        "nsq_topics 1\n",
        "nsq_channels 1\n",
    ] {
        assert!(page.contains(needle), "{needle:?} missing:\n{page}");
    }
}

#[test]
fn head_answers_without_a_body_and_other_methods_are_refused() {
    let n = Nsqd::start(&[]);
    let r = n.http("HEAD", "/metrics", b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some(CONTENT_TYPE));
    assert!(r.body.is_empty());
    for method in ["POST", "PUT", "DELETE"] {
        let r = n.http(method, "/metrics", b"");
        assert_eq!(r.status, 405, "{method}");
        let allow = r.header("Allow").expect("Allow");
        assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
    }
}

/// Two topics; one channel finishes some messages, requeues some with a delay and lets the
/// rest time out, another is ephemeral with an idle consumer. Every figure `/stats` also has
/// must agree with it.
#[test]
fn figures_agree_with_stats_after_fin_req_and_timeout() {
    let n = Nsqd::start(&["--msg-timeout=300ms"]);
    let mut c1 = consumer(&n, "alpha", "work");
    let _c2 = consumer(&n, "beta", "tail#ephemeral");
    let mut p = n.connect();
    for i in 0..10 {
        p.publish("alpha", format!("a{i}").as_bytes());
    }
    for i in 0..7 {
        p.publish("beta", format!("bb{i}").as_bytes());
    }

    c1.cmd("RDY 10");
    let msgs: Vec<_> = (0..10).map(|_| c1.read_message()).collect();
    // Nothing more is sent to it, so requeued and timed-out messages stay in the channel.
    c1.cmd("RDY 0");
    for m in &msgs[..5] {
        c1.cmd(&format!("FIN {}", m.id_str()));
    }
    for m in &msgs[5..8] {
        c1.cmd(&format!("REQ {} 60000", m.id_str()));
    }
    // msgs[8..] time out.
    eventually(|| {
        let s = stats(&n);
        let ch = &s["topics"][0]["channels"][0];
        (ch["timeout_count"] == 2 && ch["requeue_count"] == 3 && ch["in_flight_count"] == 0)
            .then_some(())
    });

    let page = scrape(&n);
    promtool_check(&page);
    let m = samples(&page);
    let s = stats(&n);

    let topics = s["topics"].as_array().expect("topics");
    assert_eq!(topics.len(), 2);
    assert_eq!(get(&m, "nsq_topics"), 2.0);
    assert_eq!(get(&m, "nsq_channels"), 2.0);
    for t in topics {
        let name = t["topic_name"].as_str().expect("name");
        let l = format!("{{topic=\"{name}\"}}");
        assert_eq!(get(&m, &format!("nsq_topic_depth{l}")), u(t, "depth"));
        assert_eq!(
            get(&m, &format!("nsq_topic_backend_depth{l}")),
            u(t, "backend_depth")
        );
        assert_eq!(
            get(&m, &format!("nsq_topic_messages_total{l}")),
            u(t, "message_count")
        );
        assert_eq!(
            get(&m, &format!("nsq_topic_message_bytes_total{l}")),
            u(t, "message_bytes")
        );
        assert_eq!(get(&m, &format!("nsq_topic_paused{l}")), flag(t, "paused"));
        for c in t["channels"].as_array().expect("channels") {
            let l = tc(name, c["channel_name"].as_str().expect("name"));
            for (metric, key) in [
                ("nsq_channel_depth", "depth"),
                ("nsq_channel_backend_depth", "backend_depth"),
                ("nsq_channel_in_flight", "in_flight_count"),
                ("nsq_channel_deferred", "deferred_count"),
                ("nsq_channel_messages_total", "message_count"),
                ("nsq_channel_requeued_total", "requeue_count"),
                ("nsq_channel_timed_out_total", "timeout_count"),
                ("nsq_channel_clients", "client_count"),
            ] {
                assert_eq!(get(&m, &format!("{metric}{l}")), u(c, key), "{metric}{l}");
            }
            assert_eq!(
                get(&m, &format!("nsq_channel_paused{l}")),
                flag(c, "paused")
            );
            let ready: f64 = c["clients"]
                .as_array()
                .expect("clients")
                .iter()
                .map(|cl| u(cl, "ready_count"))
                .sum();
            assert_eq!(get(&m, &format!("nsq_channel_ready{l}")), ready);
        }
    }

    // The absolute figures, so agreement is not agreement on nothing.
    let work = tc("alpha", "work");
    assert_eq!(get(&m, "nsq_topic_messages_total{topic=\"alpha\"}"), 10.0);
    assert_eq!(
        get(&m, "nsq_topic_message_bytes_total{topic=\"beta\"}"),
        21.0
    );
    assert_eq!(get(&m, &format!("nsq_channel_messages_total{work}")), 10.0);
    assert_eq!(get(&m, &format!("nsq_channel_depth{work}")), 2.0);
    assert_eq!(get(&m, &format!("nsq_channel_deferred{work}")), 3.0);
    assert_eq!(get(&m, &format!("nsq_channel_requeued_total{work}")), 3.0);
    assert_eq!(get(&m, &format!("nsq_channel_timed_out_total{work}")), 2.0);
    assert_eq!(get(&m, &format!("nsq_channel_clients{work}")), 1.0);
    let eph = tc("beta", "tail#ephemeral");
    assert_eq!(get(&m, &format!("nsq_channel_depth{eph}")), 7.0);
    assert_eq!(get(&m, &format!("nsq_channel_clients{eph}")), 1.0);

    // Five FINs in the latency histogram; buckets are cumulative and end at the count.
    let h = "nsq_channel_e2e_processing_latency_seconds";
    assert_eq!(get(&m, &format!("{h}_count{work}")), 5.0);
    assert!(get(&m, &format!("{h}_sum{work}")) > 0.0);
    let inf = format!("{h}_bucket{{topic=\"alpha\",channel=\"work\",le=\"+Inf\"}}");
    assert_eq!(get(&m, &inf), 5.0);
    let mut last = 0.0;
    for line in page
        .lines()
        .filter(|l| l.starts_with(&format!("{h}_bucket{{topic=\"alpha\",channel=\"work\",")))
    {
        let v: f64 = line
            .rsplit_once(' ')
            .expect("value")
            .1
            .parse()
            .expect("number");
        assert!(v >= last, "buckets not cumulative: {line}");
        last = v;
    }
    // A channel that has finished nothing has no latency series yet.
    assert!(
        !m.contains_key(&format!("{h}_count{eph}")),
        "histogram of an idle channel"
    );

    // One publisher, two subscribers, three connections at least.
    assert_eq!(get(&m, "nsq_clients{type=\"consumer\"}"), 2.0);
    assert_eq!(get(&m, "nsq_clients{type=\"producer\"}"), 1.0);
    assert!(get(&m, "nsq_client_connections_total") >= 3.0);
}

#[test]
fn deleted_channels_and_topics_vanish() {
    let n = Nsqd::start(&[]);
    for path in [
        "/topic/create?topic=gone",
        "/topic/create?topic=kept",
        "/channel/create?topic=gone&channel=c1",
        "/channel/create?topic=kept&channel=c1",
        "/channel/create?topic=kept&channel=c2",
    ] {
        n.http_post(path, b"").assert_empty_ok();
    }
    let page = scrape(&n);
    assert!(page.contains(&tc("kept", "c1")));
    assert!(page.contains("topic=\"gone\""));

    n.http_post("/channel/delete?topic=kept&channel=c1", b"")
        .assert_empty_ok();
    let page = scrape(&n);
    assert!(!page.contains(&tc("kept", "c1")), "{page}");
    assert!(page.contains(&tc("kept", "c2")));
    assert!(page.contains("nsq_channels 2\n"));

    n.http_post("/topic/delete?topic=gone", b"")
        .assert_empty_ok();
    let page = scrape(&n);
    promtool_check(&page);
    assert!(!page.contains("topic=\"gone\""), "{page}");
    assert!(page.contains("nsq_topics 1\n"));
    assert!(page.contains("nsq_channels 1\n"));
}

#[test]
fn store_counters_move_with_a_publish() {
    let n = Nsqd::start(&["--durability=fsync"]);
    n.http_post("/topic/create?topic=stored", b"")
        .assert_empty_ok();
    let before = samples(&scrape(&n));
    let body = vec![b'z'; 1000];
    let mut p = n.connect();
    p.publish("stored", &body);
    let after = samples(&scrape(&n));
    let grew = |name: &str| get(&after, name) - get(&before, name);
    assert!(grew("nsq_store_writes_total") >= 1.0);
    assert!(grew("nsq_store_written_bytes_total") >= 1000.0);
    assert!(grew("nsq_store_fsyncs_total") >= 1.0);
    assert!(grew("nsq_store_fsync_duration_seconds_count") >= 1.0);
    assert_eq!(
        get(&after, "nsq_store_fsync_duration_seconds_count"),
        get(
            &after,
            "nsq_store_fsync_duration_seconds_bucket{le=\"+Inf\"}"
        )
    );
    assert_eq!(
        get(
            &after,
            "nsq_store_damaged_records_total{topic=\"stored\",channel=\"\"}"
        ),
        0.0
    );
    assert_eq!(
        get(
            &after,
            "nsq_store_cut_bytes_total{topic=\"stored\",channel=\"\"}"
        ),
        0.0
    );
}
