//! A crash harness for nsqd.
//!
//! [`run`] starts an nsqd binary on loopback ephemeral ports with a persistent data directory,
//! runs publishers and consumers against it, kills nsqd with SIGKILL at a random moment of every
//! cycle, restarts it on the same data directory (reading its new ports from the
//! `TCP: listening on` line) and lets everyone reconnect. At the end the publishers stop, nsqd
//! keeps running cleanly until every channel is drained, and the [`Report`] compares, per
//! channel, what was acknowledged with what was delivered.
//!
//! Each publisher and consumer is a thread with its own single-threaded tokio runtime, talking
//! to nsqd through an `nsq_client::Producer` or `nsq_client::Consumer`. Every connection gets a
//! fresh one, made for the nsqd run the harness says is current; the client's own reconnecting
//! and go-nsq's attempt limit and backoff are switched off so they cannot hide or shape what
//! nsqd does.
//!
//! Every message body starts with a unique 16-hex-digit id. A message counts as acknowledged
//! only when the `PUB`/`MPUB`/`DPUB` carrying it got `OK`. Consumers record each delivery with
//! its attempt count, the nsqd run it came from, when it arrived and how it was answered. They
//! `FIN` everything unless [`Config::req_share`] asks them to answer some deliveries with a
//! delayed `REQ`; during the final drain they `FIN` everything. A message is done on a channel
//! once it has been `FIN`ed there, so an acknowledged message that was only ever requeued on a
//! channel counts as lost there.
#![forbid(unsafe_code)]

pub mod wire;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

/// How long nsqd may take to log its listen lines after being started.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a publisher waits for the answer to one PUB/MPUB/DPUB.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often waiting workers look at their stop flags and whether their nsqd is still current.
const POLL: Duration = Duration::from_millis(50);
/// What a worker thread that panicked leaves behind.
const PANICKED: &str = "a publisher or consumer thread panicked";
/// Slack, in microseconds, before a delivery counts as earlier than its delay allows: nsqd and
/// the harness read their clocks at slightly different moments.
const EARLY_SLACK_US: u64 = 2_000;

/// What to run and how hard.
#[derive(Debug, Clone)]
pub struct Config {
    pub nsqd_bin: PathBuf,
    /// `--durability` passed to nsqd (`memory`, `write` or `fsync`); `None` passes nothing.
    pub durability: Option<String>,
    pub cycles: u32,
    pub seconds_per_cycle: f64,
    pub publishers: usize,
    pub consumers: usize,
    pub channels: usize,
    pub topic: String,
    /// Messages per PUB/MPUB are drawn from `1..=max_batch`.
    pub max_batch: usize,
    /// Share (0 to 1) of publish commands sent as a one-message `DPUB` instead of PUB/MPUB.
    pub dpub_share: f64,
    /// The `DPUB` delay in milliseconds is drawn from this range.
    pub defer_ms: RangeInclusive<u32>,
    /// Share (0 to 1) of deliveries answered with `REQ` instead of `FIN` (outside the drain).
    pub req_share: f64,
    /// The `REQ` delay in milliseconds is drawn from this range.
    pub req_delay_ms: RangeInclusive<u32>,
    /// RDY each consumer sends.
    pub rdy: u32,
    pub seed: u64,
    /// How long the final drain may take beyond the longest `DPUB`/`REQ` delay in use.
    pub drain_timeout: Duration,
    /// Keep the data directory here instead of a temporary directory.
    pub data_path: Option<PathBuf>,
    /// More arguments for nsqd.
    pub extra_args: Vec<String>,
    /// Echo nsqd's log and per-cycle progress to stderr.
    pub verbose: bool,
}

impl Config {
    pub fn new(nsqd_bin: impl Into<PathBuf>) -> Config {
        Config {
            nsqd_bin: nsqd_bin.into(),
            durability: Some("write".into()),
            cycles: 20,
            seconds_per_cycle: 1.0,
            publishers: 2,
            consumers: 2,
            channels: 2,
            topic: "crash".into(),
            max_batch: 20,
            dpub_share: 0.0,
            defer_ms: 1000..=5000,
            req_share: 0.0,
            req_delay_ms: 0..=3000,
            rdy: 200,
            seed: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
            drain_timeout: Duration::from_secs(60),
            data_path: None,
            extra_args: Vec::new(),
            verbose: false,
        }
    }

    /// True when the level promises that a killed process loses nothing acknowledged.
    pub fn expects_no_loss(&self) -> bool {
        !matches!(self.durability.as_deref(), Some("memory"))
    }

    fn validate(&self) -> Result<(), String> {
        if self.publishers == 0 || self.consumers == 0 || self.channels == 0 {
            return Err("publishers, consumers and channels must be at least 1".into());
        }
        if self.consumers < self.channels {
            return Err(format!(
                "{} consumers cannot cover {} channels",
                self.consumers, self.channels
            ));
        }
        if !(self.seconds_per_cycle.is_finite() && self.seconds_per_cycle > 0.0) {
            return Err("seconds per cycle must be positive".into());
        }
        if self.max_batch == 0 || self.rdy == 0 {
            return Err("max batch and RDY must be at least 1".into());
        }
        for (name, share) in [("DPUB", self.dpub_share), ("REQ", self.req_share)] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("the {name} share must be between 0 and 1"));
            }
        }
        for (name, r) in [("DPUB", &self.defer_ms), ("REQ", &self.req_delay_ms)] {
            if r.is_empty() {
                return Err(format!("the {name} delay range is empty"));
            }
        }
        Ok(())
    }

    /// The longest delay a message may be held for by nsqd when the drain begins.
    pub fn longest_delay(&self) -> Duration {
        let mut ms = 0;
        if self.dpub_share > 0.0 {
            ms = ms.max(*self.defer_ms.end());
        }
        if self.req_share > 0.0 {
            ms = ms.max(*self.req_delay_ms.end());
        }
        Duration::from_millis(ms.into())
    }
}

