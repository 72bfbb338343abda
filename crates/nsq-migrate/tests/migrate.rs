//! Upgrade and rollback on whole data directories: Go-format fixtures in, native store checked
//! through nsq-store's own readers, and back again.
mod common;

use std::path::Path;

use common::*;
use nsq_diskqueue::{list_queues, segment_path};
use nsq_migrate::{
    export_legacy, import_legacy, metadata, ExportOptions, ImportOptions, MigrateError, TopicSpec,
};
use nsq_protocol::Message;
use nsq_store::layout::{channel_files, store_dir, stored_channels, stored_topics, topic_dir};

fn specs(d: &Path) -> Vec<TopicSpec> {
    metadata::load(d).unwrap().unwrap().topic_specs()
}

struct Fixture {
    topic: Vec<Message>,
    archive: Vec<Message>,
    audit_kept: Vec<Message>,
}

/// A Go data directory after a clean shutdown, with some damage:
/// * `orders`: 40 unread topic messages (attempts 0..=3) over several segments, the first five
///   already consumed;
/// * `orders:archive`: 12 owed messages (in flight or requeued at shutdown, attempts 1..=4);
/// * `orders:audit`: three segments of three messages, the middle one corrupt;
/// * `orders:fresh`: listed, no files;  `orders:gone`: files, not listed;
/// * `old`: a topic not in nsqd.dat;  `quiet`: listed, only an empty meta file.
fn go_dir(d: &Path) -> Fixture {
    write_nsqd_dat(
        d,
        &[
            ("orders", &["archive", "audit", "fresh", "tmp#ephemeral"]),
            ("quiet", &["c"]),
            ("eph#ephemeral", &[]),
        ],
    );
    let all: Vec<Message> = (0..45).map(|i| msg(i, (i % 4) as u16, "order")).collect();
    let mut w = nsq_diskqueue::LegacyWriter::create(d, "orders", 400).unwrap();
    for m in &all {
        w.put(&payload(m)).unwrap();
    }
    let mut meta = w.close().unwrap();
    // The first five were read by the topic pump: advance the read position past them.
    meta.read_pos = 5 * (4 + payload(&all[0]).len() as i64);
    meta.depth -= 5;
    nsq_diskqueue::write_meta(d, "orders", &meta).unwrap();
    let topic = all[5..].to_vec();

    let archive: Vec<Message> = (1000..1012)
        .map(|i| msg(i, 1 + (i % 4) as u16, "arch"))
        .collect();
    write_legacy(d, "orders:archive", &archive, 1 << 20);

    // Fixed-size payloads (body "aud-200".."aud-208"): exactly three records per segment.
    let audit: Vec<Message> = (200..209).map(|i| msg(i, 2, "aud")).collect();
    let rec = 4 + payload(&audit[0]).len() as i64;
    write_legacy(d, "orders:audit", &audit, 3 * rec);
    std::fs::write(segment_path(d, "orders:audit", 1), [0xff; 8]).unwrap();
    let audit_kept = [&audit[..3], &audit[6..]].concat();

    write_legacy(d, "orders:gone", &[msg(300, 0, "gone")], 1 << 20);
    write_legacy(d, "old", &[msg(400, 0, "old")], 1 << 20);
    write_legacy(d, "quiet", &[], 1 << 20);
    Fixture {
        topic,
        archive,
        audit_kept,
    }
}

fn with(a: &[Message], b: &[Message]) -> Vec<Key> {
    sorted(&a.iter().chain(b).collect::<Vec<_>>())
}

#[test]
fn import_gives_each_channel_exactly_its_messages() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let f = go_dir(d);
    let r = import_legacy(d, &specs(d), &ImportOptions::default()).unwrap();
    assert_eq!(r.topics, 2, "orders and quiet");
    assert_eq!(r.messages, 40);
    assert_eq!(r.channel_messages, 12 + 6);
    assert_eq!(r.ignored_queues, ["old", "orders:gone"]);
    assert_eq!(r.corrupt.len(), 1, "{:?}", r.corrupt);
    let audit_seg = segment_path(d, "orders:audit", 1);
    assert!(
        r.corrupt[0].starts_with(&format!("{} offset 0:", audit_seg.display())),
        "{:?}",
        r.corrupt
    );

    // The topic log holds the unread topic messages in order, attempts kept.
    let log: Vec<Key> = f.topic.iter().map(key).collect();
    assert_eq!(log_view(d, "orders"), log);
    assert_eq!(
        native_view(d, "orders", "archive"),
        with(&f.topic, &f.archive)
    );
    assert_eq!(
        native_view(d, "orders", "audit"),
        with(&f.topic, &f.audit_kept)
    );
    assert_eq!(native_view(d, "orders", "fresh"), with(&f.topic, &[]));
    assert_eq!(stored_channels(d, "orders"), ["archive", "audit", "fresh"]);
    assert_eq!(native_view(d, "quiet", "c"), Vec::<Key>::new());
    assert_eq!(stored_topics(d), ["orders", "quiet"]);

    // Imported Go files are gone; the ignored ones are untouched; no marker is left.
    assert_eq!(list_queues(d).unwrap(), ["old", "orders:gone"]);
    assert_eq!(legacy_view(d, "old"), [key(&msg(400, 0, "old"))]);
    assert!(!topic_dir(d, "orders").join("legacy-import.done").exists());
    let names: Vec<String> = std::fs::read_dir(store_dir(d))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // Running again changes nothing.
    let again = import_legacy(d, &specs(d), &ImportOptions::default()).unwrap();
    assert_eq!(
        (again.topics, again.messages, again.channel_messages),
        (0, 0, 0)
    );
    assert_eq!(again.ignored_queues, ["old", "orders:gone"]);
    assert_eq!(log_view(d, "orders"), log);
    assert_eq!(
        native_view(d, "orders", "archive"),
        with(&f.topic, &f.archive)
    );
}

