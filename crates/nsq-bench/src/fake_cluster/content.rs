//! What the fake cluster says: deterministic numbers for every node, topic, channel and client,
//! rendered once into the JSON that nsqd 1.3.0 and nsqlookupd 1.3.0 answer with.
//!
//! The JSON is written by hand rather than through serde because the key order, the omitted
//! keys and the number formats must be those of NSQ's Go structs (e.g. `pub_counts` appears
//! only when non-empty, percentile values are integral floats printed without a fraction).
//! Everything a request can ask for is assembled from pre-rendered fragments: whole documents
//! for the unfiltered `/stats`, one fragment per channel (with and without clients) for the
//! filtered ones, so answering costs a copy at most.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use bytes::Bytes;

/// The version every fake daemon reports.
pub const VERSION: &str = "1.3.0";

/// The quantiles of the e2e processing latency, as nsqd reports them when started with
/// `--e2e-processing-latency-percentile=0.99,0.95,0.5`.
const QUANTILES: [f64; 3] = [0.99, 0.95, 0.5];

/// Clients connected at most this many seconds after their nsqd started (which the cluster
/// makes a week ago, so every `connect_ts` lies in the past).
const CONNECTED_WITHIN: u64 = 5 * 86_400;

/// How big the cluster is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub nodes: usize,
    /// Topics per node (every node has the same topic names).
    pub topics: usize,
    /// Channels per topic.
    pub channels: usize,
    /// Consumer connections per channel.
    pub clients: usize,
    /// Publishing connections per node; producer `p` publishes to every topic `t` with
    /// `t % producers == p`.
    pub producers: usize,
}

/// `t<n>`: topic names as the benchmark and tests use them.
pub fn topic_name(n: usize) -> String {
    format!("t{n}")
}

/// `c<n>`: channel names.
pub fn channel_name(n: usize) -> String {
    format!("c{n}")
}

/// splitmix64's finaliser: a cheap, well-mixed function of its input.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic stream of numbers for one object (a node, topic, channel, client), so every
/// run and every node renders the same figures and aggregates are reproducible.
struct Numbers(u64);

impl Numbers {
    fn new(parts: &[u64]) -> Numbers {
        Numbers(parts.iter().fold(0x6E73_712D_7273, |acc, &p| mix(acc ^ p)))
    }

    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// True once in `n` times.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Object kinds, mixed into the seed so a topic and a channel with equal indexes differ.
const TOPIC: u64 = 1;
const CHANNEL: u64 = 2;
const CLIENT: u64 = 3;
const PRODUCER: u64 = 4;
const MEMORY: u64 = 5;

/// A JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// `{"count":N,"percentiles":[…]}` as nsqd's quantile result marshals: percentile maps with
/// their keys sorted, values in nanoseconds (integral floats, so no fraction is printed).
fn latency(out: &mut String, n: &mut Numbers, count: u64) {
    let _ = write!(out, "{{\"count\":{count},\"percentiles\":");
    if count == 0 {
        out.push_str("null}");
        return;
    }
    let median = 200_000 + n.below(20_000_000);
    let p95 = median * (2 + n.below(4));
    let p99 = p95 + p95 * (1 + n.below(3)) / 2;
    out.push('[');
    for (i, (q, v)) in QUANTILES.iter().zip([p99, p95, median]).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"quantile\":{q},\"value\":{v}}}");
    }
    out.push_str("]}");
}

/// A client connection's stats, up to `user_agent` (what follows depends on the connection's
/// role and the `/stats` topic filter).
struct ClientFields<'a> {
    client_id: &'a str,
    hostname: &'a str,
    remote_address: &'a str,
    /// nsqd's connection state: 3 once subscribed, 0 for a connection that only publishes.
    state: u32,
    /// ready, in flight, messages, finished, requeued.
    counts: [u64; 5],
    connect_ts: i64,
    deflate: bool,
    snappy: bool,
    user_agent: &'a str,
}

