//! The HTTP surface: NSQ 1.3.0 nsqadmin's routes, JSON API and actions (same keys, status codes
//! and error texts), the UI shell and static files, and the history and `/metrics` endpoints of
//! our own.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use nsq_http::{v1_json, ApiError, BodyError, HandlerResult, RemoteAddr, RequestCtx, Router};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value as Json;

use crate::admin::Admin;
use crate::cluster::{join_errors, NoneAnswered};
use crate::notify::Action;
use crate::upstream::UpstreamError;

/// Topics looked up at once for `/api/topics?inactive=true`.
const INACTIVE_LOOKUP_CONCURRENCY: usize = 16;

fn upstream(e: &NoneAnswered, what: &str) -> ApiError {
    log::error!("failed to {what} - {e}");
    ApiError::new(502, format!("UPSTREAM_ERROR: {e}"))
}

/// Go's `maybeWarnMsg`: partial failures, one group per upstream call, as a warning.
fn warning(messages: &[String]) -> String {
    if messages.is_empty() {
        String::new()
    } else {
        format!("WARNING: {}", messages.join("; "))
    }
}

fn note_partial(messages: &mut Vec<String>, errors: &[UpstreamError]) {
    if !errors.is_empty() {
        let text = join_errors(errors);
        log::warn!("{text}");
        messages.push(text);
    }
}

fn message_only(messages: &[String]) -> nsq_http::Response {
    #[derive(Serialize)]
    struct M {
        message: String,
    }
    v1_json(&M {
        message: warning(messages),
    })
}

pub fn router(base_path: &str) -> Router<Admin> {
    let bp = |p: &str| {
        if base_path == "/" {
            p.to_string()
        } else if p == "/" {
            base_path.to_string()
        } else {
            format!("{base_path}{p}")
        }
    };
    let mut r = Router::new();
    r.compress_responses();
    r.get(&bp("/"), index)
        .get(&bp("/ping"), |_, _| async {
            Ok(nsq_http::plain(StatusCode::OK, "OK"))
        })
        .get(&bp("/topics"), index)
        .get(&bp("/topics/:topic"), index)
        .get(&bp("/topics/:topic/:channel"), index)
        .get(&bp("/nodes"), index)
        .get(&bp("/nodes/:node"), index)
        .get(&bp("/counter"), index)
        .get(&bp("/lookup"), index)
        .get(&bp("/static/:asset"), static_asset)
        .get(&bp("/fonts/:asset"), static_asset)
        .get(&bp("/api/topics"), topics)
        .get(&bp("/api/topics/:topic"), topic)
        .get(&bp("/api/topics/:topic/:channel"), channel)
        .get(&bp("/api/nodes"), nodes)
        .get(&bp("/api/nodes/:node"), node)
        .post(&bp("/api/topics"), create_topic_channel)
        .post(&bp("/api/topics/:topic"), topic_action)
        .post(&bp("/api/topics/:topic/:channel"), channel_action)
        .delete(&bp("/api/nodes/:node"), tombstone_topic_producer)
        .delete(&bp("/api/topics/:topic"), delete_topic)
        .delete(&bp("/api/topics/:topic/:channel"), delete_channel)
        .get(&bp("/api/counter"), counter)
        .get(&bp("/api/graphite"), graphite)
        .get(&bp("/api/history/topics/:topic"), topic_history)
        .get(&bp("/api/history/topics/:topic/:channel"), channel_history)
        .get(&bp("/metrics"), metrics)
        .route(http::Method::HEAD, &bp("/metrics"), metrics)
        .get(&bp("/config/:opt"), config)
        .put(&bp("/config/:opt"), config);
    r
}

/// The cluster in the Prometheus text format, gathered now (see [`crate::metrics`]).
async fn metrics(admin: Arc<Admin>, _ctx: RequestCtx) -> HandlerResult {
    let opts = admin.opts();
    let scrape = crate::metrics::gather(&admin, &opts).await;
    let page = crate::metrics::render(&admin.metrics, scrape);
    let mut response = nsq_http::plain(StatusCode::OK, page);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(nsq_daemon::metrics::CONTENT_TYPE),
    );
    Ok(response)
}

