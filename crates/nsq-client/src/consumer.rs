//! A consumer: subscribes one topic's channel on every nsqd it is given or discovers, spreads
//! `max_in_flight` across the connections, backs off after failures and stops gracefully.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use nsq_protocol::MessageId;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use crate::conn::{self, Frame};
use crate::{BackoffStrategy, Config, Error, Message};

/// How long a graceful stop waits for in-flight messages before closing anyway.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long before an RDY update refused for lack of `max_in_flight` is tried again.
const RDY_RETRY: Duration = Duration::from_secs(5);

/// Counters since the consumer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    pub messages_received: u64,
    pub messages_finished: u64,
    pub messages_requeued: u64,
    /// Error frames nsqd sent (`E_FIN_FAILED` and the like), on every connection so far.
    pub errors_received: u64,
    pub connections: usize,
}

/// A subscription to `topic`/`channel`. Messages arrive through [`Consumer::recv`] (or a
/// handler, see [`Consumer::add_concurrent_handlers`]).
///
/// ```no_run
/// # async fn run() -> Result<(), nsq_client::Error> {
/// let mut config = nsq_client::Config::new();
/// config.max_in_flight = 10;
/// let consumer = nsq_client::Consumer::new("events", "archive", config)?;
/// consumer.connect_to_nsqd("127.0.0.1:4150").await?;
/// while let Some(msg) = consumer.recv().await {
///     println!("{}", String::from_utf8_lossy(&msg.body));
///     msg.finish();
/// }
/// # Ok(())
/// # }
/// ```
pub struct Consumer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("topic", &self.shared.topic)
            .field("channel", &self.shared.channel)
            .finish()
    }
}

pub(crate) struct Shared {
    topic: String,
    channel: String,
    config: Config,
    state: Mutex<State>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Message>>,
    received: AtomicU64,
    finished: AtomicU64,
    requeued: AtomicU64,
    errors_received: AtomicU64,
    /// Set with `State::stopping`, readable without the state lock.
    stopping: AtomicBool,
    /// A backoff level above zero or a backoff timer running (kept in step with `State`).
    backoff_active: AtomicBool,
    /// Set once stopping begins; background loops end.
    exiting: watch::Sender<bool>,
    /// Set when a stop has waited too long: connections close without waiting for messages.
    force: watch::Sender<bool>,
    /// Set once every connection has closed after a stop.
    done: watch::Sender<bool>,
    /// Asks the lookupd loop for an early poll (a connection closed).
    recheck: Notify,
}

struct State {
    msg_tx: Option<mpsc::UnboundedSender<Message>>,
    conns: HashMap<String, Arc<ConnHandle>>,
    pending: HashSet<String>,
    /// Addresses given directly, reconnected after failures.
    nsqd_addrs: Vec<String>,
    /// Lookup URLs (with `?topic=`), polled in turn.
    lookupds: Vec<String>,
    lookupd_index: usize,
    lookupd_loop: bool,
    rdy_loop: bool,
    stopping: bool,
    max_in_flight: i64,
    total_rdy: i64,
    backoff_counter: u32,
    /// A backoff timer is running (go-nsq's `backoffDuration > 0`).
    backoff_timeout: bool,
    need_redistribute: bool,
    rdy_retry: HashMap<String, tokio::task::AbortHandle>,
}

/// Per-connection RDY bookkeeping, changed only under the consumer's state lock.
#[derive(Debug)]
struct ConnRdy {
    rdy: i64,
    last_rdy_time: Instant,
    last_msg_time: Instant,
}

/// One subscribed connection, as messages and the consumer see it.
pub(crate) struct ConnHandle {
    addr: String,
    consumer: Weak<Shared>,
    outbox: Arc<conn::Outbox>,
    in_flight: AtomicI64,
    /// The reader holds frames it has not handed over yet: more messages (and answers to
    /// them) are coming.
    burst: AtomicBool,
    /// Notified when `in_flight` reaches zero or a burst ends.
    drained: Notify,
    closing: AtomicBool,
    max_rdy: i64,
    rdy: Mutex<ConnRdy>,
}

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// A message finished: step backoff down.
    Resume,
    /// A message requeued with backoff: step backoff up.
    Backoff,
    /// A message requeued without backoff: no change.
    Continue,
}

impl ConnHandle {
    fn send(&self, line: &str) -> bool {
        self.outbox.push_line(line)
    }

    /// Appends `VERB <id>[ <arg>]\n` without formatting or allocating.
    fn send_id(&self, verb: &[u8], id: &MessageId, arg: Option<u128>) -> bool {
        self.outbox.push(|b| {
            b.extend_from_slice(verb);
            b.push(b' ');
            b.extend_from_slice(id.as_bytes());
            if let Some(arg) = arg {
                // Writing into a Vec cannot fail.
                let _ = std::io::Write::write_fmt(b, format_args!(" {arg}"));
            }
            b.push(b'\n');
        })
    }

