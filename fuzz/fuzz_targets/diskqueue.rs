//! nsq-diskqueue's reader of Go nsqd's disk queues: a meta file and up to three segment files
//! made of the input, read with `read_queue` and `scan_queue`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nsq_diskqueue::{meta_path, read_queue, scan_queue, segment_path, MIN_RECORD_LEN};
use nsq_protocol::Message;

fuzz_target!(|data: &[u8]| {
    // flags | meta length u8 | segment lengths u16 BE ×2 | meta | segment | segment | segment
    let Some(([flags, meta_len, a0, a1, b0, b1], rest)) = data.split_first_chunk::<6>() else {
        return;
    };
    let mut rest = rest;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        head
    };
    let meta = take(usize::from(*meta_len));
    let seg0 = take(usize::from(u16::from_be_bytes([*a0, *a1])));
    let seg1 = take(usize::from(u16::from_be_bytes([*b0, *b1])));
    let seg2 = take(usize::MAX);

    let dir = nsq_fuzz::scratch_dir();
    let queue = "t";
    if flags & 8 != 0 {
        std::fs::write(meta_path(dir, queue), meta).unwrap();
    }
    // Segments may start past 0 and have gaps, as after consumed files were removed.
    let base = i64::from((flags >> 4) & 3);
    for (i, seg) in [seg0, seg1, seg2].into_iter().enumerate() {
        if flags & (1 << i) != 0 {
            std::fs::write(segment_path(dir, queue, base + i as i64), seg).unwrap();
        }
    }
    let max_msg_size = if flags & 64 != 0 { 64 } else { 1024 * 1024 };

    let Ok(q) = read_queue(dir, queue, max_msg_size) else {
        return;
    };
    for r in &q.records {
        assert!(r.len() >= MIN_RECORD_LEN && r.len() as i64 <= max_msg_size + 26);
        // What an upgrade does with each record.
        assert!(Message::decode(r).is_some());
    }
    let mut seen: Vec<Bytes> = Vec::new();
    let scan = scan_queue(dir, queue, max_msg_size, |r| seen.push(r)).unwrap();
    assert_eq!(seen, q.records);
    assert_eq!(scan.record_count, q.records.len() as u64);
    assert_eq!(scan.corrupt, q.corrupt);
});
