//! Admin-action notifications (`--notification-http-endpoint`): one JSON POST per action, sent
//! in order from a background task so an action's answer never waits on the endpoint.
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use nsq_http::{RemoteAddr, RequestCtx};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::upstream::Client;

/// What was done, before the request's details are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub action: String,
    pub topic: String,
    pub channel: String,
    pub node: String,
}

impl Action {
    pub fn new(action: &str, topic: &str, channel: &str, node: &str) -> Action {
        Action {
            action: action.into(),
            topic: topic.into(),
            channel: channel.into(),
            node: node.into(),
        }
    }
}

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

/// The notification body, keys as NSQ sends them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub action: String,
    pub topic: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub channel: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub node: String,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "is_empty")]
    pub user: String,
    pub remote_ip: String,
    pub user_agent: String,
    pub url: String,
    pub via: String,
}

impl Notification {
    pub fn new(action: Action, ctx: &RequestCtx, via: &str, now: i64) -> Notification {
        let header = |name: &str| {
            ctx.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let tls = matches!(ctx.uri.scheme_str(), Some("https")) || header("x-scheme") == "https";
        let scheme = if tls { "https" } else { "http" };
        let mut url = format!("{scheme}://{}{}", header("host"), ctx.uri.path());
        if let Some(q) = ctx.uri.query() {
            url.push('?');
            url.push_str(q);
        }
        Notification {
            action: action.action,
            topic: action.topic,
            channel: action.channel,
            node: action.node,
            timestamp: now,
            user: basic_auth_user(&header("authorization")),
            remote_ip: match ctx.remote_addr {
                RemoteAddr::Tcp(a) => a.to_string(),
                RemoteAddr::Unix => "@".into(),
            },
            user_agent: header("user-agent"),
            url,
            via: via.to_string(),
        }
    }
}

/// The user name of an HTTP Basic `Authorization` header, or empty.
pub fn basic_auth_user(header: &str) -> String {
    let Some(("Basic", encoded)) = header.split_once(' ') else {
        return String::new();
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&decoded);
    match text.split_once(':') {
        Some((user, _)) => user.to_string(),
        None => String::new(),
    }
}

/// Hands notifications to the sending task.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::UnboundedSender<Notification>,
}

impl Notifier {
    /// Starts the sending task for `endpoint`.
    pub fn start(endpoint: String, client: Arc<Client>) -> Notifier {
        let (tx, mut rx) = mpsc::unbounded_channel::<Notification>();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                let body = match nsq_http::json::to_vec(&n) {
                    Ok(b) => b,
                    Err(e) => {
                        log::error!("failed to serialize admin action - {e}");
                        continue;
                    }
                };
                log::info!("POSTing notification to {endpoint}");
                if let Err(e) = client
                    .request(
                        Method::POST,
                        &endpoint,
                        Bytes::from(body),
                        Some("application/json"),
                    )
                    .await
                {
                    log::error!("failed to POST notification - {e}");
                }
            }
        });
        Notifier { tx }
    }

    pub fn send(&self, n: Notification) {
        let _ = self.tx.send(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth() {
        // "alice:secret"
        assert_eq!(basic_auth_user("Basic YWxpY2U6c2VjcmV0"), "alice");
        assert_eq!(basic_auth_user("Bearer x"), "");
        assert_eq!(basic_auth_user("Basic !!"), "");
        assert_eq!(basic_auth_user(""), "");
    }

    #[test]
    fn body_keys_and_omissions() {
        let req = http::Request::builder()
            .uri("/api/topics/orders")
            .header("host", "admin.example:4171")
            .header("user-agent", "curl/8")
            .header("x-scheme", "https")
            .body(nsq_http::empty_body())
            .unwrap();
        let ctx = RequestCtx::new(
            req,
            RemoteAddr::Tcp("10.0.0.9:53211".parse().unwrap()),
            Default::default(),
        );
        let n = Notification::new(
            Action::new("delete_topic", "orders", "", ""),
            &ctx,
            "host-1",
            7,
        );
        let json = String::from_utf8(nsq_http::json::to_vec(&n).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"action":"delete_topic","topic":"orders","timestamp":7,"remote_ip":"10.0.0.9:53211","user_agent":"curl/8","url":"https://admin.example:4171/api/topics/orders","via":"host-1"}"#
        );
    }
}
