//! `bench_latency`: how long messages take through nsqd, as HDR histograms. Two modes:
//!
//! - `e2e` (open loop): a publisher sends single PUBs on a fixed schedule, message `i` due at
//!   `start + i/rate`, while a consumer subscribed beforehand receives them. A message's latency
//!   runs from its *scheduled* send time to its arrival, so a publisher or broker that falls
//!   behind shows up in the figures instead of slowing the schedule down (no coordinated
//!   omission). The publisher never waits for its `OK`s; another thread reads them.
//! - `rtt` (closed loop): one connection sends one PUB, waits for its `OK`, and repeats; each
//!   round trip is a sample.
//!
//! A message body starts with a 16-byte stamp: the scheduled send time in nanoseconds since a
//! process-wide origin (u64 LE), the sequence number (u32 LE) and a tag of this run (u32 LE),
//! so messages left in the topic by an earlier run are recognised and not counted.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use nsq_flags::{Flag, Values};

use crate::cli;
use crate::conn::{Conn, Event};
use crate::proto::{self, Frame};
use crate::report;
use crate::transport::Transport;

/// Bytes of the stamp at the start of every body; also the smallest `--size`.
pub const STAMP_LEN: usize = 16;

/// Sleeping is left this long before a scheduled send and the rest is spent yielding: the OS
/// wakes a sleeper tens of microseconds late, which at 50k msg/s is a whole interval.
const SPIN: Duration = Duration::from_micros(80);

/// Upper bound on PUBs written in one system call when the publisher has fallen behind, so one
/// late wake-up does not turn into one huge buffer.
const MAX_PER_WRITE: u64 = 1024;

/// How often blocked reads come back to check whether the run is over or aborted.
const POLL: Duration = Duration::from_millis(100);

/// Handshakes and PUB answers normally take microseconds; past this nsqd is taken as hung.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest latency the histogram tells apart (larger ones are counted as this): one hour.
const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

const NANOS_PER_SEC: u128 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    E2e,
    Rtt,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::E2e => "e2e",
            Mode::Rtt => "rtt",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LatencyOpts {
    pub mode: Mode,
    pub addr: String,
    pub topic: String,
    pub channel: String,
    pub size: usize,
    /// Messages per second (e2e only).
    pub rate: u64,
    pub runfor: Duration,
    /// Samples from the start of the run up to this offset are not counted.
    pub warmup: Duration,
    /// RDY of the consumer (e2e only).
    pub max_in_flight: u64,
    /// How long the consumer waits for stragglers once publishing is over (e2e only).
    pub drain_timeout: Duration,
    /// rtt only: stop after this many counted round trips instead of at `runfor` (0: `runfor`).
    pub count: u64,
}

/// The flags of `bench_latency`.
pub fn flags() -> Vec<Flag> {
    vec![
        Flag::string(
            "mode",
            "e2e",
            "e2e: publish at --rate and consume, latency from each message's scheduled send time; \
             rtt: one PUB at a time, latency of each round trip",
        ),
        cli::address_flag(),
        Flag::string(
            "topic",
            "latency_bench",
            "topic to publish to (use a fresh one per run)",
        ),
        Flag::string("channel", "latency", "channel to consume from (e2e)"),
        Flag::int(
            "size",
            100,
            "size of messages (at least 16: the send time and sequence number)",
        ),
        Flag::int("rate", 10_000, "messages per second to publish (e2e)"),
        cli::runfor_flag(),
        Flag::duration(
            "warmup",
            Duration::from_secs(1),
            "samples from the first part of the run that are not counted",
        ),
        Flag::int(
            "max-in-flight",
            1,
            "RDY count of the consumer (e2e; 1 is go-nsq's and pynsq's default)",
        ),
        Flag::duration(
            "drain-timeout",
            Duration::from_secs(10),
            "how long to wait for outstanding messages after publishing ends (e2e)",
        ),
        Flag::int(
            "count",
            0,
            "rtt: stop after this many counted round trips (0: run for --runfor)",
        ),
    ]
}

