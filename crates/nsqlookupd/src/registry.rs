//! The registration database: which nsqd peers produce which topics and channels, their
//! liveness and tombstones. In memory only; rebuilt from registrations after a restart.
//!
//! A registration key is `(category, key, subkey)`: `("client", "", "")` once, `("topic", T, "")`
//! per topic and `("channel", T, C)` per channel. Each key maps peer ids to producer entries.
//! Keys may exist with no producers; only explicit deletes and the ephemeral rules remove them.
//!
//! Every method takes the lock once, so composite operations (a topic UNREGISTER, a disconnect)
//! are atomic. Queries take the read lock and return owned snapshots (`Arc`s of peers), so JSON
//! encoding happens after the lock is released and readers never wait for each other.
//! Time is passed in as Unix nanoseconds, which keeps the semantics testable.
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nsq_protocol::names::is_ephemeral;
use parking_lot::RwLock;

use crate::protocol::IdentifyRequest;

/// Go's zero `time.Time` as Unix nanoseconds: what NSQ reports as `tombstoned_at` for an entry
/// that was never tombstoned.
pub const GO_ZERO_TIME_NANOS: i64 = -6_795_364_578_871_345_152;

/// The match-everything value for a key or subkey in queries.
pub const WILDCARD: &str = "*";

/// Unix time in nanoseconds.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A duration as nanoseconds, saturating.
pub fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Client,
    Topic,
    Channel,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Client => "client",
            Category::Topic => "topic",
            Category::Channel => "channel",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Registration {
    pub category: Category,
    pub key: String,
    pub subkey: String,
}

impl Registration {
    pub fn new(category: Category, key: &str, subkey: &str) -> Registration {
        Registration {
            category,
            key: key.to_string(),
            subkey: subkey.to_string(),
        }
    }

    /// `("client", "", "")`: every identified peer is a producer of it.
    pub fn client() -> Registration {
        Registration::new(Category::Client, "", "")
    }

    pub fn topic(topic: &str) -> Registration {
        Registration::new(Category::Topic, topic, "")
    }

    pub fn channel(topic: &str, channel: &str) -> Registration {
        Registration::new(Category::Channel, topic, channel)
    }

    /// Whether this key answers a query where `*` matches any key or subkey.
    pub fn is_match(&self, category: Category, key: &str, subkey: &str) -> bool {
        self.category == category
            && (key == WILDCARD || self.key == key)
            && (subkey == WILDCARD || self.subkey == subkey)
    }
}

/// `category:key:subkey`, the form `/debug` uses.
impl fmt::Display for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.category.as_str(), self.key, self.subkey)
    }
}

/// One identified nsqd connection. A single `Arc` is shared by all of the peer's registrations,
/// so a PING refreshes its liveness everywhere without taking the database lock.
#[derive(Debug)]
pub struct PeerInfo {
    /// The connection's remote `ip:port`; unique among live connections.
    pub id: String,
    pub remote_address: String,
    pub hostname: String,
    pub broadcast_address: String,
    pub tcp_port: i64,
    pub http_port: i64,
    pub version: String,
    pub topology_zone: String,
    pub topology_region: String,
    last_update: AtomicI64,
}

impl PeerInfo {
    pub fn new(remote_address: &str, identity: IdentifyRequest, now: i64) -> PeerInfo {
        PeerInfo {
            id: remote_address.to_string(),
            remote_address: remote_address.to_string(),
            hostname: identity.hostname,
            broadcast_address: identity.broadcast_address,
            tcp_port: identity.tcp_port,
            http_port: identity.http_port,
            version: identity.version,
            topology_zone: identity.topology_zone,
            topology_region: identity.topology_region,
            last_update: AtomicI64::new(now),
        }
    }

    /// Unix nanoseconds of the last IDENTIFY or PING.
    pub fn last_update(&self) -> i64 {
        self.last_update.load(Ordering::Relaxed)
    }

    /// Records a PING; returns the previous `last_update`.
    pub fn touch(&self, now: i64) -> i64 {
        self.last_update.swap(now, Ordering::Relaxed)
    }

    /// Active unless the last PING/IDENTIFY is more than `timeout` old.
    pub fn is_active(&self, now: i64, timeout: Duration) -> bool {
        now.saturating_sub(self.last_update()) <= nanos(timeout)
    }

    /// `<broadcast_address>:<http_port>`, how `/topic/tombstone` names a node (no IPv6 brackets,
    /// as in NSQ).
    pub fn node_address(&self) -> String {
        format!("{}:{}", self.broadcast_address, self.http_port)
    }
}

/// A peer's entry in one registration.
#[derive(Debug, Clone)]
pub struct Producer {
    pub peer: Arc<PeerInfo>,
    /// When `/topic/tombstone` last marked this entry (Unix ns); `None` if never.
    pub tombstoned_at: Option<i64>,
}

impl Producer {
    fn new(peer: &Arc<PeerInfo>) -> Producer {
        Producer {
            peer: peer.clone(),
            tombstoned_at: None,
        }
    }

    /// Tombstoned within `lifetime` of `now`. An expired tombstone is ignored but kept (it still
    /// shows in `/debug`).
    pub fn is_tombstoned(&self, now: i64, lifetime: Duration) -> bool {
        self.tombstoned_at
            .is_some_and(|at| now.saturating_sub(at) < nanos(lifetime))
    }

    /// `tombstoned_at` as NSQ reports it: Go's zero time when never tombstoned.
    pub fn tombstoned_at_nanos(&self) -> i64 {
        self.tombstoned_at.unwrap_or(GO_ZERO_TIME_NANOS)
    }

