//! The durability contract across restarts and `kill -9`: nothing acknowledged is lost,
//! unfinished messages come back with their attempts, deferred messages keep their remaining
//! delay, and finished messages stay finished.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;

fn publish_many(n: &Nsqd, topic: &str, count: usize) -> HashSet<Vec<u8>> {
    let mut p = n.connect();
    let mut all = HashSet::new();
    for batch in 0..count / 100 {
        let bodies: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("m-{}", batch * 100 + i).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
        p.cmd_body(&format!("MPUB {topic}"), &Conn::mpub_body(&refs));
        p.expect_ok();
        all.extend(bodies);
    }
    all
}

fn stats_channel(n: &Nsqd, topic: &str, channel: &str) -> serde_json::Value {
    let s = n
        .http_get(&format!("/stats?format=json&topic={topic}"))
        .json();
    s["topics"][0]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_name"] == channel)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// Receives until `want` messages arrived (FINing each when `fin`), returning body → attempts.
fn receive(c: &mut Conn, want: usize, fin: bool) -> HashMap<Vec<u8>, u16> {
    let mut got = HashMap::new();
    while got.len() < want {
        let m = c.read_message();
        if fin {
            c.cmd(&format!("FIN {}", m.id_str()));
        }
        got.insert(m.body.clone(), m.attempts);
    }
    got
}

#[test]
fn kill_9_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Nsqd::start_in(dir.path(), &["--durability=write"]);
    // Two channels exist before publishing; one consumes part of the stream.
    for path in [
        "/topic/create?topic=t",
        "/channel/create?topic=t&channel=done",
        "/channel/create?topic=t&channel=idle",
    ] {
        assert_eq!(n.http_post(path, b"").status, 200, "{path}");
    }
    let all = publish_many(&n, "t", 1000);

    let mut c = n.connect();
    c.subscribe("t", "done");
    c.cmd("RDY 100");
    let finished = receive(&mut c, 300, true);
    // Let the FINs land, then take 50 more without finishing them.
    eventually(|| (stats_channel(&n, "t", "done")["in_flight_count"] == 100).then_some(()));
    c.cmd("RDY 0");
    eventually(|| {
        let s = stats_channel(&n, "t", "done");
        (s["in_flight_count"] == 100 && s["clients"][0]["finish_count"] == 300).then_some(())
    });

    n.signal("KILL");
    n.wait_exit();

    let n = Nsqd::start_in(dir.path(), &["--durability=write"]);
    let mut c = n.connect();
    c.subscribe("t", "done");
    c.cmd("RDY 1000");
    let rest = receive(&mut c, 700, true);
    let expected: HashSet<Vec<u8>> = all
        .difference(&finished.keys().cloned().collect())
        .cloned()
        .collect();
    let got: HashSet<Vec<u8>> = rest.keys().cloned().collect();
    assert_eq!(
        got, expected,
        "every unfinished acknowledged message comes back, once"
    );
    // The 100 that were in flight at the crash were delivered before: attempts 2.
    assert_eq!(rest.values().filter(|&&a| a == 2).count(), 100);
    assert_eq!(rest.values().filter(|&&a| a == 1).count(), 600);

    let mut idle = n.connect();
    idle.subscribe("t", "idle");
    idle.cmd("RDY 1000");
    let all_idle = receive(&mut idle, 1000, true);
    assert_eq!(all_idle.keys().cloned().collect::<HashSet<_>>(), all);
}