pub fn opts(v: &Values) -> Result<LatencyOpts> {
    let mode = match v.string("mode") {
        "e2e" => Mode::E2e,
        "rtt" => Mode::Rtt,
        other => bail!("--mode must be e2e or rtt (got {other:?})"),
    };
    let runfor = v.duration("runfor");
    if runfor.is_zero() {
        bail!("--runfor must be positive");
    }
    let warmup = v.duration("warmup");
    if warmup >= runfor {
        bail!("--warmup must be shorter than --runfor (nothing would be counted)");
    }
    let count = u64::try_from(v.int("count"))
        .with_context(|| format!("--count must not be negative (got {})", v.int("count")))?;
    if mode == Mode::E2e && count != 0 {
        bail!("--count applies to --mode=rtt only");
    }
    let rate = cli::at_least(v, "rate", 1)? as u64;
    if mode == Mode::E2e && Schedule::new(rate, runfor).total() > u64::from(u32::MAX) {
        bail!("--rate times --runfor is more than the 2^32 sequence numbers a run can use");
    }
    let topic = v.string("topic");
    if topic.is_empty() {
        bail!("--topic must not be empty");
    }
    Ok(LatencyOpts {
        mode,
        addr: v.string("nsqd-tcp-address").to_string(),
        topic: topic.to_string(),
        channel: v.string("channel").to_string(),
        size: cli::at_least(v, "size", STAMP_LEN as i64)?,
        rate,
        runfor,
        warmup,
        max_in_flight: cli::at_least(v, "max-in-flight", 1)? as u64,
        drain_timeout: v.duration("drain-timeout"),
        count,
    })
}

/// When each message of an open-loop run is due: message `i` at `i * 1e9 / rate` nanoseconds
/// (rounded down) after the start, for every `i` due before `runfor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    rate: u64,
    total: u64,
}

impl Schedule {
    pub fn new(rate: u64, runfor: Duration) -> Schedule {
        let rate = rate.max(1);
        let mut s = Schedule {
            rate,
            total: u64::MAX,
        };
        s.total = s.before(runfor);
        s
    }

    /// Messages in the whole run.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Offset of message `i` from the start.
    pub fn at(&self, i: u64) -> Duration {
        let ns = u128::from(i) * NANOS_PER_SEC / u128::from(self.rate);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Messages due strictly before `offset`: the `i` with `floor(i * 1e9 / rate) < offset`,
    /// which for a whole number of nanoseconds is `i < offset * rate / 1e9`.
    pub fn before(&self, offset: Duration) -> u64 {
        let n = (offset.as_nanos().saturating_mul(u128::from(self.rate))).div_ceil(NANOS_PER_SEC);
        u64::try_from(n).unwrap_or(u64::MAX).min(self.total)
    }

    /// Messages due at or before `elapsed` (all of them from the last one's time on).
    pub fn due(&self, elapsed: Duration) -> u64 {
        self.before(elapsed.saturating_add(Duration::from_nanos(1)))
    }
}

/// What a body's first [`STAMP_LEN`] bytes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Scheduled send time in nanoseconds since [`origin`].
    pub sched_ns: u64,
    pub seq: u32,
    /// Tells this run's messages from those of another run in the same topic.
    pub run: u32,
}

/// Writes the stamp over the start of `body`, which must hold at least [`STAMP_LEN`] bytes.
pub fn encode_stamp(body: &mut [u8], s: Stamp) {
    body[..8].copy_from_slice(&s.sched_ns.to_le_bytes());
    body[8..12].copy_from_slice(&s.seq.to_le_bytes());
    body[12..16].copy_from_slice(&s.run.to_le_bytes());
}

