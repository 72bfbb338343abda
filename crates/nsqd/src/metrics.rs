//! `/metrics`: nsqd's live state in the Prometheus text format, read at scrape time, plus the
//! few counters that exist only for it (connections accepted, the per-channel end-to-end
//! latency histogram).
//!
//! A scrape walks the topics and channels once, copying numbers under each lock in turn (never
//! more than one channel and its topic at a time), and encodes the text only after every lock is
//! released. Nothing is registered per topic or channel, so a deleted one simply stops appearing.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use nsq_daemon::metrics::prometheus_client;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use nsq_protocol::ConnState;

use crate::channel::Channel;
use crate::daemon::Nsqd;
use crate::topic::Topic;

/// Upper bounds (inclusive, in seconds) of the end-to-end latency buckets, publish to FIN:
/// from a consumer on the same host to one that works on a message for a minute.
pub const E2E_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0, 60.0,
];

/// [`E2E_BUCKETS`] in nanoseconds, so recording needs no floating point.
const E2E_BUCKETS_NS: [u64; 13] = [
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
    5_000_000_000,
    10_000_000_000,
    60_000_000_000,
];

/// A channel's publish-to-FIN latencies since it was created. Lives under the channel lock,
/// which FIN already holds, so recording is a bucket search and two additions, no atomics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct E2eHistogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: [u64; E2E_BUCKETS_NS.len() + 1],
    sum_ns: u64,
}

impl E2eHistogram {
    /// Records one latency; a negative one (the publisher's clock ahead of ours after a
    /// restart, say) counts as zero.
    #[inline]
    pub fn record(&mut self, latency_ns: i64) {
        let ns = latency_ns.max(0) as u64;
        let i = E2E_BUCKETS_NS.partition_point(|&b| b < ns);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum_ns = self.sum_ns.wrapping_add(ns);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn buckets(&self) -> [(f64, u64); E2E_BUCKETS.len()] {
        let mut out = [(0.0, 0); E2E_BUCKETS.len()];
        for ((o, le), n) in out.iter_mut().zip(E2E_BUCKETS).zip(self.counts) {
            *o = (le, n);
        }
        out
    }
}

/// The figures `/metrics` keeps between scrapes.
#[derive(Debug)]
pub struct Metrics {
    /// Build info and process figures (whose start time is taken when this is built).
    base: Registry,
    /// TCP (and unix socket) connections accepted since start.
    pub connections: AtomicU64,
    /// Size of the last page, to allocate the next one at once.
    last_len: AtomicUsize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            base: nsq_daemon::metrics::registry("nsqd"),
            connections: AtomicU64::new(0),
            last_len: AtomicUsize::new(0),
        }
    }

    pub fn connection_accepted(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }
}

/// The whole `/metrics` page.
pub fn render(nsqd: &Arc<Nsqd>) -> String {
    let m = &nsqd.metrics;
    let mut out = String::with_capacity(m.last_len.load(Ordering::Relaxed) + 4096);
    // Writing into a String cannot fail; see `nsq_daemon::metrics::render`.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &m.base);
    let mut live = Registry::default();
    live.register_collector(Box::new(NsqdCollector {
        nsqd: Arc::clone(nsqd),
    }));
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &live);
    m.last_len.store(out.len(), Ordering::Relaxed);
    out
}

/// Reads nsqd's state when encoded.
struct NsqdCollector {
    nsqd: Arc<Nsqd>,
}

impl std::fmt::Debug for NsqdCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NsqdCollector")
    }
}

struct TopicRow {
    topic: Arc<Topic>,
    depth: u64,
    messages: u64,
    bytes: u64,
    paused: bool,
    /// (records skipped, bytes cut) for durable topics.
    damage: Option<(u64, u64)>,
}

struct ChannelRow {
    /// Index into the topic rows.
    topic: usize,
    channel: Arc<Channel>,
    depth: u64,
    in_flight: u64,
    deferred: u64,
    messages: u64,
    requeued: u64,
    timed_out: u64,
    clients: u64,
    ready: u64,
    paused: bool,
    e2e: E2eHistogram,
    damage: Option<(u64, u64)>,
}

/// Everything a scrape reports, copied out of the live state.
struct Snapshot {
    healthy: bool,
    topics: Vec<TopicRow>,
    channels: Vec<ChannelRow>,
    consumers: u64,
    producers: u64,
    connections: u64,
    store: nsq_store::io_stats::IoSnapshot,
}

