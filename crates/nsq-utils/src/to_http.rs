//! `nsq_to_http`: consumes a topic's channel and sends each message to HTTP endpoints (`--post`
//! bodies or `--get` query strings), FINing a message only after the endpoint answered with
//! success and requeueing it otherwise. Also home to what `nsq_to_nsq` shares with it: Go-style
//! log lines, host pools and timing stats.
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nsq_client::{Config, Consumer};
use nsq_flags::{Flag, FlagSet, Parsed};

mod client;
pub(crate) mod golog;
pub(crate) mod hostpool;
pub(crate) mod metrics;

use client::{HttpClient, HttpError, Method};
use hostpool::HostPool;
use metrics::TimerMetrics;

const APP: &str = "nsq_to_http";

/// How each message picks its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Any `--mode` other than the three below: every message goes to every address in turn.
    All,
    RoundRobin,
    HostPool,
    EpsilonGreedy,
}

impl Mode {
    fn parse(s: &str) -> Mode {
        match s {
            "round-robin" => Mode::RoundRobin,
            "hostpool" => Mode::HostPool,
            "epsilon-greedy" => Mode::EpsilonGreedy,
            _ => Mode::All,
        }
    }
}

/// Everything the command line said, checked.
#[derive(Debug, Clone)]
pub struct Options {
    pub topic: String,
    pub channel: String,
    pub max_in_flight: i64,
    pub handlers: i64,
    pub mode: Mode,
    pub sample: f64,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub status_every: i64,
    pub content_type: String,
    pub get: bool,
    /// `--post` or `--get` addresses, in order.
    pub addresses: Vec<String>,
    /// `--header`s with Go's canonical names, in order; a later one replaces an earlier one.
    pub headers: Vec<(String, String)>,
    pub nsqd_tcp_addresses: Vec<String>,
    pub lookupd_http_addresses: Vec<String>,
    pub config: Config,
}

/// What the command line asked for (also `nsq_to_nsq`'s, with its own options).
#[derive(Debug)]
pub enum Outcome<O = Options> {
    Run(Box<O>),
    /// Print this usage to stderr, exit 0.
    Help(String),
    /// Print the version line, exit 0.
    Version,
}

/// A command line that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// Flag syntax or value: the Go `flag` package's line, then the usage; exit 2.
    #[error("{0}")]
    Flag(String),
    /// A check after parsing: one log line; exit 1.
    #[error("{0}")]
    Fatal(String),
}

fn flag_set(app: &str) -> FlagSet {
    FlagSet::new(app)
        .flag(Flag::bool("version", false, "print version string"))
        .flag(Flag::string("topic", "", "nsq topic"))
        .flag(Flag::string("channel", "nsq_to_http", "nsq channel"))
        .flag(Flag::int(
            "max-in-flight",
            200,
            "max number of messages to allow in flight",
        ))
        .flag(Flag::int("n", 100, "number of concurrent publishers"))
        .flag(Flag::string(
            "mode",
            "hostpool",
            "the upstream request mode options: round-robin, hostpool (default), epsilon-greedy",
        ))
        .flag(Flag::float(
            "sample",
            1.0,
            "% of messages to publish (float b/w 0 -> 1)",
        ))
        .flag(Flag::duration(
            "http-client-connect-timeout",
            Duration::from_secs(2),
            "timeout for HTTP connect",
        ))
        .flag(Flag::duration(
            "http-client-request-timeout",
            Duration::from_secs(20),
            "timeout for HTTP request",
        ))
        .flag(Flag::int(
            "status-every",
            250,
            "the # of requests between logging status (per handler), 0 disables",
        ))
        .flag(Flag::string(
            "content-type",
            "application/octet-stream",
            "the Content-Type used for POST requests",
        ))
        .flag(Flag::str_list(
            "post",
            "HTTP address to make a POST request to.  data will be in the body (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "header",
            "Custom header for HTTP requests (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "get",
            "HTTP address to make a GET request to. '%s' will be printf replaced with data (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "nsqd-tcp-address",
            "nsqd TCP address (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "lookupd-http-address",
            "lookupd HTTP address (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "consumer-opt",
            "option to passthrough to nsq.Consumer (may be given multiple times, http://godoc.org/github.com/nsqio/go-nsq#Config)",
        ))
}

/// The program name Go prints in `Usage of <name>:`: how it was invoked.
pub(crate) fn program_name(app: &str) -> String {
    std::env::args().next().unwrap_or_else(|| app.to_string())
}

/// The usage text, for printing after a flag error.
pub fn usage() -> String {
    flag_set(&program_name(APP)).usage()
}