/// The stamp of a received body; `None` when the body is too short to be one of ours.
pub fn decode_stamp(body: &[u8]) -> Option<Stamp> {
    let b: &[u8; STAMP_LEN] = body.get(..STAMP_LEN)?.try_into().ok()?;
    let [s0, s1, s2, s3, s4, s5, s6, s7, q0, q1, q2, q3, r0, r1, r2, r3] = *b;
    Some(Stamp {
        sched_ns: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
        seq: u32::from_le_bytes([q0, q1, q2, q3]),
        run: u32::from_le_bytes([r0, r1, r2, r3]),
    })
}

/// The instant all stamps count from: publisher and consumer share one clock in one process.
pub fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn since_origin_ns(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(origin()).as_nanos()).unwrap_or(u64::MAX)
}

/// A tag that differs between runs started at different times or by different processes; no
/// randomness is needed, only that an earlier run's leftovers do not match.
fn run_tag() -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now.subsec_nanos() ^ now.as_secs() as u32) ^ std::process::id().rotate_left(16)
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub mode: Mode,
    /// Messages per second asked for (0 for rtt).
    pub rate: u64,
    /// Counted messages published (e2e, after the warmup) or round trips (rtt).
    pub sent: u64,
    /// Of those, how many arrived (rtt: equal to `sent`).
    pub received: u64,
    /// Latencies of the received ones, in nanoseconds.
    pub hist: Histogram<u64>,
}

/// Nanoseconds as microseconds with one decimal.
pub fn format_us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

impl Outcome {
    fn quantile(&self, q: f64) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.value_at_quantile(q)
        }
    }

    /// The stdout lines the suite script parses, plus `lost: N` when messages are missing.
    pub fn machine_lines(&self) -> String {
        let mut out = format!(
            "mode: {}\nrate: {}\nsent: {}\nreceived: {}\np50_us: {}\np99_us: {}\np999_us: {}\n\
             max_us: {}",
            self.mode.name(),
            self.rate,
            self.sent,
            self.received,
            format_us(self.quantile(0.5)),
            format_us(self.quantile(0.99)),
            format_us(self.quantile(0.999)),
            format_us(self.hist.max()),
        );
        if self.received < self.sent {
            out.push_str(&format!("\nlost: {}", self.sent - self.received));
        }
        out
    }

    /// One human-readable line for the log.
    pub fn log_line(&self) -> String {
        format!(
            "latency over {} samples: min {}us p50 {}us p90 {}us p99 {}us p99.9 {}us max {}us \
             mean {:.1}us",
            self.hist.len(),
            format_us(self.hist.min()),
            format_us(self.quantile(0.5)),
            format_us(self.quantile(0.9)),
            format_us(self.quantile(0.99)),
            format_us(self.quantile(0.999)),
            format_us(self.hist.max()),
            self.hist.mean() / 1000.0,
        )
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).context("cannot create the histogram")
}

/// Runs the mode `o` asks for; `prefix` tags the log lines.
pub fn run(prefix: &str, o: &LatencyOpts, user_agent: &str) -> Result<Outcome> {
    // Fix the origin before any stamp is taken.
    origin();
    match o.mode {
        Mode::E2e => run_e2e(prefix, o, user_agent),
        Mode::Rtt => run_rtt(prefix, o, user_agent),
    }
}

/// Sleeps until `target`: most of the way in the OS, the last [`SPIN`] yielding.
fn sleep_until(target: Instant) {
    let now = Instant::now();
    if target <= now {
        return;
    }
    let left = target - now;
    if left > SPIN {
        thread::sleep(left - SPIN);
    }
    while Instant::now() < target {
        thread::yield_now();
    }
}

/// Sets `flag` when dropped, so a thread that fails or panics stops the others.
struct AbortOnDrop<'a>(&'a AtomicBool, bool);

impl AbortOnDrop<'_> {
    fn disarm(mut self) {
        self.1 = false;
    }
}

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

struct Published {
    sent: u64,
    duration: Duration,
    /// How far behind schedule the publisher wrote its latest message at worst.
    max_lag: Duration,
}

