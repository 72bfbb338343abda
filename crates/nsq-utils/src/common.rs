//! What the utilities share: Go-style flag handling and errors, the nsqd/nsqlookupd address
//! checks, `--consumer-opt`/`--producer-opt`, Go `log`-style stderr lines, the version line,
//! the user agent, signal handling and the exit codes.
use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;

use nsq_flags::{go_quote, CommandLine, FlagSet, Parsed};

/// NSQ's release the utilities' flags and outputs follow.
pub const NSQ_VERSION: &str = "1.3.0";

/// Normal end, `-h`, `--version`.
pub const EXIT_OK: u8 = 0;
/// What Go's `log.Fatal` exits with: a missing or contradictory flag, a failure at run time.
pub const EXIT_FATAL: u8 = 1;
/// What Go's `flag` package exits with: an unknown flag or a value that does not parse.
pub const EXIT_USAGE: u8 = 2;

/// `<app> v1.3.0`, as the Go utilities print for `--version`.
pub fn version_line(app: &str) -> String {
    format!("{app} v{NSQ_VERSION}")
}

/// The user agent the utilities send in IDENTIFY: `<app>/1.3.0 nsq-rs/<version>`.
pub fn user_agent(app: &str) -> String {
    nsq_client::user_agent(app, NSQ_VERSION)
}

/// The name Go's usage text shows (`Usage of <name>:`): the path the program was started
/// with, as Go's `os.Args[0]`, or `app` when that is unavailable.
pub fn program_name(app: &str) -> String {
    std::env::args_os()
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| app.to_string())
}

/// Go's `log` timestamp: local time, `2006/01/02 15:04:05`.
fn log_timestamp() -> String {
    chrono::Local::now().format("%Y/%m/%d %H:%M:%S").to_string()
}

/// Writes one line to stderr as Go's `log.Printf` does (timestamp, message, newline).
pub fn log_line(msg: &str) {
    let mut line = format!("{} {msg}", log_timestamp());
    if !line.ends_with('\n') {
        line.push('\n');
    }
    // stderr is unbuffered; a failed write has nowhere better to be reported.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Go's `log.Fatal`: logs `msg` and returns the exit code for the caller to end with.
pub fn fatal(msg: &str) -> ExitCode {
    log_line(msg);
    ExitCode::from(EXIT_FATAL)
}

/// Routes the `log` crate (the client library's connection and backoff messages) to stderr in
/// Go's `log` layout, with go-nsq's level tags, at go-nsq's default level (info).
pub fn init_logging() {
    static LOGGER: GoLogger = GoLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

struct GoLogger;

impl log::Log for GoLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let tag = match record.level() {
            log::Level::Error => "ERR",
            log::Level::Warn => "WRN",
            log::Level::Info => "INF",
            log::Level::Debug | log::Level::Trace => "DBG",
        };
        log_line(&format!("{tag} {}", record.args()));
    }

    fn flush(&self) {}
}

/// The result of parsing a utility's command line.
pub enum Cli {
    Run(CommandLine),
    /// `-h` or a flag error was handled (printed); end with this code.
    Exit(ExitCode),
}

/// Parses `args` as Go's `flag.Parse` would: `-h` prints the usage to stderr and exits 0; an
/// unknown flag or bad value prints the error and usage to stderr and exits 2.
pub fn parse_flags(flags: &FlagSet, args: Vec<String>) -> Cli {
    match flags.parse(args) {
        Ok(Parsed::Args(cl)) => Cli::Run(cl),
        Ok(Parsed::Help(usage)) => {
            eprint!("{usage}");
            Cli::Exit(ExitCode::from(EXIT_OK))
        }
        Err(e) => Cli::Exit(usage_error(flags, &e.to_string())),
    }
}

/// Prints a flag error followed by the usage text, as Go's `flag` package does, and returns
/// exit code 2.
pub fn usage_error(flags: &FlagSet, msg: &str) -> ExitCode {
    eprint!("{msg}\n{}", flags.usage());
    ExitCode::from(EXIT_USAGE)
}