#[test]
fn mixed_state_is_refused_before_anything_changes() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    go_dir(d);
    import_legacy(d, &specs(d), &ImportOptions::default()).unwrap();
    let before = log_view(d, "orders");
    // Go nsqd ran on the directory afterwards and left a queue for a topic we already store.
    write_legacy(d, "orders:archive", &[msg(9000, 0, "late")], 1 << 20);
    write_legacy(d, "newtopic", &[msg(9001, 0, "new")], 1 << 20);
    write_nsqd_dat(d, &[("orders", &["archive"]), ("newtopic", &[])]);
    let e = import_legacy(d, &specs(d), &ImportOptions::default()).unwrap_err();
    match &e {
        MigrateError::MixedState { topic, queues, .. } => {
            assert_eq!(
                (topic.as_str(), queues.as_slice()),
                ("orders", &["orders:archive".to_string()][..])
            );
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("remove whichever is stale"), "{e}");
    assert_eq!(log_view(d, "orders"), before);
    assert!(
        !topic_dir(d, "newtopic").exists(),
        "refusal is all or nothing"
    );
    assert_eq!(list_queues(d).unwrap().len(), 4);
}

/// What each channel of a Go directory will deliver: its own queue plus the topic queue (the
/// pump copies that to every channel), as a sorted multiset.
fn go_channel_view(d: &Path, topic: &str, channel: &str) -> Vec<Key> {
    let mut v = legacy_view(d, topic);
    v.extend(legacy_view(d, &format!("{topic}:{channel}")));
    v.sort();
    v
}

#[test]
fn round_trip_go_native_go() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    write_nsqd_dat(
        d,
        &[
            ("lonely", &[]),
            ("chans", &["x", "y"]),
            ("both", &["p", "q"]),
        ],
    );
    let lonely: Vec<Message> = (0..30).map(|i| msg(i, (i % 5) as u16, "l")).collect();
    write_legacy(d, "lonely", &lonely, 300);
    write_legacy(d, "chans", &[], 1 << 20);
    let x: Vec<Message> = (100..120)
        .map(|i| msg(i, 1 + (i % 3) as u16, "x"))
        .collect();
    let y: Vec<Message> = (200..205).map(|i| msg(i, 7, "y")).collect();
    write_legacy(d, "chans:x", &x, 250);
    write_legacy(d, "chans:y", &y, 250);
    let both: Vec<Message> = (300..310).map(|i| msg(i, 0, "b")).collect();
    let p: Vec<Message> = (400..403).map(|i| msg(i, 3, "p")).collect();
    write_legacy(d, "both", &both, 1 << 20);
    write_legacy(d, "both:p", &p, 1 << 20);

    let before_p = go_channel_view(d, "both", "p");
    let before_q = go_channel_view(d, "both", "q");
    let before: Vec<(String, Vec<Key>)> = ["lonely", "chans", "chans:x", "chans:y"]
        .iter()
        .map(|q| (q.to_string(), legacy_view(d, q)))
        .collect();

    import_legacy(d, &specs(d), &ImportOptions::default()).unwrap();
    assert!(list_queues(d).unwrap().is_empty());
    let r = export_legacy(d, &ExportOptions::default()).unwrap();
    assert!(
        r.store_removed && r.corrupt.is_empty() && !r.resumed,
        "{r:?}"
    );
    assert_eq!(r.messages, 30 + 20 + 5 + (10 + 3) + 10);
    assert!(!store_dir(d).exists());

    // Queue for queue where the topic queue and the channel queues did not overlap.
    for (q, want) in &before {
        assert_eq!(&legacy_view(d, q), want, "{q}");
    }
    // Where they did, every channel still gets the same messages; the topic queue is empty
    // because the channels already hold its messages.
    assert_eq!(go_channel_view(d, "both", "p"), before_p);
    assert_eq!(go_channel_view(d, "both", "q"), before_q);
    assert!(legacy_view(d, "both").is_empty());
    assert!(nsq_diskqueue::read_meta(d, "both").unwrap().is_none());
    // nsqd.dat is left exactly as it was.
    assert_eq!(specs(d).len(), 3);
}