    fn responded(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) <= 1 {
            self.drained.notify_waiters();
        }
    }

    pub(crate) fn finish(&self, id: &MessageId) {
        // As go-nsq does, RDY changes go out before the response, so a requeue cannot be
        // redelivered under the old RDY count.
        if let Some(c) = self.consumer.upgrade() {
            c.finished.fetch_add(1, Ordering::Relaxed);
            c.backoff_signal(Signal::Resume);
        }
        self.send_id(b"FIN", id, None);
        self.responded();
    }

    pub(crate) fn requeue(
        &self,
        id: &MessageId,
        attempts: u16,
        delay: Option<Duration>,
        backoff: bool,
    ) {
        let consumer = self.consumer.upgrade();
        let delay = delay.unwrap_or_else(|| match &consumer {
            Some(c) => requeue_delay(
                c.config.default_requeue_delay,
                attempts,
                c.config.max_requeue_delay,
            ),
            None => Duration::ZERO,
        });
        if let Some(c) = consumer {
            c.requeued.fetch_add(1, Ordering::Relaxed);
            c.backoff_signal(if backoff {
                Signal::Backoff
            } else {
                Signal::Continue
            });
        }
        self.send_id(b"REQ", id, Some(delay.as_millis()));
        self.responded();
    }

    pub(crate) fn touch(&self, id: &MessageId) {
        self.send_id(b"TOUCH", id, None);
    }

    /// A message was dropped unanswered.
    pub(crate) fn abandoned(&self) {
        self.responded();
    }

    fn rdy(&self) -> i64 {
        lock(&self.rdy).rdy
    }
}