/// Go's wording for a flag whose `Set` rejected a value.
pub fn invalid_flag_value(flag: &str, value: &str, reason: &str) -> String {
    format!(
        "invalid value {} for flag -{flag}: {reason}",
        go_quote(value)
    )
}

/// A `--consumer-opt`/`--producer-opt` value that go-nsq's config rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptError {
    /// The flag it came from, without dashes.
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for OptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&invalid_flag_value(self.flag, &self.value, &self.reason))
    }
}

impl std::error::Error for OptError {}

/// Applies each `key,value` (or bare `key`, meaning true) of a `--consumer-opt` or
/// `--producer-opt` list to `config`, in order; stops at the first one go-nsq would reject.
pub fn apply_config_opts(
    config: &mut nsq_client::Config,
    flag: &'static str,
    opts: &[String],
) -> Result<(), OptError> {
    for opt in opts {
        set_opt(config, opt).map_err(|e| OptError {
            flag,
            value: opt.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

fn set_opt(config: &mut nsq_client::Config, opt: &str) -> Result<(), nsq_client::ConfigError> {
    config.set_flag(opt)
}

/// Which kind of address a consumer was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sources {
    Nsqd(Vec<String>),
    Lookupd(Vec<String>),
}

/// Neither or both of the two address lists were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcesError {
    /// `--<nsqd> or --<lookupd> required`
    Missing {
        nsqd: &'static str,
        lookupd: &'static str,
    },
    /// `use --<nsqd> or --<lookupd> not both`
    Both {
        nsqd: &'static str,
        lookupd: &'static str,
    },
}

impl fmt::Display for SourcesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourcesError::Missing { nsqd, lookupd } => {
                write!(f, "--{nsqd} or --{lookupd} required")
            }
            SourcesError::Both { nsqd, lookupd } => {
                write!(f, "use --{nsqd} or --{lookupd} not both")
            }
        }
    }
}

impl std::error::Error for SourcesError {}

/// The name of the nsqd list flag of consumers (`nsq_stat` uses `nsqd-http-address`).
pub const NSQD_TCP_FLAG: &str = "nsqd-tcp-address";
/// The name of the nsqlookupd list flag.
pub const LOOKUPD_HTTP_FLAG: &str = "lookupd-http-address";

/// Exactly one of the two lists must be non-empty, as every Go consumer utility checks.
pub fn check_sources(
    nsqd_flag: &'static str,
    nsqd: &[String],
    lookupd_flag: &'static str,
    lookupd: &[String],
) -> Result<Sources, SourcesError> {
    match (nsqd.is_empty(), lookupd.is_empty()) {
        (true, true) => Err(SourcesError::Missing {
            nsqd: nsqd_flag,
            lookupd: lookupd_flag,
        }),
        (false, false) => Err(SourcesError::Both {
            nsqd: nsqd_flag,
            lookupd: lookupd_flag,
        }),
        (false, true) => Ok(Sources::Nsqd(nsqd.to_vec())),
        (true, false) => Ok(Sources::Lookupd(lookupd.to_vec())),
    }
}

/// Go's `consumer.ConnectToNSQD` error text for a failed dial, so `log.Fatal` lines read like
/// Go's (`dial tcp 127.0.0.1:1: connect: connection refused`); other errors keep their own text.
pub fn client_error_text(err: &nsq_client::Error) -> String {
    match err {
        // Only a refused connection is certainly a dial failure; other I/O errors may come
        // from an established connection.
        nsq_client::Error::Io { addr, source }
            if source.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            dial_error_text(addr, source)
        }
        // go-nsq reports nsqd's error frame as its bare text (`E_BAD_TOPIC ...`).
        nsq_client::Error::Server { code, text, .. } if code == "E_IDENTIFY_FAILED" => {
            format!("failed to IDENTIFY - {text}")
        }
        nsq_client::Error::Server { text, .. } => text.clone(),
        nsq_client::Error::Timeout { addr, what } if *what == "dial" || *what == "connect" => {
            format!("dial tcp {addr}: i/o timeout")
        }
        other => other.to_string(),
    }
}

