//! Write → read properties across rollover limits, crash states and damage.
use std::path::Path;

use nsq_diskqueue::{
    list_queues, meta_path, queue_name, read_queue, remove_queue_files, segment_path, write_meta,
    write_queue, CorruptReason, CorruptSpan, LegacyWriter, Position, QueueMeta,
};
use proptest::prelude::*;

const MAX_MSG: i64 = 4096;

/// A message payload: 26-byte header derived from `i`, then `body_len` bytes.
fn payload(i: usize, body_len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(26 + body_len);
    p.extend_from_slice(&(i as i64).to_be_bytes());
    p.extend_from_slice(&(i as u16).to_be_bytes());
    p.extend_from_slice(format!("{i:016x}").as_bytes());
    p.extend((0..body_len).map(|k| (i + k) as u8));
    p
}

fn payloads_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    // Mostly small bodies, some larger than any limit below so they sit alone in a file.
    let body = prop_oneof![8 => 0usize..120, 1 => 600usize..1200];
    prop::collection::vec(body, 0..40).prop_map(|lens| {
        lens.into_iter()
            .enumerate()
            .map(|(i, l)| payload(i, l))
            .collect()
    })
}

/// Writes with a [`LegacyWriter`], returning each record's start position and the final meta.
fn write_all(d: &Path, queue: &str, payloads: &[Vec<u8>], max_bytes: i64) -> Vec<Position> {
    let mut w = LegacyWriter::create(d, queue, max_bytes).unwrap();
    let at = payloads.iter().map(|p| w.put(p).unwrap()).collect();
    w.close().unwrap();
    at
}

