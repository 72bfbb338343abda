//! One connection to nsqd: magic, IDENTIFY and the upgrades it negotiates (TLS, snappy or
//! deflate), AUTH, then frames in and commands out.
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use nsq_protocol::compress::{Deflate, Snappy, StreamCodec};
use nsq_protocol::frame::{FRAME_ERROR, FRAME_MESSAGE, FRAME_RESPONSE};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use crate::{Config, Error, TlsOptions};

/// Frames larger than this are refused as garbage. nsqd has no upper bound on
/// `--max-msg-size`, so the cap is generous; buffers grow only as bytes actually arrive, so a
/// bogus size costs nothing until the data is there.
pub(crate) const MAX_FRAME: usize = 256 * 1024 * 1024;

/// The max RDY count assumed when nsqd does not negotiate features.
const DEFAULT_MAX_RDY: i64 = 2500;

/// A stream after the TLS decision: plain TCP or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub(crate) type BoxIo = Box<dyn Io>;

/// One frame from nsqd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Response(Bytes),
    Error(Bytes),
    Message(Bytes),
}

impl Frame {
    pub(crate) fn is_heartbeat(&self) -> bool {
        matches!(self, Frame::Response(b) if b.as_ref() == nsq_protocol::frame::HEARTBEAT)
    }
}

/// The parts of nsqd's IDENTIFY reply the client uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct IdentifyReply {
    pub max_rdy_count: i64,
    pub version: String,
    pub max_msg_timeout: i64,
    pub msg_timeout: i64,
    pub tls_v1: bool,
    pub deflate: bool,
    pub deflate_level: i64,
    pub snappy: bool,
    pub sample_rate: i64,
    pub auth_required: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct AuthReply {
    identity: String,
    identity_url: String,
    permission_count: i64,
}

/// The reading side: decompresses if negotiated and cuts frames.
pub(crate) struct FrameReader<R> {
    io: R,
    addr: String,
    read_timeout: Duration,
    codec: Option<Box<dyn StreamCodec>>,
    /// Decoded bytes not yet cut into frames.
    plain: BytesMut,
    raw: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    fn new(io: R, addr: &str, read_timeout: Duration) -> FrameReader<R> {
        FrameReader {
            io,
            addr: addr.to_string(),
            read_timeout,
            codec: None,
            plain: BytesMut::with_capacity(16 * 1024),
            raw: vec![0; 16 * 1024],
        }
    }

    /// Switches decoding on; bytes already read past the last frame belong to the new stream.
    fn set_codec(&mut self, mut codec: Box<dyn StreamCodec>) -> Result<(), Error> {
        let leftover = self.plain.split();
        codec
            .decode(&leftover, &mut self.plain)
            .map_err(|e| self.protocol(e.to_string()))?;
        self.codec = Some(codec);
        Ok(())
    }

    fn protocol(&self, reason: impl Into<String>) -> Error {
        Error::Protocol {
            addr: self.addr.clone(),
            reason: reason.into(),
        }
    }

    /// Whether a whole frame is already decoded, so [`FrameReader::next_frame`] will not read.
    pub(crate) fn frame_ready(&self) -> bool {
        self.plain
            .first_chunk::<4>()
            .is_some_and(|b| self.plain.len() >= 4 + u32::from_be_bytes(*b) as usize)
    }

    /// Cuts one frame out of the decoded bytes, if a whole one is there.
    fn try_frame(&mut self) -> Result<Option<Frame>, Error> {
        let Some(size) = self
            .plain
            .first_chunk::<4>()
            .map(|b| u32::from_be_bytes(*b))
        else {
            return Ok(None);
        };
        let size = size as usize;
        if size < 4 {
            return Err(self.protocol(format!("frame size {size} too small")));
        }
        if size > MAX_FRAME {
            return Err(self.protocol(format!("frame size {size} > {MAX_FRAME}")));
        }
        if self.plain.len() < 4 + size {
            self.plain.reserve(4 + size - self.plain.len());
            return Ok(None);
        }
        self.plain.advance(4);
        let kind = self.plain.get_i32();
        let data = self.plain.split_to(size - 4).freeze();
        match kind {
            FRAME_RESPONSE => Ok(Some(Frame::Response(data))),
            FRAME_ERROR => Ok(Some(Frame::Error(data))),
            FRAME_MESSAGE => Ok(Some(Frame::Message(data))),
            other => Err(self.protocol(format!("unknown frame type {other}"))),
        }
    }

