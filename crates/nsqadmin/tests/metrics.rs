//! `GET /metrics`: one scrape of nsqadmin covers every nsqd of a real cluster, with figures that
//! match each node's own `/stats`, and nodes or lookupds that do not answer are reported down.
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::*;
use serde_json::Value;

type Samples = BTreeMap<String, f64>;

/// The page's samples as `name{labels}` → value.
fn samples(page: &str) -> Samples {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            let v = v.parse().unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (k.to_string(), v)
        })
        .collect()
}

fn scrape(admin: SocketAddr, path: &str) -> Samples {
    let r = get(admin, path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let page = r.text();
    nsq_testkit::promtool_check(&page);
    samples(&page)
}

fn value(m: &Samples, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} missing from {m:#?}"))
}

fn node_name(p: &Proc) -> String {
    format!("127.0.0.1:{}", p.http.port())
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Bool(b) => f64::from(u8::from(*b)),
        v => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

/// Every figure the page has for `node` equals what that node's `/stats` says now.
fn assert_matches_stats(m: &Samples, nsqd: &Proc) {
    let node = node_name(nsqd);
    let stats = get_json(nsqd.http, "/stats?format=json&include_clients=false");
    let topics = stats["topics"].as_array().expect("topics");
    assert_eq!(
        value(m, &format!(r#"nsq_admin_node_up{{node="{node}"}}"#)),
        1.0
    );
    assert_eq!(
        value(m, &format!(r#"nsq_healthy{{node="{node}"}}"#)),
        f64::from(u8::from(stats["health"] == "OK"))
    );
    assert_eq!(
        value(m, &format!(r#"nsq_topics{{node="{node}"}}"#)),
        topics.len() as f64
    );
    let channel_total: usize = topics
        .iter()
        .map(|t| t["channels"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        value(m, &format!(r#"nsq_channels{{node="{node}"}}"#)),
        channel_total as f64
    );
    let mut checked = 0;
    for t in topics {
        let topic = t["topic_name"].as_str().expect("topic_name");
        let labels = format!(r#"{{node="{node}",topic="{topic}"}}"#);
        for (metric, field) in [
            ("nsq_topic_depth", "depth"),
            ("nsq_topic_backend_depth", "backend_depth"),
            ("nsq_topic_messages_total", "message_count"),
            ("nsq_topic_message_bytes_total", "message_bytes"),
            ("nsq_topic_paused", "paused"),
        ] {
            assert_eq!(
                value(m, &format!("{metric}{labels}")),
                num(&t[field]),
                "{metric}{labels}"
            );
            checked += 1;
        }
        for c in t["channels"].as_array().expect("channels") {
            let channel = c["channel_name"].as_str().expect("channel_name");
            let labels = format!(r#"{{node="{node}",topic="{topic}",channel="{channel}"}}"#);
            for (metric, field) in [
                ("nsq_channel_depth", "depth"),
                ("nsq_channel_backend_depth", "backend_depth"),
                ("nsq_channel_in_flight", "in_flight_count"),
                ("nsq_channel_deferred", "deferred_count"),
                ("nsq_channel_messages_total", "message_count"),
                ("nsq_channel_requeued_total", "requeue_count"),
                ("nsq_channel_timed_out_total", "timeout_count"),
                ("nsq_channel_clients", "client_count"),
                ("nsq_channel_paused", "paused"),
            ] {
                assert_eq!(
                    value(m, &format!("{metric}{labels}")),
                    num(&c[field]),
                    "{metric}{labels}"
                );
                checked += 1;
            }
            for p in c["e2e_processing_latency"]["percentiles"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let key = format!(
                    r#"nsq_channel_e2e_processing_latency_quantile_seconds{{node="{node}",topic="{topic}",channel="{channel}",percentile="{}"}}"#,
                    num(&p["quantile"])
                );
                assert_eq!(value(m, &key), num(&p["value"]) / 1e9, "{key}");
                checked += 1;
            }
        }
    }
    // The page has nothing for this node that /stats does not have.
    let series = m
        .keys()
        .filter(|k| k.contains(&format!(r#"node="{node}""#)))
        .filter(|k| !k.starts_with("nsq_admin_") && !k.starts_with("nsq_healthy"))
        .filter(|k| !k.starts_with("nsq_topics{") && !k.starts_with("nsq_channels{"))
        .count();
    assert_eq!(series, checked, "{m:#?}");
}

/// Stops or resumes a process without ending it: its sockets stay open and unanswered.
fn signal(p: &Proc, sig: &str) {
    let st = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(p.child.id().to_string())
        .status()
        .expect("kill");
    assert!(st.success());
}

#[test]
fn one_scrape_covers_the_cluster_and_matches_each_nodes_stats() {
    let lookupd = start_lookupd();
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let nsqd: Vec<Proc> = dirs
        .iter()
        .map(|d| {
            start_nsqd(
                d.path(),
                lookupd.tcp,
                &["--e2e-processing-latency-percentile=0.5,0.99"],
            )
        })
        .collect();
    let (a, b) = (nsqd[0].http, nsqd[1].http);
    nsqd_post(a, "/topic/create?topic=orders", "");
    nsqd_post(b, "/topic/create?topic=orders", "");
    nsqd_post(b, "/topic/create?topic=audit%23ephemeral", "");
    nsqd_post(a, "/channel/create?topic=orders&channel=archive", "");
    nsqd_post(a, "/channel/create?topic=orders&channel=live", "");
    nsqd_post(b, "/channel/create?topic=orders&channel=live", "");
    nsqd_post(
        b,
        "/channel/create?topic=audit%23ephemeral&channel=tail",
        "",
    );
    nsqd_post(a, "/channel/pause?topic=orders&channel=archive", "");
    nsqd_post(a, "/mpub?topic=orders", "1\n2\n3");
    nsqd_post(b, "/mpub?topic=orders", "4\n5");
    nsqd_post(b, "/pub?topic=audit%23ephemeral", "a \"quoted\" body");
    let _consumer = Consumer::subscribe(nsqd[0].tcp.expect("tcp"), "orders", "live", 2);
    eventually(|| {
        let v = get_json(lookupd.http, "/lookup?topic=orders");
        (v["producers"].as_array().map_or(0, Vec::len) == 2).then_some(())
    });
    eventually(|| {
        let v = get_json(a, "/stats?format=json&topic=orders&channel=live");
        (v["topics"][0]["channels"][0]["in_flight_count"] == 2).then_some(())
    });

    let dead_lookupd = dead_address();
    let admin = start_admin(&[
        format!("--lookupd-http-address={}", lookupd.http),
        format!("--lookupd-http-address={dead_lookupd}"),
        "--base-path=/admin".into(),
        "--http-client-request-timeout=500ms".into(),
    ]);
    let m = scrape(admin.http, "/admin/metrics");
    assert_eq!(value(&m, "nsq_admin_nodes"), 2.0);
    assert_eq!(
        value(
            &m,
            &format!(r#"nsq_admin_lookupd_up{{lookupd="{}"}}"#, lookupd.http)
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            &format!(r#"nsq_admin_lookupd_up{{lookupd="{dead_lookupd}"}}"#)
        ),
        0.0
    );
    assert_eq!(
        value(&m, r#"nsq_build_info{app="nsqadmin",version="1.3.0"}"#),
        1.0
    );
    assert!(m.contains_key("process_cpu_seconds_total"), "{m:#?}");
    // Nothing in the cluster is moving, so the page and /stats agree exactly.
    for n in &nsqd {
        assert_matches_stats(&m, n);
    }
    // Spot checks that do not depend on reading /stats the same way.
    let (na, nb) = (node_name(&nsqd[0]), node_name(&nsqd[1]));
    assert_eq!(
        value(
            &m,
            &format!(r#"nsq_channel_in_flight{{node="{na}",topic="orders",channel="live"}}"#)
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            &format!(r#"nsq_channel_paused{{node="{na}",topic="orders",channel="archive"}}"#)
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            &format!(r#"nsq_topic_messages_total{{node="{nb}",topic="audit#ephemeral"}}"#)
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            &format!(
                r#"nsq_channel_e2e_processing_latency_quantile_seconds{{node="{na}",topic="orders",channel="live",percentile="0.99"}}"#
            )
        ),
        0.0
    );

    // Under the base path only; HEAD answers without a body.
    assert_eq!(get(admin.http, "/metrics").status, 404);
    let r = http_request_with(admin.http, "HEAD", "/admin/metrics", "", b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "{}", r.text());

    // A node that stops answering (its lookupd registration stays) is down, and its figures
    // leave the page; the other node's stay.
    signal(&nsqd[1], "STOP");
    let m = scrape(admin.http, "/admin/metrics");
    signal(&nsqd[1], "CONT");
    assert_eq!(value(&m, "nsq_admin_nodes"), 2.0);
    assert_eq!(
        value(&m, &format!(r#"nsq_admin_node_up{{node="{nb}"}}"#)),
        0.0
    );
    assert!(
        !m.keys()
            .any(|k| k.contains(&format!(r#"node="{nb}""#)) && !k.starts_with("nsq_admin_")),
        "{m:#?}"
    );
    assert_matches_stats(&m, &nsqd[0]);
}

#[test]
fn configured_nodes_that_do_not_answer_are_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut live = start_nsqd(dir.path(), None, &[]);
    nsqd_post(live.http, "/pub?topic=t", "x");
    let dead = dead_address();
    let (_silent, slow) = silent_upstream();
    let garbage = FakeHttp::start(200, "<html>not json</html>");
    let admin = start_admin(&[
        format!("--nsqd-http-address={}", live.http),
        format!("--nsqd-http-address={dead}"),
        format!("--nsqd-http-address={slow}"),
        format!("--nsqd-http-address={}", garbage.addr),
        // Listed twice: still one node, so no duplicate series.
        format!("--nsqd-http-address={dead}"),
        "--http-client-request-timeout=300ms".into(),
    ]);
    let m = scrape(admin.http, "/metrics");
    assert_eq!(value(&m, "nsq_admin_nodes"), 4.0);
    let up = |m: &Samples, addr: &dyn std::fmt::Display| {
        value(m, &format!(r#"nsq_admin_node_up{{node="{addr}"}}"#))
    };
    assert_eq!(up(&m, &live.http), 1.0);
    assert_eq!(up(&m, &dead), 0.0);
    assert_eq!(up(&m, &slow), 0.0);
    assert_eq!(up(&m, &garbage.addr), 0.0);
    // In this mode nodes carry the address they were configured with.
    assert_eq!(
        value(
            &m,
            &format!(
                r#"nsq_topic_messages_total{{node="{}",topic="t"}}"#,
                live.http
            )
        ),
        1.0
    );
    assert!(!m.keys().any(|k| k.starts_with("nsq_admin_lookupd_up")));

    // The live node goes away.
    let _ = live.child.kill();
    let _ = live.child.wait();
    let m = scrape(admin.http, "/metrics");
    assert_eq!(up(&m, &live.http), 0.0);
    assert!(!m.keys().any(|k| k.starts_with("nsq_topic_")), "{m:#?}");
    assert_eq!(value(&m, "nsq_admin_nodes"), 4.0);
}
