//! Request timing stats logged every N requests (`--status-every`), in the shape of
//! `bitly/timer_metrics`: `<prefix> finished N - 99th: Xms - 95th: Xms - avg: Xms`.
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::golog;

/// A ring of the last `status_every` durations; when it wraps, the stats of the full ring are
/// logged. Zero disables it. A negative value logs after every request, as the Go tool does.
#[derive(Debug)]
pub(crate) struct TimerMetrics {
    prefix: String,
    status_every: i64,
    state: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    timings: Vec<Duration>,
    position: i64,
}

/// What one wrap of the ring reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stats {
    pub prefix: String,
    pub count: usize,
    pub avg: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} finished {} - 99th: {:.2}ms - 95th: {:.2}ms - avg: {:.2}ms",
            self.prefix,
            self.count,
            self.p99.as_secs_f64() * 1000.0,
            self.p95.as_secs_f64() * 1000.0,
            self.avg.as_secs_f64() * 1000.0
        )
    }
}

impl TimerMetrics {
    /// Logs the same warning as the Go tool when the ring is too small for useful
    /// percentiles.
    pub(crate) fn new(status_every: i64, prefix: &str) -> TimerMetrics {
        if status_every > 0 && status_every < 100 {
            golog::print(format!(
                "Warning: use more than 100 status values for accurate percentiles (configured with {status_every})"
            ));
        }
        TimerMetrics {
            prefix: prefix.to_string(),
            status_every,
            state: Mutex::new(Ring::default()),
        }
    }

    /// Records the time since `start`, logging the stats when the ring wraps.
    pub(crate) fn status(&self, start: Instant) {
        if self.status_every == 0 {
            return;
        }
        if let Some(stats) = self.record(start.elapsed()) {
            golog::print(stats);
        }
    }

    /// Records one duration; returns the stats to log when the ring wrapped.
    pub(crate) fn record(&self, d: Duration) -> Option<Stats> {
        if self.status_every == 0 {
            return None;
        }
        let mut ring = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        ring.position += 1;
        let looped = ring.position > self.status_every;
        if looped {
            ring.position = 1;
        }
        let slot = usize::try_from(ring.position - 1).unwrap_or(0);
        if slot >= ring.timings.len() {
            ring.timings.push(d);
        } else if let Some(t) = ring.timings.get_mut(slot) {
            *t = d;
        }
        looped.then(|| stats(&self.prefix, &ring.timings))
    }
}

fn stats(prefix: &str, timings: &[Duration]) -> Stats {
    let total: Duration = timings.iter().sum();
    let mut sorted = timings.to_vec();
    sorted.sort();
    let avg = u32::try_from(timings.len())
        .ok()
        .filter(|n| *n > 0)
        .map(|n| total / n)
        .unwrap_or_default();
    Stats {
        prefix: prefix.to_string(),
        count: timings.len(),
        avg,
        p95: percentile(95.0, &sorted),
        p99: percentile(99.0, &sorted),
    }
}

/// The Go tool's index arithmetic, which rounds up past the nearest rank.
fn percentile(perc: f64, sorted: &[Duration]) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let len = sorted.len();
    let idx = ((perc / 100.0) * len as f64 + 0.5).ceil() as usize;
    let idx = idx.min(len - 1);
    sorted.get(idx).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn logs_when_the_ring_wraps_with_the_full_ring() {
        let m = TimerMetrics::new(3, "[aggregate]:");
        assert_eq!(m.record(ms(1)), None);
        assert_eq!(m.record(ms(2)), None);
        assert_eq!(m.record(ms(3)), None);
        let s = m.record(ms(10)).unwrap();
        // The fourth replaced the first before the stats were taken.
        assert_eq!(s.count, 3);
        assert_eq!(s.avg, ms(5));
        assert_eq!(s.p95, ms(10));
        assert_eq!(
            s.to_string(),
            "[aggregate]: finished 3 - 99th: 10.00ms - 95th: 10.00ms - avg: 5.00ms"
        );
        assert_eq!(m.record(ms(1)), None);
        assert_eq!(m.record(ms(1)), None);
        assert!(m.record(ms(1)).is_some());
    }

    #[test]
    fn zero_disables_and_negative_logs_every_time() {
        let off = TimerMetrics::new(0, "");
        for _ in 0..10 {
            assert_eq!(off.record(ms(1)), None);
        }
        let every = TimerMetrics::new(-1, "x");
        for _ in 0..3 {
            assert_eq!(every.record(ms(2)).map(|s| s.count), Some(1));
        }
    }

    #[test]
    fn percentiles_follow_go_index_arithmetic() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        // ceil(95 + 0.5) = 96 -> the 97th value.
        assert_eq!(percentile(95.0, &sorted), ms(97));
        assert_eq!(percentile(99.0, &sorted), ms(100));
        assert_eq!(percentile(99.0, &[]), Duration::ZERO);
        assert_eq!(percentile(95.0, &[ms(4)]), ms(4));
    }
}