/// Applies `--consumer-opt`/`--producer-opt` values (`key,value`, or a bare `key` for true)
/// in order, with the flag package's error line for a rejected one.
pub(crate) fn apply_config_opts(
    config: &mut Config,
    flag: &str,
    opts: &[String],
) -> Result<(), String> {
    for opt in opts {
        config.set_flag(opt).map_err(|e| {
            format!(
                "invalid value {} for flag -{flag}: {e}",
                nsq_flags::go_quote(opt)
            )
        })?;
    }
    Ok(())
}

/// Go's `--header` parsing: `Name: value`, both sides trimmed and non-empty.
fn parse_header(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once(':')?;
    let (k, v) = (k.trim(), v.trim());
    if k.is_empty() || v.is_empty() {
        return None;
    }
    Some((client::canonical_header_key(k), v.to_string()))
}

/// Parses `nsq_to_http`'s arguments (without the program name) and makes the Go tool's
/// checks, in its order.
pub fn parse(args: Vec<String>) -> Result<Outcome, OptionsError> {
    let fs = flag_set(&program_name(APP));
    let cl = match fs.parse(args) {
        Ok(Parsed::Help(text)) => return Ok(Outcome::Help(text)),
        Ok(Parsed::Args(cl)) => cl,
        Err(e) => return Err(OptionsError::Flag(e.to_string())),
    };
    let v = cl.values();
    let mut config = Config::new();
    apply_config_opts(&mut config, "consumer-opt", v.str_list("consumer-opt"))
        .map_err(OptionsError::Flag)?;
    if v.bool("version") {
        return Ok(Outcome::Version);
    }
    let fatal = |m: &str| Err(OptionsError::Fatal(m.to_string()));

    let mut headers: Vec<(String, String)> = Vec::new();
    for h in v.str_list("header") {
        let Some((k, val)) = parse_header(h) else {
            return fatal("--header value format should be 'key=value'");
        };
        headers.retain(|(existing, _)| *existing != k);
        headers.push((k, val));
    }
    let topic = v.string("topic").to_string();
    let channel = v.string("channel").to_string();
    if topic.is_empty() || channel.is_empty() {
        return fatal("--topic and --channel are required");
    }
    let content_type = v.string("content-type").to_string();
    let posts = v.str_list("post");
    let gets = v.str_list("get");
    if content_type != "application/octet-stream" {
        if posts.is_empty() {
            return fatal("--content-type only used with --post");
        }
        if content_type.is_empty() {
            return fatal("--content-type requires a value when used");
        }
    }
    let nsqd = v.str_list("nsqd-tcp-address");
    let lookupd = v.str_list("lookupd-http-address");
    if nsqd.is_empty() && lookupd.is_empty() {
        return fatal("--nsqd-tcp-address or --lookupd-http-address required");
    }
    if !nsqd.is_empty() && !lookupd.is_empty() {
        return fatal("use --nsqd-tcp-address or --lookupd-http-address not both");
    }
    if gets.is_empty() && posts.is_empty() {
        return fatal("--get or --post required");
    }
    if !gets.is_empty() && !posts.is_empty() {
        return fatal("use --get or --post not both");
    }
    if gets.iter().any(|g| g.matches("%s").count() != 1) {
        return fatal("invalid GET address - must be a printf string");
    }
    let sample = v.float("sample");
    if !(0.0..=1.0).contains(&sample) {
        return fatal("ERROR: --sample must be between 0.0 and 1.0");
    }
    let get = !gets.is_empty();
    Ok(Outcome::Run(Box::new(Options {
        topic,
        channel,
        max_in_flight: v.int("max-in-flight"),
        handlers: v.int("n"),
        mode: Mode::parse(v.string("mode")),
        sample,
        connect_timeout: v.duration("http-client-connect-timeout"),
        request_timeout: v.duration("http-client-request-timeout"),
        status_every: v.int("status-every"),
        content_type,
        get,
        addresses: if get { gets.to_vec() } else { posts.to_vec() },
        headers,
        nsqd_tcp_addresses: nsqd.to_vec(),
        lookupd_http_addresses: lookupd.to_vec(),
        config,
    })))
}

/// Go's `url.QueryEscape`: unreserved bytes stay, space becomes `+`, the rest `%XX`.
pub fn query_escape(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 3);
    for &b in data {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `fmt.Sprintf(template, arg)` for the templates `--get` accepts (exactly one `%s`): `%%`
/// is a percent sign, `%s` and `%v` take the argument, and other verbs get Go's
/// `%!x(string=...)` markers.
pub fn go_sprintf(template: &str, arg: &str) -> String {
    let mut out = String::with_capacity(template.len() + arg.len());
    let mut used = false;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push_str("%!(NOVERB)"),
            Some('%') => out.push('%'),
            Some(verb) if used => out.push_str(&format!("%!{verb}(MISSING)")),
            Some('s' | 'v') => {
                out.push_str(arg);
                used = true;
            }
            Some(verb) => {
                out.push_str(&format!("%!{verb}(string={arg})"));
                used = true;
            }
        }
    }
    if !used {
        out.push_str(&format!("%!(EXTRA string={arg})"));
    }
    out
}