impl ClientFields<'_> {
    fn render(&self, out: &mut String) {
        let [ready, in_flight, messages, finished, requeued] = self.counts;
        let _ = write!(
            out,
            "{{\"client_id\":{},\"hostname\":{},\"version\":\"V2\",\"remote_address\":{},\
             \"state\":{},\"ready_count\":{ready},\"in_flight_count\":{in_flight},\
             \"message_count\":{messages},\"finish_count\":{finished},\
             \"requeue_count\":{requeued},\"connect_ts\":{},\"sample_rate\":0,\
             \"deflate\":{},\"snappy\":{},\"user_agent\":{}",
            quoted(self.client_id),
            quoted(self.hostname),
            quoted(self.remote_address),
            self.state,
            self.connect_ts,
            self.deflate,
            self.snappy,
            quoted(self.user_agent),
        );
    }
}

/// The TLS keys that end every client object (the fake clients use plain TCP).
const CLIENT_TAIL: &str = ",\"tls\":false,\"tls_cipher_suite\":\"\",\"tls_version\":\"\",\
    \"tls_negotiated_protocol\":\"\",\"tls_negotiated_protocol_is_mutual\":false}";

/// One channel of one node, rendered both ways.
#[derive(Debug)]
pub struct Channel {
    pub name: String,
    pub with_clients: String,
    pub without_clients: String,
}

/// One topic of one node: the text before and after its channel list.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    /// `{"topic_name":"…","channels":[`
    head: String,
    /// `],"depth":…,…}`
    tail: String,
    pub channels: Vec<Channel>,
    channel_index: HashMap<String, usize>,
    /// Sum of the channels' `message_count`, for tests of aggregation.
    pub message_count: u64,
    pub depth: u64,
}

/// A publishing connection: everything but `pub_counts`.
#[derive(Debug)]
struct Producer {
    head: String,
    /// (topic index, count) for the topics it published to.
    pub_counts: Vec<(usize, u64)>,
}

/// Which part of the stats `/stats` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsQuery<'a> {
    pub topic: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub include_clients: bool,
    pub include_mem: bool,
}

impl StatsQuery<'_> {
    /// Everything: what `GET /stats?format=json` returns.
    pub const ALL: StatsQuery<'static> = StatsQuery {
        topic: None,
        channel: None,
        include_clients: true,
        include_mem: true,
    };
}

/// Addresses of one fake nsqd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    pub index: usize,
    pub hostname: String,
    pub broadcast_address: String,
    pub http_port: u16,
    pub tcp_port: u16,
    /// The address the node's registration connection to nsqlookupd would come from.
    pub remote_address: String,
}

impl NodeAddr {
    pub fn new(index: usize, http_port: u16, tcp_port: u16) -> NodeAddr {
        NodeAddr {
            index,
            hostname: format!("fake-nsqd-{index}"),
            broadcast_address: "127.0.0.1".to_string(),
            http_port,
            tcp_port,
            remote_address: format!("127.0.0.1:{tcp_port}"),
        }
    }

    /// `broadcast_address:http_port`, nsqadmin's name for the node.
    pub fn http_address(&self) -> String {
        format!("{}:{}", self.broadcast_address, self.http_port)
    }

    /// The peer-info keys nsqlookupd 1.3.0 reports for it (no closing brace).
    fn peer_info(&self) -> String {
        format!(
            "{{\"remote_address\":{},\"hostname\":{},\"broadcast_address\":{},\"tcp_port\":{},\
             \"http_port\":{},\"version\":\"{VERSION}\"",
            quoted(&self.remote_address),
            quoted(&self.hostname),
            quoted(&self.broadcast_address),
            self.tcp_port,
            self.http_port,
        )
    }
}

