//! nsqd's HTTP API: publishing, administration of topics and channels, `/stats`, `/info`,
//! `/ping`, `/config` and `/metrics` (Prometheus), with NSQ's status codes and error messages.
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use nsq_http::{
    plain, v1_empty, v1_json, v1_text, ApiError, BodyError, HandlerResult, Query, RequestCtx,
    Router,
};
use nsq_protocol::command::parse_mpub_messages;
use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};

use crate::channel::Channel;
use crate::daemon::Nsqd;
use crate::stats::{self, StatsFilter};
use crate::topic::Topic;

pub fn router() -> Router<Nsqd> {
    let mut r = Router::new();
    r.get("/ping", ping)
        .get("/info", info)
        .post("/pub", publish)
        .post("/mpub", mpublish)
        .get("/stats", stats_handler)
        .get("/metrics", metrics_handler)
        .route(http::Method::HEAD, "/metrics", metrics_handler)
        .post("/topic/create", topic_create)
        .post("/topic/delete", topic_delete)
        .post("/topic/empty", topic_empty)
        .post("/topic/pause", topic_pause)
        .post("/topic/unpause", topic_unpause)
        .post("/channel/create", channel_create)
        .post("/channel/delete", channel_delete)
        .post("/channel/empty", channel_empty)
        .post("/channel/pause", channel_pause)
        .post("/channel/unpause", channel_unpause)
        .get("/config/:opt", config_get)
        .put("/config/:opt", config_put)
        .put("/debug/setblockrate", debug_set_block_rate)
        .post("/debug/freememory", debug_free_memory)
        .skip_access_log(["/pub", "/mpub"]);
    r
}

fn err(status: u16, msg: &'static str) -> ApiError {
    ApiError::new(status, msg)
}

fn query(ctx: &RequestCtx) -> Result<Query, ApiError> {
    ctx.query().map_err(|_| err(400, "INVALID_REQUEST"))
}

async fn ping(nsqd: Arc<Nsqd>, _ctx: RequestCtx) -> HandlerResult {
    Ok(match nsqd.health() {
        None => plain(StatusCode::OK, "OK"),
        Some(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("NOK - {e}")),
    })
}

#[derive(Serialize)]
struct Info<'a> {
    version: &'a str,
    broadcast_address: &'a str,
    hostname: &'a str,
    http_port: i64,
    tcp_port: i64,
    start_time: i64,
    max_heartbeat_interval: i64,
    max_output_buffer_size: i64,
    max_output_buffer_timeout: i64,
    max_deflate_level: i64,
    topology_zone: &'a str,
    topology_region: &'a str,
}