/// Sends messages to the endpoints in the chosen mode and keeps the timing stats.
pub struct Forwarder {
    client: HttpClient,
    get: bool,
    addresses: Vec<String>,
    headers: Vec<(String, String)>,
    mode: Mode,
    sample: f64,
    pool: HostPool,
    counter: AtomicU64,
    per_address: HashMap<String, TimerMetrics>,
    aggregate: TimerMetrics,
}

impl Forwarder {
    /// Builds the forwarder; logs the Go tool's small-`--status-every` warnings.
    pub fn new(opts: &Options) -> Forwarder {
        let mut per_address = HashMap::new();
        if let [only] = opts.addresses.as_slice() {
            per_address.insert(only.clone(), TimerMetrics::new(0, ""));
        } else {
            for a in &opts.addresses {
                per_address.insert(
                    a.clone(),
                    TimerMetrics::new(opts.status_every, &format!("[{a}]:")),
                );
            }
        }
        let aggregate = TimerMetrics::new(opts.status_every, "[aggregate]:");
        let mut headers = vec![("User-Agent".to_string(), format!("{APP} v1.3.0"))];
        if !opts.get {
            headers.push(("Content-Type".to_string(), opts.content_type.clone()));
        }
        headers.extend(opts.headers.iter().cloned());
        let idle = usize::try_from(opts.handlers).unwrap_or(0);
        Forwarder {
            client: HttpClient::new(opts.connect_timeout, opts.request_timeout, idle),
            get: opts.get,
            addresses: opts.addresses.clone(),
            headers,
            mode: opts.mode,
            sample: opts.sample,
            pool: if opts.mode == Mode::EpsilonGreedy {
                HostPool::epsilon_greedy(&opts.addresses)
            } else {
                HostPool::new(&opts.addresses)
            },
            counter: AtomicU64::new(0),
            per_address,
            aggregate,
        }
    }

    /// Handles one message body: `Ok` when every endpoint it went to answered with success
    /// (or the message was sampled out).
    pub async fn handle(
        &self,
        body: &Bytes,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.sample < 1.0 && rand::random::<f64>() > self.sample {
            return Ok(());
        }
        let start = Instant::now();
        match self.mode {
            Mode::All => {
                for addr in &self.addresses {
                    let st = Instant::now();
                    self.publish(addr, body).await?;
                    self.address_status(addr, st);
                }
            }
            Mode::RoundRobin => {
                let n = self.addresses.len().max(1) as u64;
                // The counter moves before it is read, so the first message goes to the
                // second address, as in the Go tool.
                let c = self.counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
                let idx = usize::try_from(c % n).unwrap_or(0);
                let Some(addr) = self.addresses.get(idx) else {
                    return Ok(());
                };
                self.publish(addr, body).await?;
                self.address_status(addr, start);
            }
            Mode::HostPool | Mode::EpsilonGreedy => {
                let Some(choice) = self.pool.get() else {
                    return Ok(());
                };
                let addr = choice.host().to_string();
                let result = self.publish(&addr, body).await;
                choice.mark(result.is_ok());
                result?;
                self.address_status(&addr, start);
            }
        }
        self.aggregate.status(start);
        Ok(())
    }

    fn address_status(&self, addr: &str, start: Instant) {
        if let Some(m) = self.per_address.get(addr) {
            m.status(start);
        }
    }

    async fn publish(&self, addr: &str, body: &Bytes) -> Result<(), HttpError> {
        if self.get {
            let url = go_sprintf(addr, &query_escape(body));
            let status = self
                .client
                .send(Method::Get, &url, &self.headers, Bytes::new())
                .await?;
            if status != 200 {
                return Err(HttpError::Status(status));
            }
        } else {
            let status = self
                .client
                .send(Method::Post, addr, &self.headers, body.clone())
                .await?;
            if !(200..300).contains(&status) {
                return Err(HttpError::Status(status));
            }
        }
        Ok(())
    }
}

/// Go's wording for a failed connection to nsqd, where the client's differs.
pub(crate) fn connect_error_text(e: &nsq_client::Error) -> String {
    if let nsq_client::Error::Io { addr, source } = e {
        if source.kind() == std::io::ErrorKind::ConnectionRefused {
            return format!("dial tcp {addr}: connect: connection refused");
        }
    }
    e.to_string()
}