    /// The next frame; every read waits at most `read_timeout`.
    pub(crate) async fn next_frame(&mut self) -> Result<Frame, Error> {
        loop {
            if let Some(f) = self.try_frame()? {
                return Ok(f);
            }
            let read = tokio::time::timeout(self.read_timeout, self.io.read(&mut self.raw)).await;
            let n = match read {
                Err(_) => {
                    return Err(Error::Timeout {
                        addr: self.addr.clone(),
                        what: "read",
                    })
                }
                Ok(Err(e)) => {
                    return Err(Error::Io {
                        addr: self.addr.clone(),
                        source: e,
                    })
                }
                Ok(Ok(0)) => {
                    return Err(if self.plain.is_empty() {
                        Error::Closed {
                            addr: self.addr.clone(),
                        }
                    } else {
                        self.protocol("connection closed in the middle of a frame")
                    })
                }
                Ok(Ok(n)) => n,
            };
            let got = self.raw.get(..n).unwrap_or_default();
            match &mut self.codec {
                None => self.plain.extend_from_slice(got),
                Some(c) => {
                    if let Err(e) = c.decode(got, &mut self.plain) {
                        return Err(self.protocol(e.to_string()));
                    }
                }
            }
        }
    }

    /// The next frame that is not a heartbeat (heartbeats during the handshake go unanswered;
    /// nsqd only sends them once the connection is subscribed).
    async fn next_reply(&mut self) -> Result<Frame, Error> {
        loop {
            let f = self.next_frame().await?;
            if !f.is_heartbeat() {
                return Ok(f);
            }
        }
    }
}

/// The writing side: compresses if negotiated; each call is one write.
pub(crate) struct FrameWriter<W> {
    io: W,
    addr: String,
    write_timeout: Duration,
    codec: Option<Box<dyn StreamCodec>>,
    out: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    fn new(io: W, addr: &str, write_timeout: Duration) -> FrameWriter<W> {
        FrameWriter {
            io,
            addr: addr.to_string(),
            write_timeout,
            codec: None,
            out: Vec::new(),
        }
    }

