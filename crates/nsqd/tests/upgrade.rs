//! Upgrading in place: a data directory written by Go nsqd (disk-queue files and `nsqd.dat`)
//! is read on first start; every queued message reaches its consumers once, with its attempts,
//! and the Go files are removed.

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::*;
use nsq_protocol::{Message, MessageId};

fn payload(i: u64, attempts: u16, body: &str) -> Vec<u8> {
    let mut m = Message::new(
        MessageId::from_guid(1 << 22 | i),
        1_700_000_000_000_000_000 + i as i64,
        Bytes::from(body.to_string()),
    );
    m.attempts = attempts;
    let mut v = Vec::new();
    m.put_payload(&mut v);
    v
}

fn go_data_dir(dir: &std::path::Path, metadata_file: &str) {
    std::fs::write(
        dir.join(metadata_file),
        r#"{"topics":[{"name":"orders","paused":false,"channels":[{"name":"a","paused":false},{"name":"b","paused":true}]}],"version":"1.3.0"}"#,
    )
    .unwrap();
    // Five messages the topic had not yet copied to its channels, over several segments.
    let topic: Vec<Vec<u8>> = (0..5).map(|i| payload(i, 0, &format!("t{i}"))).collect();
    nsq_diskqueue::write_queue(dir, "orders", topic, 80).unwrap();
    // Three messages already in channel a's queue, delivered twice before.
    let chan: Vec<Vec<u8>> = (10..13).map(|i| payload(i, 2, &format!("a{i}"))).collect();
    nsq_diskqueue::write_queue(dir, "orders:a", chan, 1 << 20).unwrap();
}

fn drain(n: &Nsqd, channel: &str, count: usize) -> HashMap<String, u16> {
    let mut c = n.connect();
    c.subscribe("orders", channel);
    c.cmd("RDY 100");
    let mut got = HashMap::new();
    while got.len() < count {
        let m = c.read_message();
        c.cmd(&format!("FIN {}", m.id_str()));
        assert!(
            got.insert(String::from_utf8(m.body).unwrap(), m.attempts)
                .is_none(),
            "duplicate"
        );
    }
    got
}

fn channel_stats(n: &Nsqd) -> Vec<(String, i64, bool)> {
    let s = n.http_get("/stats?format=json&topic=orders").json();
    s["topics"][0]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel_name"].as_str().unwrap().to_string(),
                c["depth"].as_i64().unwrap(),
                c["paused"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn go_data_directory_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    go_data_dir(dir.path(), "nsqd.dat");
    let n = Nsqd::start_in(dir.path(), &[]);
    n.wait_for_log("imported 5 message(s) of 1 topic(s) and 3 channel message(s)");
    assert_eq!(
        channel_stats(&n),
        vec![("a".to_string(), 8, false), ("b".to_string(), 5, true)]
    );
    assert!(
        nsq_diskqueue::list_queues(dir.path()).unwrap().is_empty(),
        "Go files removed"
    );

    let a = drain(&n, "a", 8);
    for i in 0..5 {
        assert_eq!(a[&format!("t{i}")], 1);
    }
    for i in 10..13 {
        assert_eq!(a[&format!("a{i}")], 3, "attempts carried over from Go nsqd");
    }
    assert_eq!(n.stop().code(), Some(0));

    // A restart imports nothing again and delivers nothing twice.
    let n = Nsqd::start_in(dir.path(), &[]);
    assert_eq!(
        channel_stats(&n),
        vec![("a".to_string(), 0, false), ("b".to_string(), 5, true)]
    );
    assert!(!n.log_lines().iter().any(|l| l.contains("imported")));
    n.http_post("/channel/unpause?topic=orders&channel=b", b"");
    let b = drain(&n, "b", 5);
    assert_eq!(b.len(), 5);
}

#[test]
fn pre_1_0_metadata_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    go_data_dir(dir.path(), "nsqd.7.dat");
    let n = Nsqd::start_in(dir.path(), &["--node-id=7"]);
    assert_eq!(channel_stats(&n).len(), 2);
    drain(&n, "a", 8);
    // nsqd.dat is written in the current layout.
    assert!(dir.path().join("nsqd.dat").exists());
}