/// What happened on one channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelReport {
    pub name: String,
    /// Messages whose PUB/MPUB/DPUB got `OK` (every channel existed before publishing began).
    pub acknowledged: usize,
    /// Of `acknowledged`, those published with `DPUB`.
    pub acknowledged_deferred: usize,
    /// Distinct messages delivered at least once.
    pub delivered: usize,
    /// Acknowledged but never `FIN`ed: never delivered, or only ever requeued.
    pub lost: usize,
    /// Of `lost`, those published with `DPUB`.
    pub lost_deferred: usize,
    /// Of `lost`, those that had been delivered and answered with `REQ`.
    pub lost_requeued: usize,
    /// A few of the lost ids, for investigation.
    pub lost_sample: Vec<String>,
    /// For the first few lost ids: how each was published, which nsqd run acknowledged it and
    /// how its last delivery on the channel went.
    pub lost_detail: Vec<String>,
    /// Deliveries of a message after it had been `FIN`ed (at-least-once allows them after a
    /// crash).
    pub duplicates: usize,
    /// Duplicates delivered by the same nsqd run that had been sent the `FIN` (consumers answer
    /// at once, so these point at a server problem rather than a crash).
    pub same_run_duplicates: usize,
    /// Deliveries answered with `REQ`.
    pub requeued: usize,
    /// Deliveries that came, in the nsqd run that took the `DPUB` or `REQ`, before its delay
    /// had passed.
    pub early: usize,
    /// Redeliveries after a `REQ`, in the same nsqd run, whose attempt count did not go up.
    pub attempts_not_raised: usize,
    /// Redeliveries that reused an attempt count already seen for that message.
    pub repeated_attempts: usize,
    /// Delivered messages whose publish never got `OK` (the crash or an error came first).
    pub unconfirmed_delivered: usize,
    /// Delivered bodies that no publisher ever sent (damage).
    pub phantoms: usize,
    pub max_attempts: u16,
}

impl ChannelReport {
    /// Sums every count (message-channel pairs) and keeps the highest attempt count.
    fn add(&mut self, c: &ChannelReport) {
        self.acknowledged += c.acknowledged;
        self.acknowledged_deferred += c.acknowledged_deferred;
        self.delivered += c.delivered;
        self.lost += c.lost;
        self.lost_deferred += c.lost_deferred;
        self.lost_requeued += c.lost_requeued;
        self.duplicates += c.duplicates;
        self.same_run_duplicates += c.same_run_duplicates;
        self.requeued += c.requeued;
        self.early += c.early;
        self.attempts_not_raised += c.attempts_not_raised;
        self.repeated_attempts += c.repeated_attempts;
        self.unconfirmed_delivered += c.unconfirmed_delivered;
        self.phantoms += c.phantoms;
        self.max_attempts = self.max_attempts.max(c.max_attempts);
    }
}

/// The outcome of a harness run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub durability: String,
    pub seed: u64,
    pub kills: Vec<Duration>,
    /// From each SIGKILL to the restarted nsqd's listen lines (recovery time).
    pub restarts: Vec<Duration>,
    /// `DPUB` share and delay range (ms) the run used.
    pub dpub_share: f64,
    pub defer_ms: (u32, u32),
    /// `REQ` share and delay range (ms) the run used.
    pub req_share: f64,
    pub req_delay_ms: (u32, u32),
    pub sent: u64,
    pub acknowledged: usize,
    /// Of `acknowledged`, those published with `DPUB`.
    pub acknowledged_deferred: usize,
    pub unconfirmed: usize,
    pub publish_errors: u64,
    pub publish_error_sample: Vec<String>,
    pub response_timeouts: u64,
    pub deliveries: u64,
    /// Consumer connections that nsqd closed while it was not being killed (after a fatal
    /// error frame, for instance; nsqd's log says why).
    pub consumer_disconnects: u64,
    /// Error frames nsqd sent to consumers (a FIN or REQ it did not accept, for instance).
    pub consumer_errors: u64,
    pub channels: Vec<ChannelReport>,
    /// Distinct lost messages, and how many of them were lost on every channel.
    pub lost_messages: usize,
    pub lost_on_every_channel: usize,
    pub drained: bool,
    pub drain_time: Duration,
    pub final_exit: Option<i32>,
    pub elapsed: Duration,
    /// nsqd log lines at WARNING level or above (first few).
    pub log_problems: Vec<String>,
    pub log_problem_count: usize,
}

impl Report {
    /// Kill/restart rounds carried out.
    pub fn rounds(&self) -> usize {
        self.kills.len()
    }

    /// Lost message-channel pairs.
    pub fn lost(&self) -> usize {
        self.channels.iter().map(|c| c.lost).sum()
    }

    /// Lost message-channel pairs whose message was published with `DPUB`.
    pub fn lost_deferred(&self) -> usize {
        self.channels.iter().map(|c| c.lost_deferred).sum()
    }

    /// Every channel's counts added up.
    pub fn total(&self) -> ChannelReport {
        let mut t = ChannelReport {
            name: "total".into(),
            ..ChannelReport::default()
        };
        for c in &self.channels {
            t.add(c);
        }
        t
    }

    pub fn duplicates(&self) -> usize {
        self.channels.iter().map(|c| c.duplicates).sum()
    }

    pub fn phantoms(&self) -> usize {
        self.channels.iter().map(|c| c.phantoms).sum()
    }