/// The open-loop publisher: writes every message whose time has come, then sleeps until the
/// next one is due.
fn publish(
    mut w: TcpStream,
    sched: Schedule,
    topic: &str,
    size: usize,
    run: u32,
    abort: &AtomicBool,
) -> Result<Published> {
    let template = proto::pub_cmd(topic, &vec![b'a'; size])?;
    // The body is the end of the command.
    let body_at = template.len() - size;
    let mut out = Vec::with_capacity(template.len() * MAX_PER_WRITE as usize);
    let start = Instant::now();
    let start_ns = since_origin_ns(start);
    let mut next: u64 = 0;
    let mut max_lag = Duration::ZERO;
    while next < sched.total() && !abort.load(Ordering::Relaxed) {
        let now = Instant::now();
        let due = sched.due(now - start).min(next + MAX_PER_WRITE);
        if due > next {
            // Behind schedule by the time the oldest message in this write was due.
            max_lag = max_lag.max((now - start).saturating_sub(sched.at(next)));
            out.clear();
            for i in next..due {
                let at = out.len();
                out.extend_from_slice(&template);
                let stamp = Stamp {
                    sched_ns: start_ns.saturating_add(sched.at(i).as_nanos() as u64),
                    // Totals above u32::MAX are refused by `opts`.
                    seq: i as u32,
                    run,
                };
                encode_stamp(&mut out[at + body_at..], stamp);
            }
            w.write_all(&out).context("writing PUBs to nsqd failed")?;
            next = due;
            continue;
        }
        sleep_until(start + sched.at(next));
    }
    Ok(Published {
        sent: next,
        duration: start.elapsed(),
        max_lag,
    })
}

/// Counts the publisher's `OK`s until all `sent` (learned when publishing ends) are in or the
/// drain time passes. Returns how many arrived.
fn read_acks(
    mut conn: Conn,
    sent_rx: Receiver<u64>,
    drain_timeout: Duration,
    abort: &AtomicBool,
) -> Result<u64> {
    let mut acked: u64 = 0;
    let mut sent: Option<u64> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        while let Some(ev) = conn.next_event()? {
            match ev {
                Event::Ok => acked += 1,
                // Heartbeats need no answer here: the steady stream of PUBs already proves
                // the client alive to nsqd.
                Event::Heartbeat => {}
                Event::Error(e) => bail!("nsqd refused PUB: {e}"),
                Event::Response(r) => bail!("unexpected response to PUB: {r:?}"),
                Event::Message(_) => bail!("the publisher's connection received a message"),
            }
        }
        if sent.is_none() {
            match sent_rx.try_recv() {
                Ok(n) => {
                    sent = Some(n);
                    deadline = Some(Instant::now() + drain_timeout);
                }
                Err(TryRecvError::Empty) => {}
                // The publisher failed; its error is the one reported.
                Err(TryRecvError::Disconnected) => return Ok(acked),
            }
        }
        if sent.is_some_and(|n| acked >= n) || abort.load(Ordering::Relaxed) {
            return Ok(acked);
        }
        let now = Instant::now();
        let wait = match deadline {
            Some(d) if now >= d => return Ok(acked),
            Some(d) => POLL.min(d - now),
            None => POLL,
        };
        conn.set_read_timeout(Some(wait))?;
        conn.fill()?;
    }
}

/// Which sequence numbers arrived, to count each message once.
struct Seen(Vec<u64>);

impl Seen {
    fn new(total: u64) -> Seen {
        Seen(vec![0; total.div_ceil(64) as usize])
    }

    /// Marks `i`; false if it was already marked.
    fn insert(&mut self, i: u64) -> bool {
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        let Some(w) = self.0.get_mut(word) else {
            return false;
        };
        let fresh = *w & bit == 0;
        *w |= bit;
        fresh
    }
}

struct Consumed {
    hist: Histogram<u64>,
    /// Distinct messages of this run received, warmup included.
    received: u64,
    /// Of those, the ones scheduled after the warmup.
    counted: u64,
    duplicates: u64,
    /// Messages that are not this run's (left in the topic by another run).
    foreign: u64,
}

