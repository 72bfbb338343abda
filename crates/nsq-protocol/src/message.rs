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
    /// Hex-encodes a GUID the way NSQ does (big-endian, lowercase).
    pub fn from_guid(guid: u64) -> MessageId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, byte) in guid.to_be_bytes().iter().enumerate() {
            out[i * 2] = HEX[(byte >> 4) as usize];
            out[i * 2 + 1] = HEX[(byte & 0xf) as usize];
        }
        MessageId(out)
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
        if payload.len() < MESSAGE_HEADER_LEN {
            return None;
        }
        let timestamp = i64::from_be_bytes(payload[0..8].try_into().ok()?);
        let attempts = u16::from_be_bytes(payload[8..10].try_into().ok()?);
        let id = MessageId::from_slice(&payload[10..26])?;
        Some(Message {
            id,
            timestamp,
            attempts,
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
