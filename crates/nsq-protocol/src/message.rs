//! The message record: 16-byte ID, publish timestamp, attempts and a shared body, and its wire
//! payload layout (`timestamp:i64 | attempts:u16 | id:16 | body`).
use bytes::{BufMut, Bytes};

/// Bytes before the body in a message payload.
pub const MESSAGE_HEADER_LEN: usize = 8 + 2 + 16;

/// A message ID: 16 bytes, normally lowercase hex of a 63-bit GUID. Clients echo it back
/// verbatim, so any 16 bytes are accepted when parsing commands.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// Hex-encodes a GUID the way NSQ does (big-endian, lowercase). Runs once per published
    /// message, so the nibbles are spread to bytes and mapped to ASCII in registers (about a
    /// fifth of the instructions of a per-nibble table lookup).
    pub fn from_guid(guid: u64) -> MessageId {
        const LO: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
        // Nibble j (counted from the least significant) moves from bit 4j to bit 8j, so the
        // big-endian bytes of `x` are the nibbles in printing order.
        let mut x = guid as u128;
        x = (x | (x << 32)) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
        x = (x | (x << 16)) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
        x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
        x = (x | (x << 4)) & (LO * 0x0f);
        // Bytes of 10 and more get bit 4 once 6 is added: those need 'a' - '0' - 10 = 39 more.
        let letters = ((x + LO * 6) >> 4) & LO;
        MessageId((x + LO * b'0' as u128 + letters * 39).to_be_bytes())
    }

    pub fn from_slice(b: &[u8]) -> Option<MessageId> {
        <[u8; 16]>::try_from(b).ok().map(MessageId)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Lossy text form for error messages and logs.
    pub fn as_text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({})", self.as_text())
    }
}

/// One message as held by a topic or channel. The body is reference-counted, so every channel
/// and consumer shares one copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    /// Publish time in nanoseconds since the Unix epoch; never changes.
    pub timestamp: i64,
    /// Deliveries so far (the wire value counts the current delivery).
    pub attempts: u16,
    pub body: Bytes,
}

impl Message {
    pub fn new(id: MessageId, timestamp: i64, body: Bytes) -> Message {
        Message {
            id,
            timestamp,
            attempts: 0,
            body,
        }
    }

    /// Payload length on the wire and in NSQ's disk queues.
    pub fn payload_len(&self) -> usize {
        MESSAGE_HEADER_LEN + self.body.len()
    }

    /// Appends the payload header (everything but the body).
    pub fn put_header(&self, buf: &mut impl BufMut) {
        buf.put_i64(self.timestamp);
        buf.put_u16(self.attempts);
        buf.put_slice(&self.id.0);
    }

    /// Appends the full payload.
    pub fn put_payload(&self, buf: &mut impl BufMut) {
        self.put_header(buf);
        buf.put_slice(&self.body);
    }

    /// Decodes a payload; the body shares `payload`'s allocation.
    pub fn decode(payload: &Bytes) -> Option<Message> {
        let (timestamp, rest) = payload.split_first_chunk::<8>()?;
        let (attempts, rest) = rest.split_first_chunk::<2>()?;
        let (id, _) = rest.split_first_chunk::<16>()?;
        Some(Message {
            id: MessageId(*id),
            timestamp: i64::from_be_bytes(*timestamp),
            attempts: u16::from_be_bytes(*attempts),
            body: payload.slice(MESSAGE_HEADER_LEN..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_hex() {
        assert_eq!(
            MessageId::from_guid(0x0d9c3b7a1e2f4000).0,
            *b"0d9c3b7a1e2f4000"
        );
        assert_eq!(MessageId::from_guid(0).0, *b"0000000000000000");
        assert_eq!(MessageId::from_guid(u64::MAX).0, *b"ffffffffffffffff");
        assert_eq!(
            MessageId::from_guid(0x0123_4567_89ab_cdef).0,
            *b"0123456789abcdef"
        );
    }

    proptest::proptest! {
        #[test]
        fn guid_hex_matches_format(guid in proptest::prelude::any::<u64>()) {
            let text = format!("{guid:016x}");
            proptest::prop_assert_eq!(&MessageId::from_guid(guid).0[..], text.as_bytes());
        }
    }

    #[test]
    fn payload_round_trip() {
        let mut m = Message::new(
            MessageId(*b"0123456789abcdef"),
            42,
            Bytes::from_static(b"hi"),
        );
        m.attempts = 3;
        let mut buf = Vec::new();
        m.put_payload(&mut buf);
        assert_eq!(buf.len(), m.payload_len());
        assert_eq!(&buf[0..8], &42i64.to_be_bytes());
        assert_eq!(&buf[8..10], &3u16.to_be_bytes());
        assert_eq!(Message::decode(&Bytes::from(buf)), Some(m));
        assert_eq!(Message::decode(&Bytes::from_static(b"short")), None);
    }
}
