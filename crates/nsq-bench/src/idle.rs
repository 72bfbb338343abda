//! `bench_idle`: many subscribed consumers that only answer heartbeats, held open for a while to
//! measure what idle connections cost nsqd (memory, CPU) and to load it while other benchmarks
//! run.
//!
//! Unlike the other tools this one uses tokio: thousands of connections that are silent almost
//! all the time are what an event loop is for, and one thread keeps the tool's own CPU use (on
//! the machine it shares with nsqd) small and easy to account for.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nsq_flags::{Flag, FlagSet, Values};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinSet;

use crate::proto::{self, Frame};
use crate::{cli, procstat, report};

/// A whole handshake (connect, IDENTIFY, SUB) gets this long; nsqd answers at once, so running
/// out means it is stuck or its backlog overflowed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// File descriptors the tool needs besides its connections (stdio, epoll, signal pipe, getconf,
/// /proc files), with room to spare.
const SPARE_FDS: u64 = 64;

/// Failures logged one by one; beyond this only the count is reported, since a dead nsqd would
/// otherwise produce one line per connection.
const FAILURES_LOGGED: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct IdleOpts {
    pub addr: String,
    pub conns: usize,
    pub topic: String,
    pub channel: String,
    pub heartbeat_interval: Duration,
    pub rdy: u64,
    /// How long to hold the connections once all are up.
    pub runfor: Duration,
    /// nsqd's process to sample (`None`: no sampling).
    pub pid: Option<u32>,
    /// Connections opened at once.
    pub wave: usize,
}

/// The tool's flags, with NSQ's names where the other bench tools have them.
pub fn flags(app: &str) -> FlagSet {
    FlagSet::new(app)
        .flag(cli::address_flag())
        .flag(Flag::int(
            "conns",
            10_000,
            "number of idle consumer connections",
        ))
        .flag(Flag::string("topic", "idle_bench", "topic to subscribe to"))
        .flag(Flag::string("channel", "idle", "channel to subscribe to"))
        .flag(Flag::duration(
            "heartbeat-interval",
            Duration::from_secs(30),
            "heartbeat interval asked for in IDENTIFY (nsqd accepts 1s up to its \
             --max-heartbeat-interval)",
        ))
        .flag(Flag::int("rdy", 1, "RDY count each connection sends"))
        .flag(Flag::duration(
            "runfor",
            Duration::from_secs(30),
            "how long to hold the connections once all are up",
        ))
        .flag(Flag::int(
            "pid",
            0,
            "nsqd's process id, to sample its memory and CPU from /proc (0: don't sample)",
        ))
        .flag(Flag::int(
            "wave-size",
            256,
            "connections opened at once; the next wave starts when all are subscribed, so \
             nsqd's accept backlog cannot overflow",
        ))
}

pub fn opts(v: &Values) -> Result<IdleOpts> {
    let heartbeat_interval = v.duration("heartbeat-interval");
    if heartbeat_interval < Duration::from_millis(1) {
        bail!("--heartbeat-interval must be at least 1ms (nsqd itself wants at least 1s)");
    }
    let runfor = v.duration("runfor");
    if runfor.is_zero() {
        bail!("--runfor must be positive");
    }
    let pid = v.int("pid");
    let pid = u32::try_from(pid).with_context(|| format!("--pid {pid} is not a process id"))?;
    Ok(IdleOpts {
        addr: v.string("nsqd-tcp-address").to_string(),
        conns: cli::at_least(v, "conns", 1)?,
        topic: v.string("topic").to_string(),
        channel: v.string("channel").to_string(),
        heartbeat_interval,
        rdy: cli::at_least(v, "rdy", 0)? as u64,
        runfor,
        pid: (pid != 0).then_some(pid),
        wave: cli::at_least(v, "wave-size", 1)?,
    })
}