fn nanos(d: std::time::Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

async fn info(nsqd: Arc<Nsqd>, _ctx: RequestCtx) -> HandlerResult {
    let o = &nsqd.opts;
    Ok(v1_json(&Info {
        version: nsq_daemon::VERSION,
        broadcast_address: &o.broadcast_address,
        hostname: &nsqd.hostname,
        http_port: nsqd.http_port,
        tcp_port: nsqd.tcp_port,
        start_time: nsqd.start_time,
        max_heartbeat_interval: nanos(o.max_heartbeat_interval),
        max_output_buffer_size: o.max_output_buffer_size,
        max_output_buffer_timeout: nanos(o.max_output_buffer_timeout),
        max_deflate_level: o.max_deflate_level,
        topology_zone: &o.topology_zone,
        topology_region: &o.topology_region,
    }))
}

/// `?topic=` for publishing and creation: the topic is created if missing.
async fn topic_from_query(nsqd: &Nsqd, q: &Query) -> Result<Arc<Topic>, ApiError> {
    let name = q
        .get("topic")
        .ok_or_else(|| err(400, "MISSING_ARG_TOPIC"))?;
    if !is_valid_topic_name(name.as_bytes()) {
        return Err(err(400, "INVALID_TOPIC"));
    }
    Ok(nsqd.topic_with_precreation(name).await)
}

async fn publish(nsqd: Arc<Nsqd>, mut ctx: RequestCtx) -> HandlerResult {
    let max = nsqd.opts.max_msg_size.max(0) as u64;
    if ctx.content_length().is_some_and(|n| n > max) {
        return Err(err(413, "MSG_TOO_BIG"));
    }
    let body = match ctx.read_body(max).await {
        Ok(b) => b,
        Err(BodyError::TooLarge { .. }) => return Err(err(413, "MSG_TOO_BIG")),
        Err(BodyError::Read(_)) => return Err(err(500, "INTERNAL_ERROR")),
    };
    if body.is_empty() {
        return Err(err(400, "MSG_EMPTY"));
    }
    let q = query(&ctx)?;
    let topic = topic_from_query(&nsqd, &q).await?;
    let res = match q.get("defer") {
        Some(raw) => {
            let ms: i64 = raw.parse().map_err(|_| err(400, "INVALID_DEFER"))?;
            let max_ms = nsqd.limits.max_req_timeout_ms;
            if ms < 0 || ms > max_ms {
                return Err(err(400, "INVALID_DEFER"));
            }
            nsqd.publish_deferred(&topic, body, ms)
        }
        None => nsqd.publish(&topic, vec![body]),
    };
    res.map_err(|e| {
        log::error!("TOPIC({}): failed to publish - {e}", topic.name);
        err(503, "EXITING")
    })?;
    Ok(v1_text("OK"))
}

async fn mpublish(nsqd: Arc<Nsqd>, mut ctx: RequestCtx) -> HandlerResult {
    let max_body = nsqd.opts.max_body_size.max(0) as u64;
    if ctx.content_length().is_some_and(|n| n > max_body) {
        return Err(err(413, "BODY_TOO_BIG"));
    }
    let q = query(&ctx)?;
    let topic = topic_from_query(&nsqd, &q).await?;
    let binary = match q.get("binary") {
        None => false,
        Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(other) => {
            log::warn!("deprecated value '{other}' used for /mpub binary param");
            true
        }
    };
    let body = match ctx.read_body(max_body).await {
        Ok(b) => b,
        Err(BodyError::TooLarge { .. }) => return Err(err(413, "BODY_TOO_BIG")),
        Err(BodyError::Read(_)) => return Err(err(500, "INTERNAL_ERROR")),
    };
    let bodies: Vec<Bytes> = if binary {
        let parsed = parse_mpub_messages(&body, 0, &nsqd.limits, true).map_err(|e| {
            let code = e.code.as_str().trim_start_matches("E_").to_string();
            ApiError::new(413, code)
        })?;
        let ranges = parsed.map(|(r, _)| r).unwrap_or_default();
        ranges.into_iter().map(|r| body.slice(r)).collect()
    } else {
        let max_msg = nsqd.opts.max_msg_size.max(0) as usize;
        split_mpub_lines(&body, max_msg).ok_or_else(|| err(413, "MSG_TOO_BIG"))?
    };
    if !bodies.is_empty() {
        nsqd.publish(&topic, bodies).map_err(|e| {
            log::error!("TOPIC({}): failed to publish - {e}", topic.name);
            err(503, "EXITING")
        })?;
    }
    Ok(v1_text("OK"))
}

/// The messages of a text `/mpub` body: one per `\n`-separated line, empty lines skipped (a
/// `\r` stays part of its message, as in NSQ). `None` if a message is longer than `max_msg`.
pub fn split_mpub_lines(body: &Bytes, max_msg: usize) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut start = 0;
    for line in body.split(|&b| b == b'\n') {
        let end = start + line.len();
        if !line.is_empty() {
            if line.len() > max_msg {
                return None;
            }
            out.push(body.slice(start..end));
        }
        start = end + 1;
    }
    Some(out)
}

async fn stats_handler(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let filter = StatsFilter {
        topic: q.get("topic").filter(|t| !t.is_empty()).map(str::to_string),
        channel: q
            .get("channel")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        include_clients: q.get_bool("include_clients", true),
        include_mem: q.get_bool("include_mem", true),
    };
    let s = stats::collect(&nsqd, &filter);
    if q.get("format") == Some("json") {
        Ok(v1_json(&s))
    } else {
        Ok(v1_text(stats::render_text(&s, &nsqd)))
    }
}

/// The Prometheus page. Encoding 10,000 channels takes milliseconds of CPU, so it runs on a
/// blocking thread rather than holding up the connections that share this worker.
async fn metrics_handler(nsqd: Arc<Nsqd>, _ctx: RequestCtx) -> HandlerResult {
    let page = tokio::task::spawn_blocking(move || crate::metrics::render(&nsqd))
        .await
        .map_err(|_| err(500, "INTERNAL_ERROR"))?;
    let mut resp = plain(StatusCode::OK, page);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(nsq_daemon::metrics::CONTENT_TYPE),
    );
    Ok(resp)
}

async fn topic_create(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    topic_from_query(&nsqd, &q).await?;
    Ok(v1_empty())
}