/// Waits for SIGINT or SIGTERM.
pub(crate) struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// The checks go-nsq makes when building a consumer, with its texts.
pub(crate) fn check_consumer(max_in_flight: i64, topic: &str, channel: &str) -> Result<(), String> {
    if max_in_flight < 0 {
        return Err(format!("invalid MaxInFlight ! {max_in_flight} < 0"));
    }
    if !nsq_protocol::names::is_valid_topic_name(topic.as_bytes()) {
        return Err("invalid topic name".to_string());
    }
    if !nsq_protocol::names::is_valid_channel_name(channel.as_bytes()) {
        return Err("invalid channel name".to_string());
    }
    Ok(())
}

async fn run(opts: Options) -> ExitCode {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => golog::exit_fatal(e),
    };
    let mut config = opts.config.clone();
    config.user_agent = crate::common::user_agent(APP);
    if let Err(e) = check_consumer(opts.max_in_flight, &opts.topic, &opts.channel) {
        golog::exit_fatal(e);
    }
    config.max_in_flight = usize::try_from(opts.max_in_flight).unwrap_or(0);
    let consumer = match Consumer::new(&opts.topic, &opts.channel, config) {
        Ok(c) => Arc::new(c),
        Err(e) => golog::exit_fatal(e),
    };
    let forwarder = Arc::new(Forwarder::new(&opts));
    let handlers = usize::try_from(opts.handlers).unwrap_or(0);
    consumer.add_concurrent_handlers(handlers, move |msg| {
        let forwarder = Arc::clone(&forwarder);
        async move { forwarder.handle(&msg.body).await }
    });
    if let Err(e) = consumer.connect_to_nsqds(&opts.nsqd_tcp_addresses).await {
        golog::exit_fatal(connect_error_text(&e));
    }
    if let Err(e) = consumer
        .connect_to_nsqlookupds(&opts.lookupd_http_addresses)
        .await
    {
        golog::exit_fatal(connect_error_text(&e));
    }
    loop {
        tokio::select! {
            _ = consumer.stopped() => return ExitCode::SUCCESS,
            _ = signals.recv() => consumer.stop(),
        }
    }
}

/// Prints a command-line error the way the Go tool does and returns its exit code: a flag
/// error with the usage (2), a failed check as a log line (1).
pub(crate) fn report_options_error(e: OptionsError, usage: impl Fn() -> String) -> ExitCode {
    match e {
        OptionsError::Flag(line) => {
            eprintln!("{line}");
            eprint!("{}", usage());
            ExitCode::from(2)
        }
        OptionsError::Fatal(msg) => golog::fatal(msg),
    }
}

/// Runs `nsq_to_http` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    golog::install();
    run_main(APP, parse(args), usage, run)
}

