//! The stats nsqadmin serves: nsqd's `/stats` and nsqlookupd's producer lists decoded, merged
//! across nodes exactly as NSQ 1.3.0's nsqadmin merges them, and encoded with its key sets.
//!
//! The reference merges through shared pointers: the first node's channel objects become the
//! topic-wide aggregates, so they show merged figures wherever they appear (including inside
//! that node's own row). Byte-compatible answers need the same sharing, so stats live in an
//! [`Arena`] and refer to each other by index.
use std::sync::Arc;

use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};

/// nsqd's `/stats?format=json` body, as far as nsqadmin reads it.
#[derive(Debug, Default, Deserialize)]
pub struct RawStats {
    #[serde(default)]
    pub topics: Option<Vec<RawTopic>>,
    /// `OK`, or why the node is unhealthy (read by `/metrics` only).
    #[serde(default)]
    pub health: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawTopic {
    pub topic_name: String,
    pub depth: i64,
    pub backend_depth: i64,
    pub message_count: i64,
    /// Read by `/metrics` only; the UI's answers do not carry it, as in the reference.
    pub message_bytes: i64,
    pub channels: Option<Vec<RawChannel>>,
    pub paused: bool,
    pub e2e_processing_latency: Option<RawE2e>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawChannel {
    pub channel_name: String,
    pub depth: i64,
    pub backend_depth: i64,
    pub in_flight_count: i64,
    pub deferred_count: i64,
    pub requeue_count: i64,
    pub timeout_count: i64,
    pub message_count: i64,
    pub client_count: i64,
    pub clients: Option<Vec<RawClient>>,
    pub paused: bool,
    pub e2e_processing_latency: Option<RawE2e>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawE2e {
    pub count: i64,
    pub percentiles: Option<Vec<RawPercentile>>,
    pub topic: String,
    pub channel: String,
    pub host: String,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct RawPercentile {
    pub quantile: f64,
    pub value: Option<f64>,
}

/// One percentile as nsqadmin reports it. The reference keeps these in a map, so its JSON keys
/// come out sorted (`average`, `count`, `max`, `min`, `quantile`, then `value` on a node's own
/// figures only); [`Serialize`] writes them in that order.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentile {
    pub average: f64,
    pub count: f64,
    pub max: f64,
    pub min: f64,
    pub quantile: f64,
    pub value: Option<f64>,
}

impl Serialize for Percentile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("average", &self.average)?;
        m.serialize_entry("count", &self.count)?;
        m.serialize_entry("max", &self.max)?;
        m.serialize_entry("min", &self.min)?;
        m.serialize_entry("quantile", &self.quantile)?;
        if let Some(v) = self.value {
            m.serialize_entry("value", &v)?;
        }
        m.end()
    }
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawClient {
    pub node: String,
    pub remote_address: String,
    pub version: String,
    pub client_id: String,
    pub hostname: String,
    pub user_agent: String,
    pub connect_ts: i64,
    /// Nanoseconds since `connect_ts`, computed by nsqadmin when it reads the stats.
    pub connected: i64,
    pub in_flight_count: i64,
    pub ready_count: i64,
    pub finish_count: i64,
    pub requeue_count: i64,
    pub message_count: i64,
    pub sample_rate: i32,
    pub deflate: bool,
    pub snappy: bool,
    pub authed: bool,
    pub auth_identity: String,
    pub auth_identity_url: String,
    pub tls: bool,
    pub tls_cipher_suite: String,
    pub tls_version: String,
    pub tls_negotiated_protocol: String,
    pub tls_negotiated_protocol_is_mutual: bool,
}

/// An end-to-end latency summary: per node as nsqd reports it, or merged across nodes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct E2e {
    pub count: i64,
    pub percentiles: Option<Vec<Percentile>>,
    pub topic: String,
    pub channel: String,
    pub host: String,
}

impl E2e {
    /// A node's figures: every percentile gains `min`=`max`=`average`=`value` and the count.
    pub fn from_node(raw: RawE2e) -> E2e {
        let count = raw.count;
        let percentiles = raw.percentiles.map(|list| {
            list.into_iter()
                .map(|p| {
                    let value = p.value.unwrap_or(0.0);
                    Percentile {
                        average: value,
                        count: count as f64,
                        max: value,
                        min: value,
                        quantile: p.quantile,
                        value: p.value,
                    }
                })
                .collect()
        });
        E2e {
            count,
            percentiles,
            topic: raw.topic,
            channel: raw.channel,
            host: raw.host,
        }
    }

