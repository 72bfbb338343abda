//! What the utilities share: Go-style flag handling, `--consumer-opt`/`--producer-opt`, the
//! version line, the user agent, and the exit codes.

/// NSQ's release the utilities' flags and outputs follow.
pub const NSQ_VERSION: &str = "1.3.0";

/// `<app> v1.3.0`, as the Go utilities print for `--version`.
pub fn version_line(app: &str) -> String {
    format!("{app} v{NSQ_VERSION}")
}

/// The user agent the utilities send in IDENTIFY: `<app>/1.3.0 nsq-rs/<version>`.
pub fn user_agent(app: &str) -> String {
    nsq_client::user_agent(app, NSQ_VERSION)
}
