//! nsqadmin's options: every NSQ 1.3.0 flag with its name, default and config-file key, the
//! history flags of our own, and the start-up checks NSQ makes before listening.
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use nsq_daemon::LogLevel;
use nsq_flags::{ArgsError, ConfigError, DaemonArgs, Flag, FlagError, FlagSet, Values};
use serde_json::{json, Value as Json};

/// Every nsqadmin option after flags, config file and defaults have been merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub log_level: LogLevel,
    pub log_prefix: String,
    pub http_address: String,
    /// Normalised: leading `/`, cleaned, no trailing `/` (except the root itself).
    pub base_path: String,
    pub dev_static_dir: String,
    pub graphite_url: String,
    pub proxy_graphite: bool,
    pub statsd_prefix: String,
    pub statsd_counter_format: String,
    pub statsd_gauge_format: String,
    pub statsd_interval: Duration,
    pub lookupd_http_addresses: Vec<String>,
    pub nsqd_http_addresses: Vec<String>,
    pub http_client_connect_timeout: Duration,
    pub http_client_request_timeout: Duration,
    pub http_client_tls_insecure_skip_verify: bool,
    pub http_client_tls_root_ca_file: String,
    pub http_client_tls_cert: String,
    pub http_client_tls_key: String,
    pub allow_config_from_cidr: String,
    pub notification_http_endpoint: String,
    pub acl_http_header: String,
    pub admin_users: Vec<String>,
    /// How often the cluster is sampled for the built-in charts; zero turns sampling off.
    pub history_interval: Duration,
    /// How much sampled history is kept.
    pub history_retention: Duration,
    /// Deprecation notices for the caller to log once logging is set up.
    pub warnings: Vec<String>,
}

/// What the command line asked nsqadmin to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Run(Box<Options>),
    Help(String),
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

/// A configuration nsqadmin refuses to start with, worded as NSQ words it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidOptions(pub String);

/// Parses nsqadmin's arguments (without the program name) and loads `--config`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Outcome, OptionsError> {
    let values = match flag_set().parse_daemon(args) {
        Ok(DaemonArgs::Help(text)) => return Ok(Outcome::Help(text)),
        Ok(DaemonArgs::Version) => return Ok(Outcome::Version),
        Ok(DaemonArgs::Run(values)) => values,
        Err(ArgsError::Flag(e)) => return Err(e.into()),
        Err(ArgsError::Config(e)) => return Err(e.into()),
    };
    Ok(Outcome::Run(Box::new(Options::from_values(&values))))
}