fn segment_sizes(d: &Path, queue: &str) -> Vec<u64> {
    (0..)
        .map(|n| std::fs::metadata(segment_path(d, queue, n)))
        .take_while(|m| m.is_ok())
        .map(|m| m.unwrap().len())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(payloads in payloads_strategy(), max_bytes in 1i64..1000) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let meta = write_queue(d, "t:c", &payloads, max_bytes).unwrap();

        // Go's rollover rule, replayed independently.
        let (mut file, mut pos, mut starts) = (0i64, 0i64, Vec::new());
        for p in &payloads {
            let total = 4 + p.len() as i64;
            if pos > 0 && pos + total > max_bytes {
                file += 1;
                pos = 0;
            }
            starts.push((file, pos));
            pos += total;
        }
        prop_assert_eq!(meta, QueueMeta {
            depth: payloads.len() as i64,
            read_file_num: 0,
            read_pos: 0,
            write_file_num: file,
            write_pos: pos,
        });
        prop_assert_eq!(std::fs::read_to_string(meta_path(d, "t:c")).unwrap(), meta.to_text());

        let sizes = segment_sizes(d, "t:c");
        let files_used = if payloads.is_empty() { 0 } else { file as usize + 1 };
        prop_assert_eq!(sizes.len(), files_used);
        for (n, size) in sizes.iter().enumerate() {
            let records = starts.iter().filter(|s| s.0 == n as i64).count();
            prop_assert!(*size as i64 <= max_bytes || records == 1);
        }

        let q = read_queue(d, "t:c", MAX_MSG).unwrap();
        prop_assert!(q.corrupt.is_empty());
        prop_assert_eq!(q.meta, Some(meta));
        prop_assert_eq!(q.files.len(), files_used + 1);
        prop_assert_eq!(q.records.len(), payloads.len());
        for (r, p) in q.records.iter().zip(&payloads) {
            prop_assert_eq!(&r[..], &p[..]);
            prop_assert!(nsq_protocol::Message::decode(r).is_some());
        }

        remove_queue_files(&q.files).unwrap();
        prop_assert_eq!(std::fs::read_dir(d).unwrap().count(), 0);
    }

    #[test]
    fn read_position_anywhere(
        payloads in payloads_strategy(),
        max_bytes in 1i64..600,
        pick in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let starts = write_all(d, "t", &payloads, max_bytes);
        let mut meta = nsq_diskqueue::read_meta(d, "t").unwrap().unwrap();
        let k = pick.index(payloads.len() + 1);
        let read = starts.get(k).copied().unwrap_or(meta.write_position());
        meta.read_file_num = read.file_num;
        meta.read_pos = read.pos;
        meta.depth = (payloads.len() - k) as i64;
        write_meta(d, "t", &meta).unwrap();

        let q = read_queue(d, "t", MAX_MSG).unwrap();
        prop_assert!(q.corrupt.is_empty(), "{:?}", q.corrupt);
        prop_assert_eq!(q.records.len(), payloads.len() - k);
        for (r, p) in q.records.iter().zip(&payloads[k..]) {
            prop_assert_eq!(&r[..], &p[..]);
        }
    }

    /// The meta file was last synced after `k` records; the rest reached the files (the write
    /// segment grew past the write position, later segments may exist). All are read.
    #[test]
    fn unsynced_tail_and_extra_segments(
        payloads in payloads_strategy(),
        max_bytes in 1i64..600,
        pick in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let k = pick.index(payloads.len() + 1);
        let mut w = LegacyWriter::create(d, "t", max_bytes).unwrap();
        for p in &payloads[..k] {
            w.put(p).unwrap();
        }
        let stale = w.sync().unwrap();
        for p in &payloads[k..] {
            w.put(p).unwrap();
        }
        drop(w);
        write_meta(d, "t", &stale).unwrap();

        let q = read_queue(d, "t", MAX_MSG).unwrap();
        prop_assert!(q.corrupt.is_empty(), "{:?}", q.corrupt);
        prop_assert_eq!(q.records.len(), payloads.len());
        for (r, p) in q.records.iter().zip(&payloads) {
            prop_assert_eq!(&r[..], &p[..]);
        }
    }

    /// A record whose length prefix is damaged: the records before it in its segment and every
    /// other segment survive; the rest of its segment is reported.
    #[test]
    fn damaged_length(
        payloads in payloads_strategy().prop_filter("need records", |p| !p.is_empty()),
        max_bytes in 1i64..600,
        pick in any::<prop::sample::Index>(),
        bad_len in prop_oneof![Just(0i32), Just(25), Just(-7), Just(MAX_MSG as i32 + 27)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let starts = write_all(d, "t", &payloads, max_bytes);
        let j = pick.index(payloads.len());
        let bad = starts[j];
        let path = segment_path(d, "t", bad.file_num);
        let mut seg = std::fs::read(&path).unwrap();
        seg[bad.pos as usize..bad.pos as usize + 4].copy_from_slice(&bad_len.to_be_bytes());
        std::fs::write(&path, seg).unwrap();

        let q = read_queue(d, "t", MAX_MSG).unwrap();
        let want: Vec<&Vec<u8>> = payloads
            .iter()
            .zip(&starts)
            .filter(|(_, s)| s.file_num != bad.file_num || s.pos < bad.pos)
            .map(|(p, _)| p)
            .collect();
        prop_assert_eq!(q.records.len(), want.len());
        for (r, p) in q.records.iter().zip(want) {
            prop_assert_eq!(&r[..], &p[..]);
        }
        prop_assert_eq!(q.corrupt, vec![CorruptSpan {
            file_num: bad.file_num,
            offset: bad.pos,
            reason: CorruptReason::InvalidLength(bad_len),
        }]);
    }

    /// Cutting the last segment anywhere never yields part of a record.
    #[test]
    fn truncated_tail(
        payloads in payloads_strategy().prop_filter("need records", |p| !p.is_empty()),
        max_bytes in 1i64..600,
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let starts = write_all(d, "t", &payloads, max_bytes);
        let last = starts[starts.len() - 1].file_num;
        let path = segment_path(d, "t", last);
        let seg = std::fs::read(&path).unwrap();
        let cut = cut.index(seg.len() + 1) as i64;
        std::fs::write(&path, &seg[..cut as usize]).unwrap();

        let q = read_queue(d, "t", MAX_MSG).unwrap();
        let ends = payloads.iter().zip(&starts).map(|(p, s)| (s, s.pos + 4 + p.len() as i64));
        let kept = ends.filter(|(s, end)| s.file_num < last || *end <= cut).count();
        prop_assert_eq!(q.records.len(), kept);
        for (r, p) in q.records.iter().zip(&payloads) {
            prop_assert_eq!(&r[..], &p[..]);
        }
        let on_boundary = starts.iter().any(|s| s.file_num == last && s.pos == cut)
            || cut == seg.len() as i64;
        if on_boundary {
            // The meta file still claims the full length.
            let short = q.corrupt.iter().all(|s| matches!(s.reason, CorruptReason::ShortSegment { .. }));
            prop_assert!(short && q.corrupt.len() == usize::from(cut < seg.len() as i64));
        } else {
            prop_assert_eq!(q.corrupt.len(), 1);
            prop_assert_eq!(&q.corrupt[0].reason, &CorruptReason::Truncated { file_size: cut });
        }
    }

    /// Whatever the bytes, reading terminates without panicking and returns only records whose
    /// framing was valid.
    #[test]
    fn garbage_never_panics(
        seg0 in prop::collection::vec(any::<u8>(), 0..300),
        meta in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(segment_path(d, "t", 0), &seg0).unwrap();
        std::fs::write(meta_path(d, "t"), &meta).unwrap();
        let q = read_queue(d, "t", 64).unwrap();
        prop_assert!(q.records.iter().all(|r| (26..=90).contains(&r.len())));
    }
}

#[test]
fn list_queues_of_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = payload(0, 3);
    write_queue(d, &queue_name("orders", None), [&p], 1024).unwrap();
    write_queue(d, &queue_name("orders", Some("archive")), [&p, &p], 1024).unwrap();
    write_queue(d, "empty", std::iter::empty::<&[u8]>(), 1024).unwrap();
    std::fs::write(d.join("nsqd.dat"), b"{}").unwrap();
    std::fs::write(d.join("gone.diskqueue.000002.dat.bad"), b"").unwrap();
    assert_eq!(
        list_queues(d).unwrap(),
        ["empty", "orders", "orders:archive"]
    );

    let q = read_queue(d, "orders:archive", MAX_MSG).unwrap();
    assert_eq!(q.records.len(), 2);
    remove_queue_files(&q.files).unwrap();
    assert_eq!(list_queues(d).unwrap(), ["empty", "orders"]);
    // The quarantined segment and nsqd.dat stay.
    assert!(d.join("gone.diskqueue.000002.dat.bad").exists());
    assert!(d.join("nsqd.dat").exists());
}
