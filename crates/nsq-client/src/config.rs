//! go-nsq's configuration options, under go-nsq's names, with go-nsq's defaults, ranges and
//! error texts.
//!
//! Values are parsed the way go-nsq's `Config.Set` parses text: Go durations, `strconv`
//! booleans, base-10 integers and Go floats. Where go-nsq accepts a value this crate cannot
//! represent, `set` refuses it instead (see [`Config::set`]).
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nsq_flags::{
    format_go_duration, format_go_duration_nanos, format_go_float, go_quote,
    parse_go_duration_nanos,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No option of that name.
    #[error("invalid option {0}")]
    UnknownOption(String),
    /// A value outside the option's range or of the wrong shape, in go-nsq's wording.
    #[error("{0}")]
    InvalidValue(String),
    /// A TLS file cannot be used (unreadable, no certificate in it, key not matching the
    /// certificate), or a TLS setting is unusable, in Go's wording where Go has one.
    #[error("{0}")]
    Tls(String),
}

/// How the consumer's backoff grows with consecutive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackoffStrategy {
    /// `backoff_multiplier * 2^(attempt)`, capped at `max_backoff_duration`.
    #[default]
    Exponential,
    /// Full-jitter: a random duration up to `backoff_multiplier * 2^(attempt)`.
    FullJitter,
}

/// The names `tls_min_version` accepts. rustls speaks only TLS 1.2 and 1.3, so all of them
/// mean "1.2 or newer".
pub const TLS_MIN_VERSIONS: [&str; 4] = ["ssl3.0", "tls1.0", "tls1.1", "tls1.2"];

/// TLS settings (go-nsq's `tls_config`, set through `tls_root_ca_file`,
/// `tls_insecure_skip_verify`, `tls_cert`, `tls_key`, `tls_min_version`).
///
/// A client certificate is presented only when both `cert_file` and `key_file` are set; one
/// without the other is ignored, as in go-nsq. [`TlsOptions::client_config`] turns these into
/// a rustls configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of CA certificates to verify nsqd against; without it, the system's roots.
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
    /// Zero means no limit of our own (the OS's connect timeout applies), as in Go.
    pub dial_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// The address to dial from. An unspecified IP (`0.0.0.0`, from `local_addr` values such as
    /// `:4000`) stands for "any address of the peer's family".
    pub local_addr: Option<SocketAddr>,
    pub lookupd_poll_interval: Duration,
    pub lookupd_poll_jitter: f64,
    /// Zero means no limit, as in Go.
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
    /// Sent in IDENTIFY in whole milliseconds (zero: nsqd's default); `None` sends -1
    /// (heartbeats off).
    pub heartbeat_interval: Option<Duration>,
    pub sample_rate: i32,
    pub tls_v1: bool,
    pub tls: TlsOptions,
    pub deflate: bool,
    pub deflate_level: u32,
    pub snappy: bool,
    /// Bytes; -1 disables nsqd's output buffering for this client.
    pub output_buffer_size: i64,
    /// Sent in IDENTIFY in whole milliseconds (zero: nsqd's default); `None` sends -1 (no
    /// buffering timeout).
    pub output_buffer_timeout: Option<Duration>,
    pub max_in_flight: usize,
    /// Zero: nsqd's own `--msg-timeout`.
    pub msg_timeout: Duration,
    pub auth_secret: String,
    /// go-nsq's `LookupdAuthorization` under its option name: despite the name, `true` (the
    /// default) means lookupd queries carry `Authorization: Bearer <auth_secret>` when a
    /// secret is set.
    pub skip_lookupd_authorization: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// A value as go-nsq's `Set` receives it: text, or the boolean `true` that a bare
/// `--consumer-opt key` stands for.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    True,
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::True => f.write_str("true"),
        }
    }
}

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_SEC: i64 = 1_000 * NS_PER_MS;
const NS_PER_MIN: i64 = 60 * NS_PER_SEC;

/// go-nsq's `min`/`max` struct tags for the duration options, as nanoseconds.
struct DurationRange {
    option: &'static str,
    field: &'static str,
    min: Option<i64>,
    max: Option<i64>,
}

const fn range(
    option: &'static str,
    field: &'static str,
    min: Option<i64>,
    max: Option<i64>,
) -> DurationRange {
    DurationRange {
        option,
        field,
        min,
        max,
    }
}

