//! A live topic: its queue state and channel handles under one lock, and publishing with
//! fan-out done in the publisher's task.
//!
//! Lock order: a channel's lock may be held while taking its topic's lock, never the reverse.
//! Publishing takes only the topic lock, then wakes waiting consumers after releasing it.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use nsq_protocol::guid::GuidFactory;
use nsq_protocol::names::is_ephemeral;
use nsq_protocol::{Message, MessageId};
use nsq_queue::{QueueError, TopicState};

use crate::channel::Channel;

pub struct TopicInner {
    pub state: TopicState,
    pub channels: BTreeMap<String, Arc<Channel>>,
    guid: GuidFactory,
    next_key: u64,
}

pub struct Topic {
    pub name: String,
    pub ephemeral: bool,
    pub inner: Mutex<TopicInner>,
    deleted: AtomicBool,
    mem_queue_size: i64,
    e2e_window: Option<Duration>,
}

pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Topic {
    pub fn new(
        name: &str,
        node_id: i64,
        mem_queue_size: i64,
        e2e_window: Option<Duration>,
    ) -> Topic {
        let ephemeral = is_ephemeral(name);
        let bound = ephemeral.then_some(mem_queue_size.max(0) as u64);
        Topic {
            name: name.to_string(),
            ephemeral,
            inner: Mutex::new(TopicInner {
                state: TopicState::in_memory(bound),
                channels: BTreeMap::new(),
                guid: GuidFactory::new(node_id),
                next_key: 1,
            }),
            deleted: AtomicBool::new(false),
            mem_queue_size,
            e2e_window,
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    /// Next message ID. When 4096 IDs were already issued in this clock tick, waits for the
    /// clock to move on, as NSQ does.
    fn next_id(guid: &mut GuidFactory) -> MessageId {
        let mut failures = 0u64;
        loop {
            match guid.next(unix_nanos()) {
                Ok(id) => return MessageId::from_guid(id),
                Err(e) => {
                    failures += 1;
                    if failures % 10000 == 1 {
                        log::error!("TOPIC: failed to create guid - {e}");
                    }
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Publishes bodies as new messages; wakes consumers that were waiting for them.
    pub fn publish(&self, bodies: impl IntoIterator<Item = Bytes>) -> Result<(), QueueError> {
        let mut wake: Vec<Arc<Channel>> = Vec::new();
        {
            let mut inner = self.inner.lock();
            let inner = &mut *inner;
            let ts = unix_nanos();
            let msgs: Vec<Message> = bodies
                .into_iter()
                .map(|b| Message::new(Self::next_id(&mut inner.guid), ts, b))
                .collect();
            if inner.state.publish(msgs)? {
                wake.extend(inner.channels.values().filter(|c| c.has_waiters()).cloned());
            }
        }
        for c in wake {
            c.wake_waiter();
        }
        Ok(())
    }

    /// Publishes one message that each channel holds back for `defer_ms`.
    pub fn publish_deferred(&self, body: Bytes, defer_ms: i64) -> Result<(), QueueError> {
        let channels: Vec<Arc<Channel>> = {
            let mut inner = self.inner.lock();
            let inner = &mut *inner;
            let msg = Message::new(Self::next_id(&mut inner.guid), unix_nanos(), body);
            inner.state.hold_deferred(msg, defer_ms);
            if inner.state.holding() {
                return Ok(());
            }
            inner.channels.values().cloned().collect()
        };
        self.distribute_deferred(&channels);
        Ok(())
    }

    /// Hands deferred publishes the topic was holding to its channels; the delay starts now.
    pub fn distribute_deferred(&self, channels: &[Arc<Channel>]) {
        let pending = self.inner.lock().state.take_pending_deferred();
        if pending.is_empty() {
            return;
        }
        let now = Instant::now();
        for c in channels {
            let mut ci = c.inner.lock();
            for p in &pending {
                ci.state.defer(
                    p.msg.clone(),
                    now + Duration::from_millis(p.defer_ms as u64),
                );
            }
            let mut ti = self.inner.lock();
            for _ in &pending {
                ti.state.count_received(c.key);
            }
        }
    }

    /// Returns the channel, creating it if needed (`true` when created).
    pub fn get_or_create_channel(self: &Arc<Self>, name: &str) -> (Arc<Channel>, bool) {
        let (channel, released, channels) = {
            let mut inner = self.inner.lock();
            if let Some(c) = inner.channels.get(name) {
                return (c.clone(), false);
            }
            let key = inner.next_key;
            inner.next_key += 1;
            let channel = Arc::new(Channel::new(name, key, self.e2e_window));
            let bound = channel
                .ephemeral
                .then_some(self.mem_queue_size.max(0) as u64);
            let released = inner.state.add_channel(key, bound);
            inner.channels.insert(name.to_string(), channel.clone());
            let channels: Vec<Arc<Channel>> = inner.channels.values().cloned().collect();
            (channel, released, channels)
        };
        log::info!("TOPIC({}): new channel({})", self.name, name);
        if released {
            for c in &channels {
                c.wake_waiter();
            }
        }
        self.distribute_deferred(&channels);
        (channel, true)
    }

    pub fn channel(&self, name: &str) -> Option<Arc<Channel>> {
        self.inner.lock().channels.get(name).cloned()
    }

    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.inner.lock().channels.values().cloned().collect()
    }

    /// Removes a channel and drops its messages; its consumers are asked to close. Returns the
    /// number of channels left.
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
            self.distribute_deferred(&channels);
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