#[test]
fn export_refuses_to_overwrite_go_queues_and_keeps_store_on_request() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    write_nsqd_dat(d, &[("t", &["c"])]);
    let msgs: Vec<Message> = (0..5).map(|i| msg(i, 0, "m")).collect();
    write_legacy(d, "t", &msgs, 1 << 20);
    import_legacy(d, &specs(d), &ImportOptions::default()).unwrap();

    write_legacy(d, "t:c", &[msg(99, 0, "stray")], 1 << 20);
    let e = export_legacy(d, &ExportOptions::default()).unwrap_err();
    assert!(
        matches!(e, MigrateError::LegacyExists { ref queue, .. } if queue == "t:c"),
        "{e}"
    );
    assert_eq!(list_queues(d).unwrap(), ["t:c"], "nothing written");
    std::fs::remove_file(nsq_diskqueue::meta_path(d, "t:c")).unwrap();
    std::fs::remove_file(segment_path(d, "t:c", 0)).unwrap();

    let keep = ExportOptions {
        keep_store: true,
        ..ExportOptions::default()
    };
    let r = export_legacy(d, &keep).unwrap();
    assert!(!r.store_removed);
    assert_eq!(r.topics[0].queues.len(), 1);
    assert_eq!(legacy_view(d, "t:c"), with(&msgs, &[]));
    assert!(channel_files(d, "t", "c").exists());
    // Both copies now exist: nsqd refuses to guess which one is current.
    let e = import_legacy(d, &specs(d), &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, MigrateError::MixedState { .. }), "{e}");
}

#[test]
fn export_puts_unreleased_messages_in_the_topic_queue_when_no_channel_exists() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    write_nsqd_dat(d, &[("t", &[]), ("other", &[])]);
    let msgs: Vec<Message> = (0..7).map(|i| msg(i, 1, "m")).collect();
    write_legacy(d, "t", &msgs, 1 << 20);
    write_legacy(d, "other", &msgs[..2], 1 << 20);
    import_legacy(d, &specs(d), &ImportOptions::default()).unwrap();
    // A store topic no longer in nsqd.dat stays where it is.
    write_nsqd_dat(d, &[("t", &[])]);
    let r = export_legacy(d, &ExportOptions::default()).unwrap();
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].queues[0].queue, "t");
    assert_eq!(r.ignored.len(), 1, "{:?}", r.ignored);
    assert!(!r.store_removed);
    assert_eq!(stored_topics(d), ["other"]);
    let got = nsq_diskqueue::read_queue(d, "t", 1 << 20).unwrap();
    let in_order: Vec<Key> = got
        .records
        .iter()
        .map(|p| key(&Message::decode(p).unwrap()))
        .collect();
    assert_eq!(
        in_order,
        msgs.iter().map(key).collect::<Vec<_>>(),
        "log order kept"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    /// Whatever the queue contents and segment sizes, each channel delivers the same multiset
    /// of (ID, attempts, body) after Go → native → Go.
    #[test]
    fn round_trip_preserves_what_every_channel_delivers(
        topic_n in 0u64..40,
        chan_ns in proptest::collection::vec(0u64..20, 0..3),
        attempts in 0u16..6,
        seg in 60i64..2000,
    ) {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        let names: Vec<String> = (0..chan_ns.len()).map(|i| format!("c{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        write_nsqd_dat(d, &[("t", &refs)]);
        let topic: Vec<Message> = (0..topic_n).map(|i| msg(i, attempts, "t")).collect();
        write_legacy(d, "t", &topic, seg);
        for (i, n) in chan_ns.iter().enumerate() {
            let c: Vec<Message> = (0..*n).map(|j| msg(10_000 * (i as u64 + 1) + j, attempts + 1, "c")).collect();
            write_legacy(d, &format!("t:c{i}"), &c, seg);
        }
        let before: Vec<Vec<Key>> = names.iter().map(|c| go_channel_view(d, "t", c)).collect();
        let before_topic = legacy_view(d, "t");
        import_legacy(d, &specs(d), &ImportOptions { max_bytes_per_file: seg as u64 * 3, ..ImportOptions::default() }).unwrap();
        let opts = ExportOptions { max_bytes_per_file: seg as u64, ..ExportOptions::default() };
        export_legacy(d, &opts).unwrap();
        for (c, want) in names.iter().zip(&before) {
            proptest::prop_assert_eq!(&go_channel_view(d, "t", c), want);
        }
        if names.is_empty() {
            proptest::prop_assert_eq!(legacy_view(d, "t"), before_topic);
        }
    }
}
