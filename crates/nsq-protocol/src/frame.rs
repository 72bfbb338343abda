//! Server → client framing: `size:i32 | type:i32 | data`, size counting the type and data.
use bytes::BufMut;

use crate::message::Message;

pub const FRAME_RESPONSE: i32 = 0;
pub const FRAME_ERROR: i32 = 1;
pub const FRAME_MESSAGE: i32 = 2;

pub const OK: &[u8] = b"OK";
pub const HEARTBEAT: &[u8] = b"_heartbeat_";
pub const CLOSE_WAIT: &[u8] = b"CLOSE_WAIT";

pub fn put_frame(buf: &mut impl BufMut, kind: i32, data: &[u8]) {
    buf.put_i32(4 + data.len() as i32);
    buf.put_i32(kind);
    buf.put_slice(data);
}

pub fn put_response(buf: &mut impl BufMut, data: &[u8]) {
    put_frame(buf, FRAME_RESPONSE, data);
}

pub fn put_error(buf: &mut impl BufMut, text: &str) {
    put_frame(buf, FRAME_ERROR, text.as_bytes());
}

/// Appends a message frame; `attempts` in `msg` must already count this delivery.
pub fn put_message(buf: &mut impl BufMut, msg: &Message) {
    buf.put_i32(4 + msg.payload_len() as i32);
    buf.put_i32(FRAME_MESSAGE);
    msg.put_payload(buf);
}

/// Bytes a message frame occupies on the wire.
pub fn message_frame_len(msg: &Message) -> usize {
    8 + msg.payload_len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageId;
    use bytes::Bytes;

    #[test]
    fn frame_bytes() {
        let mut b = Vec::new();
        put_response(&mut b, OK);
        assert_eq!(b, [0, 0, 0, 6, 0, 0, 0, 0, b'O', b'K']);
        let mut b = Vec::new();
        put_response(&mut b, HEARTBEAT);
        assert_eq!(&b[..8], &[0, 0, 0, 15, 0, 0, 0, 0]);
        let mut b = Vec::new();
        let m = Message::new(MessageId(*b"0123456789abcdef"), 1, Bytes::from_static(b"x"));
        put_message(&mut b, &m);
        assert_eq!(b.len(), message_frame_len(&m));
        assert_eq!(&b[..8], &[0, 0, 0, 31, 0, 0, 0, 2]);
    }
}
