//! The topic log's record: one message with its sequence number, framed by a length and a
//! CRC-32C so that a torn or damaged record is recognised on its own.
//!
//! ```text
//! offset size field
//! 0      4    length L (u32 BE): bytes after this field = 38 + body length
//! 4      4    CRC-32C (Castagnoli) of bytes 8 .. 4+L
//! 8      8    sequence number (u64 BE)
//! 16     8    publish timestamp, ns since the Unix epoch (i64 BE)
//! 24     2    attempts (u16 BE)
//! 26     16   message ID
//! 42     N    body
//! ```
use bytes::Bytes;

use nsq_protocol::{Message, MessageId};

/// Bytes a record uses besides its body.
pub const RECORD_OVERHEAD: usize = 42;
/// The part of `RECORD_OVERHEAD` counted in the length field.
const LEN_MIN: u32 = 38;

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub msg: Message,
}

/// Appends one record to `buf`.
pub fn encode(buf: &mut Vec<u8>, seq: u64, msg: &Message) {
    // The fixed part is assembled on the stack and copied once: field-by-field appends each
    // re-checked the buffer's capacity, which showed in the per-message cost of publishing.
    let mut head = [0u8; 4 + LEN_MIN as usize];
    head[0..4].copy_from_slice(&(LEN_MIN + msg.body.len() as u32).to_be_bytes());
    head[8..16].copy_from_slice(&seq.to_be_bytes());
    head[16..24].copy_from_slice(&msg.timestamp.to_be_bytes());
    head[24..26].copy_from_slice(&msg.attempts.to_be_bytes());
    head[26..42].copy_from_slice(&msg.id.0);
    let at = buf.len();
    buf.reserve(head.len() + msg.body.len());
    buf.extend_from_slice(&head);
    buf.extend_from_slice(&msg.body);
    // One CRC call over the record as written: the crate's per-call cost dominates on short
    // messages, so the header and body are not summed separately.
    let crc = crc32c::crc32c(buf.get(at + 8..).unwrap_or_default());
    if let Some(slot) = buf.get_mut(at + 4..at + 8) {
        slot.copy_from_slice(&crc.to_be_bytes());
    }
}

/// What is at a position of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, valid record of `size` bytes.
    Record { record: Record, size: usize },
    /// Fewer bytes than the record needs: the end of the data, or a torn write.
    Truncated,
    /// A length outside the valid range or a checksum mismatch.
    Corrupt(&'static str),
}

/// Decodes the record at the start of `data`. `max_body` bounds the length field so a damaged
/// length cannot make the reader wait for gigabytes.
pub fn decode(data: &Bytes, max_body: usize) -> Decoded {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return Decoded::Truncated;
    };
    let len = u32::from_be_bytes(*len);
    if len < LEN_MIN || len as usize > LEN_MIN as usize + max_body {
        return Decoded::Corrupt("length out of range");
    }
    let size = 4 + len as usize;
    let Some(body) = rest.get(..len as usize) else {
        return Decoded::Truncated;
    };
    let Some((stored, fields)) = body.split_first_chunk::<4>() else {
        return Decoded::Truncated;
    };
    if crc32c::crc32c(fields) != u32::from_be_bytes(*stored) {
        return Decoded::Corrupt("checksum mismatch");
    }
    // `fields` holds at least LEN_MIN - 4 = 34 bytes: seq 8, timestamp 8, attempts 2, id 16.
    let Some((seq, fields)) = fields.split_first_chunk::<8>() else {
        return Decoded::Corrupt("length out of range");
    };
    let Some((timestamp, fields)) = fields.split_first_chunk::<8>() else {
        return Decoded::Corrupt("length out of range");
    };
    let Some((attempts, fields)) = fields.split_first_chunk::<2>() else {
        return Decoded::Corrupt("length out of range");
    };
    let Some((id, _)) = fields.split_first_chunk::<16>() else {
        return Decoded::Corrupt("length out of range");
    };
    let msg = Message {
        id: MessageId(*id),
        timestamp: i64::from_be_bytes(*timestamp),
        attempts: u16::from_be_bytes(*attempts),
        body: data.slice(8 + 34..size),
    };
    let seq = u64::from_be_bytes(*seq);
    Decoded::Record {
        record: Record { seq, msg },
        size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &'static [u8]) -> Message {
        let mut m = Message::new(MessageId(*b"0123456789abcdef"), 7, Bytes::from_static(body));
        m.attempts = 2;
        m
    }

    #[test]
    fn layout_and_round_trip() {
        let mut buf = Vec::new();
        encode(&mut buf, 5, &msg(b"hi"));
        assert_eq!(buf.len(), RECORD_OVERHEAD + 2);
        assert_eq!(&buf[0..4], &40u32.to_be_bytes());
        assert_eq!(&buf[8..16], &5u64.to_be_bytes());
        assert_eq!(&buf[16..24], &7i64.to_be_bytes());
        assert_eq!(&buf[24..26], &2u16.to_be_bytes());
        assert_eq!(&buf[26..42], b"0123456789abcdef");
        assert_eq!(&buf[42..], b"hi");
        let d = decode(&Bytes::from(buf.clone()), 100);
        assert_eq!(
            d,
            Decoded::Record {
                record: Record {
                    seq: 5,
                    msg: msg(b"hi")
                },
                size: buf.len()
            }
        );
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, &msg(b"hello"));
        for cut in 0..buf.len() {
            assert_eq!(
                decode(&Bytes::copy_from_slice(&buf[..cut]), 100),
                Decoded::Truncated,
                "{cut}"
            );
        }
        for i in 4..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(
                matches!(decode(&Bytes::from(bad), 100), Decoded::Corrupt(_)),
                "{i}"
            );
        }
        let mut bad = buf.clone();
        bad[0] = 0xff;
        assert_eq!(
            decode(&Bytes::from(bad), 100),
            Decoded::Corrupt("length out of range")
        );
    }
}
