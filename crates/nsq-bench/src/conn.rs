//! One blocking TCP connection to nsqd with a read buffer that frames are cut from in place.
//!
//! Blocking sockets on plain threads keep the tools' own overhead small and predictable: each
//! tool drives one connection, so an async runtime would add scheduling without adding overlap.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::proto::{self, Frame, MSG_ID_LEN};

/// NSQ's tools give up on connecting after one second.
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Read buffer size. Large enough that one read can return a whole burst of messages (nsqd
/// writes up to its output buffer, 16 KiB by default, or more in one go).
const READ_BUF: usize = 256 << 10;

/// A frame from nsqd with what the tools need copied out, so the buffer can be reused.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Ok,
    Heartbeat,
    /// Any other response text (unexpected by the tools, reported as is).
    Response(String),
    Error(String),
    Message([u8; MSG_ID_LEN]),
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl Conn {
    /// Connects (trying each address `addr` resolves to), turns Nagle off as Go does for every
    /// TCP connection, and sends the protocol magic.
    pub fn connect(addr: &str) -> Result<Conn> {
        let addrs: Vec<_> = addr
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve nsqd address {addr:?}"))?
            .collect();
        let mut last = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, DIAL_TIMEOUT) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let mut conn = Conn {
                        stream,
                        buf: vec![0; READ_BUF],
                        start: 0,
                        end: 0,
                    };
                    conn.send(proto::MAGIC_V2)?;
                    return Ok(conn);
                }
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(anyhow!(e).context(format!("cannot connect to nsqd at {addr}"))),
            None => bail!("nsqd address {addr:?} resolves to nothing"),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .context("writing to nsqd failed")
    }

    /// Sets how long a blocking read may wait (`None`: forever).
    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> Result<()> {
        // A zero timeout means "invalid" to the OS; callers pass a remaining time that may round
        // down to zero, so keep it at least a millisecond.
        let d = d.map(|d| d.max(Duration::from_millis(1)));
        self.stream
            .set_read_timeout(d)
            .context("setting the read timeout failed")
    }

    /// The next complete frame already buffered, if any. Never blocks.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        let Some((frame, used)) = proto::parse_frame(&self.buf[self.start..self.end])? else {
            return Ok(None);
        };
        let event = match frame {
            Frame::Response(b"OK") => Event::Ok,
            Frame::Response(r) if r == proto::HEARTBEAT => Event::Heartbeat,
            Frame::Response(r) => Event::Response(String::from_utf8_lossy(r).into_owned()),
            Frame::Error(e) => Event::Error(String::from_utf8_lossy(e).into_owned()),
            Frame::Message { id } => Event::Message(id),
        };
        self.start += used;
        Ok(Some(event))
    }

    /// Reads whatever the socket has (at least one byte) into the buffer. `Ok(false)` when the
    /// read timeout passed first; an error when nsqd closed the connection or the read failed.
    pub fn fill(&mut self) -> Result<bool> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < READ_BUF / 4 {
            // Move the partial frame to the front rather than growing without bound.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A single frame bigger than the buffer: make room for the rest of it.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        match self.stream.read(&mut self.buf[self.end..]) {
            Ok(0) => bail!("nsqd closed the connection"),
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(anyhow!(e).context("reading from nsqd failed")),
        }
    }

    /// Blocks until one frame arrives; a read timeout is an error here.
    pub fn read_event(&mut self) -> Result<Event> {
        loop {
            if let Some(ev) = self.next_event()? {
                return Ok(ev);
            }
            if !self.fill()? {
                bail!("timed out waiting for a response from nsqd");
            }
        }
    }

    /// Sends `cmd` and requires `OK` in answer (IDENTIFY without negotiation, SUB).
    pub fn command_ok(&mut self, cmd: &[u8], what: &str) -> Result<()> {
        self.send(cmd)?;
        match self.read_event()? {
            Event::Ok => Ok(()),
            Event::Error(e) => bail!("nsqd refused {what}: {e}"),
            other => bail!("unexpected answer to {what}: {other:?}"),
        }
    }
}
