//! `GET /metrics`: the whole cluster in one Prometheus scrape. At scrape time nsqadmin finds
//! the nsqd (through the lookupds, or the configured list), reads each one's `/stats` and
//! renders its topic and channel figures under nsqd's own metric names with a `node` label, plus
//! `nsq_admin_*` figures saying which upstreams answered.
//!
//! Every upstream request is bounded by the client's request timeout, and the lookupds are
//! asked before the nodes, so a scrape takes at most two rounds of it (three when an nsqd sends
//! the client on to HTTPS). A node or lookupd that does not answer is reported as down (`0`)
//! instead of failing the scrape.
use std::collections::HashSet;
use std::sync::Arc;

use futures_util::future::join_all;
use nsq_daemon::metrics::prometheus_client;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::admin::Admin;
use crate::options::Options;
use crate::stats::{RawChannel, RawStats, RawTopic};

/// What one scrape found.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Each configured lookupd and whether it answered `/nodes`; empty when nsqadmin is given
    /// nsqd addresses instead.
    pub lookupds: Vec<(String, bool)>,
    /// Each nsqd found, in order, with its `/stats` when it answered.
    pub nodes: Vec<(String, Option<RawStats>)>,
}

/// Asks the cluster. In lookupd mode a node is named `<broadcast_address>:<http_port>` as the
/// lookupds report it; with `--nsqd-http-address` it is the address as configured.
pub async fn gather(admin: &Admin, opts: &Options) -> Scrape {
    let mut scrape = Scrape::default();
    let names: Vec<String> = if opts.lookupd_mode() {
        // One query per lookupd, so each one's answer is known separately.
        let answers = join_all(
            opts.lookupd_http_addresses
                .iter()
                .map(|a| admin.cluster.lookupd_producers(std::slice::from_ref(a))),
        )
        .await;
        let mut names = Vec::new();
        for (addr, answer) in opts.lookupd_http_addresses.iter().zip(answers) {
            scrape.lookupds.push((addr.clone(), answer.is_ok()));
            names.extend(
                answer
                    .into_iter()
                    .flat_map(|p| p.value)
                    .map(|p| p.http_address()),
            );
        }
        names.sort();
        names
    } else {
        opts.nsqd_http_addresses.clone()
    };
    let mut seen = HashSet::new();
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect();
    let client = admin.cluster.client();
    let stats = join_all(names.iter().map(|node| {
        let url = format!("http://{node}/stats?format=json&include_clients=false");
        async move {
            match client.get_json::<RawStats>(&url).await {
                Ok(s) => Some(s),
                Err(e) => {
                    log::warn!("METRICS: no stats from {node} - {e}");
                    None
                }
            }
        }
    }))
    .await;
    scrape.nodes = names.into_iter().zip(stats).collect();
    scrape
}

/// The page for one scrape: build info and process figures from `base`, then the cluster.
pub fn render(base: &Registry, scrape: Scrape) -> String {
    let mut page = nsq_daemon::metrics::render(base);
    let mut cluster = Registry::default();
    cluster.register_collector(Box::new(ClusterCollector(Arc::new(scrape))));
    page.push_str(&nsq_daemon::metrics::render(&cluster));
    page
}

#[derive(Debug)]
struct ClusterCollector(Arc<Scrape>);

/// Clamps nsqd's signed counts for unsigned counters; a negative count is no count.
fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn flag(b: bool) -> u64 {
    u64::from(b)
}

fn gauge_value(m: &mut MetricEncoder, v: impl EncodeGaugeValue) -> Result<(), std::fmt::Error> {
    m.encode_gauge(&v)
}

fn counter_value(m: &mut MetricEncoder, v: impl EncodeCounterValue) -> Result<(), std::fmt::Error> {
    m.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

/// A topic of an answering node, once: a repeated name in one answer would make a duplicate
/// series, which Prometheus rejects along with the whole page.
struct TopicRow<'a> {
    node: &'a str,
    topic: &'a RawTopic,
}