/// What the consumer needs to know about the run.
struct ConsumePlan {
    total: u64,
    /// Sequence numbers below this were scheduled during the warmup.
    warmup_count: u64,
    run: u32,
    drain_timeout: Duration,
}

/// Receives and finishes messages, recording each one's latency, until every message of the
/// run arrived or the drain time after publishing passed.
fn consume(
    mut conn: Conn,
    plan: ConsumePlan,
    sent_rx: Receiver<u64>,
    abort: &AtomicBool,
) -> Result<Consumed> {
    let mut c = Consumed {
        hist: new_histogram()?,
        received: 0,
        counted: 0,
        duplicates: 0,
        foreign: 0,
    };
    let mut seen = Seen::new(plan.total);
    let mut expected = plan.total;
    let mut deadline: Option<Instant> = None;
    let mut out = Vec::with_capacity(64 << 10);
    loop {
        // Everything parsed below arrived in the read that just returned.
        let now_ns = since_origin_ns(Instant::now());
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Message { id, body } => {
                    proto::put_fin(&mut out, &id);
                    match decode_stamp(body) {
                        Some(s) if s.run == plan.run && u64::from(s.seq) < plan.total => {
                            let seq = u64::from(s.seq);
                            if !seen.insert(seq) {
                                c.duplicates += 1;
                                continue;
                            }
                            c.received += 1;
                            if seq >= plan.warmup_count {
                                c.counted += 1;
                                c.hist.saturating_record(now_ns.saturating_sub(s.sched_ns));
                            }
                        }
                        _ => c.foreign += 1,
                    }
                }
                Frame::Response(r) if r == proto::HEARTBEAT => out.extend_from_slice(proto::NOP),
                Frame::Response(_) => {}
                Frame::Error(e) => bail!("nsqd sent an error: {}", String::from_utf8_lossy(e)),
            }
        }
        if !out.is_empty() {
            conn.send(&out)?;
            out.clear();
        }
        if deadline.is_none() {
            match sent_rx.try_recv() {
                Ok(n) => {
                    expected = n;
                    deadline = Some(Instant::now() + plan.drain_timeout);
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Ok(c),
            }
        }
        if c.received >= expected || abort.load(Ordering::Relaxed) {
            return Ok(c);
        }
        let now = Instant::now();
        let wait = match deadline {
            Some(d) if now >= d => return Ok(c),
            Some(d) => POLL.min(d - now),
            None => POLL,
        };
        conn.set_read_timeout(Some(wait))?;
        conn.fill()?;
    }
}