/// What nsqd's process looked like, from `/proc`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NsqdUsage {
    pub rss_before_kib: u64,
    /// After all connections were up (or when interrupted while connecting).
    pub rss_idle_kib: u64,
    /// CPU time over wall time during the hold, in percent of one core; `None` without a hold.
    pub cpu_idle_percent: Option<f64>,
}

/// The figures of a run, printed on stdout.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// Connections that were established.
    pub conns: usize,
    pub heartbeats: u64,
    pub nsqd: Option<NsqdUsage>,
}

impl Results {
    /// The lines after `conns:`/`ready`, in the order a suite script expects. Memory per
    /// connection may be negative when nsqd returned memory to the OS meanwhile.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("heartbeats: {}", self.heartbeats)];
        if let Some(u) = &self.nsqd {
            out.push(format!("rss_before_kib: {}", u.rss_before_kib));
            out.push(format!("rss_idle_kib: {}", u.rss_idle_kib));
            if self.conns > 0 {
                let grown = (u.rss_idle_kib as i64 - u.rss_before_kib as i64) * 1024;
                out.push(format!("rss_per_conn_bytes: {}", grown / self.conns as i64));
            }
            if let Some(cpu) = u.cpu_idle_percent {
                out.push(format!("cpu_idle_percent: {cpu:.2}"));
            }
        }
        out
    }
}

/// `IDENTIFY` asking for feature negotiation (so nsqd answers with its settings as JSON) and
/// the heartbeat interval in milliseconds, as the protocol wants it.
pub fn identify(client_id: &str, user_agent: &str, heartbeat_interval: Duration) -> Vec<u8> {
    proto::identify_with(&serde_json::json!({
        "client_id": client_id,
        "hostname": client_id,
        "user_agent": user_agent,
        "feature_negotiation": true,
        "heartbeat_interval": heartbeat_interval.as_millis() as u64,
    }))
}

/// Checks that this process (and nsqd, when its pid is known) may open enough files, so a low
/// limit fails at once with advice instead of as a connection error halfway through.
fn check_fd_limits(tool: &str, o: &IdleOpts) -> Result<()> {
    let need = o.conns as u64 + SPARE_FDS;
    match procstat::own_nofile_soft() {
        Ok(Some(limit)) if limit < need => bail!(
            "the open-files limit (ulimit -n) is {limit}, too low for --conns={}: raise it to \
             at least {need} (e.g. `ulimit -n {need}` in the shell that starts {tool})",
            o.conns
        ),
        Ok(_) => {}
        Err(e) => report::log(
            tool,
            &format!("WARNING: cannot check the open-files limit: {e:#}"),
        ),
    }
    if let Some(pid) = o.pid {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            bail!("--pid={pid}: there is no such process");
        }
        match procstat::nofile_soft(pid) {
            Ok(Some(limit)) if limit < need => bail!(
                "nsqd (pid {pid}) may open only {limit} files, too few for --conns={}: start \
                 it from a shell with `ulimit -n {need}` or more",
                o.conns
            ),
            Ok(_) => {}
            Err(e) => report::log(
                tool,
                &format!("WARNING: cannot check nsqd's open-files limit: {e:#}"),
            ),
        }
    }
    Ok(())
}

/// Runs the whole benchmark on a single-threaded runtime. Prints `conns: N` and `ready` as soon
/// as all connections are up, and the other figures after the hold.
pub fn run(tool: &str, user_agent: &str, o: IdleOpts) -> Result<()> {
    check_fd_limits(tool, &o)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(run_async(tool, user_agent, o))
}

/// SIGINT or SIGTERM: the end of the run, as if `--runfor` had passed.
struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// Counters shared by all connections.
#[derive(Default)]
struct Counters {
    heartbeats: AtomicU64,
    /// Messages received (and finished); an idle topic should deliver none.
    messages: AtomicU64,
}

/// Connections lost during the run, by the first few reasons.
#[derive(Default)]
struct Failures {
    count: usize,
    first: Option<String>,
}