/// The router, plus `GET /render` proxied to graphite when `--proxy-graphite` is set.
pub fn router_for(opts: &crate::options::Options) -> Router<Admin> {
    let mut r = router(&opts.base_path);
    if opts.proxy_graphite {
        let path = if opts.base_path == "/" {
            "/render".to_string()
        } else {
            format!("{}/render", opts.base_path)
        };
        r.get(&path, render_proxy);
    }
    r
}

/// `--proxy-graphite`: the browser asks us, we ask graphite (with the credentials its URL
/// carries) and pass the answer back.
async fn render_proxy(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let opts = admin.opts();
    let (base, auth) = split_userinfo(&opts.graphite_url);
    let mut url = format!("{}/render", base.trim_end_matches('/'));
    if let Some(q) = ctx.uri.query() {
        url.push('?');
        url.push_str(q);
    }
    let answer = admin
        .cluster
        .client()
        .request_with_auth(http::Method::GET, &url, auth.as_deref())
        .await;
    match answer {
        Ok((status, content_type, body)) => {
            let mut response = http::Response::new(http_body_util::Full::new(body));
            *response.status_mut() = status;
            if let Some(ct) = content_type {
                response.headers_mut().insert(CONTENT_TYPE, ct);
            }
            Ok(response)
        }
        Err(e) => {
            log::error!("http: proxy error: {e}");
            let mut response = http::Response::new(http_body_util::Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}

/// `http://user:pass@host/x` → (`http://host/x`, `Some("Basic …")`).
fn split_userinfo(url: &str) -> (String, Option<String>) {
    use base64::Engine as _;
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let credentials = if userinfo.contains(':') {
        userinfo.to_string()
    } else {
        format!("{userinfo}:")
    };
    let token = base64::engine::general_purpose::STANDARD.encode(credentials);
    (
        format!("{scheme}://{host}{path}"),
        Some(format!("Basic {token}")),
    )
}

/// The page shell every UI route returns; the UI routes itself in the browser.
async fn index(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let opts = admin.opts();
    let base = if opts.base_path.ends_with('/') {
        opts.base_path.clone()
    } else {
        format!("{}/", opts.base_path)
    };
    let graphite_url = if opts.proxy_graphite {
        String::new()
    } else {
        opts.graphite_url.clone()
    };
    let config = serde_json::json!({
        "version": nsq_daemon::VERSION,
        "user_agent": format!("nsqadmin/v{}", nsq_daemon::VERSION),
        "base_path": base,
        "is_admin": admin.is_admin(&ctx),
        "graph_enabled": !opts.graphite_url.is_empty(),
        "graphite_url": graphite_url,
        "proxy_graphite": opts.proxy_graphite,
        "statsd_counter_format": opts.statsd_counter_format,
        "statsd_gauge_format": opts.statsd_gauge_format,
        "statsd_prefix": opts.statsd_prefix,
        "statsd_interval": opts.statsd_interval.as_secs(),
        "nsqlookupd": opts.lookupd_http_addresses,
        "history_interval": opts.history_interval.as_secs_f64(),
        "history_retention": opts.history_retention.as_secs(),
    });
    // Inside a <script> element: the Go-style encoder escapes <, > and &, so no value can close
    // the element early.
    let config = nsq_http::json::to_vec(&config).map_err(|_| ApiError::internal())?;
    let shell = crate::assets::get("index.html").unwrap_or(b"");
    let html = String::from_utf8_lossy(shell)
        .replace("%BASE%", &html_attr(&base))
        .replace("%CONFIG%", &String::from_utf8_lossy(&config));
    let mut response = http::Response::new(http_body_util::Full::new(Bytes::from(html)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Ok(response)
}

fn html_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn static_asset(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let name = ctx.param("asset").unwrap_or_default().to_string();
    let not_found = || ApiError::plain(404, "NOT_FOUND");
    let dev_dir = admin.opts().dev_static_dir.clone();
    let body = if dev_dir.is_empty() {
        Bytes::from_static(crate::assets::get(&format!("static/{name}")).ok_or_else(not_found)?)
    } else {
        if name.contains('/') || name == ".." {
            return Err(not_found());
        }
        log::debug!("using dev dir {dev_dir:?} for static asset {name:?}");
        let path = std::path::Path::new(&dev_dir).join(&name);
        Bytes::from(tokio::fs::read(path).await.map_err(|_| not_found())?)
    };
    let mut response = http::Response::new(http_body_util::Full::new(body));
    if let Some(ct) = crate::assets::content_type(&name) {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(response)
}

async fn topics(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let query = ctx.query().map_err(|e| ApiError::new(400, e.to_string()))?;
    let opts = admin.opts();
    let mut messages = Vec::new();
    let listed = if opts.lookupd_mode() {
        admin
            .cluster
            .lookupd_topics(&opts.lookupd_http_addresses)
            .await
    } else {
        admin.cluster.nsqd_topics(&opts.nsqd_http_addresses).await
    };
    let listed = listed.map_err(|e| upstream(&e, "get topics"))?;
    note_partial(&mut messages, &listed.errors);

    if query.get("inactive") == Some("true") {
        let mut inactive: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if opts.lookupd_mode() {
            let lookupds = opts.lookupd_http_addresses.clone();
            // One lookup per topic: bounded, so a cluster with thousands of topics does not
            // open thousands of connections to each lookupd at once.
            use futures_util::StreamExt as _;
            let checks: Vec<_> = futures_util::stream::iter(listed.value.clone())
                .map(|t| {
                    let admin = Arc::clone(&admin);
                    let lookupds = lookupds.clone();
                    async move {
                        let cluster = &admin.cluster;
                        let producers = cluster.lookupd_topic_producers(&t, &lookupds).await;
                        if producers.map(|p| p.value.is_empty()).unwrap_or(true) {
                            let channels = cluster
                                .lookupd_topic_channels(&t, &lookupds)
                                .await
                                .map(|c| c.value)
                                .unwrap_or_default();
                            Some((t, channels))
                        } else {
                            None
                        }
                    }
                })
                .buffered(INACTIVE_LOOKUP_CONCURRENCY)
                .collect()
                .await;
            inactive.extend(checks.into_iter().flatten());
        }
        #[derive(Serialize)]
        struct Inactive {
            topics: BTreeMap<String, NullableList>,
            message: String,
        }
        return Ok(v1_json(&Inactive {
            topics: inactive
                .into_iter()
                .map(|(k, v)| (k, NullableList(v)))
                .collect(),
            message: warning(&messages),
        }));
    }

    #[derive(Serialize)]
    struct Topics {
        topics: NullableList,
        message: String,
    }
    Ok(v1_json(&Topics {
        topics: NullableList(listed.value),
        message: warning(&messages),
    }))
}

/// A Go slice built by appending: `null` when nothing was appended.
struct NullableList(Vec<String>);

impl Serialize for NullableList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            s.serialize_none()
        } else {
            self.0.serialize(s)
        }
    }
}

async fn topic(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let topic_name = ctx.param("topic").unwrap_or_default().to_string();
    let opts = admin.opts();
    let mut messages = Vec::new();
    let producers = admin
        .cluster
        .topic_producers(
            &topic_name,
            &opts.lookupd_http_addresses,
            &opts.nsqd_http_addresses,
        )
        .await
        .map_err(|e| upstream(&e, "get topic producers"))?;
    note_partial(&mut messages, &producers.errors);
    let stats = admin
        .cluster
        .nsqd_stats(&producers.value, &topic_name, "", false)
        .await
        .map_err(|e| upstream(&e, "get topic metadata"))?;
    note_partial(&mut messages, &stats.errors);
    let mut stats = stats.value;
    let all = crate::stats::aggregate_topic(&mut stats, &topic_name);
    Ok(topic_response(&stats.arena, all, &warning(&messages)))
}

fn topic_response(
    arena: &crate::stats::Arena,
    id: crate::stats::TopicId,
    message: &str,
) -> nsq_http::Response {
    struct Body<'a> {
        arena: &'a crate::stats::Arena,
        id: crate::stats::TopicId,
        message: &'a str,
    }
    impl Serialize for Body<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            self.arena.topic_json(self.id).write_fields(&mut m)?;
            m.serialize_entry("message", self.message)?;
            m.end()
        }
    }
    v1_json(&Body { arena, id, message })
}