/// Everything one fake nsqd serves.
#[derive(Debug)]
pub struct Node {
    pub addr: NodeAddr,
    pub start_time: i64,
    /// Sorted by name, as nsqd sorts them.
    pub topics: Vec<Topic>,
    topic_index: HashMap<String, usize>,
    producers: Vec<Producer>,
    memory: String,
    info: Bytes,
    /// `/stats?format=json` and `…&include_clients=false`, whole.
    full_with_clients: Bytes,
    full_without_clients: Bytes,
}

impl Node {
    pub fn new(shape: &Shape, addr: NodeAddr, start_time: i64) -> Node {
        let i = addr.index as u64;
        let mut names: Vec<(String, usize)> =
            (0..shape.topics).map(|t| (topic_name(t), t)).collect();
        names.sort();
        let mut channel_names: Vec<(String, usize)> =
            (0..shape.channels).map(|c| (channel_name(c), c)).collect();
        channel_names.sort();

        let topics: Vec<Topic> = names
            .into_iter()
            .map(|(name, t)| render_topic(shape, &addr, start_time, name, t, &channel_names))
            .collect();
        let topic_index = topics
            .iter()
            .enumerate()
            .map(|(pos, t)| (t.name.clone(), pos))
            .collect();

        let producers = (0..shape.producers)
            .map(|p| {
                let mut n = Numbers::new(&[PRODUCER, i, p as u64]);
                let mut head = String::new();
                let port = 20_000 + (addr.index * 64 + p) % 40_000;
                ClientFields {
                    client_id: &format!("publisher{p}"),
                    hostname: &format!("pub-{}-{p}.example", addr.index),
                    remote_address: &format!("10.1.{}.{}:{port}", addr.index % 250, p % 250),
                    state: 0,
                    counts: [0; 5],
                    connect_ts: start_time + n.below(CONNECTED_WITHIN) as i64,
                    deflate: false,
                    snappy: n.one_in(3),
                    user_agent: "go-nsq/1.1.0",
                }
                .render(&mut head);
                let pub_counts = topics
                    .iter()
                    .enumerate()
                    .filter(|(_, topic)| {
                        topic_number(&topic.name).is_some_and(|t| t % shape.producers == p)
                    })
                    .map(|(pos, _)| (pos, 1 + n.below(500_000)))
                    .collect();
                Producer { head, pub_counts }
            })
            .collect();

        let mut n = Numbers::new(&[MEMORY, i]);
        let heap_in_use = 8_000_000 + n.below(400_000_000);
        let heap_idle = n.below(200_000_000);
        let gc_95 = 50 + n.below(500);
        let memory = format!(
            "{{\"heap_objects\":{},\"heap_idle_bytes\":{heap_idle},\
             \"heap_in_use_bytes\":{heap_in_use},\"heap_released_bytes\":{},\
             \"gc_pause_usec_100\":{},\"gc_pause_usec_99\":{},\"gc_pause_usec_95\":{gc_95},\
             \"next_gc_bytes\":{},\"gc_total_runs\":{}}}",
            heap_in_use / 48,
            heap_idle / 2,
            gc_95 * 4,
            gc_95 * 2,
            heap_in_use * 2,
            1 + n.below(100_000),
        );

        let info = format!(
            "{{\"version\":\"{VERSION}\",\"broadcast_address\":{},\"hostname\":{},\
             \"http_port\":{},\"tcp_port\":{},\"start_time\":{start_time},\
             \"max_heartbeat_interval\":60000000000,\"max_output_buffer_size\":65536,\
             \"max_output_buffer_timeout\":30000000000,\"max_deflate_level\":6}}",
            quoted(&addr.broadcast_address),
            quoted(&addr.hostname),
            addr.http_port,
            addr.tcp_port,
        );

        let mut node = Node {
            addr,
            start_time,
            topics,
            topic_index,
            producers,
            memory,
            info: Bytes::from(info),
            full_with_clients: Bytes::new(),
            full_without_clients: Bytes::new(),
        };
        node.full_with_clients = Bytes::from(node.render_stats(StatsQuery::ALL));
        node.full_without_clients = Bytes::from(node.render_stats(StatsQuery {
            include_clients: false,
            ..StatsQuery::ALL
        }));
        node
    }

