//! What the store has found wrong with a topic's or channel's files: counts an operator can
//! watch (in `/stats`) and the last problem in words.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Damage found in one topic's or channel's files since start-up. Shared between the store
/// (which records) and the stats reader.
#[derive(Debug, Default)]
pub struct Health {
    records_skipped: AtomicU64,
    bytes_cut: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A copy of [`Health`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSnapshot {
    /// Records (messages or journal events) that could not be read and were passed over.
    pub records_skipped: u64,
    /// Bytes cut off or passed over: interrupted writes at the end of a file, and damaged
    /// stretches.
    pub bytes_cut: u64,
    pub last_error: Option<String>,
}

impl Health {
    /// Records a problem: `records` skipped, `bytes` cut, and what happened.
    pub fn record(&self, records: u64, bytes: u64, what: impl Into<String>) {
        self.records_skipped.fetch_add(records, Ordering::Relaxed);
        self.bytes_cut.fetch_add(bytes, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(what.into());
    }

    /// Counts bytes of an interrupted write cut off the end of a file (expected after a crash,
    /// so it does not become the last error).
    pub fn record_cut(&self, bytes: u64) {
        self.bytes_cut.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot {
            records_skipped: self.records_skipped.load(Ordering::Relaxed),
            bytes_cut: self.bytes_cut.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}
