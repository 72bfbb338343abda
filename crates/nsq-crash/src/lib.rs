//! A crash harness for nsqd.
//!
//! [`run`] starts an nsqd binary on loopback ephemeral ports with a persistent data directory,
//! runs publishers and consumers against it on plain threads speaking the V2 protocol, kills
//! nsqd with SIGKILL at a random moment of every cycle, restarts it on the same data directory
//! (reading its new ports from the `TCP: listening on` line) and lets everyone reconnect. At the
//! end the publishers stop, nsqd keeps running cleanly until every channel is drained, and the
//! [`Report`] compares, per channel, what was acknowledged with what was delivered.
//!
//! Every message body starts with a unique 16-hex-digit id. A message counts as acknowledged
//! only when the `PUB`/`MPUB` carrying it got `OK`. Consumers `FIN` everything they receive and
//! record each delivery with its attempt count and the nsqd run it came from.
#![forbid(unsafe_code)]

pub mod wire;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use wire::{Frame, FrameReader, FRAME_ERROR, FRAME_MESSAGE};

/// How long nsqd may take to log its listen lines after being started.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a publisher waits for the answer to one PUB/MPUB.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Socket read timeout: how often blocked workers look at their stop flags.
const POLL: Duration = Duration::from_millis(50);

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
    /// RDY each consumer sends.
    pub rdy: u32,
    pub seed: u64,
    /// How long the final drain may take.
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
        Ok(())
    }
}

/// What happened on one channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelReport {
    pub name: String,
    /// Messages whose PUB/MPUB got `OK` (every channel existed before publishing began).
    pub acknowledged: usize,
    /// Distinct messages delivered at least once.
    pub delivered: usize,
    /// Acknowledged but never delivered.
    pub lost: usize,
    /// A few of the lost ids, for investigation.
    pub lost_sample: Vec<String>,
    /// Deliveries beyond the first of each message.
    pub duplicates: usize,
    /// Duplicates delivered twice by the same nsqd run (consumers FIN everything at once, so
    /// these point at a server problem rather than a crash).
    pub same_run_duplicates: usize,
    /// Redeliveries that reused an attempt count already seen for that message.
    pub repeated_attempts: usize,
    /// Delivered messages whose publish never got `OK` (the crash or an error came first).
    pub unconfirmed_delivered: usize,
    /// Delivered bodies that no publisher ever sent (damage).
    pub phantoms: usize,
    pub max_attempts: u16,
}

/// The outcome of a harness run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub durability: String,
    pub seed: u64,
    pub kills: Vec<Duration>,
    /// From each SIGKILL to the restarted nsqd's listen lines (recovery time).
    pub restarts: Vec<Duration>,
    pub sent: u64,
    pub acknowledged: usize,
    pub unconfirmed: usize,
    pub publish_errors: u64,
    pub publish_error_sample: Vec<String>,
    pub response_timeouts: u64,
    pub deliveries: u64,
    pub channels: Vec<ChannelReport>,
    pub drained: bool,
    pub drain_time: Duration,
    pub final_exit: Option<i32>,
    pub elapsed: Duration,
    /// nsqd log lines at WARNING level or above (first few).
    pub log_problems: Vec<String>,
    pub log_problem_count: usize,
}

