//! Load generators for nsqd, speaking the TCP protocol V2 directly: `bench_writer` (MPUB
//! batches), `bench_reader` (SUB, RDY, FIN everything) and `bench_pubsub` (both at once), with
//! the flags and summary line of NSQ's Go bench tools, plus `scripts/bench.sh`, which compares
//! nsqd's `--durability` levels.
//!
//! All three can negotiate TLS and snappy or deflate compression in IDENTIFY (`--tls`,
//! `--snappy`, `--deflate`) to measure what each transport costs.
//!
//! Unlike NSQ's tools, which open one connection per CPU, each side here uses one connection:
//! the figures then measure one client's throughput and stay comparable across machines.
//!
//! For nsqadmin, `fake_cluster` serves many fake nsqd and one fake nsqlookupd over HTTP (NSQ
//! 1.3.0's JSON, pre-rendered) and `bench_http` loads nsqadmin's API on top of it
//! (`scripts/nsqadmin.sh`).
#![forbid(unsafe_code)]

pub mod cli;
pub mod conn;
pub mod fake_cluster;
pub mod http_load;
pub mod idle;
pub mod latency;
pub mod procstat;
pub mod proto;
pub mod reader;
pub mod report;
pub mod transport;
pub mod writer;

/// `user_agent` sent in IDENTIFY, e.g. `bench_writer/nsq-rs-1.3.0`.
pub fn user_agent(tool: &str) -> String {
    format!("{tool}/nsq-rs-{}", env!("CARGO_PKG_VERSION"))
}
