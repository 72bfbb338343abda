//! `GET /metrics`: nsqlookupd's registrations in the Prometheus text format, read from the
//! registration database at scrape time.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nsq_daemon::metrics::prometheus_client;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::registry::{now_nanos, RegistrationDb};

/// Open TCP connections, maintained by the connection tasks through [`ConnectionGuard`].
#[derive(Debug, Default)]
pub struct Connections(AtomicUsize);

impl Connections {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts a connection until the guard is dropped, however its task ends.
    pub fn open(self: &Arc<Self>) -> ConnectionGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }
}

#[derive(Debug)]
pub struct ConnectionGuard(Arc<Connections>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The registry `/metrics` renders: build info, process figures and [`LookupdCollector`].
pub fn registry(collector: LookupdCollector) -> Registry {
    let mut r = nsq_daemon::metrics::registry("nsqlookupd");
    r.register_collector(Box::new(collector));
    r
}

pub struct LookupdCollector {
    pub db: Arc<RegistrationDb>,
    pub connections: Arc<Connections>,
    pub inactive_producer_timeout: Duration,
    pub tombstone_lifetime: Duration,
}

impl std::fmt::Debug for LookupdCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database can be large; its figures are what the page is for.
        f.debug_struct("LookupdCollector").finish_non_exhaustive()
    }
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: impl EncodeGaugeValue,
) -> Result<(), std::fmt::Error> {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

impl Collector for LookupdCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.db.summary(
            now_nanos(),
            self.inactive_producer_timeout,
            self.tombstone_lifetime,
        );
        gauge(
            &mut enc,
            "nsq_lookupd_producers",
            "nsqd registered and active (as /nodes lists them).",
            s.producers as u64,
        )?;
        gauge(
            &mut enc,
            "nsq_lookupd_topics",
            "Topics known (as /topics lists them).",
            s.topics.len() as u64,
        )?;
        gauge(
            &mut enc,
            "nsq_lookupd_channels",
            "Channels known, over all topics.",
            s.channels as u64,
        )?;
        gauge(
            &mut enc,
            "nsq_lookupd_tombstones",
            "Topic producers tombstoned within --tombstone-lifetime.",
            s.tombstones as u64,
        )?;
        gauge(
            &mut enc,
            "nsq_lookupd_client_connections",
            "Open TCP connections (from nsqd).",
            self.connections.get() as u64,
        )?;
        let mut family = enc.encode_descriptor(
            "nsq_lookupd_topic_producers",
            "nsqd that /lookup returns for the topic (active, not tombstoned).",
            None,
            MetricType::Gauge,
        )?;
        for (topic, producers) in &s.topics {
            family
                .encode_family(&[("topic", topic.as_str())])?
                .encode_gauge(&(*producers as u64))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_guards_count_open_connections() {
        let c = Arc::new(Connections::default());
        let a = c.open();
        let b = c.open();
        assert_eq!(c.get(), 2);
        drop(a);
        assert_eq!(c.get(), 1);
        drop(b);
        assert_eq!(c.get(), 0);
    }

    #[test]
    fn page_lists_every_topic_with_its_producers() {
        let db = Arc::new(RegistrationDb::new());
        db.create_topic("b#ephemeral");
        db.create_channel("a", "c");
        let r = registry(LookupdCollector {
            db,
            connections: Arc::new(Connections::default()),
            inactive_producer_timeout: Duration::from_secs(300),
            tombstone_lifetime: Duration::from_secs(45),
        });
        let page = nsq_daemon::metrics::render(&r);
        for line in [
            "nsq_lookupd_topics 2\n",
            "nsq_lookupd_channels 1\n",
            "nsq_lookupd_producers 0\n",
            "nsq_lookupd_topic_producers{topic=\"a\"} 0\n",
            "nsq_lookupd_topic_producers{topic=\"b#ephemeral\"} 0\n",
            "nsq_build_info{app=\"nsqlookupd\",version=\"1.3.0\"} 1\n",
        ] {
            assert!(page.contains(line), "{line:?} missing from\n{page}");
        }
    }
}