impl Report {
    pub fn lost(&self) -> usize {
        self.channels.iter().map(|c| c.lost).sum()
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
        for c in &self.channels {
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
            "result: lost={} duplicates={} anomalies={}",
            self.lost(),
            self.duplicates(),
            anomalies.len()
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
    target: Mutex<Option<(u64, SocketAddr)>>,
    changed: Condvar,
    stop_publishing: AtomicBool,
    stop_consuming: AtomicBool,
    acknowledged: AtomicU64,
    deliveries: AtomicU64,
}

impl Shared {
    fn set_target(&self, t: Option<(u64, SocketAddr)>) {
        *lock(&self.target) = t;
        self.changed.notify_all();
    }

    fn wait_target(&self, stop: &AtomicBool) -> Option<(u64, SocketAddr)> {
        let mut g = lock(&self.target);
        loop {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            if let Some(t) = *g {
                return Some(t);
            }
            g = self
                .changed
                .wait_timeout(g, POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[derive(Default)]
struct PublisherOutcome {
    acked: Vec<u64>,
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

enum Answer {
    Ok,
    Error(String),
    Broken,
    TimedOut,
}

/// Waits for the response to one publish, answering heartbeats.
fn await_answer(s: &mut TcpStream, r: &mut FrameReader) -> Answer {
    let deadline = Instant::now() + RESPONSE_TIMEOUT;
    loop {
        match r.parse() {
            Ok(Some(f)) if f.is_heartbeat() => {
                if s.write_all(b"NOP\n").is_err() {
                    return Answer::Broken;
                }
            }
            Ok(Some(f)) if f.is_ok() => return Answer::Ok,
            Ok(Some(f)) if f.kind == FRAME_ERROR => return Answer::Error(f.text()),
            Ok(Some(f)) => {
                return Answer::Error(format!("unexpected frame {} {}", f.kind, f.text()))
            }
            Ok(None) => {}
            Err(_) => return Answer::Broken,
        }
        if Instant::now() > deadline {
            return Answer::TimedOut;
        }
        if r.fill(s).is_err() {
            return Answer::Broken;
        }
    }
}

fn publisher(idx: usize, cfg: &Config, shared: &Shared) -> PublisherOutcome {
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ (0x9e37_79b9 * (idx as u64 + 1)));
    let mut out = PublisherOutcome::default();
    let mut seq = 0u64;
    'connect: while let Some((_, addr)) = shared.wait_target(&shared.stop_publishing) {
        let Ok(mut s) = wire::connect_v2(addr, POLL) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let mut r = FrameReader::default();
        while !shared.stop_publishing.load(Ordering::Acquire) {
            let n = rng.gen_range(1..=cfg.max_batch);
            let ids: Vec<u64> = (0..n)
                .map(|_| {
                    seq += 1;
                    message_id(idx, seq)
                })
                .collect();
            let bodies: Vec<Vec<u8>> = ids
                .iter()
                .map(|id| {
                    let mut b = format!("{id:016x}").into_bytes();
                    b.resize(16 + rng.gen_range(0..64), b'.');
                    b
                })
                .collect();
            let cmd = if n == 1 && rng.gen_bool(0.5) {
                wire::pub_cmd(&cfg.topic, &bodies[0])
            } else {
                wire::mpub_cmd(&cfg.topic, &bodies)
            };
            out.sent += n as u64;
            if s.write_all(&cmd).is_err() {
                out.unconfirmed.extend(ids);
                continue 'connect;
            }
            match await_answer(&mut s, &mut r) {
                Answer::Ok => {
                    shared.acknowledged.fetch_add(n as u64, Ordering::Relaxed);
                    out.acked.extend(ids);
                }
                answer => {
                    out.unconfirmed.extend(ids);
                    match answer {
                        Answer::Error(e) => {
                            out.errors += 1;
                            if out.error_sample.len() < 5 {
                                out.error_sample.push(e);
                            }
                        }
                        Answer::TimedOut => out.timeouts += 1,
                        _ => {}
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
}

#[derive(Default)]
struct ConsumerOutcome {
    deliveries: Vec<Delivery>,
    phantoms: u64,
}

fn channel_name(i: usize) -> String {
    format!("c{i}")
}

fn consumer(idx: usize, cfg: &Config, shared: &Shared) -> ConsumerOutcome {
    let channel = channel_name(idx % cfg.channels);
    let mut out = ConsumerOutcome::default();
    while let Some((run, addr)) = shared.wait_target(&shared.stop_consuming) {
        let Ok(mut s) = wire::connect_v2(addr, POLL) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let mut r = FrameReader::default();
        if s.write_all(format!("SUB {} {channel}\n", cfg.topic).as_bytes())
            .is_err()
            || !matches!(await_answer(&mut s, &mut r), Answer::Ok)
            || s.write_all(format!("RDY {}\n", cfg.rdy).as_bytes())
                .is_err()
        {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let mut reply = Vec::new();
        loop {
            loop {
                match r.parse() {
                    Ok(Some(f)) => consume_frame(&f, run, &mut reply, &mut out, shared),
                    Ok(None) => break,
                    Err(_) => break,
                }
            }
            if !reply.is_empty() {
                if s.write_all(&reply).is_err() {
                    break;
                }
                reply.clear();
            }
            if shared.stop_consuming.load(Ordering::Acquire) {
                return out;
            }
            if r.fill(&mut s).is_err() {
                break;
            }
        }
    }
    out
}

fn consume_frame(
    f: &Frame,
    run: u64,
    reply: &mut Vec<u8>,
    out: &mut ConsumerOutcome,
    shared: &Shared,
) {
    if f.is_heartbeat() {
        reply.extend_from_slice(b"NOP\n");
        return;
    }
    if f.kind != FRAME_MESSAGE {
        return;
    }
    let Some(m) = wire::parse_message(&f.data) else {
        out.phantoms += 1;
        return;
    };
    reply.extend_from_slice(b"FIN ");
    reply.extend_from_slice(m.id);
    reply.push(b'\n');
    shared.deliveries.fetch_add(1, Ordering::Relaxed);
    match parse_id(m.body) {
        Some(id) => out.deliveries.push(Delivery {
            id,
            attempts: m.attempts,
            run,
        }),
        None => out.phantoms += 1,
    }
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
        target: Mutex::new(None),
        changed: Condvar::new(),
        stop_publishing: AtomicBool::new(false),
        stop_consuming: AtomicBool::new(false),
        acknowledged: AtomicU64::new(0),
        deliveries: AtomicU64::new(0),
    });
    let publishers: Vec<JoinHandle<PublisherOutcome>> = (0..cfg.publishers)
        .map(|i| {
            let (cfg, shared) = (cfg.clone(), shared.clone());
            std::thread::spawn(move || publisher(i, &cfg, &shared))
        })
        .collect();
    let consumers: Vec<(usize, JoinHandle<ConsumerOutcome>)> = (0..cfg.consumers)
        .map(|i| {
            let (cfg, shared) = (cfg.clone(), shared.clone());
            (
                i % cfg.channels,
                std::thread::spawn(move || consumer(i, &cfg, &shared)),
            )
        })
        .collect();
    // Whatever happens next, the workers must be told to stop.
    let stop_all = |shared: &Shared| {
        shared.stop_publishing.store(true, Ordering::Release);
        shared.stop_consuming.store(true, Ordering::Release);
        shared.changed.notify_all();
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
    shared.stop_publishing.store(true, Ordering::Release);
    let pubs: Vec<PublisherOutcome> = publishers
        .into_iter()
        .map(|h| h.join().unwrap_or_default())
        .collect();
    let drain_began = Instant::now();
    let mut settled = 0;
    let is_drained = wait_until(cfg.drain_timeout, || {
        settled = if drained(cfg, daemon.http) {
            settled + 1
        } else {
            0
        };
        settled >= 2
    });
    let drain_time = drain_began.elapsed();
    stop_all(&shared);
    let cons: Vec<(usize, ConsumerOutcome)> = consumers
        .into_iter()
        .map(|(ch, h)| (ch, h.join().unwrap_or_default()))
        .collect();
    let final_exit = daemon
        .terminate(Duration::from_secs(10))
        .and_then(|st| st.code());

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
    let acked: HashSet<u64> = pubs.iter().flat_map(|p| p.acked.iter().copied()).collect();
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
        sent: pubs.iter().map(|p| p.sent).sum(),
        acknowledged: acked.len(),
        unconfirmed: unconfirmed.len(),
        publish_errors: pubs.iter().map(|p| p.errors).sum(),
        publish_error_sample: pubs
            .iter()
            .flat_map(|p| p.error_sample.iter().cloned())
            .take(5)
            .collect(),
        response_timeouts: pubs.iter().map(|p| p.timeouts).sum(),
        deliveries: cons.iter().map(|(_, c)| c.deliveries.len() as u64).sum(),
        ..Report::default()
    };
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
            delivered: by_id.len(),
            phantoms,
            ..ChannelReport::default()
        };
        for (id, ds) in &by_id {
            r.duplicates += ds.len() - 1;
            let runs: HashSet<u64> = ds.iter().map(|d| d.run).collect();
            r.same_run_duplicates += ds.len() - runs.len();
            let attempts: HashSet<u16> = ds.iter().map(|d| d.attempts).collect();
            r.repeated_attempts += ds.len() - attempts.len();
            r.max_attempts = r
                .max_attempts
                .max(ds.iter().map(|d| d.attempts).max().unwrap_or(0));
            if !acked.contains(id) {
                if unconfirmed.contains(id) {
                    r.unconfirmed_delivered += 1;
                } else {
                    r.phantoms += 1;
                }
            }
        }
        let mut lost: Vec<u64> = acked
            .iter()
            .filter(|id| !by_id.contains_key(id))
            .copied()
            .collect();
        lost.sort_unstable();
        r.lost = lost.len();
        r.lost_sample = lost
            .iter()
            .take(10)
            .map(|id| format!("{id:016x}"))
            .collect();
        report.channels.push(r);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_bodies() {
        let id = message_id(3, 12345);
        let mut body = format!("{id:016x}").into_bytes();
        body.extend_from_slice(b"....");
        assert_eq!(parse_id(&body), Some(id));
        assert_eq!(parse_id(b"short"), None);
        assert_eq!(parse_id(b"zzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn report_counts_loss_duplicates_and_phantoms() {
        let cfg = Config {
            channels: 1,
            ..Config::new("nsqd")
        };
        let pubs = vec![PublisherOutcome {
            acked: vec![1, 2, 3],
            unconfirmed: vec![4],
            sent: 4,
            ..PublisherOutcome::default()
        }];
        let d = |id, attempts, run| Delivery { id, attempts, run };
        let cons = vec![(
            0,
            ConsumerOutcome {
                deliveries: vec![
                    d(1, 1, 0),
                    d(1, 2, 1),
                    d(2, 1, 0),
                    d(2, 1, 0),
                    d(4, 1, 1),
                    d(9, 1, 1),
                ],
                phantoms: 0,
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
}