    /// Visible to consumers: the peer is active and this entry is not freshly tombstoned.
    fn is_visible(
        &self,
        now: i64,
        inactive_timeout: Duration,
        tombstone_lifetime: Duration,
    ) -> bool {
        self.peer.is_active(now, inactive_timeout) && !self.is_tombstoned(now, tombstone_lifetime)
    }
}

type ProducerMap = HashMap<String, Producer>;
/// key → subkey → producers, for one category.
type Keys = HashMap<String, HashMap<String, ProducerMap>>;

#[derive(Default)]
struct Inner {
    /// Indexed by [`Category::index`]; nesting by key makes `("channel", T, *)` a direct lookup.
    categories: [Keys; 3],
}

impl Inner {
    fn keys(&self, c: Category) -> &Keys {
        &self.categories[c.index()]
    }

    fn keys_mut(&mut self, c: Category) -> &mut Keys {
        &mut self.categories[c.index()]
    }

    fn get(&self, r: &Registration) -> Option<&ProducerMap> {
        self.keys(r.category).get(&r.key)?.get(&r.subkey)
    }

    fn get_mut(&mut self, r: &Registration) -> Option<&mut ProducerMap> {
        self.keys_mut(r.category)
            .get_mut(&r.key)?
            .get_mut(&r.subkey)
    }

    fn entry(&mut self, r: &Registration) -> &mut ProducerMap {
        self.keys_mut(r.category)
            .entry(r.key.clone())
            .or_default()
            .entry(r.subkey.clone())
            .or_default()
    }

    /// Adds `peer` unless this very connection is already there. An entry left by an earlier
    /// connection that had the same address is replaced, so that connection's late cleanup
    /// cannot remove the new one.
    fn add_producer(&mut self, r: &Registration, peer: &Arc<PeerInfo>) -> bool {
        let producers = self.entry(r);
        match producers.get(&peer.id) {
            Some(p) if Arc::ptr_eq(&p.peer, peer) => false,
            _ => {
                producers.insert(peer.id.clone(), Producer::new(peer));
                true
            }
        }
    }

    /// Removes `id` from `r` (the key stays); returns whether it was there and how many
    /// producers are left.
    fn remove_producer(&mut self, r: &Registration, id: &str) -> (bool, usize) {
        match self.get_mut(r) {
            Some(producers) => {
                let removed = producers.remove(id).is_some();
                (removed, producers.len())
            }
            None => (false, 0),
        }
    }

    fn remove_registration(&mut self, r: &Registration) -> bool {
        let keys = self.keys_mut(r.category);
        let Some(subkeys) = keys.get_mut(&r.key) else {
            return false;
        };
        let removed = subkeys.remove(&r.subkey).is_some();
        // A key is only present while it has a subkey, so existence stays a plain lookup.
        if subkeys.is_empty() {
            keys.remove(&r.key);
        }
        removed
    }

    /// Registrations matching a query (`*` matches anything). Exact queries are direct lookups.
    fn find_registrations(&self, c: Category, key: &str, subkey: &str) -> Vec<Registration> {
        let keys = self.keys(c);
        let with_key = |k: &str, subkeys: &HashMap<String, ProducerMap>| -> Vec<Registration> {
            if subkey == WILDCARD {
                subkeys.keys().map(|s| Registration::new(c, k, s)).collect()
            } else if subkeys.contains_key(subkey) {
                vec![Registration::new(c, k, subkey)]
            } else {
                Vec::new()
            }
        };
        let mut out = if key == WILDCARD {
            keys.iter().flat_map(|(k, s)| with_key(k, s)).collect()
        } else {
            keys.get(key).map(|s| with_key(key, s)).unwrap_or_default()
        };
        out.sort();
        out
    }

    /// Producers of every matching registration, one per peer id.
    fn find_producers(&self, c: Category, key: &str, subkey: &str) -> Vec<&Producer> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in self.find_registrations(c, key, subkey) {
            if let Some(producers) = self.get(&r) {
                for p in producers.values() {
                    if seen.insert(p.peer.id.as_str()) {
                        out.push(p);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.peer.id.cmp(&b.peer.id));
        out
    }

    fn all(&self) -> impl Iterator<Item = (Category, &str, &str, &ProducerMap)> {
        [Category::Client, Category::Topic, Category::Channel]
            .into_iter()
            .flat_map(move |c| {
                self.keys(c).iter().flat_map(move |(k, subkeys)| {
                    subkeys
                        .iter()
                        .map(move |(s, producers)| (c, k.as_str(), s.as_str(), producers))
                })
            })
    }
}

/// What a topic or channel UNREGISTER removed, for logging.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unregistered {
    /// Entries the command asked to remove and that were there.
    pub removed: Vec<Registration>,
    /// Channel entries a topic UNREGISTER had to remove: nsqd unregisters channels before their
    /// topic, so these mean it skipped one.
    pub unexpected: Vec<Registration>,
}

/// `/lookup` for one topic.
#[derive(Debug, Clone)]
pub struct TopicLookup {
    pub channels: Vec<String>,
    pub producers: Vec<Arc<PeerInfo>>,
}

/// One `/nodes` entry: an active peer with the topics it produces and, aligned with them,
/// whether it is tombstoned for each.
#[derive(Debug, Clone)]
pub struct Node {
    pub peer: Arc<PeerInfo>,
    pub topics: Vec<String>,
    pub tombstones: Vec<bool>,
}

/// What `/metrics` reports about the registrations; see [`RegistrationDb::summary`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Identified nsqd that are active.
    pub producers: usize,
    /// Channel keys over all topics.
    pub channels: usize,
    /// Topic producer entries tombstoned within the lifetime.
    pub tombstones: usize,
    /// Every topic key with its active, not tombstoned producers.
    pub topics: Vec<(String, usize)>,
}