    /// Anomalies that are not loss but should never happen at any level.
    pub fn anomalies(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.channels {
            if c.phantoms > 0 {
                out.push(format!(
                    "{}: {} delivered bodies were never published",
                    c.name, c.phantoms
                ));
            }
            if c.same_run_duplicates > 0 {
                out.push(format!(
                    "{}: {} duplicates within a single nsqd run",
                    c.name, c.same_run_duplicates
                ));
            }
            if c.early > 0 {
                out.push(format!(
                    "{}: {} deliveries before their DPUB/REQ delay had passed",
                    c.name, c.early
                ));
            }
            if c.attempts_not_raised > 0 {
                out.push(format!(
                    "{}: {} redeliveries after a REQ without a higher attempt count",
                    c.name, c.attempts_not_raised
                ));
            }
        }
        if !self.drained {
            out.push(format!(
                "channels not drained after {:.1}s",
                self.drain_time.as_secs_f64()
            ));
        }
        if self.final_exit != Some(0) {
            out.push(format!(
                "final clean shutdown exited with {:?}",
                self.final_exit
            ));
        }
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mean_kill = if self.kills.is_empty() {
            0.0
        } else {
            self.kills.iter().map(|d| d.as_secs_f64()).sum::<f64>() / self.kills.len() as f64
        };
        writeln!(
            f,
            "durability={} seed={} kills={} (mean {:.2}s into a cycle) elapsed={:.1}s",
            self.durability,
            self.seed,
            self.kills.len(),
            mean_kill,
            self.elapsed.as_secs_f64()
        )?;
        let delays = self.dpub_share > 0.0 || self.req_share > 0.0;
        if delays {
            writeln!(
                f,
                "delays: dpub-share={} defer-ms={}..{} req-share={} req-delay-ms={}..{}",
                self.dpub_share,
                self.defer_ms.0,
                self.defer_ms.1,
                self.req_share,
                self.req_delay_ms.0,
                self.req_delay_ms.1
            )?;
        }
        let max_restart = self.restarts.iter().max().copied().unwrap_or_default();
        let mean_restart = if self.restarts.is_empty() {
            0.0
        } else {
            self.restarts.iter().map(|d| d.as_secs_f64()).sum::<f64>() / self.restarts.len() as f64
        };
        writeln!(
            f,
            "restart after SIGKILL: mean {mean_restart:.3}s, max {:.3}s",
            max_restart.as_secs_f64()
        )?;
        writeln!(
            f,
            "published: sent={} acknowledged={} unconfirmed={} error-frames={} response-timeouts={}",
            self.sent,
            self.acknowledged,
            self.unconfirmed,
            self.publish_errors,
            self.response_timeouts
        )?;
        for e in &self.publish_error_sample {
            writeln!(f, "  publish error: {e}")?;
        }
        writeln!(
            f,
            "acknowledged by kind: pub/mpub={} dpub={}",
            self.acknowledged - self.acknowledged_deferred,
            self.acknowledged_deferred
        )?;
        if self.consumer_errors > 0 {
            writeln!(
                f,
                "consumers received {} error frame(s) (nsqd's log says which)",
                self.consumer_errors
            )?;
        }
        if self.consumer_disconnects > 0 {
            writeln!(
                f,
                "nsqd closed {} consumer connection(s) outside a kill (its log says why)",
                self.consumer_disconnects
            )?;
        }
        writeln!(
            f,
            "drain: {} in {:.2}s, final SIGTERM exit={:?}, deliveries={}",
            if self.drained {
                "complete"
            } else {
                "INCOMPLETE"
            },
            self.drain_time.as_secs_f64(),
            self.final_exit,
            self.deliveries
        )?;
        writeln!(
            f,
            "{:<10} {:>12} {:>12} {:>8} {:>11} {:>9} {:>9} {:>12} {:>8} {:>6}",
            "channel",
            "acknowledged",
            "delivered",
            "LOST",
            "duplicates",
            "same-run",
            "rep-att",
            "unconfirmed",
            "phantom",
            "max-att"
        )?;
        let total = self.total();
        for c in self.channels.iter().chain([&total]) {
            writeln!(
                f,
                "{:<10} {:>12} {:>12} {:>8} {:>11} {:>9} {:>9} {:>12} {:>8} {:>6}",
                c.name,
                c.acknowledged,
                c.delivered,
                c.lost,
                c.duplicates,
                c.same_run_duplicates,
                c.repeated_attempts,
                c.unconfirmed_delivered,
                c.phantoms,
                c.max_attempts
            )?;
            if !c.lost_sample.is_empty() {
                writeln!(f, "  lost ids (sample): {}", c.lost_sample.join(" "))?;
            }
            for l in &c.lost_detail {
                writeln!(f, "  lost {l}")?;
            }
        }
        if delays {
            writeln!(
                f,
                "{:<10} {:>12} {:>12} {:>12} {:>12} {:>8} {:>10}",
                "channel", "ack-dpub", "LOST-dpub", "lost-reqd", "requeued", "early", "flat-att"
            )?;
            for c in self.channels.iter().chain([&total]) {
                writeln!(
                    f,
                    "{:<10} {:>12} {:>12} {:>12} {:>12} {:>8} {:>10}",
                    c.name,
                    c.acknowledged_deferred,
                    c.lost_deferred,
                    c.lost_requeued,
                    c.requeued,
                    c.early,
                    c.attempts_not_raised
                )?;
            }
        }
        if self.lost_messages > 0 {
            writeln!(
                f,
                "lost: {} distinct message(s), {} of them on every channel",
                self.lost_messages, self.lost_on_every_channel
            )?;
        }
        if self.log_problem_count > 0 {
            writeln!(
                f,
                "nsqd logged {} warning/error line(s), first ones:",
                self.log_problem_count
            )?;
            for l in &self.log_problems {
                writeln!(f, "  {l}")?;
            }
        }
        let anomalies = self.anomalies();
        for a in &anomalies {
            writeln!(f, "ANOMALY: {a}")?;
        }
        write!(
            f,
            "result: lost={} duplicates={} anomalies={} rounds={} lost-dpub={}",
            self.lost(),
            self.duplicates(),
            anomalies.len(),
            self.rounds(),
            self.lost_deferred()
        )
    }
}

// ---------------------------------------------------------------------------------------------
// nsqd processes
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Logs {
    lines: Mutex<Vec<String>>,
}

impl Logs {
    fn tail(&self, n: usize) -> String {
        let l = lock(&self.lines);
        l[l.len().saturating_sub(n)..].join("\n")
    }
}

enum StartEvent {
    Tcp(SocketAddr),
    Http(SocketAddr),
    Closed,
}

struct Daemon {
    child: Child,
    tcp: SocketAddr,
    http: SocketAddr,
    log_thread: Option<JoinHandle<()>>,
}

impl Daemon {
    fn start(cfg: &Config, data: &Path, run: u64, logs: &Arc<Logs>) -> Result<Daemon, String> {
        let mut args = vec![
            "--tcp-address=127.0.0.1:0".to_string(),
            "--http-address=127.0.0.1:0".to_string(),
            format!("--data-path={}", data.display()),
        ];
        if let Some(d) = &cfg.durability {
            args.push(format!("--durability={d}"));
        }
        args.extend(cfg.extra_args.iter().cloned());
        let mut child = Command::new(&cfg.nsqd_bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cfg.nsqd_bin.display()))?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("nsqd stderr not captured".into());
        };
        let (tx, rx) = mpsc::channel();
        let logs2 = logs.clone();
        let verbose = cfg.verbose;
        let log_thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                for (marker, make) in [
                    (
                        "TCP: listening on ",
                        StartEvent::Tcp as fn(SocketAddr) -> StartEvent,
                    ),
                    ("HTTP: listening on ", StartEvent::Http),
                ] {
                    if let Some(at) = line.find(marker) {
                        if let Ok(a) = line[at + marker.len()..].trim().parse() {
                            let _ = tx.send(make(a));
                        }
                    }
                }
                if verbose {
                    eprintln!("[run {run}] {line}");
                }
                lock(&logs2.lines).push(format!("[run {run}] {line}"));
            }
            let _ = tx.send(StartEvent::Closed);
        });
        let mut d = Daemon {
            child,
            tcp: unspecified(),
            http: unspecified(),
            log_thread: Some(log_thread),
        };
        let (mut tcp, mut http) = (None, None);
        let deadline = Instant::now() + START_TIMEOUT;
        while tcp.is_none() || http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(StartEvent::Tcp(a)) => tcp = Some(a),
                Ok(StartEvent::Http(a)) => http = Some(a),
                Ok(StartEvent::Closed) | Err(_) => {
                    let status = d.kill();
                    return Err(format!(
                        "nsqd run {run} did not start (status {status:?}); log tail:\n{}",
                        logs.tail(30)
                    ));
                }
            }
        }
        d.tcp = tcp.unwrap_or_else(unspecified);
        d.http = http.unwrap_or_else(unspecified);
        Ok(d)
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) -> Option<ExitStatus> {
        let _ = self.child.kill();
        let st = self.child.wait().ok();
        if let Some(t) = self.log_thread.take() {
            let _ = t.join();
        }
        st
    }

    /// SIGTERM, then wait for a clean exit (SIGKILL after `timeout`).
    fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::Term);
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    if let Some(t) = self.log_thread.take() {
                        let _ = t.join();
                    }
                    return Some(st);
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                _ => {
                    self.kill();
                    return None;
                }
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Workers
// ---------------------------------------------------------------------------------------------