    /// Merges `other` in: counts add, `max` is the larger, `average` is count-weighted, and
    /// (as in the reference) `min` ends up as the incoming node's maximum.
    pub fn add(&mut self, other: &E2e) {
        self.host = "*".into();
        self.count += other.count;
        for value in other.percentiles.iter().flatten() {
            let list = self.percentiles.get_or_insert_with(Vec::new);
            let i = match list.iter().position(|p| p.quantile == value.quantile) {
                Some(i) => i,
                None => {
                    list.push(Percentile {
                        quantile: value.quantile,
                        ..Percentile::default()
                    });
                    list.len() - 1
                }
            };
            let Some(p) = list.get_mut(i) else { continue };
            p.max = value.max.max(p.max);
            p.min = value.max.min(p.max);
            p.count += value.count;
            if p.count == 0.0 {
                p.average = 0.0;
                continue;
            }
            let delta = value.average - p.average;
            p.average += delta * value.count / p.count;
        }
    }
}

impl Serialize for E2e {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("E2e", 5)?;
        st.serialize_field("count", &self.count)?;
        st.serialize_field("percentiles", &self.percentiles)?;
        st.serialize_field("topic", &self.topic)?;
        st.serialize_field("channel", &self.channel)?;
        st.serialize_field("host", &self.host)?;
        st.end()
    }
}

#[derive(Debug, Clone, Default)]
pub struct TopicStats {
    pub node: String,
    pub hostname: String,
    pub topic_name: String,
    pub depth: i64,
    pub memory_depth: i64,
    pub backend_depth: i64,
    pub message_count: i64,
    pub node_stats: Option<Vec<TopicId>>,
    pub channels: Option<Vec<ChannelId>>,
    pub paused: bool,
    pub e2e: Option<E2e>,
}

#[derive(Debug, Clone, Default)]
pub struct ChannelStats {
    pub node: String,
    pub hostname: String,
    pub topic_name: String,
    pub channel_name: String,
    pub depth: i64,
    pub memory_depth: i64,
    pub backend_depth: i64,
    pub in_flight_count: i64,
    pub deferred_count: i64,
    pub requeue_count: i64,
    pub timeout_count: i64,
    pub message_count: i64,
    pub client_count: i64,
    pub node_stats: Option<Vec<ChannelId>>,
    pub clients: Option<Vec<Arc<RawClient>>>,
    pub paused: bool,
    pub e2e: Option<E2e>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicId(usize);
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelId(usize);

/// Owns every stats object of one answer; objects refer to each other by id.
#[derive(Debug, Default)]
pub struct Arena {
    topics: Vec<TopicStats>,
    channels: Vec<ChannelStats>,
}

/// Go's `append(dst, src...)`: a nil destination stays nil when nothing is appended.
fn append<T: Clone>(dst: &mut Option<Vec<T>>, src: &[T]) {
    if !src.is_empty() {
        dst.get_or_insert_with(Vec::new).extend_from_slice(src);
    }
}

impl Arena {
    pub fn new() -> Arena {
        Arena::default()
    }

    pub fn topic(&self, id: TopicId) -> Option<&TopicStats> {
        self.topics.get(id.0)
    }

    pub fn channel(&self, id: ChannelId) -> Option<&ChannelStats> {
        self.channels.get(id.0)
    }