struct ChannelRow<'a> {
    node: &'a str,
    topic: &'a str,
    channel: &'a RawChannel,
}

impl Scrape {
    fn answered(&self) -> impl Iterator<Item = (&str, &RawStats)> {
        self.nodes
            .iter()
            .filter_map(|(n, s)| s.as_ref().map(|s| (n.as_str(), s)))
    }

    fn topics(&self) -> Vec<TopicRow<'_>> {
        let mut out = Vec::new();
        for (node, stats) in self.answered() {
            let mut seen = HashSet::new();
            for topic in stats.topics.iter().flatten() {
                if seen.insert(topic.topic_name.as_str()) {
                    out.push(TopicRow { node, topic });
                }
            }
        }
        out
    }

    fn channels(&self) -> Vec<ChannelRow<'_>> {
        let mut out = Vec::new();
        for row in self.topics() {
            let mut seen = HashSet::new();
            for channel in row.topic.channels.iter().flatten() {
                if seen.insert(channel.channel_name.as_str()) {
                    out.push(ChannelRow {
                        node: row.node,
                        topic: &row.topic.topic_name,
                        channel,
                    });
                }
            }
        }
        out
    }
}

type TopicLabels<'a> = [(&'static str, &'a str); 2];
type ChannelLabels<'a> = [(&'static str, &'a str); 3];