    /// Writes `plain` (any number of commands) and flushes, within `write_timeout`.
    pub(crate) async fn write(&mut self, plain: &[u8]) -> Result<(), Error> {
        let data: &[u8] = match &mut self.codec {
            None => plain,
            Some(c) => {
                self.out.clear();
                c.encode(plain, &mut self.out)
                    .map_err(|e| Error::Protocol {
                        addr: self.addr.clone(),
                        reason: e.to_string(),
                    })?;
                &self.out
            }
        };
        let io = &mut self.io;
        let write = async {
            io.write_all(data).await?;
            io.flush().await
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Err(_) => Err(Error::Timeout {
                addr: self.addr.clone(),
                what: "write",
            }),
            Ok(Err(e)) => Err(Error::Io {
                addr: self.addr.clone(),
                source: e,
            }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Closes the sending side (TLS close_notify, then FIN).
    pub(crate) async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(self.write_timeout, self.io.shutdown()).await;
    }
}

/// What a finished handshake hands over.
pub(crate) struct Connected {
    pub reader: FrameReader<ReadHalf<BoxIo>>,
    pub writer: FrameWriter<WriteHalf<BoxIo>>,
    pub max_rdy_count: i64,
}

fn io_err(addr: &str, e: std::io::Error) -> Error {
    Error::Io {
        addr: addr.to_string(),
        source: e,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The IDENTIFY body, with the fields go-nsq sends.
pub(crate) fn identify_json(config: &Config) -> Vec<u8> {
    let body = serde_json::json!({
        "client_id": config.client_id,
        "hostname": config.hostname,
        "user_agent": config.user_agent,
        "short_id": config.client_id,
        "long_id": config.hostname,
        "tls_v1": config.tls_v1,
        "deflate": config.deflate,
        "deflate_level": config.deflate_level,
        "snappy": config.snappy,
        "feature_negotiation": true,
        "heartbeat_interval": config.heartbeat_interval.map_or(-1, millis),
        "sample_rate": config.sample_rate,
        "output_buffer_size": config.output_buffer_size,
        "output_buffer_timeout": config.output_buffer_timeout.map_or(-1, millis),
        "msg_timeout": millis(config.msg_timeout),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Parses an error frame into [`Error::Server`].
pub(crate) fn server_error(addr: &str, data: &[u8]) -> Error {
    let text = String::from_utf8_lossy(data).into_owned();
    let code = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    Error::Server {
        addr: addr.to_string(),
        code,
        text,
    }
}

fn expect_ok(addr: &str, frame: Frame, step: &str) -> Result<(), Error> {
    match frame {
        Frame::Response(b) if b.as_ref() == nsq_protocol::frame::OK => Ok(()),
        Frame::Error(b) => Err(server_error(addr, &b)),
        other => Err(Error::Protocol {
            addr: addr.to_string(),
            reason: format!("unexpected answer to {step}: {other:?}"),
        }),
    }
}

/// Dials `addr`, sends the magic and IDENTIFY, applies the upgrades nsqd agreed to and
/// authenticates when nsqd asks for it.
pub(crate) async fn connect(addr: &str, config: &Config) -> Result<Connected, Error> {
    let tcp = dial(addr, config).await?;
    let _ = tcp.set_nodelay(true);
    let mut io: BoxIo = Box::new(tcp);

    let mut hello = Vec::with_capacity(512);
    hello.extend_from_slice(nsq_protocol::MAGIC_V2);
    put_body_command(&mut hello, "IDENTIFY", &identify_json(config));
    {
        let mut w = FrameWriter::new(&mut io, addr, config.write_timeout);
        w.write(&hello).await?;
    }
    let (mut leftover, first) = {
        let mut r = FrameReader::new(&mut io, addr, config.read_timeout);
        let f = r.next_reply().await?;
        (r.plain, f)
    };
    let reply = match first {
        Frame::Error(b) => return Err(server_error(addr, &b)),
        Frame::Message(_) => {
            return Err(Error::Protocol {
                addr: addr.to_string(),
                reason: "message frame in answer to IDENTIFY".into(),
            })
        }
        Frame::Response(b) if b.first() == Some(&b'{') => {
            serde_json::from_slice::<IdentifyReply>(&b).map_err(|e| Error::Protocol {
                addr: addr.to_string(),
                reason: format!("bad IDENTIFY answer: {e}"),
            })?
        }
        // An old nsqd without feature negotiation answers a bare OK.
        Frame::Response(_) => IdentifyReply {
            max_rdy_count: DEFAULT_MAX_RDY,
            ..IdentifyReply::default()
        },
    };

    if reply.tls_v1 {
        if !leftover.is_empty() {
            return Err(Error::Protocol {
                addr: addr.to_string(),
                reason: "unexpected bytes before the TLS handshake".into(),
            });
        }
        io = upgrade_tls(io, addr, &config.tls).await?;
        let mut r = FrameReader::new(&mut io, addr, config.read_timeout);
        let f = r.next_reply().await?;
        expect_ok(addr, f, "the TLS upgrade")?;
        // nsqd may already have sent the compression upgrade's answer behind the OK.
        leftover = r.plain;
    }

    let (rd, wr) = tokio::io::split(io);
    let mut reader = FrameReader::new(rd, addr, config.read_timeout);
    let mut writer = FrameWriter::new(wr, addr, config.write_timeout);
    reader.plain = leftover;
    let codecs: Option<(Box<dyn StreamCodec>, Box<dyn StreamCodec>)> = if reply.deflate {
        let level = u32::try_from(reply.deflate_level).unwrap_or(config.deflate_level);
        Some((Box::new(Deflate::new(level)), Box::new(Deflate::new(level))))
    } else if reply.snappy {
        Some((Box::<Snappy>::default(), Box::<Snappy>::default()))
    } else {
        None
    };
    if let Some((dec, enc)) = codecs {
        reader.set_codec(dec)?;
        writer.codec = Some(enc);
        let f = reader.next_reply().await?;
        expect_ok(addr, f, "the compression upgrade")?;
    }

    if reply.auth_required {
        if config.auth_secret.is_empty() {
            return Err(Error::Server {
                addr: addr.to_string(),
                code: "E_AUTH_REQUIRED".into(),
                text: "nsqd requires AUTH but no auth_secret is set".into(),
            });
        }
        let mut cmd = Vec::new();
        put_body_command(&mut cmd, "AUTH", config.auth_secret.as_bytes());
        writer.write(&cmd).await?;
        match reader.next_reply().await? {
            Frame::Response(b) => {
                let a: AuthReply = serde_json::from_slice(&b).map_err(|e| Error::Protocol {
                    addr: addr.to_string(),
                    reason: format!("bad AUTH answer: {e}"),
                })?;
                log::info!(
                    "{addr}: AUTH accepted, identity {:?} {} permissions {}",
                    a.identity,
                    a.identity_url,
                    a.permission_count
                );
            }
            Frame::Error(b) => return Err(server_error(addr, &b)),
            Frame::Message(_) => {
                return Err(Error::Protocol {
                    addr: addr.to_string(),
                    reason: "message frame in answer to AUTH".into(),
                })
            }
        }
    }

    Ok(Connected {
        reader,
        writer,
        max_rdy_count: if reply.max_rdy_count > 0 {
            reply.max_rdy_count
        } else {
            DEFAULT_MAX_RDY
        },
    })
}

async fn dial(addr: &str, config: &Config) -> Result<TcpStream, Error> {
    let connect = async {
        let mut last = None;
        for sa in tokio::net::lookup_host(addr).await? {
            let sock = if sa.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            if let Some(local) = config.local_addr {
                sock.bind(local)?;
            }
            match sock.connect(sa).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses found")
        }))
    };
    match tokio::time::timeout(config.dial_timeout, connect).await {
        Err(_) => Err(Error::Timeout {
            addr: addr.to_string(),
            what: "dial",
        }),
        Ok(r) => r.map_err(|e| io_err(addr, e)),
    }
}

async fn upgrade_tls(io: BoxIo, addr: &str, opts: &TlsOptions) -> Result<BoxIo, Error> {
    let tls_err = |reason: String| Error::Tls {
        addr: addr.to_string(),
        reason,
    };
    let client_config = tls_client_config(opts).map_err(|e| tls_err(e.to_string()))?;
    let name = crate::tls::server_name(addr).map_err(|e| tls_err(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(client_config);
    let stream = connector
        .connect(name, io)
        .await
        .map_err(|e| tls_err(e.to_string()))?;
    Ok(Box::new(stream))
}

fn tls_client_config(opts: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, crate::ConfigError> {
    opts.client_config()
}

/// Appends `NAME\n[size][body]`.
pub(crate) fn put_body_command(buf: &mut Vec<u8>, line: &str, body: &[u8]) {
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    buf.put_u32(body.len() as u32);
    buf.extend_from_slice(body);
}

/// Appends a command without a body.
pub(crate) fn put_line(buf: &mut Vec<u8>, line: &str) {
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
}

/// Appends `MPUB topic\n[size][count]([len][body])*`.
pub(crate) fn put_mpub(buf: &mut Vec<u8>, topic: &str, bodies: &[Bytes]) {
    let size: usize = 4 + bodies.iter().map(|b| 4 + b.len()).sum::<usize>();
    put_line(buf, &format!("MPUB {topic}"));
    buf.put_u32(size as u32);
    buf.put_u32(bodies.len() as u32);
    for b in bodies {
        buf.put_u32(b.len() as u32);
        buf.extend_from_slice(b);
    }
}

/// Bytes of small commands a writer may hold back while more are expected (see the consumer's
/// write loop); appending past it wakes the writer.
pub(crate) const HOLD_BYTES: usize = 8 * 1024;

/// Commands waiting for a connection's writer task. Callers append under a short lock; the
/// task writes everything appended so far in one write, so a burst of FINs costs one syscall
/// and no allocation per command.
#[derive(Default)]
pub(crate) struct Outbox {
    state: std::sync::Mutex<OutboxState>,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct OutboxState {
    buf: Vec<u8>,
    /// Write what is queued, then close the sending side.
    closing: bool,
    /// The writer has stopped; appends are refused.
    dead: bool,
}

impl Outbox {
    fn state(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one command written by `encode`; false once the connection is closing or gone.
    pub(crate) fn push(&self, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
        let mut st = self.state();
        if st.dead || st.closing {
            return false;
        }
        let before = st.buf.len();
        encode(&mut st.buf);
        let after = st.buf.len();
        drop(st);
        if before == 0 || (before < HOLD_BYTES && after >= HOLD_BYTES) {
            self.wake.notify_one();
        }
        true
    }

    /// Appends a command without a body.
    pub(crate) fn push_line(&self, line: &str) -> bool {
        self.push(|b| put_line(b, line))
    }

    /// Asks the writer to write what is queued, then close the sending side and stop.
    pub(crate) fn close(&self) {
        self.state().closing = true;
        self.wake.notify_one();
    }
}

impl Outbox {
    /// Moves what is queued to the end of `batch`; true when a close was asked.
    pub(crate) fn take(&self, batch: &mut Vec<u8>) -> bool {
        let mut st = self.state();
        batch.extend_from_slice(&st.buf);
        st.buf.clear();
        st.closing
    }

    /// Bytes queued and not yet taken.
    pub(crate) fn queued(&self) -> usize {
        self.state().buf.len()
    }

    /// Refuses further appends: the writer has stopped.
    pub(crate) fn kill(&self) {
        self.state().dead = true;
    }

    /// Resolves after the next append to an empty outbox, or past [`HOLD_BYTES`], or a close.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_fields() {
        let mut c = Config::new();
        c.heartbeat_interval = None;
        c.output_buffer_timeout = None;
        c.msg_timeout = Duration::from_secs(3);
        let v: serde_json::Value = serde_json::from_slice(&identify_json(&c)).unwrap();
        assert_eq!(v["heartbeat_interval"], -1);
        assert_eq!(v["output_buffer_timeout"], -1);
        assert_eq!(v["msg_timeout"], 3000);
        assert_eq!(v["feature_negotiation"], true);
        assert_eq!(v["output_buffer_size"], 16384);
        let c = Config::new();
        let v: serde_json::Value = serde_json::from_slice(&identify_json(&c)).unwrap();
        assert_eq!(v["heartbeat_interval"], 30000);
        assert_eq!(v["output_buffer_timeout"], 250);
    }

    #[test]
    fn mpub_encoding() {
        let mut b = Vec::new();
        put_mpub(
            &mut b,
            "t",
            &[Bytes::from_static(b"ab"), Bytes::from_static(b"c")],
        );
        assert_eq!(
            b,
            b"MPUB t\n\x00\x00\x00\x0f\x00\x00\x00\x02\x00\x00\x00\x02ab\x00\x00\x00\x01c"
        );
    }

    #[tokio::test]
    async fn frames_split_anywhere() {
        let mut wire = Vec::new();
        nsq_protocol::frame::put_response(&mut wire, b"OK");
        nsq_protocol::frame::put_error(&mut wire, "E_INVALID x");
        for cut in 0..wire.len() {
            let (a, b) = wire.split_at(cut);
            let (client, mut server) = tokio::io::duplex(64);
            let (a, b) = (a.to_vec(), b.to_vec());
            tokio::spawn(async move {
                server.write_all(&a).await.unwrap();
                server.flush().await.unwrap();
                tokio::task::yield_now().await;
                server.write_all(&b).await.unwrap();
            });
            let mut r = FrameReader::new(client, "x", Duration::from_secs(5));
            assert_eq!(
                r.next_frame().await.unwrap(),
                Frame::Response(Bytes::from_static(b"OK"))
            );
            assert_eq!(
                r.next_frame().await.unwrap(),
                Frame::Error(Bytes::from_static(b"E_INVALID x"))
            );
        }
    }

    #[tokio::test]
    async fn bad_frames_are_errors() {
        for wire in [
            &b"\x00\x00\x00\x02ab"[..],
            &b"\xff\xff\xff\xff\x00\x00\x00\x00"[..],
            &b"\x00\x00\x00\x04\x00\x00\x00\x09"[..],
            &b"\x00\x00\x00\x08\x00\x00\x00\x00ab"[..],
        ] {
            let (client, mut server) = tokio::io::duplex(64);
            server.write_all(wire).await.unwrap();
            drop(server);
            let mut r = FrameReader::new(client, "x", Duration::from_secs(5));
            let e = r.next_frame().await.unwrap_err();
            assert!(matches!(e, Error::Protocol { .. }), "{wire:?}: {e}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stalled_read_times_out() {
        let (client, _server) = tokio::io::duplex(64);
        let mut r = FrameReader::new(client, "x", Duration::from_secs(5));
        let e = r.next_frame().await.unwrap_err();
        assert!(matches!(e, Error::Timeout { what: "read", .. }), "{e}");
    }
}