    pub fn add_topic(&mut self, t: TopicStats) -> TopicId {
        self.topics.push(t);
        TopicId(self.topics.len() - 1)
    }

    pub fn add_channel(&mut self, c: ChannelStats) -> ChannelId {
        self.channels.push(c);
        ChannelId(self.channels.len() - 1)
    }

    /// One node's topic as nsqadmin keeps it: `node` and `hostname` of the node, memory depth
    /// derived, and its channels (and their clients) labelled likewise.
    pub fn add_node_topic(
        &mut self,
        raw: RawTopic,
        node: &str,
        hostname: &str,
        now: i64,
    ) -> TopicId {
        let channels = raw.channels.map(|list| {
            list.into_iter()
                .map(|c| {
                    let clients = c.clients.map(|cl| {
                        cl.into_iter()
                            .map(|mut client| {
                                client.node = node.to_string();
                                client.connected = now
                                    .saturating_sub(client.connect_ts)
                                    .saturating_mul(1_000_000_000);
                                Arc::new(client)
                            })
                            .collect()
                    });
                    self.add_channel(ChannelStats {
                        node: node.to_string(),
                        hostname: hostname.to_string(),
                        topic_name: raw.topic_name.clone(),
                        channel_name: c.channel_name,
                        depth: c.depth,
                        memory_depth: c.depth - c.backend_depth,
                        backend_depth: c.backend_depth,
                        in_flight_count: c.in_flight_count,
                        deferred_count: c.deferred_count,
                        requeue_count: c.requeue_count,
                        timeout_count: c.timeout_count,
                        message_count: c.message_count,
                        client_count: c.client_count,
                        node_stats: None,
                        clients,
                        paused: c.paused,
                        e2e: c.e2e_processing_latency.map(E2e::from_node),
                    })
                })
                .collect()
        });
        self.add_topic(TopicStats {
            node: node.to_string(),
            hostname: hostname.to_string(),
            topic_name: raw.topic_name,
            depth: raw.depth,
            memory_depth: raw.depth - raw.backend_depth,
            backend_depth: raw.backend_depth,
            message_count: raw.message_count,
            node_stats: None,
            channels,
            paused: raw.paused,
            e2e: raw.e2e_processing_latency.map(E2e::from_node),
        })
    }

    fn topic_host(&self, id: TopicId) -> &str {
        self.topic(id).map_or("", |t| t.hostname.as_str())
    }

    fn channel_host(&self, id: ChannelId) -> &str {
        self.channel(id).map_or("", |c| c.hostname.as_str())
    }

    /// The reference's `TopicStats.Add`: sums into `into`, merges channels by name (adopting a
    /// channel object the first time its name is seen), keeps the node list sorted by hostname.
    pub fn add_topic_into(&mut self, into: TopicId, from: TopicId) {
        let Some(a) = self.topic(from).cloned() else {
            return;
        };
        for a_channel in a.channels.iter().flatten().copied() {
            let name = self
                .channel(a_channel)
                .map(|c| c.channel_name.clone())
                .unwrap_or_default();
            let existing: Vec<ChannelId> = self
                .topic(into)
                .and_then(|t| t.channels.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|id| self.channel(*id).is_some_and(|c| c.channel_name == name))
                .collect();
            if existing.is_empty() {
                if let Some(t) = self.topics.get_mut(into.0) {
                    t.channels.get_or_insert_with(Vec::new).push(a_channel);
                }
            }
            for target in existing {
                self.add_channel_into(target, a_channel);
            }
        }
        let mut nodes = self
            .topic(into)
            .and_then(|t| t.node_stats.clone())
            .unwrap_or_default();
        nodes.push(from);
        nodes.sort_by(|x, y| self.topic_host(*x).cmp(self.topic_host(*y)));
        let Some(t) = self.topics.get_mut(into.0) else {
            return;
        };
        t.node = "*".into();
        t.depth += a.depth;
        t.memory_depth += a.memory_depth;
        t.backend_depth += a.backend_depth;
        t.message_count += a.message_count;
        t.paused |= a.paused;
        t.node_stats = Some(nodes);
        let e2e = t.e2e.get_or_insert_with(|| E2e {
            host: "*".into(),
            topic: t.topic_name.clone(),
            ..E2e::default()
        });
        if let Some(other) = &a.e2e {
            e2e.add(other);
        } else {
            e2e.host = "*".into();
        }
    }