async fn channel(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let topic_name = ctx.param("topic").unwrap_or_default().to_string();
    let channel_name = ctx.param("channel").unwrap_or_default().to_string();
    let opts = admin.opts();
    let mut messages = Vec::new();
    let producers = admin
        .cluster
        .topic_producers(
            &topic_name,
            &opts.lookupd_http_addresses,
            &opts.nsqd_http_addresses,
        )
        .await
        .map_err(|e| upstream(&e, "get topic producers"))?;
    note_partial(&mut messages, &producers.errors);
    let stats = admin
        .cluster
        .nsqd_stats(&producers.value, &topic_name, &channel_name, true)
        .await
        .map_err(|e| upstream(&e, "get channel metadata"))?;
    note_partial(&mut messages, &stats.errors);
    let stats = stats.value;
    let message = warning(&messages);
    struct Body<'a> {
        stats: &'a crate::cluster::NodeStats,
        channel: Option<crate::stats::ChannelId>,
        message: &'a str,
    }
    impl Serialize for Body<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            // An unknown channel leaves only the message, as the reference's nil embed does.
            if let Some(id) = self.channel {
                self.stats.arena.channel_json(id).write_fields(&mut m)?;
            }
            m.serialize_entry("message", self.message)?;
            m.end()
        }
    }
    Ok(v1_json(&Body {
        stats: &stats,
        channel: stats.channels.get(&channel_name).copied(),
        message: &message,
    }))
}

