//! NSQ's six utilities, each a module with a `main` that its binary in `src/bin/` calls, and
//! what they share (`common`: flags such as `--consumer-opt`, version lines, signals).
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

pub mod common;
pub mod relay;
pub mod stat;
pub mod tail;
pub mod to_file;
pub mod to_http;
pub mod to_nsq;