/// In go-nsq's field order, which decides which error `validate` reports first.
const DURATION_RANGES: [DurationRange; 11] = [
    range(
        "read_timeout",
        "ReadTimeout",
        Some(100 * NS_PER_MS),
        Some(5 * NS_PER_MIN),
    ),
    range(
        "write_timeout",
        "WriteTimeout",
        Some(100 * NS_PER_MS),
        Some(5 * NS_PER_MIN),
    ),
    range(
        "lookupd_poll_interval",
        "LookupdPollInterval",
        Some(10 * NS_PER_MS),
        Some(5 * NS_PER_MIN),
    ),
    range(
        "max_requeue_delay",
        "MaxRequeueDelay",
        Some(0),
        Some(60 * NS_PER_MIN),
    ),
    range(
        "default_requeue_delay",
        "DefaultRequeueDelay",
        Some(0),
        Some(60 * NS_PER_MIN),
    ),
    range(
        "max_backoff_duration",
        "MaxBackoffDuration",
        Some(0),
        Some(60 * NS_PER_MIN),
    ),
    range(
        "backoff_multiplier",
        "BackoffMultiplier",
        Some(0),
        Some(60 * NS_PER_MIN),
    ),
    range(
        "low_rdy_idle_timeout",
        "LowRdyIdleTimeout",
        Some(NS_PER_SEC),
        Some(5 * NS_PER_MIN),
    ),
    range(
        "low_rdy_timeout",
        "LowRdyTimeout",
        Some(NS_PER_SEC),
        Some(5 * NS_PER_MIN),
    ),
    range(
        "rdy_redistribute_interval",
        "RDYRedistributeInterval",
        Some(NS_PER_MS),
        Some(5 * NS_PER_SEC),
    ),
    range("msg_timeout", "MsgTimeout", Some(0), None),
];

/// go-nsq has no lower bound on these, but a negative one only makes every dial fail at once;
/// a `Duration` cannot hold it, so `set` refuses it with go-nsq's wording for a bound of zero.
const UNSIGNED_DURATIONS: [DurationRange; 2] = [
    range("dial_timeout", "DialTimeout", Some(0), None),
    range("lookupd_poll_timeout", "LookupdPollTimeout", Some(0), None),
];