fn damage_of(h: &nsq_store::Health) -> (u64, u64) {
    let s = h.snapshot();
    (s.records_skipped, s.bytes_cut)
}

impl Snapshot {
    fn take(nsqd: &Nsqd) -> Snapshot {
        let topics = nsqd.topics();
        let mut topic_rows = Vec::with_capacity(topics.len());
        let mut channel_rows = Vec::new();
        let mut channels: Vec<Arc<Channel>> = Vec::new();
        for topic in topics {
            let index = topic_rows.len();
            let (depth, messages, bytes, paused) = {
                let ti = topic.inner.lock();
                channels.extend(ti.channels.values().cloned());
                (
                    ti.state.depth(),
                    ti.state.message_count(),
                    ti.state.message_bytes(),
                    ti.state.paused(),
                )
            };
            let row = TopicRow {
                depth,
                messages,
                bytes,
                paused,
                damage: topic.store.as_ref().map(|s| damage_of(&s.health)),
                topic,
            };
            for channel in channels.drain(..) {
                // Lock order: channel, then topic.
                let ci = channel.inner.lock();
                let (depth, messages) = {
                    let ti = row.topic.inner.lock();
                    (
                        ci.state.depth(&ti.state),
                        ti.state.channel_received(channel.key),
                    )
                };
                let ready: i64 = ci
                    .clients
                    .values()
                    .map(|c| c.ready_count.load(Ordering::Relaxed).max(0))
                    .sum();
                let r = ChannelRow {
                    topic: index,
                    depth,
                    in_flight: ci.state.in_flight_count() as u64,
                    deferred: ci.state.deferred_count() as u64,
                    messages,
                    requeued: ci.state.requeue_count(),
                    timed_out: ci.state.timeout_count(),
                    clients: ci.clients.len() as u64,
                    ready: ready as u64,
                    paused: ci.state.paused(),
                    e2e: ci.e2e_hist.clone(),
                    damage: channel.health.as_deref().map(damage_of),
                    channel: Arc::clone(&channel),
                };
                drop(ci);
                channel_rows.push(r);
            }
            topic_rows.push(row);
        }
        let (mut consumers, mut producers) = (0, 0);
        for c in nsqd.clients() {
            if c.state.load(Ordering::Relaxed) == ConnState::Subscribed as u8 {
                consumers += 1;
            } else if c.is_producer() {
                producers += 1;
            }
        }
        Snapshot {
            healthy: nsqd.health().is_none(),
            topics: topic_rows,
            channels: channel_rows,
            consumers,
            producers,
            connections: nsqd.metrics.connections.load(Ordering::Relaxed),
            store: nsq_store::io_stats::snapshot(),
        }
    }

    fn topic_name(&self, r: &ChannelRow) -> &str {
        self.topics
            .get(r.topic)
            .map(|t| t.topic.name.as_str())
            .unwrap_or("")
    }
}

type Labels<'a> = [(&'static str, &'a str); 2];

fn channel_labels<'a>(s: &'a Snapshot, r: &'a ChannelRow) -> Labels<'a> {
    [
        ("topic", s.topic_name(r)),
        ("channel", r.channel.name.as_str()),
    ]
}

fn topic_labels(r: &TopicRow) -> [(&'static str, &str); 1] {
    [("topic", r.topic.name.as_str())]
}

/// What a metric family is called and how it is described.
struct Desc<'a> {
    name: &'a str,
    help: &'a str,
    unit: Option<Unit>,
    kind: MetricType,
}

fn gauge<'a>(name: &'a str, help: &'a str) -> Desc<'a> {
    Desc {
        name,
        help,
        unit: None,
        kind: MetricType::Gauge,
    }
}

fn counter<'a>(name: &'a str, help: &'a str) -> Desc<'a> {
    Desc {
        name,
        help,
        unit: None,
        kind: MetricType::Counter,
    }
}

fn bytes_counter<'a>(name: &'a str, help: &'a str) -> Desc<'a> {
    Desc {
        unit: Some(Unit::Bytes),
        ..counter(name, help)
    }
}

/// One metric family, one sample per row.
fn family<'r, R: 'r, L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    d: Desc,
    rows: impl IntoIterator<Item = &'r R>,
    labels: impl Fn(&'r R) -> L,
    value: impl Fn(&R) -> u64,
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(d.name, d.help, d.unit.as_ref(), d.kind)?;
    for r in rows {
        let l = labels(r);
        let mut s = m.encode_family(&l)?;
        let v = value(r);
        match d.kind {
            MetricType::Counter => s.encode_counter::<NoLabelSet, _, u64>(&v, None)?,
            _ => s.encode_gauge(&v)?,
        }
    }
    Ok(())
}