impl Consumer {
    /// Validates the names and `config`; nothing connects until an address is given.
    pub fn new(topic: &str, channel: &str, config: Config) -> Result<Consumer, Error> {
        config.validate()?;
        if !nsq_protocol::names::is_valid_topic_name(topic.as_bytes()) {
            return Err(Error::InvalidName(format!("invalid topic name {topic:?}")));
        }
        if !nsq_protocol::names::is_valid_channel_name(channel.as_bytes()) {
            return Err(Error::InvalidName(format!(
                "invalid channel name {channel:?}"
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let max_in_flight = i64::try_from(config.max_in_flight).unwrap_or(i64::MAX);
        Ok(Consumer {
            shared: Arc::new(Shared {
                topic: topic.to_string(),
                channel: channel.to_string(),
                config,
                state: Mutex::new(State {
                    msg_tx: Some(tx),
                    conns: HashMap::new(),
                    pending: HashSet::new(),
                    nsqd_addrs: Vec::new(),
                    lookupds: Vec::new(),
                    lookupd_index: 0,
                    lookupd_loop: false,
                    rdy_loop: false,
                    stopping: false,
                    max_in_flight,
                    total_rdy: 0,
                    backoff_counter: 0,
                    backoff_timeout: false,
                    need_redistribute: false,
                    rdy_retry: HashMap::new(),
                }),
                rx: tokio::sync::Mutex::new(rx),
                received: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                requeued: AtomicU64::new(0),
                errors_received: AtomicU64::new(0),
                stopping: AtomicBool::new(false),
                backoff_active: AtomicBool::new(false),
                exiting: watch::Sender::new(false),
                force: watch::Sender::new(false),
                done: watch::Sender::new(false),
                recheck: Notify::new(),
            }),
        })
    }

    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    pub fn channel(&self) -> &str {
        &self.shared.channel
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Connects and subscribes to one nsqd (`host:port`), reconnecting after failures.
    /// Connecting to an address already connected does nothing.
    pub async fn connect_to_nsqd(&self, addr: &str) -> Result<(), Error> {
        connect_nsqd(&self.shared, addr).await
    }

    pub async fn connect_to_nsqds(&self, addrs: &[String]) -> Result<(), Error> {
        for a in addrs {
            self.connect_to_nsqd(a).await?;
        }
        Ok(())
    }

    /// Adds an nsqlookupd (`host:port` or an `http(s)://` URL) and polls it for the topic's
    /// producers every `lookupd_poll_interval` (with jitter).
    pub async fn connect_to_nsqlookupd(&self, addr: &str) -> Result<(), Error> {
        let url = crate::lookup::lookup_url(addr, &self.shared.topic)?;
        let first = {
            let mut st = lock(&self.shared.state);
            if st.stopping {
                return Err(Error::Stopped);
            }
            if st.lookupds.contains(&url) {
                return Ok(());
            }
            st.lookupds.push(url);
            let first = !st.lookupd_loop;
            st.lookupd_loop = true;
            first
        };
        if first {
            // go-nsq queries at once and starts the jittered poll loop afterwards.
            query_lookupd(&self.shared).await;
            tokio::spawn(lookupd_loop(self.shared.clone()));
        }
        Ok(())
    }

    pub async fn connect_to_nsqlookupds(&self, addrs: &[String]) -> Result<(), Error> {
        for a in addrs {
            self.connect_to_nsqlookupd(a).await?;
        }
        Ok(())
    }

    /// The next message; `None` once the consumer has stopped and every connection closed.
    pub async fn recv(&self) -> Option<Message> {
        self.shared.rx.lock().await.recv().await
    }

    /// Runs `n` tasks, each taking messages and calling `handler`: `Ok` finishes the message,
    /// `Err` requeues it with backoff (unless the handler responded itself). A message past
    /// `max_attempts` is finished without calling the handler, as go-nsq does.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), nsq_client::Error> {
    /// let consumer = std::sync::Arc::new(nsq_client::Consumer::new(
    ///     "events",
    ///     "archive",
    ///     nsq_client::Config::new(),
    /// )?);
    /// consumer.add_concurrent_handlers(4, |msg| async move {
    ///     println!("{} bytes", msg.body.len());
    ///     Ok(())
    /// });
    /// consumer.connect_to_nsqd("127.0.0.1:4150").await?;
    /// consumer.stopped().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_concurrent_handlers<F, Fut>(self: &Arc<Self>, n: usize, handler: F)
    where
        F: Fn(Message) -> Fut + Send + Sync + Clone + 'static,
        Fut: std::future::Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
            + Send
            + 'static,
    {
        for _ in 0..n {
            let me = self.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                while let Some(msg) = me.recv().await {
                    let responder = msg.responder();
                    let id = msg.id;
                    match handler(msg).await {
                        Ok(()) => responder.finish(),
                        Err(e) => {
                            log::error!(
                                "Handler returned error ({e}) for msg {}",
                                String::from_utf8_lossy(id.as_bytes())
                            );
                            responder.requeue(None, true);
                        }
                    }
                }
            });
        }
    }

    /// Starts a graceful stop: CLS on every connection. Messages already handed to the caller
    /// can still be answered, and connections close once they are; messages read from nsqd but
    /// not yet handed over are requeued at once (without backoff), so that a caller that has
    /// stopped calling [`Consumer::recv`] does not hold the stop up.
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Resolves once the consumer has stopped completely.
    pub async fn stopped(&self) {
        let mut rx = self.shared.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    pub fn stats(&self) -> ConsumerStats {
        let connections = lock(&self.shared.state).conns.len();
        ConsumerStats {
            messages_received: self.shared.received.load(Ordering::Relaxed),
            messages_finished: self.shared.finished.load(Ordering::Relaxed),
            messages_requeued: self.shared.requeued.load(Ordering::Relaxed),
            errors_received: self.shared.errors_received.load(Ordering::Relaxed),
            connections,
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

impl Shared {
    fn stop(&self) {
        let conns: Vec<Arc<ConnHandle>> = {
            let mut st = lock(&self.state);
            if st.stopping {
                return;
            }
            st.stopping = true;
            self.stopping.store(true, Ordering::Release);
            self.exiting.send_replace(true);
            log::info!("[{}/{}] stopping", self.topic, self.channel);
            if st.conns.is_empty() && st.pending.is_empty() {
                self.finish_stop(&mut st);
                return;
            }
            st.conns.values().cloned().collect()
        };
        for c in conns {
            if !c.send("CLS") {
                log::error!("({}) error sending CLS", c.addr);
            }
        }
        self.requeue_queued();
        let force = self.force.clone();
        let done = self.done.subscribe();
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(async move {
                let mut done = done;
                if tokio::time::timeout(STOP_TIMEOUT, done.wait_for(|d| *d))
                    .await
                    .is_err()
                {
                    force.send_replace(true);
                }
            });
        } else {
            force.send_replace(true);
        }
    }

    /// Gives back to nsqd the messages read but not yet handed to the caller. When a `recv`
    /// holds the queue it is waiting on an empty one, and later arrivals are requeued by the
    /// reader.
    fn requeue_queued(&self) {
        if let Ok(mut rx) = self.rx.try_lock() {
            while let Ok(msg) = rx.try_recv() {
                msg.requeue_without_backoff(Some(Duration::ZERO));
            }
        }
    }

    fn finish_stop(&self, st: &mut State) {
        st.msg_tx = None;
        for (_, t) in st.rdy_retry.drain() {
            t.abort();
        }
        self.done.send_replace(true);
    }

    /// Mirrors whether backoff is under way for [`Shared::backoff_signal`]'s lock-free check.
    fn note_backoff(&self, st: &State) {
        self.backoff_active.store(
            st.backoff_counter > 0 || st.backoff_timeout,
            Ordering::Release,
        );
    }

    /// go-nsq's `startStopContinueBackoff`.
    fn backoff_signal(self: &Arc<Self>, signal: Signal) {
        // Outside backoff, only a requeue with backoff changes anything: finishing a message
        // (the common case) need not take the state lock.
        if signal != Signal::Backoff && !self.backoff_active.load(Ordering::Acquire) {
            return;
        }
        let mut st = lock(&self.state);
        if st.backoff_timeout {
            return;
        }
        let cfg = &self.config;
        let (counter, updated) = next_backoff_level(
            st.backoff_counter,
            signal,
            |n| backoff_duration(cfg.backoff_strategy, cfg.backoff_multiplier, n, 1.0),
            cfg.max_backoff_duration,
        );
        st.backoff_counter = counter;
        self.note_backoff(&st);
        if counter == 0 && updated {
            let count = per_conn_max_in_flight(st.max_in_flight, st.conns.len());
            log::warn!(
                "[{}/{}] exiting backoff, returning all to RDY {count}",
                self.topic,
                self.channel
            );
            let conns: Vec<_> = st.conns.values().cloned().collect();
            for c in conns {
                self.update_rdy(&mut st, &c, count);
            }
        } else if counter > 0 {
            let d = backoff_duration(
                cfg.backoff_strategy,
                cfg.backoff_multiplier,
                counter,
                rand::random::<f64>(),
            )
            .min(cfg.max_backoff_duration);
            log::warn!(
                "[{}/{}] backing off for {d:?} (backoff level {counter}), setting all to RDY 0",
                self.topic,
                self.channel
            );
            let conns: Vec<_> = st.conns.values().cloned().collect();
            for c in conns {
                self.update_rdy(&mut st, &c, 0);
            }
            self.start_backoff_timer(&mut st, d);
        }
    }

    fn start_backoff_timer(self: &Arc<Self>, st: &mut State, d: Duration) {
        st.backoff_timeout = true;
        self.note_backoff(st);
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            if let Some(me) = me.upgrade() {
                me.resume();
            }
        });
    }

    /// The backoff timer expired: let one message through on one connection.
    fn resume(self: &Arc<Self>) {
        let mut st = lock(&self.state);
        if st.stopping {
            st.backoff_timeout = false;
            self.note_backoff(&st);
            return;
        }
        let conns: Vec<_> = st.conns.values().cloned().collect();
        if conns.is_empty() {
            log::warn!(
                "[{}/{}] no connection to resume on, backing off for 1s",
                self.topic,
                self.channel
            );
            self.start_backoff_timer(&mut st, Duration::from_secs(1));
            return;
        }
        let choice = conns.get(rand::random::<usize>() % conns.len()).cloned();
        st.backoff_timeout = false;
        self.note_backoff(&st);
        if let Some(c) = choice {
            log::warn!("({}) backoff timeout expired, sending RDY 1", c.addr);
            if !self.update_rdy(&mut st, &c, 1) {
                self.start_backoff_timer(&mut st, Duration::from_secs(1));
            }
        }
    }

    fn maybe_update_rdy(self: &Arc<Self>, st: &mut State, c: &Arc<ConnHandle>) {
        if st.backoff_counter > 0 || st.backoff_timeout {
            return;
        }
        let count = per_conn_max_in_flight(st.max_in_flight, st.conns.len());
        self.update_rdy(st, c, count);
    }

    /// go-nsq's `updateRDY`: caps `count` by nsqd's max and by what `max_in_flight` leaves.
    /// Returns false when the update could not be sent.
    fn update_rdy(self: &Arc<Self>, st: &mut State, c: &Arc<ConnHandle>, count: i64) -> bool {
        if c.closing.load(Ordering::SeqCst) {
            return false;
        }
        if let Some(t) = st.rdy_retry.remove(&c.addr) {
            t.abort();
        }
        let cur = c.rdy();
        match clamp_rdy(count, c.max_rdy, cur, st.total_rdy, st.max_in_flight) {
            RdyPlan::Send(n) => self.send_rdy(st, c, n),
            RdyPlan::OverMaxInFlight => {
                if cur == 0 {
                    // Retried later so the connection is not starved forever; any other
                    // update for it cancels this.
                    let me = Arc::downgrade(self);
                    let conn = c.clone();
                    let t = tokio::spawn(async move {
                        tokio::time::sleep(RDY_RETRY).await;
                        if let Some(me) = me.upgrade() {
                            let mut st = lock(&me.state);
                            st.rdy_retry.remove(&conn.addr);
                            me.update_rdy(&mut st, &conn, count);
                        }
                    });
                    st.rdy_retry.insert(c.addr.clone(), t.abort_handle());
                }
                false
            }
        }
    }

    fn send_rdy(&self, st: &mut State, c: &ConnHandle, count: i64) -> bool {
        let mut r = lock(&c.rdy);
        if count == 0 && r.rdy == 0 {
            return true;
        }
        st.total_rdy += count - r.rdy;
        let last = r.rdy;
        r.rdy = count;
        if count > 0 {
            r.last_rdy_time = Instant::now();
        }
        drop(r);
        if count == last {
            return true;
        }
        c.send(&format!("RDY {count}"))
    }

    /// go-nsq's `redistributeRDY`, run every `rdy_redistribute_interval`.
    fn redistribute_rdy(self: &Arc<Self>) {
        let mut st = lock(&self.state);
        if st.backoff_timeout || st.conns.is_empty() {
            return;
        }
        let n = st.conns.len();
        let in_backoff = st.backoff_counter > 0;
        if needs_redistribution(n, st.max_in_flight, in_backoff) {
            st.need_redistribute = true;
        }
        if !std::mem::take(&mut st.need_redistribute) {
            return;
        }
        let now = Instant::now();
        let mut possible: Vec<Arc<ConnHandle>> = st.conns.values().cloned().collect();
        for c in possible.clone() {
            let (rdy, msg_age, rdy_age) = {
                let r = lock(&c.rdy);
                (r.rdy, now - r.last_msg_time, now - r.last_rdy_time)
            };
            if rdy > 0
                && (msg_age > self.config.low_rdy_idle_timeout
                    || rdy_age > self.config.low_rdy_timeout)
            {
                log::debug!("({}) idle connection, giving up RDY", c.addr);
                self.update_rdy(&mut st, &c, 0);
            }
        }
        let mut available = if in_backoff {
            1 - st.total_rdy
        } else {
            st.max_in_flight - st.total_rdy
        };
        while !possible.is_empty() && available > 0 {
            available -= 1;
            let i = rand::random::<usize>() % possible.len();
            let c = possible.swap_remove(i);
            log::debug!("({}) redistributing RDY", c.addr);
            self.update_rdy(&mut st, &c, 1);
        }
    }

    /// A connection has closed: forget it, then reconnect or ask lookupd, as go-nsq does.
    fn on_conn_close(self: &Arc<Self>, c: &Arc<ConnHandle>) {
        let mut st = lock(&self.state);
        let rdy = c.rdy();
        st.total_rdy -= rdy;
        let had_retry = match st.rdy_retry.remove(&c.addr) {
            Some(t) => {
                t.abort();
                true
            }
            None => false,
        };
        if st.conns.get(&c.addr).is_some_and(|x| Arc::ptr_eq(x, c)) {
            st.conns.remove(&c.addr);
        }
        let left = st.conns.len();
        log::warn!(
            "[{}/{}] there are {left} connections left alive",
            self.topic,
            self.channel
        );
        if (had_retry || rdy > 0)
            && (i64::try_from(left).ok() == Some(st.max_in_flight) || st.backoff_counter > 0)
        {
            st.need_redistribute = true;
        }
        if st.stopping {
            if left == 0 && st.pending.is_empty() {
                self.finish_stop(&mut st);
            }
            return;
        }
        if !st.lookupds.is_empty() {
            self.recheck.notify_one();
        } else if st.nsqd_addrs.contains(&c.addr) {
            tokio::spawn(reconnect_loop(self.clone(), c.addr.clone()));
        }
    }
}

/// Retries a direct address every `lookupd_poll_interval` until it connects, is removed or the
/// consumer stops.
async fn reconnect_loop(shared: Arc<Shared>, addr: String) {
    let mut exiting = shared.exiting.subscribe();
    loop {
        log::info!(
            "({addr}) re-connecting in {:?}",
            shared.config.lookupd_poll_interval
        );
        tokio::select! {
            _ = tokio::time::sleep(shared.config.lookupd_poll_interval) => {}
            _ = exiting.wait_for(|e| *e) => return,
        }
        if !lock(&shared.state).nsqd_addrs.contains(&addr) {
            return;
        }
        match connect_nsqd(&shared, &addr).await {
            Ok(()) => return,
            Err(Error::Stopped) => return,
            Err(e) => log::error!("({addr}) error connecting to nsqd - {e}"),
        }
    }
}

async fn lookupd_loop(shared: Arc<Shared>) {
    let interval = shared.config.lookupd_poll_interval;
    let jitter = interval
        .mul_f64((rand::random::<f64>() * shared.config.lookupd_poll_jitter).clamp(0.0, 1.0));
    let mut exiting = shared.exiting.subscribe();
    tokio::select! {
        _ = tokio::time::sleep(jitter) => {}
        _ = exiting.wait_for(|e| *e) => return,
    }
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shared.recheck.notified() => {}
            _ = exiting.wait_for(|e| *e) => return,
        }
        query_lookupd(&shared).await;
    }
}

/// Asks the lookupds in turn (up to three tries) for the topic's producers and connects to the
/// new ones; connections to producers no longer listed stay until they close.
async fn query_lookupd(shared: &Arc<Shared>) {
    let timeout = shared.config.lookupd_poll_timeout;
    for _ in 0..3 {
        let url = {
            let mut st = lock(&shared.state);
            if st.lookupds.is_empty() {
                return;
            }
            if st.lookupd_index >= st.lookupds.len() {
                st.lookupd_index = 0;
            }
            let url = st
                .lookupds
                .get(st.lookupd_index)
                .cloned()
                .unwrap_or_default();
            st.lookupd_index = (st.lookupd_index + 1) % st.lookupds.len();
            url
        };
        log::info!("querying nsqlookupd {url}");
        let auth =
            if !shared.config.auth_secret.is_empty() && !shared.config.skip_lookupd_authorization {
                Some(shared.config.auth_secret.clone())
            } else {
                None
            };
        match crate::lookup::query_url(&url, timeout, auth.as_deref()).await {
            Ok(producers) => {
                for p in producers {
                    let addr = p.tcp_address();
                    if let Err(e) = connect_nsqd(shared, &addr).await {
                        log::error!("({addr}) error connecting to nsqd - {e}");
                    }
                }
                return;
            }
            Err(e) => {
                log::error!("error querying nsqlookupd ({url}) - {e}");
            }
        }
    }
}

async fn rdy_loop(shared: Weak<Shared>, mut exiting: watch::Receiver<bool>, every: Duration) {
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = exiting.wait_for(|e| *e) => return,
        }
        match shared.upgrade() {
            Some(s) => s.redistribute_rdy(),
            None => return,
        }
    }
}

