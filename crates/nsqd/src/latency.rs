//! End-to-end processing latency (publish to FIN) per channel, over a sliding window made of
//! two halves that rotate, reported at the configured quantiles.
//!
//! Each half keeps a bounded uniform sample (reservoir) of its latencies, so memory stays
//! constant at any message rate; quantiles are exact for small windows and sampled beyond.
use std::time::{Duration, Instant};

/// Samples kept per half-window.
const RESERVOIR: usize = 4096;

#[derive(Debug, Default, Clone)]
struct Half {
    samples: Vec<f64>,
    seen: u64,
}

impl Half {
    fn record(&mut self, v: f64) {
        self.seen += 1;
        if self.samples.len() < RESERVOIR {
            self.samples.push(v);
        } else {
            let slot = (rand::random::<u64>() % self.seen) as usize;
            if slot < RESERVOIR {
                self.samples[slot] = v;
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct E2eLatency {
    half: Duration,
    current: Half,
    previous: Half,
    rotated_at: Instant,
}

impl E2eLatency {
    pub fn new(window: Duration, now: Instant) -> E2eLatency {
        E2eLatency {
            half: (window / 2).max(Duration::from_millis(1)),
            current: Half::default(),
            previous: Half::default(),
            rotated_at: now,
        }
    }

    fn rotate(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.rotated_at);
        if elapsed < self.half {
            return;
        }
        if elapsed >= self.half * 2 {
            self.previous = Half::default();
        } else {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current = Half::default();
        self.rotated_at = now;
    }

    pub fn record(&mut self, now: Instant, latency_ns: i64) {
        self.rotate(now);
        self.current.record(latency_ns.max(0) as f64);
    }

    /// Samples in the window and how many latencies they stand for.
    pub fn window(&mut self, now: Instant) -> (Vec<f64>, u64) {
        self.rotate(now);
        let mut v = self.previous.samples.clone();
        v.extend_from_slice(&self.current.samples);
        (v, self.previous.seen + self.current.seen)
    }
}

/// The value at quantile `q` of `samples` (sorted in place); 0 when empty.
pub fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = (q * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_small_window_are_exact() {
        let now = Instant::now();
        let mut l = E2eLatency::new(Duration::from_secs(600), now);
        for v in 1..=100 {
            l.record(now, v);
        }
        let (mut s, n) = l.window(now);
        assert_eq!(n, 100);
        assert_eq!(quantile(&mut s, 0.99), 99.0);
        assert_eq!(quantile(&mut s, 1.0), 100.0);
        assert_eq!(quantile(&mut s, 0.5), 50.0);
    }

    #[test]
    fn window_rotates_out_old_samples() {
        let now = Instant::now();
        let mut l = E2eLatency::new(Duration::from_secs(10), now);
        l.record(now, 5);
        assert_eq!(l.window(now + Duration::from_secs(6)).1, 1);
        assert_eq!(l.window(now + Duration::from_secs(9)).1, 1);
        // Older than the whole window.
        assert_eq!(l.window(now + Duration::from_secs(12)).1, 0);
    }

    #[test]
    fn memory_is_bounded() {
        let now = Instant::now();
        let mut l = E2eLatency::new(Duration::from_secs(600), now);
        for v in 0..100_000 {
            l.record(now, v);
        }
        let (s, n) = l.window(now);
        assert_eq!(n, 100_000);
        assert_eq!(s.len(), RESERVOIR);
    }
}