    /// `GET /info`.
    pub fn info(&self) -> Bytes {
        self.info.clone()
    }

    /// `GET /stats?format=json…` with nsqd 1.3.0's filtering rules: an unknown `topic` gives
    /// `"topics":null` and `"producers":null`; a `channel` drops the topics without it;
    /// `include_clients=false` nulls every `clients` and `producers`; a `topic` limits each
    /// producer's `pub_counts` to that topic.
    pub fn stats(&self, q: StatsQuery<'_>) -> Bytes {
        match q {
            StatsQuery {
                topic: None,
                channel: None,
                include_mem: true,
                include_clients,
            } => {
                if include_clients {
                    self.full_with_clients.clone()
                } else {
                    self.full_without_clients.clone()
                }
            }
            _ => Bytes::from(self.render_stats(q)),
        }
    }

    fn render_stats(&self, q: StatsQuery<'_>) -> String {
        let selected: Option<Vec<&Topic>> = match q.topic {
            None => Some(self.topics.iter().collect()),
            Some(name) => self
                .topic_index
                .get(name)
                .map(|&pos| vec![&self.topics[pos]]),
        };
        let mut out = String::with_capacity(match q.topic {
            None if q.include_clients => self.full_with_clients.len().max(4096),
            None => self.full_without_clients.len().max(4096),
            Some(_) => 4096,
        });
        let _ = write!(
            out,
            "{{\"version\":\"{VERSION}\",\"health\":\"OK\",\"start_time\":{},\"topics\":",
            self.start_time
        );
        match &selected {
            None => out.push_str("null"),
            Some(topics) => {
                out.push('[');
                let mut first_topic = true;
                for topic in topics {
                    let channels: Vec<&Channel> = match q.channel {
                        None => topic.channels.iter().collect(),
                        Some(c) => match topic.channel_index.get(c) {
                            Some(&pos) => vec![&topic.channels[pos]],
                            None => continue,
                        },
                    };
                    if !first_topic {
                        out.push(',');
                    }
                    first_topic = false;
                    out.push_str(&topic.head);
                    for (k, channel) in channels.iter().enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        out.push_str(if q.include_clients {
                            &channel.with_clients
                        } else {
                            &channel.without_clients
                        });
                    }
                    out.push_str(&topic.tail);
                }
                out.push(']');
            }
        }
        if q.include_mem {
            out.push_str(",\"memory\":");
            out.push_str(&self.memory);
        }
        out.push_str(",\"producers\":");
        let topic_filter = match (&selected, q.topic) {
            (None, _) => None,
            (Some(_), None) => Some(None),
            (Some(_), Some(name)) => Some(self.topic_index.get(name).copied()),
        };
        match topic_filter {
            Some(filter) if q.include_clients && !self.producers.is_empty() => {
                out.push('[');
                for (k, p) in self.producers.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    out.push_str(&p.head);
                    let counts: Vec<&(usize, u64)> = p
                        .pub_counts
                        .iter()
                        .filter(|(pos, _)| filter.is_none_or(|f| f == *pos))
                        .collect();
                    if !counts.is_empty() {
                        out.push_str(",\"pub_counts\":[");
                        for (k, (pos, count)) in counts.iter().enumerate() {
                            if k > 0 {
                                out.push(',');
                            }
                            let _ = write!(
                                out,
                                "{{\"topic\":{},\"count\":{count}}}",
                                quoted(&self.topics[*pos].name)
                            );
                        }
                        out.push(']');
                    }
                    out.push_str(CLIENT_TAIL);
                }
                out.push(']');
            }
            _ => out.push_str("null"),
        }
        out.push('}');
        out
    }
}

/// The number in a `t<n>` name.
fn topic_number(name: &str) -> Option<usize> {
    name.strip_prefix('t')?.parse().ok()
}

