//! nsqlookupd's options: every flag with NSQ's names, defaults and config-file keys, and the
//! `log_level` config check.
use std::str::FromStr;
use std::time::Duration;

use nsq_daemon::LogLevel;
use nsq_flags::{ArgsError, ConfigError, DaemonArgs, Flag, FlagError, FlagSet, Values};

/// Every nsqlookupd option after flags, config file and defaults have been merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub log_level: LogLevel,
    pub log_prefix: String,
    pub tcp_address: String,
    pub http_address: String,
    /// Returned to nsqd in the IDENTIFY reply; nsqd queries `<this>:<http port>`.
    pub broadcast_address: String,
    /// A producer not heard from (PING/IDENTIFY) for longer is hidden from lookups.
    pub inactive_producer_timeout: Duration,
    /// How long `/topic/tombstone` hides a producer of a topic from `/lookup`.
    pub tombstone_lifetime: Duration,
    /// Deprecation notices for the caller to log once logging is set up.
    pub warnings: Vec<String>,
}

/// What the command line asked nsqlookupd to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Run(Box<Options>),
    /// Print this usage text to stderr and exit 0.
    Help(String),
    /// Print the version line and exit 0.
    Version,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionsError {
    /// Bad command line; print with [`usage`], exit 2.
    #[error(transparent)]
    Flag(#[from] FlagError),
    /// Unreadable config file or bad value in it; fatal, exit 1.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl OptionsError {
    pub fn exit_code(&self) -> i32 {
        match self {
            OptionsError::Flag(_) => 2,
            OptionsError::Config(_) => 1,
        }
    }
}

/// Parses nsqlookupd's arguments (without the program name) and loads `--config`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Outcome, OptionsError> {
    parse_for_host(args, &nsq_daemon::hostname())
}

/// Usage text for printing after a command-line error.
pub fn usage() -> String {
    flag_set(&nsq_daemon::hostname()).usage()
}

fn parse_for_host(
    args: impl IntoIterator<Item = String>,
    hostname: &str,
) -> Result<Outcome, OptionsError> {
    let values = match flag_set(hostname).parse_daemon(args) {
        Ok(DaemonArgs::Help(text)) => return Ok(Outcome::Help(text)),
        Ok(DaemonArgs::Version) => return Ok(Outcome::Version),
        Ok(DaemonArgs::Run(values)) => values,
        Err(ArgsError::Flag(e)) => return Err(e.into()),
        Err(ArgsError::Config(e)) => return Err(e.into()),
    };
    Ok(Outcome::Run(Box::new(Options::from_values(&values))))
}

/// nsqlookupd's flags. `hostname` is the default `--broadcast-address`.
pub fn flag_set(hostname: &str) -> FlagSet {
    FlagSet::new("nsqlookupd")
        .flag(Flag::string("config", "", "path to config file").no_config())
        .flag(Flag::bool("version", false, "print version string").no_config())
        .flag(
            Flag::string(
                "log-level",
                "info",
                "set log verbosity: debug, info, warn, error, or fatal",
            )
            .normalizer(nsq_daemon::logging::normalize_log_level)
            .value_name("value"),
        )
        .flag(Flag::string(
            "log-prefix",
            "[nsqlookupd] ",
            "log message prefix",
        ))
        .flag(
            Flag::bool(
                "verbose",
                false,
                "[deprecated] has no effect, use --log-level",
            )
            .no_config(),
        )
        .flag(Flag::string(
            "tcp-address",
            "0.0.0.0:4160",
            "<addr>:<port> to listen on for TCP clients",
        ))
        .flag(Flag::string(
            "http-address",
            "0.0.0.0:4161",
            "<addr>:<port> to listen on for HTTP clients",
        ))
        .flag(Flag::string(
            "broadcast-address",
            hostname,
            "address of this lookupd node, (default to the OS hostname)",
        ))
        .flag(Flag::duration(
            "inactive-producer-timeout",
            Duration::from_secs(300),
            "duration of time a producer will remain in the active list since its last ping",
        ))
        .flag(Flag::duration(
            "tombstone-lifetime",
            Duration::from_secs(45),
            "duration of time a producer will remain tombstoned if registration remains",
        ))
}

impl Options {
    /// All defaults for this host.
    pub fn defaults() -> Options {
        Options::from_values(&flag_set(&nsq_daemon::hostname()).defaults())
    }