/// Usage text for printing after a command-line error.
pub fn usage() -> String {
    flag_set().usage()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// nsqadmin's flags, in NSQ's order, then ours.
pub fn flag_set() -> FlagSet {
    FlagSet::new("nsqadmin")
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
        .flag(Flag::string("log-prefix", "[nsqadmin] ", "log message prefix"))
        .flag(
            Flag::bool(
                "verbose",
                false,
                "[deprecated] has no effect, use --log-level",
            )
            .no_config(),
        )
        .flag(Flag::string(
            "http-address",
            "0.0.0.0:4171",
            "<addr>:<port> to listen on for HTTP clients",
        ))
        .flag(Flag::string("base-path", "/", "URL base path"))
        .flag(Flag::string(
            "dev-static-dir",
            "",
            "serve the UI's static files from this directory instead of the built-in ones (development use only)",
        ))
        .flag(Flag::string("graphite-url", "", "graphite HTTP address"))
        .flag(Flag::bool(
            "proxy-graphite",
            false,
            "proxy HTTP requests to graphite",
        ))
        .flag(Flag::string(
            "statsd-counter-format",
            "stats.counters.%s.count",
            "how the statsd server names counters in graphite (empty for no formatting)",
        ))
        .flag(Flag::string(
            "statsd-gauge-format",
            "stats.gauges.%s",
            "how the statsd server names gauges in graphite (empty for no formatting)",
        ))
        .flag(Flag::string(
            "statsd-prefix",
            "nsq.%s",
            "prefix of the keys nsqd sends to statsd (%s is the host; must match nsqd)",
        ))
        .flag(Flag::duration(
            "statsd-interval",
            secs(60),
            "how often nsqd pushes to statsd (must match nsqd)",
        ))
        .flag(Flag::string(
            "notification-http-endpoint",
            "",
            "URL that receives a POST describing each admin action",
        ))
        .flag(Flag::duration(
            "http-client-connect-timeout",
            secs(2),
            "timeout for HTTP connect",
        ))
        .flag(Flag::duration(
            "http-client-request-timeout",
            secs(5),
            "timeout for HTTP request",
        ))
        .flag(Flag::bool(
            "http-client-tls-insecure-skip-verify",
            false,
            "do not verify the certificates of HTTPS upstreams",
        ))
        .flag(Flag::string(
            "http-client-tls-root-ca-file",
            "",
            "path to CA file for the HTTP client",
        ))
        .flag(Flag::string(
            "http-client-tls-cert",
            "",
            "path to certificate file for the HTTP client",
        ))
        .flag(Flag::string(
            "http-client-tls-key",
            "",
            "path to key file for the HTTP client",
        ))
        .flag(Flag::string(
            "allow-config-from-cidr",
            "127.0.0.1/8",
            "A CIDR from which to allow HTTP requests to the /config endpoint",
        ))
        .flag(Flag::string(
            "acl-http-header",
            "X-Forwarded-User",
            "HTTP header to check for authenticated admin users",
        ))
        .flag(
            Flag::str_list(
                "lookupd-http-address",
                "lookupd HTTP address (may be given multiple times)",
            )
            .config_name("nsqlookupd_http_addresses"),
        )
        .flag(
            Flag::str_list(
                "nsqd-http-address",
                "nsqd HTTP address (may be given multiple times)",
            )
            .config_name("nsqd_http_addresses"),
        )
        .flag(
            Flag::str_list(
                "admin-user",
                "admin user (may be given multiple times; when set, only these users may perform actions, as named by --acl-http-header)",
            )
            .config_name("admin_users"),
        )
        .flag(Flag::duration(
            "history-interval",
            secs(10),
            "how often to sample cluster stats for the built-in charts (0 disables them)",
        ))
        .flag(Flag::duration(
            "history-retention",
            secs(3600),
            "how much sampled history to keep for the built-in charts",
        ))
}

/// `--base-path` as NSQ normalises it: leading slash added, then cleaned like Go's `path.Clean`.
pub fn normalize_base_path(p: &str) -> String {
    if p.is_empty() {
        return "/".to_string();
    }
    let with_slash = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    let cleaned = nsq_http::path::clean_path(&with_slash);
    match cleaned.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        _ => cleaned,
    }
}

impl Options {
    /// All defaults.
    pub fn defaults() -> Options {
        Options::from_values(&flag_set().defaults())
    }

