//! The client side of NSQ's TCP protocol V2, only as much as the bench tools need: building
//! IDENTIFY, SUB, RDY, PUB, MPUB, FIN and NOP commands and cutting server frames out of a byte
//! buffer.
//!
//! Written independently of the server's codec on purpose, so that a bug shared by both sides
//! cannot hide behind a benchmark that "works". For the same reason, and because the bench
//! tools reproduce NSQ's bench_writer and bench_reader command for command (batching, RDY, when
//! FIN goes out), they do not use `nsq-client`, whose go-nsq behaviour would change the load.

use anyhow::{bail, Context, Result};

/// Sent once, before any command.
pub const MAGIC_V2: &[u8] = b"  V2";

/// The response nsqd sends in place of a ping; a client answers it with [`NOP`].
pub const HEARTBEAT: &[u8] = b"_heartbeat_";

/// No-op command, the answer to a heartbeat.
pub const NOP: &[u8] = b"NOP\n";

/// Length of a message ID on the wire (16 ASCII hex digits).
pub const MSG_ID_LEN: usize = 16;

/// Timestamp (8) + attempts (2) + ID (16) in front of every message body.
const MSG_HEADER_LEN: usize = 8 + 2 + MSG_ID_LEN;

/// Largest frame we accept. nsqd's own limits are far smaller (1 MiB messages by default); the
/// cap only stops a corrupt size field from making us allocate gigabytes.
const MAX_FRAME: usize = 64 << 20;

/// `IDENTIFY` with the fields NSQ's bench tools send. No feature negotiation, so nsqd answers a
/// plain `OK`, exactly as it does for the Go tools.
pub fn identify(client_id: &str, user_agent: &str) -> Vec<u8> {
    identify_with(&serde_json::json!({
        "client_id": client_id,
        "hostname": client_id,
        "user_agent": user_agent,
    }))
}

/// `IDENTIFY` with any JSON body.
pub fn identify_with(body: &serde_json::Value) -> Vec<u8> {
    let mut out = b"IDENTIFY\n".to_vec();
    put_sized(&mut out, body.to_string().as_bytes());
    out
}

/// `IDENTIFY` with `feature_negotiation` and the upgrades asked for. nsqd answers with its JSON
/// settings, then performs the upgrades in order (TLS, then compression), confirming each with an
/// `OK` sent through the new layer.
pub fn identify_negotiate(
    client_id: &str,
    user_agent: &str,
    tls: bool,
    snappy: bool,
    deflate_level: Option<u32>,
) -> Vec<u8> {
    let mut body = serde_json::json!({
        "client_id": client_id,
        "hostname": client_id,
        "user_agent": user_agent,
        "feature_negotiation": true,
        "tls_v1": tls,
        "snappy": snappy,
        "deflate": deflate_level.is_some(),
    });
    if let Some(level) = deflate_level {
        body["deflate_level"] = level.into();
    }
    identify_with(&body)
}

/// `IDENTIFY` with the fields and defaults go-nsq sends for a new consumer or producer
/// (`feature_negotiation`, a 30 s heartbeat, a 16 KiB output buffer flushed at least every
/// 250 ms, no sampling, nsqd's message timeout), so that what nsqd does with the connection
/// (how long it buffers messages before writing them) is what a default go-nsq client gets.
pub fn identify_go_nsq(
    client_id: &str,
    user_agent: &str,
    tls: bool,
    snappy: bool,
    deflate_level: Option<u32>,
) -> Vec<u8> {
    identify_with(&serde_json::json!({
        "client_id": client_id,
        "hostname": client_id,
        "user_agent": user_agent,
        "feature_negotiation": true,
        "heartbeat_interval": 30_000,
        "output_buffer_size": 16_384,
        "output_buffer_timeout": 250,
        "tls_v1": tls,
        "snappy": snappy,
        "deflate": deflate_level.is_some(),
        "deflate_level": deflate_level.unwrap_or(6),
        "sample_rate": 0,
        "msg_timeout": 0,
    }))
}

pub fn sub(topic: &str, channel: &str) -> Vec<u8> {
    format!("SUB {topic} {channel}\n").into_bytes()
}

pub fn rdy(count: u64) -> Vec<u8> {
    format!("RDY {count}\n").into_bytes()
}

/// One complete `PUB` command. Bodies larger than the protocol's 4 GiB size field are refused.
pub fn pub_cmd(topic: &str, body: &[u8]) -> Result<Vec<u8>> {
    if u32::try_from(body.len()).is_err() {
        bail!("PUB body larger than the protocol's 4 GiB size field");
    }
    let mut out = Vec::with_capacity(topic.len() + 9 + body.len());
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(topic.as_bytes());
    out.push(b'\n');
    put_sized(&mut out, body);
    Ok(out)
}

/// One complete `MPUB` command carrying `count` copies of `body`. The bench tools send the same
/// batch again and again, so it is built once and reused.
pub fn mpub(topic: &str, body: &[u8], count: usize) -> Result<Vec<u8>> {
    let per_msg = 4 + body.len();
    let payload_len = per_msg
        .checked_mul(count)
        .and_then(|n| n.checked_add(4))
        .filter(|&n| u32::try_from(n).is_ok())
        .context("MPUB batch larger than the protocol's 4 GiB size field")?;
    let mut out = Vec::with_capacity(topic.len() + 10 + payload_len);
    out.extend_from_slice(b"MPUB ");
    out.extend_from_slice(topic.as_bytes());
    out.push(b'\n');
    // Both conversions were checked against u32 above.
    out.extend_from_slice(&(payload_len as u32).to_be_bytes());
    out.extend_from_slice(&(count as u32).to_be_bytes());
    for _ in 0..count {
        put_sized(&mut out, body);
    }
    Ok(out)
}