#[test]
fn clean_restart_keeps_queued_in_flight_and_deferred() {
    let dir = tempfile::tempdir().unwrap();
    let n = Nsqd::start_in(dir.path(), &[]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    let mut p = n.connect();
    for i in 0..5 {
        p.publish("t", format!("q{i}").as_bytes());
    }
    c.cmd("RDY 2");
    let a = c.read_message();
    let b = c.read_message();
    c.cmd(&format!("REQ {} 600000", b.id_str()));
    c.cmd("RDY 0");
    eventually(|| (stats_channel(&n, "t", "c")["deferred_count"] == 1).then_some(()));
    assert_eq!(n.stop().code(), Some(0));

    let n = Nsqd::start_in(dir.path(), &[]);
    let s = stats_channel(&n, "t", "c");
    assert_eq!(
        s["depth"], 4,
        "3 queued + the one in flight at shutdown: {s}"
    );
    assert_eq!(s["deferred_count"], 1, "{s}");
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("RDY 10");
    let got = receive(&mut c, 4, true);
    assert_eq!(
        got.get(&a.body),
        Some(&2),
        "in flight at shutdown: delivered again, attempts kept"
    );
    assert!(!got.contains_key(&b.body), "still deferred");
}

#[test]
fn topic_without_channels_keeps_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Nsqd::start_in(dir.path(), &[]);
    let all = publish_many(&n, "held", 200);
    n.signal("KILL");
    n.wait_exit();
    let n = Nsqd::start_in(dir.path(), &[]);
    let s = n.http_get("/stats?format=json&topic=held").json();
    assert_eq!(s["topics"][0]["depth"], 200);
    let mut c = n.connect();
    c.subscribe("held", "first");
    c.cmd("RDY 500");
    let got = receive(&mut c, 200, true);
    assert_eq!(got.keys().cloned().collect::<HashSet<_>>(), all);
}

#[test]
fn deferred_message_keeps_its_remaining_delay_across_a_crash() {
    // The acceptance scenario: 30 s delay, restart after 10 s, delivery about 20 s later.
    let dir = tempfile::tempdir().unwrap();
    let mut n = Nsqd::start_in(dir.path(), &[]);
    for path in ["/topic/create?topic=d", "/channel/create?topic=d&channel=c"] {
        assert_eq!(n.http_post(path, b"").status, 200, "{path}");
    }
    let mut p = n.connect();
    p.cmd_body("DPUB d 30000", b"later");
    p.expect_ok();
    let published = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    n.signal("KILL");
    n.wait_exit();

    let n = Nsqd::start_in(dir.path(), &[]);
    let restarted = Instant::now();
    let mut c = n.connect();
    c.identify(r#"{"heartbeat_interval":60000}"#);
    c.subscribe("d", "c");
    c.cmd("RDY 1");
    c.stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let m = c.read_message();
    let since_restart = restarted.elapsed();
    let since_publish = published.elapsed();
    assert_eq!(m.body, b"later");
    assert_eq!(m.attempts, 1);
    assert!(
        since_publish >= Duration::from_millis(29_900),
        "{since_publish:?}"
    );
    assert!(
        since_restart >= Duration::from_secs(18) && since_restart <= Duration::from_secs(23),
        "delivered {since_restart:?} after the restart"
    );
}

#[test]
fn deferred_publish_held_by_a_topic_without_channels_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Nsqd::start_in(dir.path(), &[]);
    let mut p = n.connect();
    p.cmd_body("DPUB lonely 1500", b"held");
    p.expect_ok();
    n.signal("KILL");
    n.wait_exit();

    let n = Nsqd::start_in(dir.path(), &[]);
    let s = n.http_get("/stats?format=json&topic=lonely").json();
    assert_eq!(s["topics"][0]["depth"], 1, "{s}");
    let mut c = n.connect();
    c.subscribe("lonely", "c");
    let subscribed = Instant::now();
    c.cmd("RDY 1");
    let m = c.read_message();
    assert_eq!((m.body.as_slice(), m.attempts), (&b"held"[..], 1));
    // The delay starts when the message reaches a channel, as in NSQ.
    assert!(
        subscribed.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        subscribed.elapsed()
    );
    c.cmd(&format!("FIN {}", m.id_str()));
    drop(c);
    let s = n.http_get("/stats?format=json&topic=lonely").json();
    assert_eq!(s["topics"][0]["depth"], 0, "{s}");
}
