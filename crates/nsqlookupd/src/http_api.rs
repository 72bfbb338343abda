//! nsqlookupd's HTTP API: lookups for consumers (`/lookup`, `/topics`, `/channels`, `/nodes`),
//! administration of registrations, `/ping`, `/info` and `/debug`, with NSQ's status codes,
//! error messages and JSON shapes; and `/metrics` for Prometheus.
use std::collections::BTreeMap;
use std::sync::Arc;

use http::StatusCode;
use serde::Serialize;

use nsq_http::{plain, v1_empty, v1_json, ApiError, HandlerResult, Query, RequestCtx, Router};
use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};

use crate::lookupd::Lookupd;
use crate::registry::{now_nanos, PeerInfo};

pub fn router() -> Router<Lookupd> {
    let mut r = Router::new();
    r.get("/ping", ping)
        .get("/info", info)
        .get("/debug", debug)
        .get("/metrics", metrics)
        .route(http::Method::HEAD, "/metrics", metrics)
        .get("/lookup", lookup)
        .get("/topics", topics)
        .get("/channels", channels)
        .get("/nodes", nodes)
        .post("/topic/create", topic_create)
        .post("/topic/delete", topic_delete)
        .post("/channel/create", channel_create)
        .post("/channel/delete", channel_delete)
        .post("/topic/tombstone", topic_tombstone);
    r
}

fn err(status: u16, msg: &'static str) -> ApiError {
    ApiError::new(status, msg)
}

fn query(ctx: &RequestCtx) -> Result<Query, ApiError> {
    ctx.query().map_err(|_| err(400, "INVALID_REQUEST"))
}

/// `?topic=`, required but not validated (lookups accept any name, and `*`).
fn topic_arg(q: &Query) -> Result<&str, ApiError> {
    q.get("topic").ok_or_else(|| err(400, "MISSING_ARG_TOPIC"))
}

/// `?topic=&channel=` for channel administration, checked in NSQ's order.
fn topic_channel_args(q: &Query) -> Result<(&str, &str), ApiError> {
    let topic = topic_arg(q)?;
    if !is_valid_topic_name(topic.as_bytes()) {
        return Err(err(400, "INVALID_ARG_TOPIC"));
    }
    let channel = q
        .get("channel")
        .ok_or_else(|| err(400, "MISSING_ARG_CHANNEL"))?;
    if !is_valid_channel_name(channel.as_bytes()) {
        return Err(err(400, "INVALID_ARG_CHANNEL"));
    }
    Ok((topic, channel))
}

async fn ping(_l: Arc<Lookupd>, _ctx: RequestCtx) -> HandlerResult {
    Ok(plain(StatusCode::OK, "OK"))
}

async fn metrics(l: Arc<Lookupd>, _ctx: RequestCtx) -> HandlerResult {
    let page = nsq_daemon::metrics::render(&l.metrics);
    let mut response = plain(StatusCode::OK, page);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(nsq_daemon::metrics::CONTENT_TYPE),
    );
    Ok(response)
}

#[derive(Serialize)]
struct Info {
    version: &'static str,
}

async fn info(_l: Arc<Lookupd>, _ctx: RequestCtx) -> HandlerResult {
    Ok(v1_json(&Info {
        version: nsq_daemon::VERSION,
    }))
}

/// A producer as `/lookup` shows it; field order is NSQ's.
#[derive(Serialize)]
struct Peer<'a> {
    remote_address: &'a str,
    hostname: &'a str,
    broadcast_address: &'a str,
    tcp_port: i64,
    http_port: i64,
    version: &'a str,
    topology_zone: &'a str,
    topology_region: &'a str,
}

impl<'a> From<&'a PeerInfo> for Peer<'a> {
    fn from(p: &'a PeerInfo) -> Self {
        Peer {
            remote_address: &p.remote_address,
            hostname: &p.hostname,
            broadcast_address: &p.broadcast_address,
            tcp_port: p.tcp_port,
            http_port: p.http_port,
            version: &p.version,
            topology_zone: &p.topology_zone,
            topology_region: &p.topology_region,
        }
    }
}

/// NSQ marshals a map here, hence alphabetical keys.
#[derive(Serialize)]
struct LookupBody<'a> {
    channels: Vec<String>,
    producers: Vec<Peer<'a>>,
}

async fn lookup(l: Arc<Lookupd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let topic = topic_arg(&q)?;
    let o = &l.opts;
    let found =
        l.db.lookup(
            topic,
            now_nanos(),
            o.inactive_producer_timeout,
            o.tombstone_lifetime,
        )
        .ok_or_else(|| err(404, "TOPIC_NOT_FOUND"))?;
    Ok(v1_json(&LookupBody {
        channels: found.channels,
        producers: found.producers.iter().map(|p| Peer::from(&**p)).collect(),
    }))
}