async fn connect_nsqd(shared: &Arc<Shared>, addr: &str) -> Result<(), Error> {
    {
        let mut st = lock(&shared.state);
        if st.stopping {
            return Err(Error::Stopped);
        }
        if st.conns.contains_key(addr) || st.pending.contains(addr) {
            return Ok(());
        }
        st.pending.insert(addr.to_string());
        if !st.nsqd_addrs.iter().any(|a| a == addr) {
            st.nsqd_addrs.push(addr.to_string());
        }
    }
    log::info!("({addr}) connecting to nsqd");
    let result = subscribe(shared, addr).await;
    let mut st = lock(&shared.state);
    st.pending.remove(addr);
    let (connected, max_rdy) = match result {
        Ok(x) => x,
        Err(e) => {
            if st.stopping && st.conns.is_empty() && st.pending.is_empty() {
                shared.finish_stop(&mut st);
            }
            return Err(e);
        }
    };
    if st.stopping {
        if st.conns.is_empty() && st.pending.is_empty() {
            shared.finish_stop(&mut st);
        }
        return Err(Error::Stopped);
    }
    if max_rdy < st.max_in_flight {
        log::warn!(
            "({addr}) max RDY count {max_rdy} < consumer max in flight {}, truncation possible",
            st.max_in_flight
        );
    }
    let Some(msg_tx) = st.msg_tx.clone() else {
        return Err(Error::Stopped);
    };
    let conn::Connected { reader, writer, .. } = connected;
    let now = Instant::now();
    let handle = Arc::new(ConnHandle {
        addr: addr.to_string(),
        consumer: Arc::downgrade(shared),
        outbox: Arc::new(conn::Outbox::default()),
        in_flight: AtomicI64::new(0),
        burst: AtomicBool::new(false),
        drained: Notify::new(),
        closing: AtomicBool::new(false),
        max_rdy,
        rdy: Mutex::new(ConnRdy {
            rdy: 0,
            last_rdy_time: now,
            last_msg_time: now,
        }),
    });
    let writer_task = tokio::spawn(write_loop(handle.clone(), writer));
    tokio::spawn(read_loop(
        shared.clone(),
        handle.clone(),
        reader,
        writer_task,
        msg_tx,
    ));
    st.conns.insert(addr.to_string(), handle);
    if !st.rdy_loop {
        st.rdy_loop = true;
        tokio::spawn(rdy_loop(
            Arc::downgrade(shared),
            shared.exiting.subscribe(),
            shared.config.rdy_redistribute_interval,
        ));
    }
    // Every connection's share shrinks when one is added; lowering the largest first frees
    // room for the new one instead of leaving it to a retry.
    let mut conns: Vec<_> = st.conns.values().cloned().collect();
    conns.sort_by_key(|c| std::cmp::Reverse(c.rdy()));
    for c in conns {
        shared.maybe_update_rdy(&mut st, &c);
    }
    Ok(())
}