/// Where workers connect: the current nsqd run and its TCP address, or none while it is down.
struct Shared {
    target: watch::Sender<Option<(u64, SocketAddr)>>,
    stop_publishing: AtomicBool,
    /// Set with `stop_publishing`: from then on consumers `FIN` everything.
    draining: AtomicBool,
    stop_consuming: AtomicBool,
    acknowledged: AtomicU64,
    deliveries: AtomicU64,
    /// The time base of every recorded send and delivery.
    began: Instant,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.began.elapsed().as_micros() as u64
    }

    fn set_target(&self, t: Option<(u64, SocketAddr)>) {
        self.target.send_replace(t);
    }

    /// Whether `(run, addr)` is still the nsqd to talk to. The target goes to `None` before a
    /// kill, so a worker that checks this before acting never takes the next run, which may
    /// listen on the same port, for the one it connected to.
    fn is_current(&self, t: (u64, SocketAddr)) -> bool {
        *self.target.borrow() == Some(t)
    }

    async fn wait_target(&self, stop: &AtomicBool) -> Option<(u64, SocketAddr)> {
        let mut rx = self.target.subscribe();
        loop {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            if let Some(t) = *rx.borrow_and_update() {
                return Some(t);
            }
            // The stop flags are plain atomics: look at them again now and then.
            if let Ok(Err(_)) = tokio::time::timeout(POLL, rx.changed()).await {
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// The client settings every worker uses. go-nsq's defaults would distort what the harness
/// measures: a message past `max_attempts` would be FINed without reaching the harness, a
/// requeue with backoff would throttle RDY, and the client's own reconnecting could land on
/// the next nsqd run behind the harness's back.
fn client_config(cfg: &Config) -> Result<nsq_client::Config, String> {
    let mut c = nsq_client::Config::new();
    c.user_agent = nsq_client::user_agent("crash_harness", env!("CARGO_PKG_VERSION"));
    c.max_in_flight = cfg.rdy as usize;
    c.max_attempts = 0;
    c.max_backoff_duration = Duration::ZERO;
    // Workers replace a lost connection themselves, with the run it belongs to, and stop the
    // old consumer within `POLL`; the client's own retry would wait this long first.
    c.lookupd_poll_interval = Duration::from_secs(300);
    c.dial_timeout = Duration::from_secs(2);
    c.write_timeout = Duration::from_secs(10);
    c.validate()
        .map_err(|e| format!("client configuration: {e}"))?;
    Ok(c)
}

/// A runtime of its own for each worker thread, so a busy consumer never delays a publisher's
/// answer (which would turn into a response timeout).
fn run_worker<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("worker runtime: {e}"))?;
    Ok(rt.block_on(f))
}

/// An acknowledged `DPUB`: the nsqd run that took it, when it was sent and its delay.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    id: u64,
    run: u64,
    sent_us: u64,
    defer_ms: u32,
}

#[derive(Default)]
struct PublisherOutcome {
    /// Acknowledged by PUB/MPUB, with the nsqd run that acknowledged them.
    acked: Vec<(u64, u64)>,
    acked_deferred: Vec<Deferred>,
    unconfirmed: Vec<u64>,
    sent: u64,
    errors: u64,
    error_sample: Vec<String>,
    timeouts: u64,
}

fn message_id(publisher: usize, seq: u64) -> u64 {
    ((publisher as u64 + 1) << 40) | seq
}

fn parse_id(body: &[u8]) -> Option<u64> {
    let hex = std::str::from_utf8(body.get(..16)?).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// How one publish command goes out.
enum Publish {
    Pub,
    Mpub,
    Dpub(u32),
}

async fn publisher(
    idx: usize,
    cfg: &Config,
    client: &nsq_client::Config,
    shared: &Shared,
) -> PublisherOutcome {
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ (0x9e37_79b9 * (idx as u64 + 1)));
    let mut out = PublisherOutcome::default();
    let mut seq = 0u64;
    'connect: while let Some((run, addr)) = shared.wait_target(&shared.stop_publishing).await {
        // A fresh producer for every connection: its answers then come from this run only.
        let Ok(producer) = nsq_client::Producer::new(&addr.to_string(), client.clone()) else {
            break;
        };
        // Connecting before drawing the next batch keeps a refused connection from using up
        // message ids, as a failed publish does.
        if producer.ping().await.is_err() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        while !shared.stop_publishing.load(Ordering::Acquire) {
            if !shared.is_current((run, addr)) {
                continue 'connect;
            }
            // No draw at a zero share, so a seed replays the same PUB/MPUB sequence as before
            // DPUB existed.
            let defer_ms = (cfg.dpub_share > 0.0 && rng.gen_bool(cfg.dpub_share))
                .then(|| rng.gen_range(cfg.defer_ms.clone()));
            let n = match defer_ms {
                Some(_) => 1,
                None => rng.gen_range(1..=cfg.max_batch),
            };
            let ids: Vec<u64> = (0..n)
                .map(|_| {
                    seq += 1;
                    message_id(idx, seq)
                })
                .collect();
            let bodies: Vec<Bytes> = ids
                .iter()
                .map(|id| {
                    let mut b = format!("{id:016x}").into_bytes();
                    b.resize(16 + rng.gen_range(0..64), b'.');
                    Bytes::from(b)
                })
                .collect();
            let how = match defer_ms {
                Some(ms) => Publish::Dpub(ms),
                None if n == 1 && rng.gen_bool(0.5) => Publish::Pub,
                None => Publish::Mpub,
            };
            out.sent += n as u64;
            let sent_us = shared.now_us();
            let first = bodies.first().cloned().unwrap_or_default();
            let answer = tokio::time::timeout(RESPONSE_TIMEOUT, async {
                match how {
                    Publish::Pub => producer.publish(&cfg.topic, first).await,
                    Publish::Mpub => producer.multi_publish(&cfg.topic, bodies).await,
                    Publish::Dpub(ms) => {
                        let delay = Duration::from_millis(ms.into());
                        producer.deferred_publish(&cfg.topic, delay, first).await
                    }
                }
            })
            .await;
            match answer {
                Ok(Ok(())) => {
                    shared.acknowledged.fetch_add(n as u64, Ordering::Relaxed);
                    match defer_ms {
                        Some(defer_ms) => {
                            out.acked_deferred.extend(ids.iter().map(|&id| Deferred {
                                id,
                                run,
                                sent_us,
                                defer_ms,
                            }))
                        }
                        None => out.acked.extend(ids.iter().map(|&id| (id, run))),
                    }
                }
                failed => {
                    out.unconfirmed.extend(ids);
                    let error = match failed {
                        Ok(Err(nsq_client::Error::Server { text, .. })) => Some(text),
                        Ok(Err(e @ nsq_client::Error::Protocol { .. })) => Some(e.to_string()),
                        Ok(Err(nsq_client::Error::Timeout { .. })) | Err(_) => {
                            out.timeouts += 1;
                            None
                        }
                        // The connection broke: nsqd was killed, most likely.
                        _ => None,
                    };
                    if let Some(e) = error {
                        out.errors += 1;
                        if out.error_sample.len() < 5 {
                            out.error_sample.push(e);
                        }
                    }
                    continue 'connect;
                }
            }
        }
        break;
    }
    out
}

