//! A live channel: its queue state, its consumers, and the list of consumers waiting for
//! messages.
//!
//! Wake-up protocol: a consumer that finds nothing to take registers itself as a waiter while
//! still holding both its channel's and the topic's locks, and sets `has_waiters`. A publisher
//! appends under the topic lock and checks `has_waiters` after releasing it, so either the
//! consumer saw the message or the publisher sees the waiter: no wake-up is lost.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use nsq_protocol::names::is_ephemeral;
use nsq_queue::{ChannelKey, ChannelState};

use crate::client::ClientShared;
use crate::latency::E2eLatency;
use nsq_store::journal::JournalWriter;

pub struct ChannelInner {
    pub state: ChannelState,
    /// Publish-to-FIN latency, when percentiles are configured.
    pub e2e: Option<E2eLatency>,
    /// Publish-to-FIN latency since creation, for `/metrics`.
    pub e2e_hist: crate::metrics::E2eHistogram,
    pub clients: HashMap<u64, Arc<ClientShared>>,
    waiters: VecDeque<Arc<ClientShared>>,
}

pub struct Channel {
    pub name: String,
    pub ephemeral: bool,
    pub key: ChannelKey,
    pub inner: Mutex<ChannelInner>,
    has_waiters: AtomicBool,
    deleted: AtomicBool,
    /// Deliveries from memory (reported as `global_msg_count`).
    pub global_msg_count: AtomicU64,
    /// Where the channel records what happens to its messages (durable topics only).
    pub journal: Option<Arc<JournalWriter>>,
    /// Damage found in the channel's files (durable channels only).
    pub health: Option<Arc<nsq_store::Health>>,
}

impl Channel {
    /// `e2e_window`: keep publish-to-FIN latencies over this window.
    pub fn new(
        name: &str,
        key: ChannelKey,
        e2e_window: Option<std::time::Duration>,
        journal: Option<Arc<JournalWriter>>,
    ) -> Channel {
        Channel {
            name: name.to_string(),
            ephemeral: is_ephemeral(name),
            key,
            inner: Mutex::new(ChannelInner {
                state: ChannelState::new(key),
                e2e: e2e_window.map(|w| E2eLatency::new(w, std::time::Instant::now())),
                e2e_hist: Default::default(),
                clients: HashMap::new(),
                waiters: VecDeque::new(),
            }),
            has_waiters: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            global_msg_count: AtomicU64::new(0),
            journal,
            health: None,
        }
    }

    pub fn has_waiters(&self) -> bool {
        self.has_waiters.load(Ordering::Acquire)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    /// Registers `client` as waiting for messages. Call with the channel lock held and the
    /// topic lock still held (see the module doc).
    pub fn register_waiter(&self, inner: &mut ChannelInner, client: &Arc<ClientShared>) {
        if !client.waiting.swap(true, Ordering::AcqRel) {
            inner.waiters.push_back(client.clone());
        }
        self.has_waiters.store(true, Ordering::Release);
    }

    /// Wakes one waiting consumer, if any (channel lock held by the caller).
    pub fn wake_one_locked(&self, inner: &mut ChannelInner) {
        while let Some(c) = inner.waiters.pop_front() {
            if c.waiting.swap(false, Ordering::AcqRel) {
                c.wake();
                break;
            }
        }
        if inner.waiters.is_empty() {
            self.has_waiters.store(false, Ordering::Release);
        }
    }

    pub fn wake_waiter(&self) {
        let mut inner = self.inner.lock();
        self.wake_one_locked(&mut inner);
    }

    /// Wakes every consumer (unpause, empty): each re-checks what it can do.
    pub fn wake_all(&self) {
        let inner = self.inner.lock();
        for c in inner.clients.values() {
            c.wake();
        }
    }

    pub fn add_client(&self, client: &Arc<ClientShared>) {
        self.inner.lock().clients.insert(client.id, client.clone());
    }

    /// Removes a consumer; returns how many remain. Its in-flight messages stay until they
    /// time out, as in NSQ.
    pub fn remove_client(&self, id: u64) -> usize {
        let mut inner = self.inner.lock();
        inner.clients.remove(&id);
        inner.waiters.retain(|c| c.id != id);
        if inner.waiters.is_empty() {
            self.has_waiters.store(false, Ordering::Release);
        }
        inner.clients.len()
    }

    pub fn client_count(&self) -> usize {
        self.inner.lock().clients.len()
    }

    pub fn close_clients(&self) {
        let inner = self.inner.lock();
        for c in inner.clients.values() {
            c.request_close();
        }
    }

    pub fn set_paused(&self, paused: bool) {
        self.inner.lock().state.set_paused(paused);
        if !paused {
            self.wake_all();
        }
    }

    pub fn paused(&self) -> bool {
        self.inner.lock().state.paused()
    }
}