const INVALID_TYPE: &str = "invalid value type";

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
    /// `heartbeat_interval`, `tls_root_ca_file`, ...), checking go-nsq's range. Dashes in the
    /// name count as underscores.
    ///
    /// Durations are Go durations (`1m30s`, `250ms`), booleans Go's `strconv.ParseBool`
    /// spellings, integers base 10. `max_attempts` and `sample_rate` wrap to 16 and 32 bits
    /// before the range check, as in go-nsq. The TLS files are read here, so a bad
    /// `tls_root_ca_file` or `tls_cert`/`tls_key` pair fails now rather than at connect time.
    ///
    /// Where go-nsq would accept a value this type cannot hold, it is refused instead:
    /// negative `dial_timeout` and `lookupd_poll_timeout`, and a `heartbeat_interval` or
    /// `output_buffer_timeout` below -1ms (-1ms, or anything that truncates to it, turns the
    /// feature off as in go-nsq).
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        self.set_value(option, Value::Text(value))
    }

    /// Sets an option from the utilities' `--consumer-opt` / `--producer-opt` text: `key,value`
    /// split at the first comma (the value may hold more commas), or a bare `key`, which means
    /// the boolean `true`.
    pub fn set_flag(&mut self, text: &str) -> Result<(), ConfigError> {
        match text.split_once(',') {
            Some((key, value)) => self.set_value(key, Value::Text(value)),
            None => self.set_value(text, Value::True),
        }
    }

    fn set_value(&mut self, option: &str, value: Value<'_>) -> Result<(), ConfigError> {
        let option = option.replace('-', "_");
        let opt = option.as_str();
        if let Some(r) = DURATION_RANGES.iter().find(|r| r.option == opt) {
            let d = coerce_ranged_duration(r, value)?;
            *self.duration_field(opt).ok_or_else(|| unknown(opt))? = d;
            return Ok(());
        }
        if let Some(r) = UNSIGNED_DURATIONS.iter().find(|r| r.option == opt) {
            let d = coerce_ranged_duration(r, value)?;
            *self.duration_field(opt).ok_or_else(|| unknown(opt))? = d;
            return Ok(());
        }
        match opt {
            "local_addr" => self.local_addr = coerce_local_addr(opt, value)?,
            "lookupd_poll_jitter" => {
                let v = coerce_float(opt, value)?;
                check_bounds(opt, v, Some(0.0), Some(1.0), |f| format_go_float(*f))?;
                self.lookupd_poll_jitter = v;
            }
            "backoff_strategy" => {
                self.backoff_strategy = match value {
                    Value::Text("" | "exponential") => BackoffStrategy::Exponential,
                    Value::Text("full_jitter") => BackoffStrategy::FullJitter,
                    _ => return Err(coerce_failed(opt, value, INVALID_TYPE)),
                }
            }
            "max_attempts" => {
                // go-nsq stores the parsed uint64 into a uint16 field, keeping the low bits.
                self.max_attempts = coerce_uint(opt, value)? as u16;
            }
            "client_id" => self.client_id = coerce_string(value),
            "hostname" => self.hostname = coerce_string(value),
            "user_agent" => self.user_agent = coerce_string(value),
            "auth_secret" => self.auth_secret = coerce_string(value),
            "heartbeat_interval" => self.heartbeat_interval = coerce_millis_or_off(opt, value)?,
            "output_buffer_timeout" => {
                self.output_buffer_timeout = coerce_millis_or_off(opt, value)?;
            }
            "sample_rate" => {
                // go-nsq stores the parsed int64 into an int32 field, keeping the low bits.
                let v = coerce_int(opt, value)? as i32;
                check_bounds(opt, v, Some(0), Some(99), i32::to_string)?;
                self.sample_rate = v;
            }
            "tls_v1" => self.tls_v1 = coerce_bool(opt, value)?,
            "deflate" => self.deflate = coerce_bool(opt, value)?,
            "snappy" => self.snappy = coerce_bool(opt, value)?,
            "skip_lookupd_authorization" => {
                self.skip_lookupd_authorization = coerce_bool(opt, value)?;
            }
            "deflate_level" => {
                let v = coerce_int(opt, value)?;
                check_bounds(opt, v, Some(1), Some(9), i64::to_string)?;
                self.deflate_level = u32::try_from(v).map_err(|_| invalid_range(opt, v))?;
            }
            "output_buffer_size" => self.output_buffer_size = coerce_int(opt, value)?,
            "max_in_flight" => {
                let v = coerce_int(opt, value)?;
                check_bounds(opt, v, Some(0), None, i64::to_string)?;
                self.max_in_flight = usize::try_from(v).map_err(|_| invalid_range(opt, v))?;
            }
            // go-nsq takes only a ready-made *tls.Config here; text never fits it.
            "tls_config" => return Err(coerce_failed(opt, value, INVALID_TYPE)),
            "tls_root_ca_file" => {
                let path = text_only(value)?;
                crate::tls::load_roots(Path::new(path))?;
                self.tls.root_ca_file = Some(PathBuf::from(path));
            }
            "tls_insecure_skip_verify" => self.tls.insecure_skip_verify = coerce_bool(opt, value)?,
            "tls_cert" | "tls_key" => {
                let path = text_only(value)?;
                let path = (!path.is_empty()).then(|| PathBuf::from(path));
                if opt == "tls_cert" {
                    self.tls.cert_file = path;
                } else {
                    self.tls.key_file = path;
                }
                if let (Some(cert), Some(key)) = (&self.tls.cert_file, &self.tls.key_file) {
                    crate::tls::load_key_pair(cert, key)?;
                }
            }
            "tls_min_version" => {
                let version = text_only(value)?;
                if !TLS_MIN_VERSIONS.contains(&version) {
                    return Err(not_a_tls_version(version));
                }
                self.tls.min_version = Some(version.to_string());
            }
            _ => return Err(unknown(opt)),
        }
        Ok(())
    }

    fn duration_field(&mut self, option: &str) -> Option<&mut Duration> {
        Some(match option {
            "dial_timeout" => &mut self.dial_timeout,
            "read_timeout" => &mut self.read_timeout,
            "write_timeout" => &mut self.write_timeout,
            "lookupd_poll_interval" => &mut self.lookupd_poll_interval,
            "lookupd_poll_timeout" => &mut self.lookupd_poll_timeout,
            "max_requeue_delay" => &mut self.max_requeue_delay,
            "default_requeue_delay" => &mut self.default_requeue_delay,
            "max_backoff_duration" => &mut self.max_backoff_duration,
            "backoff_multiplier" => &mut self.backoff_multiplier,
            "low_rdy_idle_timeout" => &mut self.low_rdy_idle_timeout,
            "low_rdy_timeout" => &mut self.low_rdy_timeout,
            "rdy_redistribute_interval" => &mut self.rdy_redistribute_interval,
            "msg_timeout" => &mut self.msg_timeout,
            _ => return None,
        })
    }

    fn duration_value(&self, option: &str) -> Option<Duration> {
        Some(match option {
            "read_timeout" => self.read_timeout,
            "write_timeout" => self.write_timeout,
            "lookupd_poll_interval" => self.lookupd_poll_interval,
            "max_requeue_delay" => self.max_requeue_delay,
            "default_requeue_delay" => self.default_requeue_delay,
            "max_backoff_duration" => self.max_backoff_duration,
            "backoff_multiplier" => self.backoff_multiplier,
            "low_rdy_idle_timeout" => self.low_rdy_idle_timeout,
            "low_rdy_timeout" => self.low_rdy_timeout,
            "rdy_redistribute_interval" => self.rdy_redistribute_interval,
            "msg_timeout" => self.msg_timeout,
            _ => return None,
        })
    }

    /// The checks go-nsq's `Config.Validate` makes: every ranged option within its range
    /// (reported under go-nsq's field name, e.g. `invalid ReadTimeout ! 50ms < 100ms`), then
    /// `heartbeat_interval` no longer than `read_timeout`.
    ///
    /// Like go-nsq, this does not refuse `deflate` with `snappy` (nsqd does, at IDENTIFY) nor a
    /// `tls_cert` without a `tls_key` (the lone one is ignored).
    pub fn validate(&self) -> Result<(), ConfigError> {
        // go-nsq's field order: the duration tags up to LookupdPollInterval, then the jitter,
        // then the rest.
        let (early, late) = DURATION_RANGES.split_at(3);
        for r in early {
            self.check_duration_field(r)?;
        }
        check_bounds(
            "LookupdPollJitter",
            self.lookupd_poll_jitter,
            Some(0.0),
            Some(1.0),
            |f| format_go_float(*f),
        )?;
        let (requeue_backoff, rdy_msg) = late.split_at(4);
        for r in requeue_backoff {
            self.check_duration_field(r)?;
        }
        // MaxAttempts is a u16 with go-nsq's range 0..=65535: nothing to check.
        let (rdy, msg) = rdy_msg.split_at(3);
        for r in rdy {
            self.check_duration_field(r)?;
        }
        check_bounds(
            "SampleRate",
            self.sample_rate,
            Some(0),
            Some(99),
            i32::to_string,
        )?;
        check_bounds(
            "DeflateLevel",
            self.deflate_level,
            Some(1),
            Some(9),
            u32::to_string,
        )?;
        // MaxInFlight's only bound is min 0, which a usize always meets.
        for r in msg {
            self.check_duration_field(r)?;
        }
        if let Some(heartbeat) = self.heartbeat_interval {
            if heartbeat > self.read_timeout {
                return Err(ConfigError::InvalidValue(format!(
                    "HeartbeatInterval {} must be less than ReadTimeout {}",
                    format_go_duration(heartbeat),
                    format_go_duration(self.read_timeout)
                )));
            }
        }
        Ok(())
    }

    fn check_duration_field(&self, r: &DurationRange) -> Result<(), ConfigError> {
        let Some(d) = self.duration_value(r.option) else {
            return Ok(());
        };
        let nanos = d.as_nanos();
        let to_u128 = |b: Option<i64>| b.and_then(|n| u128::try_from(n).ok());
        check_bounds(
            r.field,
            nanos,
            to_u128(r.min),
            to_u128(r.max),
            |n: &u128| format_go_duration(duration_from_nanos(*n)),
        )
    }
}

