//! NSQ's log line format (`<prefix>YYYY/MM/DD HH:MM:SS.uuuuuu LEVEL: msg` on stderr) behind the
//! `log` facade, with a level that can be changed at runtime (`PUT /config/log_level`).
use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// NSQ's log levels with their numeric values as shown by `/config/log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Fatal = 5,
}

impl LogLevel {
    pub fn as_int(self) -> i64 {
        self as i64
    }

    fn from_u8(v: u8) -> LogLevel {
        match v {
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Fatal,
        }
    }

    /// The word printed in log lines.
    pub fn label(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLogLevel(pub String);

impl fmt::Display for InvalidLogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid log level '{}'", self.0)
    }
}

impl std::error::Error for InvalidLogLevel {}

impl FromStr for LogLevel {
    type Err = InvalidLogLevel;
    /// Accepts NSQ's words in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            "fatal" => Ok(LogLevel::Fatal),
            _ => Err(InvalidLogLevel(s.to_string())),
        }
    }
}

struct NsqLogger {
    prefix: String,
    level: AtomicU8,
}

static LOGGER: OnceLock<NsqLogger> = OnceLock::new();

fn to_log_filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Error | LogLevel::Fatal => log::LevelFilter::Error,
    }
}

impl log::Log for NsqLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        let wanted = match metadata.level() {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Info => LogLevel::Info,
            log::Level::Debug | log::Level::Trace => LogLevel::Debug,
        };
        wanted >= LogLevel::from_u8(self.level.load(Ordering::Relaxed))
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let label = match record.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARNING",
            log::Level::Info => "INFO",
            _ => "DEBUG",
        };
        write_line(&self.prefix, label, &record.args().to_string());
    }

    fn flush(&self) {}
}

fn write_line(prefix: &str, label: &str, msg: &str) {
    let now = chrono::Local::now().format("%Y/%m/%d %H:%M:%S%.6f");
    // One write per line so concurrent lines do not interleave.
    let line = format!("{prefix}{now} {label}: {msg}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Installs the process logger. Later calls only change the level.
pub fn init(prefix: &str, level: LogLevel) {
    let logger = LOGGER.get_or_init(|| NsqLogger {
        prefix: prefix.to_string(),
        level: AtomicU8::new(level as u8),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    set_level(level);
}

/// Changes the level at runtime.
pub fn set_level(level: LogLevel) {
    if let Some(l) = LOGGER.get() {
        l.level.store(level as u8, Ordering::Relaxed);
    }
    let _ = to_log_filter(level);
}

/// The level in force (INFO before `init`).
pub fn level() -> LogLevel {
    LOGGER
        .get()
        .map(|l| LogLevel::from_u8(l.level.load(Ordering::Relaxed)))
        .unwrap_or(LogLevel::Info)
}

/// Checks a `--log-level` value (any case of NSQ's words) and stores it lower-cased; the shape of
/// a flag normalizer, shared by every daemon's options.
pub fn normalize_log_level(s: &str) -> Result<Option<String>, String> {
    LogLevel::from_str(s)
        .map(|_| Some(s.to_ascii_lowercase()))
        .map_err(|e| format!("{e} (debug, info, warn, error, fatal)"))
}

/// Logs an INFO line whatever the level: listener addresses are read by tooling that starts the
/// daemon (with port 0 it is the only way to learn the port).
pub fn always_info(msg: &str) {
    let prefix = LOGGER.get().map(|l| l.prefix.as_str()).unwrap_or("");
    write_line(prefix, "INFO", msg);
}

/// Logs a FATAL line in NSQ's format (used for startup failures before exit 1).
pub fn fatal(prefix: &str, msg: &str) {
    write_line(prefix, "FATAL", msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_levels_case_insensitively() {
        assert_eq!("WARN".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert_eq!("debug".parse::<LogLevel>(), Ok(LogLevel::Debug));
        assert!("warning".parse::<LogLevel>().is_err());
        assert_eq!(LogLevel::Fatal.as_int(), 5);
    }
}