/// Appends `FIN <id>\n` to `out`.
pub fn put_fin(out: &mut Vec<u8>, id: &[u8; MSG_ID_LEN]) {
    out.extend_from_slice(b"FIN ");
    out.extend_from_slice(id);
    out.push(b'\n');
}

fn put_sized(out: &mut Vec<u8>, data: &[u8]) {
    // Callers only pass small bodies (JSON, one message); `mpub` checks its total separately.
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// One frame from nsqd.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Response(&'a [u8]),
    Error(&'a [u8]),
    /// A message: its ID (for FIN) and its body (only the latency tool reads it).
    Message {
        id: [u8; MSG_ID_LEN],
        body: &'a [u8],
    },
}

/// Cuts the first complete frame out of `buf`: `Ok(Some((frame, bytes used)))`, `Ok(None)` when
/// more bytes are needed, or an error when the bytes cannot be a V2 frame.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>> {
    let Some(size) = buf.get(..4) else {
        return Ok(None);
    };
    // The slice is exactly 4 bytes long.
    let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
    if !(4..=MAX_FRAME).contains(&size) {
        bail!("bad frame size {size} from nsqd");
    }
    let Some(frame) = buf.get(4..4 + size) else {
        return Ok(None);
    };
    let kind = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let data = &frame[4..];
    let parsed = match kind {
        0 => Frame::Response(data),
        1 => Frame::Error(data),
        2 => {
            let Some(id) = data.get(10..MSG_HEADER_LEN) else {
                bail!("message frame of {} bytes is too short", data.len());
            };
            let mut out = [0u8; MSG_ID_LEN];
            out.copy_from_slice(id);
            Frame::Message {
                id: out,
                body: &data[MSG_HEADER_LEN..],
            }
        }
        other => bail!("unknown frame type {other} from nsqd"),
    };
    Ok(Some((parsed, 4 + size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u32, data: &[u8]) -> Vec<u8> {
        let mut out = ((data.len() + 4) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn mpub_layout() {
        let cmd = mpub("t", b"abc", 2).unwrap();
        let mut want = b"MPUB t\n".to_vec();
        want.extend_from_slice(&(4 + 2 * 7u32).to_be_bytes());
        want.extend_from_slice(&2u32.to_be_bytes());
        for _ in 0..2 {
            want.extend_from_slice(&3u32.to_be_bytes());
            want.extend_from_slice(b"abc");
        }
        assert_eq!(cmd, want);
    }

    #[test]
    fn identify_is_sized_json() {
        let cmd = identify("writer", "bench_writer/x");
        let body = &cmd[b"IDENTIFY\n".len() + 4..];
        let len = u32::from_be_bytes(cmd[9..13].try_into().unwrap()) as usize;
        assert_eq!(len, body.len());
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["client_id"], "writer");
        assert_eq!(v["user_agent"], "bench_writer/x");
    }

    #[test]
    fn identify_negotiate_asks_for_upgrades() {
        let cmd = identify_negotiate("w", "ua", true, false, Some(3));
        let v: serde_json::Value = serde_json::from_slice(&cmd[b"IDENTIFY\n".len() + 4..]).unwrap();
        assert_eq!(v["feature_negotiation"], true);
        assert_eq!(v["tls_v1"], true);
        assert_eq!(v["snappy"], false);
        assert_eq!(v["deflate"], true);
        assert_eq!(v["deflate_level"], 3);
    }

    #[test]
    fn pub_layout() {
        let cmd = pub_cmd("t", b"abc").unwrap();
        let mut want = b"PUB t\n".to_vec();
        want.extend_from_slice(&3u32.to_be_bytes());
        want.extend_from_slice(b"abc");
        assert_eq!(cmd, want);
    }

    #[test]
    fn identify_go_nsq_has_go_nsq_defaults() {
        let cmd = identify_go_nsq("c", "ua", false, false, None);
        let v: serde_json::Value = serde_json::from_slice(&cmd[b"IDENTIFY\n".len() + 4..]).unwrap();
        assert_eq!(v["feature_negotiation"], true);
        assert_eq!(v["heartbeat_interval"], 30_000);
        assert_eq!(v["output_buffer_size"], 16_384);
        assert_eq!(v["output_buffer_timeout"], 250);
        assert_eq!(v["deflate"], false);
        assert_eq!(v["user_agent"], "ua");
    }

    #[test]
    fn fin_line() {
        let mut out = Vec::new();
        put_fin(&mut out, b"0123456789abcdef");
        assert_eq!(out, b"FIN 0123456789abcdef\n");
    }

    #[test]
    fn frames_are_cut_in_order_and_partial_ones_wait() {
        let mut msg = vec![0u8; 10];
        msg.extend_from_slice(b"0123456789abcdef");
        msg.extend_from_slice(b"body");
        let mut buf = frame(0, b"OK");
        buf.extend(frame(2, &msg));
        buf.extend(frame(1, b"E_BAD"));

        let (f, n) = parse_frame(&buf).unwrap().unwrap();
        assert_eq!(f, Frame::Response(b"OK"));
        let rest = &buf[n..];
        let (f, m) = parse_frame(rest).unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Message {
                id: *b"0123456789abcdef",
                body: b"body",
            }
        );
        let rest = &rest[m..];
        assert!(parse_frame(&rest[..rest.len() - 1]).unwrap().is_none());
        assert!(parse_frame(&rest[..3]).unwrap().is_none());
        let (f, _) = parse_frame(rest).unwrap().unwrap();
        assert_eq!(f, Frame::Error(b"E_BAD"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_frame(&[0, 0, 0, 1, 0]).is_err());
        assert!(parse_frame(&frame(7, b"x")).is_err());
        assert!(parse_frame(&frame(2, b"short")).is_err());
        assert!(parse_frame(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
