//! nsq-client: an async NSQ client on tokio, configured with go-nsq's option names.
//!
//! - [`Producer`]: one connection to one nsqd; PUB, MPUB and DPUB pipelined, answers matched in
//!   order.
//! - [`Consumer`]: subscribes a topic's channel on nsqd addresses given directly or discovered
//!   through nsqlookupd, spreads `max_in_flight` across connections and backs off on failures,
//!   as go-nsq does.
//! - [`Config`]: go-nsq's options under go-nsq's names, settable from text with
//!   [`Config::set`] (what the utilities' `--consumer-opt` and `--producer-opt` do).
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod config;
mod conn;
pub mod consumer;
pub mod error;
pub mod lookup;
pub mod message;
pub mod producer;
mod tls;

pub use config::{BackoffStrategy, Config, ConfigError, TlsOptions};
pub use consumer::{Consumer, ConsumerStats};
pub use error::Error;
pub use message::Message;
pub use producer::Producer;
pub use tls::SkipVerify;

/// This crate's version, as sent in the default user agent.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The user agent a program built on this crate sends: `<app>/<app_version> nsq-rs/<VERSION>`.
pub fn user_agent(app: &str, app_version: &str) -> String {
    format!("{app}/{app_version} nsq-rs/{VERSION}")
}