impl Failures {
    fn add(&mut self, tool: &str, e: &anyhow::Error) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(format!("{e:#}"));
        }
        if self.count <= FAILURES_LOGGED {
            report::log(tool, &format!("ERROR: connection lost: {e:#}"));
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the script went away) must not turn into a panic mid-run.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn run_async(tool: &str, user_agent: &str, o: IdleOpts) -> Result<()> {
    let mut signals = Signals::new()?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(o.addr.as_str())
        .await
        .with_context(|| format!("cannot resolve nsqd address {:?}", o.addr))?
        .collect();
    let addrs: Arc<[SocketAddr]> = addrs.into();
    if addrs.is_empty() {
        bail!("nsqd address {:?} resolves to nothing", o.addr);
    }

    let clk_tck = o.pid.map(|_| procstat::clk_tck());
    let (before, cpu_before) = match o.pid {
        Some(pid) => {
            let rss = procstat::rss_kib(pid).context("sampling nsqd")?;
            let cpu = procstat::cpu_ticks(pid).context("sampling nsqd")?;
            report::log(tool, &format!("nsqd (pid {pid}) RSS before: {rss} KiB"));
            (Some(rss), Some(cpu))
        }
        None => (None, None),
    };

    let counters = Arc::new(Counters::default());
    let sub = Arc::new(proto::sub(&o.topic, &o.channel));
    let rdy = Arc::new(proto::rdy(o.rdy));
    let mut held: JoinSet<Result<Infallible>> = JoinSet::new();
    let mut lost = Failures::default();
    let mut up = 0usize;
    let mut interrupted = false;
    let progress_every = (o.conns / 5).max(1000);
    let mut next_progress = progress_every;
    let connect_start = Instant::now();
    report::log(
        tool,
        &format!(
            "opening {} connections to {} in waves of {} (heartbeat-interval {}, RDY {})",
            o.conns,
            o.addr,
            o.wave,
            nsq_flags::format_go_duration(o.heartbeat_interval),
            o.rdy
        ),
    );

    'connect: while up < o.conns {
        let first = up;
        let n = o.wave.min(o.conns - up);
        let mut wave = JoinSet::new();
        for i in first..first + n {
            let hello = [
                proto::MAGIC_V2,
                &identify(&format!("idle-{i}"), user_agent, o.heartbeat_interval),
            ]
            .concat();
            wave.spawn(handshake(
                addrs.clone(),
                hello,
                sub.clone(),
                rdy.clone(),
                counters.clone(),
            ));
        }
        let mut failed = Failures::default();
        loop {
            let joined = tokio::select! {
                _ = signals.recv() => {
                    interrupted = true;
                    break 'connect;
                }
                joined = wave.join_next() => joined,
            };
            let Some(joined) = joined else { break };
            match joined.map_err(|e| anyhow!("connection task failed: {e}"))? {
                Ok((conn, settings)) => {
                    if up == 0 {
                        log_settings(tool, &settings, o.rdy);
                    }
                    held.spawn(hold(conn, counters.clone()));
                    up += 1;
                    if up == next_progress && up < o.conns {
                        report::log(tool, &format!("{up}/{} connections up", o.conns));
                        next_progress += progress_every;
                    }
                }
                Err(e) => {
                    if failed.first.is_none() {
                        failed.first = Some(format!("{e:#}"));
                    }
                    failed.count += 1;
                }
            }
        }
        if failed.count > 0 {
            bail!(
                "{} of {} connections in the wave from #{first} failed ({up} were up): {}",
                failed.count,
                n,
                failed.first.unwrap_or_default()
            );
        }
    }

    let mut cpu_idle_percent = None;
    if !interrupted {
        report::log(
            tool,
            &format!(
                "{up} connections up in {}",
                nsq_flags::format_go_duration(connect_start.elapsed())
            ),
        );
        say(&format!("conns: {up}"));
        say("ready");
    }
    let rss_idle = match o.pid {
        Some(pid) => Some(procstat::rss_kib(pid).context("sampling nsqd")?),
        None => None,
    };

    if !interrupted {
        let cpu_start = match o.pid {
            Some(pid) => Some(procstat::cpu_ticks(pid).context("sampling nsqd")?),
            None => None,
        };
        if let (Some(b), Some(s), Some(tck)) = (cpu_before, cpu_start, clk_tck) {
            let secs = s.saturating_sub(b) as f64 / tck as f64;
            report::log(tool, &format!("nsqd CPU time while connecting: {secs:.2}s"));
        }
        let hold_start = Instant::now();
        let end = tokio::time::sleep(o.runfor);
        tokio::pin!(end);
        loop {
            tokio::select! {
                _ = &mut end => break,
                _ = signals.recv() => {
                    interrupted = true;
                    break;
                }
                joined = held.join_next() => match joined {
                    Some(joined) => lost.add(tool, &task_failure(joined)),
                    None => {
                        report::log(tool, "ERROR: every connection is gone: ending the hold");
                        break;
                    }
                },
            }
        }
        let wall = hold_start.elapsed();
        if let (Some(pid), Some(start), Some(tck)) = (o.pid, cpu_start, clk_tck) {
            // nsqd may have exited during the hold; the lost connections then say more than
            // a failed sample, so the run goes on to report them.
            match procstat::cpu_ticks(pid) {
                Ok(end) => {
                    let cpu_secs = end.saturating_sub(start) as f64 / tck as f64;
                    cpu_idle_percent = Some(cpu_secs / wall.as_secs_f64() * 100.0);
                }
                Err(e) => report::log(tool, &format!("WARNING: sampling nsqd: {e:#}")),
            }
            if let Ok(rss) = procstat::rss_kib(pid) {
                report::log(tool, &format!("nsqd RSS at the end of the hold: {rss} KiB"));
            }
        }
    }
    if interrupted {
        report::log(tool, "interrupted: closing the connections");
    }

    // Failures that happened while connecting or in the last instant are still in the set.
    while let Some(joined) = held.try_join_next() {
        lost.add(tool, &task_failure(joined));
    }
    let heartbeats = counters.heartbeats.load(Ordering::Relaxed);
    held.shutdown().await;

    let results = Results {
        conns: up,
        heartbeats,
        nsqd: before.zip(rss_idle).map(|(b, i)| NsqdUsage {
            rss_before_kib: b,
            rss_idle_kib: i,
            cpu_idle_percent,
        }),
    };
    if interrupted && up < o.conns {
        say(&format!("conns: {up}"));
    }
    for line in results.lines() {
        say(&line);
    }
    let messages = counters.messages.load(Ordering::Relaxed);
    if messages > 0 {
        report::log(
            tool,
            &format!("WARNING: received and finished {messages} messages on the idle channel"),
        );
    }
    if lost.count > 0 {
        bail!(
            "{} of {up} connections were closed or refused by nsqd: {}",
            lost.count,
            lost.first.unwrap_or_default()
        );
    }
    Ok(())
}

