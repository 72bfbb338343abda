//! Damaged and missing store files, found at start-up: nsqd starts, every undamaged message is
//! delivered, each loss is logged at ERROR with its file and counted in `/stats`
//! (`store_health`), `/ping` stays `OK`, and new publishes work. Also: what a client was told
//! (emptied, trimmed) stays true after `kill -9`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// Small segments, so a few hundred messages span several files.
const SEGMENT: &str = "--max-bytes-per-file=2000";

fn topic_dir(data: &Path, topic: &str) -> PathBuf {
    data.join("store").join(format!("t-{topic}"))
}

/// Files in the topic's directory whose names end with `suffix`, sorted.
fn files(data: &Path, topic: &str, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(topic_dir(data, topic))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Publishes `bodies` one MPUB per 10.
fn publish(n: &Nsqd, topic: &str, bodies: &[String]) {
    let mut c = n.connect();
    for chunk in bodies.chunks(10) {
        let refs: Vec<&[u8]> = chunk.iter().map(|b| b.as_bytes()).collect();
        c.cmd_body(&format!("MPUB {topic}"), &Conn::mpub_body(&refs));
        c.expect_ok();
    }
}

/// Creates the topic and its channel.
fn create(n: &Nsqd, topic: &str, channel: &str) {
    let r = n.http_post(&format!("/topic/create?topic={topic}"), b"");
    assert_eq!(r.status, 200);
    let r = n.http_post(
        &format!("/channel/create?topic={topic}&channel={channel}"),
        b"",
    );
    assert_eq!(r.status, 200);
}

fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

/// Subscribes and FINs everything until the channel has been quiet for a while; returns the
/// bodies received.
fn drain(n: &Nsqd, topic: &str, channel: &str) -> BTreeSet<String> {
    let mut c = n.connect();
    c.subscribe(topic, channel);
    c.rdy(500);
    let mut got = BTreeSet::new();
    while let Some(f) = c.try_read_frame(Duration::from_millis(700)) {
        if f.kind != FRAME_MESSAGE {
            continue;
        }
        let m = parse_message(&f.data);
        c.fin(m.id_str());
        got.insert(String::from_utf8(m.body).unwrap());
    }
    got
}

/// A topic `t` with channel `c` and 300 messages in several segments, stopped cleanly.
fn stored_topic(data: &Path) -> Vec<String> {
    let n = Nsqd::start_in(data, &[SEGMENT]);
    create(&n, "t", "c");
    let all = bodies("m", 300);
    publish(&n, "t", &all);
    assert!(n.stop().success());
    assert!(files(data, "t", ".log").len() >= 4, "want several segments");
    all
}

/// Channel `c`'s checkpoint files, oldest generation first.
fn channel_checkpoints(data: &Path) -> Vec<PathBuf> {
    files(data, "t", ".ckpt")
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("c-c."))
        .collect()
}

fn health(v: &serde_json::Value) -> (i64, i64, String) {
    let h = &v["store_health"];
    (
        h["records_skipped"].as_i64().unwrap(),
        h["bytes_cut"].as_i64().unwrap(),
        h["last_error"].as_str().unwrap().to_string(),
    )
}

/// After damage: `/ping` is OK and a new message goes through.
fn still_serves(n: &Nsqd) {
    assert_eq!(n.http_get("/ping").text(), "OK");
    publish(n, "t", &["fresh".to_string()]);
    assert!(drain(n, "t", "c").contains("fresh"));
}

#[test]
fn junk_after_the_last_record_of_an_older_segment() {
    let dir = tempfile::tempdir().unwrap();
    let all = stored_topic(dir.path());
    let first = files(dir.path(), "t", ".log")[0].clone();
    let mut data = std::fs::read(&first).unwrap();
    data.extend_from_slice(&[0x01, 0x02, 0x03]);
    std::fs::write(&first, &data).unwrap();

    let n = Nsqd::start_in(dir.path(), &[SEGMENT]);
    let got = drain(&n, "t", "c");
    assert_eq!(
        got,
        all.iter().cloned().collect(),
        "every message delivered"
    );
    let line = n.wait_for_log("seg-00000000000000000000.log");
    assert!(line.contains("[ERROR]") || line.contains("ERROR"), "{line}");
    let (_, cut, err) = health(&n.topic_stats("t").unwrap());
    assert_eq!(cut, 3);
    assert!(err.contains("seg-00000000000000000000.log"), "{err}");
    still_serves(&n);
}