fn run_e2e(prefix: &str, o: &LatencyOpts, user_agent: &str) -> Result<Outcome> {
    let sched = Schedule::new(o.rate, o.runfor);
    let warmup_count = sched.before(o.warmup);
    let run = run_tag();

    // Subscribed and ready before the first PUB, so the channel exists and gets every message.
    let mut sub = Conn::connect(&o.addr)?;
    sub.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
    sub.identify_go_nsq("bench_latency_sub", user_agent, &Transport::default())?;
    sub.command_ok(&proto::sub(&o.topic, &o.channel), "SUB")?;
    sub.send(&proto::rdy(o.max_in_flight))?;

    let mut publ = Conn::connect(&o.addr)?;
    publ.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
    publ.identify_go_nsq("bench_latency_pub", user_agent, &Transport::default())?;
    let writer = publ.try_clone_writer()?;
    writer
        .set_write_timeout(Some(RESPONSE_TIMEOUT))
        .context("setting the write timeout failed")?;

    report::log(
        prefix,
        &format!(
            "e2e: {} msgs of {} bytes at {}/s for {} to topic {:?}, channel {:?} with \
             max-in-flight {} ({} in the {} warmup not counted)",
            sched.total(),
            o.size,
            o.rate,
            nsq_flags::format_go_duration(o.runfor),
            o.topic,
            o.channel,
            o.max_in_flight,
            warmup_count,
            nsq_flags::format_go_duration(o.warmup),
        ),
    );

    let abort = Arc::new(AtomicBool::new(false));
    let (sub_tx, sub_rx) = mpsc::channel();
    let (ack_tx, ack_rx) = mpsc::channel();
    let plan = ConsumePlan {
        total: sched.total(),
        warmup_count,
        run,
        drain_timeout: o.drain_timeout,
    };
    let consumer = {
        let abort = abort.clone();
        thread::spawn(move || {
            let guard = AbortOnDrop(&abort, true);
            let r = consume(sub, plan, sub_rx, &abort);
            if r.is_ok() {
                guard.disarm();
            }
            r
        })
    };
    let acks = {
        let abort = abort.clone();
        let drain = o.drain_timeout;
        thread::spawn(move || {
            let guard = AbortOnDrop(&abort, true);
            let r = read_acks(publ, ack_rx, drain, &abort);
            if r.is_ok() {
                guard.disarm();
            }
            r
        })
    };

    let published = {
        let guard = AbortOnDrop(&abort, true);
        let r = publish(writer, sched, &o.topic, o.size, run, &abort);
        if let Ok(p) = &r {
            guard.disarm();
            // Receivers gone means their thread already ended; its result tells why.
            let _ = sub_tx.send(p.sent);
            let _ = ack_tx.send(p.sent);
        }
        drop((sub_tx, ack_tx));
        r
    };
    let acked = acks
        .join()
        .map_err(|_| anyhow::anyhow!("the PUB response reader panicked"))?;
    let consumed = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer panicked"))?;
    // nsqd's error frame explains a failed write better than the write error does.
    let acked = acked?;
    let consumed = consumed?;
    let published = published?;

    report::log(
        prefix,
        &format!(
            "published {} msgs in {} ({:.0}/s), {} acknowledged; at worst {} behind schedule",
            published.sent,
            nsq_flags::format_go_duration(published.duration),
            published.sent as f64 / published.duration.as_secs_f64(),
            acked,
            nsq_flags::format_go_duration(published.max_lag),
        ),
    );
    if acked < published.sent {
        report::log(
            prefix,
            &format!(
                "WARNING: {} PUBs unanswered after --drain-timeout",
                published.sent - acked
            ),
        );
    }
    if consumed.foreign > 0 {
        report::log(
            prefix,
            &format!(
                "WARNING: ignored {} messages of another run (use a fresh --topic)",
                consumed.foreign
            ),
        );
    }
    if consumed.duplicates > 0 {
        report::log(
            prefix,
            &format!(
                "WARNING: {} messages arrived more than once (counted once)",
                consumed.duplicates
            ),
        );
    }
    let sent = published.sent.saturating_sub(warmup_count);
    if consumed.received < published.sent {
        report::log(
            prefix,
            &format!(
                "WARNING: {} of {} messages not received within --drain-timeout {}",
                published.sent - consumed.received,
                published.sent,
                nsq_flags::format_go_duration(o.drain_timeout),
            ),
        );
    }
    Ok(Outcome {
        mode: Mode::E2e,
        rate: o.rate,
        sent,
        received: consumed.counted,
        hist: consumed.hist,
    })
}