    fn from_values(v: &Values) -> Options {
        let mut warnings = Vec::new();
        if v.is_set_on_cli("verbose") {
            warnings.push("--verbose is deprecated and has no effect (use --log-level)".into());
        }
        Options {
            log_level: LogLevel::from_str(v.string("log-level")).unwrap_or(LogLevel::Info),
            log_prefix: v.string("log-prefix").to_string(),
            http_address: v.string("http-address").to_string(),
            base_path: normalize_base_path(v.string("base-path")),
            dev_static_dir: v.string("dev-static-dir").to_string(),
            graphite_url: v.string("graphite-url").to_string(),
            proxy_graphite: v.bool("proxy-graphite"),
            statsd_prefix: v.string("statsd-prefix").to_string(),
            statsd_counter_format: v.string("statsd-counter-format").to_string(),
            statsd_gauge_format: v.string("statsd-gauge-format").to_string(),
            statsd_interval: v.duration("statsd-interval"),
            lookupd_http_addresses: v.str_list("lookupd-http-address").to_vec(),
            nsqd_http_addresses: v.str_list("nsqd-http-address").to_vec(),
            http_client_connect_timeout: v.duration("http-client-connect-timeout"),
            http_client_request_timeout: v.duration("http-client-request-timeout"),
            http_client_tls_insecure_skip_verify: v.bool("http-client-tls-insecure-skip-verify"),
            http_client_tls_root_ca_file: v.string("http-client-tls-root-ca-file").to_string(),
            http_client_tls_cert: v.string("http-client-tls-cert").to_string(),
            http_client_tls_key: v.string("http-client-tls-key").to_string(),
            allow_config_from_cidr: v.string("allow-config-from-cidr").to_string(),
            notification_http_endpoint: v.string("notification-http-endpoint").to_string(),
            acl_http_header: v.string("acl-http-header").to_string(),
            admin_users: v.str_list("admin-user").to_vec(),
            history_interval: v.duration("history-interval"),
            history_retention: v.duration("history-retention"),
            warnings,
        }
    }

    /// The checks NSQ makes before listening (TLS files are checked when the client is built).
    pub fn validate(&self) -> Result<(), InvalidOptions> {
        let fail = |m: String| Err(InvalidOptions(m));
        if self.nsqd_http_addresses.is_empty() && self.lookupd_http_addresses.is_empty() {
            return fail("--nsqd-http-address or --lookupd-http-address required".into());
        }
        if !self.nsqd_http_addresses.is_empty() && !self.lookupd_http_addresses.is_empty() {
            return fail("use --nsqd-http-address or --lookupd-http-address not both".into());
        }
        if !self.http_client_tls_cert.is_empty() && self.http_client_tls_key.is_empty() {
            return fail(
                "--http-client-tls-key must be specified with --http-client-tls-cert".into(),
            );
        }
        if !self.http_client_tls_key.is_empty() && self.http_client_tls_cert.is_empty() {
            return fail(
                "--http-client-tls-cert must be specified with --http-client-tls-key".into(),
            );
        }
        for (flag, list) in [
            ("--lookupd-http-address", &self.lookupd_http_addresses),
            ("--nsqd-http-address", &self.nsqd_http_addresses),
        ] {
            for addr in list {
                if let Err(e) = check_tcp_address(addr) {
                    return fail(format!("failed to resolve {flag} ({addr}) - {e}"));
                }
            }
        }
        if self.proxy_graphite {
            if let Err(e) = http::Uri::from_str(&self.graphite_url) {
                return fail(format!(
                    "failed to parse --graphite-url ({}) - {e}",
                    self.graphite_url
                ));
            }
        }
        if !self.allow_config_from_cidr.is_empty() {
            if let Err(e) = Cidr::parse(&self.allow_config_from_cidr) {
                return fail(format!(
                    "failed to parse --allow-config-from-cidr ({}) - {e}",
                    self.allow_config_from_cidr
                ));
            }
        }
        Ok(())
    }