fn render_topic(
    shape: &Shape,
    addr: &NodeAddr,
    start_time: i64,
    name: String,
    t: usize,
    channel_names: &[(String, usize)],
) -> Topic {
    let (i, t64) = (addr.index as u64, t as u64);
    let mut n = Numbers::new(&[TOPIC, i, t64]);
    let message_count = 10_000 + n.below(5_000_000);
    let message_bytes = message_count * (64 + n.below(2_000));
    let depth = if n.one_in(3) { 0 } else { n.below(20_000) };
    let backend_depth = depth.saturating_sub(10_000);
    let paused = n.one_in(40);

    let mut channels = Vec::with_capacity(channel_names.len());
    let mut latency_count = 0;
    for (cname, c) in channel_names {
        let c = *c as u64;
        let mut n = Numbers::new(&[CHANNEL, i, t64, c]);
        let ch_messages = message_count - n.below(message_count / 10 + 1);
        let ch_depth = if n.one_in(2) { 0 } else { n.below(50_000) };
        let ch_backend = ch_depth.saturating_sub(10_000);
        let deferred = if n.one_in(4) { n.below(100) } else { 0 };
        let requeued = n.below(ch_messages / 100 + 1);
        let timed_out = n.below(requeued / 4 + 1);
        let ch_paused = n.one_in(50);
        let ch_latency_count = 1 + n.below(ch_messages);
        latency_count += ch_latency_count;

        let mut clients = String::from("[");
        let mut in_flight_total = 0;
        for k in 0..shape.clients {
            let mut n = Numbers::new(&[CLIENT, i, t64, c, k as u64]);
            let ready = [1, 10, 100, 200, 2500][n.below(5) as usize];
            let in_flight = n.below(ready + 1);
            in_flight_total += in_flight;
            let share = ch_messages / shape.clients as u64;
            let messages = share - n.below(share / 20 + 1);
            let requeue = n.below(requeued / shape.clients as u64 + 1);
            let finished = messages.saturating_sub(in_flight + requeue);
            let deflate = n.one_in(6);
            let snappy = !deflate && n.one_in(4);
            // A distinct remote address per connection, as nsqd sees its consumers.
            let slot = ((t * shape.channels + c as usize) * shape.clients + k) as u64;
            let remote = format!(
                "10.{}.{}.{}:{}",
                (i % 250) + 2,
                (slot / 40_000) % 250,
                1 + k % 250,
                10_000 + slot % 40_000
            );
            if k > 0 {
                clients.push(',');
            }
            ClientFields {
                client_id: &format!("worker{k}"),
                hostname: &format!("worker{k}.{cname}.example"),
                remote_address: &remote,
                state: 3,
                counts: [ready, in_flight, messages, finished, requeue],
                connect_ts: start_time + n.below(CONNECTED_WITHIN) as i64,
                deflate,
                snappy,
                user_agent: ["go-nsq/1.1.0", "pynsq/0.9.1", "nsqjs/0.13.0"][n.below(3) as usize],
            }
            .render(&mut clients);
            clients.push_str(CLIENT_TAIL);
        }
        clients.push(']');

        let mut latency_json = String::new();
        latency(&mut latency_json, &mut n, ch_latency_count);
        let head = format!(
            "{{\"channel_name\":{},\"depth\":{ch_depth},\"backend_depth\":{ch_backend},\
             \"in_flight_count\":{in_flight_total},\"deferred_count\":{deferred},\
             \"message_count\":{ch_messages},\"requeue_count\":{requeued},\
             \"timeout_count\":{timed_out},\"client_count\":{},\"clients\":",
            quoted(cname),
            shape.clients,
        );
        let tail = format!(",\"paused\":{ch_paused},\"e2e_processing_latency\":{latency_json}}}");
        channels.push(Channel {
            name: cname.clone(),
            with_clients: format!("{head}{clients}{tail}"),
            without_clients: format!("{head}null{tail}"),
        });
    }

    let head = format!("{{\"topic_name\":{},\"channels\":[", quoted(&name));
    let mut tail = format!(
        "],\"depth\":{depth},\"backend_depth\":{backend_depth},\"message_count\":{message_count},\
         \"message_bytes\":{message_bytes},\"paused\":{paused},\"e2e_processing_latency\":"
    );
    latency(
        &mut tail,
        &mut n,
        if channels.is_empty() {
            0
        } else {
            latency_count
        },
    );
    tail.push('}');
    let channel_index = channels
        .iter()
        .enumerate()
        .map(|(pos, c)| (c.name.clone(), pos))
        .collect();
    Topic {
        name,
        head,
        tail,
        channels,
        channel_index,
        message_count,
        depth,
    }
}

