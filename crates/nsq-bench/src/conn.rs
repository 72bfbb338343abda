//! One blocking TCP connection to nsqd with a read buffer that frames are cut from in place.
//!
//! Blocking sockets on plain threads keep the tools' own overhead small and predictable: each
//! tool drives one connection, so an async runtime would add scheduling without adding overlap.
//!
//! After an IDENTIFY that negotiated upgrades ([`Conn::identify`]) the socket may carry TLS
//! (rustls over the same blocking socket) and/or a compressed stream; the read buffer always
//! holds plain protocol bytes, so frame parsing does not change.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use nsq_protocol::compress::StreamCodec;
use rustls::{ClientConnection, StreamOwned};

use crate::proto::{self, Frame, MSG_ID_LEN};
use crate::transport::{self, Compression, Transport};

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

/// The `snappy` and `deflate_level` IDENTIFY fields for `t`'s compression.
fn compression_fields(t: &Transport) -> (bool, Option<u32>) {
    match t.compression {
        Compression::Snappy => (true, None),
        Compression::Deflate(level) => (false, Some(level)),
        Compression::None => (false, None),
    }
}

/// The socket, plain or wrapped in TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes),
            Stream::Tls(s) => {
                s.write_all(bytes)?;
                // Pushes out any TLS records rustls still holds.
                s.flush()
            }
        }
    }
}

/// Compression state once negotiated: the codec and scratch buffers reused across calls.
struct Compressed {
    codec: Box<dyn StreamCodec>,
    /// Bytes as read from the socket, before decoding.
    raw: Vec<u8>,
    /// Decoded bytes on their way into the read buffer.
    plain: BytesMut,
    /// Encoded bytes of the command being sent.
    out: Vec<u8>,
}

