//! A live topic: its queue state and channel handles under one lock, and publishing with
//! fan-out done in the publisher's task.
//!
//! Lock order: a channel's lock may be held while taking its topic's lock, never the reverse.
//! Publishing takes only the topic lock, then (with no lock held) writes to the store as
//! `--durability` requires and wakes waiting consumers.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use nsq_protocol::guid::GuidFactory;
use nsq_protocol::names::is_ephemeral;
use nsq_protocol::{Message, MessageId};
use nsq_queue::topic::PendingDeferred;
use nsq_queue::{ChannelState, QueueError, TopicState};
use nsq_store::journal::Event;

use crate::channel::Channel;
use crate::durable::{self, TopicStore};

pub struct TopicInner {
    pub state: TopicState,
    pub channels: BTreeMap<String, Arc<Channel>>,
    guid: GuidFactory,
    next_key: u64,
}

/// Settings every topic is created with.
#[derive(Debug, Clone)]
pub struct TopicConfig {
    pub node_id: i64,
    pub mem_queue_size: i64,
    /// Keep publish-to-FIN latencies over this window (when percentiles are configured).
    pub e2e_window: Option<Duration>,
}

pub struct Topic {
    pub name: String,
    pub ephemeral: bool,
    pub inner: Mutex<TopicInner>,
    /// The topic's durable log; `None` for ephemeral topics.
    pub store: Option<TopicStore>,
    deleted: AtomicBool,
    cfg: TopicConfig,
    /// Serialises channel creation, whose file work happens outside the topic lock.
    creating: Mutex<()>,
    /// From `topic.state` at start-up, until recovery finishes.
    restored_released: Mutex<Option<u64>>,
}

pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Topic {
    /// A topic over `state` (whose log is the store's when `store` is given).
    pub fn new(
        name: &str,
        cfg: TopicConfig,
        mut state: TopicState,
        store: Option<TopicStore>,
    ) -> Topic {
        if let Some(store) = store.as_ref().filter(|s| s.releases_written()) {
            state.cap_release();
            store.writer.set_drop_failed_writes(true);
        }
        Topic {
            name: name.to_string(),
            ephemeral: is_ephemeral(name),
            inner: Mutex::new(TopicInner {
                state,
                channels: BTreeMap::new(),
                guid: GuidFactory::new(cfg.node_id),
                next_key: 1,
            }),
            store,
            deleted: AtomicBool::new(false),
            cfg,
            creating: Mutex::new(()),
            restored_released: Mutex::new(None),
        }
    }

    /// An in-memory topic (ephemeral topics, and the fallback when the store cannot open).
    pub fn in_memory(name: &str, cfg: TopicConfig) -> Topic {
        let bound = is_ephemeral(name).then_some(cfg.mem_queue_size.max(0) as u64);
        Topic::new(name, cfg, TopicState::in_memory(bound), None)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    /// An ID for a message published at `now` (Unix nanoseconds). A batch shares one clock
    /// reading: IDs only resolve about a millisecond, and reading the clock per message cost
    /// more than the rest of the ID.
    fn next_id(guid: &mut GuidFactory, now: i64) -> MessageId {
        MessageId::from_guid(guid.next(now))
    }

    /// Publishes bodies as new messages, makes them as durable as the level requires, and wakes
    /// consumers that were waiting for them.
    pub fn publish(&self, bodies: impl IntoIterator<Item = Bytes>) -> Result<(), QueueError> {
        let upto = self.publish_uncommitted(bodies)?;
        self.commit(upto)
    }

    /// Makes the log durable up to `upto` as the level requires (no-op without a store),
    /// then hands channels what the store has written.
    pub fn commit(&self, upto: u64) -> Result<(), QueueError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let res = store.commit(upto);
        if store.releases_written() {
            self.release_written(store);
        }
        res
    }

    /// Releases to channels what the store has written (and makes them skip what it dropped),
    /// waking waiting consumers.
    fn release_written(&self, store: &TopicStore) {
        let written = store.writer.written();
        let dropped = store.writer.dropped_ranges();
        let wake: Vec<Arc<Channel>> = {
            let mut inner = self.inner.lock();
            if !inner.state.release_to(written, &dropped) {
                return;
            }
            inner
                .channels
                .values()
                .filter(|c| c.has_waiters())
                .cloned()
                .collect()
        };
        for c in wake {
            c.wake_waiter();
        }
    }

    /// Publishes without waiting for the store: the caller must [`Topic::commit`] the returned
    /// position before acknowledging, which lets one write (or fsync) cover many publishes.
    pub fn publish_uncommitted(
        &self,
        bodies: impl IntoIterator<Item = Bytes>,
    ) -> Result<u64, QueueError> {
        let mut wake: Vec<Arc<Channel>> = Vec::new();
        let tail = {
            let mut inner = self.inner.lock();
            let inner = &mut *inner;
            let ts = unix_nanos();
            let msgs: Vec<Message> = bodies
                .into_iter()
                .map(|b| Message::new(Self::next_id(&mut inner.guid, ts), ts, b))
                .collect();
            if inner.state.publish(msgs)? {
                wake.extend(inner.channels.values().filter(|c| c.has_waiters()).cloned());
            }
            inner.state.tail()
        };
        for c in wake {
            c.wake_waiter();
        }
        Ok(tail)
    }

    /// Publishes one message that each channel holds back for `defer_ms`.
    pub fn publish_deferred(&self, body: Bytes, defer_ms: i64) -> Result<(), QueueError> {
        // Held for the whole delay: a slice of the connection's read buffer would keep all of
        // that buffer alive meanwhile. One copy, shared by every channel.
        let body = Bytes::copy_from_slice(&body);
        let id;
        let channels: Option<(Vec<Arc<Channel>>, PendingDeferred)> = {
            let mut inner = self.inner.lock();
            let inner = &mut *inner;
            let now = unix_nanos();
            let msg = Message::new(Self::next_id(&mut inner.guid, now), now, body);
            id = msg.id;
            if inner.state.holding() {
                if let Some(store) = &self.store {
                    // Held by the topic: the delay stays relative, it starts at a channel.
                    store.held.append(&Event::Deferred(msg.clone(), defer_ms));
                }
                inner.state.hold_deferred(msg, defer_ms);
                None
            } else {
                inner.state.count_deferred_publish(&msg);
                let channels = inner.channels.values().cloned().collect();
                Some((channels, PendingDeferred { msg, defer_ms }))
            }
        };
        // This publish's own message goes to the channels and into their journals before its
        // OK: handing it over through the topic's held list would let another publisher's
        // call deliver (and journal) it later than this acknowledgement.
        let res = match (channels, &self.store) {
            (Some((channels, p)), _) => self.defer_to_channels(&channels, std::slice::from_ref(&p)),
            (None, Some(store)) => store.commit_journal(&store.held),
            (None, None) => Ok(()),
        };
        if res.is_err() {
            self.cancel_deferred(&id);
        }
        res
    }

    /// Takes back a deferred publish whose journal write failed, so that what its publisher
    /// was told (an error) is what happens: it is never delivered. The cancellation is
    /// journaled behind the publish, so a later successful write records both.
    fn cancel_deferred(&self, id: &MessageId) {
        for c in self.channels() {
            let mut ci = c.inner.lock();
            if ci.state.cancel_deferred(id) {
                if let Some(j) = c.journal.as_ref() {
                    j.append(&Event::Finish(vec![*id]));
                }
            }
        }
        let mut inner = self.inner.lock();
        if inner.state.cancel_held_deferred(id) {
            if let Some(store) = &self.store {
                store.held.append(&Event::Finish(vec![*id]));
            }
        }
    }

    /// Hands deferred publishes the topic was holding to its channels; the delay starts now.
    pub fn distribute_deferred(&self, channels: &[Arc<Channel>]) -> Result<(), QueueError> {
        let pending = self.inner.lock().state.take_pending_deferred();
        if pending.is_empty() {
            return Ok(());
        }
        self.defer_to_channels(channels, &pending)?;
        if let Some(store) = &self.store {
            // Only once the channels have them does the topic stop holding them.
            store
                .held
                .append(&Event::Finish(pending.iter().map(|p| p.msg.id).collect()));
            store.commit_journal(&store.held)?;
        }
        Ok(())
    }

    /// Defers messages in every channel (the delay starts now) and makes their journal events
    /// durable as the level requires.
    fn defer_to_channels(
        &self,
        channels: &[Arc<Channel>],
        pending: &[PendingDeferred],
    ) -> Result<(), QueueError> {
        let now = Instant::now();
        let now_ms = durable::unix_ms();
        for c in channels {
            let mut ci = c.inner.lock();
            for p in pending {
                ci.state.defer(
                    p.msg.clone(),
                    now + Duration::from_millis(p.defer_ms as u64),
                );
                if let Some(j) = c.journal.as_ref() {
                    j.append(&Event::Deferred(p.msg.clone(), now_ms + p.defer_ms));
                }
            }
            let mut ti = self.inner.lock();
            for _ in pending {
                ti.state.count_received(c.key);
            }
        }
        if let Some(store) = &self.store {
            for c in channels {
                if let Some(j) = c.journal.as_ref() {
                    store.commit_journal(j)?;
                }
            }
        }
        Ok(())
    }

    fn channel_bound(&self, name: &str) -> Option<u64> {
        is_ephemeral(name).then_some(self.cfg.mem_queue_size.max(0) as u64)
    }

    /// Whether a channel of this name records its state in the store.
    fn journaled(&self, name: &str) -> bool {
        self.store.is_some() && !is_ephemeral(name)
    }

    /// Returns the channel, creating it if needed (`true` when created).
    pub fn get_or_create_channel(self: &Arc<Self>, name: &str) -> (Arc<Channel>, bool) {
        if let Some(c) = self.inner.lock().channels.get(name) {
            return (c.clone(), false);
        }
        // One creation at a time per topic; the journal's first checkpoint (files and fsyncs)
        // is written here, outside the topic lock, at a position no later than where the
        // cursor will start. The journal's first event then moves it to the exact start.
        let _creating = self.creating.lock();
        if let Some(c) = self.inner.lock().channels.get(name) {
            return (c.clone(), false);
        }
        let journal = match &self.store {
            Some(store) if self.journaled(name) => {
                let pos = self.inner.lock().state.next_channel_pos();
                durable::new_channel_journal(&store.data_path, &self.name, name, pos)
            }
            _ => None,
        };
        let (channel, released, channels) = {
            let mut inner = self.inner.lock();
            let key = inner.next_key;
            inner.next_key += 1;
            let released = inner.state.add_channel(key, self.channel_bound(name));
            if let Some(j) = journal.as_ref() {
                let pos = inner.state.channel_pos(key).unwrap_or(0);
                j.append(&Event::Empty(pos));
                // Until its first checkpoint the channel's recovery starts at the journal's
                // start: the log keeps what the cursor passes.
                inner.state.set_retain(key, pos);
            }
            let mut channel = Channel::new(name, key, self.cfg.e2e_window, journal);
            if channel.journal.is_some() {
                channel.health = Some(Arc::default());
            }
            let channel = Arc::new(channel);
            inner.channels.insert(name.to_string(), channel.clone());
            let channels: Vec<Arc<Channel>> = inner.channels.values().cloned().collect();
            (channel, released, channels)
        };
        if let (Some(store), Some(j)) = (&self.store, channel.journal.as_ref()) {
            if let Err(e) = store.commit_journal(j) {
                log::error!("CHANNEL({name}): {e}");
            }
        }
        log::info!("TOPIC({}): new channel({})", self.name, name);
        if released {
            for c in &channels {
                c.wake_waiter();
            }
        }
        if let Err(e) = self.distribute_deferred(&channels) {
            log::error!("TOPIC({}): {e}", self.name);
        }
        (channel, true)
    }

    /// Brings back a channel from the store at start-up: its cursor and the messages it still
    /// owed (in flight, requeued or deferred when the process stopped).
    pub fn restore_channel(&self, name: &str) -> Result<Arc<Channel>, String> {
        let Some(store) = &self.store else {
            return Err("topic has no store".to_string());
        };
        let mut inner = self.inner.lock();
        let key = inner.next_key;
        inner.next_key += 1;
        let mut state = ChannelState::new(key);
        let health = Arc::new(nsq_store::Health::default());
        let recovered = durable::recover_channel(
            &store.data_path,
            &self.name,
            name,
            inner.state.log_mut(),
            &mut state,
            &health,
        )
        .map_err(|e| e.to_string())?;
        // Damage may have cut the log below what the channel had read; never reuse those
        // positions for new messages.
        inner.state.log_mut().skip_to(recovered.pos);
        inner.state.restore_channel(
            key,
            self.channel_bound(name),
            recovered.pos,
            recovered.retain,
        );
        let mut channel = Channel::new(name, key, self.cfg.e2e_window, Some(recovered.journal));
        channel.health = Some(health);
        let channel = Arc::new(channel);
        channel.inner.lock().state = state;
        inner.channels.insert(name.to_string(), channel.clone());
        Ok(channel)
    }

    /// Applies the topic's `topic.state` at start-up (before its channels are restored): the
    /// trim point and skip ranges. Returns the file for its pause flags; a damaged file is
    /// reported and ignored.
    pub fn restore_state_file(&self) -> Option<nsq_store::topic_state::TopicStateFile> {
        let store = self.store.as_ref()?;
        match nsq_store::topic_state::TopicStateFile::load(&store.dir) {
            Ok(Some(sf)) => {
                let mut inner = self.inner.lock();
                if sf.head > inner.state.head() {
                    inner.state.log_mut().trim_to(sf.head);
                }
                inner.state.restore_skips(&sf.skips);
                *self.restored_released.lock() = Some(sf.released);
                *store.state_file.lock().unwrap_or_else(|e| e.into_inner()) = inner.state.head();
                Some(sf)
            }
            Ok(None) => None,
            Err(reason) => {
                let text = format!(
                    "TOPIC({}): {} unusable ({reason}); pause flags from nsqd.dat, emptied or trimmed messages may come back",
                    self.name,
                    nsq_store::topic_state::path(&store.dir).display()
                );
                log::error!("{text}");
                store.health.record(0, 0, text);
                None
            }
        }
    }

    /// Ends start-up recovery (see `TopicState::finish_restore`).
    pub fn finish_restore(&self, paused: bool) {
        let released = self.restored_released.lock().take();
        self.inner.lock().state.finish_restore(paused, released);
    }

    pub fn channel(&self, name: &str) -> Option<Arc<Channel>> {
        self.inner.lock().channels.get(name).cloned()
    }

    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.inner.lock().channels.values().cloned().collect()
    }

    /// Removes a channel and drops its messages and files; its consumers are asked to close.
    /// Returns the number of channels left.
    pub fn remove_channel(&self, name: &str) -> Option<usize> {
        let (channel, left) = {
            let mut inner = self.inner.lock();
            let channel = inner.channels.remove(name)?;
            inner.state.remove_channel(channel.key);
            (channel, inner.channels.len())
        };
        channel.mark_deleted();
        log::info!("CHANNEL({}): deleting", channel.name);
        channel.close_clients();
        if let Some(j) = channel.journal.as_ref() {
            if let Err(e) = j.files().remove() {
                log::error!(
                    "CHANNEL({}): failed to remove its files - {e}",
                    channel.name
                );
            }
        }
        Some(left)
    }

    pub fn set_paused(&self, paused: bool) {
        let wake = {
            let mut inner = self.inner.lock();
            inner.state.set_paused(paused)
        };
        let channels = self.channels();
        if wake {
            for c in &channels {
                c.wake_all();
            }
        }
        if !paused {
            if let Err(e) = self.distribute_deferred(&channels) {
                log::error!("TOPIC({}): {e}", self.name);
            }
        }
    }

    pub fn paused(&self) -> bool {
        self.inner.lock().state.paused()
    }

    /// Drops what the topic holds (not what its channels already have).
    pub fn empty(&self) {
        self.inner.lock().state.empty();
    }

    pub fn depth(&self) -> u64 {
        self.inner.lock().state.depth()
    }
}
