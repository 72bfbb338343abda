//! Go nsqd's disk queue files (go-diskqueue, unchanged since nsqd 0.2): reading a queue that Go
//! nsqd left in a data directory, and writing one it can read back.
//!
//! Three jobs need the legacy format: upgrading a data directory in place (read every unread
//! record of every queue, then remove the files), converting back for a rollback (write queues as
//! Go nsqd would have left them after a clean shutdown), and building fixtures for tests.
//!
//! Everything here is synchronous `std::fs`; callers on an async runtime run it on a blocking
//! thread. Nothing read from disk can make these functions panic: bad lengths, truncated
//! records, missing segments and unparseable meta files are reported as data
//! ([`CorruptSpan`], [`BadMeta`]) so the caller can log them and carry on, as Go nsqd does.
//!
//! Layout: per queue, `<queue>.diskqueue.meta.dat` holds
//! `depth\nreadFileNum,readPos\nwriteFileNum,writePos\n`, and `<queue>.diskqueue.NNNNNN.dat`
//! segments hold `int32 BE length | payload` records with nothing in between.
#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]
// Tests index and unwrap their own fixtures freely; the wall is for code that sees outside bytes.
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable
    )
)]

mod files;
mod meta;
mod read;
mod write;

use std::io;
use std::path::{Path, PathBuf};

pub use files::{list_queues, meta_path, queue_name, remove_queue_files, segment_path};
pub use meta::{read_meta, write_meta, BadMeta, PartialMeta, QueueMeta};
pub use read::{read_queue, scan_queue, CorruptReason, CorruptSpan, LegacyQueue, QueueScan};
pub use write::{write_queue, LegacyWriter};

/// Smallest valid record payload: a message header (timestamp, attempts, ID) with an empty body.
/// Go nsqd treats a shorter length as corruption when reading and refuses it when writing.
pub const MIN_RECORD_LEN: usize = nsq_protocol::message::MESSAGE_HEADER_LEN;

/// A place in a queue's segment files: a file number and a byte offset in that file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub file_num: i64,
    pub pos: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Queue names become file names, so only topic and `topic:channel` names pass.
    #[error("invalid disk queue name {0:?}")]
    InvalidQueueName(String),
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The meta file exists but does not hold three well-formed lines.
    #[error(transparent)]
    BadMeta(Box<BadMeta>),
    /// Same text as Go's writer, so operators recognise it.
    #[error("invalid message write size ({len}) minMsgSize={min} maxMsgSize={max}")]
    RecordSize { len: usize, min: i64, max: i64 },
    /// Writing never merges into an existing queue: the result must be exactly what Go would
    /// have left, so leftovers have to be removed first.
    #[error("disk queue {queue} already has files ({})", path.display())]
    QueueExists { queue: String, path: PathBuf },
}

impl Error {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<BadMeta> for Error {
    fn from(b: BadMeta) -> Error {
        Error::BadMeta(Box::new(b))
    }
}

/// Go nsqd creates every queue file with mode 0600.
fn private_file_options() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts
}