#[derive(Debug, Clone, Copy)]
struct Delivery {
    id: u64,
    attempts: u16,
    run: u64,
    /// When it was handed over, on [`Shared::now_us`]'s time base.
    at_us: u64,
    /// `None`: answered with `FIN`; `Some(ms)`: with `REQ` and this delay.
    req_ms: Option<u32>,
}

#[derive(Default)]
struct ConsumerOutcome {
    deliveries: Vec<Delivery>,
    phantoms: u64,
    /// Connections nsqd closed while it was still the run to talk to.
    disconnects: u64,
    /// Error frames nsqd sent to consumers (`E_FIN_FAILED`, say): none is expected.
    errors: u64,
}

fn channel_name(i: usize) -> String {
    format!("c{i}")
}

async fn consumer(
    idx: usize,
    cfg: &Config,
    client: &nsq_client::Config,
    shared: &Shared,
) -> Result<ConsumerOutcome, String> {
    let channel = channel_name(idx % cfg.channels);
    let mut rng =
        StdRng::seed_from_u64(cfg.seed ^ 0x85eb_ca6b_c2b2_ae35u64.wrapping_mul(idx as u64 + 1));
    let mut out = ConsumerOutcome::default();
    while let Some((run, addr)) = shared.wait_target(&shared.stop_consuming).await {
        // A fresh consumer for every connection: every message it hands over then comes from
        // this run.
        let c = nsq_client::Consumer::new(&cfg.topic, &channel, client.clone())
            .map_err(|e| format!("consumer: {e}"))?;
        if c.connect_to_nsqd(&addr.to_string()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                m = c.recv() => match m {
                    Some(m) => {
                        consume(m, run, &mut out, cfg, shared, &mut rng);
                        continue;
                    }
                    None => break,
                },
                _ = tick.tick() => {}
            }
            if shared.stop_consuming.load(Ordering::Acquire) {
                out.errors += c.stats().errors_received;
                return Ok(out);
            }
            let current = shared.is_current((run, addr));
            if current && c.stats().connections > 0 {
                continue;
            }
            if current {
                out.disconnects += 1;
            }
            // What the client read before the connection went is still recorded and answered,
            // as it was sent; the stop ends `recv` once it is all handed over.
            c.stop();
            while let Some(m) = c.recv().await {
                consume(m, run, &mut out, cfg, shared, &mut rng);
            }
            out.errors += c.stats().errors_received;
            break;
        }
    }
    Ok(out)
}

