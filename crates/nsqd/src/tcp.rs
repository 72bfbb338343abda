//! The V2 TCP protocol server: one task per connection that reads commands, executes them, and
//! pushes messages from its channel to the client.
//!
//! Each loop iteration parses every complete command in the read buffer, delivers whatever the
//! consumer may take, and writes all resulting frames with one syscall. It flushes whenever it
//! is about to wait, so a lone message goes out at once while a busy consumer gets large
//! writes; the client's output buffer timeout is therefore only an upper bound on delay.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use nsq_protocol::compress::{Deflate, Snappy, StreamCodec};
use tokio::time::Interval;

use nsq_protocol::command::{parse_command, ParseCtx};
use nsq_protocol::frame;
use nsq_protocol::identify::{negotiate, response_json, IdentifyRequest, Negotiated};
use nsq_protocol::{Command, CommandError, ConnState, ErrorCode, Message, Parsed, WireError};

use crate::channel::Channel;
use crate::client::ClientShared;
use crate::daemon::Nsqd;
use crate::topic::Topic;
use nsq_store::journal::Event as JournalEvent;

/// A client's byte stream: plain TCP at first, TLS after an upgrade.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bound on messages taken from a channel per loop iteration.
const MAX_BATCH: usize = 256;
/// Least free space in the read buffer before a read.
const MIN_READ_ROOM: usize = 1024;
/// Initial buffer sizes. Small, so that thousands of idle consumers cost little; the buffers
/// grow with a connection's traffic and keep their size.
const INITIAL_READ_BUF: usize = 4096;
/// Most room reserved for one read.
const MAX_READ_ROOM: usize = 256 * 1024;
const INITIAL_WRITE_BUF: usize = 1024;
/// Upper bound on body bytes taken per loop iteration.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Where the TCP protocol listens: `host:port`, or a unix socket path.
pub enum Listener {
    Tcp(TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<(Box<dyn Transport>, String, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Box::new(s), addr.to_string(), addr.ip().to_string()))
            }
            Listener::Unix(l) => {
                let (s, addr) = l.accept().await?;
                let name = addr
                    .as_pathname()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "@".to_string());
                Ok((Box::new(s), name, String::new()))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_default(),
        }
    }
}

pub async fn serve(nsqd: Arc<Nsqd>, listener: Listener) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = nsqd.shutdown.notified() => break,
        };
        match accepted {
            Ok((stream, addr, ip)) => {
                nsqd.metrics.connection_accepted();
                let nsqd = nsqd.clone();
                tokio::spawn(async move { handle(nsqd, stream, addr, ip).await });
            }
            Err(e) => {
                log::error!("TCP: accept error - {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if nsqd.is_exiting() {
            break;
        }
    }
    log::info!("TCP: closing {}", listener.describe());
}

async fn handle(nsqd: Arc<Nsqd>, mut stream: Box<dyn Transport>, addr: String, ip: String) {
    log::info!("TCP: new client({addr})");
    let mut magic = [0u8; 4];
    let read = tokio::select! {
        r = stream.read_exact(&mut magic) => r,
        _ = nsqd.shutdown.notified() => return,
    };
    if read.is_err() {
        return;
    }
    log::info!(
        "CLIENT({addr}): desired protocol magic '{}'",
        String::from_utf8_lossy(&magic)
    );
    if &magic != nsq_protocol::MAGIC_V2 {
        let mut buf = Vec::new();
        frame::put_error(&mut buf, &WireError::bad_protocol().frame_text());
        let _ = stream.write_all(&buf).await;
        graceful_close(stream).await;
        return;
    }
    let client = nsqd.new_client(addr.clone(), ip);
    let neg = Negotiated::defaults(&nsqd.identify_policy);
    let mut conn = Conn {
        nsqd: nsqd.clone(),
        client: client.clone(),
        stream,
        codec: None,
        raw_in: BytesMut::new(),
        encoded: Vec::new(),
        tls: false,
        auth: crate::auth::ConnAuth::new(),
        rbuf: BytesMut::with_capacity(INITIAL_READ_BUF),
        wbuf: BytesMut::with_capacity(INITIAL_WRITE_BUF),
        state: ConnState::Init,
        identified: false,
        neg,
        rdy: 0,
        sub: None,
        taken: Vec::with_capacity(MAX_BATCH),
        fins: Vec::new(),
        read_room: INITIAL_READ_BUF,
        eof: false,
        journal_dirty: false,
        commits: Vec::new(),
        commit_failed: false,
    };
    let graceful = conn.run().await;
    if let Some((topic, channel)) = conn.sub.take() {
        nsqd.consumer_left(&topic, &channel, client.id);
    }
    nsqd.remove_client(client.id);
    log::info!("PROTOCOL(V2): [{addr}] exiting ioloop");
    if graceful {
        graceful_close(conn.stream).await;
    }
}