    /// The reference's `ChannelStats.Add`.
    pub fn add_channel_into(&mut self, into: ChannelId, from: ChannelId) {
        if into == from {
            return;
        }
        // The target is taken out while the source is read in place: no copy of the source.
        let Some(slot) = self.channels.get_mut(into.0) else {
            return;
        };
        let mut c = std::mem::take(slot);
        if let Some(a) = self.channels.get(from.0) {
            c.node = "*".into();
            c.depth += a.depth;
            c.memory_depth += a.memory_depth;
            c.backend_depth += a.backend_depth;
            c.in_flight_count += a.in_flight_count;
            c.deferred_count += a.deferred_count;
            c.requeue_count += a.requeue_count;
            c.timeout_count += a.timeout_count;
            c.message_count += a.message_count;
            c.client_count += a.client_count;
            c.paused |= a.paused;
            let mut nodes = c.node_stats.take().unwrap_or_default();
            nodes.push(from);
            nodes.sort_by(|x, y| self.channel_host(*x).cmp(self.channel_host(*y)));
            c.node_stats = Some(nodes);
            let (topic, channel) = (&c.topic_name, &c.channel_name);
            let e2e = c.e2e.get_or_insert_with(|| E2e {
                host: "*".into(),
                topic: topic.clone(),
                channel: channel.clone(),
                ..E2e::default()
            });
            if let Some(other) = &a.e2e {
                e2e.add(other);
            } else {
                e2e.host = "*".into();
            }
            if let Some(list) = &a.clients {
                append(&mut c.clients, list);
            }
            if let Some(list) = c.clients.as_mut() {
                list.sort_by(|x, y| x.hostname.cmp(&y.hostname));
            }
        }
        if let Some(slot) = self.channels.get_mut(into.0) {
            *slot = c;
        }
    }

    pub fn topic_json(&self, id: TopicId) -> TopicJson<'_> {
        TopicJson { arena: self, id }
    }

    pub fn channel_json(&self, id: ChannelId) -> ChannelJson<'_> {
        ChannelJson { arena: self, id }
    }
}

/// Serializes a topic with its nested node rows and channels, in the reference's key order.
pub struct TopicJson<'a> {
    arena: &'a Arena,
    id: TopicId,
}

/// Serializes a channel with its nested node rows and clients, in the reference's key order.
pub struct ChannelJson<'a> {
    arena: &'a Arena,
    id: ChannelId,
}

struct Ids<'a, T: Copy, J> {
    ids: &'a Option<Vec<T>>,
    make: J,
}

impl<T: Copy, J, V> Serialize for Ids<'_, T, J>
where
    J: Fn(T) -> V,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.ids {
            None => s.serialize_none(),
            Some(ids) => {
                let mut seq = s.serialize_seq(Some(ids.len()))?;
                for id in ids {
                    seq.serialize_element(&(self.make)(*id))?;
                }
                seq.end()
            }
        }
    }
}

impl TopicJson<'_> {
    /// Writes the fields into an open map, so callers can append `message`.
    pub fn write_fields<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        let default = TopicStats::default();
        let t = self.arena.topic(self.id).unwrap_or(&default);
        let arena = self.arena;
        m.serialize_entry("node", &t.node)?;
        m.serialize_entry("hostname", &t.hostname)?;
        m.serialize_entry("topic_name", &t.topic_name)?;
        m.serialize_entry("depth", &t.depth)?;
        m.serialize_entry("memory_depth", &t.memory_depth)?;
        m.serialize_entry("backend_depth", &t.backend_depth)?;
        m.serialize_entry("message_count", &t.message_count)?;
        m.serialize_entry(
            "nodes",
            &Ids {
                ids: &t.node_stats,
                make: |id| arena.topic_json(id),
            },
        )?;
        m.serialize_entry(
            "channels",
            &Ids {
                ids: &t.channels,
                make: |id| arena.channel_json(id),
            },
        )?;
        m.serialize_entry("paused", &t.paused)?;
        m.serialize_entry("e2e_processing_latency", &t.e2e)?;
        Ok(())
    }
}

