//! Moves queued messages between Go nsqd's disk-queue files and the native store, in both
//! directions.
//!
//! * [`import_legacy`] upgrades a Go nsqd data directory in place when nsqd starts: each
//!   topic's unread disk-queue records become its native log, and each channel's become the
//!   channel's owed messages. It is crash safe: a topic is built in a staging directory, renamed
//!   into place, and only then are the Go files removed (a marker finishes an interrupted
//!   removal on the next start).
//! * [`export_legacy`] is the rollback converter behind `nsqd_rollback`: it writes every queued
//!   message back as Go disk queues so Go nsqd can take over the directory.
//!
//! Everything is synchronous `std::fs`; nsqd calls it before serving, and the converter is a
//! standalone program holding the data-path lock.
#![forbid(unsafe_code)]

mod export;
mod fsutil;
mod import;
mod logread;
pub mod metadata;

use std::path::PathBuf;

pub use export::{export_legacy, ExportOptions, ExportReport, QueueExport, TopicExport};
pub use import::{import_legacy, ImportOptions, ImportReport, TopicSpec};

/// Go nsqd's `--max-msg-size` default.
pub const DEFAULT_MAX_MSG_SIZE: i64 = 1024 * 1024;
/// Go nsqd's `--max-bytes-per-file` default.
pub const DEFAULT_MAX_BYTES_PER_FILE: u64 = 100 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    DiskQueue(#[from] nsq_diskqueue::Error),
    #[error(transparent)]
    Log(#[from] nsq_store::LogError),
    #[error(transparent)]
    Segment(#[from] nsq_store::segment::SegmentError),
    #[error(transparent)]
    Journal(#[from] nsq_store::journal::JournalError),
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    /// Both a native store directory and Go disk queues hold messages for a topic, and nothing
    /// records which is newer; merging could deliver every message twice, so a person decides.
    #[error(
        "topic {topic} has both a native store ({}) and Go disk queues with messages ({}); \
         remove whichever is stale and start again",
        store_dir.display(),
        queues.join(", ")
    )]
    MixedState {
        topic: String,
        store_dir: PathBuf,
        queues: Vec<String>,
    },
    /// A rollback converter run was interrupted; the directory belongs to neither daemon until
    /// it is finished.
    #[error(
        "an interrupted nsqd_rollback left {}; run nsqd_rollback again to finish it",
        marker.display()
    )]
    RollbackInProgress { marker: PathBuf },
    /// The converter never overwrites or merges into Go queues.
    #[error(
        "Go disk queue {queue} already has files in {}; refusing to overwrite it",
        dir.display()
    )]
    LegacyExists { queue: String, dir: PathBuf },
    /// A marker file written by this crate does not read back; it is never guessed at, since it
    /// names files to delete.
    #[error("unreadable marker {}: {reason}", path.display())]
    BadMarker { path: PathBuf, reason: String },
    /// The store holds a message longer than the converter was told Go nsqd accepts.
    #[error(
        "{} offset {offset} holds a {body}-byte message, over --max-msg-size {max}; \
         rerun with a --max-msg-size of at least {body} (and give Go nsqd the same)",
        path.display()
    )]
    StoreMessageTooLarge {
        path: PathBuf,
        offset: u64,
        body: u64,
        max: i64,
    },
    #[error("{queue}: {source}")]
    Queue {
        queue: String,
        #[source]
        source: nsq_diskqueue::Error,
    },
}

impl MigrateError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        MigrateError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Topics and channels whose name ends in `#ephemeral` never touch the disk.
pub(crate) fn is_ephemeral(name: &str) -> bool {
    nsq_protocol::names::is_ephemeral(name)
}

#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod fixtures;
