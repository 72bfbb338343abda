//! nsq-store's topic log read back from disk: an older segment made of the input followed by a
//! valid newer segment, opened with `DiskLog::open` and read from head to tail in small steps
//! through `MessageLog`. Opening and reading must never panic, and every read must move on.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nsq_protocol::{Message, MessageId};
use nsq_queue::MessageLog;
use nsq_store::record::encode;
use nsq_store::segment::{header, segment_path};
use nsq_store::{DiskLog, LogOptions};

fuzz_target!(|data: &[u8]| {
    // Two knob bytes: where the second segment starts, and how the first is built and read.
    let Some(([second_first, mode], input)) = data.split_first_chunk::<2>() else {
        return;
    };
    let second_first = 1 + u64::from(*second_first % 32);
    let step = 1 + usize::from(mode >> 4);

    let dir = nsq_fuzz::scratch_dir();
    let mut first = Vec::new();
    // Usually a correct header, so the fuzzer spends its time on the records.
    if mode & 1 == 0 {
        first.extend_from_slice(&header(0));
    }
    first.extend_from_slice(input);
    std::fs::write(segment_path(dir, 0), &first).unwrap();

    let mut second = header(second_first).to_vec();
    for i in 0..2 {
        let msg = Message::new(
            MessageId(*b"0123456789abcdef"),
            i,
            Bytes::from_static(b"body"),
        );
        encode(&mut second, second_first + i as u64, &msg);
    }
    std::fs::write(segment_path(dir, second_first), &second).unwrap();

    let opts = LogOptions {
        max_bytes_per_file: 1 << 20,
        max_body: 1 << 20,
        cache_messages: 4,
    };
    let Ok((mut log, _recovery)) = DiskLog::open(dir, opts) else {
        return;
    };
    let (head, tail) = (log.head(), log.tail());
    assert!(head <= tail);
    let mut pos = head;
    let mut out = Vec::new();
    while pos < tail {
        let next = log.read(pos, step, &mut out);
        // MessageLog promises progress whenever something is left to read: a reader that got
        // none would ask again forever.
        assert!(
            next > pos && next <= pos + step as u64,
            "read({pos}, {step}) gave {next}"
        );
        pos = next;
    }
    assert!(out.len() as u64 <= tail - head);
});
