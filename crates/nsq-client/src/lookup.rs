//! nsqlookupd queries a client makes: the nsqd producing a topic, and the topics known.

/// One nsqd as nsqlookupd describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Producer {
    pub broadcast_address: String,
    #[serde(default)]
    pub hostname: String,
    pub tcp_port: u16,
    #[serde(default)]
    pub http_port: u16,
    #[serde(default)]
    pub version: String,
}

impl Producer {
    /// `broadcast_address:tcp_port`, bracketing IPv6 addresses.
    pub fn tcp_address(&self) -> String {
        if self.broadcast_address.contains(':') {
            format!("[{}]:{}", self.broadcast_address, self.tcp_port)
        } else {
            format!("{}:{}", self.broadcast_address, self.tcp_port)
        }
    }

    /// `broadcast_address:http_port`, bracketing IPv6 addresses.
    pub fn http_address(&self) -> String {
        if self.broadcast_address.contains(':') {
            format!("[{}]:{}", self.broadcast_address, self.http_port)
        } else {
            format!("{}:{}", self.broadcast_address, self.http_port)
        }
    }
}

pub use nsq_http::client::ClientTimeouts;

use crate::Error;

#[derive(Debug, serde::Deserialize)]
struct LookupReply {
    #[serde(default)]
    producers: Vec<Producer>,
}

#[derive(Debug, serde::Deserialize)]
struct TopicsReply {
    #[serde(default)]
    topics: Vec<String>,
}

/// Percent-encodes a query value (topic names may hold `#`).
fn encode_query(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits `http://host:port/path?query` (or `host:port`) into `host:port` and the path with
/// its query. Only plain HTTP is spoken.
fn split_url(url: &str) -> Result<(String, String), Error> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(Error::Lookup(format!(
                "{url}: unsupported scheme {scheme:?} (only http)"
            )))
        }
        None => url,
    };
    let (host, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let has_port = host.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
    });
    if !has_port {
        return Err(Error::Lookup(format!("{url}: missing port")));
    }
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((host.to_string(), path))
}

/// go-nsq's lookup address: `http://` added when missing, the path `/lookup` when none is
/// given, and `topic=<topic>` added to the query.
pub(crate) fn lookup_url(addr: &str, topic: &str) -> Result<String, Error> {
    let (host, path) = split_url(addr)?;
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path, None),
    };
    let path = if path == "/" {
        "/lookup".to_string()
    } else {
        path
    };
    let topic = format!("topic={}", encode_query(topic));
    let query = match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{q}&{topic}"),
        None => topic,
    };
    Ok(format!("http://{host}{path}?{query}"))
}

async fn get_json<T: serde::de::DeserializeOwned>(
    url: &str,
    timeouts: ClientTimeouts,
) -> Result<T, Error> {
    let (host, path) = split_url(url)?;
    let body = nsq_http::client::get(&host, &path, timeouts)
        .await
        .map_err(|e| Error::Lookup(format!("{url}: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| Error::Lookup(format!("{url}: bad answer: {e}")))
}

/// Queries a URL made by [`lookup_url`]. nsqlookupd has no authorization, so the secret is
/// only logged as unsupported.
pub(crate) async fn query_url(
    url: &str,
    timeout: std::time::Duration,
    auth: Option<&str>,
) -> Result<Vec<Producer>, Error> {
    if auth.is_some() {
        log::debug!("{url}: lookupd authorization headers are not sent");
    }
    let timeouts = ClientTimeouts {
        connect: timeout,
        request: timeout,
    };
    Ok(get_json::<LookupReply>(url, timeouts).await?.producers)
}

/// The nsqd producing `topic`, from the nsqlookupd at `addr` (`host:port` or an `http://`
/// URL). An unknown topic is an error (nsqlookupd answers 404).
///
/// ```no_run
/// # async fn run() -> Result<(), nsq_client::Error> {
/// use std::time::Duration;
/// use nsq_client::lookup::{lookup, ClientTimeouts};
/// let t = ClientTimeouts { connect: Duration::from_secs(2), request: Duration::from_secs(5) };
/// for p in lookup("127.0.0.1:4161", "events", t).await? {
///     println!("{}", p.tcp_address());
/// }
/// # Ok(())
/// # }
/// ```
pub async fn lookup(
    addr: &str,
    topic: &str,
    timeouts: ClientTimeouts,
) -> Result<Vec<Producer>, Error> {
    let url = lookup_url(addr, topic)?;
    Ok(get_json::<LookupReply>(&url, timeouts).await?.producers)
}

/// Every topic the nsqlookupd at `addr` knows.
pub async fn topics(addr: &str, timeouts: ClientTimeouts) -> Result<Vec<String>, Error> {
    let (host, _) = split_url(addr)?;
    let url = format!("http://{host}/topics");
    Ok(get_json::<TopicsReply>(&url, timeouts).await?.topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_urls() {
        assert_eq!(
            lookup_url("127.0.0.1:4161", "t").unwrap(),
            "http://127.0.0.1:4161/lookup?topic=t"
        );
        assert_eq!(
            lookup_url("http://h:1/", "a#ephemeral").unwrap(),
            "http://h:1/lookup?topic=a%23ephemeral"
        );
        assert_eq!(
            lookup_url("http://h:1/x?y=z", "t").unwrap(),
            "http://h:1/x?y=z&topic=t"
        );
        assert!(lookup_url("nohost", "t").is_err());
        assert!(lookup_url("https://h:1", "t").is_err());
    }
}
