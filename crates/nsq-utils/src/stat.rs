//! `nsq_stat`: polls `/stats` of every nsqd holding a topic (given directly or found through
//! nsqlookupd) and prints one channel's totals and rates as a table, like NSQ's `nsq_stat`.
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use nsq_flags::{parse_go_duration_nanos, Flag, FlagSet};
use nsq_http::client::{ClientError, ClientTimeouts};
use serde::Deserialize;

use crate::common::{self, Cli, Sources, LOOKUPD_HTTP_FLAG};

const APP: &str = "nsq_stat";
const NSQD_HTTP_FLAG: &str = "nsqd-http-address";
/// Go prints the column header before the first row and then every 25 polls.
const HEADER_EVERY: u64 = 25;

fn flag_set(program: &str) -> FlagSet {
    FlagSet::new(program)
        .flag(Flag::bool("version", false, "print version"))
        .flag(Flag::string("topic", "", "NSQ topic"))
        .flag(Flag::string("channel", "", "NSQ channel"))
        .flag(
            Flag::string(
                "interval",
                "2s",
                "duration of time between polling/printing output",
            )
            .normalizer(go_duration)
            .value_name("duration"),
        )
        .flag(
            Flag::string(
                "http-client-connect-timeout",
                "2s",
                "timeout for HTTP connect",
            )
            .normalizer(go_duration)
            .value_name("duration"),
        )
        .flag(
            Flag::string(
                "http-client-request-timeout",
                "5s",
                "timeout for HTTP request",
            )
            .normalizer(go_duration)
            .value_name("duration"),
        )
        .flag(
            Flag::string("count", "", "number of reports")
                .normalizer(go_int32)
                .value_name("value"),
        )
        .flag(Flag::str_list(
            NSQD_HTTP_FLAG,
            "nsqd HTTP address (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            LOOKUPD_HTTP_FLAG,
            "lookupd HTTP address (may be given multiple times)",
        ))
}

/// Go's duration flags accept negative values (which `main` then rejects with its own words),
/// so durations are kept as text and checked here only for syntax.
fn go_duration(s: &str) -> Result<Option<String>, String> {
    parse_go_duration_nanos(s)
        .map(|_| Some(s.to_string()))
        .map_err(|_| "parse error".to_string())
}

/// `--count` is parsed as Go's `strconv.ParseInt(s, 10, 32)`.
fn go_int32(s: &str) -> Result<Option<String>, String> {
    parse_int32(s).map(|_| Some(s.to_string()))
}

fn parse_int32(s: &str) -> Result<i32, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            nsq_flags::go_quote(s)
        ));
    }
    s.parse::<i32>().map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            nsq_flags::go_quote(s)
        )
    })
}

/// What `nsq_stat` was asked to watch, after validation.
#[derive(Debug, Clone)]
struct Options {
    topic: String,
    channel: String,
    interval: Duration,
    timeouts: ClientTimeouts,
    /// Rows to print before exiting; `None` runs until a signal.
    count: Option<u64>,
    sources: Sources,
}

/// Runs `nsq_stat` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let flags = flag_set(&common::program_name(APP));
    let cl = match common::parse_flags(&flags, args) {
        Cli::Run(cl) => cl,
        Cli::Exit(code) => return code,
    };
    let v = cl.values();
    if v.bool("version") {
        println!("{}", common::version_line(APP));
        return ExitCode::SUCCESS;
    }
    let opts = match validate(&cl) {
        Ok(o) => o,
        Err(msg) => return common::fatal(&msg),
    };
    let rt = match common::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let fetch = || fetch_channel(&opts);
        let mut out = std::io::stdout();
        tokio::select! {
            r = stat_loop(&opts, fetch, &mut out) => match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(msg) => common::fatal(&msg),
            },
            _ = common::shutdown_signal(true) => ExitCode::SUCCESS,
        }
    })
}