async fn nodes(admin: Arc<Admin>, _ctx: RequestCtx) -> HandlerResult {
    let opts = admin.opts();
    let mut messages = Vec::new();
    let producers = admin
        .cluster
        .producers(&opts.lookupd_http_addresses, &opts.nsqd_http_addresses)
        .await
        .map_err(|e| upstream(&e, "get nodes"))?;
    note_partial(&mut messages, &producers.errors);
    #[derive(Serialize)]
    struct Nodes {
        nodes: Option<Vec<crate::stats::Producer>>,
        message: String,
    }
    Ok(v1_json(&Nodes {
        nodes: (!producers.value.is_empty()).then_some(producers.value),
        message: warning(&messages),
    }))
}

async fn node(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let node = ctx.param("node").unwrap_or_default().to_string();
    let opts = admin.opts();
    let mut messages = Vec::new();
    let producers = admin
        .cluster
        .producers(&opts.lookupd_http_addresses, &opts.nsqd_http_addresses)
        .await
        .map_err(|e| upstream(&e, "get producers"))?;
    note_partial(&mut messages, &producers.errors);
    let producer = producers
        .value
        .into_iter()
        .find(|p| p.http_address() == node)
        .ok_or_else(|| ApiError::new(404, "NODE_NOT_FOUND"))?;
    let stats = admin
        .cluster
        .nsqd_stats(std::slice::from_ref(&producer), "", "", true)
        .await
        .map_err(|e| upstream(&e, "get nsqd stats"))?;
    let stats = stats.value;
    let mut total_clients = 0i64;
    let mut total_messages = 0i64;
    for id in &stats.topics {
        if let Some(t) = stats.arena.topic(*id) {
            total_messages += t.message_count;
            for c in t.channels.iter().flatten() {
                if let Some(c) = stats.arena.channel(*c) {
                    total_clients += c.clients.as_ref().map_or(0, |l| l.len() as i64);
                }
            }
        }
    }
    struct Body<'a> {
        node: &'a str,
        stats: &'a crate::cluster::NodeStats,
        total_messages: i64,
        total_clients: i64,
        message: String,
    }
    impl Serialize for Body<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            m.serialize_entry("node", self.node)?;
            if self.stats.topics.is_empty() {
                m.serialize_entry("topics", &None::<()>)?;
            } else {
                let list: Vec<_> = self
                    .stats
                    .topics
                    .iter()
                    .map(|id| self.stats.arena.topic_json(*id))
                    .collect();
                m.serialize_entry("topics", &list)?;
            }
            m.serialize_entry("total_messages", &self.total_messages)?;
            m.serialize_entry("total_clients", &self.total_clients)?;
            m.serialize_entry("message", &self.message)?;
            m.end()
        }
    }
    Ok(v1_json(&Body {
        node: &node,
        stats: &stats,
        total_messages,
        total_clients,
        message: warning(&messages),
    }))
}