fn duration_from_nanos(n: u128) -> Duration {
    let secs = u64::try_from(n / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    let sub = u32::try_from(n % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

fn unknown(option: &str) -> ConfigError {
    ConfigError::UnknownOption(option.to_string())
}

fn coerce_failed(option: &str, value: Value<'_>, why: &str) -> ConfigError {
    ConfigError::InvalidValue(format!(
        "failed to coerce option {option} ({value}) - {why}"
    ))
}

fn invalid_range(option: &str, v: i64) -> ConfigError {
    ConfigError::InvalidValue(format!("invalid {option} ! {v} is out of range"))
}

fn not_a_tls_version(version: &str) -> ConfigError {
    ConfigError::InvalidValue(format!("ERROR: {version} is not a tls version"))
}

/// go-nsq's `min`/`max` check: `invalid <name> ! <v> < <min>` or `... > <max>`. Values that
/// compare neither way (NaN) pass, as in Go.
fn check_bounds<T: PartialOrd>(
    name: &str,
    v: T,
    min: Option<T>,
    max: Option<T>,
    show: impl Fn(&T) -> String,
) -> Result<(), ConfigError> {
    if let Some(min) = min {
        if v < min {
            return Err(ConfigError::InvalidValue(format!(
                "invalid {name} ! {} < {}",
                show(&v),
                show(&min)
            )));
        }
    }
    if let Some(max) = max {
        if v > max {
            return Err(ConfigError::InvalidValue(format!(
                "invalid {name} ! {} > {}",
                show(&v),
                show(&max)
            )));
        }
    }
    Ok(())
}

/// The text of a TLS pseudo-option; go-nsq refuses anything but a string for these.
fn text_only(value: Value<'_>) -> Result<&str, ConfigError> {
    match value {
        Value::Text(s) => Ok(s),
        Value::True => Err(ConfigError::InvalidValue(format!(
            "ERROR: {value} is not a string"
        ))),
    }
}

/// go-nsq formats a non-string with `%s`, so a bare flag for a string option yields Go's
/// rendering of a mis-formatted bool.
fn coerce_string(value: Value<'_>) -> String {
    match value {
        Value::Text(s) => s.to_string(),
        Value::True => "%!s(bool=true)".to_string(),
    }
}

fn coerce_bool(option: &str, value: Value<'_>) -> Result<bool, ConfigError> {
    match value {
        Value::True => Ok(true),
        Value::Text(s) => nsq_flags::parse_go_bool(s)
            .map_err(|_| coerce_failed(option, value, &strconv_error("ParseBool", s, SYNTAX))),
    }
}

const SYNTAX: &str = "invalid syntax";
const RANGE: &str = "value out of range";

fn strconv_error(func: &str, s: &str, why: &str) -> String {
    format!("strconv.{func}: parsing {}: {why}", go_quote(s))
}

fn coerce_int(option: &str, value: Value<'_>) -> Result<i64, ConfigError> {
    let Value::Text(s) = value else {
        return Err(coerce_failed(option, value, INVALID_TYPE));
    };
    parse_int(s).map_err(|why| coerce_failed(option, value, &strconv_error("ParseInt", s, why)))
}

fn coerce_uint(option: &str, value: Value<'_>) -> Result<u64, ConfigError> {
    let Value::Text(s) = value else {
        return Err(coerce_failed(option, value, INVALID_TYPE));
    };
    parse_uint(s).map_err(|why| coerce_failed(option, value, &strconv_error("ParseUint", s, why)))
}

fn coerce_float(option: &str, value: Value<'_>) -> Result<f64, ConfigError> {
    let Value::Text(s) = value else {
        return Err(coerce_failed(option, value, INVALID_TYPE));
    };
    parse_float(s).map_err(|why| coerce_failed(option, value, &strconv_error("ParseFloat", s, why)))
}

fn coerce_duration_nanos(option: &str, value: Value<'_>) -> Result<i64, ConfigError> {
    let Value::Text(s) = value else {
        return Err(coerce_failed(option, value, INVALID_TYPE));
    };
    parse_go_duration_nanos(s).map_err(|e| coerce_failed(option, value, &format!("time: {e}")))
}

fn coerce_ranged_duration(r: &DurationRange, value: Value<'_>) -> Result<Duration, ConfigError> {
    let nanos = coerce_duration_nanos(r.option, value)?;
    check_bounds(r.option, nanos, r.min, r.max, |n| {
        format_go_duration_nanos(*n)
    })?;
    // Every range here has a lower bound of at least zero.
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| invalid_range(r.option, nanos))
}

/// `heartbeat_interval` and `output_buffer_timeout`: go-nsq sends whole milliseconds, and -1
/// (from exactly -1ns, or anything that truncates to -1ms) switches the feature off.
fn coerce_millis_or_off(option: &str, value: Value<'_>) -> Result<Option<Duration>, ConfigError> {
    let nanos = coerce_duration_nanos(option, value)?;
    if nanos == -1 || nanos / NS_PER_MS == -1 {
        return Ok(None);
    }
    if nanos < 0 {
        if nanos / NS_PER_MS == 0 {
            // Go sends 0 here, which nsqd reads as "its default".
            return Ok(Some(Duration::ZERO));
        }
        return Err(ConfigError::InvalidValue(format!(
            "invalid {option} ! {} < -1ms",
            format_go_duration_nanos(nanos)
        )));
    }
    Ok(Some(Duration::from_nanos(nanos.unsigned_abs())))
}

/// Go's `strconv.ParseUint(s, 10, 64)`: digits only, range error at the first overflow.
fn parse_uint(s: &str) -> Result<u64, &'static str> {
    if s.is_empty() {
        return Err(SYNTAX);
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return Err(SYNTAX);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(RANGE)?;
    }
    Ok(n)
}

fn split_sign(s: &str) -> (bool, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        (true, rest)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_int(s: &str) -> Result<i64, &'static str> {
    let (negative, digits) = split_sign(s);
    let magnitude = parse_uint(digits)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude).ok_or(RANGE)
    } else {
        i64::try_from(magnitude).map_err(|_| RANGE)
    }
}

