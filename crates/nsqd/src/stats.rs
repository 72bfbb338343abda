//! `/stats`: a snapshot of topics, channels and clients in NSQ's JSON schema (key order and
//! omission rules included) and its human-readable text form.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;

use crate::channel::Channel;
use crate::client::ClientShared;
use crate::daemon::Nsqd;
use crate::topic::Topic;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentile {
    pub quantile: f64,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub percentiles: Option<Vec<Percentile>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PubCount {
    pub topic: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientStats {
    pub client_id: String,
    pub hostname: String,
    pub version: &'static str,
    pub remote_address: String,
    pub state: i64,
    pub ready_count: i64,
    pub in_flight_count: i64,
    pub message_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub zone_local_msg_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub region_local_msg_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub global_msg_count: u64,
    pub finish_count: u64,
    pub requeue_count: u64,
    pub connect_ts: i64,
    pub sample_rate: i64,
    pub deflate: bool,
    pub snappy: bool,
    pub user_agent: String,
    #[serde(skip_serializing_if = "is_false")]
    pub authed: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_identity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_identity_url: String,
    pub topology_zone: String,
    pub topology_region: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pub_counts: Vec<PubCount>,
    pub tls: bool,
    pub tls_cipher_suite: String,
    pub tls_version: String,
    pub tls_negotiated_protocol: String,
    pub tls_negotiated_protocol_is_mutual: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelStats {
    pub channel_name: String,
    pub depth: u64,
    pub backend_depth: u64,
    pub in_flight_count: u64,
    pub deferred_count: u64,
    pub message_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub zone_local_msg_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub region_local_msg_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub global_msg_count: u64,
    pub requeue_count: u64,
    pub timeout_count: u64,
    pub client_count: u64,
    pub clients: Option<Vec<ClientStats>>,
    pub paused: bool,
    pub e2e_processing_latency: Latency,
    /// Not in NSQ's schema (clients ignore unknown keys); durable channels only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_health: Option<StoreHealth>,
}

/// What the store found wrong with a topic's or channel's files since start-up.
#[derive(Debug, Clone, Serialize)]
pub struct StoreHealth {
    pub records_skipped: u64,
    pub bytes_cut: u64,
    pub last_error: String,
}

impl StoreHealth {
    fn of(h: &nsq_store::Health) -> StoreHealth {
        let s = h.snapshot();
        StoreHealth {
            records_skipped: s.records_skipped,
            bytes_cut: s.bytes_cut,
            last_error: s.last_error.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicStats {
    pub topic_name: String,
    pub channels: Vec<ChannelStats>,
    pub depth: u64,
    pub backend_depth: u64,
    pub message_count: u64,
    pub message_bytes: u64,
    pub paused: bool,
    pub e2e_processing_latency: Latency,
    /// Not in NSQ's schema (clients ignore unknown keys); durable topics only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_health: Option<StoreHealth>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MemStats {
    pub heap_objects: u64,
    pub heap_idle_bytes: u64,
    pub heap_in_use_bytes: u64,
    pub heap_released_bytes: u64,
    pub gc_pause_usec_100: u64,
    pub gc_pause_usec_99: u64,
    pub gc_pause_usec_95: u64,
    pub next_gc_bytes: u64,
    pub gc_total_runs: u64,
}

impl MemStats {
    /// The gauges under Go's names, in the order NSQ prints and pushes them (`gc_total_runs`,
    /// a counter, is apart).
    pub fn gauges(&self) -> [(&'static str, u64); 8] {
        [
            ("heap_objects", self.heap_objects),
            ("heap_idle_bytes", self.heap_idle_bytes),
            ("heap_in_use_bytes", self.heap_in_use_bytes),
            ("heap_released_bytes", self.heap_released_bytes),
            ("gc_pause_usec_100", self.gc_pause_usec_100),
            ("gc_pause_usec_99", self.gc_pause_usec_99),
            ("gc_pause_usec_95", self.gc_pause_usec_95),
            ("next_gc_bytes", self.next_gc_bytes),
        ]
    }

    /// There is no garbage collector; the resident set size is reported as heap in use.
    pub fn read() -> MemStats {
        let rss = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .unwrap_or(0);
        MemStats {
            heap_in_use_bytes: rss * 1024,
            ..MemStats::default()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub version: &'static str,
    pub health: String,
    pub start_time: i64,
    pub topics: Option<Vec<TopicStats>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemStats>,
    pub producers: Option<Vec<ClientStats>>,
}

#[derive(Debug, Clone)]
pub struct StatsFilter {
    pub topic: Option<String>,
    pub channel: Option<String>,
    pub include_clients: bool,
    pub include_mem: bool,
}

fn latency(nsqd: &Nsqd, samples: &mut [f64], count: u64) -> Latency {
    let ps = &nsqd.opts.e2e_processing_latency_percentiles;
    Latency {
        count,
        percentiles: (!ps.is_empty()).then(|| {
            ps.iter()
                .map(|&q| Percentile {
                    quantile: q,
                    value: crate::latency::quantile(samples, q),
                })
                .collect()
        }),
    }
}

pub fn client_stats(c: &ClientShared, topic_filter: Option<&str>) -> ClientStats {
    let id = c.identity();
    let pub_counts = c
        .pub_counts
        .lock()
        .iter()
        .filter(|(t, _)| topic_filter.is_none_or(|f| f == t.as_str()))
        .map(|(t, n)| PubCount {
            topic: t.clone(),
            count: *n,
        })
        .collect();
    ClientStats {
        client_id: id.client_id,
        hostname: id.hostname,
        version: "V2",
        remote_address: c.remote_addr.clone(),
        state: c.state.load(Ordering::Relaxed) as i64,
        ready_count: c.ready_count.load(Ordering::Relaxed),
        in_flight_count: c.in_flight.load(Ordering::Relaxed).max(0),
        message_count: c.message_count.load(Ordering::Relaxed),
        zone_local_msg_count: 0,
        region_local_msg_count: 0,
        global_msg_count: 0,
        finish_count: c.finish_count.load(Ordering::Relaxed),
        requeue_count: c.requeue_count.load(Ordering::Relaxed),
        connect_ts: c.connect_ts,
        sample_rate: id.sample_rate,
        deflate: id.deflate,
        snappy: id.snappy,
        user_agent: id.user_agent,
        authed: id.authed,
        auth_identity: id.auth_identity,
        auth_identity_url: id.auth_identity_url,
        topology_zone: id.topology_zone,
        topology_region: id.topology_region,
        pub_counts,
        tls: id.tls,
        tls_cipher_suite: id.tls_cipher_suite,
        tls_version: id.tls_version,
        tls_negotiated_protocol: id.tls_negotiated_protocol,
        tls_negotiated_protocol_is_mutual: id.tls_negotiated_protocol_is_mutual,
    }
}

/// A channel's stats, plus its latency samples for the topic-level figures.
fn channel_stats(
    nsqd: &Nsqd,
    topic: &Topic,
    c: &Arc<Channel>,
    f: &StatsFilter,
) -> (ChannelStats, Vec<f64>, u64) {
    let mut ci = c.inner.lock();
    let (samples, count) = ci
        .e2e
        .as_mut()
        .map(|e| e.window(std::time::Instant::now()))
        .unwrap_or_default();
    let mut sorted = samples.clone();
    let (depth, received) = {
        let ti = topic.inner.lock();
        (ci.state.depth(&ti.state), ti.state.channel_received(c.key))
    };
    let client_count = ci.clients.len() as u64;
    let clients = f.include_clients.then(|| {
        ci.clients
            .values()
            .map(|cl| client_stats(cl, f.topic.as_deref()))
            .collect()
    });
    let stats = ChannelStats {
        channel_name: c.name.clone(),
        depth,
        backend_depth: 0,
        in_flight_count: ci.state.in_flight_count() as u64,
        deferred_count: ci.state.deferred_count() as u64,
        message_count: received,
        zone_local_msg_count: 0,
        region_local_msg_count: 0,
        global_msg_count: c.global_msg_count.load(Ordering::Relaxed),
        requeue_count: ci.state.requeue_count(),
        timeout_count: ci.state.timeout_count(),
        client_count,
        clients,
        paused: ci.state.paused(),
        e2e_processing_latency: latency(nsqd, &mut sorted, count),
        store_health: c.health.as_deref().map(StoreHealth::of),
    };
    (stats, samples, count)
}

pub fn collect(nsqd: &Nsqd, f: &StatsFilter) -> Stats {
    let mut topics: Vec<Arc<Topic>> = match &f.topic {
        Some(name) => nsqd.topic(name).into_iter().collect(),
        None => nsqd.topics(),
    };
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let unknown_topic = f.topic.is_some() && topics.is_empty();
    let mut out = Vec::with_capacity(topics.len());
    for t in &topics {
        let mut channels = t.channels();
        if let Some(cname) = &f.channel {
            channels.retain(|c| &c.name == cname);
            if channels.is_empty() {
                continue;
            }
        }
        channels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut topic_samples = Vec::new();
        let mut topic_count = 0;
        let channel_stats: Vec<ChannelStats> = channels
            .iter()
            .map(|c| {
                let (s, samples, count) = channel_stats(nsqd, t, c, f);
                topic_samples.extend(samples);
                topic_count += count;
                s
            })
            .collect();
        let (depth, message_count, message_bytes, paused) = {
            let ti = t.inner.lock();
            (
                ti.state.depth(),
                ti.state.message_count(),
                ti.state.message_bytes(),
                ti.state.paused(),
            )
        };
        let has_channels = !channel_stats.is_empty();
        out.push(TopicStats {
            topic_name: t.name.clone(),
            channels: channel_stats,
            depth,
            backend_depth: 0,
            message_count,
            message_bytes,
            paused,
            e2e_processing_latency: if has_channels {
                latency(nsqd, &mut topic_samples, topic_count)
            } else {
                Latency {
                    count: 0,
                    percentiles: None,
                }
            },
            store_health: t.store.as_ref().map(|s| StoreHealth::of(&s.health)),
        });
    }
    let producers = if unknown_topic || !f.include_clients {
        None
    } else {
        let list: Vec<ClientStats> = nsqd
            .clients()
            .iter()
            .filter(|c| c.is_producer())
            .map(|c| client_stats(c, f.topic.as_deref()))
            .collect();
        (!list.is_empty()).then_some(list)
    };
    Stats {
        version: nsq_daemon::VERSION,
        health: nsqd.health_text(),
        start_time: nsqd.start_time,
        topics: if unknown_topic { None } else { Some(out) },
        memory: f.include_mem.then(MemStats::read),
        producers,
    }
}

fn human_ns(v: f64) -> String {
    if v > 1e9 {
        format!("{:.1}s", v / 1e9)
    } else if v > 1e6 {
        format!("{:.1}ms", v / 1e6)
    } else if v > 1e3 {
        format!("{:.1}us", v / 1e3)
    } else {
        format!("{v:.1}ns")
    }
}

fn e2e_text(l: &Latency) -> String {
    l.percentiles
        .as_ref()
        .map(|ps| {
            ps.iter()
                .map(|p| human_ns(p.value))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn since(ts: i64, now: i64) -> String {
    nsq_flags::duration::format_go_duration(
        std::time::Duration::from_secs((now - ts).max(0) as u64),
    )
}

/// A line under a topic or channel whose files had damage (nothing when they had none).
fn store_health_text(o: &mut String, indent: &str, h: Option<&StoreHealth>) {
    use std::fmt::Write;
    let Some(h) = h.filter(|h| h.records_skipped > 0 || !h.last_error.is_empty()) else {
        return;
    };
    let _ = writeln!(
        o,
        "{indent}   store damage: skipped: {} cut: {} last error: {}",
        h.records_skipped, h.bytes_cut, h.last_error
    );
}

/// The text form, for people reading `curl` output.
pub fn render_text(s: &Stats, nsqd: &Nsqd) -> String {
    use std::fmt::Write;
    let now = crate::topic::unix_nanos() / 1_000_000_000;
    let mut o = String::new();
    let _ = writeln!(o, "{}", nsq_daemon::version_line("nsqd"));
    let start = chrono::DateTime::from_timestamp(s.start_time, 0)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_default();
    let _ = writeln!(o, "start_time {start}");
    let _ = writeln!(
        o,
        "uptime {}",
        nsq_flags::duration::format_go_duration(nsqd.started.elapsed())
    );
    let _ = writeln!(o, "\nHealth: {}", s.health);
    if let Some(m) = &s.memory {
        let _ = writeln!(o, "\nMemory:");
        for (k, v) in m
            .gauges()
            .into_iter()
            .chain([("gc_total_runs", m.gc_total_runs)])
        {
            let _ = writeln!(o, "   {k:<25}\t{v}");
        }
    }
    let topics = s.topics.as_deref().unwrap_or_default();
    if topics.is_empty() {
        let _ = writeln!(o, "\nTopics: None");
    } else {
        let _ = write!(o, "\nTopics:");
        for t in topics {
            let prefix = if t.paused { "*P " } else { "   " };
            let _ = writeln!(
                o,
                "\n{prefix}[{:<15}] depth: {:<5} be-depth: {:<5} msgs: {:<8} e2e%: {}",
                t.topic_name,
                t.depth,
                t.backend_depth,
                t.message_count,
                e2e_text(&t.e2e_processing_latency)
            );
            store_health_text(&mut o, "   ", t.store_health.as_ref());
            for c in &t.channels {
                let prefix = if c.paused { "   *P " } else { "      " };
                let _ = writeln!(
                    o,
                    "{prefix}[{:<25}] depth: {:<5} be-depth: {:<5} inflt: {:<4} def: {:<4} re-q: {:<5} timeout: {:<5} msgs: {:<8} e2e%: {}",
                    c.channel_name,
                    c.depth,
                    c.backend_depth,
                    c.in_flight_count,
                    c.deferred_count,
                    c.requeue_count,
                    c.timeout_count,
                    c.message_count,
                    e2e_text(&c.e2e_processing_latency)
                );
                store_health_text(&mut o, "      ", c.store_health.as_ref());
                for cl in c.clients.as_deref().unwrap_or_default() {
                    let port = cl.remote_address.rsplit(':').next().unwrap_or("");
                    let id = format!("{}:{port} {}", cl.hostname, cl.user_agent);
                    let _ = writeln!(
                        o,
                        "        [V2 {id:<21}] state: {} inflt: {:<4} rdy: {:<4} fin: {:<8} re-q: {:<8} msgs: {:<8} connected: {}",
                        cl.state,
                        cl.in_flight_count,
                        cl.ready_count,
                        cl.finish_count,
                        cl.requeue_count,
                        cl.message_count,
                        since(cl.connect_ts, now)
                    );
                }
            }
        }
    }
    match s.producers.as_deref() {
        None | Some([]) => {
            let _ = writeln!(o, "\nProducers: None");
        }
        Some(ps) => {
            let _ = writeln!(o, "\nProducers:");
            for p in ps {
                let port = p.remote_address.rsplit(':').next().unwrap_or("");
                let id = format!("{}:{port} {}", p.hostname, p.user_agent);
                let topics: Vec<String> = p
                    .pub_counts
                    .iter()
                    .map(|c| format!("{}={}", c.topic, c.count))
                    .collect();
                let total: u64 = p.pub_counts.iter().map(|c| c.count).sum();
                let _ = writeln!(
                    o,
                    "   [V2 {id:<21}] msgs: {total:<8} topics: {} connected: {}",
                    topics.join(","),
                    since(p.connect_ts, now)
                );
            }
        }
    }
    o
}