#[test]
fn zero_length_older_segment() {
    let dir = tempfile::tempdir().unwrap();
    let all = stored_topic(dir.path());
    let second = files(dir.path(), "t", ".log")[1].clone();
    let third = files(dir.path(), "t", ".log")[2].clone();
    let seq = |p: &Path| -> u64 {
        let name = p.file_name().unwrap().to_str().unwrap();
        name["seg-".len()..name.len() - ".log".len()]
            .parse()
            .unwrap()
    };
    let lost = seq(&third) - seq(&second);
    std::fs::write(&second, b"").unwrap();

    let n = Nsqd::start_in(dir.path(), &[SEGMENT]);
    n.wait_for_log("segment shorter than its header");
    let got = drain(&n, "t", "c");
    let want: BTreeSet<String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| (*i as u64) < seq(&second) || *i as u64 >= seq(&third))
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(
        got, want,
        "everything outside the emptied segment delivered"
    );
    let (skipped, _, err) = health(&n.topic_stats("t").unwrap());
    assert_eq!(skipped as u64, lost);
    assert!(
        err.contains(&*second.file_name().unwrap().to_string_lossy()),
        "{err}"
    );
    still_serves(&n);
}

#[test]
fn zero_length_newest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let all = stored_topic(dir.path());
    let segs = files(dir.path(), "t", ".log");
    let last = segs.last().unwrap().clone();
    std::fs::write(&last, b"").unwrap();

    let n = Nsqd::start_in(dir.path(), &[SEGMENT]);
    let line = n.wait_for_log("was empty and is removed");
    assert!(line.contains(&*last.file_name().unwrap().to_string_lossy()));
    let got = drain(&n, "t", "c");
    assert!(!got.is_empty() && got.len() < all.len());
    assert!(got.iter().all(|b| all.contains(b)));
    let (_, _, err) = health(&n.topic_stats("t").unwrap());
    assert!(err.contains("was empty"), "{err}");
    still_serves(&n);
}

/// Channel `c` owes 15 messages when nsqd stops: 10 in flight, 5 requeued with a delay.
fn channel_owing_15(data: &Path) -> BTreeSet<String> {
    let n = Nsqd::start_in(data, &[]);
    create(&n, "t", "c");
    publish(&n, "t", &bodies("m", 40));
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.rdy(40);
    let mut owed = BTreeSet::new();
    for i in 0..40 {
        let m = c.read_message();
        let body = String::from_utf8(m.body.clone()).unwrap();
        match i % 8 {
            0..=4 => c.fin(m.id_str()),
            5 | 6 => {
                owed.insert(body);
            }
            _ => {
                c.cmd(&format!("REQ {} 60000", m.id_str()));
                owed.insert(body);
            }
        }
    }
    // Let the journal and a checkpoint or two happen, then stop cleanly.
    c.cmd("NOP");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(owed.len(), 15);
    assert!(n.stop().success());
    owed
}

/// Receives the owed messages (deferred ones included: they are due within a minute, so the
/// test asks for them with a short wait by checking `deferred_count` instead).
fn owed_after_restart(n: &Nsqd) -> (usize, usize) {
    let s = n.channel_stats("t", "c").unwrap();
    let deferred = s["deferred_count"].as_u64().unwrap() as usize;
    let depth = s["depth"].as_u64().unwrap() as usize;
    (depth, deferred)
}

#[test]
fn deleted_newest_checkpoint_falls_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    channel_owing_15(dir.path());
    let ckpts = channel_checkpoints(dir.path());
    assert!(ckpts.len() >= 2, "{ckpts:?}");
    std::fs::remove_file(ckpts.last().unwrap()).unwrap();

    let n = Nsqd::start_in(dir.path(), &[]);
    assert_eq!(owed_after_restart(&n), (10, 5));
    assert_eq!(n.http_get("/ping").text(), "OK");
}

#[test]
fn flipped_bit_in_the_newest_checkpoint_falls_back_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    channel_owing_15(dir.path());
    let ckpts = channel_checkpoints(dir.path());
    let newest = ckpts.last().unwrap().clone();
    let mut data = std::fs::read(&newest).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0x08;
    std::fs::write(&newest, &data).unwrap();

    let n = Nsqd::start_in(dir.path(), &[]);
    let line = n.wait_for_log("unusable (checksum mismatch)");
    assert!(line.contains(&*newest.file_name().unwrap().to_string_lossy()));
    assert_eq!(owed_after_restart(&n), (10, 5));
    assert_eq!(n.http_get("/ping").text(), "OK");
    let (_, _, err) = health(&n.channel_stats("t", "c").unwrap());
    assert!(err.contains("checksum mismatch"), "{err}");
    still_serves(&n);
}

