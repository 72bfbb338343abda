//! nsqadmin: NSQ's admin service. It answers NSQ 1.3.0 nsqadmin's JSON API and actions by
//! querying nsqlookupd or a fixed list of nsqd over HTTP, serves its own web UI from files built
//! into the binary, and samples the cluster into an in-memory history for the UI's charts.
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

pub mod admin;
pub mod api;
pub mod assets;
pub mod cluster;
pub mod history;
pub mod metrics;
pub mod notify;
pub mod options;
pub mod server;
pub mod stats;
pub mod upstream;