#[derive(Serialize)]
struct TopicsBody {
    topics: Vec<String>,
}

async fn topics(l: Arc<Lookupd>, _ctx: RequestCtx) -> HandlerResult {
    Ok(v1_json(&TopicsBody {
        topics: l.db.topics(),
    }))
}

#[derive(Serialize)]
struct ChannelsBody {
    channels: Vec<String>,
}

async fn channels(l: Arc<Lookupd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let topic = topic_arg(&q)?;
    Ok(v1_json(&ChannelsBody {
        channels: l.db.channels(topic),
    }))
}

/// A `/nodes` entry; field order is NSQ's.
#[derive(Serialize)]
struct NodeBody<'a> {
    #[serde(flatten)]
    peer: Peer<'a>,
    tombstones: &'a [bool],
    topics: &'a [String],
}

#[derive(Serialize)]
struct NodesBody<'a> {
    producers: Vec<NodeBody<'a>>,
}

async fn nodes(l: Arc<Lookupd>, _ctx: RequestCtx) -> HandlerResult {
    let o = &l.opts;
    let nodes = l.db.nodes(
        now_nanos(),
        o.inactive_producer_timeout,
        o.tombstone_lifetime,
    );
    Ok(v1_json(&NodesBody {
        producers: nodes
            .iter()
            .map(|n| NodeBody {
                peer: Peer::from(&*n.peer),
                tombstones: &n.tombstones,
                topics: &n.topics,
            })
            .collect(),
    }))
}

async fn topic_create(l: Arc<Lookupd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let topic = topic_arg(&q)?;
    if !is_valid_topic_name(topic.as_bytes()) {
        return Err(err(400, "INVALID_ARG_TOPIC"));
    }
    log::info!("DB: adding topic({topic})");
    l.db.create_topic(topic);
    Ok(v1_empty())
}

async fn topic_delete(l: Arc<Lookupd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let topic = topic_arg(&q)?;
    for r in l.db.delete_topic(topic) {
        match r.category {
            crate::registry::Category::Channel => {
                log::info!("DB: removing channel({}) from topic({})", r.subkey, r.key)
            }
            _ => log::info!("DB: removing topic({})", r.key),
        }
    }
    Ok(v1_empty())
}

async fn channel_create(l: Arc<Lookupd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let (topic, channel) = topic_channel_args(&q)?;
    log::info!("DB: adding channel({channel}) in topic({topic})");
    l.db.create_channel(topic, channel);
    Ok(v1_empty())
}

async fn channel_delete(l: Arc<Lookupd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let (topic, channel) = topic_channel_args(&q)?;
    if !l.db.delete_channel(topic, channel) {
        return Err(err(404, "CHANNEL_NOT_FOUND"));
    }
    log::info!("DB: removing channel({channel}) from topic({topic})");
    Ok(v1_empty())
}

async fn topic_tombstone(l: Arc<Lookupd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let topic = topic_arg(&q)?;
    let node = q.get("node").ok_or_else(|| err(400, "MISSING_ARG_NODE"))?;
    log::info!("DB: setting tombstone for producer@{node} of topic({topic})");
    l.db.tombstone(topic, node, now_nanos());
    Ok(v1_empty())
}

/// One `/debug` entry. NSQ marshals a map, hence the alphabetical field order.
#[derive(Serialize)]
struct DebugEntry<'a> {
    broadcast_address: &'a str,
    hostname: &'a str,
    http_port: i64,
    id: &'a str,
    last_update: i64,
    tcp_port: i64,
    tombstoned: bool,
    tombstoned_at: i64,
    topology_region: &'a str,
    topology_zone: &'a str,
    version: &'a str,
}

async fn debug(l: Arc<Lookupd>, _ctx: RequestCtx) -> HandlerResult {
    let dump = l.db.dump();
    let body: BTreeMap<String, Vec<DebugEntry>> = dump
        .iter()
        .map(|(r, producers)| {
            let entries = producers
                .iter()
                .map(|p| DebugEntry {
                    broadcast_address: &p.peer.broadcast_address,
                    hostname: &p.peer.hostname,
                    http_port: p.peer.http_port,
                    id: &p.peer.id,
                    last_update: p.peer.last_update(),
                    tcp_port: p.peer.tcp_port,
                    tombstoned: p.tombstoned_at.is_some(),
                    tombstoned_at: p.tombstoned_at_nanos(),
                    topology_region: &p.peer.topology_region,
                    topology_zone: &p.peer.topology_zone,
                    version: &p.peer.version,
                })
                .collect();
            (r.to_string(), entries)
        })
        .collect();
    Ok(v1_json(&body))
}
