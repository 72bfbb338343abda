//! The daemon's shared context: options, the topic registry, connected clients, health, and
//! the operations that span topics and channels (create, delete, publish, persist, scan).
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use nsq_protocol::identify::IdentifyPolicy;
use nsq_protocol::Limits;

use crate::channel::Channel;
use crate::client::ClientShared;
use crate::durable;
use crate::lookup::{Lookup, LookupEvent};
use crate::metadata::{self, ChannelMeta, Metadata, TopicMeta};
use crate::options::Options;
use crate::topic::{Topic, TopicConfig};

/// The default heartbeat is half the fixed 60 s client timeout.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// How often expired in-flight and due deferred messages are looked for.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// Options that can change while running (`PUT /config/...`).
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    pub lookupd_tcp_addresses: Vec<String>,
}

pub struct Nsqd {
    pub opts: Options,
    pub runtime: Mutex<RuntimeOptions>,
    pub data_path: PathBuf,
    pub tcp_port: i64,
    pub http_port: i64,
    pub start_time: i64,
    pub started: Instant,
    pub hostname: String,
    pub identify_policy: IdentifyPolicy,
    pub limits: Limits,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises topic creation, which opens the topic's store outside the registry lock.
    creating_topic: parking_lot::Mutex<()>,
    clients: Mutex<HashMap<u64, Arc<ClientShared>>>,
    next_client_id: AtomicU64,
    health: Mutex<Option<String>>,
    exiting: AtomicBool,
    loading: AtomicBool,
    persist_requested: Notify,
    /// A channel journal grew past its bound: the sync loop runs early.
    checkpoint_wanted: Arc<Notify>,
    /// Held from snapshot to rename, so a write that started earlier can never land after (and
    /// overwrite) one that saw newer state.
    persist_lock: Mutex<()>,
    pub shutdown: Notify,
    /// Announcements to nsqlookupd, and what the lookupds told us.
    pub lookup: Lookup,
    /// The auth servers (`--auth-http-address`), if any.
    pub auth_config: crate::auth::AuthConfig,
    /// Set when `--tls-cert` and `--tls-key` are given: used for IDENTIFY's TLS upgrade.
    pub tls_acceptor: Option<tokio_rustls::TlsAcceptor>,
    lookup_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<LookupEvent>>>,
    /// What `/metrics` keeps between scrapes.
    pub metrics: crate::metrics::Metrics,
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Nsqd {
    pub fn new(opts: Options, data_path: PathBuf, tcp_port: i64, http_port: i64) -> Nsqd {
        let identify_policy = IdentifyPolicy {
            version: nsq_daemon::VERSION.to_string(),
            default_heartbeat: DEFAULT_HEARTBEAT,
            max_heartbeat_interval: opts.max_heartbeat_interval,
            default_output_buffer_size: 16 * 1024,
            max_output_buffer_size: opts.max_output_buffer_size,
            default_output_buffer_timeout: opts.output_buffer_timeout,
            min_output_buffer_timeout: opts.min_output_buffer_timeout,
            max_output_buffer_timeout: opts.max_output_buffer_timeout,
            default_msg_timeout: opts.msg_timeout,
            max_msg_timeout: opts.max_msg_timeout,
            max_rdy_count: opts.max_rdy_count,
            max_deflate_level: opts.max_deflate_level,
            tls_available: false,
            snappy_enabled: opts.snappy,
            deflate_enabled: opts.deflate,
            auth_required: !opts.auth_http_addresses.is_empty(),
            topology_region: opts.topology_region.clone(),
            topology_zone: opts.topology_zone.clone(),
        };
        let limits = Limits {
            max_msg_size: opts.max_msg_size,
            max_body_size: opts.max_body_size,
            max_rdy_count: opts.max_rdy_count,
            max_req_timeout_ms: millis(opts.max_req_timeout),
        };
        let runtime = RuntimeOptions {
            lookupd_tcp_addresses: opts.lookupd_tcp_addresses.clone(),
        };
        let (lookup, lookup_rx) = Lookup::new();
        Nsqd {
            auth_config: crate::auth::AuthConfig::from_options(&opts),
            tls_acceptor: None,
            lookup,
            lookup_rx: Mutex::new(Some(lookup_rx)),
            runtime: Mutex::new(runtime),
            data_path,
            tcp_port,
            http_port,
            start_time: crate::topic::unix_nanos() / 1_000_000_000,
            started: Instant::now(),
            hostname: nsq_daemon::hostname(),
            identify_policy,
            limits,
            topics: RwLock::new(BTreeMap::new()),
            creating_topic: parking_lot::Mutex::new(()),
            clients: Mutex::new(HashMap::new()),
            next_client_id: AtomicU64::new(1),
            health: Mutex::new(None),
            exiting: AtomicBool::new(false),
            loading: AtomicBool::new(false),
            persist_requested: Notify::new(),
            checkpoint_wanted: Arc::new(Notify::new()),
            persist_lock: Mutex::new(()),
            shutdown: Notify::new(),
            metrics: crate::metrics::Metrics::new(),
            opts,
        }
    }

    /// Enables IDENTIFY's TLS upgrade (call before the daemon is shared).
    pub fn with_tls(mut self, acceptor: Option<tokio_rustls::TlsAcceptor>) -> Nsqd {
        self.identify_policy.tls_available = acceptor.is_some();
        self.tls_acceptor = acceptor;
        self
    }

    /// The receiving end of the lookup announcements, for the lookup task (taken once).
    pub fn take_lookup_events(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<LookupEvent>> {
        self.lookup_rx.lock().take()
    }

    pub fn is_exiting(&self) -> bool {
        self.exiting.load(Ordering::Acquire)
    }

    /// `None` when healthy, else the last storage error.
    pub fn health(&self) -> Option<String> {
        self.health.lock().clone()
    }

    pub fn set_health(&self, err: Option<String>) {
        *self.health.lock() = err;
    }

    pub fn health_text(&self) -> String {
        match self.health() {
            None => "OK".to_string(),
            Some(e) => format!("NOK - {e}"),
        }
    }

    // ----- clients -----

    pub fn new_client(&self, remote_addr: String, remote_ip: String) -> Arc<ClientShared> {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let now = crate::topic::unix_nanos() / 1_000_000_000;
        let c = Arc::new(ClientShared::new(id, remote_addr, remote_ip, now));
        self.clients.lock().insert(id, c.clone());
        c
    }

    pub fn remove_client(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn clients(&self) -> Vec<Arc<ClientShared>> {
        self.clients.lock().values().cloned().collect()
    }

    // ----- topics and channels -----

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    /// Returns the topic, creating it (and persisting metadata) if needed.
    pub fn get_or_create_topic(&self, name: &str) -> Arc<Topic> {
        if let Some(t) = self.topic(name) {
            return t;
        }
        let Some(topic) = self.create_topic(name, false) else {
            return self.get_or_create_topic(name);
        };
        log::info!("TOPIC({name}): created");
        if !topic.ephemeral {
            self.request_persist();
        }
        self.lookup.send(LookupEvent::Register {
            topic: name.to_string(),
            channel: None,
        });
        topic
    }

    /// Creates and registers a topic (held, for pre-creation, when `hold`); `None` when it
    /// already exists. Its store is opened (files read, fsyncs) with no registry lock held, so
    /// lookups of other topics never wait on it; creations are serialised instead.
    fn create_topic(&self, name: &str, hold: bool) -> Option<Arc<Topic>> {
        let _one_at_a_time = self.creating_topic.lock();
        if self.topics.read().contains_key(name) {
            return None;
        }
        let t = Arc::new(durable::blocking(|| self.make_topic(name)));
        if hold {
            t.inner.lock().state.set_hold(true);
        }
        self.topics.write().insert(name.to_string(), t.clone());
        Some(t)
    }

    /// Returns the topic; a topic created now first gets the channels nsqlookupd knows for it
    /// (so a message published to a new node reaches channels consumers use elsewhere), and
    /// holds its messages until then.
    pub async fn topic_with_precreation(&self, name: &str) -> Arc<Topic> {
        if let Some(t) = self.topic(name) {
            return t;
        }
        let configured = !self.runtime.lock().lookupd_tcp_addresses.is_empty();
        if !configured || self.loading.load(Ordering::Acquire) {
            return self.get_or_create_topic(name);
        }
        let Some(topic) = self.create_topic(name, true) else {
            return self.get_or_create_topic(name);
        };
        log::info!("TOPIC({name}): created");
        if !topic.ephemeral {
            self.request_persist();
        }
        if self.lookup.http_addrs().is_empty() {
            log::error!(
                "TOPIC({name}): no available nsqlookupd to query for channels to pre-create"
            );
        } else {
            for c in crate::lookup::channels_from_lookupd(self, name).await {
                if nsq_protocol::names::is_ephemeral(&c)
                    || !nsq_protocol::names::is_valid_channel_name(c.as_bytes())
                {
                    continue;
                }
                self.get_or_create_channel(&topic, &c);
            }
        }
        let released = topic.inner.lock().state.set_hold(false);
        if released {
            for c in topic.channels() {
                c.wake_all();
            }
        }
        self.lookup.send(LookupEvent::Register {
            topic: name.to_string(),
            channel: None,
        });
        topic
    }

    fn topic_config(&self) -> TopicConfig {
        TopicConfig {
            node_id: self.opts.node_id,
            mem_queue_size: self.opts.mem_queue_size,
            e2e_window: (!self.opts.e2e_processing_latency_percentiles.is_empty())
                .then_some(self.opts.e2e_processing_latency_window_time),
        }
    }

    /// A topic with its log in the store (memory only for ephemeral topics, or when the store
    /// cannot be opened, which is logged and makes nsqd unhealthy).
    fn make_topic(&self, name: &str) -> Topic {
        let cfg = self.topic_config();
        if nsq_protocol::names::is_ephemeral(name) {
            return Topic::in_memory(name, cfg);
        }
        match durable::open_topic_log(&self.data_path, name, &durable::log_options(&self.opts)) {
            Ok(log) => {
                let writer = log.writer();
                let dir = log.dir().to_path_buf();
                let health = log.health();
                let mut state = nsq_queue::TopicState::new(Box::new(log), None);
                match durable::recover_held_deferred(&self.data_path, name, &mut state, &health) {
                    Ok(held) => {
                        let store = durable::TopicStore {
                            writer,
                            level: self.opts.durability,
                            dir,
                            data_path: self.data_path.clone(),
                            held,
                            sync_every: self.opts.sync_every.max(1) as u64,
                            sync_scheduled: Default::default(),
                            health,
                            state_file: Default::default(),
                            checkpoint_wanted: self.checkpoint_wanted.clone(),
                        };
                        Topic::new(name, cfg, state, Some(store))
                    }
                    Err(e) => {
                        log::error!(
                            "TOPIC({name}): cannot open its store - {e}; keeping it in memory"
                        );
                        self.set_health(Some(e.to_string()));
                        Topic::in_memory(name, cfg)
                    }
                }
            }
            Err(e) => {
                log::error!("TOPIC({name}): cannot open its store - {e}; keeping it in memory");
                self.set_health(Some(e.to_string()));
                Topic::in_memory(name, cfg)
            }
        }
    }

    pub fn get_or_create_channel(&self, topic: &Arc<Topic>, name: &str) -> Arc<Channel> {
        let (channel, created) = topic.get_or_create_channel(name);
        if created && !channel.ephemeral && !topic.ephemeral {
            self.request_persist();
        }
        if created {
            self.lookup.send(LookupEvent::Register {
                topic: topic.name.clone(),
                channel: Some(name.to_string()),
            });
        }
        channel
    }

    pub fn delete_topic(&self, name: &str) -> bool {
        let Some(topic) = self.topics.write().remove(name) else {
            return false;
        };
        log::info!("TOPIC({name}): deleting");
        topic.mark_deleted();
        self.lookup.send(LookupEvent::Unregister {
            topic: name.to_string(),
            channel: None,
        });
        for c in topic.channels() {
            topic.remove_channel(&c.name);
        }
        topic.empty();
        if let Some(store) = &topic.store {
            if let Err(e) = std::fs::remove_dir_all(&store.dir) {
                log::error!(
                    "TOPIC({name}): failed to remove {} - {e}",
                    store.dir.display()
                );
            }
        }
        if !topic.ephemeral {
            self.request_persist();
        }
        true
    }

    pub fn delete_channel(&self, topic: &Arc<Topic>, name: &str) -> bool {
        let Some(left) = topic.remove_channel(name) else {
            return false;
        };
        self.lookup.send(LookupEvent::Unregister {
            topic: topic.name.clone(),
            channel: Some(name.to_string()),
        });
        if !topic.ephemeral && !nsq_protocol::names::is_ephemeral(name) {
            self.request_persist();
        }
        if left == 0 && topic.ephemeral {
            self.delete_topic(&topic.name);
        }
        true
    }

    /// A consumer left its channel: an ephemeral channel without consumers goes away.
    pub fn consumer_left(&self, topic: &Arc<Topic>, channel: &Arc<Channel>, client_id: u64) {
        let left = channel.remove_client(client_id);
        if left == 0 && channel.ephemeral && !channel.is_deleted() {
            self.delete_channel(topic, &channel.name);
        }
    }

    /// Empties a channel: queued, in-flight and deferred messages are dropped and its consumers'
    /// in-flight counts reset.
    pub fn empty_channel(&self, topic: &Arc<Topic>, channel: &Arc<Channel>) {
        let mut ci = channel.inner.lock();
        {
            let mut ti = topic.inner.lock();
            ci.state.empty(&mut ti.state);
            if let (Some(j), Some(pos)) =
                (channel.journal.as_ref(), ti.state.channel_pos(channel.key))
            {
                j.append(&nsq_store::journal::Event::Empty(pos));
            }
        }
        for c in ci.clients.values() {
            c.in_flight.store(0, Ordering::Release);
            c.wake();
        }
        drop(ci);
        if let (Some(store), Some(j)) = (&topic.store, channel.journal.as_ref()) {
            if let Err(e) = store.commit_journal(j) {
                log::error!("CHANNEL({}): {e}", channel.name);
            }
        }
    }

    // ----- publishing -----

    pub fn publish(&self, topic: &Arc<Topic>, bodies: Vec<Bytes>) -> Result<(), String> {
        if self.is_exiting() {
            return Err("exiting".to_string());
        }
        let res = topic.publish(bodies);
        self.record_store_result(&topic.name, &res);
        res.map_err(|e| e.to_string())
    }

    /// Publishes for the TCP path, which commits a whole batch of commands at once (see
    /// [`Topic::publish_uncommitted`]).
    pub fn publish_uncommitted(
        &self,
        topic: &Arc<Topic>,
        bodies: Vec<Bytes>,
    ) -> Result<u64, String> {
        if self.is_exiting() {
            return Err("exiting".to_string());
        }
        topic.publish_uncommitted(bodies).map_err(|e| {
            self.record_store_result(&topic.name, &Err(e.clone()));
            e.to_string()
        })
    }

    /// Commits a topic's log up to `upto`, recording the outcome in the health status.
    pub fn commit(&self, topic: &Topic, upto: u64) -> Result<(), String> {
        let res = topic.commit(upto);
        self.record_store_result(&topic.name, &res);
        res.map_err(|e| e.to_string())
    }

    /// Health follows the last store write: a failure makes nsqd unhealthy until a write
    /// succeeds again.
    fn record_store_result(&self, topic: &str, res: &Result<(), nsq_queue::QueueError>) {
        match res {
            Ok(()) => {
                if self.health.lock().is_some() {
                    self.set_health(None);
                }
            }
            Err(e) => {
                log::error!("TOPIC({topic}): failed to store message - {e}");
                self.set_health(Some(e.to_string()));
            }
        }
    }

    pub fn publish_deferred(
        &self,
        topic: &Arc<Topic>,
        body: Bytes,
        defer_ms: i64,
    ) -> Result<(), String> {
        if self.is_exiting() {
            return Err("exiting".to_string());
        }
        let res = if defer_ms == 0 {
            topic.publish([body])
        } else {
            topic.publish_deferred(body, defer_ms)
        };
        self.record_store_result(&topic.name, &res);
        res.map_err(|e| e.to_string())
    }

    // ----- metadata -----

    pub fn request_persist(&self) {
        if !self.loading.load(Ordering::Acquire) {
            self.persist_requested.notify_one();
        }
    }

    pub fn metadata(&self) -> Metadata {
        let mut topics = Vec::new();
        for t in self.topics() {
            if t.ephemeral {
                continue;
            }
            let channels: Vec<ChannelMeta> = t
                .channels()
                .iter()
                .filter(|c| !c.ephemeral)
                .map(|c| ChannelMeta {
                    name: c.name.clone(),
                    paused: c.paused(),
                })
                .collect();
            topics.push(TopicMeta {
                name: t.name.clone(),
                paused: t.paused(),
                channels: (!channels.is_empty()).then_some(channels),
            });
        }
        Metadata {
            topics: (!topics.is_empty()).then_some(topics),
            version: nsq_daemon::VERSION.to_string(),
        }
    }

    pub fn persist_metadata(&self) -> Result<(), metadata::MetadataError> {
        let _serialized = self.persist_lock.lock();
        let md = self.metadata();
        log::info!(
            "NSQ: persisting topic/channel metadata to {}",
            metadata::file_name(&self.data_path).display()
        );
        metadata::save(&self.data_path, &md)
    }

    /// Recreates topics and channels from `nsqd.dat` (invalid names skipped with a warning).
    pub fn load_metadata(&self) -> Result<(), metadata::MetadataError> {
        let md = metadata::load(&self.data_path, self.opts.node_id)?;
        self.import_legacy(md.as_ref())?;
        // `nsqd.dat` is written in the background, so a topic or channel created just before a
        // crash may be missing from it while the store already holds its acknowledged
        // messages: the store's own files count too (deleting removes them, so nothing
        // deleted comes back). `nsqd.dat` stays the authority for pause flags.
        let mut wanted: BTreeMap<String, (bool, BTreeMap<String, bool>)> = BTreeMap::new();
        for t in md.and_then(|m| m.topics).unwrap_or_default() {
            let entry = wanted.entry(t.name).or_default();
            entry.0 = t.paused;
            for c in t.channels.unwrap_or_default() {
                entry.1.insert(c.name, c.paused);
            }
        }
        for t in nsq_store::layout::stored_topics(&self.data_path) {
            let known = wanted.contains_key(&t);
            let entry = wanted.entry(t.clone()).or_default();
            if !known {
                log::info!("TOPIC({t}): recovered from the store (not yet in nsqd.dat)");
            }
            for c in nsq_store::layout::stored_channels(&self.data_path, &t) {
                entry.1.entry(c).or_insert(false);
            }
        }
        self.loading.store(true, Ordering::Release);
        for (name, (paused, channels)) in wanted {
            if !nsq_protocol::names::is_valid_topic_name(name.as_bytes())
                || nsq_protocol::names::is_ephemeral(&name)
            {
                log::warn!("skipping creation of invalid topic {name}");
                continue;
            }
            let topic = self.get_or_create_topic(&name);
            // The store's own record of pause flags is written before each change is
            // acknowledged, so it wins over nsqd.dat (and stands in for a damaged one).
            let (paused, paused_channels) = match topic.restore_state_file() {
                Some(sf) => (sf.paused, Some(sf.paused_channels)),
                None => (paused, None),
            };
            for (cname, cpaused) in channels {
                let cpaused = match &paused_channels {
                    Some(list) => list.contains(&cname),
                    None => cpaused,
                };
                if !nsq_protocol::names::is_valid_channel_name(cname.as_bytes())
                    || nsq_protocol::names::is_ephemeral(&cname)
                {
                    log::warn!("skipping creation of invalid channel {cname}");
                    continue;
                }
                let channel = match topic.restore_channel(&cname) {
                    Ok(ch) => ch,
                    Err(e) => {
                        if topic.store.is_some() {
                            log::error!("CHANNEL({cname}): cannot recover its state - {e}");
                            self.set_health(Some(e));
                        }
                        self.get_or_create_channel(&topic, &cname)
                    }
                };
                if cpaused {
                    channel.set_paused(true);
                }
            }
            topic.finish_restore(paused);
        }
        self.loading.store(false, Ordering::Release);
        Ok(())
    }

    /// Upgrade in place: queued messages a Go nsqd left in its disk-queue files move into the
    /// store (the Go files are removed only once their content is durable there).
    fn import_legacy(&self, md: Option<&Metadata>) -> Result<(), metadata::MetadataError> {
        let specs = md.map(Metadata::topic_specs).unwrap_or_default();
        let opts = nsq_migrate::ImportOptions {
            max_msg_size: self.opts.max_msg_size,
            max_bytes_per_file: self.opts.max_bytes_per_file.max(1) as u64,
        };
        let report = nsq_migrate::import_legacy(&self.data_path, &specs, &opts)
            .map_err(|e| metadata::MetadataError::Import(e.to_string()))?;
        if report.topics > 0 {
            log::info!(
                "NSQ: imported {} message(s) of {} topic(s) and {} channel message(s) from Go nsqd's disk queues",
                report.messages,
                report.topics,
                report.channel_messages
            );
        }
        for c in &report.corrupt {
            log::error!("NSQ: damaged data in a Go disk queue skipped during import: {c}");
        }
        for q in &report.ignored_queues {
            log::warn!(
                "NSQ: disk queue {q} belongs to no topic or channel in nsqd.dat; left as is"
            );
        }
        Ok(())
    }

    /// Writes `nsqd.dat` whenever asked, coalescing bursts of requests.
    pub async fn persist_loop(self: Arc<Self>) {
        loop {
            self.persist_requested.notified().await;
            if self.is_exiting() {
                return;
            }
            let me = self.clone();
            let res = tokio::task::spawn_blocking(move || me.persist_metadata()).await;
            match res {
                Ok(Err(e)) => log::error!("{e}"),
                Err(e) => log::error!("metadata persistence task failed - {e}"),
                Ok(Ok(())) => {}
            }
        }
    }

    // ----- timeouts and deferrals -----

    /// Moves expired in-flight and due deferred messages back into their channels' queues.
    pub fn scan_once(&self, now: Instant) {
        for topic in self.topics() {
            for channel in topic.channels() {
                let mut ci = channel.inner.lock();
                let due = ci.state.next_deadline().is_some_and(|d| d <= now);
                if !due {
                    continue;
                }
                let released = topic.inner.lock().state.released();
                let outcome = ci.state.scan(now, released);
                for owner in &outcome.timed_out_owners {
                    if let Some(c) = ci.clients.get(owner) {
                        c.release_in_flight(1);
                    }
                }
                for _ in 0..outcome.requeued() {
                    if !channel.has_waiters() {
                        break;
                    }
                    channel.wake_one_locked(&mut ci);
                }
            }
        }
    }

    pub async fn scan_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SCAN_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.is_exiting() {
                return;
            }
            self.scan_once(Instant::now());
        }
    }

    /// Background sync (`--sync-timeout`): fsyncs logs and journals, checkpoints channels and
    /// deletes log segments every channel is done with.
    pub async fn sync_loop(self: Arc<Self>) {
        let period = self.opts.sync_timeout.max(Duration::from_millis(10));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.checkpoint_wanted.notified() => {}
            }
            if self.is_exiting() {
                return;
            }
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for t in me.topics() {
                    durable::sync_topic(&t);
                }
            })
            .await;
        }
    }

    /// Makes everything durable at shutdown: logs fsynced, every channel checkpointed with its
    /// in-flight and deferred messages.
    pub fn close_store(&self) {
        for t in self.topics() {
            durable::close_topic(&t);
        }
    }

    // ----- shutdown -----

    /// Stops accepting work and asks every connection to close.
    pub fn begin_exit(&self) {
        self.exiting.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
        for c in self.clients() {
            c.request_close();
        }
    }
}
