//! Just enough of the V2 protocol and of HTTP/1.0 to publish, consume and read `/stats`.
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const FRAME_RESPONSE: i32 = 0;
pub const FRAME_ERROR: i32 = 1;
pub const FRAME_MESSAGE: i32 = 2;

pub const HEARTBEAT: &[u8] = b"_heartbeat_";

/// Largest frame accepted from the server (a message frame carries at most one body).
const MAX_FRAME: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: i32,
    pub data: Vec<u8>,
}

impl Frame {
    pub fn is_heartbeat(&self) -> bool {
        self.kind == FRAME_RESPONSE && self.data == HEARTBEAT
    }

    pub fn is_ok(&self) -> bool {
        self.kind == FRAME_RESPONSE && self.data == b"OK"
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A message frame's fields.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub attempts: u16,
    pub id: &'a [u8],
    pub body: &'a [u8],
}

pub fn parse_message(data: &[u8]) -> Option<Message<'_>> {
    if data.len() < 26 {
        return None;
    }
    Some(Message {
        attempts: u16::from_be_bytes([data[8], data[9]]),
        id: &data[10..26],
        body: &data[26..],
    })
}

/// Accumulates bytes from a socket and cuts them into frames. A read timeout never loses
/// partial frames, so callers may use short timeouts to check their stop flags.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    /// The next complete frame already received, if any.
    pub fn parse(&mut self) -> io::Result<Option<Frame>> {
        let avail = &self.buf[self.start..];
        if avail.len() < 8 {
            return Ok(None);
        }
        let size = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if !(4..=MAX_FRAME).contains(&size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad frame size {size}"),
            ));
        }
        if avail.len() < 4 + size {
            return Ok(None);
        }
        let kind = i32::from_be_bytes([avail[4], avail[5], avail[6], avail[7]]);
        let data = avail[8..4 + size].to_vec();
        self.start += 4 + size;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(Frame { kind, data }))
    }

    /// Reads once from the socket. `Ok(false)` means the read timed out with nothing new.
    pub fn fill(&mut self, s: &mut TcpStream) -> io::Result<bool> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut tmp = [0u8; 64 * 1024];
        match s.read(&mut tmp) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            )),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(true)
            }
            Err(e) if is_timeout(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connects and sends the V2 magic.
pub fn connect_v2(addr: SocketAddr, read_timeout: Duration) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(read_timeout))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"  V2")?;
    Ok(s)
}

pub fn pub_cmd(topic: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("PUB {topic}\n").into_bytes();
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

pub fn dpub_cmd(topic: &str, defer_ms: u32, body: &[u8]) -> Vec<u8> {
    let mut v = format!("DPUB {topic} {defer_ms}\n").into_bytes();
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

pub fn mpub_cmd(topic: &str, bodies: &[Vec<u8>]) -> Vec<u8> {
    let inner: usize = 4 + bodies.iter().map(|b| 4 + b.len()).sum::<usize>();
    let mut v = format!("MPUB {topic}\n").into_bytes();
    v.extend_from_slice(&(inner as u32).to_be_bytes());
    v.extend_from_slice(&(bodies.len() as u32).to_be_bytes());
    for b in bodies {
        v.extend_from_slice(&(b.len() as u32).to_be_bytes());
        v.extend_from_slice(b);
    }
    v
}

/// One HTTP/1.0 request (no chunked answers); returns the status and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(
        format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, raw[split + 4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_split_reads() {
        let mut r = FrameReader::default();
        let mut raw = Vec::new();
        for (kind, data) in [(0i32, &b"OK"[..]), (2, &[0u8; 30][..])] {
            raw.extend_from_slice(&((data.len() + 4) as u32).to_be_bytes());
            raw.extend_from_slice(&kind.to_be_bytes());
            raw.extend_from_slice(data);
        }
        r.buf.extend_from_slice(&raw[..5]);
        assert_eq!(r.parse().unwrap(), None);
        r.buf.extend_from_slice(&raw[5..]);
        assert!(r.parse().unwrap().unwrap().is_ok());
        let m = r.parse().unwrap().unwrap();
        assert_eq!(m.kind, FRAME_MESSAGE);
        assert_eq!(parse_message(&m.data).unwrap().body.len(), 4);
        assert_eq!(r.parse().unwrap(), None);
    }

    #[test]
    fn dpub_layout() {
        assert_eq!(
            dpub_cmd("t", 1500, b"ab"),
            b"DPUB t 1500\n\x00\x00\x00\x02ab"
        );
    }

    #[test]
    fn mpub_layout() {
        let v = mpub_cmd("t", &[b"a".to_vec(), b"bc".to_vec()]);
        assert_eq!(
            v,
            b"MPUB t\n\x00\x00\x00\x0f\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc"
        );
    }
}