/// Records one delivery and answers it.
fn consume(
    m: nsq_client::Message,
    run: u64,
    out: &mut ConsumerOutcome,
    cfg: &Config,
    shared: &Shared,
    rng: &mut StdRng,
) {
    let at_us = shared.now_us();
    shared.deliveries.fetch_add(1, Ordering::Relaxed);
    let Some(id) = parse_id(&m.body) else {
        out.phantoms += 1;
        m.finish();
        return;
    };
    // The drain must empty every channel, so nothing is requeued once it has begun.
    let req_ms = (cfg.req_share > 0.0
        && !shared.draining.load(Ordering::Acquire)
        && rng.gen_bool(cfg.req_share))
    .then(|| rng.gen_range(cfg.req_delay_ms.clone()));
    match req_ms {
        // Without backoff: the client would otherwise drop RDY to 0 after every REQ.
        Some(ms) => m.requeue_without_backoff(Some(Duration::from_millis(ms.into()))),
        None => m.finish(),
    }
    out.deliveries.push(Delivery {
        id,
        attempts: m.attempts,
        run,
        at_us,
        req_ms,
    });
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

fn http_ok(addr: SocketAddr, method: &str, path: &str) -> Result<Vec<u8>, String> {
    match wire::http(addr, method, path) {
        Ok((200, body)) => Ok(body),
        Ok((st, body)) => Err(format!(
            "{method} {path}: {st} {}",
            String::from_utf8_lossy(&body)
        )),
        Err(e) => Err(format!("{method} {path}: {e}")),
    }
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// True when every channel of the topic has nothing queued, in flight or deferred.
fn drained(cfg: &Config, http: SocketAddr) -> bool {
    let Ok(body) = http_ok(
        http,
        "GET",
        &format!("/stats?format=json&topic={}", cfg.topic),
    ) else {
        return false;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return false;
    };
    let Some(t) = v["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["topic_name"] == cfg.topic.as_str()))
    else {
        return false;
    };
    if t["depth"].as_i64() != Some(0) {
        return false;
    }
    (0..cfg.channels).all(|i| {
        let name = channel_name(i);
        t["channels"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["channel_name"] == name.as_str()))
            .is_some_and(|c| {
                ["depth", "in_flight_count", "deferred_count"]
                    .iter()
                    .all(|k| c[*k].as_i64() == Some(0))
            })
    })
}

/// Runs the harness (see the crate doc). `Err` means the run itself could not be carried out
/// (nsqd would not start, setup failed); loss is reported in the [`Report`].
pub fn run(cfg: &Config) -> Result<Report, String> {
    cfg.validate()?;
    let client = client_config(cfg)?;
    // Refused names fail here rather than in every consumer thread.
    for i in 0..cfg.channels {
        nsq_client::Consumer::new(&cfg.topic, &channel_name(i), client.clone())
            .map_err(|e| e.to_string())?;
    }
    let began = Instant::now();
    let tmp;
    let data: PathBuf = match &cfg.data_path {
        Some(p) => {
            std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
            p.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("nsq-crash-")
                .tempdir()
                .map_err(|e| format!("temporary directory: {e}"))?;
            tmp.path().to_path_buf()
        }
    };
    let logs = Arc::new(Logs::default());
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut run_no = 0u64;
    let mut daemon = Daemon::start(cfg, &data, run_no, &logs)?;

    // Every channel exists, and is recorded in nsqd.dat, before the first publish.
    http_ok(
        daemon.http,
        "POST",
        &format!("/topic/create?topic={}", cfg.topic),
    )?;
    for i in 0..cfg.channels {
        http_ok(
            daemon.http,
            "POST",
            &format!(
                "/channel/create?topic={}&channel={}",
                cfg.topic,
                channel_name(i)
            ),
        )?;
    }
    let recorded = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(data.join("nsqd.dat")).is_ok_and(|s| {
            (0..cfg.channels).all(|i| s.contains(&format!("\"{}\"", channel_name(i))))
        })
    });
    if !recorded {
        return Err("the channels never appeared in nsqd.dat".into());
    }

    let shared = Arc::new(Shared {
        target: watch::Sender::new(None),
        stop_publishing: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        stop_consuming: AtomicBool::new(false),
        acknowledged: AtomicU64::new(0),
        deliveries: AtomicU64::new(0),
        began,
    });
    let publishers: Vec<JoinHandle<Result<PublisherOutcome, String>>> = (0..cfg.publishers)
        .map(|i| {
            let (cfg, client, shared) = (cfg.clone(), client.clone(), shared.clone());
            std::thread::spawn(move || run_worker(publisher(i, &cfg, &client, &shared)))
        })
        .collect();
    let consumers: Vec<(usize, JoinHandle<Result<ConsumerOutcome, String>>)> = (0..cfg.consumers)
        .map(|i| {
            let (cfg, client, shared) = (cfg.clone(), client.clone(), shared.clone());
            (
                i % cfg.channels,
                std::thread::spawn(move || {
                    run_worker(consumer(i, &cfg, &client, &shared)).and_then(|r| r)
                }),
            )
        })
        .collect();
    // Whatever happens next, the workers must be told to stop.
    let stop_all = |shared: &Shared| {
        shared.stop_publishing.store(true, Ordering::Release);
        shared.stop_consuming.store(true, Ordering::Release);
        shared.target.send_modify(|_| {});
    };

    shared.set_target(Some((run_no, daemon.tcp)));
    let cycle = Duration::from_secs_f64(cfg.seconds_per_cycle);
    let mut kills = Vec::new();
    let mut restarts = Vec::new();
    for c in 0..cfg.cycles {
        let start = Instant::now();
        let at = cycle.mul_f64(rng.gen_range(0.0..1.0));
        std::thread::sleep(at);
        shared.set_target(None);
        daemon.kill();
        kills.push(at);
        let killed = Instant::now();
        run_no += 1;
        daemon = match Daemon::start(cfg, &data, run_no, &logs) {
            Ok(d) => d,
            Err(e) => {
                stop_all(&shared);
                return Err(format!("restart after kill {}: {e}", c + 1));
            }
        };
        restarts.push(killed.elapsed());
        shared.set_target(Some((run_no, daemon.tcp)));
        if cfg.verbose {
            eprintln!(
                "cycle {}: killed {:.3}s in, restarted in {:.3}s; acknowledged so far {}, \
                 deliveries {}",
                c + 1,
                at.as_secs_f64(),
                killed.elapsed().as_secs_f64(),
                shared.acknowledged.load(Ordering::Relaxed),
                shared.deliveries.load(Ordering::Relaxed)
            );
        }
        std::thread::sleep(cycle.saturating_sub(start.elapsed()));
    }

    // The clean run: publishing stops, consumers drain every channel.
    shared.draining.store(true, Ordering::Release);
    shared.stop_publishing.store(true, Ordering::Release);
    let pubs: Result<Vec<PublisherOutcome>, String> = publishers
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| Err(PANICKED.into())))
        .collect();
    let drain_began = Instant::now();
    let mut settled = 0;
    // Deferred and requeued messages cannot come back before their delay.
    let is_drained = wait_until(cfg.drain_timeout + cfg.longest_delay(), || {
        settled = if drained(cfg, daemon.http) {
            settled + 1
        } else {
            0
        };
        settled >= 2
    });
    let drain_time = drain_began.elapsed();
    stop_all(&shared);
    let cons: Result<Vec<(usize, ConsumerOutcome)>, String> = consumers
        .into_iter()
        .map(|(ch, h)| {
            h.join()
                .unwrap_or_else(|_| Err(PANICKED.into()))
                .map(|c| (ch, c))
        })
        .collect();
    let final_exit = daemon
        .terminate(Duration::from_secs(10))
        .and_then(|st| st.code());
    // A worker that failed took its records with it; a report would show them as lost.
    let (pubs, cons) = (pubs?, cons?);

    let mut report = build_report(cfg, &pubs, &cons);
    report.kills = kills;
    report.restarts = restarts;
    report.drained = is_drained;
    report.drain_time = drain_time;
    report.final_exit = final_exit;
    report.elapsed = began.elapsed();
    let lines = lock(&logs.lines);
    let problems: Vec<&String> = lines
        .iter()
        .filter(|l| {
            [" WARNING: ", " ERROR: ", " FATAL: "]
                .iter()
                .any(|k| l.contains(k))
        })
        .collect();
    report.log_problem_count = problems.len();
    report.log_problems = problems.iter().take(10).map(|s| s.to_string()).collect();
    Ok(report)
}

