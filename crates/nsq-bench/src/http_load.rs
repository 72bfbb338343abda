//! `bench_http`: closed-loop HTTP GET load. `--concurrency` workers, each with its own
//! keep-alive connection per host, send one request at a time, taking the `--url`s in turn, for
//! `--runfor` or until `--count` requests were sent; then the rate, latency percentiles (request
//! written to last body byte read) and response size as `key: value` lines.
//!
//! It runs on one thread: the servers it measures share the machine, and one thread keeps the
//! tool's own CPU use small and easy to account for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, ACCEPT_ENCODING, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use nsq_flags::{Flag, FlagSet, Values};
use tokio::net::TcpStream;

use crate::cli;

/// Latencies above this are recorded as this (an hour, in microseconds).
const MAX_RECORDED_US: u64 = 3_600_000_000;

/// One URL: where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, also sent as the `Host` header.
    pub addr: String,
    /// Path and query, `/` at least.
    pub path: String,
}

impl Target {
    /// `http://host:port/path?query` (no https; the port defaults to 80).
    pub fn parse(url: &str) -> Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("{url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            bail!("{url:?} has no host");
        }
        let addr = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Target {
            addr,
            path: path.to_string(),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpLoadOpts {
    pub targets: Vec<Target>,
    pub concurrency: usize,
    pub runfor: Duration,
    /// Stop after this many requests (0: only `runfor` stops the run).
    pub count: u64,
    /// One request's limit; a request that takes longer counts as an error and its connection
    /// is dropped.
    pub timeout: Duration,
    /// Sent as `Accept-Encoding` when set (the body is counted as received, not decoded).
    pub accept_encoding: Option<String>,
}

pub fn flags(app: &str) -> FlagSet {
    FlagSet::new(app)
        .flag(Flag::str_list(
            "url",
            "http://host:port/path?query to GET (repeatable: taken in turn)",
        ))
        .flag(Flag::int(
            "concurrency",
            4,
            "requests in flight at once (one connection each)",
        ))
        .flag(cli::runfor_flag())
        .flag(Flag::int(
            "count",
            0,
            "stop after this many requests (0: run for --runfor)",
        ))
        .flag(Flag::duration(
            "timeout",
            Duration::from_secs(60),
            "limit for one request; slower ones count as errors",
        ))
        .flag(Flag::string(
            "accept-encoding",
            "",
            "Accept-Encoding header to send (e.g. gzip, as browsers do); empty: none",
        ))
}

pub fn opts(v: &Values) -> Result<HttpLoadOpts> {
    let targets = v
        .str_list("url")
        .iter()
        .map(|u| Target::parse(u))
        .collect::<Result<Vec<_>>>()?;
    if targets.is_empty() {
        bail!("give at least one --url");
    }
    let runfor = v.duration("runfor");
    if runfor.is_zero() {
        bail!("--runfor must be positive");
    }
    let timeout = v.duration("timeout");
    if timeout.is_zero() {
        bail!("--timeout must be positive");
    }
    let encoding = v.string("accept-encoding");
    Ok(HttpLoadOpts {
        targets,
        concurrency: cli::at_least(v, "concurrency", 1)?,
        runfor,
        count: cli::at_least(v, "count", 0)? as u64,
        timeout,
        accept_encoding: (!encoding.is_empty()).then(|| encoding.to_string()),
    })
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Results {
    /// Requests answered with 200 and read to the end.
    pub ok: u64,
    /// Transport failures, timeouts and non-200 answers.
    pub errors: u64,
    /// The first few errors, for the log.
    pub first_errors: Vec<String>,
    /// From the start to the end of the last request.
    pub duration: Duration,
    /// Latency of the successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Body bytes of the successful requests.
    pub bytes: u64,
}

/// `us` microseconds as milliseconds with three decimals.
fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

impl Results {
    fn quantile_ms(&self, q: f64) -> String {
        if self.latency_us.is_empty() {
            "-".to_string()
        } else {
            ms(self.latency_us.value_at_quantile(q))
        }
    }

    pub fn requests_per_sec(&self) -> f64 {
        self.ok as f64 / self.duration.as_secs_f64()
    }

    /// The `key: value` lines on stdout.
    pub fn machine_lines(&self) -> String {
        let bytes_per_response = self.bytes.checked_div(self.ok).unwrap_or(0);
        format!(
            "requests: {}\nerrors: {}\nduration_s: {:.3}\nreq/s: {:.1}\np50_ms: {}\np90_ms: {}\n\
             p99_ms: {}\nmax_ms: {}\nmean_ms: {:.3}\nbytes_per_response: {bytes_per_response}",
            self.ok,
            self.errors,
            self.duration.as_secs_f64(),
            self.requests_per_sec(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.9),
            self.quantile_ms(0.99),
            if self.latency_us.is_empty() {
                "-".to_string()
            } else {
                ms(self.latency_us.max())
            },
            self.latency_us.mean() / 1000.0,
        )
    }

    /// One line for the log.
    pub fn log_line(&self) -> String {
        format!(
            "{} requests in {:.3}s ({:.1}/s), {} errors; p50 {}ms p99 {}ms",
            self.ok,
            self.duration.as_secs_f64(),
            self.requests_per_sec(),
            self.errors,
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
        )
    }
}

/// Runs the load on a one-thread runtime.
pub fn run(o: HttpLoadOpts) -> Result<Results> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(run_async(o))
}

/// First errors kept per worker and in the results.
const ERRORS_KEPT: usize = 5;

struct WorkerResult {
    ok: u64,
    errors: u64,
    first_errors: Vec<String>,
    latency_us: Histogram<u64>,
    bytes: u64,
}

pub async fn run_async(o: HttpLoadOpts) -> Result<Results> {
    let o = Arc::new(o);
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + o.runfor;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..o.concurrency {
        workers.spawn(worker(w, Arc::clone(&o), Arc::clone(&issued), deadline));
    }
    let mut total = Results {
        ok: 0,
        errors: 0,
        first_errors: Vec::new(),
        duration: Duration::ZERO,
        latency_us: new_histogram()?,
        bytes: 0,
    };
    while let Some(done) = workers.join_next().await {
        let r = done.context("a load worker failed")??;
        total.ok += r.ok;
        total.errors += r.errors;
        total.bytes += r.bytes;
        total
            .latency_us
            .add(&r.latency_us)
            .context("cannot merge latency histograms")?;
        for e in r.first_errors {
            if total.first_errors.len() < ERRORS_KEPT {
                total.first_errors.push(e);
            }
        }
    }
    total.duration = start.elapsed();
    Ok(total)
}

fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_RECORDED_US, 3).context("cannot create a histogram")
}