async fn topic_delete(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let name = q
        .get("topic")
        .ok_or_else(|| err(400, "MISSING_ARG_TOPIC"))?;
    if !nsqd.delete_topic(name) {
        return Err(err(404, "TOPIC_NOT_FOUND"));
    }
    Ok(v1_empty())
}

async fn topic_empty(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    let q = query(&ctx)?;
    let name = q
        .get("topic")
        .ok_or_else(|| err(400, "MISSING_ARG_TOPIC"))?;
    if !is_valid_topic_name(name.as_bytes()) {
        return Err(err(400, "INVALID_TOPIC"));
    }
    let topic = nsqd
        .topic(name)
        .ok_or_else(|| err(404, "TOPIC_NOT_FOUND"))?;
    topic.empty();
    save_state_now(&topic).await?;
    Ok(v1_empty())
}

async fn topic_set_paused(nsqd: Arc<Nsqd>, ctx: RequestCtx, paused: bool) -> HandlerResult {
    let q = query(&ctx)?;
    let name = q
        .get("topic")
        .ok_or_else(|| err(400, "MISSING_ARG_TOPIC"))?;
    let topic = nsqd
        .topic(name)
        .ok_or_else(|| err(404, "TOPIC_NOT_FOUND"))?;
    topic.set_paused(paused);
    save_state_now(&topic).await?;
    persist_now(&nsqd).await?;
    Ok(v1_empty())
}

async fn topic_pause(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    topic_set_paused(nsqd, ctx, true).await
}

async fn topic_unpause(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    topic_set_paused(nsqd, ctx, false).await
}

/// Pause state is persisted before the request is answered.
async fn persist_now(nsqd: &Arc<Nsqd>) -> Result<(), ApiError> {
    let n = nsqd.clone();
    match tokio::task::spawn_blocking(move || n.persist_metadata()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            log::error!("{e}");
            Err(err(500, "INTERNAL_ERROR"))
        }
        Err(_) => Err(err(500, "INTERNAL_ERROR")),
    }
}

/// Records the topic's trim point, skip ranges and pause flags before the response, so what
/// the client was told survives a crash.
async fn save_state_now(topic: &Arc<crate::topic::Topic>) -> Result<(), ApiError> {
    if topic.store.is_none() || topic.is_deleted() {
        return Ok(());
    }
    let t = topic.clone();
    match tokio::task::spawn_blocking(move || crate::durable::save_topic_state(&t)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            log::error!("TOPIC({}): failed to write its state - {e}", topic.name);
            Err(err(500, "INTERNAL_ERROR"))
        }
        Err(_) => Err(err(500, "INTERNAL_ERROR")),
    }
}

/// `?topic=&channel=` naming an existing topic, with NSQ's checks in NSQ's order.
fn topic_channel_from_query(
    nsqd: &Nsqd,
    ctx: &RequestCtx,
) -> Result<(Arc<Topic>, String), ApiError> {
    let q = query(ctx)?;
    let topic = q
        .get("topic")
        .ok_or_else(|| err(400, "MISSING_ARG_TOPIC"))?;
    if !is_valid_topic_name(topic.as_bytes()) {
        return Err(err(400, "INVALID_ARG_TOPIC"));
    }
    let channel = q
        .get("channel")
        .ok_or_else(|| err(400, "MISSING_ARG_CHANNEL"))?;
    if !is_valid_channel_name(channel.as_bytes()) {
        return Err(err(400, "INVALID_ARG_CHANNEL"));
    }
    let t = nsqd
        .topic(topic)
        .ok_or_else(|| err(404, "TOPIC_NOT_FOUND"))?;
    Ok((t, channel.to_string()))
}

fn existing_channel(topic: &Topic, name: &str) -> Result<Arc<Channel>, ApiError> {
    topic
        .channel(name)
        .ok_or_else(|| err(404, "CHANNEL_NOT_FOUND"))
}

async fn channel_create(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    let (topic, name) = topic_channel_from_query(&nsqd, &ctx)?;
    nsqd.get_or_create_channel(&topic, &name);
    Ok(v1_empty())
}

async fn channel_delete(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    let (topic, name) = topic_channel_from_query(&nsqd, &ctx)?;
    if !nsqd.delete_channel(&topic, &name) {
        return Err(err(404, "CHANNEL_NOT_FOUND"));
    }
    // What the deleted channel alone kept is trimmed; record it so it never comes back.
    save_state_now(&topic).await?;
    Ok(v1_empty())
}