/// A held connection only ends by failing (or by being aborted, which is not reported).
fn task_failure(
    joined: std::result::Result<Result<Infallible>, tokio::task::JoinError>,
) -> anyhow::Error {
    match joined {
        Ok(Err(e)) => e,
        Ok(Ok(never)) => match never {},
        Err(e) => anyhow!("connection task failed: {e}"),
    }
}

/// Logs what nsqd agreed to in IDENTIFY (its answer does not echo the heartbeat interval: a
/// refused one is an error instead), and warns when `--rdy` is more than it allows, since each
/// connection would then be closed with `E_INVALID` right away.
fn log_settings(tool: &str, settings: &[u8], rdy: u64) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(settings) else {
        report::log(
            tool,
            &format!(
                "WARNING: IDENTIFY answered {:?}, not JSON settings",
                String::from_utf8_lossy(settings)
            ),
        );
        return;
    };
    let max_rdy = v["max_rdy_count"].as_u64();
    report::log(
        tool,
        &format!(
            "nsqd {} max_rdy_count={} output_buffer_timeout={}",
            v["version"].as_str().unwrap_or("?"),
            max_rdy.map_or("?".to_string(), |m| m.to_string()),
            v["output_buffer_timeout"]
        ),
    );
    if max_rdy.is_some_and(|m| rdy > m) {
        report::log(tool, "WARNING: --rdy is above nsqd's max_rdy_count");
    }
}

