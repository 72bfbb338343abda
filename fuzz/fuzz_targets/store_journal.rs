//! nsq-store's channel journal decoder (`journal::decode_journal`) on arbitrary bytes, and the
//! encode/decode round trip of whatever events it found.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nsq_store::journal::{decode_journal, encode_event};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    // Random bytes almost never carry matching checksums; fixing them reaches event decoding.
    if mode & 1 != 0 {
        let mut pos = 0;
        while pos + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            let end = pos.saturating_add(4).saturating_add(len);
            if len < 5 || end > bytes.len() {
                break;
            }
            let crc = crc32c::crc32c(&bytes[pos + 8..end]);
            bytes[pos + 4..pos + 8].copy_from_slice(&crc.to_be_bytes());
            pos = end;
        }
    }
    let scan = decode_journal(&Bytes::from(bytes.clone()));
    // Everything is accounted for: events, skipped damage and a torn tail never overlap.
    let skipped: u64 = scan.damage.iter().map(|d| d.skipped_bytes).sum();
    assert!(skipped + scan.torn_bytes <= bytes.len() as u64);

    let mut again = Vec::new();
    for e in &scan.events {
        encode_event(&mut again, e);
    }
    let round = decode_journal(&Bytes::from(again));
    assert!(round.damage.is_empty() && round.torn_bytes == 0);
    assert_eq!(round.events, scan.events);
});