fn build_report(
    cfg: &Config,
    pubs: &[PublisherOutcome],
    cons: &[(usize, ConsumerOutcome)],
) -> Report {
    let deferred: HashMap<u64, Deferred> = pubs
        .iter()
        .flat_map(|p| p.acked_deferred.iter().map(|d| (d.id, *d)))
        .collect();
    // Every acknowledged id with the nsqd run that acknowledged it.
    let acked: HashMap<u64, u64> = pubs
        .iter()
        .flat_map(|p| p.acked.iter().copied())
        .chain(deferred.values().map(|d| (d.id, d.run)))
        .collect();
    let unconfirmed: HashSet<u64> = pubs
        .iter()
        .flat_map(|p| p.unconfirmed.iter().copied())
        .collect();
    let mut report = Report {
        durability: cfg
            .durability
            .clone()
            .unwrap_or_else(|| "(nsqd default)".into()),
        seed: cfg.seed,
        dpub_share: cfg.dpub_share,
        defer_ms: (*cfg.defer_ms.start(), *cfg.defer_ms.end()),
        req_share: cfg.req_share,
        req_delay_ms: (*cfg.req_delay_ms.start(), *cfg.req_delay_ms.end()),
        sent: pubs.iter().map(|p| p.sent).sum(),
        acknowledged: acked.len(),
        acknowledged_deferred: deferred.len(),
        unconfirmed: unconfirmed.len(),
        publish_errors: pubs.iter().map(|p| p.errors).sum(),
        publish_error_sample: pubs
            .iter()
            .flat_map(|p| p.error_sample.iter().cloned())
            .take(5)
            .collect(),
        response_timeouts: pubs.iter().map(|p| p.timeouts).sum(),
        deliveries: cons.iter().map(|(_, c)| c.deliveries.len() as u64).sum(),
        consumer_disconnects: cons.iter().map(|(_, c)| c.disconnects).sum(),
        consumer_errors: cons.iter().map(|(_, c)| c.errors).sum(),
        ..Report::default()
    };
    let mut lost_on: HashMap<u64, usize> = HashMap::new();
    for ch in 0..cfg.channels {
        let mut by_id: HashMap<u64, Vec<Delivery>> = HashMap::new();
        let mut phantoms = 0;
        for (_, c) in cons.iter().filter(|(i, _)| *i == ch) {
            phantoms += c.phantoms as usize;
            for d in &c.deliveries {
                by_id.entry(d.id).or_default().push(*d);
            }
        }
        let mut r = ChannelReport {
            name: channel_name(ch),
            acknowledged: acked.len(),
            acknowledged_deferred: deferred.len(),
            delivered: by_id.len(),
            phantoms,
            ..ChannelReport::default()
        };
        let mut finished = HashSet::new();
        for (id, ds) in &mut by_id {
            // Consumers of one channel record on one clock, and a redelivery always follows
            // the answer to the previous delivery, so arrival order is delivery order.
            ds.sort_by_key(|d| d.at_us);
            let attempts: HashSet<u16> = ds.iter().map(|d| d.attempts).collect();
            r.repeated_attempts += ds.len() - attempts.len();
            r.max_attempts = r
                .max_attempts
                .max(ds.iter().map(|d| d.attempts).max().unwrap_or(0));
            let v = judge(ds, deferred.get(id));
            r.duplicates += v.duplicates;
            r.same_run_duplicates += v.same_run_duplicates;
            r.requeued += v.requeued;
            r.early += v.early;
            r.attempts_not_raised += v.attempts_not_raised;
            if v.finished {
                finished.insert(*id);
            }
            if !acked.contains_key(id) {
                if unconfirmed.contains(id) {
                    r.unconfirmed_delivered += 1;
                } else {
                    r.phantoms += 1;
                }
            }
        }
        let mut lost: Vec<u64> = acked
            .keys()
            .filter(|id| !finished.contains(id))
            .copied()
            .collect();
        lost.sort_unstable();
        for id in &lost {
            *lost_on.entry(*id).or_default() += 1;
        }
        r.lost = lost.len();
        r.lost_requeued = lost.iter().filter(|id| by_id.contains_key(id)).count();
        r.lost_deferred = lost.iter().filter(|id| deferred.contains_key(id)).count();
        r.lost_sample = lost
            .iter()
            .take(10)
            .map(|id| format!("{id:016x}"))
            .collect();
        r.lost_detail = lost
            .iter()
            .take(5)
            .map(|id| {
                let how = match deferred.get(id) {
                    Some(d) => format!("DPUB {}ms", d.defer_ms),
                    None => "PUB/MPUB".into(),
                };
                let run = acked.get(id).copied().unwrap_or_default();
                let seen = match by_id.get(id).map(Vec::as_slice) {
                    Some(ds @ [.., last]) => format!(
                        "delivered here {} time(s), last by run {} (attempt {}) and answered REQ {}ms",
                        ds.len(),
                        last.run,
                        last.attempts,
                        last.req_ms.unwrap_or_default()
                    ),
                    _ => "never delivered here".into(),
                };
                format!("{id:016x}: {how} acknowledged by run {run}, {seen}")
            })
            .collect();
        report.channels.push(r);
    }
    report.lost_messages = lost_on.len();
    report.lost_on_every_channel = lost_on.values().filter(|n| **n == cfg.channels).count();
    report
}

/// What one message's deliveries on one channel add up to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Verdict {
    finished: bool,
    duplicates: usize,
    same_run_duplicates: usize,
    requeued: usize,
    early: usize,
    attempts_not_raised: usize,
}