async fn worker(
    w: usize,
    o: Arc<HttpLoadOpts>,
    issued: Arc<AtomicU64>,
    deadline: Instant,
) -> Result<WorkerResult> {
    let mut r = WorkerResult {
        ok: 0,
        errors: 0,
        first_errors: Vec::new(),
        latency_us: new_histogram()?,
        bytes: 0,
    };
    let mut conns: HashMap<String, SendRequest<Empty<Bytes>>> = HashMap::new();
    let mut next = w % o.targets.len();
    while Instant::now() < deadline {
        if o.count > 0 && issued.fetch_add(1, Ordering::Relaxed) >= o.count {
            break;
        }
        let target = &o.targets[next];
        next = (next + 1) % o.targets.len();
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            o.timeout,
            get(&mut conns, target, o.accept_encoding.as_deref()),
        )
        .await;
        let failure = match outcome {
            Ok(Ok((200, bytes))) => {
                let us = started
                    .elapsed()
                    .as_micros()
                    .min(u128::from(MAX_RECORDED_US)) as u64;
                r.latency_us.saturating_record(us.max(1));
                r.ok += 1;
                r.bytes += bytes;
                continue;
            }
            Ok(Ok((status, _))) => format!("{}: status {status}", target.url()),
            Ok(Err(e)) => {
                conns.remove(&target.addr);
                format!("{}: {e:#}", target.url())
            }
            Err(_) => {
                conns.remove(&target.addr);
                format!("{}: no answer within {:?}", target.url(), o.timeout)
            }
        };
        r.errors += 1;
        if r.first_errors.len() < ERRORS_KEPT {
            r.first_errors.push(failure);
        }
    }
    Ok(r)
}

/// One GET on the worker's connection to the target's host (opened when missing or closed);
/// returns the status and the body's length, read to the end.
async fn get(
    conns: &mut HashMap<String, SendRequest<Empty<Bytes>>>,
    target: &Target,
    accept_encoding: Option<&str>,
) -> Result<(u16, u64)> {
    if conns.get(&target.addr).is_none_or(|s| s.is_closed()) {
        conns.insert(target.addr.clone(), connect(&target.addr).await?);
    }
    let sender = conns
        .get_mut(&target.addr)
        .ok_or_else(|| anyhow!("no connection to {}", target.addr))?;
    sender.ready().await.context("connection closed")?;
    let mut req = Request::get(target.path.as_str())
        .header(HOST, target.addr.as_str())
        .body(Empty::<Bytes>::new())
        .context("cannot build the request")?;
    if let Some(enc) = accept_encoding {
        req.headers_mut().insert(
            ACCEPT_ENCODING,
            HeaderValue::from_str(enc).context("bad --accept-encoding")?,
        );
    }
    let resp = sender.send_request(req).await.context("request failed")?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.context("reading the body failed")?.into_data() {
            bytes += data.len() as u64;
        }
    }
    Ok((status, bytes))
}

async fn connect(addr: &str) -> Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake failed")?;
    tokio::spawn(async move {
        // Ends when the server closes or the sender is dropped; errors surface on the sender.
        let _ = conn.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:4171/api/topics/t0?x=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:4171");
        assert_eq!(t.path, "/api/topics/t0?x=1");
        assert_eq!(t.url(), "http://127.0.0.1:4171/api/topics/t0?x=1");
        assert_eq!(Target::parse("http://h").unwrap().addr, "h:80");
        assert_eq!(Target::parse("http://h:1").unwrap().path, "/");
        assert_eq!(Target::parse("http://[::1]:9/").unwrap().addr, "[::1]:9");
        assert_eq!(Target::parse("http://[::1]/").unwrap().addr, "[::1]:80");
        assert!(Target::parse("https://h/").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn lines_without_successes() {
        let r = Results {
            ok: 0,
            errors: 3,
            first_errors: vec![],
            duration: Duration::from_secs(1),
            latency_us: new_histogram().unwrap(),
            bytes: 0,
        };
        let lines = r.machine_lines();
        assert!(lines.starts_with("requests: 0\nerrors: 3\n"), "{lines}");
        assert!(lines.contains("p99_ms: -\n"), "{lines}");
    }
}
