//! What nsqadmin asks the cluster, and the orchestration of admin actions: every query goes to
//! all the lookupds or nsqd in parallel under the client's deadlines; answers from some but not
//! all of them are a partial result carrying the failures, none at all is an error.
use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::join_all;

use crate::stats::{parse_version, Producer, RawProducer, RawStats};
use crate::upstream::{query_escape, Client, UpstreamError};

/// No upstream answered (or there was none to ask).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to query any {what}: {}", join_errors(.errors))]
pub struct NoneAnswered {
    pub what: &'static str,
    pub errors: Vec<UpstreamError>,
}

/// Go's `ErrList.Error()`: one error per line.
pub fn join_errors(errors: &[UpstreamError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A result that may be partial: `errors` lists the upstreams that failed.
#[derive(Debug)]
pub struct Partial<T> {
    pub value: T,
    pub errors: Vec<UpstreamError>,
}

impl<T> Partial<T> {
    fn new(value: T, errors: Vec<UpstreamError>) -> Partial<T> {
        Partial { value, errors }
    }
}

pub use crate::stats::NodeStats;

pub struct Cluster {
    client: Arc<Client>,
}

#[derive(serde::Deserialize)]
struct TopicsResp {
    #[serde(default)]
    topics: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct ChannelsResp {
    #[serde(default)]
    channels: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct ProducersResp {
    #[serde(default)]
    producers: Option<Vec<RawProducer>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct InfoResp {
    version: String,
    broadcast_address: String,
    hostname: String,
    http_port: i64,
    tcp_port: i64,
}

#[derive(serde::Deserialize)]
struct TopicNames {
    #[serde(default)]
    topics: Option<Vec<TopicName>>,
}

#[derive(serde::Deserialize)]
struct TopicName {
    #[serde(default)]
    topic_name: String,
}

fn uniq_sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Splits answers into values and errors; all failed (or none asked) is [`NoneAnswered`].
fn gather<T>(
    what: &'static str,
    results: Vec<Result<T, UpstreamError>>,
) -> Result<(Vec<T>, Vec<UpstreamError>), NoneAnswered> {
    let total = results.len();
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == total {
        return Err(NoneAnswered { what, errors });
    }
    Ok((ok, errors))
}

impl Cluster {
    pub fn new(client: Arc<Client>) -> Cluster {
        Cluster { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn get_all<T: serde::de::DeserializeOwned>(
        &self,
        urls: Vec<String>,
    ) -> Vec<Result<T, UpstreamError>> {
        join_all(urls.iter().map(|u| {
            log::info!("CI: querying {u}");
            self.client.get_json::<T>(u)
        }))
        .await
    }

    /// Union of `/topics` from every lookupd, sorted.
    pub async fn lookupd_topics(
        &self,
        lookupds: &[String],
    ) -> Result<Partial<Vec<String>>, NoneAnswered> {
        let urls = lookupds
            .iter()
            .map(|a| format!("http://{a}/topics"))
            .collect();
        let (ok, errors) = gather("nsqlookupd", self.get_all::<TopicsResp>(urls).await)?;
        let topics = ok
            .into_iter()
            .flat_map(|r| r.topics.unwrap_or_default())
            .collect();
        Ok(Partial::new(uniq_sorted(topics), errors))
    }

    /// Union of a topic's channels from every lookupd, sorted.
    pub async fn lookupd_topic_channels(
        &self,
        topic: &str,
        lookupds: &[String],
    ) -> Result<Partial<Vec<String>>, NoneAnswered> {
        let urls = lookupds
            .iter()
            .map(|a| format!("http://{a}/channels?topic={}", query_escape(topic)))
            .collect();
        let (ok, errors) = gather("nsqlookupd", self.get_all::<ChannelsResp>(urls).await)?;
        let channels = ok
            .into_iter()
            .flat_map(|r| r.channels.unwrap_or_default())
            .collect();
        Ok(Partial::new(uniq_sorted(channels), errors))
    }

    /// Every nsqd the lookupds know, merged by TCP address, flagged out of date when older than
    /// the newest, sorted by hostname.
    pub async fn lookupd_producers(
        &self,
        lookupds: &[String],
    ) -> Result<Partial<Vec<Producer>>, NoneAnswered> {
        let urls = lookupds
            .iter()
            .map(|a| format!("http://{a}/nodes"))
            .collect();
        let results = self.get_all::<ProducersResp>(urls).await;
        let mut producers: Vec<Producer> = Vec::new();
        let mut by_addr: HashMap<String, usize> = HashMap::new();
        let mut max_version = semver::Version::new(0, 0, 0);
        let mut tagged = Vec::new();
        for (addr, r) in lookupds.iter().zip(results) {
            tagged.push(r.map(|resp| (addr.clone(), resp)));
        }
        let (ok, errors) = gather("nsqlookupd", tagged)?;
        for (lookupd, resp) in ok {
            for raw in resp.producers.unwrap_or_default() {
                let p = Producer::from_raw(raw);
                let key = p.tcp_address();
                let remote = format!("{lookupd}/{}", p.address());
                let i = match by_addr.get(&key) {
                    Some(i) => *i,
                    None => {
                        let mut p = p;
                        if max_version < p.version_obj {
                            max_version = p.version_obj.clone();
                        }
                        if let Some(t) = p.topics.as_mut() {
                            t.sort_by(|a, b| a.topic.cmp(&b.topic));
                        }
                        producers.push(p);
                        by_addr.insert(key, producers.len() - 1);
                        producers.len() - 1
                    }
                };
                if let Some(p) = producers.get_mut(i) {
                    p.remote_addresses.get_or_insert_with(Vec::new).push(remote);
                }
            }
        }
        for p in &mut producers {
            p.out_of_date = p.version_obj < max_version;
        }
        producers.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        Ok(Partial::new(producers, errors))
    }

    /// The nsqd that have `topic`, per every lookupd's `/lookup`, merged by HTTP address.
    pub async fn lookupd_topic_producers(
        &self,
        topic: &str,
        lookupds: &[String],
    ) -> Result<Partial<Vec<Producer>>, NoneAnswered> {
        let urls = lookupds
            .iter()
            .map(|a| format!("http://{a}/lookup?topic={}", query_escape(topic)))
            .collect();
        let (ok, errors) = gather("nsqlookupd", self.get_all::<ProducersResp>(urls).await)?;
        let mut producers: Vec<Producer> = Vec::new();
        for resp in ok {
            for raw in resp.producers.unwrap_or_default() {
                let p = Producer::from_raw(raw);
                if !producers
                    .iter()
                    .any(|q| q.http_address() == p.http_address())
                {
                    producers.push(p);
                }
            }
        }
        Ok(Partial::new(producers, errors))
    }

    /// Topic names over every configured nsqd, sorted.
    pub async fn nsqd_topics(
        &self,
        nsqds: &[String],
    ) -> Result<Partial<Vec<String>>, NoneAnswered> {
        let urls = nsqds
            .iter()
            .map(|a| format!("http://{a}/stats?format=json"))
            .collect();
        let (ok, errors) = gather("nsqd", self.get_all::<TopicNames>(urls).await)?;
        let topics = ok
            .into_iter()
            .flat_map(|r| r.topics.unwrap_or_default())
            .map(|t| t.topic_name)
            .collect();
        Ok(Partial::new(uniq_sorted(topics), errors))
    }

    async fn nsqd_producer(
        &self,
        addr: &str,
        topic: Option<&str>,
    ) -> Result<Option<Producer>, UpstreamError> {
        let (info, names) = if let Some(topic) = topic {
            let url = format!(
                "http://{addr}/stats?format=json&topic={}&include_clients=false",
                query_escape(topic)
            );
            log::info!("CI: querying nsqd {url}");
            let names: TopicNames = self.client.get_json(&url).await?;
            let names: Vec<String> = names
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.topic_name)
                .collect();
            if !names.iter().any(|n| n == topic) {
                return Ok(None);
            }
            let url = format!("http://{addr}/info");
            log::info!("CI: querying nsqd {url}");
            let mut info: InfoResp = self.client.get_json(&url).await?;
            // nsqd before 1.0 did not report its own addresses.
            if info.broadcast_address.is_empty() {
                if let Ok((h, p)) = crate::options::split_host_port(addr) {
                    info.broadcast_address = h.to_string();
                    info.http_port = p.parse().unwrap_or(0);
                }
            }
            if info.hostname.is_empty() {
                if let Ok((h, _)) = crate::options::split_host_port(addr) {
                    info.hostname = h.to_string();
                }
            }
            (info, names)
        } else {
            let url = format!("http://{addr}/info");
            log::info!("CI: querying nsqd {url}");
            let info: InfoResp = self.client.get_json(&url).await?;
            let url = format!("http://{addr}/stats?format=json&include_clients=false");
            log::info!("CI: querying nsqd {url}");
            let names: TopicNames = self.client.get_json(&url).await?;
            let names = names
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.topic_name)
                .collect();
            (info, names)
        };
        let topics: Vec<crate::stats::ProducerTopic> = names
            .into_iter()
            .map(|topic| crate::stats::ProducerTopic {
                topic,
                tombstoned: false,
            })
            .collect();
        Ok(Some(Producer {
            remote_addresses: None,
            remote_address: String::new(),
            version_obj: parse_version(&info.version),
            version: info.version,
            hostname: info.hostname,
            broadcast_address: info.broadcast_address,
            tcp_port: info.tcp_port,
            http_port: info.http_port,
            topics: (!topics.is_empty()).then_some(topics),
            out_of_date: false,
        }))
    }

    /// Every configured nsqd, from its `/info` and `/stats`.
    pub async fn nsqd_producers(
        &self,
        nsqds: &[String],
    ) -> Result<Partial<Vec<Producer>>, NoneAnswered> {
        let results = join_all(nsqds.iter().map(|a| self.nsqd_producer(a, None))).await;
        let (ok, errors) = gather("nsqd", results)?;
        Ok(Partial::new(ok.into_iter().flatten().collect(), errors))
    }

    /// The configured nsqd that have `topic`.
    pub async fn nsqd_topic_producers(
        &self,
        topic: &str,
        nsqds: &[String],
    ) -> Result<Partial<Vec<Producer>>, NoneAnswered> {
        let results = join_all(nsqds.iter().map(|a| self.nsqd_producer(a, Some(topic)))).await;
        let (ok, errors) = gather("nsqd", results)?;
        Ok(Partial::new(ok.into_iter().flatten().collect(), errors))
    }

    pub async fn producers(
        &self,
        lookupds: &[String],
        nsqds: &[String],
    ) -> Result<Partial<Vec<Producer>>, NoneAnswered> {
        if lookupds.is_empty() {
            self.nsqd_producers(nsqds).await
        } else {
            self.lookupd_producers(lookupds).await
        }
    }

    pub async fn topic_producers(
        &self,
        topic: &str,
        lookupds: &[String],
        nsqds: &[String],
    ) -> Result<Partial<Vec<Producer>>, NoneAnswered> {
        if lookupds.is_empty() {
            self.nsqd_topic_producers(topic, nsqds).await
        } else {
            self.lookupd_topic_producers(topic, lookupds).await
        }
    }

    /// Stats from every producer: per-node topics (filtered to `topic` when given) and channel
    /// aggregates, with clients only when asked.
    pub async fn nsqd_stats(
        &self,
        producers: &[Producer],
        topic: &str,
        channel: &str,
        include_clients: bool,
    ) -> Result<Partial<NodeStats>, NoneAnswered> {
        let urls: Vec<String> = producers
            .iter()
            .map(|p| {
                let mut url = format!("http://{}/stats?format=json", p.http_address());
                if !topic.is_empty() {
                    url.push_str("&topic=");
                    url.push_str(&query_escape(topic));
                    if !channel.is_empty() {
                        url.push_str("&channel=");
                        url.push_str(&query_escape(channel));
                    }
                }
                if !include_clients {
                    url.push_str("&include_clients=false");
                }
                url
            })
            .collect();
        let results = self.get_all::<RawStats>(urls).await;
        let mut answers = Vec::new();
        let mut errors = Vec::new();
        for (p, r) in producers.iter().zip(results) {
            match r {
                Ok(resp) => answers.push((p.http_address(), p.hostname.clone(), resp)),
                Err(e) => errors.push(e),
            }
        }
        if errors.len() == producers.len() {
            return Err(NoneAnswered {
                what: "nsqd",
                errors,
            });
        }
        Ok(Partial::new(
            crate::stats::merge_nodes(answers, topic, unix_now()),
            errors,
        ))
    }

    async fn post_all(&self, urls: Vec<String>) -> Vec<UpstreamError> {
        join_all(urls.iter().map(|u| {
            log::info!("CI: querying {u}");
            self.client.post_v1(u)
        }))
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect()
    }

    async fn lookupds_post(&self, lookupds: &[String], path: &str, qs: &str) -> Vec<UpstreamError> {
        self.post_all(
            lookupds
                .iter()
                .map(|a| format!("http://{a}/{path}?{qs}"))
                .collect(),
        )
        .await
    }

    async fn producers_post(
        &self,
        producers: &[Producer],
        path: &str,
        qs: &str,
    ) -> Vec<UpstreamError> {
        self.post_all(
            producers
                .iter()
                .map(|p| format!("http://{}/{path}?{qs}", p.http_address()))
                .collect(),
        )
        .await
    }

    /// Tombstones `topic` for `node` on every lookupd, then deletes it on that node.
    pub async fn tombstone_node_for_topic(
        &self,
        topic: &str,
        node: &str,
        lookupds: &[String],
    ) -> Result<Vec<UpstreamError>, NoneAnswered> {
        let qs = format!("topic={}&node={}", query_escape(topic), query_escape(node));
        let mut errors = self.lookupds_post(lookupds, "topic/tombstone", &qs).await;
        let producers = self.nsqd_producers(&[node.to_string()]).await?;
        errors.extend(producers.errors);
        let qs = format!("topic={}", query_escape(topic));
        errors.extend(
            self.producers_post(&producers.value, "topic/delete", &qs)
                .await,
        );
        Ok(errors)
    }

    /// Registers the topic (and channel) with every lookupd, and creates the channel on every
    /// nsqd that has the topic. The topic itself is created on nsqd by its first publish.
    pub async fn create_topic_channel(
        &self,
        topic: &str,
        channel: &str,
        lookupds: &[String],
    ) -> Result<Vec<UpstreamError>, NoneAnswered> {
        let qs = format!("topic={}", query_escape(topic));
        let mut errors = self.lookupds_post(lookupds, "topic/create", &qs).await;
        if !channel.is_empty() {
            let qs = format!(
                "topic={}&channel={}",
                query_escape(topic),
                query_escape(channel)
            );
            errors.extend(self.lookupds_post(lookupds, "channel/create", &qs).await);
            let producers = self.lookupd_topic_producers(topic, lookupds).await?;
            errors.extend(producers.errors);
            errors.extend(
                self.producers_post(&producers.value, "channel/create", &qs)
                    .await,
            );
        }
        Ok(errors)
    }

    /// Deletes a topic (or one of its channels, when `channel` is set) from the lookupds and
    /// from every nsqd that has it; the nsqd are found first.
    pub async fn delete(
        &self,
        topic: &str,
        channel: &str,
        lookupds: &[String],
        nsqds: &[String],
    ) -> Result<Vec<UpstreamError>, NoneAnswered> {
        let producers = self.topic_producers(topic, lookupds, nsqds).await?;
        let mut errors = producers.errors;
        let (path, qs) = if channel.is_empty() {
            ("topic/delete", format!("topic={}", query_escape(topic)))
        } else {
            (
                "channel/delete",
                format!(
                    "topic={}&channel={}",
                    query_escape(topic),
                    query_escape(channel)
                ),
            )
        };
        errors.extend(self.lookupds_post(lookupds, path, &qs).await);
        errors.extend(self.producers_post(&producers.value, path, &qs).await);
        Ok(errors)
    }

    /// Pause, unpause or empty a topic or channel on every nsqd that has the topic.
    pub async fn action(
        &self,
        topic: &str,
        channel: &str,
        verb: &str,
        lookupds: &[String],
        nsqds: &[String],
    ) -> Result<Vec<UpstreamError>, NoneAnswered> {
        let producers = self.topic_producers(topic, lookupds, nsqds).await?;
        let mut errors = producers.errors;
        let (path, qs) = if channel.is_empty() {
            (
                format!("topic/{verb}"),
                format!("topic={}", query_escape(topic)),
            )
        } else {
            (
                format!("channel/{verb}"),
                format!(
                    "topic={}&channel={}",
                    query_escape(topic),
                    query_escape(channel)
                ),
            )
        };
        errors.extend(self.producers_post(&producers.value, &path, &qs).await);
        Ok(errors)
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