async fn channel_empty(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    let (topic, name) = topic_channel_from_query(&nsqd, &ctx)?;
    let channel = existing_channel(&topic, &name)?;
    nsqd.empty_channel(&topic, &channel);
    Ok(v1_empty())
}

async fn channel_set_paused(nsqd: Arc<Nsqd>, ctx: RequestCtx, paused: bool) -> HandlerResult {
    let (topic, name) = topic_channel_from_query(&nsqd, &ctx)?;
    let channel = existing_channel(&topic, &name)?;
    channel.set_paused(paused);
    save_state_now(&topic).await?;
    persist_now(&nsqd).await?;
    Ok(v1_empty())
}

async fn channel_pause(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    channel_set_paused(nsqd, ctx, true).await
}

async fn channel_unpause(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    channel_set_paused(nsqd, ctx, false).await
}

fn config_value(nsqd: &Nsqd, name: &str) -> Option<serde_json::Value> {
    match name {
        "nsqlookupd_tcp_addresses" => Some(serde_json::json!(nsqd
            .runtime
            .lock()
            .lookupd_tcp_addresses
            .clone())),
        "log_level" => Some(serde_json::json!(nsq_daemon::logging::level().as_int())),
        _ => nsqd.opts.config_value(name),
    }
}

async fn config_get(nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    let name = ctx.param("opt").unwrap_or_default();
    let v = config_value(&nsqd, name).ok_or_else(|| err(400, "INVALID_OPTION"))?;
    Ok(config_response(v))
}

/// String options go out as raw text, everything else as JSON, as NSQ's V1 responder does.
fn config_response(v: serde_json::Value) -> nsq_http::Response {
    match v {
        serde_json::Value::String(s) => v1_text(s),
        other => v1_json(&other),
    }
}

async fn config_put(nsqd: Arc<Nsqd>, mut ctx: RequestCtx) -> HandlerResult {
    let name = ctx.param("opt").unwrap_or_default().to_string();
    let max = nsqd.opts.max_msg_size.max(0) as u64;
    let body = match ctx.read_body(max).await {
        Ok(b) if !b.is_empty() => b,
        Ok(_) | Err(BodyError::TooLarge { .. }) => return Err(err(413, "INVALID_VALUE")),
        Err(BodyError::Read(_)) => return Err(err(500, "INTERNAL_ERROR")),
    };
    match name.as_str() {
        "nsqlookupd_tcp_addresses" => {
            let addrs: Vec<String> =
                serde_json::from_slice(&body).map_err(|_| err(400, "INVALID_VALUE"))?;
            nsqd.runtime.lock().lookupd_tcp_addresses = addrs;
            nsqd.lookup.send(crate::lookup::LookupEvent::PeersChanged);
        }
        "log_level" => {
            let text = std::str::from_utf8(&body).map_err(|_| err(400, "INVALID_VALUE"))?;
            let level: nsq_daemon::LogLevel =
                text.parse().map_err(|_| err(400, "INVALID_VALUE"))?;
            nsq_daemon::logging::set_level(level);
        }
        _ => return Err(err(400, "INVALID_OPTION")),
    }
    let v = config_value(&nsqd, &name).ok_or_else(|| err(400, "INVALID_OPTION"))?;
    Ok(config_response(v))
}

/// Accepted for compatibility with tooling that tunes Go's block profiler; there is nothing to
/// tune here, but the argument is validated as NSQ does.
async fn debug_set_block_rate(_nsqd: Arc<Nsqd>, ctx: RequestCtx) -> HandlerResult {
    let q = ctx.query().unwrap_or_default();
    let raw = q.get("rate").unwrap_or_default();
    if raw.parse::<i64>().is_err() {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid block rate : strconv.Atoi: parsing {}: invalid syntax",
                nsq_flags::go_quote(raw)
            ),
        ));
    }
    Ok(plain(StatusCode::OK, ""))
}

/// Memory is returned to the allocator as it is freed; nothing more to do on request.
async fn debug_free_memory(_nsqd: Arc<Nsqd>, _ctx: RequestCtx) -> HandlerResult {
    Ok(plain(StatusCode::OK, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_mpub_skips_empty_lines_and_keeps_carriage_returns() {
        let body = Bytes::from_static(b"a\n\nbc\r\n\nd");
        let got = split_mpub_lines(&body, 3).unwrap();
        assert_eq!(got, [&b"a"[..], b"bc\r", b"d"]);
        assert_eq!(split_mpub_lines(&Bytes::new(), 3).unwrap().len(), 0);
        assert!(split_mpub_lines(&body, 2).is_none());
    }
}