/// Connects and sends SUB, waiting for nsqd's answer so a refused subscription is reported.
async fn subscribe(shared: &Arc<Shared>, addr: &str) -> Result<(conn::Connected, i64), Error> {
    let mut c = conn::connect(addr, &shared.config).await?;
    let mut sub = Vec::new();
    conn::put_line(
        &mut sub,
        &format!("SUB {} {}", shared.topic, shared.channel),
    );
    c.writer.write(&sub).await?;
    loop {
        match c.reader.next_frame().await? {
            f if f.is_heartbeat() => {
                let mut nop = Vec::new();
                conn::put_line(&mut nop, "NOP");
                c.writer.write(&nop).await?;
            }
            Frame::Response(_) => break,
            Frame::Error(e) => return Err(conn::server_error(addr, &e)),
            Frame::Message(_) => {
                return Err(Error::Protocol {
                    addr: addr.to_string(),
                    reason: "message before the subscription was confirmed".into(),
                })
            }
        }
    }
    let max_rdy = c.max_rdy_count;
    Ok((c, max_rdy))
}

type ReadHalf = conn::FrameReader<tokio::io::ReadHalf<Box<dyn conn::Io>>>;

/// Reads one connection's frames until nsqd confirms CLS or the connection fails, then waits
/// for the messages still in flight, closes and tells the consumer.
async fn read_loop(
    shared: Arc<Shared>,
    c: Arc<ConnHandle>,
    mut reader: ReadHalf,
    writer_task: tokio::task::JoinHandle<Option<Error>>,
    msg_tx: mpsc::UnboundedSender<Message>,
) {
    let addr = c.addr.clone();
    let shared_addr: Arc<str> = Arc::from(addr.as_str());
    let mut force = shared.force.subscribe();
    let max_attempts = shared.config.max_attempts;
    loop {
        if !reader.frame_ready() && c.burst.swap(false, Ordering::SeqCst) {
            c.drained.notify_waiters();
        }
        let frame = tokio::select! {
            f = reader.next_frame() => f,
            _ = force.wait_for(|f| *f) => break,
        };
        if reader.frame_ready() {
            c.burst.store(true, Ordering::SeqCst);
        }
        match frame {
            Err(e) => {
                if !(c.closing.load(Ordering::SeqCst) && matches!(e, Error::Closed { .. })) {
                    log::error!("({addr}) IO error - {e}");
                }
                break;
            }
            Ok(f) if f.is_heartbeat() => {
                if !c.send("NOP") {
                    break;
                }
            }
            Ok(Frame::Response(b)) if b.as_ref() == nsq_protocol::frame::CLOSE_WAIT => {
                log::info!("({addr}) received CLOSE_WAIT from nsqd");
                break;
            }
            Ok(Frame::Response(_)) => {}
            Ok(Frame::Error(b)) => {
                shared.errors_received.fetch_add(1, Ordering::Relaxed);
                log::error!("({addr}) protocol error - {}", String::from_utf8_lossy(&b));
            }
            Ok(Frame::Message(payload)) => {
                let Some(m) = nsq_protocol::Message::decode(&payload) else {
                    log::error!("({addr}) IO error - not enough data to decode valid message");
                    break;
                };
                c.in_flight.fetch_add(1, Ordering::SeqCst);
                lock(&c.rdy).last_msg_time = Instant::now();
                shared.received.fetch_add(1, Ordering::Relaxed);
                let msg = Message::delivered(m, shared_addr.clone(), c.clone());
                if max_attempts > 0 && msg.attempts > max_attempts {
                    log::warn!(
                        "msg {} attempted {} times, giving up",
                        String::from_utf8_lossy(msg.id.as_bytes()),
                        msg.attempts
                    );
                    msg.finish();
                    continue;
                }
                // Once stopping, a message not yet handed over goes straight back to nsqd, so
                // the stop waits only for work the caller has started.
                if shared.stopping.load(Ordering::Acquire) {
                    msg.requeue_without_backoff(Some(Duration::ZERO));
                } else if let Err(mpsc::error::SendError(msg)) = msg_tx.send(msg) {
                    // Nobody can receive it any more; nsqd redelivers it elsewhere.
                    msg.requeue_without_backoff(Some(Duration::ZERO));
                }
            }
        }
    }
    c.closing.store(true, Ordering::SeqCst);
    drop(msg_tx);
    drop(reader);
    loop {
        let drained = c.drained.notified();
        if c.in_flight.load(Ordering::SeqCst) <= 0 || *force.borrow() {
            break;
        }
        tokio::select! {
            _ = drained => {}
            _ = force.wait_for(|f| *f) => break,
        }
    }
    c.outbox.close();
    if let Ok(Some(e)) = writer_task.await {
        log::error!("({addr}) IO error - {e}");
    }
    log::info!("({addr}) connection closed");
    shared.on_conn_close(&c);
}

