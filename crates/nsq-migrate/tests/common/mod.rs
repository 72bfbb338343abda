//! Test fixtures shared by the unit and integration tests: Go-format queues built with
//! nsq-diskqueue's writer, `nsqd.dat` files, and views of what the native store holds.
// Each test program uses a different subset.
#![allow(dead_code)]
use std::path::Path;

use bytes::Bytes;
use nsq_protocol::{Message, MessageId};
use nsq_queue::MessageLog;
use nsq_store::layout::{channel_files, topic_dir};
use nsq_store::{DiskLog, LogOptions};

/// A message compared by what a consumer can observe: ID, attempts, body.
pub type Key = (String, u16, Vec<u8>);

pub fn msg(guid: u64, attempts: u16, body: &str) -> Message {
    let mut m = Message::new(
        MessageId::from_guid(guid),
        1_700_000_000_000_000_000 + guid as i64,
        Bytes::from(format!("{body}-{guid}")),
    );
    m.attempts = attempts;
    m
}

pub fn key(m: &Message) -> Key {
    (m.id.as_text(), m.attempts, m.body.to_vec())
}

pub fn payload(m: &Message) -> Vec<u8> {
    let mut p = Vec::with_capacity(m.payload_len());
    m.put_payload(&mut p);
    p
}

pub fn write_legacy(dir: &Path, queue: &str, msgs: &[Message], max_bytes_per_file: i64) {
    nsq_diskqueue::write_queue(dir, queue, msgs.iter().map(payload), max_bytes_per_file).unwrap();
}

/// Every unread message of a Go queue, sorted.
pub fn legacy_view(dir: &Path, queue: &str) -> Vec<Key> {
    let q = nsq_diskqueue::read_queue(dir, queue, 1 << 20).unwrap();
    let mut out: Vec<Key> = q
        .records
        .iter()
        .map(|r| key(&Message::decode(r).unwrap()))
        .collect();
    out.sort();
    out
}

/// `nsqd.dat` with the given topics and their channels.
pub fn write_nsqd_dat(dir: &Path, topics: &[(&str, &[&str])]) {
    let topics: Vec<serde_json::Value> = topics
        .iter()
        .map(|(t, chans)| {
            let chans: Vec<serde_json::Value> = chans
                .iter()
                .map(|c| serde_json::json!({"name": c, "paused": false}))
                .collect();
            serde_json::json!({"name": t, "paused": false, "channels": chans})
        })
        .collect();
    let md = serde_json::json!({"topics": topics, "version": "1.3.0"});
    std::fs::write(dir.join("nsqd.dat"), md.to_string()).unwrap();
}

fn open_log(data: &Path, topic: &str) -> DiskLog {
    let opts = LogOptions {
        max_bytes_per_file: 1 << 20,
        max_body: 1 << 20,
        cache_messages: 0,
    };
    DiskLog::open(&topic_dir(data, topic), opts).unwrap().0
}

fn read_log(log: &mut DiskLog, from: u64) -> Vec<Message> {
    let mut out = Vec::new();
    let mut pos = from.max(log.head());
    while pos < log.tail() {
        let next = log.read(pos, 100, &mut out);
        assert!(next > pos, "log read stuck at {pos}");
        pos = next;
    }
    out
}

/// A topic's whole log, in order.
pub fn log_view(data: &Path, topic: &str) -> Vec<Key> {
    let mut log = open_log(data, topic);
    read_log(&mut log, 0).iter().map(key).collect()
}

/// What a channel of the native store will still deliver: its owed messages plus the log from
/// its cursor, sorted.
pub fn native_view(data: &Path, topic: &str, channel: &str) -> Vec<Key> {
    let mut log = open_log(data, topic);
    let files = channel_files(data, topic, channel);
    assert!(files.exists(), "{topic}:{channel} has no checkpoint");
    let tail = log.tail();
    let (snap, recovery) = files.recover(&mut log, tail).unwrap();
    assert!(!recovery.is_damaged(), "{recovery:?}");
    let mut out: Vec<Key> = snap.owed.values().map(|o| key(&o.msg)).collect();
    out.extend(read_log(&mut log, snap.pos).iter().map(key));
    out.sort();
    out
}

pub fn sorted(msgs: &[&Message]) -> Vec<Key> {
    let mut out: Vec<Key> = msgs.iter().map(|m| key(m)).collect();
    out.sort();
    out
}