/// The checks of Go's `nsq_stat`, in its order and words.
fn validate(cl: &nsq_flags::CommandLine) -> Result<Options, String> {
    let v = cl.values();
    let topic = v.string("topic").to_string();
    let channel = v.string("channel").to_string();
    if topic.is_empty() || channel.is_empty() {
        return Err("--topic and --channel are required".into());
    }
    let positive = |name: &str| -> Result<Duration, String> {
        match parse_go_duration_nanos(v.string(name)) {
            Ok(n) if n > 0 => Ok(Duration::from_nanos(n.unsigned_abs())),
            _ => Err(format!("--{name} should be positive")),
        }
    };
    let interval = positive("interval")?;
    let connect = positive("http-client-connect-timeout")?;
    let request = positive("http-client-request-timeout")?;
    let count = if cl.is_set("count") {
        match parse_int32(v.string("count")) {
            Ok(n) if n > 0 => Some(u64::from(n.unsigned_abs())),
            _ => return Err("--count should be positive".into()),
        }
    } else {
        None
    };
    let nsqd = v.str_list(NSQD_HTTP_FLAG);
    let lookupd = v.str_list(LOOKUPD_HTTP_FLAG);
    let sources = common::check_sources(NSQD_HTTP_FLAG, nsqd, LOOKUPD_HTTP_FLAG, lookupd)
        .map_err(|e| e.to_string())?;
    for (flag, list) in [(NSQD_HTTP_FLAG, nsqd), (LOOKUPD_HTTP_FLAG, lookupd)] {
        if list.iter().any(|a| a.starts_with("http")) {
            return Err(format!(
                "--{flag} error - address should not contain scheme"
            ));
        }
    }
    Ok(Options {
        topic,
        channel,
        interval,
        timeouts: ClientTimeouts { connect, request },
        count,
        sources,
    })
}

/// One channel's counters summed over every nsqd that has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelTotals {
    pub depth: i64,
    pub memory_depth: i64,
    pub backend_depth: i64,
    pub in_flight: i64,
    pub deferred: i64,
    pub requeued: i64,
    pub timed_out: i64,
    pub messages: i64,
    pub clients: i64,
}

impl ChannelTotals {
    fn add(&mut self, c: &NsqdChannel) {
        self.depth += c.depth;
        self.memory_depth += c.depth - c.backend_depth;
        self.backend_depth += c.backend_depth;
        self.in_flight += c.in_flight_count;
        self.deferred += c.deferred_count;
        self.requeued += c.requeue_count;
        self.timed_out += c.timeout_count;
        self.messages += c.message_count;
        self.clients += c.client_count;
    }
}

/// The three-part column header.
pub fn header() -> String {
    format!(
        "{}+{}+{}\n{:>7} {:>7} | {:>7} {:>7} {:>7} {:>5} {:>5} | {:>7} {:>7} {:>12} {:>7}\n",
        "------rate------",
        "----------------depth----------------",
        "--------------metadata---------------",
        "ingress",
        "egress",
        "total",
        "mem",
        "disk",
        "inflt",
        "def",
        "req",
        "t-o",
        "msgs",
        "clients"
    )
}

/// One table row: rates over the last interval, then the current counters. Rates divide by the
/// configured interval (not the time actually elapsed) and truncate toward zero, as Go does.
pub fn row(prev: &ChannelTotals, cur: &ChannelTotals, interval: Duration) -> String {
    let secs = interval.as_secs_f64();
    let new_msgs = cur.messages - prev.messages;
    let ingress = (new_msgs as f64 / secs) as i64;
    let egress = ((new_msgs - (cur.depth - prev.depth)) as f64 / secs) as i64;
    format!(
        "{:>7} {:>7} | {:>7} {:>7} {:>7} {:>5} {:>5} | {:>7} {:>7} {:>12} {:>7}\n",
        ingress,
        egress,
        cur.depth,
        cur.memory_depth,
        cur.backend_depth,
        cur.in_flight,
        cur.deferred,
        cur.requeued,
        cur.timed_out,
        cur.messages,
        cur.clients
    )
}

/// Polls with `fetch` and writes the table to `out`. The first poll only sets the baseline; each
/// later one prints a row; `count` rows end the loop. Every poll is followed by a full
/// `interval` of sleep, as in Go (so the period is the interval plus the polling time).
async fn stat_loop<F, Fut, W>(opts: &Options, mut fetch: F, out: &mut W) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ChannelTotals, String>>,
    W: Write,
{
    let mut prev: Option<ChannelTotals> = None;
    let mut i: u64 = 0;
    while opts.count.is_none_or(|n| n >= i) {
        let cur = fetch().await?;
        let mut text = String::new();
        if i.is_multiple_of(HEADER_EVERY) {
            text.push_str(&header());
        }
        if let Some(p) = prev {
            text.push_str(&row(&p, &cur, opts.interval));
        }
        // A closed stdout (e.g. piped into `head`) ends the program, as a failed write does
        // not in Go; carrying on would only poll for nobody.
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("ERROR: failed to write to stdout - {e}"))?;
        prev = Some(cur);
        tokio::time::sleep(opts.interval).await;
        i += 1;
    }
    Ok(())
}