/// Closes after an error frame: shut down our side, then drain what the client still sends, so
/// the kernel answers with FIN rather than a reset that could discard the error frame.
async fn graceful_close(mut stream: Box<dyn Transport>) {
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

enum Event {
    Read(std::io::Result<usize>),
    Wake,
    Heartbeat,
    ReadTimeout,
}

/// Why the loop ended: `true` when a final error frame was written and the close should be
/// graceful.
type Graceful = bool;

struct Conn {
    nsqd: Arc<Nsqd>,
    client: Arc<ClientShared>,
    stream: Box<dyn Transport>,
    /// Negotiated compression: bytes read go through `raw_in` to `rbuf`, frames are encoded
    /// into `encoded` before writing.
    codec: Option<Box<dyn StreamCodec>>,
    raw_in: BytesMut,
    encoded: Vec<u8>,
    /// Upgraded to TLS.
    tls: bool,
    /// What the auth server granted this connection.
    auth: crate::auth::ConnAuth,
    rbuf: BytesMut,
    wbuf: BytesMut,
    state: ConnState,
    identified: bool,
    neg: Negotiated,
    rdy: i64,
    sub: Option<(Arc<Topic>, Arc<Channel>)>,
    taken: Vec<Message>,
    /// Free space to reserve when the read buffer runs low (grows with the traffic).
    read_room: usize,
    /// FINs parsed and not yet applied (see `apply_fins`).
    fins: Vec<nsq_protocol::MessageId>,
    /// The client closed its side; buffered commands still run.
    eof: bool,
    /// The channel journal has events this connection appended and has not yet written.
    journal_dirty: bool,
    /// Publishes whose `OK` sits in the write buffer but whose records still have to be made
    /// durable (done for all of them at once before the buffer is written).
    commits: Vec<PendingCommit>,
    /// A commit failed and its error frame was queued: close gracefully after writing it.
    commit_failed: bool,
}

struct PendingCommit {
    topic: Arc<Topic>,
    upto: u64,
    /// Where this command's `OK` starts in the write buffer.
    ok_at: usize,
    code: ErrorCode,
    cmd: &'static str,
}

fn heartbeat_interval(h: Option<Duration>) -> Option<Interval> {
    h.map(|h| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + h, h);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    })
}

