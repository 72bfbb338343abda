//! State of one client connection that other tasks read or poke: counters for `/stats`, the
//! wake-up used when messages or capacity become available, and the request to close.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};

use parking_lot::Mutex;

use tokio::sync::Notify;

use nsq_protocol::ConnState;

/// What IDENTIFY told us about the client (reported in `/stats`).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub client_id: String,
    pub hostname: String,
    pub user_agent: String,
    pub topology_region: String,
    pub topology_zone: String,
    pub sample_rate: i64,
    pub deflate: bool,
    pub snappy: bool,
    pub tls: bool,
    pub tls_version: String,
    pub tls_cipher_suite: String,
    pub tls_negotiated_protocol: String,
    pub tls_negotiated_protocol_is_mutual: bool,
    /// Subject CN of the client certificate (sent to the auth server).
    pub tls_common_name: String,
    /// What the auth server granted (reported in `/stats`).
    pub authed: bool,
    pub auth_identity: String,
    pub auth_identity_url: String,
}

pub struct ClientShared {
    pub id: u64,
    /// `ip:port`, or the peer name of a unix socket.
    pub remote_addr: String,
    /// The peer's IP (empty for unix sockets): the default client ID and hostname, and what the
    /// auth server is told.
    pub remote_ip: String,
    pub connect_ts: i64,
    /// Woken when the channel has messages for us, capacity was freed, or we must close.
    pub notify: Notify,
    /// Set while this client sits in its channel's waiter list.
    pub waiting: AtomicBool,
    pub close_requested: AtomicBool,
    pub state: AtomicU8,
    pub ready_count: AtomicI64,
    pub in_flight: AtomicI64,
    pub message_count: AtomicU64,
    pub finish_count: AtomicU64,
    pub requeue_count: AtomicU64,
    pub identity: Mutex<Identity>,
    /// Messages published per topic; non-empty makes the client a producer in `/stats`.
    pub pub_counts: Mutex<BTreeMap<String, u64>>,
}

impl ClientShared {
    pub fn new(id: u64, remote_addr: String, remote_ip: String, connect_ts: i64) -> ClientShared {
        let ip = remote_ip.clone();
        ClientShared {
            id,
            remote_addr,
            remote_ip,
            connect_ts,
            notify: Notify::new(),
            waiting: AtomicBool::new(false),
            close_requested: AtomicBool::new(false),
            state: AtomicU8::new(ConnState::Init as u8),
            ready_count: AtomicI64::new(0),
            in_flight: AtomicI64::new(0),
            message_count: AtomicU64::new(0),
            finish_count: AtomicU64::new(0),
            requeue_count: AtomicU64::new(0),
            // Before IDENTIFY both names are the peer's IP, as in NSQ.
            identity: Mutex::new(Identity {
                client_id: ip.clone(),
                hostname: ip,
                ..Identity::default()
            }),
            pub_counts: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Asks the connection task to close (channel or topic deleted, shutdown).
    pub fn request_close(&self) {
        self.close_requested.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    pub fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::Acquire)
    }

    /// Frees in-flight capacity taken by a message that left without FIN/REQ from us
    /// (timeout), and wakes the connection so it can send more.
    pub fn release_in_flight(&self, n: i64) {
        self.in_flight.fetch_sub(n, Ordering::AcqRel);
        self.notify.notify_one();
    }

    pub fn identity(&self) -> Identity {
        self.identity.lock().clone()
    }

    pub fn count_published(&self, topic: &str, n: u64) {
        let mut m = self.pub_counts.lock();
        match m.get_mut(topic) {
            Some(c) => *c += n,
            None => {
                m.insert(topic.to_string(), n);
            }
        }
    }

    pub fn is_producer(&self) -> bool {
        !self.pub_counts.lock().is_empty()
    }
}