/// The main both relays (`nsq_to_http`, `nsq_to_nsq`) share once their command line is parsed:
/// help and version exit 0, option errors as [`report_options_error`], otherwise `run` on a
/// multi-threaded runtime.
pub(crate) fn run_main<O, F>(
    app: &str,
    parsed: Result<Outcome<O>, OptionsError>,
    usage: impl Fn() -> String,
    run: impl FnOnce(O) -> F,
) -> ExitCode
where
    F: std::future::Future<Output = ExitCode>,
{
    let opts = match parsed {
        Ok(Outcome::Run(o)) => o,
        Ok(Outcome::Help(text)) => {
            eprint!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Outcome::Version) => {
            println!("{}", crate::common::version_line(app));
            return ExitCode::SUCCESS;
        }
        Err(e) => return report_options_error(e, usage),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return golog::fatal(e),
    };
    runtime.block_on(run(*opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn fatal_of(a: &[&str]) -> String {
        match parse(args(a)) {
            Err(OptionsError::Fatal(m)) => m,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    const BASE: [&str; 2] = ["--topic=t", "--nsqd-tcp-address=127.0.0.1:4150"];

    #[test]
    fn go_checks_and_texts() {
        assert_eq!(fatal_of(&[]), "--topic and --channel are required");
        assert_eq!(
            fatal_of(&["--topic=t", "--channel="]),
            "--topic and --channel are required"
        );
        assert_eq!(
            fatal_of(&["--topic=t", "--post=http://a/"]),
            "--nsqd-tcp-address or --lookupd-http-address required"
        );
        assert_eq!(
            fatal_of(&[BASE[0], BASE[1], "--lookupd-http-address=x", "--post=a"]),
            "use --nsqd-tcp-address or --lookupd-http-address not both"
        );
        assert_eq!(fatal_of(&BASE), "--get or --post required");
        assert_eq!(
            fatal_of(&[BASE[0], BASE[1], "--get=http://a/%s", "--post=http://b/"]),
            "use --get or --post not both"
        );
        assert_eq!(
            fatal_of(&[BASE[0], BASE[1], "--get=http://a/"]),
            "invalid GET address - must be a printf string"
        );
        assert_eq!(
            fatal_of(&[BASE[0], BASE[1], "--get=http://a/%s%s"]),
            "invalid GET address - must be a printf string"
        );
        assert_eq!(
            fatal_of(&["--header=nocolon"]),
            "--header value format should be 'key=value'"
        );
        assert_eq!(
            fatal_of(&["--header=k: "]),
            "--header value format should be 'key=value'"
        );
        assert_eq!(
            fatal_of(&[BASE[0], BASE[1], "--get=http://a/%s", "--content-type=x"]),
            "--content-type only used with --post"
        );
        assert_eq!(
            fatal_of(&[BASE[0], BASE[1], "--post=http://a/", "--content-type="]),
            "--content-type requires a value when used"
        );
        for s in ["1.5", "-0.1"] {
            assert_eq!(
                fatal_of(&[
                    BASE[0],
                    BASE[1],
                    "--post=http://a/",
                    &format!("--sample={s}")
                ]),
                "ERROR: --sample must be between 0.0 and 1.0"
            );
        }
    }

    #[test]
    fn flag_errors_and_version() {
        match parse(args(&["--bogus"])) {
            Err(OptionsError::Flag(l)) => assert_eq!(l, "flag provided but not defined: -bogus"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(args(&["--version"])), Ok(Outcome::Version)));
        assert!(matches!(parse(args(&["-h"])), Ok(Outcome::Help(_))));
    }

    #[test]
    fn defaults_and_values() {
        let o = match parse(args(&[
            BASE[0],
            BASE[1],
            "--post=http://a/",
            "--post=http://b/",
            "--header=x-one: 1",
            "--header=X-ONE:2",
            "--header=Accept : a:b",
        ])) {
            Ok(Outcome::Run(o)) => o,
            other => panic!("{other:?}"),
        };
        assert_eq!(o.channel, "nsq_to_http");
        assert_eq!(
            (o.max_in_flight, o.handlers, o.status_every),
            (200, 100, 250)
        );
        assert_eq!(o.mode, Mode::HostPool);
        assert_eq!(o.request_timeout, Duration::from_secs(20));
        assert_eq!(o.connect_timeout, Duration::from_secs(2));
        assert_eq!(o.addresses, ["http://a/", "http://b/"]);
        assert_eq!(
            o.headers,
            [
                ("X-One".to_string(), "2".to_string()),
                ("Accept".to_string(), "a:b".to_string())
            ]
        );
        assert!(!o.get);
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("round-robin"), Mode::RoundRobin);
        assert_eq!(Mode::parse("hostpool"), Mode::HostPool);
        assert_eq!(Mode::parse("epsilon-greedy"), Mode::EpsilonGreedy);
        assert_eq!(Mode::parse("everything"), Mode::All);
        assert_eq!(Mode::parse(""), Mode::All);
    }

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape(b"a b&c=d/e?~-_."), "a+b%26c%3Dd%2Fe%3F~-_.");
        assert_eq!(query_escape("é\n".as_bytes()), "%C3%A9%0A");
        assert_eq!(query_escape(b"\xff"), "%FF");
    }

    #[test]
    fn sprintf_matches_go() {
        assert_eq!(go_sprintf("http://h/?d=%s", "x+y"), "http://h/?d=x+y");
        assert_eq!(go_sprintf("http://h/%%/%s", "x"), "http://h/%/x");
        assert_eq!(go_sprintf("%d/%s", "x"), "%!d(string=x)/%!s(MISSING)");
        assert_eq!(go_sprintf("%s%", "x"), "x%!(NOVERB)");
        assert_eq!(go_sprintf("none", "x"), "none%!(EXTRA string=x)");
    }

    #[test]
    fn consumer_checks() {
        assert_eq!(
            check_consumer(-1, "t", "c").unwrap_err(),
            "invalid MaxInFlight ! -1 < 0"
        );
        assert_eq!(
            check_consumer(0, "a/b", "c").unwrap_err(),
            "invalid topic name"
        );
        assert_eq!(
            check_consumer(0, "t", "c c").unwrap_err(),
            "invalid channel name"
        );
        assert!(check_consumer(0, "t", "c#ephemeral").is_ok());
    }
}