async fn counter(admin: Arc<Admin>, _ctx: RequestCtx) -> HandlerResult {
    let opts = admin.opts();
    let mut messages = Vec::new();
    let producers = admin
        .cluster
        .producers(&opts.lookupd_http_addresses, &opts.nsqd_http_addresses)
        .await
        .map_err(|e| upstream(&e, "get counter producer list"))?;
    note_partial(&mut messages, &producers.errors);
    let stats = admin
        .cluster
        .nsqd_stats(&producers.value, "", "", false)
        .await
        .map_err(|e| upstream(&e, "get nsqd stats"))?;
    note_partial(&mut messages, &stats.errors);
    #[derive(Serialize)]
    struct Count {
        node: String,
        topic_name: String,
        channel_name: String,
        message_count: i64,
    }
    let arena = &stats.value.arena;
    let mut counts: BTreeMap<String, Count> = BTreeMap::new();
    for agg in stats.value.channels.values() {
        let Some(c) = arena.channel(*agg) else {
            continue;
        };
        for n in c.node_stats.iter().flatten() {
            let Some(n) = arena.channel(*n) else { continue };
            let key = format!("{}:{}:{}", c.topic_name, c.channel_name, n.node);
            counts
                .entry(key)
                .or_insert_with(|| Count {
                    node: n.node.clone(),
                    topic_name: c.topic_name.clone(),
                    channel_name: c.channel_name.clone(),
                    message_count: 0,
                })
                .message_count += n.message_count;
        }
    }
    #[derive(Serialize)]
    struct Body {
        stats: BTreeMap<String, Count>,
        message: String,
    }
    Ok(v1_json(&Body {
        stats: counts,
        message: warning(&messages),
    }))
}

async fn graphite(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let query = ctx
        .query()
        .map_err(|_| ApiError::new(400, "INVALID_REQUEST"))?;
    if query.get("metric") != Some("rate") {
        return Err(ApiError::new(400, "INVALID_ARG_METRIC"));
    }
    let target = query
        .get("target")
        .ok_or_else(|| ApiError::new(400, "INVALID_ARG_TARGET"))?;
    let opts = admin.opts();
    let interval = opts.statsd_interval.as_secs();
    let url = format!(
        "{}/render?format=json&from=-{}sec&target={}&until=-{}sec",
        opts.graphite_url,
        interval * 2,
        crate::upstream::query_escape(target),
        interval
    );
    log::info!("GRAPHITE: {url}");
    #[derive(serde::Deserialize)]
    struct Series {
        #[serde(default)]
        datapoints: Vec<Vec<Option<f64>>>,
    }
    let internal = |e: String| {
        log::error!("graphite request failed - {e}");
        ApiError::internal()
    };
    let series: Vec<Series> = admin
        .cluster
        .client()
        .get_json(&url)
        .await
        .map_err(|e| internal(e.to_string()))?;
    let rate = series
        .first()
        .and_then(|s| s.datapoints.first())
        .and_then(|p| p.first().copied().flatten())
        .ok_or_else(|| internal("no datapoint".into()))?;
    let rate = if rate < 0.0 {
        "N/A".to_string()
    } else if interval == 0 {
        // Go divides by zero here and prints +Inf or NaN.
        if rate == 0.0 {
            "NaN".to_string()
        } else {
            "+Inf".to_string()
        }
    } else {
        format!("{:.2}", rate / interval as f64)
    };
    #[derive(Serialize)]
    struct Rate {
        rate: String,
    }
    Ok(v1_json(&Rate { rate }))
}

