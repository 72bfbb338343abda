//! Built-in history for the UI's charts: the cluster's per-topic and per-channel figures,
//! sampled every `--history-interval` and kept for `--history-retention` in compact ring
//! buffers. Recording takes the time (Unix milliseconds) as an argument, so tests drive it
//! without waiting; rates use the real time between samples, not whole seconds.
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// One sample of a topic or channel, summed over the nodes that have it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub depth: i64,
    pub in_flight_count: i64,
    pub deferred_count: i64,
    pub requeue_count: i64,
    pub timeout_count: i64,
    pub message_count: i64,
    pub clients: i64,
}

/// The cluster at one instant: figures per topic and per `(topic, channel)`, with merged e2e
/// percentiles as `(quantile, nanoseconds)`.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub topics: HashMap<String, Entry>,
    pub channels: HashMap<(String, String), Entry>,
}

/// Figures with merged e2e percentiles as `(quantile, nanoseconds)`.
pub type Entry = (Figures, Vec<(f64, f64)>);

/// A stored point: 36 bytes, figures as f32 (charts need no more precision), time in Unix
/// milliseconds.
#[derive(Debug, Clone, Copy)]
struct Point {
    ts_ms: i64,
    depth: f32,
    in_flight: f32,
    deferred: f32,
    requeue: f32,
    timeout: f32,
    clients: f32,
    /// Messages per second since the previous sample; NaN when unknown.
    rate: f32,
}

#[derive(Debug)]
struct Series {
    points: VecDeque<Point>,
    /// Message counts are kept exactly for the last point only, to compute the next rate.
    last: Option<(i64, i64)>,
    quantiles: Vec<f64>,
    /// Parallel to `points` when the node reports percentiles.
    e2e: VecDeque<Vec<f32>>,
    counts: VecDeque<f64>,
}

impl Series {
    fn new() -> Series {
        Series {
            points: VecDeque::new(),
            last: None,
            quantiles: Vec::new(),
            e2e: VecDeque::new(),
            counts: VecDeque::new(),
        }
    }

    fn push(&mut self, now: i64, f: &Figures, e2e: &[(f64, f64)], max_gap: i64) {
        let rate = match self.last {
            Some((t, c)) if now > t && now - t <= max_gap && f.message_count >= c => {
                (f.message_count - c) as f32 * 1000.0 / (now - t) as f32
            }
            _ => f32::NAN,
        };
        self.last = Some((f.message_count, now)).map(|(c, t)| (t, c));
        let quantiles: Vec<f64> = e2e.iter().map(|(q, _)| *q).collect();
        if quantiles != self.quantiles {
            // Percentile settings changed: older e2e points no longer line up.
            self.quantiles = quantiles;
            self.e2e.iter_mut().for_each(Vec::clear);
        }
        self.points.push_back(Point {
            ts_ms: now,
            depth: f.depth as f32,
            in_flight: f.in_flight_count as f32,
            deferred: f.deferred_count as f32,
            requeue: f.requeue_count as f32,
            timeout: f.timeout_count as f32,
            clients: f.clients as f32,
            rate,
        });
        self.counts.push_back(f.message_count as f64);
        self.e2e
            .push_back(e2e.iter().map(|(_, v)| *v as f32).collect());
    }