/// Go's `strconv.ParseFloat(s, 64)`: decimal and hexadecimal (`0x1p-2`) forms, `_` between
/// digits, `inf`/`infinity`/`nan`; a finite literal too large for f64 is a range error.
fn parse_float(s: &str) -> Result<f64, &'static str> {
    let cleaned;
    let mut text = s;
    if s.contains('_') {
        if !underscores_ok(s) {
            return Err(SYNTAX);
        }
        cleaned = s.replace('_', "");
        text = &cleaned;
    }
    let (negative, body) = split_sign(text);
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return Ok(f64::NAN);
    }
    let magnitude = if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        // Rust's grammar for the remaining (decimal) forms is Go's; only the words differ,
        // and those were handled above.
        let starts_right = body.starts_with(|c: char| c.is_ascii_digit() || c == '.');
        if !starts_right
            || !body
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return Err(SYNTAX);
        }
        body.parse::<f64>().map_err(|_| SYNTAX)?
    };
    if magnitude.is_infinite() {
        return Err(RANGE);
    }
    Ok(if negative { -magnitude } else { magnitude })
}

/// The part after `0x`: hex digits with an optional point, then a mandatory `p` exponent.
fn parse_hex_float(s: &str) -> Result<f64, &'static str> {
    let (mantissa, exponent) = s.split_once('p').ok_or(SYNTAX)?;
    let exponent: i64 = {
        let (neg, digits) = split_sign(exponent);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SYNTAX);
        }
        // Exponents past a few thousand overflow or underflow anyway; cap to stay in i64.
        let v = digits.parse::<i64>().unwrap_or(100_000).min(100_000);
        if neg {
            -v
        } else {
            v
        }
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(SYNTAX);
    }
    let mut value: f64 = 0.0;
    for c in int_part.chars().chain(frac_part.chars()) {
        let d = c.to_digit(16).ok_or(SYNTAX)?;
        value = value * 16.0 + f64::from(d);
    }
    let frac_digits = i64::try_from(frac_part.len()).unwrap_or(i64::MAX / 8);
    let shift = exponent - 4 * frac_digits;
    // Two steps keep each power of two representable before the product is rounded.
    let half = shift / 2;
    let pow =
        |e: i64| 2f64.powi(i32::try_from(e).unwrap_or(if e < 0 { i32::MIN } else { i32::MAX }));
    Ok(value * pow(half) * pow(shift - half))
}