/// A family with a single unlabelled sample.
fn single(enc: &mut DescriptorEncoder, d: Desc, v: u64) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(d.name, d.help, d.unit.as_ref(), d.kind)?;
    match d.kind {
        MetricType::Counter => m.encode_counter::<NoLabelSet, _, u64>(&v, None),
        _ => m.encode_gauge(&v),
    }
}

fn flag(b: bool) -> u64 {
    u64::from(b)
}

impl Collector for NsqdCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = Snapshot::take(&self.nsqd);
        encode_snapshot(&s, &mut enc)
    }
}

fn encode_snapshot(s: &Snapshot, enc: &mut DescriptorEncoder) -> std::fmt::Result {
    single(
        enc,
        gauge(
            "nsq_healthy",
            "Whether nsqd is healthy (1) or its last write to the store failed (0), as /ping reports.",
        ),
        flag(s.healthy),
    )?;
    single(enc, gauge("nsq_topics", "Topics."), s.topics.len() as u64)?;
    single(
        enc,
        gauge("nsq_channels", "Channels, all topics together."),
        s.channels.len() as u64,
    )?;

    let t = &s.topics;
    family(
        enc,
        gauge(
            "nsq_topic_depth",
            "Messages the topic holds that no channel has yet (memory and disk).",
        ),
        t,
        topic_labels,
        |r| r.depth,
    )?;
    family(
        enc,
        gauge(
            "nsq_topic_backend_depth",
            "The part of the topic's depth NSQ would hold in its disk queue (reported as /stats does).",
        ),
        t,
        topic_labels,
        |_| 0u64,
    )?;
    family(
        enc,
        counter("nsq_topic_messages", "Messages published to the topic."),
        t,
        topic_labels,
        |r| r.messages,
    )?;
    family(
        enc,
        bytes_counter(
            "nsq_topic_message",
            "Bytes of message bodies published to the topic.",
        ),
        t,
        topic_labels,
        |r| r.bytes,
    )?;
    family(
        enc,
        gauge("nsq_topic_paused", "Whether the topic is paused."),
        t,
        topic_labels,
        |r| flag(r.paused),
    )?;

    let c = &s.channels;
    let cl = |r| channel_labels(s, r);
    family(
        enc,
        gauge(
            "nsq_channel_depth",
            "Messages queued in the channel (requeued and not yet delivered; memory and disk).",
        ),
        c,
        cl,
        |r| r.depth,
    )?;
    family(
        enc,
        gauge(
            "nsq_channel_backend_depth",
            "The part of the channel's depth NSQ would hold in its disk queue (reported as /stats does).",
        ),
        c,
        cl,
        |_| 0u64,
    )?;
    family(
        enc,
        gauge(
            "nsq_channel_in_flight",
            "Messages sent to consumers and not yet finished, requeued or timed out.",
        ),
        c,
        cl,
        |r| r.in_flight,
    )?;
    family(
        enc,
        gauge(
            "nsq_channel_deferred",
            "Messages held until their delay (DPUB, REQ with a timeout) passes.",
        ),
        c,
        cl,
        |r| r.deferred,
    )?;
    family(
        enc,
        counter(
            "nsq_channel_messages",
            "Messages the channel received from its topic.",
        ),
        c,
        cl,
        |r| r.messages,
    )?;
    family(
        enc,
        counter(
            "nsq_channel_requeued",
            "Messages requeued by consumers (REQ).",
        ),
        c,
        cl,
        |r| r.requeued,
    )?;
    family(
        enc,
        counter(
            "nsq_channel_timed_out",
            "Messages whose consumer did not answer within the message timeout.",
        ),
        c,
        cl,
        |r| r.timed_out,
    )?;
    family(
        enc,
        gauge(
            "nsq_channel_clients",
            "Consumers subscribed to the channel.",
        ),
        c,
        cl,
        |r| r.clients,
    )?;
    family(
        enc,
        gauge(
            "nsq_channel_ready",
            "Sum of the RDY counts of the channel's consumers.",
        ),
        c,
        cl,
        |r| r.ready,
    )?;
    family(
        enc,
        gauge("nsq_channel_paused", "Whether the channel is paused."),
        c,
        cl,
        |r| flag(r.paused),
    )?;
    {
        let mut m = enc.encode_descriptor(
            "nsq_channel_e2e_processing_latency",
            "Time from publish to FIN of the channel's finished messages.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        // A channel's histogram appears once it has finished a message, as a labelled
        // histogram does in Prometheus's own client libraries: idle channels (most of them in a
        // large nsqd) would otherwise make up more than half of the page.
        for r in c.iter().filter(|r| r.e2e.count() > 0) {
            let l = cl(r);
            let mut f = m.encode_family(&l)?;
            f.encode_histogram::<NoLabelSet>(
                r.e2e.sum_ns as f64 / 1e9,
                r.e2e.count(),
                &r.e2e.buckets(),
                None,
            )?;
        }
    }

    {
        let mut m = enc.encode_descriptor(
            "nsq_clients",
            "Connected TCP clients by role: subscribed consumers, and producers (clients that published).",
            None,
            MetricType::Gauge,
        )?;
        for (role, n) in [("consumer", s.consumers), ("producer", s.producers)] {
            m.encode_family(&[("type", role)])?.encode_gauge(&n)?;
        }
    }
    single(
        enc,
        counter(
            "nsq_client_connections",
            "TCP connections accepted since start.",
        ),
        s.connections,
    )?;

    let st = &s.store;
    single(
        enc,
        counter(
            "nsq_store_writes",
            "Writes to the store's files (log segments, journals, checkpoints, topic.state).",
        ),
        st.writes,
    )?;
    single(
        enc,
        bytes_counter("nsq_store_written", "Bytes written to the store's files."),
        st.written_bytes,
    )?;
    single(
        enc,
        counter(
            "nsq_store_fsyncs",
            "fsyncs of the store's files and directories.",
        ),
        st.fsyncs,
    )?;
    {
        let mut m = enc.encode_descriptor(
            "nsq_store_fsync_duration",
            "How long the store's fsyncs took.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        let buckets: Vec<(f64, u64)> = nsq_store::io_stats::FSYNC_BUCKETS
            .iter()
            .copied()
            .zip(st.fsync_buckets.iter().copied())
            .collect();
        let count = st.fsync_buckets.iter().sum();
        m.encode_histogram::<NoLabelSet>(st.fsync_seconds, count, &buckets, None)?;
    }

    // Damage: the topic's own files carry channel "".
    let damaged = || {
        let topics = s.topics.iter().filter_map(|r| {
            r.damage
                .map(|d| ([("topic", r.topic.name.as_str()), ("channel", "")], d))
        });
        let channels = s
            .channels
            .iter()
            .filter_map(|r| r.damage.map(|d| (cl(r), d)));
        topics.chain(channels)
    };
    {
        let mut m = enc.encode_descriptor(
            "nsq_store_damaged_records",
            "Records (messages, journal events) found damaged in the store's files and skipped.",
            None,
            MetricType::Counter,
        )?;
        for (l, (records, _)) in damaged() {
            m.encode_family(&l)?
                .encode_counter::<NoLabelSet, _, u64>(&records, None)?;
        }
    }
    {
        let mut m = enc.encode_descriptor(
            "nsq_store_cut",
            "Bytes of the store's files cut off (interrupted writes) or passed over as damaged.",
            Some(&Unit::Bytes),
            MetricType::Counter,
        )?;
        for (l, (_, bytes)) in damaged() {
            m.encode_family(&l)?
                .encode_counter::<NoLabelSet, _, u64>(&bytes, None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2e_buckets_agree_with_the_seconds_and_are_inclusive() {
        for (ns, s) in E2E_BUCKETS_NS.iter().zip(E2E_BUCKETS) {
            assert_eq!(*ns, (s * 1e9).round() as u64);
        }
        let mut h = E2eHistogram::default();
        h.record(-5);
        h.record(1_000_000);
        h.record(1_000_001);
        h.record(61_000_000_000);
        assert_eq!(h.count(), 4);
        assert_eq!(h.counts[0], 2, "0 and exactly 1 ms");
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[E2E_BUCKETS.len()], 1, "+Inf");
        assert_eq!(h.sum_ns, 1_000_000 + 1_000_001 + 61_000_000_000);
        let b = h.buckets();
        assert_eq!(b[0], (0.001, 2));
        assert_eq!(b[E2E_BUCKETS.len() - 1], (60.0, 0));
    }
}