#[derive(Default)]
pub struct RegistrationDb {
    inner: RwLock<Inner>,
}

impl RegistrationDb {
    pub fn new() -> RegistrationDb {
        RegistrationDb::default()
    }

    // ---- primitives, as NSQ's database has them ----

    /// Creates an empty key if it does not exist.
    pub fn add_registration(&self, r: &Registration) {
        self.inner.write().entry(r);
    }

    /// Adds `peer` as a producer of `r` (creating the key); false if it already was one. An
    /// existing entry keeps its tombstone.
    pub fn add_producer(&self, r: &Registration, peer: &Arc<PeerInfo>) -> bool {
        self.inner.write().add_producer(r, peer)
    }

    /// Removes peer `id` from `r`, keeping the key; returns (was there, producers left).
    pub fn remove_producer(&self, r: &Registration, id: &str) -> (bool, usize) {
        self.inner.write().remove_producer(r, id)
    }

    /// Deletes the key and its producers; false if it did not exist.
    pub fn remove_registration(&self, r: &Registration) -> bool {
        self.inner.write().remove_registration(r)
    }

    /// Keys matching the query, sorted. `*` as key or subkey matches anything.
    pub fn find_registrations(&self, c: Category, key: &str, subkey: &str) -> Vec<Registration> {
        self.inner.read().find_registrations(c, key, subkey)
    }

    /// Producers of the matching keys, one per peer, sorted by peer id.
    pub fn find_producers(&self, c: Category, key: &str, subkey: &str) -> Vec<Producer> {
        self.inner
            .read()
            .find_producers(c, key, subkey)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Every key peer `id` is a producer of, sorted.
    pub fn lookup_registrations(&self, id: &str) -> Vec<Registration> {
        let inner = self.inner.read();
        let mut out: Vec<Registration> = inner
            .all()
            .filter(|(.., producers)| producers.contains_key(id))
            .map(|(c, k, s, _)| Registration::new(c, k, s))
            .collect();
        out.sort();
        out
    }

    // ---- the V1 commands ----

    /// IDENTIFY: the peer becomes a producer of `("client", "", "")`.
    pub fn identify(&self, peer: &Arc<PeerInfo>) -> bool {
        self.add_producer(&Registration::client(), peer)
    }

    /// REGISTER: the channel (if any), then the topic. Returns the entries that are new.
    pub fn register(
        &self,
        peer: &Arc<PeerInfo>,
        topic: &str,
        channel: Option<&str>,
    ) -> Vec<Registration> {
        let mut inner = self.inner.write();
        let mut added = Vec::new();
        let mut keys = Vec::with_capacity(2);
        if let Some(channel) = channel {
            keys.push(Registration::channel(topic, channel));
        }
        keys.push(Registration::topic(topic));
        for r in keys {
            if inner.add_producer(&r, peer) {
                added.push(r);
            }
        }
        added
    }

    /// UNREGISTER. With a channel: removes the peer from that channel, deleting the key if it is
    /// ephemeral and now empty. Without: removes the peer from every channel of the topic and
    /// from the topic, deleting the topic key if it is ephemeral and now empty. Non-ephemeral
    /// keys always stay.
    pub fn unregister(&self, peer_id: &str, topic: &str, channel: Option<&str>) -> Unregistered {
        let mut inner = self.inner.write();
        let mut out = Unregistered::default();
        let remove_from = |inner: &mut Inner, r: Registration, ephemeral: bool| {
            let (removed, left) = inner.remove_producer(&r, peer_id);
            if left == 0 && ephemeral {
                inner.remove_registration(&r);
            }
            removed.then_some(r)
        };
        match channel {
            Some(channel) => {
                let r = Registration::channel(topic, channel);
                out.removed
                    .extend(remove_from(&mut inner, r, is_ephemeral(channel)));
            }
            None => {
                for r in inner.find_registrations(Category::Channel, topic, WILDCARD) {
                    if inner.remove_producer(&r, peer_id).0 {
                        out.unexpected.push(r);
                    }
                }
                let r = Registration::topic(topic);
                out.removed
                    .extend(remove_from(&mut inner, r, is_ephemeral(topic)));
            }
        }
        out
    }

    /// Connection closed: removes this peer from every registration (keys stay). Entries that a
    /// newer connection from the same address has taken over are left alone.
    pub fn remove_peer(&self, peer: &Arc<PeerInfo>) -> Vec<Registration> {
        let mut inner = self.inner.write();
        let mut removed = Vec::new();
        for c in [Category::Client, Category::Topic, Category::Channel] {
            for (k, subkeys) in inner.keys_mut(c).iter_mut() {
                for (s, producers) in subkeys.iter_mut() {
                    let ours = producers
                        .get(&peer.id)
                        .is_some_and(|p| Arc::ptr_eq(&p.peer, peer));
                    if ours {
                        producers.remove(&peer.id);
                        removed.push(Registration::new(c, k, s));
                    }
                }
            }
        }
        removed.sort();
        removed
    }

    // ---- the HTTP administration endpoints ----

    /// `POST /topic/create`.
    pub fn create_topic(&self, topic: &str) {
        self.add_registration(&Registration::topic(topic));
    }

    /// `POST /channel/create`: the channel key and its topic key.
    pub fn create_channel(&self, topic: &str, channel: &str) {
        let mut inner = self.inner.write();
        inner.entry(&Registration::channel(topic, channel));
        inner.entry(&Registration::topic(topic));
    }

    /// `POST /topic/delete`: every channel key of the topic, then the topic key, with their
    /// producers. Returns what was deleted (`*` deletes every topic, as in NSQ).
    pub fn delete_topic(&self, topic: &str) -> Vec<Registration> {
        let mut inner = self.inner.write();
        let mut deleted = inner.find_registrations(Category::Channel, topic, WILDCARD);
        deleted.extend(inner.find_registrations(Category::Topic, topic, ""));
        for r in &deleted {
            inner.remove_registration(r);
        }
        deleted
    }

    /// `POST /channel/delete`; false if the key does not exist.
    pub fn delete_channel(&self, topic: &str, channel: &str) -> bool {
        self.remove_registration(&Registration::channel(topic, channel))
    }

    /// `POST /topic/tombstone`: marks (time = `now`) every producer of the topic whose
    /// `<broadcast_address>:<http_port>` is `node`. Returns how many entries were marked.
    pub fn tombstone(&self, topic: &str, node: &str, now: i64) -> usize {
        let mut inner = self.inner.write();
        let mut marked = 0;
        for r in inner.find_registrations(Category::Topic, topic, "") {
            if let Some(producers) = inner.get_mut(&r) {
                for p in producers.values_mut() {
                    if p.peer.node_address() == node {
                        p.tombstoned_at = Some(now);
                        marked += 1;
                    }
                }
            }
        }
        marked
    }

    // ---- the HTTP queries ----

    /// `/lookup`: `None` when the topic key does not exist. Channels include keys without
    /// producers; producers are the active, not freshly tombstoned ones.
    pub fn lookup(
        &self,
        topic: &str,
        now: i64,
        inactive_timeout: Duration,
        tombstone_lifetime: Duration,
    ) -> Option<TopicLookup> {
        let inner = self.inner.read();
        if inner
            .find_registrations(Category::Topic, topic, "")
            .is_empty()
        {
            return None;
        }
        let channels = inner
            .find_registrations(Category::Channel, topic, WILDCARD)
            .into_iter()
            .map(|r| r.subkey)
            .collect();
        let producers = inner
            .find_producers(Category::Topic, topic, "")
            .into_iter()
            .filter(|p| p.is_visible(now, inactive_timeout, tombstone_lifetime))
            .map(|p| p.peer.clone())
            .collect();
        Some(TopicLookup {
            channels,
            producers,
        })
    }

    /// `/topics`: every topic key, with or without producers, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.find_registrations(Category::Topic, WILDCARD, "")
            .into_iter()
            .map(|r| r.key)
            .collect()
    }

