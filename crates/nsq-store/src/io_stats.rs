//! Process-wide counts of the store's file writes and fsyncs, with fsync latency as a histogram,
//! for monitoring (nsqd's `/metrics`).
//!
//! The counters are process-wide rather than per log: an operator watches the disk the process
//! uses, and one set of atomics costs the write path nothing but an increment.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Upper bounds (inclusive, in seconds) of the fsync latency buckets; slower ones fall in the
/// implicit `+Inf` bucket. From a fast NVMe flush to a disk in trouble.
pub const FSYNC_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The bounds of [`FSYNC_BUCKETS`] in nanoseconds, for a lookup without floating point.
const FSYNC_BUCKETS_NS: [u64; 14] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
];

struct IoStats {
    writes: AtomicU64,
    written_bytes: AtomicU64,
    fsyncs: AtomicU64,
    fsync_ns: AtomicU64,
    /// Per bucket (not cumulative); the last one is `+Inf`.
    fsync_buckets: [AtomicU64; FSYNC_BUCKETS_NS.len() + 1],
}

static STATS: IoStats = IoStats {
    writes: AtomicU64::new(0),
    written_bytes: AtomicU64::new(0),
    fsyncs: AtomicU64::new(0),
    fsync_ns: AtomicU64::new(0),
    fsync_buckets: [const { AtomicU64::new(0) }; FSYNC_BUCKETS_NS.len() + 1],
};

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IoSnapshot {
    /// Successful writes to segment files, journals, checkpoints and `topic.state`.
    pub writes: u64,
    /// Bytes those writes carried.
    pub written_bytes: u64,
    /// fsyncs of store files and directories, failed ones included.
    pub fsyncs: u64,
    /// Time spent in those fsyncs, in seconds.
    pub fsync_seconds: f64,
    /// fsyncs per bucket of [`FSYNC_BUCKETS`] (not cumulative), then the `+Inf` bucket.
    pub fsync_buckets: Vec<u64>,
}

/// Counts one successful write of `bytes`.
pub(crate) fn wrote(bytes: usize) {
    STATS.writes.fetch_add(1, Ordering::Relaxed);
    STATS
        .written_bytes
        .fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Runs `f` (an fsync) and counts it with its duration, whether or not it succeeded: a failing
/// disk is exactly when the latency matters.
pub(crate) fn fsync<T>(f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let start = Instant::now();
    let r = f();
    record_fsync(start.elapsed().as_nanos().min(u64::MAX as u128) as u64);
    r
}

fn bucket(ns: u64) -> usize {
    FSYNC_BUCKETS_NS.partition_point(|&b| b < ns)
}

fn record_fsync(ns: u64) {
    STATS.fsyncs.fetch_add(1, Ordering::Relaxed);
    STATS.fsync_ns.fetch_add(ns, Ordering::Relaxed);
    if let Some(b) = STATS.fsync_buckets.get(bucket(ns)) {
        b.fetch_add(1, Ordering::Relaxed);
    }
}

/// The counters now. Read without a lock, so a scrape racing an fsync may see its count before
/// its bucket; the next scrape is consistent again.
pub fn snapshot() -> IoSnapshot {
    IoSnapshot {
        writes: STATS.writes.load(Ordering::Relaxed),
        written_bytes: STATS.written_bytes.load(Ordering::Relaxed),
        fsyncs: STATS.fsyncs.load(Ordering::Relaxed),
        fsync_seconds: STATS.fsync_ns.load(Ordering::Relaxed) as f64 / 1e9,
        fsync_buckets: STATS
            .fsync_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_are_inclusive_and_agree_with_the_seconds() {
        for (ns, s) in FSYNC_BUCKETS_NS.iter().zip(FSYNC_BUCKETS) {
            assert_eq!(*ns, (s * 1e9).round() as u64);
        }
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(100_000), 0);
        assert_eq!(bucket(100_001), 1);
        assert_eq!(bucket(2_500_000_000), FSYNC_BUCKETS.len() - 1);
        assert_eq!(bucket(2_500_000_001), FSYNC_BUCKETS.len());
        assert_eq!(bucket(u64::MAX), FSYNC_BUCKETS.len());
    }

    #[test]
    fn counters_move_with_writes_and_fsyncs() {
        // Other tests in this process write too, so only growth is checked.
        let before = snapshot();
        wrote(10);
        let r = fsync(|| Ok::<_, std::io::Error>(7));
        assert_eq!(r.unwrap(), 7);
        let failed = fsync(|| Err::<(), _>(std::io::Error::other("disk gone")));
        assert!(failed.is_err());
        let after = snapshot();
        assert!(after.writes > before.writes);
        assert!(after.written_bytes >= before.written_bytes + 10);
        assert!(after.fsyncs >= before.fsyncs + 2);
        assert_eq!(after.fsync_buckets.len(), FSYNC_BUCKETS.len() + 1);
        let in_buckets: u64 = after.fsync_buckets.iter().sum();
        let before_buckets: u64 = before.fsync_buckets.iter().sum();
        assert!(in_buckets >= before_buckets + 2);
    }
}