    /// `GET /config/:opt`: an option by its config-file name, encoded as NSQ encodes it
    /// (durations in nanoseconds, the log level as its number).
    pub fn config_value(&self, name: &str) -> Option<Json> {
        let nanos = |d: Duration| json!(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Some(match name {
            "log_level" => json!(self.log_level.as_int()),
            "log_prefix" => json!(self.log_prefix),
            "http_address" => json!(self.http_address),
            "base_path" => json!(self.base_path),
            "dev_static_dir" => json!(self.dev_static_dir),
            "graphite_url" => json!(self.graphite_url),
            "proxy_graphite" => json!(self.proxy_graphite),
            "statsd_prefix" => json!(self.statsd_prefix),
            "statsd_counter_format" => json!(self.statsd_counter_format),
            "statsd_gauge_format" => json!(self.statsd_gauge_format),
            "statsd_interval" => nanos(self.statsd_interval),
            "nsqlookupd_http_addresses" => json!(self.lookupd_http_addresses),
            "nsqd_http_addresses" => json!(self.nsqd_http_addresses),
            "http_client_connect_timeout" => nanos(self.http_client_connect_timeout),
            "http_client_request_timeout" => nanos(self.http_client_request_timeout),
            "http_client_tls_insecure_skip_verify" => {
                json!(self.http_client_tls_insecure_skip_verify)
            }
            "http_client_tls_root_ca_file" => json!(self.http_client_tls_root_ca_file),
            "http_client_tls_cert" => json!(self.http_client_tls_cert),
            "http_client_tls_key" => json!(self.http_client_tls_key),
            "allow_config_from_cidr" => json!(self.allow_config_from_cidr),
            "notification_http_endpoint" => json!(self.notification_http_endpoint),
            "acl_http_header" => json!(self.acl_http_header),
            "admin_users" => json!(self.admin_users),
            "history_interval" => nanos(self.history_interval),
            "history_retention" => nanos(self.history_retention),
            _ => return None,
        })
    }

    /// Lookupd mode (preferred by NSQ) versus a fixed list of nsqd.
    pub fn lookupd_mode(&self) -> bool {
        !self.lookupd_http_addresses.is_empty()
    }
}

/// Go's `net.ResolveTCPAddr` on a literal `host:port`: the port must be numeric or empty; host
/// names are accepted here and resolved when used.
fn check_tcp_address(addr: &str) -> Result<(), String> {
    let (host, port) = split_host_port(addr)?;
    if host.contains(char::is_whitespace) {
        return Err(format!("lookup {host}: no such host"));
    }
    if !port.is_empty() && port.parse::<u16>().is_err() {
        return Err(format!("lookup tcp/{port}: unknown port"));
    }
    Ok(())
}

/// Go's `net.SplitHostPort`, with its error texts.
pub fn split_host_port(addr: &str) -> Result<(&str, &str), String> {
    let missing = || format!("address {addr}: missing port in address");
    if let Some(rest) = addr.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("address {addr}: missing ']' in address"));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(missing());
        };
        return Ok((host, port));
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(missing());
    };
    if host.contains(':') {
        return Err(format!("address {addr}: too many colons in address"));
    }
    Ok((host, port))
}