/// Everything the fake nsqlookupd serves: every node produces every topic and channel.
#[derive(Debug)]
pub struct Lookupd {
    topics: HashSet<String>,
    topics_json: Bytes,
    channels_json: Bytes,
    lookup_json: Bytes,
    nodes_json: Bytes,
}

/// `{"channels":[]}`, for `/channels` of a topic nobody has.
pub const NO_CHANNELS: &str = "{\"channels\":[]}";

impl Lookupd {
    pub fn new(shape: &Shape, nodes: &[NodeAddr]) -> Lookupd {
        let topic_names: Vec<String> = (0..shape.topics).map(topic_name).collect();
        let channel_names: Vec<String> = (0..shape.channels).map(channel_name).collect();
        let list = |names: &[String]| {
            let quoted: Vec<String> = names.iter().map(|n| quoted(n)).collect();
            format!("[{}]", quoted.join(","))
        };
        let channels = list(&channel_names);
        let producers: Vec<String> = nodes.iter().map(|n| n.peer_info() + "}").collect();
        let tombstones = format!("[{}]", vec!["false"; topic_names.len()].join(","));
        let topics_list = list(&topic_names);
        let nodes_list: Vec<String> = nodes
            .iter()
            .map(|n| {
                format!(
                    "{},\"tombstones\":{tombstones},\"topics\":{topics_list}}}",
                    n.peer_info()
                )
            })
            .collect();
        Lookupd {
            topics: topic_names.iter().cloned().collect(),
            topics_json: Bytes::from(format!("{{\"topics\":{topics_list}}}")),
            channels_json: Bytes::from(format!("{{\"channels\":{channels}}}")),
            lookup_json: Bytes::from(format!(
                "{{\"channels\":{channels},\"producers\":[{}]}}",
                producers.join(",")
            )),
            nodes_json: Bytes::from(format!("{{\"producers\":[{}]}}", nodes_list.join(","))),
        }
    }

    pub fn has_topic(&self, topic: &str) -> bool {
        self.topics.contains(topic)
    }

    /// `GET /topics`.
    pub fn topics(&self) -> Bytes {
        self.topics_json.clone()
    }

    /// `GET /channels?topic=T` of a known topic.
    pub fn channels(&self) -> Bytes {
        self.channels_json.clone()
    }

    /// `GET /lookup?topic=T` of a known topic.
    pub fn lookup(&self) -> Bytes {
        self.lookup_json.clone()
    }

