//! nsqd's options: every flag with NSQ's names, defaults and config-file keys, the special
//! config keys (`log_level`, `tls_required`, `tls_min_version`), startup validation, and the JSON
//! view served by `GET /config/:opt`.

use std::str::FromStr;
use std::time::Duration;

use md5::{Digest, Md5};
use nsq_daemon::LogLevel;
use nsq_flags::{
    format_go_float, go_quote, parse_go_bool, ArgsError, ConfigError, DaemonArgs, Flag, FlagError,
    FlagSet, Values,
};
use serde_json::{json, Value as Json};

/// The only experiment nsqd knows; other names are accepted and ignored.
pub const TOPOLOGY_AWARE_CONSUMPTION: &str = "topology-aware-consumption";

/// `tls_min_version` values, as TLS protocol version numbers.
pub const TLS_VERSION_1_0: u16 = 0x0301;
pub const TLS_VERSION_1_1: u16 = 0x0302;
pub const TLS_VERSION_1_2: u16 = 0x0303;
pub const TLS_VERSION_1_3: u16 = 0x0304;

const TLS_VERSIONS: [(&str, u16); 4] = [
    ("tls1.0", TLS_VERSION_1_0),
    ("tls1.1", TLS_VERSION_1_1),
    ("tls1.2", TLS_VERSION_1_2),
    ("tls1.3", TLS_VERSION_1_3),
];

/// `--tls-required`; the discriminants are what `/config/tls_required` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRequired {
    No = 0,
    /// TCP clients must upgrade; plain HTTP is still served.
    TcpHttps = 1,
    /// TCP clients must upgrade and plain HTTP answers 403.
    Yes = 2,
}

impl TlsRequired {
    pub fn as_int(self) -> i64 {
        self as i64
    }
}

/// Every nsqd option after flags, config file and defaults have been merged and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub log_level: LogLevel,
    pub log_prefix: String,
    pub node_id: i64,
    pub tcp_address: String,
    pub http_address: String,
    pub https_address: String,
    pub broadcast_address: String,
    /// 0 until nsqd replaces it with the bound TCP port.
    pub broadcast_tcp_port: i64,
    /// 0 until nsqd replaces it with the bound HTTP port.
    pub broadcast_http_port: i64,
    pub lookupd_tcp_addresses: Vec<String>,
    pub auth_http_addresses: Vec<String>,
    pub auth_http_request_method: String,
    pub http_client_connect_timeout: Duration,
    pub http_client_request_timeout: Duration,
    pub topology_region: String,
    pub topology_zone: String,
    pub data_path: String,
    pub mem_queue_size: i64,
    pub max_bytes_per_file: i64,
    pub sync_every: i64,
    pub sync_timeout: Duration,
    /// What has happened to a published message before it is acknowledged.
    pub durability: Durability,
    pub queue_scan_worker_pool_max: i64,
    pub queue_scan_selection_count: i64,
    pub msg_timeout: Duration,
    pub max_msg_timeout: Duration,
    pub max_msg_size: i64,
    pub max_req_timeout: Duration,
    pub max_body_size: i64,
    pub max_heartbeat_interval: Duration,
    pub max_rdy_count: i64,
    pub max_output_buffer_size: i64,
    pub max_output_buffer_timeout: Duration,
    pub min_output_buffer_timeout: Duration,
    pub output_buffer_timeout: Duration,
    pub max_channel_consumers: i64,
    pub statsd_address: String,
    pub statsd_interval: Duration,
    pub statsd_mem_stats: bool,
    /// Raw template until nsqd expands `%s` and appends the trailing dot.
    pub statsd_prefix: String,
    pub statsd_udp_packet_size: i64,
    pub statsd_exclude_ephemeral: bool,
    /// Sorted descending.
    pub e2e_processing_latency_percentiles: Vec<f64>,
    pub e2e_processing_latency_window_time: Duration,
    pub tls_cert: String,
    pub tls_key: String,
    pub tls_client_auth_policy: String,
    pub tls_root_ca_file: String,
    pub tls_required: TlsRequired,
    /// One of the `TLS_VERSION_*` constants.
    pub tls_min_version: u16,
    pub deflate: bool,
    pub max_deflate_level: i64,
    pub snappy: bool,
    pub enable_experiment: Vec<String>,
    /// Deprecation notices for the caller to log once logging is set up.
    pub warnings: Vec<String>,
}

/// When a publish is acknowledged (see ARCHITECTURE.md, the durability contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// As NSQ: acknowledged once in memory; written to disk in the background.
    Memory,
    /// Acknowledged after the message is written to the store (the OS page cache): a killed
    /// process loses nothing acknowledged.
    Write,
    /// Acknowledged after an fsync covering the message (shared by concurrent publishers): a
    /// power loss loses nothing acknowledged.
    Fsync,
}

impl Durability {
    pub const DEFAULT: Durability = Durability::Write;

    pub fn parse(s: &str) -> Option<Durability> {
        match s.to_ascii_lowercase().as_str() {
            "memory" => Some(Durability::Memory),
            "write" => Some(Durability::Write),
            "fsync" => Some(Durability::Fsync),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Memory => "memory",
            Durability::Write => "write",
            Durability::Fsync => "fsync",
        }
    }
}

/// What the command line asked nsqd to do.
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
    /// A startup validation failed; fatal (`failed to instantiate nsqd - <msg>`), exit 1.
    #[error("{0}")]
    Invalid(String),
}

impl OptionsError {
    pub fn exit_code(&self) -> i32 {
        match self {
            OptionsError::Flag(_) => 2,
            OptionsError::Config(_) | OptionsError::Invalid(_) => 1,
        }
    }
}

/// Parses nsqd's arguments (without the program name), loads `--config`, and validates.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Outcome, OptionsError> {
    parse_for_host(args, &nsq_daemon::hostname())
}

/// Usage text for printing after a command-line error.
pub fn usage() -> String {
    flag_set(&nsq_daemon::hostname()).usage()
}

/// The default `--node-id`: CRC-32 (IEEE) of the 16 raw MD5 bytes of the hostname, mod 1024.
pub fn default_node_id(hostname: &str) -> i64 {
    let digest = Md5::digest(hostname.as_bytes());
    i64::from(crc32fast::hash(&digest) % 1024)
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
    let mut options = Options::from_values(&values);
    options.validate()?;
    Ok(Outcome::Run(Box::new(options)))
}

