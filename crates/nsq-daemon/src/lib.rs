//! Process plumbing shared by the NSQ daemons: NSQ-format logging, the version line, listener
//! binding, signals, the data-path lock and the Prometheus registry every `/metrics` starts from.
#![forbid(unsafe_code)]

pub mod logging;
pub mod metrics;
pub mod process;

pub use logging::LogLevel;

/// The version every binary reports. Tools compare it as semver, so it stays NSQ's release number.
pub const VERSION: &str = "1.3.0";

/// `<app> v1.3.0 (built w/rustc1.95.0)`: the shape Go daemons print for `--version`, which client test
/// harnesses parse.
pub fn version_line(app: &str) -> String {
    format!(
        "{app} v{VERSION} (built w/rustc{})",
        env!("NSQ_RUSTC_VERSION")
    )
}

/// The OS hostname, or `localhost` when it cannot be read or is not UTF-8.
pub fn hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