async fn tick(i: &mut Option<Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(d: Option<tokio::time::Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Conn {
    fn read_deadline(&self) -> Option<tokio::time::Instant> {
        self.neg
            .heartbeat
            .map(|h| tokio::time::Instant::now() + h * 2)
    }

    fn parse_ctx(&self) -> ParseCtx {
        ParseCtx {
            state: self.state,
            tls_gate: self.nsqd.opts.tls_required != crate::options::TlsRequired::No && !self.tls,
            heartbeats_disabled: self.neg.heartbeat.is_none(),
            identified: self.identified,
            eof: self.eof,
        }
    }

    async fn run(&mut self) -> Graceful {
        let mut heartbeat = heartbeat_interval(self.neg.heartbeat);
        let mut deadline = self.read_deadline();
        loop {
            if self.client.close_requested() {
                let _ = self.flush().await;
                return self.commit_failed;
            }
            // Execute every complete command already buffered.
            let mut finished_any = false;
            loop {
                let parsed = parse_command(&self.rbuf, &self.parse_ctx(), &self.nsqd.limits);
                if let Ok(Parsed::Complete {
                    cmd: Command::Fin { id },
                    consumed,
                }) = parsed
                {
                    // Runs of FINs (a consumer's normal traffic) are applied together below.
                    self.rbuf.advance(consumed);
                    self.fins.push(id);
                    finished_any = true;
                    continue;
                }
                if let Err(e) = self.apply_fins() {
                    return self.fail(e).await;
                }
                match parsed {
                    Ok(Parsed::Incomplete) => break,
                    Ok(Parsed::Complete { cmd, consumed }) => {
                        let raw = self.rbuf.split_to(consumed).freeze();
                        let cmd = cmd.map(|r| raw.slice(r));
                        let old_heartbeat = self.neg.heartbeat;
                        let res = self.exec(cmd).await;
                        deadline = self.read_deadline();
                        if self.neg.heartbeat != old_heartbeat {
                            heartbeat = heartbeat_interval(self.neg.heartbeat);
                        }
                        if let Err(e) = res {
                            return self.fail(e).await;
                        }
                    }
                    Err(CommandError::LineTooLong) => {
                        log::error!("[{}] - line too long", self.client.remote_addr);
                        return false;
                    }
                    Err(CommandError::Wire(e)) => return self.fail(e).await,
                    Err(CommandError::MpubBody { topic, error }) => {
                        // NSQ checks MPUB's authorization before its body: a refused client
                        // gets the auth error and creates nothing.
                        if let Err(e) = self.check_auth("MPUB", topic.as_bytes(), b"").await {
                            return self.fail(e).await;
                        }
                        self.nsqd.get_or_create_topic(&topic);
                        return self.fail(error).await;
                    }
                }
            }
            if finished_any {
                deadline = self.read_deadline();
            }

            let more = self.deliver();
            if self.journal_dirty && self.commit_journal().is_err() {
                return false;
            }
            let obuf = self.neg.output_buffer_size.max(1) as usize;
            if !self.wbuf.is_empty()
                && (!more || self.wbuf.len() >= obuf)
                && self.flush().await.is_err()
            {
                return false;
            }
            if more {
                continue;
            }

            let target = if self.codec.is_some() {
                &mut self.raw_in
            } else {
                &mut self.rbuf
            };
            // Left to itself, reading into a full buffer grows it 64 bytes at a time, a
            // reallocation or a shift per read. The room reserved doubles whenever a read fills
            // it, so a busy connection soon reads in large gulps (reusing the space in place once
            // its commands are consumed) while an idle one keeps its small start.
            if target.capacity() - target.len() < MIN_READ_ROOM {
                target.reserve(self.read_room);
            }
            let room = target.capacity() - target.len();
            let event = tokio::select! {
                r = self.stream.read_buf(target) => Event::Read(r),
                _ = self.client.notify.notified() => Event::Wake,
                _ = tick(&mut heartbeat) => Event::Heartbeat,
                _ = sleep_until(deadline) => Event::ReadTimeout,
            };
            match event {
                Event::Read(Ok(0)) if !self.rbuf.is_empty() && !self.eof => {
                    // Run what is buffered once more so a truncated command gets its error.
                    self.eof = true;
                }
                Event::Read(Ok(0)) | Event::Read(Err(_)) => return false,
                Event::Read(Ok(n)) => {
                    if n >= room {
                        self.read_room = (self.read_room * 2).min(MAX_READ_ROOM);
                    }
                    if let Some(codec) = self.codec.as_mut() {
                        let input = self.raw_in.split();
                        if let Err(e) = codec.decode(&input, &mut self.rbuf) {
                            // As in NSQ: a stream that cannot be decoded is a read error.
                            log::error!("[{}] - {e}", self.client.remote_addr);
                            return false;
                        }
                    }
                }
                Event::Wake => {}
                Event::Heartbeat => frame::put_response(&mut self.wbuf, frame::HEARTBEAT),
                Event::ReadTimeout => {
                    log::error!("[{}] - read timeout, closing", self.client.remote_addr);
                    let _ = self.flush().await;
                    return false;
                }
            }
        }
    }

    /// Makes this connection's journal events durable before any frame that depends on them
    /// (a delivery whose attempt count must survive a crash) leaves.
    fn commit_journal(&mut self) -> Result<(), ()> {
        self.journal_dirty = false;
        let Some((topic, channel)) = &self.sub else {
            return Ok(());
        };
        let (Some(store), Some(j)) = (&topic.store, channel.journal.as_ref()) else {
            return Ok(());
        };
        if let Err(e) = store.commit_journal(j) {
            log::error!("CHANNEL({}): {e}", channel.name);
            self.nsqd.set_health(Some(e.to_string()));
            return Err(());
        }
        Ok(())
    }

    /// Makes every pending publish durable, one write (or fsync) per topic. On failure the
    /// `OK`s from the first failed publish on are replaced by its error, which closes the
    /// connection.
    fn run_commits(&mut self) -> Option<WireError> {
        if self.commits.is_empty() {
            return None;
        }
        let commits = std::mem::take(&mut self.commits);
        let mut done: Vec<(*const Topic, Result<(), String>)> = Vec::new();
        for (i, c) in commits.iter().enumerate() {
            let key = Arc::as_ptr(&c.topic);
            let res = match done.iter().find(|(k, _)| *k == key) {
                Some((_, r)) => r.clone(),
                None => {
                    let upto = commits[i..]
                        .iter()
                        .filter(|o| Arc::ptr_eq(&o.topic, &c.topic))
                        .map(|o| o.upto)
                        .max()
                        .unwrap_or(c.upto);
                    let r = self.nsqd.commit(&c.topic, upto);
                    done.push((key, r.clone()));
                    r
                }
            };
            if let Err(e) = res {
                self.wbuf.truncate(c.ok_at);
                return Some(WireError::new(c.code, format!("{} failed {e}", c.cmd)));
            }
        }
        None
    }

    /// Writes the buffered frames, within the heartbeat interval when heartbeats are on.
    async fn flush(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.run_commits() {
            log::error!("[{}] - {}", self.client.remote_addr, e.frame_text());
            frame::put_error(&mut self.wbuf, &e.frame_text());
            self.commit_failed = true;
            self.client.request_close();
        }
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let out: &[u8] = match self.codec.as_mut() {
            Some(codec) => {
                self.encoded.clear();
                if let Err(e) = codec.encode(&self.wbuf, &mut self.encoded) {
                    self.wbuf.clear();
                    return Err(std::io::Error::other(e.to_string()));
                }
                &self.encoded
            }
            None => &self.wbuf,
        };
        let res = match self.neg.heartbeat {
            Some(h) => match tokio::time::timeout(h, self.stream.write_all(out)).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "write timeout",
                )),
            },
            None => self.stream.write_all(out).await,
        };
        self.wbuf.clear();
        res
    }

    /// Sends a fatal error and ends the connection.
    async fn fail(&mut self, e: WireError) -> Graceful {
        log::error!("[{}] - {}", self.client.remote_addr, e.frame_text());
        frame::put_error(&mut self.wbuf, &e.frame_text());
        self.flush().await.is_ok()
    }

    /// Pulls what this consumer may take from its channel into the write buffer. Returns `true`
    /// when it took a full batch (more may be ready).
    fn deliver(&mut self) -> bool {
        if self.state != ConnState::Subscribed {
            return false;
        }
        let Some((topic, channel)) = &self.sub else {
            return false;
        };
        let capacity = self.rdy - self.client.in_flight.load(Ordering::Acquire);
        if capacity <= 0 {
            return false;
        }
        let want = (capacity as usize).min(MAX_BATCH);
        self.taken.clear();
        let now = Instant::now();
        let n = {
            let mut ci = channel.inner.lock();
            let mut ti = topic.inner.lock();
            let pos_before = ti.state.channel_pos(channel.key);
            let n = ci.state.take(
                &mut ti.state,
                self.client.id,
                want,
                MAX_BATCH_BYTES,
                now,
                self.neg.msg_timeout,
                &mut self.taken,
            );
            if let Some(j) = channel.journal.as_ref() {
                // Recorded before the messages leave, so attempts survive a crash.
                let pos_after = ti.state.channel_pos(channel.key);
                if pos_after != pos_before {
                    if let Some(pos) = pos_after {
                        j.append(&JournalEvent::Advance(pos));
                    }
                }
                let redelivered = ci.state.last_take_redelivered();
                if !redelivered.is_empty() {
                    j.append(&JournalEvent::Attempt(redelivered.to_vec()));
                }
                self.journal_dirty |= n > 0;
            }
            if n < want {
                if !ci.state.paused() {
                    channel.register_waiter(&mut ci, &self.client);
                }
            } else if channel.has_waiters() && ci.state.has_ready(&ti.state) {
                channel.wake_one_locked(&mut ci);
            }
            drop(ti);
            if self.neg.sample_rate > 0 {
                let mut dropped = Vec::new();
                self.taken.retain(|m| {
                    let keep = rand::random::<u32>() % 100 <= self.neg.sample_rate as u32;
                    if !keep {
                        let _ = ci.state.finish(self.client.id, &m.id);
                        dropped.push(m.id);
                    }
                    keep
                });
                if let (Some(j), false) = (channel.journal.as_ref(), dropped.is_empty()) {
                    j.append(&JournalEvent::Finish(dropped));
                }
            }
            n
        };
        let sent = self.taken.len();
        self.client
            .in_flight
            .fetch_add(sent as i64, Ordering::AcqRel);
        self.client
            .message_count
            .fetch_add(sent as u64, Ordering::Relaxed);
        channel
            .global_msg_count
            .fetch_add(sent as u64, Ordering::Relaxed);
        for m in &self.taken {
            frame::put_message(&mut self.wbuf, m);
        }
        n == want
    }

    /// Applies the FINs collected in `fins` under one channel lock and journals them as one
    /// event. Error frames for IDs that were not in flight come out in the FINs' order, and
    /// before any later command's response, because every other command applies pending FINs
    /// first.
    fn apply_fins(&mut self) -> Result<(), WireError> {
        if self.fins.is_empty() {
            return Ok(());
        }
        let (_, channel) = self.subscription()?;
        let channel = channel.clone();
        let mut fins = std::mem::take(&mut self.fins);
        let mut failed = Vec::new();
        {
            let mut ci = channel.inner.lock();
            let ci = &mut *ci;
            // Clocks are read once per batch; the monotonic one only for the percentile window.
            let nanos = crate::topic::unix_nanos();
            let window_now = ci.e2e.as_ref().map(|_| Instant::now());
            fins.retain(|id| match ci.state.finish(self.client.id, id) {
                Ok(f) => {
                    let latency = nanos - f.msg.timestamp;
                    ci.e2e_hist.record(latency);
                    if let (Some(e2e), Some(now)) = (ci.e2e.as_mut(), window_now) {
                        e2e.record(now, latency);
                    }
                    true
                }
                Err(e) => {
                    failed.push(format!("FIN {} failed {e}", id.as_text()));
                    false
                }
            });
            if let (false, Some(j)) = (fins.is_empty(), channel.journal.as_ref()) {
                let event = JournalEvent::Finish(fins);
                j.append(&event);
                self.journal_dirty = true;
                fins = match event {
                    JournalEvent::Finish(ids) => ids,
                    _ => Vec::new(),
                };
            }
        }
        let done = fins.len();
        if done > 0 {
            self.client
                .in_flight
                .fetch_sub(done as i64, Ordering::AcqRel);
            self.client
                .finish_count
                .fetch_add(done as u64, Ordering::Relaxed);
        }
        for desc in failed {
            self.soft_error(ErrorCode::FinFailed, desc);
        }
        fins.clear();
        self.fins = fins;
        Ok(())
    }

    fn subscription(&self) -> Result<(&Arc<Topic>, &Arc<Channel>), WireError> {
        self.sub
            .as_ref()
            .map(|(t, c)| (t, c))
            .ok_or_else(|| WireError::invalid("not subscribed"))
    }

    async fn exec(&mut self, cmd: Command<Bytes>) -> Result<(), WireError> {
        match cmd {
            Command::Nop | Command::RdyIgnored => Ok(()),
            Command::Identify { body } => self.identify(&body).await,
            Command::Auth { body } => {
                let cn = self.client.identity.lock().tls_common_name.clone();
                let peer = crate::auth::Peer {
                    addr: &self.client.remote_addr,
                    remote_ip: &self.client.remote_ip,
                    tls: self.tls,
                    common_name: &cn,
                };
                let res = self.auth.auth(&self.nsqd.auth_config, &body, &peer).await;
                self.record_auth();
                let json = res?;
                frame::put_response(&mut self.wbuf, &json);
                Ok(())
            }
            Command::Sub { topic, channel } => self.subscribe(&topic, &channel).await,
            Command::Rdy { count } => {
                self.rdy = count;
                self.client.ready_count.store(count, Ordering::Relaxed);
                Ok(())
            }
            Command::Fin { id } => {
                self.fins.push(id);
                self.apply_fins()
            }
            Command::Req {
                id,
                delay_ms,
                requested_ms,
            } => {
                if requested_ms as i64 != delay_ms {
                    log::info!(
                        "[{}] REQ timeout {requested_ms}ms clamped to {delay_ms}ms",
                        self.client.remote_addr
                    );
                }
                let (topic, channel) = self.subscription()?;
                let channel = channel.clone();
                let mut ci = channel.inner.lock();
                let released = topic.inner.lock().state.released();
                let res = ci.state.requeue(
                    self.client.id,
                    &id,
                    Duration::from_millis(delay_ms as u64),
                    Instant::now(),
                    released,
                );
                match res {
                    Ok(ready_now) => {
                        if let (false, Some(j)) = (ready_now, channel.journal.as_ref()) {
                            j.append(&JournalEvent::Defer(
                                id,
                                crate::durable::unix_ms() + delay_ms,
                            ));
                            self.journal_dirty = true;
                        }
                        self.client.in_flight.fetch_sub(1, Ordering::AcqRel);
                        self.client.requeue_count.fetch_add(1, Ordering::Relaxed);
                        if ready_now {
                            channel.wake_one_locked(&mut ci);
                        }
                    }
                    Err(e) => {
                        drop(ci);
                        self.soft_error(
                            ErrorCode::ReqFailed,
                            format!("REQ {} failed {e}", id.as_text()),
                        )
                    }
                }
                Ok(())
            }
            Command::Touch { id } => {
                let (_, channel) = self.subscription()?;
                let res = channel.inner.lock().state.touch(
                    self.client.id,
                    &id,
                    Instant::now(),
                    self.neg.msg_timeout,
                    self.nsqd.opts.max_msg_timeout,
                );
                if let Err(e) = res {
                    self.soft_error(
                        ErrorCode::TouchFailed,
                        format!("TOUCH {} failed {e}", id.as_text()),
                    );
                }
                Ok(())
            }
            Command::Cls => {
                self.state = ConnState::Closing;
                self.client
                    .state
                    .store(ConnState::Closing as u8, Ordering::Relaxed);
                self.rdy = 0;
                self.client.ready_count.store(0, Ordering::Relaxed);
                frame::put_response(&mut self.wbuf, frame::CLOSE_WAIT);
                Ok(())
            }
            Command::Pub { topic, body } => {
                self.check_auth("PUB", &topic, b"").await?;
                self.publish(&topic, vec![body], ErrorCode::PubFailed, "PUB")
                    .await
            }
            Command::Mpub { topic, bodies } => {
                self.check_auth("MPUB", &topic, b"").await?;
                self.publish(&topic, bodies, ErrorCode::MpubFailed, "MPUB")
                    .await
            }
            Command::Dpub {
                topic,
                defer_ms,
                body,
            } => {
                self.check_auth("DPUB", &topic, b"").await?;
                let name = topic_name(&topic)?;
                let t = self.nsqd.topic_with_precreation(name).await;
                self.nsqd
                    .publish_deferred(&t, body, defer_ms)
                    .map_err(|e| {
                        WireError::new(ErrorCode::DpubFailed, format!("DPUB failed {e}"))
                    })?;
                self.client.count_published(name, 1);
                frame::put_response(&mut self.wbuf, frame::OK);
                Ok(())
            }
        }
    }

    /// PUB and MPUB: appended now, acknowledged once the batch's commit succeeds.
    async fn publish(
        &mut self,
        topic: &[u8],
        bodies: Vec<Bytes>,
        code: ErrorCode,
        cmd: &'static str,
    ) -> Result<(), WireError> {
        let name = topic_name(topic)?;
        let t = self.nsqd.topic_with_precreation(name).await;
        let n = bodies.len() as u64;
        let upto = self
            .nsqd
            .publish_uncommitted(&t, bodies)
            .map_err(|e| WireError::new(code, format!("{cmd} failed {e}")))?;
        self.client.count_published(name, n);
        let ok_at = self.wbuf.len();
        frame::put_response(&mut self.wbuf, frame::OK);
        self.commits.push(PendingCommit {
            topic: t,
            upto,
            ok_at,
            code,
            cmd,
        });
        Ok(())
    }

    fn soft_error(&mut self, code: ErrorCode, desc: String) {
        let e = WireError::new(code, desc);
        log::error!("[{}] - {}", self.client.remote_addr, e.frame_text());
        frame::put_error(&mut self.wbuf, &e.frame_text());
    }

    async fn identify(&mut self, body: &[u8]) -> Result<(), WireError> {
        let req = IdentifyRequest::from_json(body)?;
        let neg = negotiate(&req, &self.nsqd.identify_policy)?;
        {
            let mut id = self.client.identity.lock();
            id.client_id = req.client_id.clone();
            id.hostname = req.hostname.clone();
            id.user_agent = req.user_agent.clone();
            id.topology_region = req.topology_region.clone();
            id.topology_zone = req.topology_zone.clone();
            id.sample_rate = neg.sample_rate;
            id.deflate = neg.deflate;
            id.snappy = neg.snappy;
        }
        self.identified = true;
        if !req.feature_negotiation {
            // NSQ answers OK and upgrades nothing (`negotiate` left every upgrade off).
            frame::put_response(&mut self.wbuf, frame::OK);
            self.neg = neg;
            return Ok(());
        }
        let json = response_json(&neg, &self.nsqd.identify_policy);
        frame::put_response(&mut self.wbuf, &json);
        let (tls, snappy, deflate, level) = (neg.tls, neg.snappy, neg.deflate, neg.deflate_level);
        self.neg = neg;
        // Upgrades, in NSQ's order, each confirmed by an OK sent through the new layer.
        let upgrade_failed =
            |e: String| WireError::new(ErrorCode::IdentifyFailed, format!("IDENTIFY failed {e}"));
        if tls || snappy || deflate {
            self.flush()
                .await
                .map_err(|e| upgrade_failed(e.to_string()))?;
        }
        if tls {
            self.upgrade_tls().await.map_err(upgrade_failed)?;
            frame::put_response(&mut self.wbuf, frame::OK);
            self.flush()
                .await
                .map_err(|e| upgrade_failed(e.to_string()))?;
        }
        if snappy {
            self.codec = Some(Box::new(Snappy::default()));
            frame::put_response(&mut self.wbuf, frame::OK);
            self.flush()
                .await
                .map_err(|e| upgrade_failed(e.to_string()))?;
        }
        if deflate {
            self.codec = Some(Box::new(Deflate::new(level.clamp(1, 9) as u32)));
            frame::put_response(&mut self.wbuf, frame::OK);
            self.flush()
                .await
                .map_err(|e| upgrade_failed(e.to_string()))?;
        }
        Ok(())
    }

    /// Runs the TLS server handshake on the connection, which from then on is encrypted.
    async fn upgrade_tls(&mut self) -> Result<(), String> {
        let Some(acceptor) = self.nsqd.tls_acceptor.clone() else {
            return Err("TLS is not configured".to_string());
        };
        let placeholder: Box<dyn Transport> =
            Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()));
        let raw = std::mem::replace(&mut self.stream, placeholder);
        let tls = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(raw))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let info = crate::tls::TlsInfo::from_connection(tls.get_ref().1);
        {
            let mut id = self.client.identity.lock();
            id.tls = true;
            id.tls_version = info.version;
            id.tls_cipher_suite = info.cipher_suite;
            id.tls_negotiated_protocol = info.negotiated_protocol;
            id.tls_negotiated_protocol_is_mutual = info.negotiated_protocol_is_mutual;
            id.tls_common_name = info.common_name;
        }
        self.stream = Box::new(tls);
        self.tls = true;
        Ok(())
    }

    /// NSQ's authorization check (a no-op without auth servers); `/stats` follows what it finds.
    async fn check_auth(
        &mut self,
        cmd: &str,
        topic: &[u8],
        channel: &[u8],
    ) -> Result<(), WireError> {
        if !self.nsqd.auth_config.enabled() {
            return Ok(());
        }
        let cn = self.client.identity.lock().tls_common_name.clone();
        let peer = crate::auth::Peer {
            addr: &self.client.remote_addr,
            remote_ip: &self.client.remote_ip,
            tls: self.tls,
            common_name: &cn,
        };
        let res = self
            .auth
            .check(&self.nsqd.auth_config, cmd, topic, channel, &peer)
            .await;
        self.record_auth();
        res
    }

    fn record_auth(&self) {
        let mut id = self.client.identity.lock();
        id.authed = self.auth.is_authed();
        id.auth_identity = self.auth.identity().to_string();
        id.auth_identity_url = self.auth.identity_url().to_string();
    }

    async fn subscribe(&mut self, topic: &[u8], channel: &[u8]) -> Result<(), WireError> {
        self.check_auth("SUB", topic, channel).await?;
        let topic_name = topic_name(topic)?;
        let channel_name = std::str::from_utf8(channel)
            .map_err(|_| WireError::new(ErrorCode::BadChannel, "SUB channel name is not valid"))?;
        let max = self.nsqd.opts.max_channel_consumers;
        for attempt in 0..2 {
            let t = self.nsqd.topic_with_precreation(topic_name).await;
            let c = self.nsqd.get_or_create_channel(&t, channel_name);
            if max != 0 && c.client_count() as i64 >= max {
                return Err(WireError::new(
                    ErrorCode::SubFailed,
                    format!("SUB failed consumers for {topic_name}:{channel_name} exceeds limit of {max}"),
                ));
            }
            if c.is_deleted() || t.is_deleted() {
                // An ephemeral channel or topic may be going away right now: retry once.
                if attempt == 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                return Err(WireError::new(
                    ErrorCode::SubFailed,
                    "SUB failed to deleted topic/channel",
                ));
            }
            c.add_client(&self.client);
            self.sub = Some((t, c));
            self.state = ConnState::Subscribed;
            self.client
                .state
                .store(ConnState::Subscribed as u8, Ordering::Relaxed);
            frame::put_response(&mut self.wbuf, frame::OK);
            return Ok(());
        }
        Err(WireError::new(
            ErrorCode::SubFailed,
            "SUB failed to deleted topic/channel",
        ))
    }
}

fn topic_name(raw: &[u8]) -> Result<&str, WireError> {
    // The parser already validated the name as ASCII.
    std::str::from_utf8(raw)
        .map_err(|_| WireError::new(ErrorCode::BadTopic, "topic name is not valid"))
}