    /// Builds options from merged flag values. The log level was checked by its normalizer, so
    /// the fallback is never taken.
    fn from_values(v: &Values) -> Options {
        let mut warnings = Vec::new();
        if v.is_set_on_cli("verbose") {
            warnings.push("--verbose is deprecated and has no effect (use --log-level)".into());
        }
        Options {
            log_level: LogLevel::from_str(v.string("log-level")).unwrap_or(LogLevel::Info),
            log_prefix: v.string("log-prefix").to_string(),
            tcp_address: v.string("tcp-address").to_string(),
            http_address: v.string("http-address").to_string(),
            broadcast_address: v.string("broadcast-address").to_string(),
            inactive_producer_timeout: v.duration("inactive-producer-timeout"),
            tombstone_lifetime: v.duration("tombstone-lifetime"),
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    const HOST: &str = "lookupd-host.example";

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn run(args: &[&str]) -> Options {
        match parse_for_host(argv(args), HOST) {
            Ok(Outcome::Run(o)) => *o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn fail(args: &[&str]) -> OptionsError {
        match parse_for_host(argv(args), HOST) {
            Err(e) => e,
            other => panic!("{args:?}: expected an error, got {other:?}"),
        }
    }

    fn with_config(text: &str, extra: &[&str]) -> Result<Outcome, OptionsError> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("nsqlookupd.cfg");
        let mut f = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        f.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut args = vec![format!("--config={}", path.display())];
        args.extend(argv(extra));
        parse_for_host(args, HOST)
    }

    fn run_config(text: &str, extra: &[&str]) -> Options {
        match with_config(text, extra) {
            Ok(Outcome::Run(o)) => *o,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn defaults_match_nsq() {
        let o = run(&[]);
        assert_eq!(
            o,
            Options {
                log_level: LogLevel::Info,
                log_prefix: "[nsqlookupd] ".into(),
                tcp_address: "0.0.0.0:4160".into(),
                http_address: "0.0.0.0:4161".into(),
                broadcast_address: HOST.into(),
                inactive_producer_timeout: Duration::from_secs(300),
                tombstone_lifetime: Duration::from_secs(45),
                warnings: vec![],
            }
        );
        assert_eq!(Options::defaults().tcp_address, "0.0.0.0:4160");
    }

    #[test]
    fn command_line_forms() {
        let o = run(&[
            "-tcp-address=127.0.0.1:0",
            "--http-address",
            "127.0.0.1:1",
            "--broadcast-address=lookupd-1",
            "--inactive-producer-timeout=1m30s",
            "-tombstone-lifetime",
            "250ms",
            "--log-level=WARN",
            "--log-prefix=",
        ]);
        assert_eq!(o.tcp_address, "127.0.0.1:0");
        assert_eq!(o.http_address, "127.0.0.1:1");
        assert_eq!(o.broadcast_address, "lookupd-1");
        assert_eq!(o.inactive_producer_timeout, Duration::from_secs(90));
        assert_eq!(o.tombstone_lifetime, Duration::from_millis(250));
        assert_eq!(o.log_level, LogLevel::Warn);
        assert_eq!(o.log_prefix, "");
    }

    #[test]
    fn help_and_version() {
        match parse_for_host(argv(&["-h"]), HOST) {
            Ok(Outcome::Help(text)) => {
                assert!(text.starts_with("Usage of nsqlookupd:\n"), "{text}");
                assert!(
                    text.contains("  -inactive-producer-timeout duration\n"),
                    "{text}"
                );
                assert!(text.contains("(default 5m0s)"), "{text}");
                assert!(text.contains("(default 45s)"), "{text}");
                assert!(text.contains(&format!("(default \"{HOST}\")")), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_for_host(argv(&["--help"]), HOST),
            Ok(Outcome::Help(_))
        ));
        assert_eq!(
            parse_for_host(argv(&["--version"]), HOST),
            Ok(Outcome::Version)
        );
        assert_eq!(
            parse_for_host(argv(&["--config=/nonexistent/x.cfg", "--version"]), HOST),
            Ok(Outcome::Version)
        );
    }

    #[test]
    fn flag_errors_exit_2() {
        for (args, msg) in [
            (&["--foo"][..], "flag provided but not defined: -foo"),
            // nsqd-only flags are unknown here.
            (
                &["--data-path=/tmp"][..],
                "flag provided but not defined: -data-path",
            ),
            (
                &["--tombstone-lifetime=45"],
                "invalid value \"45\" for flag -tombstone-lifetime: parse error",
            ),
            (&["--tcp-address"], "flag needs an argument: -tcp-address"),
            (
                &["--log-level=loud"],
                "invalid value \"loud\" for flag -log-level: invalid log level 'loud' \
                 (debug, info, warn, error, fatal)",
            ),
        ] {
            let e = fail(args);
            assert_eq!(e.to_string(), msg);
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn verbose_is_accepted_with_a_warning() {
        let o = run(&["--verbose"]);
        assert_eq!(o.warnings.len(), 1);
        assert!(o.warnings[0].contains("--verbose"));
        assert!(run_config("verbose = true\n", &[]).warnings.is_empty());
        // A bare boolean: a following word is positional and ends parsing.
        let o = run(&["--verbose", "false", "--tcp-address=x:1"]);
        assert_eq!(o.tcp_address, "0.0.0.0:4160");
    }

    #[test]
    fn config_file_keys_and_precedence() {
        let o = run_config(
            "tcp_address = \"127.0.0.1:4000\"\n\
             http_address = \"127.0.0.1:4001\"\n\
             broadcast_address = \"cfg-host\"\n\
             inactive_producer_timeout = \"10s\"\n\
             tombstone_lifetime = 1500\n\
             log_level = \"DEBUG\"\n\
             log_prefix = \"[x] \"\n\
             unknown_key = 1\n",
            &["--tcp-address=127.0.0.1:5000"],
        );
        assert_eq!(o.tcp_address, "127.0.0.1:5000");
        assert_eq!(o.http_address, "127.0.0.1:4001");
        assert_eq!(o.broadcast_address, "cfg-host");
        assert_eq!(o.inactive_producer_timeout, Duration::from_secs(10));
        // An integer duration is milliseconds.
        assert_eq!(o.tombstone_lifetime, Duration::from_millis(1500));
        assert_eq!(o.log_level, LogLevel::Debug);
        assert_eq!(o.log_prefix, "[x] ");
    }

    #[test]
    fn config_errors_exit_1() {
        for text in [
            "tcp_address = ",
            "log_level = \"loud\"",
            "tombstone_lifetime = true",
        ] {
            match with_config(text, &[]) {
                Err(e) => assert_eq!(e.exit_code(), 1, "{e}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        match with_config("log_level = \"loud\"", &["--log-level=info"]) {
            Err(e) => assert_eq!(e.to_string(), "failed parsing log_level loud"),
            other => panic!("{other:?}"),
        }
        let e = fail(&["--config=/nonexistent/dir/x.cfg"]);
        assert!(
            e.to_string()
                .starts_with("failed to load config file /nonexistent/dir/x.cfg - "),
            "{e}"
        );
    }
}