fn forbidden_unless_admin(admin: &Admin, ctx: &RequestCtx) -> Result<(), ApiError> {
    if admin.is_admin(ctx) {
        Ok(())
    } else {
        Err(ApiError::new(403, "FORBIDDEN"))
    }
}

/// Go's `json.Decoder.Decode` into a struct of string fields: the first JSON value of the body
/// (anything after it is ignored), field names matched case-insensitively.
pub fn decode_body(body: &[u8], fields: &[&str]) -> Result<Vec<String>, String> {
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Json>();
    let value = match stream.next() {
        None => return Err("EOF".into()),
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
            return Err(match first {
                Some(b) if !b"{[\"tfn-0123456789".contains(&b) => format!(
                    "invalid character {} looking for beginning of value",
                    if (0x20..0x7f).contains(&b) && b != b'\'' {
                        format!("'{}'", b as char)
                    } else {
                        format!("'\\x{b:02x}'")
                    }
                ),
                _ if e.is_eof() => "unexpected EOF".into(),
                _ => format!("json: {e}"),
            });
        }
    };
    let kind = |v: &Json| match v {
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
        Json::Null => "null",
    };
    let object = match value {
        Json::Object(o) => o,
        Json::Null => return Ok(vec![String::new(); fields.len()]),
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type struct",
                kind(&other)
            ))
        }
    };
    fields
        .iter()
        .map(|name| {
            let v = object.get(*name).or_else(|| {
                object
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            });
            match v {
                None | Some(Json::Null) => Ok(String::new()),
                Some(Json::String(s)) => Ok(s.clone()),
                Some(other) => Err(format!(
                    "json: cannot unmarshal {} into Go struct field .{name} of type string",
                    kind(other)
                )),
            }
        })
        .collect()
}

async fn read_body(ctx: &mut RequestCtx) -> Result<Bytes, ApiError> {
    match ctx.read_body(10 * 1024 * 1024).await {
        Ok(b) => Ok(b),
        Err(BodyError::TooLarge { .. }) => Err(ApiError::new(400, "http: request body too large")),
        Err(BodyError::Read(e)) => Err(ApiError::new(400, e.to_string())),
    }
}

async fn tombstone_topic_producer(admin: Arc<Admin>, mut ctx: RequestCtx) -> HandlerResult {
    forbidden_unless_admin(&admin, &ctx)?;
    let node = ctx.param("node").unwrap_or_default().to_string();
    let body = read_body(&mut ctx).await?;
    let topic = decode_body(&body, &["topic"])
        .map_err(|_| ApiError::new(400, "INVALID_BODY"))?
        .swap_remove(0);
    if !nsq_protocol::names::is_valid_topic_name(topic.as_bytes()) {
        return Err(ApiError::new(400, "INVALID_TOPIC"));
    }
    let opts = admin.opts();
    let mut messages = Vec::new();
    let errors = admin
        .cluster
        .tombstone_node_for_topic(&topic, &node, &opts.lookupd_http_addresses)
        .await
        .map_err(|e| upstream(&e, "tombstone node for topic"))?;
    note_partial(&mut messages, &errors);
    admin.notify(
        Action::new("tombstone_topic_producer", &topic, "", &node),
        &ctx,
    );
    Ok(message_only(&messages))
}

async fn create_topic_channel(admin: Arc<Admin>, mut ctx: RequestCtx) -> HandlerResult {
    forbidden_unless_admin(&admin, &ctx)?;
    let body = read_body(&mut ctx).await?;
    let mut fields =
        decode_body(&body, &["topic", "channel"]).map_err(|e| ApiError::new(400, e))?;
    let channel = fields.pop().unwrap_or_default();
    let topic = fields.pop().unwrap_or_default();
    if !nsq_protocol::names::is_valid_topic_name(topic.as_bytes()) {
        return Err(ApiError::new(400, "INVALID_TOPIC"));
    }
    if !channel.is_empty() && !nsq_protocol::names::is_valid_channel_name(channel.as_bytes()) {
        return Err(ApiError::new(400, "INVALID_CHANNEL"));
    }
    let opts = admin.opts();
    let mut messages = Vec::new();
    let errors = admin
        .cluster
        .create_topic_channel(&topic, &channel, &opts.lookupd_http_addresses)
        .await
        .map_err(|e| upstream(&e, "create topic/channel"))?;
    note_partial(&mut messages, &errors);
    admin.notify(Action::new("create_topic", &topic, "", ""), &ctx);
    if !channel.is_empty() {
        admin.notify(Action::new("create_channel", &topic, &channel, ""), &ctx);
    }
    Ok(message_only(&messages))
}

