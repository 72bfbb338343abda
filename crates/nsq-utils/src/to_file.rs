//! `nsq_to_file`: archives topics to files, one file per topic at a time, with NSQ 1.3.0's flags,
//! file names, rotation, compression, work directory and sync-before-FIN behaviour.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use nsq_daemon::LogLevel;
use nsq_flags::{parse_go_duration_nanos, Flag, FlagError, FlagSet, Parsed, Values};

pub mod discover;
#[cfg(test)]
mod loop_tests;
pub mod naming;
pub mod output;
pub mod router;
pub mod strftime;

const APP: &str = "nsq_to_file";

/// Every option after parsing, with NSQ's names.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub topics: Vec<String>,
    pub topic_pattern: String,
    /// Nanoseconds; zero or less turns discovery off.
    pub topic_refresh: i64,
    pub channel: String,
    pub nsqd_tcp_addresses: Vec<String>,
    pub lookupd_http_addresses: Vec<String>,
    pub consumer_opts: Vec<String>,
    pub max_in_flight: i64,
    pub http_client_connect_timeout: i64,
    pub http_client_request_timeout: i64,
    pub log_prefix: String,
    pub log_level: LogLevel,
    pub output_dir: String,
    /// Equal to `output_dir` unless given.
    pub work_dir: String,
    pub datetime_format: String,
    pub filename_format: String,
    pub host_identifier: String,
    pub gzip_level: i64,
    pub gzip: bool,
    /// Not in NSQ: zstd output, one frame per sync.
    pub zstd_level: i64,
    pub zstd: bool,
    pub skip_empty_files: bool,
    pub rotate_size: i64,
    /// Nanoseconds; zero or less: no rotation by age.
    pub rotate_interval: i64,
    /// Nanoseconds; must be positive.
    pub sync_interval: i64,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Run(Box<Options>),
    /// Print the usage text to stderr, exit 0.
    Help(String),
    /// Print `nsq_to_file v1.3.0` to stdout, exit 0.
    Version,
}

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionsError {
    /// A flag error: printed with the usage text, exit 2.
    #[error(transparent)]
    Flag(#[from] FlagError),
    /// A check NSQ makes after parsing: logged like Go's `log.Fatal`, exit 1.
    #[error("{0}")]
    Fatal(String),
    /// A value NSQ accepts but then crashes on: exit 2.
    #[error("{0}")]
    Crash(String),
}

impl OptionsError {
    pub fn exit_code(&self) -> u8 {
        match self {
            OptionsError::Flag(_) | OptionsError::Crash(_) => 2,
            OptionsError::Fatal(_) => 1,
        }
    }
}

fn duration_text(s: &str) -> Result<Option<String>, String> {
    parse_go_duration_nanos(s)
        .map(|_| Some(s.to_string()))
        .map_err(|_| "parse error".to_string())
}

/// A duration flag that, like Go's, accepts negative values.
fn duration_flag(name: &'static str, default: &'static str, usage: &'static str) -> Flag {
    Flag::string(name, default, usage)
        .value_name("duration")
        .normalizer(duration_text)
}

/// NSQ's own nsq_to_file flags. NSQ names the set `nsqd`, hence `Usage of nsqd:`.
fn nsq_flag_set() -> FlagSet {
    FlagSet::new("nsqd")
        .flag(Flag::bool("version", false, "print version string"))
        .flag(Flag::string(
            "log-level",
            "info",
            "set log verbosity: debug, info, warn, error, or fatal",
        ))
        .flag(Flag::string("log-prefix", "[nsq_to_file] ", "log message prefix"))
        .flag(Flag::string("channel", "nsq_to_file", "nsq channel"))
        .flag(Flag::int(
            "max-in-flight",
            200,
            "max number of messages to allow in flight",
        ))
        .flag(Flag::string(
            "output-dir",
            "/tmp",
            "directory to write output files to",
        ))
        .flag(Flag::string(
            "work-dir",
            "",
            "directory for in-progress files before moving to output-dir",
        ))
        .flag(Flag::string(
            "datetime-format",
            "%Y-%m-%d_%H",
            "strftime compatible format for <DATETIME> in filename format",
        ))
        .flag(Flag::string(
            "filename-format",
            "<TOPIC>.<HOST><REV>.<DATETIME>.log",
            "output filename format (<TOPIC>, <HOST>, <PID>, <DATETIME>, <REV> are replaced. <REV> is increased when file already exists)",
        ))
        .flag(Flag::string(
            "host-identifier",
            "",
            "value to output in log filename in place of hostname. <SHORT_HOST> and <HOSTNAME> are valid replacement tokens",
        ))
        .flag(Flag::int(
            "gzip-level",
            6,
            "gzip compression level (1-9, 1=BestSpeed, 9=BestCompression)",
        ))
        .flag(Flag::bool("gzip", false, "gzip output files."))
        .flag(Flag::bool("skip-empty-files", false, "skip writing empty files"))
        .flag(duration_flag(
            "topic-refresh",
            "1m0s",
            "how frequently the topic list should be refreshed",
        ))
        .flag(Flag::string(
            "topic-pattern",
            "",
            "only log topics matching the following pattern",
        ))
        .flag(Flag::int(
            "rotate-size",
            0,
            "rotate the file when it grows bigger than `rotate-size` bytes",
        ))
        .flag(duration_flag(
            "rotate-interval",
            "",
            "rotate the file every duration",
        ))
        .flag(duration_flag(
            "sync-interval",
            "30s",
            "sync file to disk every duration",
        ))
        .flag(duration_flag(
            "http-client-connect-timeout",
            "2s",
            "timeout for HTTP connect",
        ))
        .flag(duration_flag(
            "http-client-request-timeout",
            "5s",
            "timeout for HTTP request",
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
            "topic",
            "nsq topic (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "consumer-opt",
            "option to passthrough to nsq.Consumer (may be given multiple times, http://godoc.org/github.com/nsqio/go-nsq#Config)",
        ))
}

/// NSQ's flags plus ours. Ours stay out of the usage text so that `-h` and flag errors print
/// exactly what NSQ prints; docs/utilities.md describes them.
pub fn flag_set() -> FlagSet {
    nsq_flag_set()
        .flag(Flag::int(
            "zstd-level",
            3,
            "zstd compression level (1-19, 1=fastest, 19=smallest)",
        ))
        .flag(Flag::bool(
            "zstd",
            false,
            "zstd output files (one frame per sync; not with --gzip)",
        ))
}

/// The usage text: NSQ's flags only.
fn usage() -> String {
    nsq_flag_set().usage()
}

fn nanos(values: &Values, name: &str) -> i64 {
    let text = values.string(name);
    if text.is_empty() {
        return 0;
    }
    parse_go_duration_nanos(text).unwrap_or(0)
}

/// Parses the arguments (without the program name) and makes NSQ's checks, in NSQ's order.
pub fn parse(args: Vec<String>) -> Result<Outcome, OptionsError> {
    let line = match flag_set().parse(args)? {
        Parsed::Help(_) => return Ok(Outcome::Help(usage())),
        Parsed::Args(line) => line,
    };
    if !line.positional().is_empty() {
        return Err(OptionsError::Fatal(format!(
            "unknown arguments: [{}]",
            line.positional().join(" ")
        )));
    }
    let v = line.values();
    let log_level: LogLevel = v
        .string("log-level")
        .parse()
        .map_err(|_| OptionsError::Fatal("--log-level is invalid".to_string()))?;
    if v.bool("version") {
        return Ok(Outcome::Version);
    }
    let output_dir = v.string("output-dir").to_string();
    let work_dir = match v.string("work-dir") {
        "" => output_dir.clone(),
        w => w.to_string(),
    };
    let opts = Options {
        topics: v.str_list("topic").to_vec(),
        topic_pattern: v.string("topic-pattern").to_string(),
        topic_refresh: nanos(v, "topic-refresh"),
        channel: v.string("channel").to_string(),
        nsqd_tcp_addresses: v.str_list("nsqd-tcp-address").to_vec(),
        lookupd_http_addresses: v.str_list("lookupd-http-address").to_vec(),
        consumer_opts: v.str_list("consumer-opt").to_vec(),
        max_in_flight: v.int("max-in-flight"),
        http_client_connect_timeout: nanos(v, "http-client-connect-timeout"),
        http_client_request_timeout: nanos(v, "http-client-request-timeout"),
        log_prefix: v.string("log-prefix").to_string(),
        log_level,
        output_dir,
        work_dir,
        datetime_format: v.string("datetime-format").to_string(),
        filename_format: v.string("filename-format").to_string(),
        host_identifier: v.string("host-identifier").to_string(),
        gzip_level: v.int("gzip-level"),
        gzip: v.bool("gzip"),
        zstd_level: v.int("zstd-level"),
        zstd: v.bool("zstd"),
        skip_empty_files: v.bool("skip-empty-files"),
        rotate_size: v.int("rotate-size"),
        rotate_interval: nanos(v, "rotate-interval"),
        sync_interval: nanos(v, "sync-interval"),
    };
    let fatal = |s: &str| Err(OptionsError::Fatal(s.to_string()));
    if opts.channel.is_empty() {
        return fatal("--channel is required");
    }
    if opts.http_client_connect_timeout <= 0 {
        return fatal("--http-client-connect-timeout should be positive");
    }
    if opts.http_client_request_timeout <= 0 {
        return fatal("--http-client-request-timeout should be positive");
    }
    if opts.nsqd_tcp_addresses.is_empty() && opts.lookupd_http_addresses.is_empty() {
        return fatal("--nsqd-tcp-address or --lookupd-http-address required.");
    }
    if !opts.nsqd_tcp_addresses.is_empty() && !opts.lookupd_http_addresses.is_empty() {
        return fatal("use --nsqd-tcp-address or --lookupd-http-address not both");
    }
    if !(1..=9).contains(&opts.gzip_level) {
        return Err(OptionsError::Fatal(format!(
            "invalid --gzip-level value ({}), should be 1-9",
            opts.gzip_level
        )));
    }
    if !(1..=19).contains(&opts.zstd_level) {
        return Err(OptionsError::Fatal(format!(
            "invalid --zstd-level value ({}), should be 1-19",
            opts.zstd_level
        )));
    }
    if opts.gzip && opts.zstd {
        return fatal("--gzip and --zstd are mutually exclusive");
    }
    if opts.topics.is_empty() && opts.topic_pattern.is_empty() {
        return fatal("--topic or --topic-pattern required");
    }
    if opts.topics.is_empty() && opts.lookupd_http_addresses.is_empty() {
        return fatal("--lookupd-http-address must be specified when no --topic specified");
    }
    if opts.sync_interval <= 0 {
        // NSQ accepts the flag and then panics creating its ticker.
        return Err(OptionsError::Crash(
            "--sync-interval must be positive (non-positive interval for NewTicker)".to_string(),
        ));
    }
    Ok(Outcome::Run(Box::new(opts)))
}

/// Go's `log.Fatal` line: date and time, then the text.
fn log_fatal_plain(msg: &str) {
    let now = chrono::Local::now().format("%Y/%m/%d %H:%M:%S");
    eprintln!("{now} {msg}");
}

fn duration_of(nanos: i64) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// Runs `nsq_to_file` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let opts = match parse(args) {
        Ok(Outcome::Help(text)) => {
            eprint!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Outcome::Version) => {
            println!("{APP} v{}", crate::common::NSQ_VERSION);
            return ExitCode::SUCCESS;
        }
        Ok(Outcome::Run(opts)) => opts,
        Err(e @ OptionsError::Flag(_)) => {
            eprintln!("{e}");
            eprint!("{}", usage());
            return ExitCode::from(e.exit_code());
        }
        Err(e) => {
            log_fatal_plain(&e.to_string());
            return ExitCode::from(e.exit_code());
        }
    };
    let prefix = opts.log_prefix.clone();
    nsq_daemon::logging::init(&prefix, opts.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            nsq_daemon::logging::fatal(&prefix, &format!("starting runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(discover::run(Arc::new(*opts))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            nsq_daemon::logging::fatal(&prefix, &msg);
            ExitCode::from(1)
        }
    }
}

