//! The durable message store. Each topic has a log of checksummed records in segment files;
//! every record is verified when read, a torn final write is cut off on open, and damaged
//! records are skipped and reported with their location while their neighbours stay readable.
//!
//! The byte layout is specified in `docs/store-format.md`.
#![forbid(unsafe_code)]
// Bytes from disk decide every offset here: an index out of bounds must be impossible, not
// merely unlikely, so indexing, unwrapping and panicking are denied outside tests.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod health;
pub mod io_stats;
pub mod journal;
pub mod layout;
pub mod log;
pub mod record;
pub mod segment;
pub mod topic_state;

pub use health::{Health, HealthSnapshot};
pub use log::{DiskLog, LogError, LogOptions, LogWriter, Recovery};