/// Longest a small batch of commands waits for company (see [`write_loop`]).
const HOLD_TIME: Duration = Duration::from_millis(1);

/// Writes what is appended to the connection's outbox until it is closed or a write fails.
///
/// While messages delivered on this connection are still unanswered, their FINs are about to
/// follow, so a small batch waits (until nothing is in flight, [`conn::HOLD_BYTES`] are queued,
/// or [`HOLD_TIME`] passed) and goes out with them: nsqd then reads hundreds of FINs per read
/// instead of a few, which is what bounds a consumer's throughput against Go's nsqd. An idle
/// consumer answering one message writes at once.
async fn write_loop(
    c: Arc<ConnHandle>,
    mut writer: conn::FrameWriter<tokio::io::WriteHalf<conn::BoxIo>>,
) -> Option<Error> {
    let mut batch = Vec::with_capacity(16 * 1024);
    loop {
        let wake = c.outbox.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let closing = c.outbox.take(&mut batch);
        if batch.is_empty() {
            if closing {
                c.outbox.kill();
                writer.shutdown().await;
                return None;
            }
            wake.await;
            continue;
        }
        if !closing && batch.len() < conn::HOLD_BYTES {
            let deadline = tokio::time::Instant::now() + HOLD_TIME;
            loop {
                let settled = c.drained.notified();
                tokio::pin!(settled);
                settled.as_mut().enable();
                let expecting =
                    c.in_flight.load(Ordering::SeqCst) > 0 || c.burst.load(Ordering::SeqCst);
                if !expecting || batch.len() + c.outbox.queued() >= conn::HOLD_BYTES {
                    break;
                }
                tokio::select! {
                    _ = &mut settled => {}
                    _ = &mut wake => wake.set(c.outbox.notified()),
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            c.outbox.take(&mut batch);
        }
        let r = writer.write(&batch).await;
        batch.clear();
        if let Err(e) = r {
            c.outbox.kill();
            return Some(e);
        }
    }
}

/// go-nsq's `perConnMaxInFlight`: an even share of `max_in_flight`, at least 1 and at most
/// `max_in_flight`.
pub(crate) fn per_conn_max_in_flight(max_in_flight: i64, conns: usize) -> i64 {
    let b = max_in_flight as f64;
    let s = b / conns.max(1) as f64;
    s.max(1.0).min(b) as i64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RdyPlan {
    Send(i64),
    /// Nothing left under `max_in_flight` for this connection.
    OverMaxInFlight,
}

/// The RDY count to send: capped by nsqd's max RDY and by what `max_in_flight` leaves once the
/// other connections' RDY counts are counted.
pub(crate) fn clamp_rdy(
    count: i64,
    max_rdy: i64,
    conn_rdy: i64,
    total_rdy: i64,
    max_in_flight: i64,
) -> RdyPlan {
    let count = count.min(max_rdy);
    let max_possible = max_in_flight - total_rdy + conn_rdy;
    if max_possible > 0 && max_possible < count {
        return RdyPlan::Send(max_possible);
    }
    if max_possible <= 0 && count > 0 {
        return RdyPlan::OverMaxInFlight;
    }
    RdyPlan::Send(count)
}

/// Whether the RDY counts must be redistributed: more connections than `max_in_flight`, or in
/// backoff with more than one connection.
pub(crate) fn needs_redistribution(conns: usize, max_in_flight: i64, in_backoff: bool) -> bool {
    i64::try_from(conns).unwrap_or(i64::MAX) > max_in_flight || (in_backoff && conns > 1)
}

/// The backoff for `attempt`: `multiplier * 2^attempt`; full jitter takes `random` (in
/// `[0, 1)`) of that.
pub(crate) fn backoff_duration(
    strategy: BackoffStrategy,
    multiplier: Duration,
    attempt: u32,
    random: f64,
) -> Duration {
    let full = multiplier.saturating_mul(2u32.saturating_pow(attempt.min(31)));
    match strategy {
        BackoffStrategy::Exponential => full,
        BackoffStrategy::FullJitter => full.mul_f64(random.clamp(0.0, 1.0)),
    }
}

/// go-nsq's backoff level step: a finish steps down, a requeue with backoff steps up unless the
/// next level's backoff would pass `max`. Returns the new level and whether it changed.
pub(crate) fn next_backoff_level(
    level: u32,
    signal: Signal,
    calc: impl Fn(u32) -> Duration,
    max: Duration,
) -> (u32, bool) {
    match signal {
        Signal::Resume if level > 0 => (level - 1, true),
        Signal::Backoff if calc(level + 1) <= max => (level + 1, true),
        _ => (level, false),
    }
}

/// go-nsq's default requeue delay: `default * attempts`, at most `max`.
pub(crate) fn requeue_delay(default: Duration, attempts: u16, max: Duration) -> Duration {
    default.saturating_mul(u32::from(attempts)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_conn_share() {
        assert_eq!(per_conn_max_in_flight(1, 1), 1);
        assert_eq!(per_conn_max_in_flight(10, 3), 3);
        assert_eq!(per_conn_max_in_flight(2, 5), 1);
        assert_eq!(per_conn_max_in_flight(100, 0), 100);
        assert_eq!(per_conn_max_in_flight(0, 2), 0);
    }

    #[test]
    fn rdy_clamping() {
        // Plenty left: capped only by nsqd's max.
        assert_eq!(clamp_rdy(3000, 2500, 0, 0, 5000), RdyPlan::Send(2500));
        // Only what max_in_flight leaves.
        assert_eq!(clamp_rdy(5, 2500, 0, 8, 10), RdyPlan::Send(2));
        // This connection's own RDY counts as available.
        assert_eq!(clamp_rdy(5, 2500, 3, 10, 10), RdyPlan::Send(3));
        // Nothing left.
        assert_eq!(clamp_rdy(1, 2500, 0, 2, 2), RdyPlan::OverMaxInFlight);
        // Going to zero is always allowed.
        assert_eq!(clamp_rdy(0, 2500, 1, 3, 2), RdyPlan::Send(0));
    }

    #[test]
    fn redistribution_needed() {
        assert!(needs_redistribution(3, 2, false));
        assert!(!needs_redistribution(2, 2, false));
        assert!(needs_redistribution(2, 10, true));
        assert!(!needs_redistribution(1, 10, true));
    }

    #[test]
    fn backoff_arithmetic() {
        let s = Duration::from_secs(1);
        let e = BackoffStrategy::Exponential;
        assert_eq!(backoff_duration(e, s, 1, 0.5), Duration::from_secs(2));
        assert_eq!(backoff_duration(e, s, 3, 0.5), Duration::from_secs(8));
        assert_eq!(
            backoff_duration(BackoffStrategy::FullJitter, s, 3, 0.25),
            Duration::from_secs(2)
        );
        // No overflow at absurd levels.
        assert!(backoff_duration(e, s, 200, 0.0) > Duration::from_secs(1 << 30));

        let calc = |n| backoff_duration(e, s, n, 0.0);
        let max = Duration::from_secs(120);
        assert_eq!(next_backoff_level(0, Signal::Backoff, calc, max), (1, true));
        assert_eq!(
            next_backoff_level(6, Signal::Backoff, calc, max),
            (6, false)
        );
        assert_eq!(next_backoff_level(5, Signal::Backoff, calc, max), (6, true));
        assert_eq!(next_backoff_level(2, Signal::Resume, calc, max), (1, true));
        assert_eq!(next_backoff_level(0, Signal::Resume, calc, max), (0, false));
        assert_eq!(
            next_backoff_level(3, Signal::Continue, calc, max),
            (3, false)
        );
    }

    #[test]
    fn requeue_delays() {
        let d = Duration::from_secs(90);
        let max = Duration::from_secs(900);
        assert_eq!(requeue_delay(d, 1, max), Duration::from_secs(90));
        assert_eq!(requeue_delay(d, 3, max), Duration::from_secs(270));
        assert_eq!(requeue_delay(d, 50, max), max);
    }
}