pub struct Conn {
    /// The address as given (its host is the TLS server name).
    addr: String,
    stream: Stream,
    compressed: Option<Compressed>,
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
                        addr: addr.to_string(),
                        stream: Stream::Plain(stream),
                        compressed: None,
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
        let wire = match &mut self.compressed {
            None => bytes,
            Some(c) => {
                c.out.clear();
                c.codec
                    .encode(bytes, &mut c.out)
                    .context("compressing a command failed")?;
                &c.out
            }
        };
        self.stream
            .write_all(wire)
            .context("writing to nsqd failed")
    }

    /// IDENTIFY as `client_id`. Without upgrades this is NSQ's bench tools' plain IDENTIFY
    /// answered by `OK`. With upgrades it negotiates them, checks nsqd agreed to each, then
    /// performs them in nsqd's order: the TLS handshake (then an `OK` inside TLS), then
    /// compression (then a compressed `OK`); every later read and write goes through them.
    pub fn identify(&mut self, client_id: &str, user_agent: &str, t: &Transport) -> Result<()> {
        if !t.negotiates() {
            return self.command_ok(&proto::identify(client_id, user_agent), "IDENTIFY");
        }
        let (snappy, deflate_level) = compression_fields(t);
        self.negotiate(
            &proto::identify_negotiate(client_id, user_agent, t.tls, snappy, deflate_level),
            t,
        )
    }

    /// IDENTIFY as go-nsq does by default ([`proto::identify_go_nsq`]), always with feature
    /// negotiation, then the upgrades `t` asks for as in [`Conn::identify`].
    pub fn identify_go_nsq(
        &mut self,
        client_id: &str,
        user_agent: &str,
        t: &Transport,
    ) -> Result<()> {
        let (snappy, deflate_level) = compression_fields(t);
        self.negotiate(
            &proto::identify_go_nsq(client_id, user_agent, t.tls, snappy, deflate_level),
            t,
        )
    }

    /// Sends an IDENTIFY with feature negotiation, checks nsqd's JSON answer agreed to each
    /// upgrade in `t` and performs them.
    fn negotiate(&mut self, identify: &[u8], t: &Transport) -> Result<()> {
        let (snappy, deflate_level) = compression_fields(t);
        self.send(identify)?;
        let answer = match self.read_event()? {
            Event::Response(json) => json,
            Event::Error(e) => bail!("nsqd refused IDENTIFY: {e}"),
            other => bail!("unexpected answer to IDENTIFY with feature negotiation: {other:?}"),
        };
        let settings: serde_json::Value = serde_json::from_str(&answer)
            .with_context(|| format!("IDENTIFY answer is not JSON: {answer:?}"))?;
        let agreed = |key: &str| settings[key].as_bool() == Some(true);
        for (asked, key, hint) in [
            (
                t.tls,
                "tls_v1",
                " (is nsqd running with --tls-cert and --tls-key?)",
            ),
            (snappy, "snappy", " (is nsqd running with --snappy=false?)"),
            (
                deflate_level.is_some(),
                "deflate",
                " (is nsqd running with --deflate=false?)",
            ),
        ] {
            if asked && !agreed(key) {
                bail!("nsqd did not agree to {key}{hint}: {answer}");
            }
        }
        if t.tls {
            // nsqd waits for the client's hello, so nothing can follow the JSON yet.
            if self.start != self.end {
                bail!("unexpected bytes from nsqd before the TLS handshake");
            }
            let tcp = self
                .stream
                .tcp()
                .try_clone()
                .context("cannot take the socket for TLS")?;
            let name = transport::server_name(&self.addr)?;
            let tls = ClientConnection::new(t.tls_config()?, name).context("cannot start TLS")?;
            self.stream = Stream::Tls(Box::new(StreamOwned::new(tls, tcp)));
            self.expect_ok("the TLS upgrade")?;
        }
        if let Some(codec) = t.codec() {
            let mut c = Compressed {
                codec,
                raw: vec![0; READ_BUF],
                plain: BytesMut::new(),
                out: Vec::new(),
            };
            // nsqd sends the compressed OK right behind the previous frame, so one read may
            // already hold some of it: decode whatever is left in the buffer.
            c.codec
                .decode(&self.buf[self.start..self.end], &mut c.plain)
                .context("decompressing from nsqd failed")?;
            self.start = 0;
            self.end = 0;
            self.compressed = Some(c);
            self.append_plain();
            self.expect_ok("the compression upgrade")?;
        }
        Ok(())
    }

    fn expect_ok(&mut self, what: &str) -> Result<()> {
        match self
            .read_event()
            .with_context(|| format!("{what} failed"))?
        {
            Event::Ok => Ok(()),
            Event::Error(e) => bail!("nsqd refused {what}: {e}"),
            other => bail!("unexpected answer after {what}: {other:?}"),
        }
    }

    /// Moves decoded bytes into the read buffer, growing it if one read decoded to more.
    fn append_plain(&mut self) {
        let Some(c) = &mut self.compressed else {
            return;
        };
        let n = c.plain.len();
        if self.buf.len() - self.end < n {
            self.buf.resize(self.end + n, 0);
        }
        self.buf[self.end..self.end + n].copy_from_slice(&c.plain);
        self.end += n;
        c.plain.clear();
    }

    /// Sets how long a blocking read may wait (`None`: forever).
    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> Result<()> {
        // A zero timeout means "invalid" to the OS; callers pass a remaining time that may round
        // down to zero, so keep it at least a millisecond.
        let d = d.map(|d| d.max(Duration::from_millis(1)));
        self.stream
            .tcp()
            .set_read_timeout(d)
            .context("setting the read timeout failed")
    }

    /// The next complete frame already buffered, if any. Never blocks.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        Ok(self.next_frame()?.map(|frame| match frame {
            Frame::Response(b"OK") => Event::Ok,
            Frame::Response(r) if r == proto::HEARTBEAT => Event::Heartbeat,
            Frame::Response(r) => Event::Response(String::from_utf8_lossy(r).into_owned()),
            Frame::Error(e) => Event::Error(String::from_utf8_lossy(e).into_owned()),
            Frame::Message { id, .. } => Event::Message(id),
        }))
    }

    /// Like [`Conn::next_event`], but the frame as parsed, borrowed from the read buffer, so a
    /// message body can be read without copying it. Never blocks.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        let Some((frame, used)) = proto::parse_frame(&self.buf[self.start..self.end])? else {
            return Ok(None);
        };
        self.start += used;
        Ok(Some(frame))
    }

    /// A second handle on the socket, for writing from another thread while this one keeps
    /// reading. Only for a plain connection: TLS and compression keep stream state that two
    /// handles cannot share.
    pub fn try_clone_writer(&self) -> Result<TcpStream> {
        if self.compressed.is_some() || matches!(self.stream, Stream::Tls(_)) {
            bail!("a TLS or compressed connection cannot be split between threads");
        }
        self.stream
            .tcp()
            .try_clone()
            .context("cannot clone the socket")
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
        let read = match &mut self.compressed {
            None => self.stream.read(&mut self.buf[self.end..]),
            Some(c) => self.stream.read(&mut c.raw),
        };
        match read {
            Ok(0) => bail!("nsqd closed the connection"),
            Ok(n) => {
                match &mut self.compressed {
                    None => self.end += n,
                    Some(c) => {
                        // A read may end inside a compressed block: the codec keeps that part
                        // and this fill then adds nothing, which callers treat as "read again".
                        c.codec
                            .decode(&c.raw[..n], &mut c.plain)
                            .context("decompressing from nsqd failed")?;
                        self.append_plain();
                    }
                }
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
