//! nsq-store's topic log record decoder (`record::decode`) on arbitrary bytes, and the
//! encode/decode round trip of a message built from the input.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nsq_protocol::{Message, MessageId};
use nsq_store::record::{decode, encode, Decoded, Record, RECORD_OVERHEAD};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let max_body = [0, 16, 4096, 1 << 30][usize::from(mode >> 1) % 4];
    let mut bytes = rest.to_vec();
    // Random bytes almost never carry a matching checksum; fixing it reaches the field decoding.
    if mode & 1 != 0 && bytes.len() >= 8 {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        let end = len.saturating_add(4).clamp(8, bytes.len());
        let crc = crc32c::crc32c(&bytes[8..end]);
        bytes[4..8].copy_from_slice(&crc.to_be_bytes());
    }
    let bytes = Bytes::from(bytes);
    if let Decoded::Record { record, size } = decode(&bytes, max_body) {
        assert!(size <= bytes.len());
        assert_eq!(size, RECORD_OVERHEAD + record.msg.body.len());
        assert!(record.msg.body.len() <= max_body);
        let mut again = Vec::new();
        encode(&mut again, record.seq, &record.msg);
        assert_eq!(&again[..], &bytes[..size]);
    }

    // A message made of the input: seq, timestamp, attempts and ID from its first bytes.
    let mut head = [0u8; 34];
    let n = rest.len().min(head.len());
    head[..n].copy_from_slice(&rest[..n]);
    let seq = u64::from_be_bytes(head[..8].try_into().unwrap());
    let mut msg = Message::new(
        MessageId(head[18..34].try_into().unwrap()),
        i64::from_be_bytes(head[8..16].try_into().unwrap()),
        Bytes::copy_from_slice(rest),
    );
    msg.attempts = u16::from_be_bytes(head[16..18].try_into().unwrap());
    let mut buf = Vec::new();
    encode(&mut buf, seq, &msg);
    let record_len = buf.len();
    // Whatever follows a record must not change how it decodes.
    buf.extend_from_slice(&rest[..rest.len().min(8)]);
    let expected = Record { seq, msg };
    assert_eq!(
        decode(&Bytes::from(buf), rest.len()),
        Decoded::Record {
            record: expected,
            size: record_len
        }
    );
});