pub(crate) fn sync_interval(opts: &Options) -> Duration {
    duration_of(opts.sync_interval)
}

pub(crate) fn positive_duration(nanos: i64) -> Option<Duration> {
    (nanos > 0).then(|| duration_of(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn fatal(a: &[&str]) -> String {
        match parse(args(a)) {
            Err(OptionsError::Fatal(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let Outcome::Run(o) = parse(args(&["--topic=t", "--nsqd-tcp-address=a:1"])).unwrap() else {
            panic!()
        };
        assert_eq!(o.channel, "nsq_to_file");
        assert_eq!(o.max_in_flight, 200);
        assert_eq!(o.output_dir, "/tmp");
        assert_eq!(o.work_dir, "/tmp");
        assert_eq!(o.filename_format, "<TOPIC>.<HOST><REV>.<DATETIME>.log");
        assert_eq!(o.sync_interval, 30_000_000_000);
        assert_eq!(o.topic_refresh, 60_000_000_000);
        assert_eq!(o.rotate_interval, 0);
        assert_eq!(o.gzip_level, 6);
        assert_eq!(o.log_prefix, "[nsq_to_file] ");
    }

    #[test]
    fn checks_in_nsq_order() {
        assert_eq!(fatal(&["x"]), "unknown arguments: [x]");
        assert_eq!(
            fatal(&["--log-level=no", "--version"]),
            "--log-level is invalid"
        );
        assert_eq!(parse(args(&["--version"])).unwrap(), Outcome::Version);
        assert_eq!(
            fatal(&["--topic=t", "--nsqd-tcp-address=a", "--channel="]),
            "--channel is required"
        );
        assert_eq!(
            fatal(&[
                "--topic=t",
                "--nsqd-tcp-address=a",
                "--http-client-request-timeout=-1s"
            ]),
            "--http-client-request-timeout should be positive"
        );
        assert_eq!(
            fatal(&["--topic=t"]),
            "--nsqd-tcp-address or --lookupd-http-address required."
        );
        assert_eq!(
            fatal(&["--nsqd-tcp-address=a", "--lookupd-http-address=b"]),
            "use --nsqd-tcp-address or --lookupd-http-address not both"
        );
        assert_eq!(
            fatal(&["--nsqd-tcp-address=a", "--gzip-level=10"]),
            "invalid --gzip-level value (10), should be 1-9"
        );
        assert_eq!(
            fatal(&["--nsqd-tcp-address=a"]),
            "--topic or --topic-pattern required"
        );
        assert_eq!(
            fatal(&["--nsqd-tcp-address=a", "--topic-pattern=x"]),
            "--lookupd-http-address must be specified when no --topic specified"
        );
    }

    #[test]
    fn flag_errors() {
        assert!(matches!(
            parse(args(&["--sync-interval=soon"])),
            Err(OptionsError::Flag(FlagError::InvalidValue { .. }))
        ));
        assert!(matches!(
            parse(args(&[
                "--topic=t",
                "--nsqd-tcp-address=a",
                "--sync-interval=0"
            ])),
            Err(OptionsError::Crash(_))
        ));
        let usage = usage();
        assert!(!usage.contains("zstd"));
        assert!(usage.starts_with("Usage of nsqd:\n  -channel string\n"));
        assert!(usage.contains("  -rotate-size rotate-size\n    \trotate the file when it grows bigger than rotate-size bytes\n"));
        assert!(usage.contains("  -topic-refresh duration\n    \thow frequently the topic list should be refreshed (default 1m0s)\n"));
        assert!(
            usage.contains("  -rotate-interval duration\n    \trotate the file every duration\n")
        );
    }
}