/// Go's rule for `_` in number literals: each one sits between digits (or after a base prefix).
fn underscores_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut saw = b'^';
    let mut hex = false;
    if let (Some(b'0'), Some(prefix)) = (bytes.first(), bytes.get(1)) {
        let prefix = prefix.to_ascii_lowercase();
        if matches!(prefix, b'b' | b'o' | b'x') {
            i = 2;
            saw = b'0';
            hex = prefix == b'x';
        }
    }
    for &c in bytes.iter().skip(i) {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// go-nsq resolves `local_addr` with `net.ResolveTCPAddr("tcp", ...)`: `host:port`, where the
/// host may be empty, an IP or a name (IPv4 preferred), and the port a number or a service name.
fn coerce_local_addr(option: &str, value: Value<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    let Value::Text(s) = value else {
        return Err(coerce_failed(option, value, INVALID_TYPE));
    };
    resolve_tcp_addr(s).map_err(|why| coerce_failed(option, value, &why))
}

fn resolve_tcp_addr(s: &str) -> Result<Option<SocketAddr>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let (host, port) = split_host_port(s)?;
    let port = lookup_port(port)?;
    if host.is_empty() {
        if port == 0 {
            return Ok(None);
        }
        return Ok(Some(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Some(SocketAddr::new(ip, port)));
    }
    let no_such_host = || format!("lookup {host}: no such host");
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| no_such_host())?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .map(Some)
        .ok_or_else(no_such_host)
}

