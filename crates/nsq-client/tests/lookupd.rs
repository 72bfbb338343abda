//! Discovery through a real nsqlookupd, RDY spread over several nsqd, and backoff.
mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use nsq_client::lookup::{self, ClientTimeouts};
use nsq_client::{Consumer, Producer};

fn timeouts() -> ClientTimeouts {
    ClientTimeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(5),
    }
}

fn registered_nsqd(lookupd: &Daemon) -> Daemon {
    start_nsqd(&[format!("--lookupd-tcp-address={}", lookupd.tcp)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_producers_through_lookupd() {
    let lookupd = start_lookupd();
    let a = registered_nsqd(&lookupd);
    let b = registered_nsqd(&lookupd);
    for (n, d) in [("from-a", &a), ("from-b", &b)] {
        let p = Producer::new(&d.tcp_addr(), config()).unwrap();
        p.publish("disc", n).await.unwrap();
        p.stop().await;
    }
    let http = lookupd.http.to_string();
    eventually(|| {
        let l = lookupd.get_json("/lookup?topic=disc");
        (l["producers"].as_array()?.len() == 2).then_some(())
    });

    let mut topics = within("topics", lookup::topics(&http, timeouts()))
        .await
        .unwrap();
    topics.sort();
    assert_eq!(topics, ["disc"]);
    let producers = within("lookup", lookup::lookup(&http, "disc", timeouts()))
        .await
        .unwrap();
    let addrs: HashSet<String> = producers.iter().map(|p| p.tcp_address()).collect();
    assert_eq!(addrs, HashSet::from([a.tcp_addr(), b.tcp_addr()]));
    assert!(lookup::lookup(&http, "unknown", timeouts()).await.is_err());

    let mut cfg = config();
    cfg.max_in_flight = 4;
    let c = Consumer::new("disc", "ch", cfg).unwrap();
    c.connect_to_nsqlookupd(&http).await.unwrap();
    let mut got = HashSet::new();
    for _ in 0..2 {
        let m = within("message", c.recv()).await.unwrap();
        got.insert(String::from_utf8(m.body.to_vec()).unwrap());
        m.finish();
    }
    assert_eq!(got, HashSet::from(["from-a".into(), "from-b".into()]));
    assert_eq!(c.stats().connections, 2);
    c.stop();
    within("stop", c.stopped()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_in_flight_is_shared_between_connections() {
    let a = start_nsqd(&[]);
    let b = start_nsqd(&[]);
    for d in [&a, &b] {
        let p = Producer::new(&d.tcp_addr(), config()).unwrap();
        for i in 0..3 {
            p.publish("few", format!("{}-{i}", d.tcp)).await.unwrap();
        }
        p.stop().await;
    }
    let mut cfg = config();
    cfg.max_in_flight = 1;
    cfg.rdy_redistribute_interval = Duration::from_millis(50);
    cfg.low_rdy_idle_timeout = Duration::from_secs(1);
    let c = Consumer::new("few", "ch", cfg).unwrap();
    c.connect_to_nsqds(&[a.tcp_addr(), b.tcp_addr()])
        .await
        .unwrap();
    let mut from = HashSet::new();
    for _ in 0..6 {
        let m = within("message", c.recv()).await.unwrap();
        from.insert(m.nsqd_address.to_string());
        // Never more than one in flight across both connections.
        let inflight: u64 = [&a, &b]
            .iter()
            .filter_map(|d| d.channel_stats("few", "ch"))
            .map(|ch| ch["in_flight_count"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(inflight, 1);
        m.finish();
    }
    assert_eq!(from.len(), 2, "RDY was never moved to the second nsqd");
    c.stop();
    within("stop", c.stopped()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_pauses_then_tests_with_one() {
    let nsqd = start_nsqd(&[]);
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    for i in 0..5 {
        p.publish("bo", format!("{i}")).await.unwrap();
    }
    let mut cfg = config();
    cfg.max_in_flight = 5;
    cfg.backoff_multiplier = Duration::from_millis(200);
    let c = Consumer::new("bo", "ch", cfg).unwrap();
    c.connect_to_nsqd(&nsqd.tcp_addr()).await.unwrap();
    // All five arrive under RDY 5.
    let mut msgs = Vec::new();
    for _ in 0..5 {
        msgs.push(within("message", c.recv()).await.unwrap());
    }
    // One failure: RDY 0 for 400 ms, then RDY 1.
    let failed = msgs.remove(0);
    failed.requeue(Some(Duration::ZERO));
    for m in msgs.drain(..) {
        m.finish();
    }
    // While backing off nsqd has the requeued message ready but nothing is sent.
    let client_rdy = || {
        nsqd.channel_stats("bo", "ch")
            .and_then(|ch| ch["clients"][0]["ready_count"].as_i64())
    };
    eventually(|| (client_rdy() == Some(0)).then_some(()));
    let again = within("redelivery after backoff", c.recv()).await.unwrap();
    assert_eq!(again.attempts, 2);
    assert_eq!(client_rdy(), Some(1));
    // A success ends backoff and restores the full RDY.
    again.finish();
    eventually(|| (client_rdy() == Some(5)).then_some(()));
    c.stop();
    within("stop", c.stopped()).await;
}