async fn delete_topic(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    forbidden_unless_admin(&admin, &ctx)?;
    let topic = ctx.param("topic").unwrap_or_default().to_string();
    delete(admin, ctx, topic, String::new()).await
}

async fn delete_channel(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    forbidden_unless_admin(&admin, &ctx)?;
    let topic = ctx.param("topic").unwrap_or_default().to_string();
    let channel = ctx.param("channel").unwrap_or_default().to_string();
    delete(admin, ctx, topic, channel).await
}

async fn delete(
    admin: Arc<Admin>,
    ctx: RequestCtx,
    topic: String,
    channel: String,
) -> HandlerResult {
    let opts = admin.opts();
    let mut messages = Vec::new();
    let what = if channel.is_empty() {
        "delete topic"
    } else {
        "delete channel"
    };
    let errors = admin
        .cluster
        .delete(
            &topic,
            &channel,
            &opts.lookupd_http_addresses,
            &opts.nsqd_http_addresses,
        )
        .await
        .map_err(|e| upstream(&e, what))?;
    note_partial(&mut messages, &errors);
    let action = if channel.is_empty() {
        "delete_topic"
    } else {
        "delete_channel"
    };
    admin.notify(Action::new(action, &topic, &channel, ""), &ctx);
    Ok(message_only(&messages))
}

async fn topic_action(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let topic = ctx.param("topic").unwrap_or_default().to_string();
    topic_channel_action(admin, ctx, topic, String::new()).await
}

async fn channel_action(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let topic = ctx.param("topic").unwrap_or_default().to_string();
    let channel = ctx.param("channel").unwrap_or_default().to_string();
    topic_channel_action(admin, ctx, topic, channel).await
}

async fn topic_channel_action(
    admin: Arc<Admin>,
    mut ctx: RequestCtx,
    topic: String,
    channel: String,
) -> HandlerResult {
    forbidden_unless_admin(&admin, &ctx)?;
    let body = read_body(&mut ctx).await?;
    let action = decode_body(&body, &["action"])
        .map_err(|e| ApiError::new(400, e))?
        .swap_remove(0);
    let verb = match action.as_str() {
        "pause" | "unpause" | "empty" => action.as_str(),
        _ => return Err(ApiError::new(400, "INVALID_ACTION")),
    };
    let opts = admin.opts();
    let result = admin
        .cluster
        .action(
            &topic,
            &channel,
            verb,
            &opts.lookupd_http_addresses,
            &opts.nsqd_http_addresses,
        )
        .await;
    // The reference notifies before it looks at the outcome.
    let kind = if channel.is_empty() {
        "topic"
    } else {
        "channel"
    };
    admin.notify(
        Action::new(&format!("{verb}_{kind}"), &topic, &channel, ""),
        &ctx,
    );
    let mut messages = Vec::new();
    let errors = result.map_err(|e| upstream(&e, &format!("{verb} topic/channel")))?;
    note_partial(&mut messages, &errors);
    Ok(message_only(&messages))
}

async fn topic_history(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let topic = ctx.param("topic").unwrap_or_default();
    Ok(v1_json(&admin.history.series(topic, None)))
}

async fn channel_history(admin: Arc<Admin>, ctx: RequestCtx) -> HandlerResult {
    let topic = ctx.param("topic").unwrap_or_default();
    let channel = ctx.param("channel").unwrap_or_default();
    Ok(v1_json(&admin.history.series(topic, Some(channel))))
}