/// Go's `net.SplitHostPort`, with its error texts (`address x: missing port in address`).
pub(crate) fn split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    let err = |why: &str| format!("address {hostport}: {why}");
    const MISSING_PORT: &str = "missing port in address";
    const TOO_MANY_COLONS: &str = "too many colons in address";
    let Some(i) = hostport.rfind(':') else {
        return Err(err(MISSING_PORT));
    };
    let host;
    let (mut j, mut k) = (0, 0);
    if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err(err("missing ']' in address"));
        };
        if end + 1 == hostport.len() {
            return Err(err(MISSING_PORT));
        } else if end + 1 != i {
            if hostport.as_bytes().get(end + 1) == Some(&b':') {
                return Err(err(TOO_MANY_COLONS));
            }
            return Err(err(MISSING_PORT));
        }
        host = hostport.get(1..end).unwrap_or_default();
        (j, k) = (1, end + 1);
    } else {
        host = hostport.get(..i).unwrap_or_default();
        if host.contains(':') {
            return Err(err(TOO_MANY_COLONS));
        }
    }
    let after = |from: usize| hostport.get(from..).unwrap_or_default();
    if after(j).contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    if after(k).contains(']') {
        return Err(err("unexpected ']' in address"));
    }
    Ok((host, after(i + 1)))
}

/// Go's port lookup for TCP: a decimal number (sign allowed, 0..=65535), empty for 0, or a
/// service name from `/etc/services` or Go's built-in table.
fn lookup_port(service: &str) -> Result<u16, String> {
    let invalid = || format!("address {service}: invalid port");
    let digits = service
        .strip_prefix('+')
        .or_else(|| service.strip_prefix('-'))
        .unwrap_or(service);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        if service.is_empty() || digits.is_empty() {
            return Ok(0);
        }
        let n: u64 = digits.parse().unwrap_or(u64::MAX);
        if service.starts_with('-') && n != 0 {
            return Err(invalid());
        }
        return u16::try_from(n).map_err(|_| invalid());
    }
    let name = service.to_ascii_lowercase();
    services_port(&name)
        .or_else(|| builtin_port(&name))
        .ok_or_else(|| format!("address tcp/{service}: unknown port"))
}

fn services_port(name: &str) -> Option<u16> {
    let text = std::fs::read_to_string("/etc/services").ok()?;
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let service = fields.next()?;
        let (port, proto) = fields.next()?.split_once('/')?;
        if proto != "tcp" {
            return None;
        }
        let matches =
            service.eq_ignore_ascii_case(name) || fields.any(|a| a.eq_ignore_ascii_case(name));
        matches.then(|| port.parse().ok()).flatten()
    })
}

/// Go's fallback table for when `/etc/services` lacks a name.
fn builtin_port(name: &str) -> Option<u16> {
    Some(match name {
        "ftp" => 21,
        "ftps" => 990,
        "gopher" => 70,
        "http" => 80,
        "https" => 443,
        "imap2" => 143,
        "imap3" => 220,
        "imaps" => 993,
        "pop3" => 110,
        "pop3s" => 995,
        "smtp" => 25,
        "submissions" => 465,
        "ssh" => 22,
        "telnet" => 23,
        _ => return None,
    })
}
