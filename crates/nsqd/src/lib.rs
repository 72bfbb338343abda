//! nsqd: receives, queues and delivers messages over NSQ's TCP protocol (V2) and HTTP API.
#![forbid(unsafe_code)]

pub mod auth;
pub mod channel;
pub mod client;
pub mod daemon;
pub mod durable;
pub mod http_api;
pub mod latency;
pub mod lookup;
pub mod metadata;
pub mod metrics;
pub mod options;
pub mod server;
pub mod stats;
pub mod statsd;
pub mod tcp;
pub mod tls;
pub mod topic;
