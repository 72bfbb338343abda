//! `bench_scrape`: what scraping nsqd's HTTP pages costs.
//!
//! Optionally creates `--create-topics` topics with `--channels-per-topic` channels each first.
//! Then either measures (`--count` rounds, each GETting every `--path` once in turn, printing per
//! path the median, p90 and max time and the page size as `key: value` lines) or, with
//! `--interval`, scrapes the first `--path` at that period for `--runfor` as a monitoring system
//! would, while another tool measures nsqd's throughput.
//!
//! Every request is a fresh connection (`Connection: close`), as a scraper that polls every few
//! seconds would make; the time runs from connecting to the last byte of the body.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nsq_bench::{cli, report};
use nsq_flags::{Flag, FlagSet, Values};

const NAME: &str = "bench_scrape";

fn flags() -> FlagSet {
    FlagSet::new(NAME)
        .flag(Flag::string(
            "nsqd-http-address",
            "127.0.0.1:4151",
            "<addr>:<port> of nsqd's HTTP listener",
        ))
        .flag(Flag::str_list(
            "path",
            "path and query to GET (repeatable; default /metrics)",
        ))
        .flag(Flag::int(
            "create-topics",
            0,
            "create this many topics (scrape-NNNNN) before measuring",
        ))
        .flag(Flag::int(
            "channels-per-topic",
            1,
            "channels (ch-N) created in each of --create-topics",
        ))
        .flag(Flag::int(
            "count",
            10,
            "measuring rounds (each GETs every --path once)",
        ))
        .flag(Flag::duration(
            "interval",
            Duration::ZERO,
            "scrape the first --path at this period for --runfor instead of measuring",
        ))
        .flag(cli::runfor_flag())
}

struct Opts {
    addr: String,
    paths: Vec<String>,
    topics: usize,
    channels: usize,
    count: usize,
    interval: Duration,
    runfor: Duration,
}

fn opts(v: &Values) -> Result<Opts> {
    let mut paths: Vec<String> = v.str_list("path").to_vec();
    if paths.is_empty() {
        paths.push("/metrics".to_string());
    }
    if let Some(p) = paths.iter().find(|p| !p.starts_with('/')) {
        bail!("--path {p:?} must start with /");
    }
    Ok(Opts {
        addr: v.string("nsqd-http-address").to_string(),
        paths,
        topics: cli::at_least(v, "create-topics", 0)?,
        channels: cli::at_least(v, "channels-per-topic", 1)?,
        count: cli::at_least(v, "count", 1)?,
        interval: v.duration("interval"),
        runfor: v.duration("runfor"),
    })
}

fn main() -> ExitCode {
    let fs = flags();
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let o = opts(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    cli::finish(NAME, run(o))
}

/// One request on a fresh connection: status and body length.
fn request(addr: &str, method: &str, path: &str) -> Result<(u16, usize)> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::with_capacity(64 * 1024);
    s.read_to_end(&mut buf)?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("{method} {path}: no complete header"))?;
    let status = std::str::from_utf8(buf.get(..head_end).unwrap_or_default())
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("{method} {path}: bad status line"))?;
    Ok((status, buf.len() - head_end - 4))
}

fn create(o: &Opts) -> Result<()> {
    if o.topics == 0 {
        return Ok(());
    }
    let started = Instant::now();
    // A few connections at once: creating a durable channel waits for fsyncs.
    let workers = 4;
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || -> Result<()> {
                    for t in (w..o.topics).step_by(workers) {
                        let topic = format!("/topic/create?topic=scrape-{t:05}");
                        let channels = (0..o.channels)
                            .map(|c| format!("/channel/create?topic=scrape-{t:05}&channel=ch-{c}"));
                        for path in std::iter::once(topic).chain(channels) {
                            let (status, _) = request(&o.addr, "POST", &path)?;
                            if status != 200 {
                                bail!("POST {path}: status {status}");
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow!("a creating thread panicked"))??;
        }
        Ok(())
    })?;
    report::log(
        NAME,
        &format!(
            "created {} topics x {} channels in {:.1}s",
            o.topics,
            o.channels,
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

fn get(o: &Opts, path: &str) -> Result<(Duration, usize)> {
    let t = Instant::now();
    let (status, len) = request(&o.addr, "GET", path)?;
    if status != 200 {
        bail!("GET {path}: status {status}");
    }
    Ok((t.elapsed(), len))
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The value at quantile `q` of sorted `v`.
fn at(v: &[Duration], q: f64) -> Duration {
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

fn measure(o: &Opts) -> Result<()> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); o.paths.len()];
    let mut sizes = vec![0usize; o.paths.len()];
    for _ in 0..o.count {
        // Paths in turn, so a slow moment of a shared machine hits all of them.
        for (i, p) in o.paths.iter().enumerate() {
            let (d, len) = get(o, p)?;
            times[i].push(d);
            sizes[i] = len;
        }
    }
    for ((p, mut t), size) in o.paths.iter().zip(times).zip(sizes) {
        t.sort();
        report::log(
            NAME,
            &format!("GET {p}: median {} ms, {size} bytes", ms(at(&t, 0.5))),
        );
        println!(
            "path: {p}\nrequests: {}\np50_ms: {}\np90_ms: {}\nmax_ms: {}\nbytes: {size}",
            t.len(),
            ms(at(&t, 0.5)),
            ms(at(&t, 0.9)),
            ms(t.last().copied().unwrap_or_default()),
        );
    }
    Ok(())
}

fn scrape_periodically(o: &Opts) -> Result<()> {
    let path = o.paths.first().map(String::as_str).unwrap_or("/metrics");
    let start = Instant::now();
    let mut times = Vec::new();
    let mut next = start;
    while start.elapsed() < o.runfor {
        let (d, _) = get(o, path)?;
        times.push(d);
        next += o.interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    times.sort();
    println!(
        "path: {path}\nscrapes: {}\np50_ms: {}\nmax_ms: {}",
        times.len(),
        ms(at(&times, 0.5)),
        ms(times.last().copied().unwrap_or_default())
    );
    Ok(())
}

fn run(o: Opts) -> Result<()> {
    create(&o)?;
    if o.interval.is_zero() {
        measure(&o)
    } else {
        scrape_periodically(&o)
    }
}