#[test]
fn every_checkpoint_deleted_redelivers_from_the_journals() {
    let dir = tempfile::tempdir().unwrap();
    let owed = channel_owing_15(dir.path());
    for p in channel_checkpoints(dir.path()) {
        std::fs::remove_file(p).unwrap();
    }
    let n = Nsqd::start_in(dir.path(), &[]);
    n.wait_for_log("no usable checkpoint");
    // At least once: everything owed comes back (finished messages may come back too).
    let got = drain(&n, "t", "c");
    let in_flight: BTreeSet<String> = owed.iter().filter(|b| !got.contains(*b)).cloned().collect();
    let deferred = n.channel_stats("t", "c").unwrap()["deferred_count"]
        .as_u64()
        .unwrap();
    assert_eq!(
        in_flight.len() as u64,
        deferred,
        "the rest waits for its delay"
    );
    assert_eq!(n.http_get("/ping").text(), "OK");
}

#[test]
fn damaged_nsqd_dat_is_kept_aside_and_the_store_supplies_topics_and_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let n = Nsqd::start_in(dir.path(), &[]);
    create(&n, "t", "c");
    create(&n, "t", "p");
    create(&n, "u", "c");
    n.http_post("/channel/pause?topic=t&channel=p", b"");
    n.http_post("/topic/pause?topic=u", b"");
    publish(&n, "t", &bodies("m", 5));
    assert!(n.stop().success());
    std::fs::write(dir.path().join("nsqd.dat"), b"{\"topics\": [tru").unwrap();

    let n = Nsqd::start_in(dir.path(), &[]);
    let line = n.wait_for_log("failed to parse metadata in");
    assert!(line.contains("kept as"), "{line}");
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.starts_with("nsqd.dat.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(n.channel_stats("t", "c").unwrap()["depth"], 5);
    assert_eq!(n.channel_stats("t", "p").unwrap()["paused"], true);
    assert_eq!(n.channel_stats("t", "c").unwrap()["paused"], false);
    assert_eq!(n.topic_stats("u").unwrap()["paused"], true);
    assert_eq!(n.http_get("/ping").text(), "OK");
}

#[test]
fn emptied_paused_topic_stays_empty_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let n = Nsqd::start_in(dir.path(), &[]);
    create(&n, "t", "c");
    publish(&n, "t", &bodies("before", 5));
    n.http_post("/topic/pause?topic=t", b"");
    publish(&n, "t", &bodies("held", 7));
    assert_eq!(n.topic_stats("t").unwrap()["depth"], 7);
    assert_eq!(n.http_post("/topic/empty?topic=t", b"").status, 200);
    publish(&n, "t", &bodies("after", 2));
    n.signal("KILL");
    drop(n);

    let n = Nsqd::start_in(dir.path(), &[]);
    assert_eq!(n.topic_stats("t").unwrap()["paused"], true);
    assert_eq!(n.topic_stats("t").unwrap()["depth"], 2);
    n.http_post("/topic/unpause?topic=t", b"");
    let got = drain(&n, "t", "c");
    let want: BTreeSet<String> = bodies("before", 5)
        .into_iter()
        .chain(bodies("after", 2))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn trimmed_messages_never_come_back_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let n = Nsqd::start_in(dir.path(), &[]);
    create(&n, "t", "c");
    publish(&n, "t", &bodies("old", 20));
    assert_eq!(drain(&n, "t", "c").len(), 20);
    // The only channel goes: the topic keeps nothing it had delivered.
    assert_eq!(
        n.http_post("/channel/delete?topic=t&channel=c", b"").status,
        200
    );
    n.signal("KILL");
    drop(n);

    let n = Nsqd::start_in(dir.path(), &[]);
    assert_eq!(n.topic_stats("t").unwrap()["depth"], 0);
    create(&n, "t", "fresh");
    publish(&n, "t", &["new".to_string()]);
    assert_eq!(drain(&n, "t", "fresh"), BTreeSet::from(["new".to_string()]));
}