/// One poll: find the nsqds that have the topic, then sum the channel over them.
async fn fetch_channel(opts: &Options) -> Result<ChannelTotals, String> {
    let producers = match &opts.sources {
        Sources::Lookupd(addrs) => lookupd_topic_producers(&opts.topic, addrs, opts.timeouts).await,
        Sources::Nsqd(addrs) => nsqd_topic_producers(&opts.topic, addrs, opts.timeouts).await,
    }
    .map_err(|e| format!("ERROR: failed to get topic producers - {e}"))?;
    let totals = nsqd_channel_stats(&producers, &opts.topic, &opts.channel, opts.timeouts)
        .await
        .map_err(|e| format!("ERROR: failed to get nsqd stats - {e}"))?;
    totals.ok_or_else(|| {
        format!(
            "ERROR: failed to find channel({}) in stats metadata for topic({})",
            opts.channel, opts.topic
        )
    })
}

/// An nsqd as nsqlookupd or `/info` describes it; stats are read from its broadcast address.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
struct Producer {
    broadcast_address: String,
    http_port: u16,
}

impl Producer {
    /// `host:port`, with brackets for IPv6 as Go's `net.JoinHostPort`.
    fn http_address(&self) -> String {
        if self.broadcast_address.contains(':') {
            format!("[{}]:{}", self.broadcast_address, self.http_port)
        } else {
            format!("{}:{}", self.broadcast_address, self.http_port)
        }
    }
}