impl Serialize for TopicJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.write_fields(&mut m)?;
        m.end()
    }
}

impl ChannelJson<'_> {
    pub fn write_fields<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        let default = ChannelStats::default();
        let c = self.arena.channel(self.id).unwrap_or(&default);
        let arena = self.arena;
        m.serialize_entry("node", &c.node)?;
        m.serialize_entry("hostname", &c.hostname)?;
        m.serialize_entry("topic_name", &c.topic_name)?;
        m.serialize_entry("channel_name", &c.channel_name)?;
        m.serialize_entry("depth", &c.depth)?;
        m.serialize_entry("memory_depth", &c.memory_depth)?;
        m.serialize_entry("backend_depth", &c.backend_depth)?;
        m.serialize_entry("in_flight_count", &c.in_flight_count)?;
        m.serialize_entry("deferred_count", &c.deferred_count)?;
        m.serialize_entry("requeue_count", &c.requeue_count)?;
        m.serialize_entry("timeout_count", &c.timeout_count)?;
        m.serialize_entry("message_count", &c.message_count)?;
        m.serialize_entry("client_count", &c.client_count)?;
        m.serialize_entry(
            "nodes",
            &Ids {
                ids: &c.node_stats,
                make: |id| arena.channel_json(id),
            },
        )?;
        let clients: Option<Vec<&RawClient>> = c
            .clients
            .as_ref()
            .map(|l| l.iter().map(AsRef::as_ref).collect());
        m.serialize_entry("clients", &clients)?;
        m.serialize_entry("paused", &c.paused)?;
        m.serialize_entry("e2e_processing_latency", &c.e2e)?;
        Ok(())
    }
}

impl Serialize for ChannelJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.write_fields(&mut m)?;
        m.end()
    }
}

/// Topic and channel stats merged from several nodes.
pub struct NodeStats {
    pub arena: Arena,
    /// One entry per node and topic, sorted by hostname.
    pub topics: Vec<TopicId>,
    /// Channel aggregates keyed by channel name (a topic was selected) or `topic:channel`.
    pub channels: std::collections::HashMap<String, ChannelId>,
}

/// Merges nodes' `/stats` answers (`(node address, hostname, answer)`, in producer order) as
/// the reference's `GetNSQDStats` does: node rows labelled, topics other than `topic` (when
/// given) dropped, channel aggregates keyed by name or `topic:channel`. `now` (Unix seconds)
/// dates the clients' `connected`.
pub fn merge_nodes(answers: Vec<(String, String, RawStats)>, topic: &str, now: i64) -> NodeStats {
    let mut arena = Arena::new();
    let mut topics = Vec::new();
    let mut channels: std::collections::HashMap<String, ChannelId> = Default::default();
    for (addr, hostname, resp) in answers {
        for raw in resp.topics.unwrap_or_default() {
            if !topic.is_empty() && raw.topic_name != topic {
                continue;
            }
            let id = arena.add_node_topic(raw, &addr, &hostname, now);
            topics.push(id);
            let (topic_name, node_channels) = match arena.topic(id) {
                Some(t) => (t.topic_name.clone(), t.channels.clone().unwrap_or_default()),
                None => continue,
            };
            for ch in node_channels {
                let name = arena
                    .channel(ch)
                    .map(|c| c.channel_name.clone())
                    .unwrap_or_default();
                let key = if topic.is_empty() {
                    format!("{topic_name}:{name}")
                } else {
                    name.clone()
                };
                let agg = match channels.get(&key) {
                    Some(agg) => *agg,
                    None => {
                        let agg = arena.add_channel(ChannelStats {
                            node: addr.clone(),
                            topic_name: topic_name.clone(),
                            channel_name: name,
                            ..Default::default()
                        });
                        channels.insert(key, agg);
                        agg
                    }
                };
                arena.add_channel_into(agg, ch);
            }
        }
    }
    let host = |id: &TopicId| {
        arena
            .topic(*id)
            .map(|t| t.hostname.clone())
            .unwrap_or_default()
    };
    topics.sort_by_key(host);
    NodeStats {
        arena,
        topics,
        channels,
    }
}