    /// `GET /nodes`.
    pub fn nodes(&self) -> Bytes {
        self.nodes_json.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const SHAPE: Shape = Shape {
        nodes: 2,
        topics: 12,
        channels: 3,
        clients: 2,
        producers: 2,
    };

    fn node(i: usize) -> Node {
        Node::new(
            &SHAPE,
            NodeAddr::new(i, 4151 + i as u16, 4150 + i as u16),
            1_700_000_000,
        )
    }

    fn parse(b: &Bytes) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    /// The object's keys, sorted (serde_json's map does not keep their order; the
    /// integration test checks the order).
    fn keys(v: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn full_stats_parse_and_are_sorted_like_nsqd() {
        let n = node(0);
        let v = parse(&n.stats(StatsQuery::ALL));
        let names: Vec<&str> = v["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["topic_name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 12);
        assert_eq!(&names[..4], ["t0", "t1", "t10", "t11"]);
        let ch = &v["topics"][0]["channels"][0];
        assert_eq!(ch["clients"].as_array().unwrap().len(), 2);
        assert_eq!(ch["client_count"], 2);
        let producers = v["producers"].as_array().unwrap();
        assert_eq!(producers.len(), 2);
        assert_eq!(producers[0]["pub_counts"].as_array().unwrap().len(), 6);
        // The same text whether cached or rendered afresh.
        assert_eq!(n.stats(StatsQuery::ALL), n.render_stats(StatsQuery::ALL));
    }

    #[test]
    fn in_flight_adds_up_and_numbers_differ_per_node() {
        let (a, b) = (node(0), node(1));
        let va = parse(&a.stats(StatsQuery::ALL));
        let vb = parse(&b.stats(StatsQuery::ALL));
        let ch = &va["topics"][3]["channels"][1];
        let sum: u64 = ch["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["in_flight_count"].as_u64().unwrap())
            .sum();
        assert_eq!(ch["in_flight_count"].as_u64().unwrap(), sum);
        assert_ne!(
            va["topics"][0]["message_count"],
            vb["topics"][0]["message_count"]
        );
    }

    #[test]
    fn filters_follow_nsqd() {
        let n = node(1);
        let q = |topic, channel, include_clients| StatsQuery {
            topic,
            channel,
            include_clients,
            include_mem: true,
        };
        let v = parse(&n.stats(q(Some("nope"), None, true)));
        assert_eq!(v["topics"], Value::Null);
        assert_eq!(v["producers"], Value::Null);

        let v = parse(&n.stats(q(Some("t3"), Some("zz"), true)));
        assert_eq!(v["topics"], serde_json::json!([]));
        // t3 is published by producer 1 only; producer 0 lists no pub_counts at all.
        let producers = v["producers"].as_array().unwrap();
        assert!(producers[0].get("pub_counts").is_none());
        assert_eq!(producers[1]["pub_counts"][0]["topic"], "t3");

        let v = parse(&n.stats(q(None, Some("c1"), false)));
        let topics = v["topics"].as_array().unwrap();
        assert_eq!(topics.len(), 12);
        assert!(topics
            .iter()
            .all(|t| t["channels"].as_array().unwrap().len() == 1));
        assert_eq!(topics[0]["channels"][0]["clients"], Value::Null);
        assert_eq!(v["producers"], Value::Null);

        let v = parse(&n.stats(StatsQuery {
            include_mem: false,
            ..StatsQuery::ALL
        }));
        assert!(v.get("memory").is_none());
        assert_eq!(
            keys(&v),
            ["health", "producers", "start_time", "topics", "version"]
        );
    }

    #[test]
    fn lookupd_documents() {
        let nodes: Vec<NodeAddr> = (0..3)
            .map(|i| NodeAddr::new(i, 5000 + i as u16, 6000 + i as u16))
            .collect();
        let l = Lookupd::new(&SHAPE, &nodes);
        let v = parse(&l.nodes());
        let producers = v["producers"].as_array().unwrap();
        assert_eq!(producers.len(), 3);
        assert_eq!(
            keys(&producers[0]),
            [
                "broadcast_address",
                "hostname",
                "http_port",
                "remote_address",
                "tcp_port",
                "tombstones",
                "topics",
                "version",
            ]
        );
        assert_eq!(producers[2]["topics"].as_array().unwrap().len(), 12);
        let v = parse(&l.lookup());
        assert_eq!(v["channels"], serde_json::json!(["c0", "c1", "c2"]));
        assert_eq!(v["producers"][1]["http_port"], 5001);
        assert!(l.has_topic("t11") && !l.has_topic("t12"));
    }
}