/// An IP network, for `--allow-config-from-cidr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (ip, bits) = s.split_once('/').ok_or_else(bad)?;
        let net: IpAddr = ip.parse().map_err(|_| bad())?;
        if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || bits.len() > 3 {
            return Err(bad());
        }
        let prefix: u8 = bits.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().map(|s| s.to_string())) {
            Ok(Outcome::Run(o)) => *o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults_match_nsq() {
        let o = run(&[]);
        assert_eq!(o.http_address, "0.0.0.0:4171");
        assert_eq!(o.base_path, "/");
        assert_eq!(o.log_prefix, "[nsqadmin] ");
        assert_eq!(o.statsd_prefix, "nsq.%s");
        assert_eq!(o.statsd_counter_format, "stats.counters.%s.count");
        assert_eq!(o.statsd_gauge_format, "stats.gauges.%s");
        assert_eq!(o.statsd_interval, secs(60));
        assert_eq!(o.http_client_connect_timeout, secs(2));
        assert_eq!(o.http_client_request_timeout, secs(5));
        assert_eq!(o.allow_config_from_cidr, "127.0.0.1/8");
        assert_eq!(o.acl_http_header, "X-Forwarded-User");
        assert!(o.admin_users.is_empty());
        assert_eq!(o.history_interval, secs(10));
        assert_eq!(o.history_retention, secs(3600));
        assert_eq!(
            o.validate(),
            Err(InvalidOptions(
                "--nsqd-http-address or --lookupd-http-address required".into()
            ))
        );
    }

    #[test]
    fn repeatable_and_go_style_flags() {
        let o = run(&[
            "-lookupd-http-address=127.0.0.1:4161",
            "--lookupd-http-address",
            "127.0.0.1:4162",
            "--admin-user=alice",
            "--admin-user",
            "bob",
            "--base-path=admin/",
            "--history-interval=1s",
        ]);
        assert_eq!(
            o.lookupd_http_addresses,
            ["127.0.0.1:4161", "127.0.0.1:4162"]
        );
        assert_eq!(o.admin_users, ["alice", "bob"]);
        assert_eq!(o.base_path, "/admin");
        assert_eq!(o.history_interval, secs(1));
        assert_eq!(o.validate(), Ok(()));
    }

    #[test]
    fn start_up_checks_are_worded_as_nsq() {
        let both = run(&["--lookupd-http-address=a:1", "--nsqd-http-address=b:2"]);
        assert_eq!(
            both.validate().unwrap_err().0,
            "use --nsqd-http-address or --lookupd-http-address not both"
        );
        let cert = run(&["--nsqd-http-address=b:2", "--http-client-tls-cert=c"]);
        assert_eq!(
            cert.validate().unwrap_err().0,
            "--http-client-tls-key must be specified with --http-client-tls-cert"
        );
        let addr = run(&["--nsqd-http-address=nocolon"]);
        assert_eq!(
            addr.validate().unwrap_err().0,
            "failed to resolve --nsqd-http-address (nocolon) - address nocolon: missing port in address"
        );
        let cidr = run(&[
            "--nsqd-http-address=b:2",
            "--allow-config-from-cidr=10.0.0.0",
        ]);
        assert_eq!(
            cidr.validate().unwrap_err().0,
            "failed to parse --allow-config-from-cidr (10.0.0.0) - invalid CIDR address: 10.0.0.0"
        );
    }

    #[test]
    fn config_file_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nsqadmin.cfg");
        std::fs::write(
            &path,
            "nsqlookupd_http_addresses = [\"a:4161\", \"b:4161\"]\nadmin_users = \"alice,bob\"\n\
             http_client_request_timeout = 1500\nhistory_retention = \"2h\"\nbase_path = \"/x\"\n",
        )
        .unwrap();
        let cfg = format!("--config={}", path.display());
        let o = run(&[&cfg, "--admin-user=carol"]);
        assert_eq!(o.lookupd_http_addresses, ["a:4161", "b:4161"]);
        // The command line wins over the file.
        assert_eq!(o.admin_users, ["carol"]);
        assert_eq!(o.http_client_request_timeout, Duration::from_millis(1500));
        assert_eq!(o.history_retention, secs(7200));
        assert_eq!(o.base_path, "/x");
    }

    #[test]
    fn base_path_normalisation() {
        assert_eq!(normalize_base_path(""), "/");
        assert_eq!(normalize_base_path("/"), "/");
        assert_eq!(normalize_base_path("admin"), "/admin");
        assert_eq!(normalize_base_path("/a//b/../c/"), "/a/c");
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("127.0.0.1/8").unwrap();
        assert!(c.contains("127.9.9.9".parse().unwrap()));
        assert!(!c.contains("10.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = Cidr::parse("::1/128").unwrap();
        assert!(v6.contains("::1".parse().unwrap()));
        assert!(Cidr::parse("1.2.3.4/33").is_err());
        assert!(Cidr::parse("x/8").is_err());
    }

    #[test]
    fn config_values() {
        let o = run(&["--lookupd-http-address=a:1", "--log-level=error"]);
        assert_eq!(o.config_value("log_level"), Some(json!(4)));
        assert_eq!(
            o.config_value("statsd_interval"),
            Some(json!(60_000_000_000i64))
        );
        assert_eq!(
            o.config_value("nsqlookupd_http_addresses"),
            Some(json!(["a:1"]))
        );
        assert_eq!(o.config_value("admin_users"), Some(json!([])));
        assert_eq!(o.config_value("lookupd_http_address"), None);
    }
}