    /// `/channels`: every channel key of the topic, sorted.
    pub fn channels(&self, topic: &str) -> Vec<String> {
        self.find_registrations(Category::Channel, topic, WILDCARD)
            .into_iter()
            .map(|r| r.subkey)
            .collect()
    }

    /// `/nodes`: identified peers that are active (tombstones do not hide them), each with the
    /// topics it produces and whether each of those entries is tombstoned within `lifetime`.
    pub fn nodes(&self, now: i64, inactive_timeout: Duration, lifetime: Duration) -> Vec<Node> {
        let inner = self.inner.read();
        let mut nodes: Vec<Node> = inner
            .find_producers(Category::Client, "", "")
            .into_iter()
            .filter(|p| p.peer.is_active(now, inactive_timeout))
            .map(|p| Node {
                peer: p.peer.clone(),
                topics: Vec::new(),
                tombstones: Vec::new(),
            })
            .collect();
        let index: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.peer.id.as_str(), i))
            .collect();
        // One pass over the topics instead of one scan of everything per node.
        let mut found: Vec<Vec<(String, bool)>> = vec![Vec::new(); nodes.len()];
        for (topic, subkeys) in inner.keys(Category::Topic) {
            let Some(producers) = subkeys.get("") else {
                continue;
            };
            for p in producers.values() {
                let Some(&i) = index.get(p.peer.id.as_str()) else {
                    continue;
                };
                if Arc::ptr_eq(&p.peer, &nodes[i].peer) {
                    found[i].push((topic.clone(), p.is_tombstoned(now, lifetime)));
                }
            }
        }
        for (node, mut topics) in nodes.iter_mut().zip(found) {
            topics.sort();
            (node.topics, node.tombstones) = topics.into_iter().unzip();
        }
        nodes
    }

    /// The figures `/metrics` reports, read under one read lock: producers as `/nodes` counts
    /// them, topic and channel keys, live tombstones, and each topic's visible producers (as
    /// `/lookup` lists them), sorted by topic.
    pub fn summary(&self, now: i64, inactive_timeout: Duration, lifetime: Duration) -> Summary {
        let inner = self.inner.read();
        let producers = inner.get(&Registration::client()).map_or(0, |p| {
            p.values()
                .filter(|p| p.peer.is_active(now, inactive_timeout))
                .count()
        });
        let mut tombstones = 0;
        let mut topics: Vec<(String, usize)> = inner
            .keys(Category::Topic)
            .iter()
            .map(|(topic, subkeys)| {
                let entries = subkeys.get("").into_iter().flat_map(|p| p.values());
                let mut visible = 0;
                for p in entries {
                    if p.is_tombstoned(now, lifetime) {
                        tombstones += 1;
                    } else if p.peer.is_active(now, inactive_timeout) {
                        visible += 1;
                    }
                }
                (topic.clone(), visible)
            })
            .collect();
        let channels = inner
            .keys(Category::Channel)
            .values()
            .map(HashMap::len)
            .sum();
        drop(inner);
        topics.sort_unstable();
        Summary {
            producers,
            channels,
            tombstones,
            topics,
        }
    }

    /// `/debug`: every key that has producers, sorted, with copies of its entries (by peer id).
    pub fn dump(&self) -> Vec<(Registration, Vec<Producer>)> {
        let inner = self.inner.read();
        let mut out: Vec<(Registration, Vec<Producer>)> = inner
            .all()
            .filter(|(.., producers)| !producers.is_empty())
            .map(|(c, k, s, producers)| {
                let mut entries: Vec<Producer> = producers.values().cloned().collect();
                entries.sort_by(|a, b| a.peer.id.cmp(&b.peer.id));
                (Registration::new(c, k, s), entries)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000_000_000;
    const SEC: i64 = 1_000_000_000;
    const INACTIVE: Duration = Duration::from_secs(300);
    const LIFETIME: Duration = Duration::from_secs(45);

    fn peer(id: &str, bcast: &str, http_port: i64) -> Arc<PeerInfo> {
        Arc::new(PeerInfo::new(
            id,
            IdentifyRequest {
                broadcast_address: bcast.into(),
                hostname: format!("host-{bcast}"),
                tcp_port: 4150,
                http_port,
                version: "1.3.0".into(),
                topology_zone: String::new(),
                topology_region: String::new(),
            },
            T0,
        ))
    }

    fn identified(db: &RegistrationDb, id: &str) -> Arc<PeerInfo> {
        let p = peer(id, id, 4151);
        assert!(db.identify(&p));
        p
    }

    fn lookup(db: &RegistrationDb, topic: &str, now: i64) -> Option<(Vec<String>, Vec<String>)> {
        db.lookup(topic, now, INACTIVE, LIFETIME).map(|l| {
            (
                l.channels,
                l.producers.iter().map(|p| p.id.clone()).collect(),
            )
        })
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn register_adds_channel_and_topic() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        assert_eq!(
            db.register(&a, "t", Some("c")),
            vec![Registration::channel("t", "c"), Registration::topic("t")]
        );
        // Registering again is a no-op.
        assert!(db.register(&a, "t", Some("c")).is_empty());
        assert!(db.register(&a, "t", None).is_empty());
        assert_eq!(lookup(&db, "t", T0), Some((strs(&["c"]), strs(&["a:1"]))));
        assert_eq!(db.topics(), strs(&["t"]));
        assert_eq!(db.channels("t"), strs(&["c"]));
        assert_eq!(
            db.lookup_registrations("a:1"),
            vec![
                Registration::client(),
                Registration::topic("t"),
                Registration::channel("t", "c"),
            ]
        );
    }

    #[test]
    fn unregister_channel_keeps_topic_and_non_ephemeral_key() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        db.register(&a, "t", Some("c"));
        let out = db.unregister("a:1", "t", Some("c"));
        assert_eq!(out.removed, vec![Registration::channel("t", "c")]);
        assert!(out.unexpected.is_empty());
        assert_eq!(lookup(&db, "t", T0), Some((strs(&["c"]), strs(&["a:1"]))));
        // Unregistering what is not registered removes nothing.
        assert_eq!(
            db.unregister("a:1", "t", Some("c")),
            Unregistered::default()
        );
        assert_eq!(db.unregister("a:1", "nope", None), Unregistered::default());
    }

    #[test]
    fn ephemeral_channel_key_goes_when_its_last_producer_does() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        let b = identified(&db, "b:1");
        db.register(&a, "t", Some("c#ephemeral"));
        db.register(&b, "t", Some("c#ephemeral"));
        db.unregister("a:1", "t", Some("c#ephemeral"));
        assert_eq!(db.channels("t"), strs(&["c#ephemeral"]));
        db.unregister("b:1", "t", Some("c#ephemeral"));
        assert!(db.channels("t").is_empty());
        assert_eq!(db.topics(), strs(&["t"]));
    }

    #[test]
    fn ephemeral_topic_key_goes_when_its_last_producer_does() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        let b = identified(&db, "b:1");
        db.register(&a, "t#ephemeral", None);
        db.register(&b, "t#ephemeral", None);
        db.unregister("a:1", "t#ephemeral", None);
        assert_eq!(db.topics(), strs(&["t#ephemeral"]));
        db.unregister("b:1", "t#ephemeral", None);
        assert!(db.topics().is_empty());
        assert!(lookup(&db, "t#ephemeral", T0).is_none());
        // A non-ephemeral topic stays with zero producers.
        db.register(&a, "u", None);
        db.unregister("a:1", "u", None);
        assert_eq!(lookup(&db, "u", T0), Some((vec![], vec![])));
    }

    #[test]
    fn topic_unregister_removes_the_peer_from_every_channel() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        let b = identified(&db, "b:1");
        db.register(&a, "t", Some("c1"));
        db.register(&a, "t", Some("c2#ephemeral"));
        db.register(&b, "t", Some("c1"));
        db.register(&a, "other", Some("c1"));
        let out = db.unregister("a:1", "t", None);
        assert_eq!(out.removed, vec![Registration::topic("t")]);
        assert_eq!(
            out.unexpected,
            vec![
                Registration::channel("t", "c1"),
                Registration::channel("t", "c2#ephemeral")
            ]
        );
        // Channel keys stay (even the ephemeral one, as in NSQ); b keeps its entries.
        assert_eq!(db.channels("t"), strs(&["c1", "c2#ephemeral"]));
        assert_eq!(
            db.find_producers(Category::Channel, "t", "c1")
                .iter()
                .map(|p| p.peer.id.clone())
                .collect::<Vec<_>>(),
            strs(&["b:1"])
        );
        assert!(db
            .find_producers(Category::Channel, "t", "c2#ephemeral")
            .is_empty());
        assert_eq!(db.find_producers(Category::Channel, "other", "c1").len(), 1);
        assert_eq!(lookup(&db, "t", T0).map(|l| l.1), Some(strs(&["b:1"])));
    }

    #[test]
    fn disconnect_removes_the_peer_everywhere_and_keeps_keys() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        let b = identified(&db, "b:1");
        db.register(&a, "t", Some("c"));
        db.register(&a, "e#ephemeral", Some("x#ephemeral"));
        db.register(&b, "t", None);
        let removed = db.remove_peer(&a);
        assert_eq!(removed.len(), 5);
        assert!(db.lookup_registrations("a:1").is_empty());
        assert_eq!(db.topics(), strs(&["e#ephemeral", "t"]));
        assert_eq!(db.channels("e#ephemeral"), strs(&["x#ephemeral"]));
        assert_eq!(lookup(&db, "t", T0).map(|l| l.1), Some(strs(&["b:1"])));
        assert_eq!(db.nodes(T0, INACTIVE, LIFETIME).len(), 1);
    }

    #[test]
    fn a_new_connection_from_the_same_address_survives_the_old_ones_cleanup() {
        let db = RegistrationDb::new();
        let old = identified(&db, "a:1");
        db.register(&old, "t", None);
        let new = peer("a:1", "a:1", 4151);
        assert!(db.identify(&new));
        assert_eq!(db.register(&new, "t", None), vec![Registration::topic("t")]);
        assert!(db.remove_peer(&old).is_empty());
        assert_eq!(lookup(&db, "t", T0).map(|l| l.1), Some(strs(&["a:1"])));
    }

    #[test]
    fn inactive_producers_are_hidden_until_they_ping() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        db.register(&a, "t", None);
        let at_limit = T0 + 300 * SEC;
        assert_eq!(
            lookup(&db, "t", at_limit).map(|l| l.1),
            Some(strs(&["a:1"]))
        );
        assert_eq!(db.nodes(at_limit, INACTIVE, LIFETIME).len(), 1);
        let late = at_limit + 1;
        assert_eq!(lookup(&db, "t", late).map(|l| l.1), Some(vec![]));
        assert!(db.nodes(late, INACTIVE, LIFETIME).is_empty());
        // The registration is still there (visible in /debug), only hidden.
        assert_eq!(db.dump().len(), 2);
        assert_eq!(a.touch(late), T0);
        assert_eq!(lookup(&db, "t", late).map(|l| l.1), Some(strs(&["a:1"])));
        assert_eq!(db.nodes(late, INACTIVE, LIFETIME).len(), 1);
    }

    #[test]
    fn tombstones_hide_from_lookup_for_their_lifetime_only() {
        let db = RegistrationDb::new();
        let a = Arc::new(PeerInfo::new(
            "10.0.0.1:5000",
            IdentifyRequest {
                broadcast_address: "node-a".into(),
                tcp_port: 4150,
                http_port: 4151,
                version: "1.3.0".into(),
                ..IdentifyRequest::default()
            },
            T0,
        ));
        let b = identified(&db, "b:1");
        db.identify(&a);
        db.register(&a, "t", Some("c"));
        db.register(&a, "u", None);
        db.register(&b, "t", None);
        assert_eq!(db.tombstone("t", "node-a:4150", T0), 0);
        assert_eq!(db.tombstone("t", "10.0.0.1:5000", T0), 0);
        assert_eq!(db.tombstone("t", "node-a:4151", T0), 1);
        assert_eq!(lookup(&db, "t", T0).map(|l| l.1), Some(strs(&["b:1"])));
        assert_eq!(
            lookup(&db, "u", T0).map(|l| l.1),
            Some(strs(&["10.0.0.1:5000"]))
        );
        let nodes = db.nodes(T0 + 44 * SEC, INACTIVE, LIFETIME);
        let na = nodes.iter().find(|n| n.peer.id == "10.0.0.1:5000");
        let na = na.map(|n| (n.topics.clone(), n.tombstones.clone()));
        assert_eq!(na, Some((strs(&["t", "u"]), vec![true, false])));
        // After the lifetime the flag is ignored but kept.
        let later = T0 + 45 * SEC;
        assert_eq!(
            lookup(&db, "t", later).map(|l| l.1),
            Some(strs(&["10.0.0.1:5000", "b:1"]))
        );
        let nodes = db.nodes(later, INACTIVE, LIFETIME);
        assert!(nodes.iter().all(|n| n.tombstones.iter().all(|t| !t)));
        let dump = db.dump();
        let (_, entries) = dump
            .iter()
            .find(|(r, _)| *r == Registration::topic("t"))
            .unwrap_or_else(|| panic!("no topic key"));
        let tombstoned: Vec<_> = entries.iter().map(|p| p.tombstoned_at_nanos()).collect();
        assert_eq!(tombstoned, vec![T0, GO_ZERO_TIME_NANOS]);
        // Registering again does not clear a tombstone.
        db.register(&a, "t", None);
        assert_eq!(
            lookup(&db, "t", T0 + SEC).map(|l| l.1),
            Some(strs(&["b:1"]))
        );
        // Unregistering does: the entry is gone.
        db.unregister("10.0.0.1:5000", "t", None);
        db.register(&a, "t", None);
        assert_eq!(lookup(&db, "t", T0 + SEC).map(|l| l.1.len()), Some(2));
    }

    #[test]
    fn http_administration() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        db.create_topic("t");
        db.create_channel("t", "c");
        db.create_channel("u", "d");
        assert_eq!(db.topics(), strs(&["t", "u"]));
        assert_eq!(lookup(&db, "u", T0), Some((strs(&["d"]), vec![])));
        db.register(&a, "t", Some("c2"));
        assert!(!db.delete_channel("t", "missing"));
        assert!(db.delete_channel("t", "c"));
        assert_eq!(db.channels("t"), strs(&["c2"]));
        let deleted = db.delete_topic("t");
        assert_eq!(
            deleted,
            vec![Registration::channel("t", "c2"), Registration::topic("t")]
        );
        assert!(db.delete_topic("t").is_empty());
        assert!(lookup(&db, "t", T0).is_none());
        assert_eq!(db.topics(), strs(&["u"]));
        // Producers went with the keys; the peer's client entry stays.
        assert_eq!(db.lookup_registrations("a:1"), vec![Registration::client()]);
        // Deleting the last channel of a topic keeps the topic.
        assert!(db.delete_channel("u", "d"));
        assert_eq!(db.topics(), strs(&["u"]));
    }

    #[test]
    fn wildcard_queries() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        let b = identified(&db, "b:1");
        db.register(&a, "t", Some("c1"));
        db.register(&b, "t", Some("c2"));
        db.register(&b, "u", Some("c1"));
        assert_eq!(db.find_registrations(Category::Channel, "*", "c1").len(), 2);
        assert_eq!(db.find_registrations(Category::Channel, "t", "*").len(), 2);
        assert_eq!(db.find_registrations(Category::Channel, "*", "*").len(), 3);
        assert_eq!(db.find_registrations(Category::Topic, "*", "").len(), 2);
        assert_eq!(db.find_registrations(Category::Topic, "t", "*").len(), 1);
        assert!(db.find_registrations(Category::Topic, "t", "x").is_empty());
        // Producers are de-duplicated by peer.
        assert_eq!(db.find_producers(Category::Channel, "*", "*").len(), 2);
        assert_eq!(db.find_producers(Category::Topic, "*", "").len(), 2);
        assert_eq!(
            lookup(&db, "*", T0),
            Some((strs(&["c1", "c2", "c1"]), strs(&["a:1", "b:1"])))
        );
    }

    #[test]
    fn nodes_report_only_topic_registrations() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        db.create_channel("t", "c");
        let nodes = db.nodes(T0, INACTIVE, LIFETIME);
        assert_eq!(nodes.len(), 1);
        assert!(nodes[0].topics.is_empty() && nodes[0].tombstones.is_empty());
        db.register(&a, "t", Some("c"));
        db.register(&a, "s", None);
        let nodes = db.nodes(T0, INACTIVE, LIFETIME);
        assert_eq!(nodes[0].topics, strs(&["s", "t"]));
        assert_eq!(nodes[0].tombstones, vec![false, false]);
        // A peer that never identified is no node, even if registered somehow.
        let ghost = peer("g:1", "g", 1);
        db.register(&ghost, "t", None);
        assert_eq!(db.nodes(T0, INACTIVE, LIFETIME).len(), 1);
    }

    #[test]
    fn summary_counts_what_lookups_see() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        let b = identified(&db, "b:1");
        db.register(&a, "t", Some("c1"));
        db.register(&b, "t", Some("c2"));
        db.register(&b, "u", None);
        db.create_topic("empty");
        let s = db.summary(T0, INACTIVE, LIFETIME);
        assert_eq!(
            s,
            Summary {
                producers: 2,
                channels: 2,
                tombstones: 0,
                topics: vec![("empty".into(), 0), ("t".into(), 2), ("u".into(), 1)],
            }
        );
        assert_eq!(db.tombstone("t", "a:1:4151", T0), 1);
        let s = db.summary(T0, INACTIVE, LIFETIME);
        assert_eq!((s.tombstones, s.topics[1].1), (1, 1));
        // An expired tombstone no longer counts, and the producer is visible again.
        let s = db.summary(T0 + 45 * SEC, INACTIVE, LIFETIME);
        assert_eq!((s.tombstones, s.topics[1].1), (0, 2));
        // Silent peers are not counted as producers.
        let late = T0 + 301 * SEC;
        b.touch(late);
        let s = db.summary(late, INACTIVE, LIFETIME);
        assert_eq!((s.producers, s.topics[1].1, s.topics[2].1), (1, 1, 1));
        db.remove_peer(&b);
        let s = db.summary(late, INACTIVE, LIFETIME);
        assert_eq!((s.producers, s.topics[2].1), (0, 0));
    }

    #[test]
    fn dump_lists_keys_with_producers() {
        let db = RegistrationDb::new();
        let a = identified(&db, "a:1");
        db.create_topic("empty");
        db.register(&a, "t", Some("c"));
        let keys: Vec<String> = db.dump().iter().map(|(r, _)| r.to_string()).collect();
        assert_eq!(keys, strs(&["client::", "topic:t:", "channel:t:c"]));
    }

    #[test]
    fn concurrent_readers_and_writers() {
        let db = Arc::new(RegistrationDb::new());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let p = peer(&format!("p:{i}"), "x", 1);
                    db.identify(&p);
                    for n in 0..200 {
                        let topic = format!("t{}", n % 10);
                        db.register(&p, &topic, Some("c"));
                        let _ = db.lookup(&topic, T0, INACTIVE, LIFETIME);
                        let _ = db.nodes(T0, INACTIVE, LIFETIME);
                        db.unregister(&p.id, &topic, None);
                    }
                    db.remove_peer(&p);
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        assert!(db.dump().is_empty());
        assert_eq!(db.topics().len(), 10);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeSet;

        #[derive(Debug, Clone)]
        enum Op {
            Register(usize, usize, Option<usize>),
            Unregister(usize, usize, Option<usize>),
            Disconnect(usize),
            DeleteTopic(usize),
            DeleteChannel(usize, usize),
        }

        const TOPICS: [&str; 3] = ["a", "b#ephemeral", "c"];
        const CHANNELS: [&str; 3] = ["x", "y#ephemeral", "z"];

        fn op() -> impl Strategy<Value = Op> {
            let p = 0..3usize;
            let t = 0..TOPICS.len();
            let c = proptest::option::of(0..CHANNELS.len());
            prop_oneof![
                (p.clone(), t.clone(), c.clone()).prop_map(|(p, t, c)| Op::Register(p, t, c)),
                (p.clone(), t.clone(), c).prop_map(|(p, t, c)| Op::Unregister(p, t, c)),
                p.prop_map(Op::Disconnect),
                t.clone().prop_map(Op::DeleteTopic),
                (t, 0..CHANNELS.len()).prop_map(|(t, c)| Op::DeleteChannel(t, c)),
            ]
        }

        /// A straightforward model: a set of keys and a set of (key, peer) entries.
        #[derive(Default)]
        struct Model {
            keys: BTreeSet<Registration>,
            entries: BTreeSet<(Registration, usize)>,
        }

        impl Model {
            fn add(&mut self, r: Registration, p: usize) {
                self.keys.insert(r.clone());
                self.entries.insert((r, p));
            }

            fn remove(&mut self, r: &Registration, p: usize, ephemeral: bool) {
                self.entries.remove(&(r.clone(), p));
                if ephemeral && !self.entries.iter().any(|(k, _)| k == r) {
                    self.keys.remove(r);
                }
            }

            fn drop_key(&mut self, r: &Registration) {
                self.keys.remove(r);
                self.entries.retain(|(k, _)| k != r);
            }
        }

        proptest! {
            #[test]
            fn matches_a_simple_model(ops in proptest::collection::vec(op(), 0..60)) {
                let db = RegistrationDb::new();
                let mut model = Model::default();
                let peers: Vec<Arc<PeerInfo>> =
                    (0..3).map(|i| peer(&format!("p:{i}"), "h", 1)).collect();
                for (i, p) in peers.iter().enumerate() {
                    db.identify(p);
                    model.add(Registration::client(), i);
                }
                for op in ops {
                    match op {
                        Op::Register(p, t, c) => {
                            let (t, c) = (TOPICS[t], c.map(|c| CHANNELS[c]));
                            db.register(&peers[p], t, c);
                            if let Some(c) = c {
                                model.add(Registration::channel(t, c), p);
                            }
                            model.add(Registration::topic(t), p);
                        }
                        Op::Unregister(p, t, c) => {
                            let (t, c) = (TOPICS[t], c.map(|c| CHANNELS[c]));
                            db.unregister(&peers[p].id, t, c);
                            match c {
                                Some(c) => model.remove(
                                    &Registration::channel(t, c), p, is_ephemeral(c)),
                                None => {
                                    for c in CHANNELS {
                                        model.remove(&Registration::channel(t, c), p, false);
                                    }
                                    model.remove(&Registration::topic(t), p, is_ephemeral(t));
                                }
                            }
                        }
                        Op::Disconnect(p) => {
                            db.remove_peer(&peers[p]);
                            model.entries.retain(|(_, q)| *q != p);
                            // Reconnect, so later operations have a live peer again.
                            db.identify(&peers[p]);
                            model.add(Registration::client(), p);
                        }
                        Op::DeleteTopic(t) => {
                            db.delete_topic(TOPICS[t]);
                            for c in CHANNELS {
                                model.drop_key(&Registration::channel(TOPICS[t], c));
                            }
                            model.drop_key(&Registration::topic(TOPICS[t]));
                        }
                        Op::DeleteChannel(t, c) => {
                            let r = Registration::channel(TOPICS[t], CHANNELS[c]);
                            prop_assert_eq!(
                                db.delete_channel(TOPICS[t], CHANNELS[c]),
                                model.keys.contains(&r)
                            );
                            model.drop_key(&r);
                        }
                    }
                    // Keys, entries and every derived view agree with the model.
                    let mut keys: Vec<Registration> = [Category::Client, Category::Topic, Category::Channel]
                        .into_iter()
                        .flat_map(|c| db.find_registrations(c, "*", "*"))
                        .collect();
                    keys.sort();
                    prop_assert_eq!(&keys, &model.keys.iter().cloned().collect::<Vec<_>>());
                    for (i, p) in peers.iter().enumerate() {
                        let want: Vec<Registration> = model
                            .entries
                            .iter()
                            .filter(|(_, q)| *q == i)
                            .map(|(r, _)| r.clone())
                            .collect();
                        prop_assert_eq!(db.lookup_registrations(&p.id), want.clone());
                        let node = db
                            .nodes(T0, INACTIVE, LIFETIME)
                            .into_iter()
                            .find(|n| n.peer.id == p.id)
                            .map(|n| n.topics);
                        let topics: Vec<String> = want
                            .iter()
                            .filter(|r| r.category == Category::Topic)
                            .map(|r| r.key.clone())
                            .collect();
                        prop_assert_eq!(node, Some(topics));
                    }
                    for t in TOPICS {
                        let exists = model.keys.contains(&Registration::topic(t));
                        prop_assert_eq!(db.lookup(t, T0, INACTIVE, LIFETIME).is_some(), exists);
                    }
                }
            }
        }
    }
}