/// `dial tcp <addr>: connect: connection refused` and friends, in Go's words.
pub fn dial_error_text(addr: &str, err: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let reason = match err.kind() {
        ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        ErrorKind::TimedOut => "i/o timeout".to_string(),
        ErrorKind::ConnectionReset => "connection reset by peer".to_string(),
        _ => strip_os_error(&err.to_string()),
    };
    format!("dial tcp {addr}: {reason}")
}

/// `Connection refused (os error 111)` → `connection refused`, closer to Go's error strings.
fn strip_os_error(text: &str) -> String {
    let base = match text.rfind(" (os error ") {
        Some(i) => text.get(..i).unwrap_or(text),
        None => text,
    };
    let mut chars = base.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Resolves at the first SIGINT or SIGTERM (and SIGHUP when `hup` is set, as `nsq_stat` does).
/// If the handlers cannot be installed, it never resolves, and the default action of those
/// signals (ending the process) still applies.
pub async fn shutdown_signal(hup: bool) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    let mut hangup = if hup {
        signal(SignalKind::hangup()).ok()
    } else {
        None
    };
    let hangup_fut = async {
        match hangup.as_mut() {
            Some(h) => {
                h.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hangup_fut => {}
    }
}

/// The tokio runtime for a utility's main (two workers: the utilities are small), or the Go-style fatal exit if one
/// cannot be built.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fatal(&format!("failed to start the runtime - {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn sources_need_exactly_one_kind() {
        let e = check_sources(NSQD_TCP_FLAG, &[], LOOKUPD_HTTP_FLAG, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--nsqd-tcp-address or --lookupd-http-address required"
        );
        let e = check_sources(NSQD_TCP_FLAG, &s(&["a:1"]), LOOKUPD_HTTP_FLAG, &s(&["b:2"]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "use --nsqd-tcp-address or --lookupd-http-address not both"
        );
        assert_eq!(
            check_sources(NSQD_TCP_FLAG, &s(&["a:1"]), LOOKUPD_HTTP_FLAG, &[]),
            Ok(Sources::Nsqd(s(&["a:1"])))
        );
        assert_eq!(
            check_sources("nsqd-http-address", &[], LOOKUPD_HTTP_FLAG, &s(&["b:2"])),
            Ok(Sources::Lookupd(s(&["b:2"])))
        );
        let e = check_sources("nsqd-http-address", &[], LOOKUPD_HTTP_FLAG, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--nsqd-http-address or --lookupd-http-address required"
        );
    }

    #[test]
    fn version_and_user_agent() {
        assert_eq!(version_line("nsq_tail"), "nsq_tail v1.3.0");
        assert!(user_agent("to_nsq").starts_with("to_nsq/1.3.0 nsq-rs/"));
    }

    #[test]
    fn invalid_value_text_is_gos() {
        assert_eq!(
            invalid_flag_value("consumer-opt", "foo", "invalid option foo"),
            "invalid value \"foo\" for flag -consumer-opt: invalid option foo"
        );
    }

    #[test]
    fn dial_errors_read_like_gos() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            dial_error_text("127.0.0.1:1", &e),
            "dial tcp 127.0.0.1:1: connect: connection refused"
        );
        assert_eq!(
            strip_os_error("Network is unreachable (os error 101)"),
            "network is unreachable"
        );
        assert_eq!(strip_os_error(""), "");
    }

    #[test]
    fn bad_config_opt_names_the_flag() {
        let mut c = nsq_client::Config::new();
        let e = apply_config_opts(&mut c, "consumer-opt", &s(&["no_such_option,1"])).unwrap_err();
        assert_eq!(e.flag, "consumer-opt");
        assert!(
            e.to_string()
                .starts_with("invalid value \"no_such_option,1\" for flag -consumer-opt: "),
            "{e}"
        );
    }
}