fn normalize_durability(s: &str) -> Result<Option<String>, String> {
    Durability::parse(s)
        .map(|d| Some(d.as_str().to_string()))
        .ok_or_else(|| "must be memory, write or fsync".to_string())
}

fn normalize_tls_required(s: &str) -> Result<Option<String>, String> {
    let lower = s.to_ascii_lowercase();
    if lower == "tcp-https" {
        return Ok(Some(lower));
    }
    parse_go_bool(&lower)
        .map(|b| Some(b.to_string()))
        .map_err(|e| e.to_string())
}

/// An empty value leaves the version unchanged, as NSQ does.
fn normalize_tls_min_version(s: &str) -> Result<Option<String>, String> {
    let lower = s.to_ascii_lowercase();
    if lower.is_empty() {
        return Ok(None);
    }
    if TLS_VERSIONS.iter().any(|(name, _)| *name == lower) {
        Ok(Some(lower))
    } else {
        Err(format!("unknown TLS version {}", go_quote(&lower)))
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// nsqd's flags. `hostname` feeds the defaults of `--broadcast-address` and `--node-id`.
pub fn flag_set(hostname: &str) -> FlagSet {
    FlagSet::new("nsqd")
        .flag(Flag::bool("version", false, "print the version and exit").no_config())
        .flag(Flag::string("config", "", "path to a TOML config file").no_config())
        .flag(
            Flag::string(
                "log-level",
                "info",
                "log level: debug, info, warn, error or fatal",
            )
            .normalizer(nsq_daemon::logging::normalize_log_level)
            .value_name("value"),
        )
        .flag(Flag::string(
            "log-prefix",
            "[nsqd] ",
            "prefix of every log line",
        ))
        .flag(Flag::bool("verbose", false, "deprecated and ignored; use --log-level").no_config())
        .flag(
            Flag::int(
                "node-id",
                default_node_id(hostname),
                "node part of message IDs, in [0,1024) (defaults to a hash of the hostname)",
            )
            .config_name("id"),
        )
        .flag(Flag::bool("worker-id", false, "deprecated and ignored; use --node-id").no_config())
        .flag(Flag::string(
            "https-address",
            "0.0.0.0:4152",
            "<addr>:<port> of the HTTPS listener",
        ))
        .flag(Flag::string(
            "http-address",
            "0.0.0.0:4151",
            "HTTP listener: <addr>:<port>, or a path for a unix socket",
        ))
        .flag(Flag::string(
            "tcp-address",
            "0.0.0.0:4150",
            "TCP listener: <addr>:<port>, or a path for a unix socket",
        ))
        .flag(
            Flag::str_list(
                "auth-http-address",
                "auth server as <addr>:<port> or a full URL (repeatable)",
            )
            .config_name("auth_http_addresses"),
        )
        .flag(Flag::string(
            "auth-http-request-method",
            "get",
            "HTTP method for auth server requests (get or post)",
        ))
        .flag(Flag::string(
            "broadcast-address",
            hostname,
            "address registered with nsqlookupd (defaults to the hostname)",
        ))
        .flag(Flag::int(
            "broadcast-tcp-port",
            0,
            "TCP port registered with nsqlookupd (defaults to the bound TCP port)",
        ))
        .flag(Flag::int(
            "broadcast-http-port",
            0,
            "HTTP port registered with nsqlookupd (defaults to the bound HTTP port)",
        ))
        .flag(
            Flag::str_list("lookupd-tcp-address", "nsqlookupd TCP address (repeatable)")
                .config_name("nsqlookupd_tcp_addresses"),
        )
        .flag(Flag::duration(
            "http-client-connect-timeout",
            secs(2),
            "connect timeout of outgoing HTTP requests",
        ))
        .flag(Flag::duration(
            "http-client-request-timeout",
            secs(5),
            "overall timeout of outgoing HTTP requests",
        ))
        .flag(Flag::string(
            "topology-region",
            "",
            "this node's region, for topology-aware consumption",
        ))
        .flag(Flag::string(
            "topology-zone",
            "",
            "this node's zone, for topology-aware consumption",
        ))
        .flag(Flag::string(
            "data-path",
            "",
            "directory for disk-backed queues and metadata (defaults to the working directory)",
        ))
        .flag(Flag::int(
            "mem-queue-size",
            10_000,
            "messages kept in memory per topic and per channel",
        ))
        .flag(Flag::int(
            "max-bytes-per-file",
            100 * 1024 * 1024,
            "size at which a disk queue file is rolled",
        ))
        .flag(Flag::int(
            "sync-every",
            2500,
            "disk queue operations between fsyncs",
        ))
        .flag(Flag::duration(
            "sync-timeout",
            secs(2),
            "longest time between disk queue fsyncs",
        ))
        .flag(
            Flag::string(
                "durability",
                Durability::DEFAULT.as_str(),
                "when a publish is acknowledged: memory (NSQ's behaviour), write (after the write to the store), fsync (after an fsync covering it)",
            )
            .normalizer(normalize_durability),
        )
        .flag(Flag::int(
            "queue-scan-worker-pool-max",
            4,
            "most workers scanning for in-flight and deferred timeouts",
        ))
        .flag(Flag::int(
            "queue-scan-selection-count",
            20,
            "channels sampled per 100ms timeout scan",
        ))
        .flag(Flag::duration(
            "msg-timeout",
            secs(60),
            "default time before an unacknowledged message is requeued",
        ))
        .flag(Flag::duration(
            "max-msg-timeout",
            secs(15 * 60),
            "largest message timeout a client may ask for",
        ))
        .flag(Flag::int(
            "max-msg-size",
            1024 * 1024,
            "largest message body in bytes",
        ))
        .flag(Flag::duration(
            "max-req-timeout",
            secs(3600),
            "largest requeue or publish delay",
        ))
        .flag(Flag::int(
            "max-body-size",
            5 * 1024 * 1024,
            "largest command body in bytes",
        ))
        .flag(Flag::duration(
            "max-heartbeat-interval",
            secs(60),
            "largest heartbeat interval a client may ask for",
        ))
        .flag(Flag::int(
            "max-rdy-count",
            2500,
            "largest RDY count a client may set",
        ))
        .flag(Flag::int(
            "max-output-buffer-size",
            64 * 1024,
            "largest output buffer (bytes) a client may ask for",
        ))
        .flag(Flag::duration(
            "max-output-buffer-timeout",
            secs(30),
            "largest output flush interval a client may ask for",
        ))
        .flag(Flag::duration(
            "min-output-buffer-timeout",
            Duration::from_millis(25),
            "smallest output flush interval a client may ask for",
        ))
        .flag(Flag::duration(
            "output-buffer-timeout",
            Duration::from_millis(250),
            "default output flush interval",
        ))
        .flag(Flag::int(
            "max-channel-consumers",
            0,
            "most consumers per channel (0 means unlimited)",
        ))
        .flag(Flag::string(
            "statsd-address",
            "",
            "UDP <addr>:<port> of a statsd daemon to push stats to",
        ))
        .flag(Flag::duration(
            "statsd-interval",
            secs(60),
            "time between statsd pushes",
        ))
        .flag(Flag::bool(
            "statsd-mem-stats",
            true,
            "also push memory statistics to statsd",
        ))
        .flag(Flag::string(
            "statsd-prefix",
            "nsq.%s",
            "prefix of statsd keys (%s is replaced by the host)",
        ))
        .flag(Flag::int(
            "statsd-udp-packet-size",
            508,
            "largest statsd UDP packet in bytes",
        ))
        .flag(Flag::bool(
            "statsd-exclude-ephemeral",
            false,
            "leave ephemeral topics and channels out of statsd",
        ))
        .flag(
            Flag::float_list(
                "e2e-processing-latency-percentile",
                "end-to-end latency percentile to track, in (0,1] (repeatable or comma-separated, \
                 e.g. 1.0,0.99,0.95)",
            )
            .config_name("e2e_processing_latency_percentiles"),
        )
        .flag(Flag::duration(
            "e2e-processing-latency-window-time",
            secs(10 * 60),
            "window over which latency percentiles are computed",
        ))
        .flag(Flag::string("tls-cert", "", "path to the TLS certificate"))
        .flag(Flag::string("tls-key", "", "path to the TLS private key"))
        .flag(Flag::string(
            "tls-client-auth-policy",
            "",
            "client certificate policy: require or require-verify",
        ))
        .flag(Flag::string(
            "tls-root-ca-file",
            "",
            "path to the certificate authority bundle",
        ))
        .flag(
            Flag::optional_value(
                "tls-required",
                "false",
                "true",
                "require TLS from clients: true, false or tcp-https",
            )
            .normalizer(normalize_tls_required),
        )
        .flag(
            Flag::string(
                "tls-min-version",
                "tls1.0",
                "oldest accepted TLS version: tls1.0, tls1.1, tls1.2 or tls1.3",
            )
            .normalizer(normalize_tls_min_version)
            .value_name("value"),
        )
        .flag(Flag::bool(
            "deflate",
            true,
            "let clients negotiate deflate compression",
        ))
        .flag(Flag::int(
            "max-deflate-level",
            6,
            "highest deflate level a client may negotiate (1-9)",
        ))
        .flag(Flag::bool(
            "snappy",
            true,
            "let clients negotiate snappy compression",
        ))
        .flag(
            Flag::str_list(
                "enable-experiment",
                format!(
                    "experimental feature to enable (repeatable); known: {}",
                    go_quote(TOPOLOGY_AWARE_CONSUMPTION)
                ),
            )
            .config_name("enable_experiment"),
        )
}

/// Flags NSQ acts on that nsqd accepts but does not act on yet. Setting one away from its default
/// logs a warning at start-up, so that nobody relies on it unknowingly; a flag leaves this list
/// when it does what NSQ's does.
pub const NOT_IMPLEMENTED: &[&str] = &["queue-scan-worker-pool-max", "queue-scan-selection-count"];

/// The start-up warnings for [`NOT_IMPLEMENTED`] flags (and experiments) set in `v`.
fn not_implemented_warnings(v: &Values) -> Vec<String> {
    let defaults = flag_set("").defaults();
    let mut set: Vec<String> = NOT_IMPLEMENTED
        .iter()
        .filter(|name| v.get(name) != defaults.get(name))
        .map(|name| format!("--{name}"))
        .collect();
    if v.str_list("enable-experiment")
        .iter()
        .any(|e| e == TOPOLOGY_AWARE_CONSUMPTION)
    {
        set.push(format!("--enable-experiment={TOPOLOGY_AWARE_CONSUMPTION}"));
    }
    set.into_iter()
        .map(|flag| format!("{flag} is accepted but not implemented yet; it has no effect"))
        .collect()
}

impl Options {
    /// All defaults for this host, unvalidated (the defaults are valid).
    pub fn defaults() -> Options {
        Options::from_values(&flag_set(&nsq_daemon::hostname()).defaults())
    }

    /// Builds options from merged flag values. The special strings were checked by their
    /// normalizers, so the fallbacks below are never taken.
    fn from_values(v: &Values) -> Options {
        let tls_required = match v.string("tls-required") {
            "true" => TlsRequired::Yes,
            "tcp-https" => TlsRequired::TcpHttps,
            _ => TlsRequired::No,
        };
        let tls_min_version = TLS_VERSIONS
            .iter()
            .find(|(name, _)| *name == v.string("tls-min-version"))
            .map_or(TLS_VERSION_1_0, |(_, n)| *n);
        let mut warnings = Vec::new();
        if v.is_set_on_cli("verbose") {
            warnings.push("--verbose is deprecated and has no effect (use --log-level)".into());
        }
        if v.is_set_on_cli("worker-id") {
            warnings.push("--worker-id is deprecated and has no effect (use --node-id)".into());
        }
        warnings.extend(not_implemented_warnings(v));
        Options {
            log_level: LogLevel::from_str(v.string("log-level")).unwrap_or(LogLevel::Info),
            log_prefix: v.string("log-prefix").to_string(),
            node_id: v.int("node-id"),
            tcp_address: v.string("tcp-address").to_string(),
            http_address: v.string("http-address").to_string(),
            https_address: v.string("https-address").to_string(),
            broadcast_address: v.string("broadcast-address").to_string(),
            broadcast_tcp_port: v.int("broadcast-tcp-port"),
            broadcast_http_port: v.int("broadcast-http-port"),
            lookupd_tcp_addresses: v.str_list("lookupd-tcp-address").to_vec(),
            auth_http_addresses: v.str_list("auth-http-address").to_vec(),
            auth_http_request_method: v.string("auth-http-request-method").to_string(),
            http_client_connect_timeout: v.duration("http-client-connect-timeout"),
            http_client_request_timeout: v.duration("http-client-request-timeout"),
            topology_region: v.string("topology-region").to_string(),
            topology_zone: v.string("topology-zone").to_string(),
            data_path: v.string("data-path").to_string(),
            mem_queue_size: v.int("mem-queue-size"),
            max_bytes_per_file: v.int("max-bytes-per-file"),
            sync_every: v.int("sync-every"),
            sync_timeout: v.duration("sync-timeout"),
            durability: Durability::parse(v.string("durability")).unwrap_or(Durability::DEFAULT),
            queue_scan_worker_pool_max: v.int("queue-scan-worker-pool-max"),
            queue_scan_selection_count: v.int("queue-scan-selection-count"),
            msg_timeout: v.duration("msg-timeout"),
            max_msg_timeout: v.duration("max-msg-timeout"),
            max_msg_size: v.int("max-msg-size"),
            max_req_timeout: v.duration("max-req-timeout"),
            max_body_size: v.int("max-body-size"),
            max_heartbeat_interval: v.duration("max-heartbeat-interval"),
            max_rdy_count: v.int("max-rdy-count"),
            max_output_buffer_size: v.int("max-output-buffer-size"),
            max_output_buffer_timeout: v.duration("max-output-buffer-timeout"),
            min_output_buffer_timeout: v.duration("min-output-buffer-timeout"),
            output_buffer_timeout: v.duration("output-buffer-timeout"),
            max_channel_consumers: v.int("max-channel-consumers"),
            statsd_address: v.string("statsd-address").to_string(),
            statsd_interval: v.duration("statsd-interval"),
            statsd_mem_stats: v.bool("statsd-mem-stats"),
            statsd_prefix: v.string("statsd-prefix").to_string(),
            statsd_udp_packet_size: v.int("statsd-udp-packet-size"),
            statsd_exclude_ephemeral: v.bool("statsd-exclude-ephemeral"),
            e2e_processing_latency_percentiles: v
                .float_list("e2e-processing-latency-percentile")
                .to_vec(),
            e2e_processing_latency_window_time: v.duration("e2e-processing-latency-window-time"),
            tls_cert: v.string("tls-cert").to_string(),
            tls_key: v.string("tls-key").to_string(),
            tls_client_auth_policy: v.string("tls-client-auth-policy").to_string(),
            tls_root_ca_file: v.string("tls-root-ca-file").to_string(),
            tls_required,
            tls_min_version,
            deflate: v.bool("deflate"),
            max_deflate_level: v.int("max-deflate-level"),
            snappy: v.bool("snappy"),
            enable_experiment: v.str_list("enable-experiment").to_vec(),
            warnings,
        }
    }

    /// NSQ's startup checks, in NSQ's order, plus the adjustments they imply (a client auth
    /// policy forces TLS, percentiles are sorted descending).
    ///
    /// A certificate without a key (or the reverse) is left to the TLS setup, which reports the
    /// missing file.
    pub fn validate(&mut self) -> Result<(), OptionsError> {
        if !(1..=9).contains(&self.max_deflate_level) {
            return Err(OptionsError::Invalid(
                "--max-deflate-level must be [1,9]".into(),
            ));
        }
        if !(0..1024).contains(&self.node_id) {
            return Err(OptionsError::Invalid("--node-id must be [0,1024)".into()));
        }
        if !self.tls_client_auth_policy.is_empty() && self.tls_required == TlsRequired::No {
            self.tls_required = TlsRequired::Yes;
        }
        if self.tls_required != TlsRequired::No
            && self.tls_cert.is_empty()
            && self.tls_key.is_empty()
        {
            return Err(OptionsError::Invalid(
                "cannot require TLS client connections without TLS key and cert".into(),
            ));
        }
        if self.auth_http_request_method != "post" && self.auth_http_request_method != "get" {
            return Err(OptionsError::Invalid(
                "--auth-http-request-method must be post or get".into(),
            ));
        }
        self.e2e_processing_latency_percentiles
            .sort_by(|a, b| b.total_cmp(a));
        if let Some(bad) = self
            .e2e_processing_latency_percentiles
            .iter()
            .find(|p| !(**p > 0.0 && **p <= 1.0))
        {
            return Err(OptionsError::Invalid(format!(
                "invalid E2E processing latency percentile: {}",
                format_go_float(*bad)
            )));
        }
        if !self.statsd_address.is_empty() && self.statsd_interval.is_zero() {
            // NSQ's statsd timer panics on a zero interval; refusing to start says why.
            return Err(OptionsError::Invalid(
                "--statsd-interval must be greater than 0".into(),
            ));
        }
        Ok(())
    }

    pub fn has_experiment(&self, name: &str) -> bool {
        self.enable_experiment.iter().any(|e| e == name)
    }

    /// The option named by its config key, JSON-encoded as `GET /config/:opt` returns it.
    /// `None` for names that are not options.
    pub fn config_value(&self, name: &str) -> Option<Json> {
        let nanos = |d: Duration| json!(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Some(match name {
            "id" => json!(self.node_id),
            "log_level" => json!(self.log_level.as_int()),
            "log_prefix" => json!(self.log_prefix),
            "tcp_address" => json!(self.tcp_address),
            "http_address" => json!(self.http_address),
            "https_address" => json!(self.https_address),
            "broadcast_address" => json!(self.broadcast_address),
            "broadcast_tcp_port" => json!(self.broadcast_tcp_port),
            "broadcast_http_port" => json!(self.broadcast_http_port),
            "nsqlookupd_tcp_addresses" => json!(self.lookupd_tcp_addresses),
            "auth_http_addresses" => json!(self.auth_http_addresses),
            "auth_http_request_method" => json!(self.auth_http_request_method),
            "http_client_connect_timeout" => nanos(self.http_client_connect_timeout),
            "http_client_request_timeout" => nanos(self.http_client_request_timeout),
            "topology_region" => json!(self.topology_region),
            "topology_zone" => json!(self.topology_zone),
            "data_path" => json!(self.data_path),
            "mem_queue_size" => json!(self.mem_queue_size),
            "max_bytes_per_file" => json!(self.max_bytes_per_file),
            "sync_every" => json!(self.sync_every),
            "sync_timeout" => nanos(self.sync_timeout),
            "durability" => json!(self.durability.as_str()),
            "queue_scan_worker_pool_max" => json!(self.queue_scan_worker_pool_max),
            "queue_scan_selection_count" => json!(self.queue_scan_selection_count),
            "msg_timeout" => nanos(self.msg_timeout),
            "max_msg_timeout" => nanos(self.max_msg_timeout),
            "max_msg_size" => json!(self.max_msg_size),
            "max_req_timeout" => nanos(self.max_req_timeout),
            "max_body_size" => json!(self.max_body_size),
            "max_heartbeat_interval" => nanos(self.max_heartbeat_interval),
            "max_rdy_count" => json!(self.max_rdy_count),
            "max_output_buffer_size" => json!(self.max_output_buffer_size),
            "max_output_buffer_timeout" => nanos(self.max_output_buffer_timeout),
            "min_output_buffer_timeout" => nanos(self.min_output_buffer_timeout),
            "output_buffer_timeout" => nanos(self.output_buffer_timeout),
            "max_channel_consumers" => json!(self.max_channel_consumers),
            "statsd_address" => json!(self.statsd_address),
            "statsd_interval" => nanos(self.statsd_interval),
            "statsd_mem_stats" => json!(self.statsd_mem_stats),
            "statsd_prefix" => json!(self.statsd_prefix),
            "statsd_udp_packet_size" => json!(self.statsd_udp_packet_size),
            "statsd_exclude_ephemeral" => json!(self.statsd_exclude_ephemeral),
            "e2e_processing_latency_percentiles" => Json::Array(
                self.e2e_processing_latency_percentiles
                    .iter()
                    .map(|f| json_float(*f))
                    .collect(),
            ),
            "e2e_processing_latency_window_time" => nanos(self.e2e_processing_latency_window_time),
            "tls_cert" => json!(self.tls_cert),
            "tls_key" => json!(self.tls_key),
            "tls_client_auth_policy" => json!(self.tls_client_auth_policy),
            "tls_root_ca_file" => json!(self.tls_root_ca_file),
            "tls_required" => json!(self.tls_required.as_int()),
            "tls_min_version" => json!(self.tls_min_version),
            "deflate" => json!(self.deflate),
            "max_deflate_level" => json!(self.max_deflate_level),
            "snappy" => json!(self.snappy),
            "enable_experiment" => json!(self.enable_experiment),
            _ => return None,
        })
    }
}

/// Whole floats are encoded without a fraction (`1`, not `1.0`), as NSQ's JSON encoder does.
fn json_float(f: f64) -> Json {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    const HOST: &str = "test-host.example";

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

    struct Config {
        _dir: tempfile::TempDir,
        path: String,
    }

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("nsqd.cfg");
        let mut f = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        f.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        Config {
            path: path.display().to_string(),
            _dir: dir,
        }
    }

    fn with_config(text: &str, extra: &[&str]) -> Result<Outcome, OptionsError> {
        let cfg = config(text);
        let mut args = vec![format!("--config={}", cfg.path)];
        args.extend(argv(extra));
        parse_for_host(args, HOST)
    }

    fn run_config(text: &str, extra: &[&str]) -> Options {
        match with_config(text, extra) {
            Ok(Outcome::Run(o)) => *o,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn config_err(text: &str) -> OptionsError {
        match with_config(text, &[]) {
            Err(e) => e,
            other => panic!("{text}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_nsq() {
        let o = run(&[]);
        assert_eq!(o.log_level, LogLevel::Info);
        assert_eq!(o.log_prefix, "[nsqd] ");
        assert_eq!(o.node_id, default_node_id(HOST));
        assert_eq!(o.tcp_address, "0.0.0.0:4150");
        assert_eq!(o.http_address, "0.0.0.0:4151");
        assert_eq!(o.https_address, "0.0.0.0:4152");
        assert_eq!(o.broadcast_address, HOST);
        assert_eq!((o.broadcast_tcp_port, o.broadcast_http_port), (0, 0));
        assert!(o.lookupd_tcp_addresses.is_empty() && o.auth_http_addresses.is_empty());
        assert_eq!(o.auth_http_request_method, "get");
        assert_eq!(o.http_client_connect_timeout, secs(2));
        assert_eq!(o.http_client_request_timeout, secs(5));
        assert_eq!(
            (o.topology_region.as_str(), o.topology_zone.as_str()),
            ("", "")
        );
        assert_eq!(o.data_path, "");
        assert_eq!(o.mem_queue_size, 10_000);
        assert_eq!(o.max_bytes_per_file, 104_857_600);
        assert_eq!(o.sync_every, 2500);
        assert_eq!(o.sync_timeout, secs(2));
        assert_eq!(o.queue_scan_worker_pool_max, 4);
        assert_eq!(o.queue_scan_selection_count, 20);
        assert_eq!(o.msg_timeout, secs(60));
        assert_eq!(o.max_msg_timeout, secs(900));
        assert_eq!(o.max_msg_size, 1_048_576);
        assert_eq!(o.max_req_timeout, secs(3600));
        assert_eq!(o.max_body_size, 5_242_880);
        assert_eq!(o.max_heartbeat_interval, secs(60));
        assert_eq!(o.max_rdy_count, 2500);
        assert_eq!(o.max_output_buffer_size, 65_536);
        assert_eq!(o.max_output_buffer_timeout, secs(30));
        assert_eq!(o.min_output_buffer_timeout, Duration::from_millis(25));
        assert_eq!(o.output_buffer_timeout, Duration::from_millis(250));
        assert_eq!(o.max_channel_consumers, 0);
        assert_eq!(o.statsd_address, "");
        assert_eq!(o.statsd_interval, secs(60));
        assert!(o.statsd_mem_stats);
        assert_eq!(o.statsd_prefix, "nsq.%s");
        assert_eq!(o.statsd_udp_packet_size, 508);
        assert!(!o.statsd_exclude_ephemeral);
        assert!(o.e2e_processing_latency_percentiles.is_empty());
        assert_eq!(o.e2e_processing_latency_window_time, secs(600));
        assert_eq!(
            (
                o.tls_cert.as_str(),
                o.tls_key.as_str(),
                o.tls_client_auth_policy.as_str()
            ),
            ("", "", "")
        );
        assert_eq!(o.tls_root_ca_file, "");
        assert_eq!(o.tls_required, TlsRequired::No);
        assert_eq!(o.tls_min_version, TLS_VERSION_1_0);
        assert!(o.deflate && o.snappy);
        assert_eq!(o.max_deflate_level, 6);
        assert!(o.enable_experiment.is_empty());
        assert!(o.warnings.is_empty());
        let mut d = Options::defaults();
        assert!(d.validate().is_ok());
    }

    #[test]
    fn node_id_default_is_crc_of_md5() {
        // Independent computation of crc32(md5("localhost")) over the raw digest bytes.
        let digest = Md5::digest(b"localhost");
        let mut h = crc32fast::Hasher::new();
        h.update(digest.as_slice());
        assert_eq!(default_node_id("localhost"), i64::from(h.finalize() % 1024));
        assert!((0..1024).contains(&default_node_id("")));
        assert_ne!(default_node_id("a"), default_node_id("b"));
    }

    #[test]
    fn command_line_forms() {
        let o = run(&[
            "--mem-queue-size=5",
            "-msg-timeout",
            "1m30s",
            "--lookupd-tcp-address=127.0.0.1:4160",
            "--lookupd-tcp-address",
            "127.0.0.2:4160",
            "-e2e-processing-latency-percentile=0.95,0.99",
            "--e2e-processing-latency-percentile=1.0",
            "--log-level=WARN",
            "--tls-min-version=TLS1.2",
            "--deflate=false",
            "-snappy=0",
            "--statsd-exclude-ephemeral",
            "--enable-experiment=topology-aware-consumption",
            "--node-id=0x10",
        ]);
        assert_eq!(o.mem_queue_size, 5);
        assert_eq!(o.msg_timeout, secs(90));
        assert_eq!(
            o.lookupd_tcp_addresses,
            ["127.0.0.1:4160", "127.0.0.2:4160"]
        );
        assert_eq!(o.e2e_processing_latency_percentiles, [1.0, 0.99, 0.95]);
        assert_eq!(o.log_level, LogLevel::Warn);
        assert_eq!(o.tls_min_version, TLS_VERSION_1_2);
        assert!(!o.deflate && !o.snappy && o.statsd_exclude_ephemeral);
        assert!(o.has_experiment(TOPOLOGY_AWARE_CONSUMPTION));
        assert_eq!(o.node_id, 16);
    }

    #[test]
    fn tls_required_forms() {
        let tls = ["--tls-cert=c.pem", "--tls-key=k.pem"];
        let with = |extra: &str| {
            let mut a = tls.to_vec();
            a.push(extra);
            run(&a).tls_required
        };
        assert_eq!(with("--tls-required"), TlsRequired::Yes);
        assert_eq!(with("--tls-required=true"), TlsRequired::Yes);
        assert_eq!(with("--tls-required=TCP-HTTPS"), TlsRequired::TcpHttps);
        assert_eq!(with("--tls-required=false"), TlsRequired::No);
        assert_eq!(with("--tls-required=0"), TlsRequired::No);
        let e = fail(&["--tls-required=sometimes"]);
        assert_eq!(
            e.to_string(),
            "invalid boolean value \"sometimes\" for -tls-required: parse error"
        );
        assert_eq!(e.exit_code(), 2);
        // A bare flag does not take the next argument, which ends parsing instead.
        let o = run(&[
            "--tls-cert=c",
            "--tls-key=k",
            "--tls-required",
            "false",
            "--mem-queue-size=1",
        ]);
        assert_eq!(o.tls_required, TlsRequired::Yes);
        assert_eq!(o.mem_queue_size, 10_000);
    }

    #[test]
    fn tls_min_version_forms() {
        assert_eq!(run(&["--tls-min-version=tls1.0"]).tls_min_version, 0x0301);
        assert_eq!(run(&["--tls-min-version=tls1.1"]).tls_min_version, 0x0302);
        assert_eq!(run(&["--tls-min-version=tls1.3"]).tls_min_version, 0x0304);
        assert_eq!(run(&["--tls-min-version="]).tls_min_version, 0x0301);
        assert_eq!(
            fail(&["--tls-min-version=ssl3.0"]).to_string(),
            "invalid value \"ssl3.0\" for flag -tls-min-version: unknown TLS version \"ssl3.0\""
        );
    }

    #[test]
    fn help_and_version() {
        match parse_for_host(argv(&["--help"]), HOST) {
            Ok(Outcome::Help(text)) => {
                assert!(text.starts_with("Usage of nsqd:\n"));
                assert!(text.contains("  -mem-queue-size int\n"));
                assert!(text.contains("(default 10000)"));
                assert!(text.contains(&format!("(default \"{HOST}\")")));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_for_host(argv(&["-h"]), HOST),
            Ok(Outcome::Help(flag_set(HOST).usage()))
        );
        assert_eq!(
            parse_for_host(argv(&["--version"]), HOST),
            Ok(Outcome::Version)
        );
        // The config file is not read when only the version is wanted.
        assert_eq!(
            parse_for_host(argv(&["--config=/nonexistent/nsqd.cfg", "--version"]), HOST),
            Ok(Outcome::Version)
        );
        assert!(matches!(
            parse_for_host(argv(&["--version=false"]), HOST),
            Ok(Outcome::Run(_))
        ));
    }

    #[test]
    fn flag_errors_exit_2() {
        for (args, msg) in [
            (&["--foo"][..], "flag provided but not defined: -foo"),
            (
                &["--mem-queue-size=abc"],
                "invalid value \"abc\" for flag -mem-queue-size: parse error",
            ),
            (
                &["--msg-timeout=60"],
                "invalid value \"60\" for flag -msg-timeout: parse error",
            ),
            (
                &["--lookupd-tcp-address"],
                "flag needs an argument: -lookupd-tcp-address",
            ),
            (
                &["--log-level=loud"],
                "invalid value \"loud\" for flag -log-level: invalid log level 'loud' \
                 (debug, info, warn, error, fatal)",
            ),
            (
                &["--e2e-processing-latency-percentile=0.9,x"],
                "invalid value \"0.9,x\" for flag -e2e-processing-latency-percentile: parse error",
            ),
        ] {
            let e = fail(args);
            assert_eq!(e.to_string(), msg);
            assert_eq!(e.exit_code(), 2);
            assert!(matches!(e, OptionsError::Flag(_)));
        }
    }

    #[test]
    fn positional_arguments_are_ignored() {
        let o = run(&["--mem-queue-size=3", "extra", "--mem-queue-size=4"]);
        assert_eq!(o.mem_queue_size, 3);
        let o = run(&["--", "--foo"]);
        assert_eq!(o.mem_queue_size, 10_000);
    }

    #[test]
    fn flags_without_effect_warn_only_when_set_away_from_default() {
        let quiet = run(&[
            "--queue-scan-worker-pool-max=4",
            "--queue-scan-selection-count=20",
            "--enable-experiment=something-else",
            "--statsd-address=127.0.0.1:9",
        ]);
        assert!(quiet.warnings.is_empty(), "{:?}", quiet.warnings);
        let o = run(&[
            "--queue-scan-worker-pool-max=8",
            "--enable-experiment=topology-aware-consumption",
        ]);
        assert_eq!(
            o.warnings,
            [
                "--queue-scan-worker-pool-max is accepted but not implemented yet; it has no effect",
                "--enable-experiment=topology-aware-consumption is accepted but not implemented \
                 yet; it has no effect",
            ]
        );
        // A config file counts as much as the command line.
        let o = run_config("queue_scan_selection_count = 5", &[]);
        assert_eq!(
            o.warnings,
            ["--queue-scan-selection-count is accepted but not implemented yet; it has no effect"]
        );
    }

    #[test]
    fn statsd_interval_must_be_positive_when_statsd_is_on() {
        let e = fail(&["--statsd-address=127.0.0.1:9", "--statsd-interval=0s"]);
        assert_eq!(e.to_string(), "--statsd-interval must be greater than 0");
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            run(&["--statsd-interval=0s"]).statsd_interval,
            Duration::ZERO
        );
        let o = run(&["--statsd-address=127.0.0.1:9", "--statsd-interval=1s"]);
        assert_eq!(o.statsd_interval, secs(1));
    }

    #[test]
    fn deprecated_flags_are_accepted_with_warnings() {
        let o = run(&["--verbose", "--worker-id"]);
        assert_eq!(o.warnings.len(), 2);
        assert!(o.warnings[0].contains("--verbose"));
        assert!(o.warnings[1].contains("--worker-id"));
        // --worker-id is a boolean, so a following number is positional (and ignored).
        let o = run(&["--worker-id", "5"]);
        assert_eq!(o.node_id, default_node_id(HOST));
        assert_eq!(o.warnings.len(), 1);
        // No config mapping for them.
        let o = run_config("verbose = true\nworker_id = true\n", &[]);
        assert!(o.warnings.is_empty());
    }

    #[test]
    fn every_alias_via_config_file() {
        let o = run_config(
            "id = 42\n\
             nsqlookupd_tcp_addresses = [\"a:4160\", \"b:4160\"]\n\
             auth_http_addresses = [\"auth:8080\"]\n\
             e2e_processing_latency_percentiles = [0.95, 1.0, 0.99]\n\
             enable_experiment = [\"topology-aware-consumption\"]\n\
             node_id = 7\n\
             lookupd_tcp_address = [\"ignored\"]\n",
            &[],
        );
        assert_eq!(o.node_id, 42);
        assert_eq!(o.lookupd_tcp_addresses, ["a:4160", "b:4160"]);
        assert_eq!(o.auth_http_addresses, ["auth:8080"]);
        assert_eq!(o.e2e_processing_latency_percentiles, [1.0, 0.99, 0.95]);
        assert_eq!(o.enable_experiment, [TOPOLOGY_AWARE_CONSUMPTION]);
    }

    #[test]
    fn config_file_values_and_coercions() {
        let o = run_config(
            "mem_queue_size = 100\n\
             msg_timeout = 60000\n\
             max_msg_timeout = \"30m\"\n\
             statsd_mem_stats = 1\n\
             statsd_exclude_ephemeral = \"true\"\n\
             deflate = 0\n\
             log_level = \"DEBUG\"\n\
             log_prefix = \"[x] \"\n\
             max_rdy_count = \"99\"\n\
             nsqlookupd_tcp_addresses = \"a:1,b:2\"\n\
             e2e_processing_latency_percentiles = \"0.5, 0.9\"\n\
             tls_min_version = \"TLS1.3\"\n\
             unknown_key = [1, 2]\n",
            &[],
        );
        assert_eq!(o.mem_queue_size, 100);
        assert_eq!(o.msg_timeout, secs(60));
        assert_eq!(o.max_msg_timeout, secs(1800));
        // NSQ's integer-as-bool quirk: N means N == 0.
        assert!(!o.statsd_mem_stats);
        assert!(o.deflate);
        assert!(o.statsd_exclude_ephemeral);
        assert_eq!(o.log_level, LogLevel::Debug);
        assert_eq!(o.log_prefix, "[x] ");
        assert_eq!(o.max_rdy_count, 99);
        assert_eq!(o.lookupd_tcp_addresses, ["a:1", "b:2"]);
        assert_eq!(o.e2e_processing_latency_percentiles, [0.9, 0.5]);
        assert_eq!(o.tls_min_version, TLS_VERSION_1_3);
    }

    #[test]
    fn config_special_keys() {
        let tls = "tls_cert = \"c\"\ntls_key = \"k\"\n";
        assert_eq!(
            run_config(&format!("{tls}tls_required = true"), &[]).tls_required,
            TlsRequired::Yes
        );
        assert_eq!(
            run_config(&format!("{tls}tls_required = \"tcp-https\""), &[]).tls_required,
            TlsRequired::TcpHttps
        );
        assert_eq!(
            run_config(&format!("{tls}tls_required = \"1\""), &[]).tls_required,
            TlsRequired::Yes
        );
        // Integers are read as their text here ("0" is false), unlike plain booleans.
        assert_eq!(
            run_config(&format!("{tls}tls_required = 0"), &[]).tls_required,
            TlsRequired::No
        );
        assert_eq!(
            run_config("tls_min_version = \"\"", &[]).tls_min_version,
            TLS_VERSION_1_0
        );
        for (text, msg) in [
            ("log_level = \"loud\"", "failed parsing log_level loud"),
            ("log_level = 3", "failed parsing log_level 3"),
            (
                "tls_required = \"maybe\"",
                "failed parsing tls_required maybe",
            ),
            (
                "tls_min_version = \"ssl3.0\"",
                "failed parsing tls_min_version ssl3.0",
            ),
            (
                "tls_min_version = 771",
                "failed parsing tls_min_version 771",
            ),
        ] {
            let e = config_err(text);
            assert_eq!(e.to_string(), msg);
            assert_eq!(e.exit_code(), 1);
        }
        // Checked even when the command line overrides the key.
        match with_config("log_level = \"loud\"", &["--log-level=info"]) {
            Err(e) => assert_eq!(e.to_string(), "failed parsing log_level loud"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_errors_exit_1() {
        let e = config_err("mem_queue_size = ");
        assert!(
            e.to_string().starts_with("failed to load config file "),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));
        assert_eq!(e.exit_code(), 1);
        let e = config_err("mem_queue_size = \"lots\"");
        assert!(e.to_string().contains("mem_queue_size"), "{e}");
        assert_eq!(e.exit_code(), 1);
        let e = config_err("msg_timeout = true");
        assert!(e.to_string().contains("msg_timeout"), "{e}");
        let e = fail(&["--config=/nonexistent/dir/nsqd.cfg"]);
        assert!(
            e.to_string()
                .starts_with("failed to load config file /nonexistent/dir/nsqd.cfg - "),
            "{e}"
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn precedence_cli_over_config_over_default() {
        let o = run_config(
            "mem_queue_size = 100\nmax_rdy_count = 5\nnsqlookupd_tcp_addresses = [\"cfg:1\"]",
            &["--mem-queue-size=1", "--lookupd-tcp-address=cli:1"],
        );
        assert_eq!(o.mem_queue_size, 1);
        assert_eq!(o.max_rdy_count, 5);
        assert_eq!(o.max_body_size, 5_242_880);
        assert_eq!(o.lookupd_tcp_addresses, ["cli:1"]);
        // A flag explicitly set to its default still beats the file.
        let o = run_config("deflate = false", &["--deflate=true"]);
        assert!(o.deflate);
    }

    #[test]
    fn validations() {
        for (args, msg) in [
            (
                &["--max-deflate-level=0"][..],
                "--max-deflate-level must be [1,9]",
            ),
            (
                &["--max-deflate-level=10"],
                "--max-deflate-level must be [1,9]",
            ),
            (&["--node-id=1024"], "--node-id must be [0,1024)"),
            (&["--node-id=-1"], "--node-id must be [0,1024)"),
            (
                &["--tls-required"],
                "cannot require TLS client connections without TLS key and cert",
            ),
            (
                &["--tls-required=tcp-https"],
                "cannot require TLS client connections without TLS key and cert",
            ),
            (
                &["--tls-client-auth-policy=require"],
                "cannot require TLS client connections without TLS key and cert",
            ),
            (
                &["--auth-http-request-method=put"],
                "--auth-http-request-method must be post or get",
            ),
            (
                &["--auth-http-request-method=GET"],
                "--auth-http-request-method must be post or get",
            ),
            (
                &["--e2e-processing-latency-percentile=0"],
                "invalid E2E processing latency percentile: 0",
            ),
            (
                &["--e2e-processing-latency-percentile=0.5,1.5"],
                "invalid E2E processing latency percentile: 1.5",
            ),
            (
                &["--e2e-processing-latency-percentile=-0.5"],
                "invalid E2E processing latency percentile: -0.5",
            ),
        ] {
            let e = fail(args);
            assert_eq!(e, OptionsError::Invalid(msg.to_string()), "{args:?}");
            assert_eq!(e.exit_code(), 1);
        }
        let o = run(&[
            "--max-deflate-level=1",
            "--node-id=1023",
            "--auth-http-request-method=post",
        ]);
        assert_eq!((o.max_deflate_level, o.node_id), (1, 1023));
        let o = run(&["--max-deflate-level=9", "--node-id=0"]);
        assert_eq!((o.max_deflate_level, o.node_id), (9, 0));
    }

    #[test]
    fn client_auth_policy_forces_tls_required() {
        let o = run(&[
            "--tls-cert=c",
            "--tls-key=k",
            "--tls-client-auth-policy=require-verify",
        ]);
        assert_eq!(o.tls_required, TlsRequired::Yes);
        let o = run(&[
            "--tls-cert=c",
            "--tls-key=k",
            "--tls-client-auth-policy=require",
            "--tls-required=tcp-https",
        ]);
        assert_eq!(o.tls_required, TlsRequired::TcpHttps);
    }

    #[test]
    fn config_value_encodings() {
        let o = run(&[
            "--tls-cert=c",
            "--tls-key=k",
            "--tls-required=tcp-https",
            "--tls-min-version=tls1.2",
            "--log-level=error",
            "--e2e-processing-latency-percentile=1.0,0.99",
        ]);
        let get = |k: &str| o.config_value(k).unwrap_or_else(|| panic!("missing {k}"));
        assert_eq!(get("id"), json!(default_node_id(HOST)));
        assert_eq!(get("log_level"), json!(4));
        assert_eq!(get("msg_timeout"), json!(60_000_000_000i64));
        assert_eq!(get("min_output_buffer_timeout"), json!(25_000_000));
        assert_eq!(get("tls_required"), json!(1));
        assert_eq!(get("tls_min_version"), json!(771));
        assert_eq!(get("nsqlookupd_tcp_addresses"), json!([]));
        assert_eq!(get("enable_experiment"), json!([]));
        assert_eq!(get("statsd_prefix"), json!("nsq.%s"));
        assert_eq!(get("statsd_mem_stats"), json!(true));
        assert_eq!(get("mem_queue_size"), json!(10_000));
        assert_eq!(get("broadcast_address"), json!(HOST));
        assert_eq!(
            serde_json::to_string(&get("e2e_processing_latency_percentiles")).ok(),
            Some("[1,0.99]".to_string())
        );
        assert_eq!(o.config_value("node_id"), None);
        assert_eq!(o.config_value("lookupd_tcp_address"), None);
        assert_eq!(o.config_value("verbose"), None);
        assert_eq!(o.config_value("config"), None);
        assert_eq!(o.config_value("version"), None);
        assert_eq!(o.config_value("nope"), None);
    }

    #[test]
    fn every_configurable_flag_is_readable_through_config_value() {
        let o = run(&[]);
        let flags = flag_set(HOST);
        let mut keys = 0;
        for flag in flags.flags() {
            if let Some(key) = flag.config_key() {
                keys += 1;
                assert!(o.config_value(key).is_some(), "{key}");
            }
        }
        // Every spec flag except --version, --config, --verbose and --worker-id.
        assert_eq!(keys, flags.flags().len() - 4);
        // NSQ's 53 plus --durability.
        assert_eq!(keys, 54);
    }
}