    fn trim(&mut self, oldest: i64) {
        while let Some(p) = self.points.front() {
            if p.ts_ms >= oldest {
                break;
            }
            self.points.pop_front();
            self.counts.pop_front();
            self.e2e.pop_front();
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    topics: HashMap<String, Series>,
    channels: HashMap<(String, String), Series>,
}

/// The history store shared by the sampler and the HTTP handlers.
#[derive(Debug)]
pub struct History {
    interval: Duration,
    retention: Duration,
    inner: Mutex<Inner>,
}

impl History {
    pub fn new(interval: Duration, retention: Duration) -> History {
        History {
            interval,
            retention,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }

    /// Adds a snapshot taken at `now` (Unix milliseconds) and forgets what is older than the
    /// retention; series absent from the snapshot simply get no point. No rate is given across
    /// a gap of more than three intervals (a missed sample or two is tolerated).
    pub fn record(&self, now: i64, snapshot: &Snapshot) {
        let interval = i64::try_from(self.interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let max_gap = interval.saturating_mul(3);
        let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let oldest = now.saturating_sub(retention);
        let mut inner = self.inner.lock();
        for (name, (f, e2e)) in &snapshot.topics {
            inner
                .topics
                .entry(name.clone())
                .or_insert_with(Series::new)
                .push(now, f, e2e, max_gap);
        }
        for (key, (f, e2e)) in &snapshot.channels {
            inner
                .channels
                .entry(key.clone())
                .or_insert_with(Series::new)
                .push(now, f, e2e, max_gap);
        }
        inner.topics.retain(|_, s| {
            s.trim(oldest);
            !s.points.is_empty()
        });
        inner.channels.retain(|_, s| {
            s.trim(oldest);
            !s.points.is_empty()
        });
    }

    /// The samples of a topic (or one of its channels), oldest first.
    pub fn series(&self, topic: &str, channel: Option<&str>) -> HistoryAnswer {
        let inner = self.inner.lock();
        let series = match channel {
            None => inner.topics.get(topic),
            Some(c) => inner.channels.get(&(topic.to_string(), c.to_string())),
        };
        let samples = series
            .map(|s| {
                s.points
                    .iter()
                    .zip(&s.counts)
                    .zip(&s.e2e)
                    .map(|((p, count), e2e)| Sample {
                        ts_ms: p.ts_ms,
                        depth: p.depth,
                        in_flight_count: p.in_flight,
                        deferred_count: p.deferred,
                        message_count: *count,
                        rate: (!p.rate.is_nan()).then_some(p.rate),
                        requeue_count: p.requeue,
                        timeout_count: p.timeout,
                        clients: p.clients,
                        e2e: s.quantiles.iter().zip(e2e).map(|(q, v)| (*q, *v)).collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        HistoryAnswer {
            interval: if self.enabled() {
                self.interval.as_secs_f64()
            } else {
                0.0
            },
            retention: self.retention.as_secs(),
            samples,
            message: String::new(),
        }
    }

    /// Number of series held (topics plus channels).
    pub fn len(&self) -> usize {
        let inner = self.inner.lock();
        inner.topics.len() + inner.channels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `GET /api/history/...`
#[derive(Debug, Serialize)]
pub struct HistoryAnswer {
    pub interval: f64,
    pub retention: u64,
    pub samples: Vec<Sample>,
    pub message: String,
}

#[derive(Debug)]
pub struct Sample {
    pub ts_ms: i64,
    pub depth: f32,
    pub in_flight_count: f32,
    pub deferred_count: f32,
    pub message_count: f64,
    pub rate: Option<f32>,
    pub requeue_count: f32,
    pub timeout_count: f32,
    pub clients: f32,
    pub e2e: Vec<(f64, f32)>,
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Q {
            quantile: f64,
            value: f64,
        }
        // Rates are rounded to what a chart can show; the rest are whole numbers.
        let rate = self.rate.map(|r| (f64::from(r) * 1000.0).round() / 1000.0);
        let mut st = s.serialize_struct("Sample", 11)?;
        // Seconds, with the milliseconds as a fraction.
        st.serialize_field("ts", &(self.ts_ms as f64 / 1000.0))?;
        st.serialize_field("depth", &(self.depth as i64))?;
        st.serialize_field("in_flight_count", &(self.in_flight_count as i64))?;
        st.serialize_field("deferred_count", &(self.deferred_count as i64))?;
        st.serialize_field("message_count", &(self.message_count as i64))?;
        st.serialize_field("rate", &rate)?;
        st.serialize_field("requeue_count", &(self.requeue_count as i64))?;
        st.serialize_field("timeout_count", &(self.timeout_count as i64))?;
        st.serialize_field("clients", &(self.clients as i64))?;
        let e2e: Vec<Q> = self
            .e2e
            .iter()
            .map(|(q, v)| Q {
                quantile: *q,
                value: f64::from(*v).round(),
            })
            .collect();
        st.serialize_field("e2e", &e2e)?;
        st.end()
    }
}

/// Builds a snapshot from merged node stats (one full `/stats` per node, without clients).
pub fn snapshot_of(stats: &crate::cluster::NodeStats) -> Snapshot {
    let arena = &stats.arena;
    let mut snap = Snapshot::default();
    let mut topic_e2e: HashMap<String, crate::stats::E2e> = HashMap::new();
    for id in &stats.topics {
        let Some(t) = arena.topic(*id) else { continue };
        let entry = snap.topics.entry(t.topic_name.clone()).or_default();
        entry.0.depth += t.depth;
        entry.0.message_count += t.message_count;
        for c in t
            .channels
            .iter()
            .flatten()
            .filter_map(|c| arena.channel(*c))
        {
            entry.0.in_flight_count += c.in_flight_count;
            entry.0.deferred_count += c.deferred_count;
            entry.0.requeue_count += c.requeue_count;
            entry.0.timeout_count += c.timeout_count;
            entry.0.clients += c.client_count;
        }
        if let Some(e) = &t.e2e {
            topic_e2e.entry(t.topic_name.clone()).or_default().add(e);
        }
    }
    for (name, e) in topic_e2e {
        if let Some(entry) = snap.topics.get_mut(&name) {
            entry.1 = percentiles(&e);
        }
    }
    for agg in stats.channels.values() {
        let Some(c) = arena.channel(*agg) else {
            continue;
        };
        snap.channels.insert(
            (c.topic_name.clone(), c.channel_name.clone()),
            (
                Figures {
                    depth: c.depth,
                    in_flight_count: c.in_flight_count,
                    deferred_count: c.deferred_count,
                    requeue_count: c.requeue_count,
                    timeout_count: c.timeout_count,
                    message_count: c.message_count,
                    clients: c.client_count,
                },
                c.e2e.as_ref().map(percentiles).unwrap_or_default(),
            ),
        );
    }
    snap
}

fn percentiles(e: &crate::stats::E2e) -> Vec<(f64, f64)> {
    e.percentiles
        .iter()
        .flatten()
        .map(|p| (p.quantile, p.average))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(depth: i64, count: i64) -> Snapshot {
        let mut s = Snapshot::default();
        let f = Figures {
            depth,
            message_count: count,
            ..Figures::default()
        };
        s.topics.insert("t".into(), (f, vec![(0.99, 1500.0)]));
        s.channels.insert(("t".into(), "c".into()), (f, vec![]));
        s
    }

    #[test]
    fn rates_come_from_consecutive_samples() {
        let h = History::new(Duration::from_secs(10), Duration::from_secs(3600));
        h.record(1_000_000, &snap(5, 100));
        h.record(1_010_000, &snap(7, 600));
        h.record(1_100_000, &snap(9, 700)); // a gap: no rate across it
        let a = h.series("t", None);
        assert_eq!(a.samples.len(), 3);
        assert_eq!(a.samples[0].rate, None);
        assert_eq!(a.samples[1].rate, Some(50.0));
        assert_eq!(a.samples[2].rate, None);
        assert_eq!(a.samples[1].ts_ms, 1_010_000);
        assert_eq!(a.samples[0].e2e, vec![(0.99, 1500.0)]);
        let json = String::from_utf8(nsq_http::json::to_vec(&a).unwrap()).unwrap();
        assert!(json.starts_with(r#"{"interval":10,"retention":3600,"samples":[{"ts":1000,"depth":5,"in_flight_count":0,"deferred_count":0,"message_count":100,"rate":null,"#), "{json}");
        assert_eq!(h.series("t", Some("c")).samples.len(), 3);
        assert!(h.series("nope", None).samples.is_empty());
    }

    #[test]
    fn retention_drops_old_points_and_dead_series() {
        let h = History::new(Duration::from_secs(10), Duration::from_secs(60));
        for i in 0..20 {
            h.record(1_000_000 + i * 10_000, &snap(i, i * 10));
        }
        let a = h.series("t", None);
        assert_eq!(a.samples.len(), 7);
        assert_eq!(a.samples[0].ts_ms, 1_130_000);
        h.record(2_000_000, &Snapshot::default());
        assert!(h.is_empty());
    }

    #[test]
    fn rates_use_milliseconds() {
        let h = History::new(Duration::from_secs(1), Duration::from_secs(60));
        h.record(10_000, &snap(0, 0));
        h.record(10_400, &snap(0, 20)); // same second, 0.4 s later
        h.record(12_900, &snap(0, 70)); // a late tick, within three intervals
        let a = h.series("t", None);
        assert_eq!(a.samples[1].rate, Some(50.0));
        assert_eq!(a.samples[2].rate, Some(20.0));
        let json = String::from_utf8(nsq_http::json::to_vec(&a).unwrap()).unwrap();
        assert!(json.contains(r#""ts":10.4,"#), "{json}");
    }

    #[test]
    fn disabled_history_says_so() {
        let h = History::new(Duration::ZERO, Duration::from_secs(60));
        assert_eq!(h.series("t", None).interval, 0.0);
    }
}