/// The topic page's aggregate: every node's row of `topic` merged into one, as the reference's
/// `TopicStats.Add` does; returns the aggregate's id.
pub fn aggregate_topic(stats: &mut NodeStats, topic: &str) -> TopicId {
    let all = stats.arena.add_topic(TopicStats {
        topic_name: topic.to_string(),
        ..Default::default()
    });
    for t in stats.topics.clone() {
        stats.arena.add_topic_into(all, t);
    }
    all
}

/// A producer as nsqlookupd lists it (`/nodes`, `/lookup`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawProducer {
    pub remote_address: String,
    pub hostname: String,
    pub broadcast_address: String,
    pub tcp_port: i64,
    pub http_port: i64,
    pub version: String,
    pub topics: Option<Vec<String>>,
    pub tombstones: Option<Vec<bool>>,
}

/// One nsqd node as `/api/nodes` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Producer {
    pub remote_addresses: Option<Vec<String>>,
    pub remote_address: String,
    pub hostname: String,
    pub broadcast_address: String,
    pub tcp_port: i64,
    pub http_port: i64,
    pub version: String,
    pub topics: Option<Vec<ProducerTopic>>,
    pub out_of_date: bool,
    #[serde(skip)]
    pub version_obj: semver::Version,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ProducerTopic {
    pub topic: String,
    pub tombstoned: bool,
}

/// Go's `semver.Parse`, with the reference's fallback to 0.0.0.
pub fn parse_version(v: &str) -> semver::Version {
    semver::Version::parse(v).unwrap_or_else(|_| semver::Version::new(0, 0, 0))
}

impl Producer {
    pub fn from_raw(raw: RawProducer) -> Producer {
        let tombstones = raw.tombstones.unwrap_or_default();
        let topics = raw.topics.and_then(|list| {
            let topics: Vec<ProducerTopic> = list
                .into_iter()
                .enumerate()
                .map(|(i, topic)| ProducerTopic {
                    topic,
                    tombstoned: tombstones.get(i).copied().unwrap_or(false),
                })
                .collect();
            (!topics.is_empty()).then_some(topics)
        });
        Producer {
            remote_addresses: None,
            version_obj: parse_version(&raw.version),
            remote_address: raw.remote_address,
            hostname: raw.hostname,
            broadcast_address: raw.broadcast_address,
            tcp_port: raw.tcp_port,
            http_port: raw.http_port,
            version: raw.version,
            topics,
            out_of_date: false,
        }
    }

    /// `host:port` with IPv6 hosts bracketed, as Go's `net.JoinHostPort`.
    pub fn http_address(&self) -> String {
        join_host_port(&self.broadcast_address, self.http_port)
    }

    pub fn tcp_address(&self) -> String {
        join_host_port(&self.broadcast_address, self.tcp_port)
    }

    /// `remote_address`, or `N/A` when the lookupd did not say.
    pub fn address(&self) -> &str {
        if self.remote_address.is_empty() {
            "N/A"
        } else {
            &self.remote_address
        }
    }
}