/// Go decodes a JSON `null` list as an empty one; nsqd sends `"topics":null` when it has none.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LookupResponse {
    #[serde(deserialize_with = "null_as_empty")]
    producers: Vec<Producer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatsResponse {
    #[serde(deserialize_with = "null_as_empty")]
    topics: Vec<NsqdTopic>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NsqdTopic {
    topic_name: String,
    #[serde(deserialize_with = "null_as_empty")]
    channels: Vec<NsqdChannel>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NsqdChannel {
    channel_name: String,
    depth: i64,
    backend_depth: i64,
    in_flight_count: i64,
    deferred_count: i64,
    requeue_count: i64,
    timeout_count: i64,
    message_count: i64,
    client_count: i64,
}

/// Go's `url.QueryEscape`, enough for topic and channel names (`#` becomes `%23`).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `GET http://<addr><path>` decoded as JSON, with errors in the words of Go's HTTP client.
async fn get_json<T: serde::de::DeserializeOwned>(
    addr: &str,
    path: &str,
    timeouts: ClientTimeouts,
) -> Result<T, String> {
    let url = format!("http://{addr}{path}");
    let body = nsq_http::client::get(addr, path, timeouts)
        .await
        .map_err(|e| match e {
            ClientError::Status { status, body } => {
                let reason = http::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("status code");
                format!(
                    "got response {status} {reason} {}",
                    nsq_flags::go_quote(&body)
                )
            }
            ClientError::Connect(text) => format!("Get \"{url}\": {}", go_dial_text(&text)),
            ClientError::Timeout => format!(
                "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ),
            ClientError::Http(text) => format!("Get \"{url}\": {text}"),
        })?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// Rewrites the HTTP client's `dial tcp <addr>: Connection refused (os error 111)` in Go's
/// words (`dial tcp <addr>: connect: connection refused`).
fn go_dial_text(text: &str) -> String {
    let Some((head, reason)) = text.rsplit_once(": ") else {
        return text.to_string();
    };
    let reason = match reason.find(" (os error ") {
        Some(i) => reason.get(..i).unwrap_or(reason),
        None => reason,
    };
    let reason = match reason {
        "Connection refused" => "connect: connection refused".to_string(),
        other => {
            let mut chars = other.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        }
    };
    format!("{head}: {reason}")
}

/// Runs one request per address at once and returns the answers in address order.
async fn query_all<T, F, Fut>(addrs: &[String], query: F) -> Vec<Result<T, String>>
where
    T: Send + 'static,
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let handles: Vec<_> = addrs
        .iter()
        .map(|a| tokio::spawn(query(a.clone())))
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

/// Go's `ErrList`: one error per line. `all_failed` adds the `failed to query any <what>:`
/// prefix Go uses when nothing answered.
fn err_list(errs: &[String], all_failed: Option<&str>) -> String {
    let list = errs.join("\n");
    match all_failed {
        Some(what) => format!("failed to query any {what}: {list}"),
        None => list,
    }
}

/// The nsqds nsqlookupd lists for the topic, without duplicates. Any failed lookupd is an error
/// (nsq_stat treats Go's partial errors as fatal too).
async fn lookupd_topic_producers(
    topic: &str,
    addrs: &[String],
    timeouts: ClientTimeouts,
) -> Result<Vec<Producer>, String> {
    let path = format!("/lookup?topic={}", query_escape(topic));
    let answers = query_all(addrs, |a| {
        let path = path.clone();
        async move { get_json::<LookupResponse>(&a, &path, timeouts).await }
    })
    .await;
    let mut producers: Vec<Producer> = Vec::new();
    let mut errs = Vec::new();
    for answer in answers {
        match answer {
            Ok(r) => {
                for p in r.producers {
                    if !producers
                        .iter()
                        .any(|q| q.http_address() == p.http_address())
                    {
                        producers.push(p);
                    }
                }
            }
            Err(e) => errs.push(e),
        }
    }
    if errs.len() == addrs.len() {
        return Err(err_list(&errs, Some("nsqlookupd")));
    }
    if !errs.is_empty() {
        return Err(err_list(&errs, None));
    }
    Ok(producers)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InfoResponse {
    broadcast_address: String,
    http_port: u16,
}

/// The given nsqds that have the topic, each described by its own `/info`.
async fn nsqd_topic_producers(
    topic: &str,
    addrs: &[String],
    timeouts: ClientTimeouts,
) -> Result<Vec<Producer>, String> {
    let path = format!(
        "/stats?format=json&topic={}&include_clients=false",
        query_escape(topic)
    );
    let topic_owned = topic.to_string();
    let answers = query_all(addrs, |a| {
        let path = path.clone();
        let topic = topic_owned.clone();
        async move {
            let stats: StatsResponse = get_json(&a, &path, timeouts).await?;
            if !stats.topics.iter().any(|t| t.topic_name == topic) {
                return Ok(None);
            }
            let mut info: InfoResponse = get_json(&a, "/info", timeouts).await?;
            // Old nsqds lacked these fields; Go falls back to the address it was given.
            if info.broadcast_address.is_empty() {
                let (host, port) = split_host_port(&a);
                info.broadcast_address = host;
                info.http_port = port;
            }
            Ok(Some(Producer {
                broadcast_address: info.broadcast_address,
                http_port: info.http_port,
            }))
        }
    })
    .await;
    let mut producers = Vec::new();
    let mut errs = Vec::new();
    for answer in answers {
        match answer {
            Ok(Some(p)) => producers.push(p),
            Ok(None) => {}
            Err(e) => errs.push(e),
        }
    }
    if errs.len() == addrs.len() {
        return Err(err_list(&errs, Some("nsqd")));
    }
    if !errs.is_empty() {
        return Err(err_list(&errs, None));
    }
    Ok(producers)
}

fn split_host_port(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().unwrap_or(0),
        ),
        None => (addr.to_string(), 0),
    }
}

/// Sums the channel over the producers. `Ok(None)`: they answered but none has the channel.
/// No producers at all counts as every query failing, as in Go.
async fn nsqd_channel_stats(
    producers: &[Producer],
    topic: &str,
    channel: &str,
    timeouts: ClientTimeouts,
) -> Result<Option<ChannelTotals>, String> {
    let path = format!(
        "/stats?format=json&topic={}&channel={}&include_clients=false",
        query_escape(topic),
        query_escape(channel)
    );
    let addrs: Vec<String> = producers.iter().map(Producer::http_address).collect();
    let answers = query_all(&addrs, |a| {
        let path = path.clone();
        async move { get_json::<StatsResponse>(&a, &path, timeouts).await }
    })
    .await;
    let mut totals: Option<ChannelTotals> = None;
    let mut errs = Vec::new();
    for answer in answers {
        match answer {
            Ok(stats) => {
                for t in stats.topics.iter().filter(|t| t.topic_name == topic) {
                    for c in t.channels.iter().filter(|c| c.channel_name == channel) {
                        totals.get_or_insert_with(ChannelTotals::default).add(c);
                    }
                }
            }
            Err(e) => errs.push(e),
        }
    }
    if errs.len() == addrs.len() {
        return Err(err_list(&errs, Some("nsqd")));
    }
    if !errs.is_empty() {
        return Err(err_list(&errs, None));
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(count: Option<u64>) -> Options {
        Options {
            topic: "t".into(),
            channel: "c".into(),
            interval: Duration::from_secs(2),
            timeouts: ClientTimeouts {
                connect: Duration::from_secs(1),
                request: Duration::from_secs(1),
            },
            count,
            sources: Sources::Nsqd(vec!["127.0.0.1:1".into()]),
        }
    }

    fn totals(messages: i64, depth: i64) -> ChannelTotals {
        ChannelTotals {
            messages,
            depth,
            memory_depth: depth,
            ..ChannelTotals::default()
        }
    }

    #[test]
    fn header_matches_go() {
        assert_eq!(
            header(),
            "------rate------+----------------depth----------------+--------------metadata---------------\n\
             ingress  egress |   total     mem    disk inflt   def |     req     t-o         msgs clients\n"
        );
    }

    #[test]
    fn rates_divide_by_interval_and_truncate() {
        let r = row(&totals(10, 5), &totals(25, 8), Duration::from_secs(2));
        // 15 new in 2s → 7 (7.5 truncated); 15 - 3 more depth = 12 out → 6.
        assert_eq!(
            r,
            "      7       6 |       8       8       0     0     0 |       0       0           25       0\n"
        );
        let r = row(&totals(25, 8), &totals(10, 5), Duration::from_secs(2));
        assert!(r.starts_with("     -7      -6 |"), "{r}");
    }

    #[tokio::test(start_paused = true)]
    async fn count_rows_after_a_baseline_and_header_every_25_polls() {
        let mut n = 0;
        let fetch = || {
            n += 1;
            let v = totals(n * 2, 0);
            async move { Ok(v) }
        };
        let mut out = Vec::new();
        let start = tokio::time::Instant::now();
        stat_loop(&opts(Some(30)), fetch, &mut out).await.unwrap();
        // One baseline poll plus 30 rows, each followed by the interval.
        assert_eq!(start.elapsed(), Duration::from_secs(2 * 31));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let headers: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with("------rate"))
            .map(|(i, _)| i)
            .collect();
        // Header, 24 rows, header, 6 rows.
        assert_eq!(headers, vec![0, 26]);
        assert_eq!(lines.len(), 2 + 24 + 2 + 6);
        assert!(lines[2].starts_with("      1       1 |"), "{}", lines[2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_poll_ends_the_loop_with_its_error() {
        let fetch = || async { Err::<ChannelTotals, _>("boom".to_string()) };
        let mut out = Vec::new();
        assert_eq!(
            stat_loop(&opts(None), fetch, &mut out).await,
            Err("boom".into())
        );
        assert!(out.is_empty());
    }

    #[test]
    fn count_parses_like_go_parse_int_32() {
        assert_eq!(parse_int32("12"), Ok(12));
        assert_eq!(parse_int32("+3"), Ok(3));
        assert_eq!(parse_int32("-3"), Ok(-3));
        assert_eq!(
            parse_int32("0x10"),
            Err("strconv.ParseInt: parsing \"0x10\": invalid syntax".into())
        );
        assert_eq!(
            parse_int32(""),
            Err("strconv.ParseInt: parsing \"\": invalid syntax".into())
        );
        assert_eq!(
            parse_int32("99999999999"),
            Err("strconv.ParseInt: parsing \"99999999999\": value out of range".into())
        );
    }

    #[test]
    fn escapes_and_addresses() {
        assert_eq!(query_escape("tail123#ephemeral"), "tail123%23ephemeral");
        assert_eq!(query_escape("a b"), "a+b");
        let p = Producer {
            broadcast_address: "::1".into(),
            http_port: 4151,
        };
        assert_eq!(p.http_address(), "[::1]:4151");
        assert_eq!(split_host_port("[::1]:80"), ("::1".to_string(), 80));
        assert_eq!(
            go_dial_text("dial tcp 127.0.0.1:1: Connection refused (os error 111)"),
            "dial tcp 127.0.0.1:1: connect: connection refused"
        );
    }

    #[test]
    fn null_lists_decode_as_empty() {
        let s: StatsResponse = serde_json::from_str(r#"{"topics":null}"#).unwrap();
        assert!(s.topics.is_empty());
        let s: StatsResponse =
            serde_json::from_str(r#"{"topics":[{"topic_name":"t","channels":null}]}"#).unwrap();
        assert!(s.topics[0].channels.is_empty());
        let l: LookupResponse = serde_json::from_str(r#"{"producers":null}"#).unwrap();
        assert!(l.producers.is_empty());
    }

    #[test]
    fn error_lists_read_like_gos() {
        let errs = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            err_list(&errs, Some("nsqlookupd")),
            "failed to query any nsqlookupd: a\nb"
        );
        assert_eq!(err_list(&errs, None), "a\nb");
        assert_eq!(err_list(&[], Some("nsqd")), "failed to query any nsqd: ");
    }
}
