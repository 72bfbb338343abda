//! The state one running nsqlookupd shares between its TCP and HTTP servers: options, the
//! registration database, the bound ports, the metrics registry and the shutdown signal.
use std::sync::Arc;

use nsq_daemon::metrics::prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::metrics::{Connections, LookupdCollector};
use crate::options::Options;
use crate::registry::RegistrationDb;

pub struct Lookupd {
    pub opts: Options,
    /// Shared with the metrics collector, which reads it at scrape time.
    pub db: Arc<RegistrationDb>,
    /// Open TCP connections.
    pub connections: Arc<Connections>,
    /// What `/metrics` renders.
    pub metrics: Registry,
    /// The OS hostname, reported in the IDENTIFY reply.
    pub hostname: String,
    /// The bound TCP port (the real one when listening on port 0).
    pub tcp_port: u16,
    /// The bound HTTP port.
    pub http_port: u16,
    shutdown: watch::Sender<bool>,
}

impl Lookupd {
    pub fn new(opts: Options, tcp_port: u16, http_port: u16) -> Lookupd {
        let db = Arc::new(RegistrationDb::new());
        let connections = Arc::new(Connections::default());
        let metrics = crate::metrics::registry(LookupdCollector {
            db: Arc::clone(&db),
            connections: Arc::clone(&connections),
            inactive_producer_timeout: opts.inactive_producer_timeout,
            tombstone_lifetime: opts.tombstone_lifetime,
        });
        Lookupd {
            opts,
            db,
            connections,
            metrics,
            hostname: nsq_daemon::hostname(),
            tcp_port,
            http_port,
            shutdown: watch::channel(false).0,
        }
    }

    /// Asks the accept loops and every connection to stop.
    pub fn begin_exit(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that becomes `true` at [`Lookupd::begin_exit`].
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Resolves once `begin_exit` has been called (at once if it already has been).
pub async fn exiting(rx: &mut watch::Receiver<bool>) {
    // The sender lives as long as the `Lookupd`, which outlives every task holding a receiver;
    // an error would mean it is gone, which also means stop.
    let _ = rx.wait_for(|stop| *stop).await;
}