impl Collector for ClusterCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &*self.0;
        gauge_value(
            &mut enc.encode_descriptor(
                "nsq_admin_nodes",
                "nsqd found (through the lookupds, or as configured).",
                None,
                MetricType::Gauge,
            )?,
            s.nodes.len() as u64,
        )?;
        let mut m = enc.encode_descriptor(
            "nsq_admin_node_up",
            "Whether the node's /stats answered this scrape.",
            None,
            MetricType::Gauge,
        )?;
        for (node, stats) in &s.nodes {
            m.encode_family(&[("node", node.as_str())])?
                .encode_gauge(&flag(stats.is_some()))?;
        }
        if !s.lookupds.is_empty() {
            let mut m = enc.encode_descriptor(
                "nsq_admin_lookupd_up",
                "Whether the lookupd's /nodes answered this scrape.",
                None,
                MetricType::Gauge,
            )?;
            for (lookupd, up) in &s.lookupds {
                m.encode_family(&[("lookupd", lookupd.as_str())])?
                    .encode_gauge(&flag(*up))?;
            }
        }

        let nodes: Vec<(&str, &RawStats)> = s.answered().collect();
        let node_gauge = |enc: &mut DescriptorEncoder,
                          name: &str,
                          help: &str,
                          v: &dyn Fn(&RawStats) -> u64|
         -> Result<(), std::fmt::Error> {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (node, stats) in &nodes {
                m.encode_family(&[("node", *node)])?
                    .encode_gauge(&v(stats))?;
            }
            Ok(())
        };
        node_gauge(
            &mut enc,
            "nsq_healthy",
            "Whether nsqd reports itself healthy.",
            &|st| flag(st.health == "OK"),
        )?;
        node_gauge(&mut enc, "nsq_topics", "Topics.", &|st| {
            st.topics.iter().flatten().count() as u64
        })?;
        node_gauge(
            &mut enc,
            "nsq_channels",
            "Channels over all topics.",
            &|st| {
                st.topics
                    .iter()
                    .flatten()
                    .map(|t| t.channels.iter().flatten().count() as u64)
                    .sum()
            },
        )?;

        let topics = s.topics();
        let topic_metric = |enc: &mut DescriptorEncoder,
                            name: &str,
                            help: &str,
                            kind: MetricType,
                            v: &dyn Fn(&RawTopic) -> u64|
         -> Result<(), std::fmt::Error> {
            let mut m = enc.encode_descriptor(name, help, None, kind)?;
            for row in &topics {
                let labels: TopicLabels = [("node", row.node), ("topic", &row.topic.topic_name)];
                let mut sample = m.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => counter_value(&mut sample, v(row.topic))?,
                    _ => gauge_value(&mut sample, v(row.topic))?,
                }
            }
            Ok(())
        };
        use MetricType::{Counter, Gauge};
        topic_metric(
            &mut enc,
            "nsq_topic_depth",
            "Messages queued in memory and on disk.",
            Gauge,
            &|t| count(t.depth),
        )?;
        topic_metric(
            &mut enc,
            "nsq_topic_backend_depth",
            "Messages queued on disk.",
            Gauge,
            &|t| count(t.backend_depth),
        )?;
        topic_metric(
            &mut enc,
            "nsq_topic_messages",
            "Messages published.",
            Counter,
            &|t| count(t.message_count),
        )?;
        topic_metric(
            &mut enc,
            "nsq_topic_message_bytes",
            "Message bytes published.",
            Counter,
            &|t| count(t.message_bytes),
        )?;
        topic_metric(
            &mut enc,
            "nsq_topic_paused",
            "Whether the topic is paused.",
            Gauge,
            &|t| flag(t.paused),
        )?;

        let channels = s.channels();
        let channel_metric = |enc: &mut DescriptorEncoder,
                              name: &str,
                              help: &str,
                              kind: MetricType,
                              v: &dyn Fn(&RawChannel) -> u64|
         -> Result<(), std::fmt::Error> {
            let mut m = enc.encode_descriptor(name, help, None, kind)?;
            for row in &channels {
                let labels: ChannelLabels = [
                    ("node", row.node),
                    ("topic", row.topic),
                    ("channel", &row.channel.channel_name),
                ];
                let mut sample = m.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => counter_value(&mut sample, v(row.channel))?,
                    _ => gauge_value(&mut sample, v(row.channel))?,
                }
            }
            Ok(())
        };
        channel_metric(
            &mut enc,
            "nsq_channel_depth",
            "Messages waiting in memory and on disk.",
            Gauge,
            &|c| count(c.depth),
        )?;
        channel_metric(
            &mut enc,
            "nsq_channel_backend_depth",
            "Messages waiting on disk.",
            Gauge,
            &|c| count(c.backend_depth),
        )?;
        channel_metric(
            &mut enc,
            "nsq_channel_in_flight",
            "Messages sent to a consumer and not yet finished.",
            Gauge,
            &|c| count(c.in_flight_count),
        )?;
        channel_metric(
            &mut enc,
            "nsq_channel_deferred",
            "Messages requeued with a delay that has not passed.",
            Gauge,
            &|c| count(c.deferred_count),
        )?;
        channel_metric(
            &mut enc,
            "nsq_channel_messages",
            "Messages the channel received.",
            Counter,
            &|c| count(c.message_count),
        )?;
        channel_metric(
            &mut enc,
            "nsq_channel_requeued",
            "Messages requeued.",
            Counter,
            &|c| count(c.requeue_count),
        )?;
        channel_metric(
            &mut enc,
            "nsq_channel_timed_out",
            "Messages whose consumer let the timeout pass.",
            Counter,
            &|c| count(c.timeout_count),
        )?;
        channel_metric(
            &mut enc,
            "nsq_channel_clients",
            "Subscribed consumers.",
            Gauge,
            &|c| count(c.client_count),
        )?;
        channel_metric(
            &mut enc,
            "nsq_channel_paused",
            "Whether the channel is paused.",
            Gauge,
            &|c| flag(c.paused),
        )?;

        // The label is `percentile`, after nsqd's flag: Prometheus reserves `quantile` for
        // summaries, and this is a gauge per percentile, not a summary.
        let mut m = enc.encode_descriptor(
            "nsq_channel_e2e_processing_latency_quantile",
            "Publish-to-finish latency percentiles as nsqd computes them \
             (--e2e-processing-latency-percentile).",
            Some(&Unit::Seconds),
            Gauge,
        )?;
        for row in &channels {
            let Some(e2e) = &row.channel.e2e_processing_latency else {
                continue;
            };
            let mut seen = HashSet::new();
            for p in e2e.percentiles.iter().flatten() {
                let (Some(nanos), true) = (p.value, p.quantile.is_finite()) else {
                    continue;
                };
                let quantile = p.quantile.to_string();
                if !seen.insert(quantile.clone()) {
                    continue;
                }
                let labels = [
                    ("node", row.node),
                    ("topic", row.topic),
                    ("channel", row.channel.channel_name.as_str()),
                    ("percentile", quantile.as_str()),
                ];
                m.encode_family(&labels)?.encode_gauge(&(nanos / 1e9))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{RawE2e, RawPercentile};

    fn stats(json: &str) -> RawStats {
        serde_json::from_str(json).expect("stats json")
    }

    #[test]
    fn odd_answers_make_a_page_without_duplicates_or_negative_counters() {
        let scrape = Scrape {
            lookupds: vec![("l:4161".into(), true)],
            nodes: vec![
                (
                    "n1:4151".into(),
                    Some(stats(
                        r#"{"health":"NOK - disk","topics":[
                            {"topic_name":"t","message_count":-3,"channels":[
                                {"channel_name":"c","depth":2},{"channel_name":"c","depth":9}]},
                            {"topic_name":"t","depth":7}]}"#,
                    )),
                ),
                ("n2:4151".into(), None),
            ],
        };
        let page = render(&Registry::default(), scrape);
        for line in [
            "nsq_admin_nodes 2\n",
            "nsq_admin_node_up{node=\"n1:4151\"} 1\n",
            "nsq_admin_node_up{node=\"n2:4151\"} 0\n",
            "nsq_admin_lookupd_up{lookupd=\"l:4161\"} 1\n",
            "nsq_healthy{node=\"n1:4151\"} 0\n",
            "nsq_topic_messages_total{node=\"n1:4151\",topic=\"t\"} 0\n",
            "nsq_topic_depth{node=\"n1:4151\",topic=\"t\"} 0\n",
            "nsq_channel_depth{node=\"n1:4151\",topic=\"t\",channel=\"c\"} 2\n",
        ] {
            assert!(page.contains(line), "{line:?} missing from\n{page}");
        }
        assert_eq!(page.matches("nsq_topic_depth{").count(), 1, "{page}");
        assert_eq!(page.matches("nsq_channel_depth{").count(), 1, "{page}");
        assert!(!page.contains("node=\"n2:4151\",topic"), "{page}");
    }

    #[test]
    fn percentiles_without_a_value_are_left_out() {
        let mut s = stats(r#"{"topics":[{"topic_name":"t","channels":[{"channel_name":"c"}]}]}"#);
        let percentiles = vec![
            RawPercentile {
                quantile: 0.99,
                value: Some(2_500_000.0),
            },
            RawPercentile {
                quantile: 0.5,
                value: None,
            },
            RawPercentile {
                quantile: f64::NAN,
                value: Some(1.0),
            },
        ];
        let channel = s
            .topics
            .iter_mut()
            .flatten()
            .flat_map(|t| t.channels.iter_mut().flatten())
            .next()
            .expect("channel");
        channel.e2e_processing_latency = Some(RawE2e {
            count: 4,
            percentiles: Some(percentiles),
            ..RawE2e::default()
        });
        let page = render(
            &Registry::default(),
            Scrape {
                lookupds: vec![],
                nodes: vec![("n".into(), Some(s))],
            },
        );
        let e2e: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("nsq_channel_e2e"))
            .collect();
        assert_eq!(
            e2e,
            vec![
                "nsq_channel_e2e_processing_latency_quantile_seconds{node=\"n\",topic=\"t\",\
                 channel=\"c\",percentile=\"0.99\"} 0.0025"
            ]
        );
    }
}