/// Judges one message's deliveries on one channel, given in arrival order.
fn judge(ds: &[Delivery], deferred: Option<&Deferred>) -> Verdict {
    let due = |from_us: u64, ms: u32| from_us + u64::from(ms) * 1000;
    let mut v = Verdict::default();
    // A run that took the DPUB measured its delay from at most our send.
    if let (Some(first), Some(d)) = (ds.first(), deferred) {
        if first.run == d.run && first.at_us + EARLY_SLACK_US < due(d.sent_us, d.defer_ms) {
            v.early += 1;
        }
    }
    let mut fin_runs: Vec<u64> = Vec::new();
    let mut prev: Option<&Delivery> = None;
    for d in ds {
        if !fin_runs.is_empty() {
            v.duplicates += 1;
            if fin_runs.contains(&d.run) {
                v.same_run_duplicates += 1;
            }
        } else if let Some(p) = prev.filter(|p| p.run == d.run) {
            // Before the first FIN every earlier delivery was answered with REQ, and a run
            // that took the REQ must honour it; after a crash the state may be older.
            if d.attempts <= p.attempts {
                v.attempts_not_raised += 1;
            }
            if let Some(ms) = p.req_ms {
                if d.at_us + EARLY_SLACK_US < due(p.at_us, ms) {
                    v.early += 1;
                }
            }
        }
        match d.req_ms {
            None => fin_runs.push(d.run),
            Some(_) => v.requeued += 1,
        }
        prev = Some(d);
    }
    v.finished = !fin_runs.is_empty();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_neither_gives_up_on_nor_backs_off_from_messages() {
        let cfg = Config {
            rdy: 37,
            ..Config::new("nsqd")
        };
        let c = client_config(&cfg).unwrap();
        assert_eq!((c.max_in_flight, c.max_attempts), (37, 0));
        assert_eq!(c.max_backoff_duration, Duration::ZERO);
        assert!(c.lookupd_poll_interval > POLL * 100);
    }

    #[test]
    fn ids_round_trip_through_bodies() {
        let id = message_id(3, 12345);
        let mut body = format!("{id:016x}").into_bytes();
        body.extend_from_slice(b"....");
        assert_eq!(parse_id(&body), Some(id));
        assert_eq!(parse_id(b"short"), None);
        assert_eq!(parse_id(b"zzzzzzzzzzzzzzzz"), None);
    }

    fn fin(id: u64, attempts: u16, run: u64, at_ms: u64) -> Delivery {
        Delivery {
            id,
            attempts,
            run,
            at_us: at_ms * 1000,
            req_ms: None,
        }
    }

    fn req(id: u64, attempts: u16, run: u64, at_ms: u64, ms: u32) -> Delivery {
        Delivery {
            req_ms: Some(ms),
            ..fin(id, attempts, run, at_ms)
        }
    }

    #[test]
    fn report_counts_loss_duplicates_and_phantoms() {
        let cfg = Config {
            channels: 1,
            ..Config::new("nsqd")
        };
        let pubs = vec![PublisherOutcome {
            acked: vec![(1, 0), (2, 0), (3, 0)],
            unconfirmed: vec![4],
            sent: 4,
            ..PublisherOutcome::default()
        }];
        let cons = vec![(
            0,
            ConsumerOutcome {
                deliveries: [
                    (1, 1, 0),
                    (1, 2, 1),
                    (2, 1, 0),
                    (2, 1, 0),
                    (4, 1, 1),
                    (9, 1, 1),
                ]
                .iter()
                .enumerate()
                .map(|(i, &(id, attempts, run))| fin(id, attempts, run, i as u64))
                .collect(),
                ..ConsumerOutcome::default()
            },
        )];
        let r = build_report(&cfg, &pubs, &cons);
        let c = &r.channels[0];
        assert_eq!((c.acknowledged, c.delivered, c.lost), (3, 4, 1));
        assert_eq!(c.lost_sample, vec![format!("{:016x}", 3)]);
        assert_eq!(
            (c.duplicates, c.same_run_duplicates, c.repeated_attempts),
            (2, 1, 1)
        );
        assert_eq!(
            (c.unconfirmed_delivered, c.phantoms, c.max_attempts),
            (1, 1, 2)
        );
        assert_eq!(r.lost(), 1);
    }

    #[test]
    fn a_requeued_message_is_done_only_once_finished() {
        let v = judge(&[req(1, 1, 0, 0, 100), req(1, 2, 0, 200, 0)], None);
        assert!(!v.finished);
        assert_eq!(v.requeued, 2);
        let v = judge(
            &[req(1, 1, 0, 0, 100), fin(1, 2, 0, 150), fin(1, 3, 1, 900)],
            None,
        );
        assert!(v.finished);
        assert_eq!((v.duplicates, v.same_run_duplicates), (1, 0));
        assert_eq!((v.early, v.attempts_not_raised), (0, 0));
    }

    #[test]
    fn early_and_flat_redeliveries_count_only_within_a_run() {
        let v = judge(&[req(1, 2, 0, 0, 500), fin(1, 2, 0, 100)], None);
        assert_eq!((v.early, v.attempts_not_raised), (1, 1));
        let v = judge(&[req(1, 2, 0, 0, 500), fin(1, 1, 1, 100)], None);
        assert_eq!((v.early, v.attempts_not_raised), (0, 0));
        let d = Deferred {
            id: 1,
            run: 3,
            sent_us: 1_000_000,
            defer_ms: 1000,
        };
        assert_eq!(judge(&[fin(1, 1, 3, 1500)], Some(&d)).early, 1);
        assert_eq!(judge(&[fin(1, 1, 3, 2000)], Some(&d)).early, 0);
        assert_eq!(judge(&[fin(1, 1, 4, 1500)], Some(&d)).early, 0);
    }

    #[test]
    fn lost_dpubs_and_requeued_messages_are_told_apart() {
        let cfg = Config {
            channels: 2,
            dpub_share: 0.5,
            ..Config::new("nsqd")
        };
        let dpub = |id| Deferred {
            id,
            run: 0,
            sent_us: 0,
            defer_ms: 10,
        };
        let pubs = vec![PublisherOutcome {
            acked: vec![(1, 0), (2, 1)],
            acked_deferred: vec![dpub(3), dpub(4)],
            sent: 4,
            ..PublisherOutcome::default()
        }];
        let on = |deliveries| ConsumerOutcome {
            deliveries,
            ..ConsumerOutcome::default()
        };
        let cons = vec![
            (
                0,
                on(vec![
                    fin(1, 1, 0, 1),
                    fin(2, 1, 0, 1),
                    fin(3, 1, 0, 20),
                    req(4, 1, 0, 20, 5),
                ]),
            ),
            (1, on(vec![fin(1, 1, 0, 1), fin(3, 1, 0, 20)])),
        ];
        let r = build_report(&cfg, &pubs, &cons);
        assert_eq!((r.acknowledged, r.acknowledged_deferred), (4, 2));
        let c0 = &r.channels[0];
        assert_eq!((c0.lost, c0.lost_deferred, c0.lost_requeued), (1, 1, 1));
        assert_eq!(c0.requeued, 1);
        assert_eq!(
            c0.lost_detail,
            vec![format!(
                "{:016x}: DPUB 10ms acknowledged by run 0, delivered here 1 time(s), last by run \
                 0 (attempt 1) and answered REQ 5ms",
                4
            )]
        );
        let c1 = &r.channels[1];
        assert_eq!((c1.lost, c1.lost_deferred, c1.lost_requeued), (2, 1, 0));
        assert_eq!(
            c1.lost_detail[0],
            format!(
                "{:016x}: PUB/MPUB acknowledged by run 1, never delivered here",
                2
            )
        );
        assert_eq!((r.lost(), r.lost_deferred()), (3, 2));
        assert_eq!((r.lost_messages, r.lost_on_every_channel), (2, 1));
        let t = r.total();
        assert_eq!((t.acknowledged, t.lost, t.requeued), (8, 3, 1));
        assert!(r.anomalies().iter().all(|a| !a.contains("c0:")));
    }
}