pub fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e2e(count: i64, values: &[(f64, f64)]) -> E2e {
        E2e::from_node(RawE2e {
            count,
            percentiles: Some(
                values
                    .iter()
                    .map(|(q, v)| RawPercentile {
                        quantile: *q,
                        value: Some(*v),
                    })
                    .collect(),
            ),
            ..RawE2e::default()
        })
    }

    #[test]
    fn e2e_merge_weights_averages_and_keeps_order() {
        let mut agg = E2e::default();
        agg.add(&e2e(1, &[(0.99, 100.0), (0.5, 10.0)]));
        agg.add(&e2e(3, &[(0.99, 200.0), (0.5, 20.0)]));
        let p = agg.percentiles.clone().unwrap();
        assert_eq!(p[0].quantile, 0.99);
        assert_eq!(p[0].max, 200.0);
        assert_eq!(p[0].count, 4.0);
        assert_eq!(p[0].average, 175.0);
        assert_eq!(p[0].value, None);
        assert_eq!(agg.count, 4);
        assert_eq!(agg.host, "*");
        let json = nsq_http::json::to_vec(&agg).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"count":4,"percentiles":[{"average":175,"count":4,"max":200,"min":200,"quantile":0.99},{"average":17.5,"count":4,"max":20,"min":20,"quantile":0.5}],"topic":"","channel":"","host":"*"}"#
        );
    }

    fn raw_topic(name: &str, depth: i64, channels: &[(&str, i64)]) -> RawTopic {
        RawTopic {
            topic_name: name.into(),
            depth,
            channels: Some(
                channels
                    .iter()
                    .map(|(c, d)| RawChannel {
                        channel_name: c.to_string(),
                        depth: *d,
                        clients: Some(vec![]),
                        e2e_processing_latency: Some(RawE2e::default()),
                        ..RawChannel::default()
                    })
                    .collect(),
            ),
            e2e_processing_latency: Some(RawE2e::default()),
            ..RawTopic::default()
        }
    }

    #[test]
    fn the_first_nodes_channel_becomes_the_aggregate() {
        let mut arena = Arena::new();
        let a = arena.add_node_topic(raw_topic("t", 3, &[("c", 1)]), "a:1", "ha", 0);
        let b = arena.add_node_topic(raw_topic("t", 4, &[("c", 2), ("d", 5)]), "b:1", "hb", 0);
        let agg = arena.add_topic(TopicStats {
            topic_name: "t".into(),
            ..TopicStats::default()
        });
        arena.add_topic_into(agg, a);
        arena.add_topic_into(agg, b);
        let t = arena.topic(agg).unwrap();
        assert_eq!(t.depth, 7);
        assert_eq!(t.node, "*");
        let channels = t.channels.clone().unwrap();
        assert_eq!(channels.len(), 2);
        let c = arena.channel(channels[0]).unwrap();
        assert_eq!((c.depth, c.node.as_str()), (3, "*"));
        // Only the second node is listed under the adopted channel, as in the reference.
        assert_eq!(c.node_stats.as_ref().unwrap().len(), 1);
        let json =
            String::from_utf8(nsq_http::json::to_vec(&arena.topic_json(agg)).unwrap()).unwrap();
        assert!(
            json.starts_with(
                r#"{"node":"*","hostname":"","topic_name":"t","depth":7,"memory_depth":7"#
            ),
            "{json}"
        );
    }

    #[test]
    fn producer_topics_pair_with_tombstones() {
        let p = Producer::from_raw(RawProducer {
            broadcast_address: "::1".into(),
            http_port: 4151,
            topics: Some(vec!["a".into(), "b".into()]),
            tombstones: Some(vec![false]),
            version: "1.3.0".into(),
            ..RawProducer::default()
        });
        assert_eq!(p.http_address(), "[::1]:4151");
        assert!(!p.topics.as_ref().unwrap()[1].tombstoned);
        let none = Producer::from_raw(RawProducer {
            topics: Some(vec![]),
            ..RawProducer::default()
        });
        assert_eq!(none.topics, None);
        assert_eq!(none.address(), "N/A");
    }
}
