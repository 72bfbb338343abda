//! The TCP server: the accept loop and one task per nsqd connection speaking protocol V1, from
//! the magic to the removal of the peer's registrations when the connection ends.
//!
//! There is no read deadline: nsqd PINGs every 15 s, and a silent peer is only hidden by
//! `--inactive-producer-timeout`, never disconnected, as in NSQ.
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::lookupd::{exiting, Lookupd};
use crate::protocol::{
    decode_identify, encode_response, identify_body_size, parse_line, Command, IdentifyResponse,
    V1Error, MAGIC_V1, MAX_LINE_LEN,
};
use crate::registry::{now_nanos, PeerInfo, Registration};

/// Accepts connections until shutdown, then waits for every connection task to finish (each
/// sees the same signal and closes its socket).
pub async fn serve(lookupd: Arc<Lookupd>, listener: TcpListener) {
    let mut stop = lookupd.shutdown_signal();
    let mut conns = JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            biased;
            () = exiting(&mut stop) => break,
            // Reap finished connections so the set does not grow with every client ever seen.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                backoff = Duration::from_millis(5);
                conns.spawn(handle(lookupd.clone(), stream, addr));
            }
            Err(e) => {
                // Typically descriptor exhaustion: retry after a pause rather than spin.
                log::error!("TCP: accept error - {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    let local = listener.local_addr().map(|a| a.to_string());
    drop(listener);
    log::info!("TCP: closing {}", local.unwrap_or_default());
    while conns.join_next().await.is_some() {}
}

async fn handle(lookupd: Arc<Lookupd>, stream: TcpStream, addr: SocketAddr) {
    let _open = lookupd.connections.open();
    let _ = stream.set_nodelay(true);
    log::info!("TCP: new client({addr})");
    let mut stop = lookupd.shutdown_signal();
    let mut conn = Conn {
        lookupd: lookupd.clone(),
        addr,
        stream: BufReader::new(stream),
        peer: None,
    };
    let outcome = tokio::select! {
        r = conn.run() => r,
        () = exiting(&mut stop) => Ok(End::Closed),
    };
    if let Err(e) = &outcome {
        log::error!("client({addr}) - {e}");
    }
    if let Some(peer) = conn.peer.take() {
        for r in lookupd.db.remove_peer(&peer) {
            log_db(addr, "UNREGISTER", &r);
        }
    }
    if matches!(outcome, Ok(End::Fatal)) {
        tokio::select! {
            () = graceful_close(conn.stream.into_inner()) => {}
            () = exiting(&mut stop) => {}
        }
    }
}

/// After a fatal error response: send FIN, then read and discard what the client still sends
/// (for at most a second). Closing a socket with unread input makes the kernel send RST, which
/// can destroy the error response before the client reads it.
async fn graceful_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

fn log_db(addr: SocketAddr, what: &str, r: &Registration) {
    log::info!(
        "DB: client({addr}) {what} category:{} key:{} subkey:{}",
        r.category.as_str(),
        r.key,
        r.subkey
    );
}

/// How a connection's loop ended without an I/O error.
enum End {
    /// The client closed, or the daemon is exiting.
    Closed,
    /// An error response was written; the connection must be closed.
    Fatal,
}

/// A line read from the client.
enum Line {
    Complete,
    /// End of stream before a newline; any partial line is dropped, as in NSQ.
    Eof,
    TooLong,
}

/// Reads up to and including `\n` into `buf`, refusing lines longer than [`MAX_LINE_LEN`].
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<Line> {
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        buf.extend_from_slice(&available[..used]);
        r.consume(used);
        if buf.len() > MAX_LINE_LEN {
            return Ok(Line::TooLong);
        }
        if done {
            return Ok(Line::Complete);
        }
    }
}

struct Conn {
    lookupd: Arc<Lookupd>,
    addr: SocketAddr,
    stream: BufReader<TcpStream>,
    /// Set by IDENTIFY.
    peer: Option<Arc<PeerInfo>>,
}