async fn config(admin: Arc<Admin>, mut ctx: RequestCtx) -> HandlerResult {
    let opt = ctx.param("opt").unwrap_or_default().to_string();
    let opts = admin.opts();
    if !opts.allow_config_from_cidr.is_empty() {
        let ip: IpAddr = match ctx.remote_addr {
            RemoteAddr::Tcp(a) => a.ip(),
            RemoteAddr::Unix => {
                log::error!("failed to parse RemoteAddr @");
                return Err(ApiError::new(400, "INVALID_REMOTE_ADDR"));
            }
        };
        let allowed = crate::options::Cidr::parse(&opts.allow_config_from_cidr)
            .map(|c| c.contains(ip))
            .unwrap_or(false);
        if !allowed {
            return Err(ApiError::new(403, "FORBIDDEN"));
        }
    }
    if ctx.method == http::Method::PUT {
        let body = match ctx.read_body(1024 * 1024).await {
            Ok(b) if !b.is_empty() => b,
            Ok(_) | Err(BodyError::TooLarge { .. }) => {
                return Err(ApiError::new(413, "INVALID_VALUE"))
            }
            Err(BodyError::Read(_)) => return Err(ApiError::internal()),
        };
        let mut new = (*opts).clone();
        match opt.as_str() {
            "nsqlookupd_http_addresses" => {
                new.lookupd_http_addresses = serde_json::from_slice(&body)
                    .map_err(|_| ApiError::new(400, "INVALID_VALUE"))?;
            }
            "log_level" => {
                let text =
                    std::str::from_utf8(&body).map_err(|_| ApiError::new(400, "INVALID_VALUE"))?;
                let level: nsq_daemon::LogLevel = text
                    .parse()
                    .map_err(|_| ApiError::new(400, "INVALID_VALUE"))?;
                nsq_daemon::logging::set_level(level);
                new.log_level = level;
            }
            _ => return Err(ApiError::new(400, "INVALID_OPTION")),
        }
        admin.swap_opts(new);
    }
    let value = admin
        .opts()
        .config_value(&opt)
        .ok_or_else(|| ApiError::new(400, "INVALID_OPTION"))?;
    Ok(match value {
        Json::String(s) => nsq_http::v1_text(s),
        other => v1_json(&other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode_as_go_decodes_them() {
        assert_eq!(
            decode_body(br#"{"action":"pause"} junk"#, &["action"]).unwrap(),
            ["pause"]
        );
        assert_eq!(
            decode_body(br#"{"Action":"empty"}"#, &["action"]).unwrap(),
            ["empty"]
        );
        assert_eq!(decode_body(b"", &["action"]).unwrap_err(), "EOF");
        assert_eq!(
            decode_body(b"nope", &["action"])
                .unwrap_err()
                .split(' ')
                .next(),
            Some("json:").or(Some("invalid"))
        );
        assert_eq!(
            decode_body(b"xyz", &["action"]).unwrap_err(),
            "invalid character 'x' looking for beginning of value"
        );
        assert_eq!(
            decode_body(br#"{"topic":1}"#, &["topic"]).unwrap_err(),
            "json: cannot unmarshal number into Go struct field .topic of type string"
        );
        assert_eq!(decode_body(b"null", &["topic"]).unwrap(), [""]);
        assert_eq!(
            decode_body(br#"{"topic":"t"}"#, &["topic", "channel"]).unwrap(),
            ["t", ""]
        );
    }

    #[test]
    fn graphite_credentials_move_to_a_header() {
        assert_eq!(
            split_userinfo("http://u:p@graphite:8080/base"),
            (
                "http://graphite:8080/base".to_string(),
                Some("Basic dTpw".to_string())
            )
        );
        assert_eq!(
            split_userinfo("http://graphite"),
            ("http://graphite".to_string(), None)
        );
    }

    #[test]
    fn warnings_join_groups() {
        assert_eq!(warning(&[]), "");
        assert_eq!(warning(&["a\nb".into(), "c".into()]), "WARNING: a\nb; c");
    }
}