fn run_rtt(prefix: &str, o: &LatencyOpts, user_agent: &str) -> Result<Outcome> {
    let mut conn = Conn::connect(&o.addr)?;
    conn.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
    conn.identify_go_nsq("bench_latency_rtt", user_agent, &Transport::default())?;
    let mut cmd = proto::pub_cmd(&o.topic, &vec![b'a'; o.size])?;
    let body_at = cmd.len() - o.size;
    let run = run_tag();
    let until = if o.count == 0 {
        format!("for {}", nsq_flags::format_go_duration(o.runfor))
    } else {
        format!("{} times", o.count)
    };
    report::log(
        prefix,
        &format!(
            "rtt: one PUB of {} bytes at a time to topic {:?} {until} (first {} not counted)",
            o.size,
            o.topic,
            nsq_flags::format_go_duration(o.warmup),
        ),
    );
    let mut hist = new_histogram()?;
    let start = Instant::now();
    let counted_from = start + o.warmup;
    let end = start + o.runfor;
    let mut seq: u64 = 0;
    let mut counted: u64 = 0;
    loop {
        let t0 = Instant::now();
        let stamp = Stamp {
            sched_ns: since_origin_ns(t0),
            seq: seq as u32,
            run,
        };
        encode_stamp(&mut cmd[body_at..], stamp);
        conn.send(&cmd)?;
        loop {
            match conn.read_event()? {
                Event::Ok => break,
                Event::Heartbeat => conn.send(proto::NOP)?,
                Event::Error(e) => bail!("nsqd refused PUB: {e}"),
                Event::Response(r) => bail!("unexpected response to PUB: {r:?}"),
                Event::Message(_) => bail!("the publisher's connection received a message"),
            }
        }
        let rtt = t0.elapsed();
        seq += 1;
        if t0 >= counted_from {
            hist.saturating_record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
            counted += 1;
        }
        let done = if o.count == 0 {
            Instant::now() >= end
        } else {
            counted >= o.count
        };
        if done {
            break;
        }
    }
    let elapsed = start.elapsed();
    report::log(
        prefix,
        &format!(
            "{seq} round trips in {} ({:.0}/s), {counted} counted",
            nsq_flags::format_go_duration(elapsed),
            seq as f64 / elapsed.as_secs_f64(),
        ),
    );
    Ok(Outcome {
        mode: Mode::Rtt,
        rate: 0,
        sent: counted,
        received: counted,
        hist,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsq_flags::{FlagSet, Parsed};

    fn values(args: &[&str]) -> Values {
        let mut fs = FlagSet::new("bench_latency");
        for f in flags() {
            fs.add(f);
        }
        match fs.parse(args.iter().copied()) {
            Ok(Parsed::Args(cl)) => cl.values().clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn schedule_counts_messages_due() {
        let s = Schedule::new(10_000, Duration::from_secs(10));
        assert_eq!(s.total(), 100_000);
        // Message 0 is due at the start, message 1 after 100us.
        assert_eq!(s.due(Duration::ZERO), 1);
        assert_eq!(s.due(Duration::from_nanos(99_999)), 1);
        assert_eq!(s.due(Duration::from_micros(100)), 2);
        assert_eq!(s.due(Duration::from_millis(1)), 11);
        assert_eq!(s.due(Duration::from_secs(1)), 10_001);
        // Never more than the run holds, however late.
        assert_eq!(s.due(Duration::from_secs(60)), 100_000);
        assert_eq!(s.before(Duration::from_secs(1)), 10_000);
        assert_eq!(s.at(10_000), Duration::from_secs(1));
    }

    #[test]
    fn schedule_agrees_with_itself_at_awkward_rates() {
        for rate in [1, 3, 7, 999, 33_333, 50_000, 999_999_937] {
            let s = Schedule::new(rate, Duration::from_secs(2));
            for i in [0u64, 1, 2, 5, 17, 1234, s.total() - 1] {
                if i >= s.total() {
                    continue;
                }
                let at = s.at(i);
                assert_eq!(s.due(at), (i + 1).min(s.total()), "rate {rate} i {i}");
                if !at.is_zero() && s.at(i - 1) < at {
                    assert_eq!(s.before(at), i, "rate {rate} i {i}");
                }
            }
            assert!(s.at(s.total() - 1) < Duration::from_secs(2));
            assert!(s.at(s.total()) >= Duration::from_secs(2));
        }
        // A run shorter than one interval still sends its first message.
        assert_eq!(Schedule::new(1, Duration::from_millis(1)).total(), 1);
    }

    #[test]
    fn stamp_round_trips() {
        let s = Stamp {
            sched_ns: 0x0102_0304_0506_0708,
            seq: 0xdead_beef,
            run: 42,
        };
        let mut body = vec![b'a'; 100];
        encode_stamp(&mut body, s);
        assert_eq!(&body[..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&body[STAMP_LEN..], &[b'a'; 100 - STAMP_LEN][..]);
        assert_eq!(decode_stamp(&body), Some(s));
        assert_eq!(decode_stamp(&body[..STAMP_LEN]), Some(s));
        assert_eq!(decode_stamp(&body[..STAMP_LEN - 1]), None);
        assert_eq!(decode_stamp(b""), None);
    }

    #[test]
    fn seen_counts_each_once() {
        let mut s = Seen::new(130);
        assert!(s.insert(0));
        assert!(s.insert(129));
        assert!(!s.insert(129));
        assert!(!s.insert(1_000));
    }

    #[test]
    fn output_lines_and_formatting() {
        assert_eq!(format_us(0), "0.0");
        assert_eq!(format_us(123_449), "123.4");
        assert_eq!(format_us(1_234_560), "1234.6");
        let mut hist = new_histogram().unwrap();
        for us in 1..=1000u64 {
            hist.record(us * 1000).unwrap();
        }
        let o = Outcome {
            mode: Mode::E2e,
            rate: 10_000,
            sent: 1001,
            received: 1000,
            hist,
        };
        let text = o.machine_lines();
        let lines: Vec<&str> = text.lines().collect();
        let keys: Vec<&str> = lines
            .iter()
            .map(|l| l.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["mode", "rate", "sent", "received", "p50_us", "p99_us", "p999_us", "max_us", "lost"]
        );
        assert_eq!(lines[0], "mode: e2e");
        assert_eq!(lines[8], "lost: 1");
        let num = |i: usize| lines[i].split(": ").nth(1).unwrap().parse::<f64>().unwrap();
        // 3 significant digits: within 0.1% of the true percentile.
        assert!((num(4) - 500.0).abs() <= 0.5, "{text}");
        assert!((num(5) - 990.0).abs() <= 1.0, "{text}");
        assert!(num(4) <= num(5) && num(5) <= num(6) && num(6) <= num(7));

        let empty = Outcome {
            mode: Mode::Rtt,
            rate: 0,
            sent: 0,
            received: 0,
            hist: new_histogram().unwrap(),
        };
        assert_eq!(
            empty.machine_lines(),
            "mode: rtt\nrate: 0\nsent: 0\nreceived: 0\np50_us: 0.0\np99_us: 0.0\n\
             p999_us: 0.0\nmax_us: 0.0"
        );
    }

    #[test]
    fn flag_defaults_and_checks() {
        let o = opts(&values(&[])).unwrap();
        assert_eq!(o.mode, Mode::E2e);
        assert_eq!(o.addr, "127.0.0.1:4150");
        assert_eq!(
            (o.topic.as_str(), o.channel.as_str()),
            ("latency_bench", "latency")
        );
        assert_eq!(
            (o.size, o.rate, o.max_in_flight, o.count),
            (100, 10_000, 1, 0)
        );
        assert_eq!(o.runfor, Duration::from_secs(10));
        assert_eq!(o.warmup, Duration::from_secs(1));
        assert_eq!(o.drain_timeout, Duration::from_secs(10));
        let o = opts(&values(&["--mode=rtt", "--count=50", "--warmup=0s"])).unwrap();
        assert_eq!((o.mode, o.count), (Mode::Rtt, 50));
        for bad in [
            &["--mode=bogus"][..],
            &["--size=15"],
            &["--rate=0"],
            &["--max-in-flight=0"],
            &["--warmup=10s"],
            &["--runfor=0s"],
            &["--count=5"],
            &["--mode=rtt", "--count=-1"],
            &["--rate=1000000000", "--runfor=1h"],
            &["--topic="],
        ] {
            assert!(opts(&values(bad)).is_err(), "{bad:?}");
        }
    }
}