impl Conn {
    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        // One write per response: nsqd sends a command and waits for its answer, so there is
        // nothing to batch.
        self.stream
            .get_mut()
            .write_all(&encode_response(data))
            .await
    }

    async fn run(&mut self) -> io::Result<End> {
        let mut magic = [0u8; 4];
        if let Err(e) = self.stream.read_exact(&mut magic).await {
            log::error!("failed to read protocol version - {e}");
            return Ok(End::Closed);
        }
        log::info!(
            "CLIENT({}): desired protocol magic '{}'",
            self.addr,
            String::from_utf8_lossy(&magic)
        );
        if &magic != MAGIC_V1 {
            log::error!(
                "client({}) bad protocol magic '{}'",
                self.addr,
                String::from_utf8_lossy(&magic)
            );
            self.send(&V1Error::BadProtocol.data()).await?;
            return Ok(End::Fatal);
        }
        let end = self.io_loop().await;
        log::info!("PROTOCOL(V1): [{}] exiting ioloop", self.addr);
        end
    }

    async fn io_loop(&mut self) -> io::Result<End> {
        let mut line = Vec::with_capacity(128);
        loop {
            line.clear();
            match read_line(&mut self.stream, &mut line).await? {
                Line::Complete => {}
                Line::Eof => return Ok(End::Closed),
                Line::TooLong => {
                    log::error!("[{}] - command line too long", self.addr);
                    return Ok(End::Closed);
                }
            }
            match self.exec(&line).await? {
                Ok(response) => self.send(&response).await?,
                Err(e) => {
                    log::error!("[{}] - {e}", self.addr);
                    self.send(&e.data()).await?;
                    return Ok(End::Fatal);
                }
            }
        }
    }

    /// Runs one command. The outer error is I/O; the inner one is the protocol error to send.
    async fn exec(&mut self, line: &[u8]) -> io::Result<Result<Vec<u8>, V1Error>> {
        let command = match parse_line(line, self.peer.is_some()) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match command {
            Command::Ping => Ok(self.ping()),
            Command::Identify => self.identify().await,
            Command::Register { topic, channel } => Ok(self.register(&topic, channel.as_deref())),
            Command::Unregister { topic, channel } => {
                Ok(self.unregister(&topic, channel.as_deref()))
            }
        })
    }

    fn ping(&self) -> Vec<u8> {
        // Before IDENTIFY a PING only gets its answer.
        if let Some(peer) = &self.peer {
            let now = now_nanos();
            let previous = peer.touch(now);
            let since = Duration::from_nanos(u64::try_from(now - previous).unwrap_or(0));
            log::info!(
                "CLIENT({}): pinged (last ping {})",
                peer.id,
                nsq_flags::format_go_duration(since)
            );
        }
        b"OK".to_vec()
    }

    async fn identify(&mut self) -> Result<Vec<u8>, V1Error> {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .await
            .map_err(|_| V1Error::BodySize)?;
        let size = identify_body_size(size)?;
        let mut body = vec![0u8; size];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(|_| V1Error::BodyRead)?;
        let identity = decode_identify(&body)?;
        let id = self.addr.to_string();
        log::info!(
            "CLIENT({id}): IDENTIFY Address:{} TCP:{} HTTP:{} Version:{}",
            identity.broadcast_address,
            identity.tcp_port,
            identity.http_port,
            identity.version
        );
        let peer = Arc::new(PeerInfo::new(&id, identity, now_nanos()));
        if self.lookupd.db.identify(&peer) {
            log_db(self.addr, "REGISTER", &Registration::client());
        }
        self.peer = Some(peer);
        let l = &self.lookupd;
        Ok(IdentifyResponse {
            broadcast_address: &l.opts.broadcast_address,
            hostname: &l.hostname,
            http_port: l.http_port,
            tcp_port: l.tcp_port,
            version: nsq_daemon::VERSION,
        }
        .to_bytes())
    }

    fn register(&self, topic: &str, channel: Option<&str>) -> Vec<u8> {
        if let Some(peer) = &self.peer {
            for r in self.lookupd.db.register(peer, topic, channel) {
                log_db(self.addr, "REGISTER", &r);
            }
        }
        b"OK".to_vec()
    }

    fn unregister(&self, topic: &str, channel: Option<&str>) -> Vec<u8> {
        if let Some(peer) = &self.peer {
            let out = self.lookupd.db.unregister(&peer.id, topic, channel);
            for r in &out.unexpected {
                log::warn!(
                    "client({}) unexpected UNREGISTER category:{} key:{} subkey:{}",
                    self.addr,
                    r.category.as_str(),
                    r.key,
                    r.subkey
                );
            }
            for r in &out.removed {
                log_db(self.addr, "UNREGISTER", r);
            }
        }
        b"OK".to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8]) -> Vec<Result<Vec<u8>, &'static str>> {
        let mut r = BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            match read_line(&mut r, &mut buf).await {
                Ok(Line::Complete) => out.push(Ok(buf)),
                Ok(Line::Eof) => return out,
                Ok(Line::TooLong) => {
                    out.push(Err("too long"));
                    return out;
                }
                Err(_) => {
                    out.push(Err("io"));
                    return out;
                }
            }
        }
    }

    #[tokio::test]
    async fn lines_are_split_across_buffer_refills() {
        assert_eq!(
            lines(b"PING\nREGISTER topic channel\npartial").await,
            vec![
                Ok(b"PING\n".to_vec()),
                Ok(b"REGISTER topic channel\n".to_vec())
            ]
        );
        assert_eq!(lines(b"").await, vec![]);
        assert_eq!(
            lines(b"\n\n").await,
            vec![Ok(b"\n".to_vec()), Ok(b"\n".to_vec())]
        );
    }

    #[tokio::test]
    async fn overlong_lines_are_refused() {
        let mut long = vec![b'A'; MAX_LINE_LEN + 1];
        long.push(b'\n');
        assert_eq!(lines(&long).await, vec![Err("too long")]);
        let mut fits = vec![b'A'; MAX_LINE_LEN - 1];
        fits.push(b'\n');
        assert_eq!(lines(&fits).await.len(), 1);
    }
}
