//! `GET /metrics`: a valid Prometheus page whose figures follow registrations, tombstones and
//! disconnections.
mod common;

use std::collections::BTreeMap;

use common::*;

/// The page's samples as `name{labels}` → value.
fn samples(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                k.to_string(),
                v.parse().unwrap_or_else(|_| panic!("bad value {l:?}")),
            )
        })
        .collect()
}

fn scrape(l: &Lookupd) -> BTreeMap<String, f64> {
    let r = l.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let page = r.text();
    nsq_testkit::promtool_check(&page);
    samples(&page)
}

fn value(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} missing from {m:#?}"))
}

#[test]
fn figures_follow_registrations_tombstones_and_disconnects() {
    let l = Lookupd::start(&[]);
    let m = scrape(&l);
    for name in [
        "nsq_lookupd_producers",
        "nsq_lookupd_topics",
        "nsq_lookupd_channels",
        "nsq_lookupd_tombstones",
        "nsq_lookupd_client_connections",
    ] {
        assert_eq!(value(&m, name), 0.0, "{name}");
    }
    assert_eq!(
        value(&m, r#"nsq_build_info{app="nsqlookupd",version="1.3.0"}"#),
        1.0
    );
    assert!(m.contains_key("process_resident_memory_bytes"), "{m:#?}");

    let mut a = l.nsqd("nsqd-a", 4151);
    a.expect_ok("REGISTER orders");
    a.expect_ok("REGISTER orders archive");
    let mut b = l.nsqd("nsqd-b", 4152);
    b.expect_ok("REGISTER orders");
    b.expect_ok("REGISTER audit#ephemeral");
    b.expect_ok("REGISTER audit#ephemeral tail#ephemeral");
    // Connected but never identified: a connection, not a producer.
    let _idle = l.connect();
    l.post("/topic/create?topic=empty").assert_empty_ok();

    let m = eventually(|| {
        let m = scrape(&l);
        (value(&m, "nsq_lookupd_client_connections") == 3.0).then_some(m)
    });
    assert_eq!(value(&m, "nsq_lookupd_producers"), 2.0);
    assert_eq!(value(&m, "nsq_lookupd_topics"), 3.0);
    assert_eq!(value(&m, "nsq_lookupd_channels"), 2.0);
    assert_eq!(value(&m, "nsq_lookupd_tombstones"), 0.0);
    assert_eq!(
        value(&m, r#"nsq_lookupd_topic_producers{topic="orders"}"#),
        2.0
    );
    assert_eq!(
        value(
            &m,
            r#"nsq_lookupd_topic_producers{topic="audit#ephemeral"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&m, r#"nsq_lookupd_topic_producers{topic="empty"}"#),
        0.0
    );

    // A tombstoned producer leaves the topic's count (as it leaves /lookup) and is counted.
    l.post("/topic/tombstone?topic=orders&node=nsqd-a:4151")
        .assert_empty_ok();
    let m = scrape(&l);
    assert_eq!(value(&m, "nsq_lookupd_tombstones"), 1.0);
    assert_eq!(
        value(&m, r#"nsq_lookupd_topic_producers{topic="orders"}"#),
        1.0
    );
    assert_eq!(l.lookup_producers("orders").map(|p| p.len()), Some(1));
    // Still a registered node.
    assert_eq!(value(&m, "nsq_lookupd_producers"), 2.0);

    // nsqd-b goes away: its entries go, the keys stay (as in /topics).
    l.disconnect(b);
    let m = eventually(|| {
        let m = scrape(&l);
        (value(&m, "nsq_lookupd_client_connections") == 2.0).then_some(m)
    });
    assert_eq!(value(&m, "nsq_lookupd_producers"), 1.0);
    assert_eq!(value(&m, "nsq_lookupd_topics"), 3.0);
    assert_eq!(
        value(&m, r#"nsq_lookupd_topic_producers{topic="orders"}"#),
        0.0
    );
    assert_eq!(
        value(
            &m,
            r#"nsq_lookupd_topic_producers{topic="audit#ephemeral"}"#
        ),
        0.0
    );

    // Deleted topics vanish from the page.
    l.post("/topic/delete?topic=orders").assert_empty_ok();
    let m = scrape(&l);
    assert!(!m.keys().any(|k| k.contains(r#"topic="orders""#)), "{m:#?}");
    assert_eq!(value(&m, "nsq_lookupd_topics"), 2.0);
    assert_eq!(value(&m, "nsq_lookupd_channels"), 1.0);
    assert_eq!(value(&m, "nsq_lookupd_tombstones"), 0.0);
}

#[test]
fn head_answers_without_a_body_and_other_methods_are_refused() {
    let l = Lookupd::start(&[]);
    let r = l.request("HEAD", "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(r.body.is_empty(), "{}", r.text());
    let r = l.post("/metrics");
    assert_eq!(r.status, 405, "{}", r.text());
}

#[test]
fn a_real_nsqd_registering_shows_up() {
    let nsqd = std::path::Path::new(bin()).with_file_name("nsqd");
    if !nsqd.is_file() {
        panic!(
            "nsqd not found at {} (run `cargo build --bins -p nsqd` first)",
            nsqd.display()
        );
    }
    let l = Lookupd::start(&[]);
    let data = tempfile::tempdir().expect("tempdir");
    let (mut child, log) = nsq_testkit::spawn_logged(
        &nsqd,
        &[
            format!("--data-path={}", data.path().display()),
            "--tcp-address=127.0.0.1:0".into(),
            "--http-address=127.0.0.1:0".into(),
            "--https-address=".into(),
            "--broadcast-address=127.0.0.1".into(),
            format!("--lookupd-tcp-address={}", l.tcp),
        ],
        "nsqd",
        "NSQLOOKUPD_TEST_LOG",
    );
    let http = log.listen_addr("HTTP: listening on ");
    let r = nsq_testkit::http_request_with(http, "POST", "/pub?topic=live", "", b"hello");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = nsq_testkit::http_request_with(
        http,
        "POST",
        "/channel/create?topic=live&channel=readers",
        "",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    eventually(|| {
        let m = scrape(&l);
        let ok = m.get(r#"nsq_lookupd_topic_producers{topic="live"}"#) == Some(&1.0)
            && m.get("nsq_lookupd_channels") == Some(&1.0)
            && m.get("nsq_lookupd_producers") == Some(&1.0)
            && m.get("nsq_lookupd_client_connections") == Some(&1.0);
        ok.then_some(())
    });
    // Killed without a goodbye: the closed connection removes it all the same.
    let _ = child.kill();
    let _ = child.wait();
    eventually(|| {
        let m = scrape(&l);
        let ok = m.get(r#"nsq_lookupd_topic_producers{topic="live"}"#) == Some(&0.0)
            && m.get("nsq_lookupd_producers") == Some(&0.0)
            && m.get("nsq_lookupd_client_connections") == Some(&0.0);
        ok.then_some(())
    });
}