/// An established, subscribed connection and any bytes read past the handshake.
struct Held {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Connects, sends the magic and IDENTIFY, SUB, then RDY. Returns the connection with nsqd's
/// IDENTIFY answer (its settings as JSON).
async fn handshake(
    addrs: Arc<[SocketAddr]>,
    hello: Vec<u8>,
    sub: Arc<Vec<u8>>,
    rdy: Arc<Vec<u8>>,
    counters: Arc<Counters>,
) -> Result<(Held, Vec<u8>)> {
    let steps = async {
        let stream = connect(&addrs).await?;
        // As Go does for every TCP connection; NOPs then leave at once.
        stream.set_nodelay(true)?;
        let mut conn = Held {
            stream,
            buf: Vec::with_capacity(512),
        };
        conn.stream.write_all(&hello).await?;
        let settings = conn.response(&counters).await.context("IDENTIFY failed")?;
        conn.stream.write_all(&sub).await?;
        let ok = conn.response(&counters).await.context("SUB failed")?;
        if ok != b"OK" {
            bail!("SUB answered {:?}", String::from_utf8_lossy(&ok));
        }
        conn.stream.write_all(&rdy).await?;
        Ok((conn, settings))
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, steps)
        .await
        .map_err(|_| anyhow!("no answer from nsqd within {HANDSHAKE_TIMEOUT:?}"))?
}

async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream> {
    let mut last = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(anyhow!(e).context(format!("cannot connect to {a}"))),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no address to connect to")))
}

impl Held {
    /// Reads until a response other than a heartbeat arrives (heartbeats are answered on the
    /// way) and returns its body; an error frame is an error.
    async fn response(&mut self, counters: &Counters) -> Result<Vec<u8>> {
        loop {
            let mut nops = 0;
            let mut found = None;
            let mut used = 0;
            while let Some((frame, n)) = proto::parse_frame(&self.buf[used..])? {
                used += n;
                match frame {
                    Frame::Response(r) if r == proto::HEARTBEAT => nops += 1,
                    Frame::Response(r) => {
                        found = Some(r.to_vec());
                        break;
                    }
                    Frame::Error(e) => bail!("nsqd: {}", String::from_utf8_lossy(e)),
                    Frame::Message { .. } => bail!("nsqd sent a message before RDY"),
                }
            }
            self.buf.drain(..used);
            if nops > 0 {
                counters.heartbeats.fetch_add(nops, Ordering::Relaxed);
                self.stream
                    .write_all(&proto::NOP.repeat(nops as usize))
                    .await?;
            }
            if let Some(r) = found {
                return Ok(r);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                bail!("nsqd closed the connection");
            }
        }
    }
}

/// Idles on a connection: answers heartbeats with NOP and finishes any message. Returns only
/// on failure: nsqd closing the connection or sending an error.
async fn hold(mut conn: Held, counters: Arc<Counters>) -> Result<Infallible> {
    let mut out = Vec::new();
    loop {
        let mut used = 0;
        while let Some((frame, n)) = proto::parse_frame(&conn.buf[used..])? {
            used += n;
            match frame {
                Frame::Response(r) if r == proto::HEARTBEAT => {
                    counters.heartbeats.fetch_add(1, Ordering::Relaxed);
                    out.extend_from_slice(proto::NOP);
                }
                // Nothing else is expected; an unknown answer is no reason to fail the run.
                Frame::Response(_) => {}
                Frame::Error(e) => bail!("nsqd sent {}", String::from_utf8_lossy(e)),
                Frame::Message { id, .. } => {
                    counters.messages.fetch_add(1, Ordering::Relaxed);
                    proto::put_fin(&mut out, &id);
                }
            }
        }
        conn.buf.drain(..used);
        if !out.is_empty() {
            conn.stream
                .write_all(&out)
                .await
                .context("cannot answer nsqd")?;
            out.clear();
        }
        let n = conn
            .stream
            .read_buf(&mut conn.buf)
            .await
            .context("reading from nsqd")?;
        if n == 0 {
            bail!("nsqd closed the connection");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsq_flags::Parsed;

    fn parse(args: &[&str]) -> Result<IdleOpts> {
        match flags("bench_idle").parse(args.iter().copied()) {
            Ok(Parsed::Args(cl)) => opts(cl.values()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.addr, "127.0.0.1:4150");
        assert_eq!((o.conns, o.rdy, o.pid, o.wave), (10_000, 1, None, 256));
        assert_eq!(
            (o.topic.as_str(), o.channel.as_str()),
            ("idle_bench", "idle")
        );
        assert_eq!(o.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(o.runfor, Duration::from_secs(30));
    }

    #[test]
    fn flags_are_checked() {
        let o = parse(&["--conns=200", "-heartbeat-interval", "1s", "--pid=42"]).unwrap();
        assert_eq!((o.conns, o.pid), (200, Some(42)));
        assert_eq!(o.heartbeat_interval, Duration::from_secs(1));
        assert!(parse(&["--conns=0"]).is_err());
        assert!(parse(&["--pid=-1"]).is_err());
        assert!(parse(&["--runfor=0s"]).is_err());
        assert!(parse(&["--heartbeat-interval=0s"]).is_err());
        assert!(parse(&["--wave-size=0"]).is_err());
        assert!(parse(&["--rdy=-1"]).is_err());
    }

    #[test]
    fn identify_sends_heartbeat_in_milliseconds() {
        let cmd = identify("idle-7", "ua", Duration::from_millis(1500));
        let body = &cmd[b"IDENTIFY\n".len() + 4..];
        let len = u32::from_be_bytes([cmd[9], cmd[10], cmd[11], cmd[12]]) as usize;
        assert_eq!(len, body.len());
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["heartbeat_interval"], 1500);
        assert_eq!(v["feature_negotiation"], true);
        assert_eq!(v["client_id"], "idle-7");
    }

    #[test]
    fn result_lines() {
        let r = Results {
            conns: 10_000,
            heartbeats: 33_000,
            nsqd: Some(NsqdUsage {
                rss_before_kib: 10_000,
                rss_idle_kib: 60_000,
                cpu_idle_percent: Some(0.4),
            }),
        };
        assert_eq!(
            r.lines(),
            [
                "heartbeats: 33000",
                "rss_before_kib: 10000",
                "rss_idle_kib: 60000",
                "rss_per_conn_bytes: 5120",
                "cpu_idle_percent: 0.40",
            ]
        );
        let bare = Results {
            conns: 3,
            heartbeats: 0,
            nsqd: None,
        };
        assert_eq!(bare.lines(), ["heartbeats: 0"]);
        let shrunk = Results {
            conns: 2,
            heartbeats: 1,
            nsqd: Some(NsqdUsage {
                rss_before_kib: 10,
                rss_idle_kib: 9,
                cpu_idle_percent: None,
            }),
        };
        assert_eq!(
            shrunk.lines(),
            [
                "heartbeats: 1",
                "rss_before_kib: 10",
                "rss_idle_kib: 9",
                "rss_per_conn_bytes: -512",
            ]
        );
    }
}
