//! The outbound HTTP/1.1 client of `nsq_to_http` (plain or over TLS): keep-alive connections pooled per host, a
//! dial timeout and an overall request timeout, and Go `net/http`'s request shape (canonical
//! header names, `Accept-Encoding: gzip`, `Content-Length: 0` on an empty POST) and error
//! wording (`Post "<url>": dial tcp <addr>: connect: connection refused`).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;

/// Why a request did not get a usable answer. The texts follow Go's `*url.Error`, since the
/// consumer logs them when it requeues.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{method} {}: {reason}", go_quote(url))]
    Transport {
        /// Go's capitalisation: `Post`, `Get`.
        method: &'static str,
        url: String,
        reason: String,
    },
    #[error("got status code {0}")]
    Status(u16),
}

/// `GET` or `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

impl Method {
    fn go_name(self) -> &'static str {
        match self {
            Method::Get => "Get",
            Method::Post => "Post",
        }
    }

    fn http(self) -> http::Method {
        match self {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
        }
    }
}

type Sender = SendRequest<Full<Bytes>>;

/// A shared HTTP client; cheap to use from many tasks at once.
#[derive(Debug)]
pub(crate) struct HttpClient {
    connect_timeout: Duration,
    request_timeout: Duration,
    max_idle_per_host: usize,
    idle: Mutex<HashMap<String, Vec<Sender>>>,
}

/// One parsed target URL.
struct Target {
    /// `https`: TLS with the system's roots, server name from the URL's host.
    tls: bool,
    host: String,
    /// `host:port` to dial.
    dial: String,
    /// The Host header: the URL's authority without user info.
    host_header: String,
    path_and_query: String,
    authorization: Option<String>,
    pool_key: String,
}

impl HttpClient {
    /// Zero timeouts mean none, as in Go.
    pub(crate) fn new(
        connect_timeout: Duration,
        request_timeout: Duration,
        max_idle_per_host: usize,
    ) -> HttpClient {
        HttpClient {
            connect_timeout,
            request_timeout,
            max_idle_per_host: max_idle_per_host.max(2),
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Sends one request and reads (and discards) the answer's body; returns the status.
    /// `headers` are sent in order after the Host header; later duplicates replace earlier
    /// ones.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<u16, HttpError> {
        let fail = |reason: String| HttpError::Transport {
            method: method.go_name(),
            url: url.to_string(),
            reason,
        };
        let target = parse_url(url).map_err(fail)?;
        let request = build_request(method, &target, headers, body.clone()).map_err(fail)?;
        let work = async {
            let (mut sender, reused) = self.connection(&target).await?;
            match sender.send_request(request).await {
                Ok(resp) => self.finish(&target, sender, resp).await,
                // A pooled connection the server closed while idle: nothing was sent, so a
                // fresh connection may carry the request.
                Err(e) if reused && e.is_canceled() => {
                    let retry = build_request(method, &target, headers, body)?;
                    let mut sender = self.dial(&target).await?;
                    let resp = sender.send_request(retry).await.map_err(hyper_reason)?;
                    self.finish(&target, sender, resp).await
                }
                Err(e) => Err(hyper_reason(e)),
            }
        };
        if self.request_timeout.is_zero() {
            work.await.map_err(fail)
        } else {
            match tokio::time::timeout(self.request_timeout, work).await {
                Ok(r) => r.map_err(fail),
                Err(_) => Err(fail(
                    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                        .to_string(),
                )),
            }
        }
    }

    async fn finish(
        &self,
        target: &Target,
        sender: Sender,
        resp: http::Response<hyper::body::Incoming>,
    ) -> Result<u16, String> {
        let status = resp.status().as_u16();
        let keep = !matches!(
            resp.headers()
                .get(http::header::CONNECTION)
                .and_then(|v| v.to_str().ok()),
            Some(v) if v.eq_ignore_ascii_case("close")
        );
        resp.into_body()
            .collect()
            .await
            .map_err(|e| format!("reading body: {e}"))?;
        if keep {
            self.put_idle(target, sender);
        }
        Ok(status)
    }

    fn put_idle(&self, target: &Target, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = match self.idle.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let list = idle.entry(target.pool_key.clone()).or_default();
        if list.len() < self.max_idle_per_host {
            list.push(sender);
        }
    }

    async fn connection(&self, target: &Target) -> Result<(Sender, bool), String> {
        loop {
            let pooled = {
                let mut idle = match self.idle.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                idle.get_mut(&target.pool_key).and_then(Vec::pop)
            };
            match pooled {
                Some(s) if !s.is_closed() && s.is_ready() => return Ok((s, true)),
                Some(_) => continue,
                None => return Ok((self.dial(target).await?, false)),
            }
        }
    }

    async fn dial(&self, target: &Target) -> Result<Sender, String> {
        let connect = tokio::net::TcpStream::connect(&target.dial);
        let stream = if self.connect_timeout.is_zero() {
            connect.await
        } else {
            match tokio::time::timeout(self.connect_timeout, connect).await {
                Ok(r) => r,
                Err(_) => return Err(format!("dial tcp {}: i/o timeout", target.dial)),
            }
        }
        .map_err(|e| format!("dial tcp {}: {}", target.dial, go_io_reason(&e)))?;
        let _ = stream.set_nodelay(true);
        if !target.tls {
            return handshake(stream).await;
        }
        let config = nsq_client::TlsOptions::default()
            .client_config()
            .map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| format!("tls: {} is not a valid server name", go_quote(&target.host)))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        handshake(tls).await
    }
}

async fn handshake<S>(io: S) -> Result<Sender, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(hyper_reason)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn hyper_reason(e: hyper::Error) -> String {
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return "EOF".to_string();
    }
    e.to_string()
}

/// Go's wording for the common socket errors.
fn go_io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        ErrorKind::TimedOut => "i/o timeout".to_string(),
        ErrorKind::ConnectionReset => "read: connection reset by peer".to_string(),
        _ => e.to_string(),
    }
}

fn parse_url(url: &str) -> Result<Target, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| format!("invalid URL: {e}"))?;
    let scheme = uri.scheme_str().unwrap_or("");
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return Err(format!("unsupported protocol scheme {}", go_quote(scheme))),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| "http: no Host in request URL".to_string())?
        .as_str();
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if host_port.is_empty() {
        return Err("http: no Host in request URL".to_string());
    }
    let host = uri.host().unwrap_or(host_port);
    let port = uri.port_u16().unwrap_or(default_port);
    let dial = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let path_and_query = match uri.path_and_query() {
        Some(pq) if pq.as_str().starts_with('/') => pq.as_str().to_string(),
        Some(pq) => format!("/{}", pq.as_str()),
        None => "/".to_string(),
    };
    let authorization = userinfo.map(|u| {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        let creds = format!("{}:{}", percent_decode(user), percent_decode(pass));
        format!("Basic {}", base64(creds.as_bytes()))
    });
    Ok(Target {
        tls: scheme == "https",
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        pool_key: format!("{scheme}://{host_port}"),
        dial,
        host_header: host_port.to_string(),
        path_and_query,
        authorization,
    })
}

fn build_request(
    method: Method,
    target: &Target,
    headers: &[(String, String)],
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, String> {
    let mut map = http::HeaderMap::new();
    let set = |map: &mut http::HeaderMap, name: &str, value: &str| -> Result<(), String> {
        let n = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("net/http: invalid header field name {}", go_quote(name)))?;
        let v = http::HeaderValue::from_str(value).map_err(|_| {
            format!(
                "net/http: invalid header field value for {}",
                go_quote(name)
            )
        })?;
        map.insert(n, v);
        Ok(())
    };
    set(&mut map, "Host", &target.host_header)?;
    if let Some(auth) = &target.authorization {
        set(&mut map, "Authorization", auth)?;
    }
    for (k, v) in headers {
        // Go's client writes these from the request itself and ignores the header map.
        if ["host", "content-length", "transfer-encoding", "trailer"]
            .contains(&k.to_ascii_lowercase().as_str())
        {
            continue;
        }
        set(&mut map, k, v)?;
    }
    if !map.contains_key(http::header::ACCEPT_ENCODING) && !map.contains_key(http::header::RANGE) {
        set(&mut map, "Accept-Encoding", "gzip")?;
    }
    let mut req = http::Request::builder()
        .method(method.http())
        .uri(target.path_and_query.as_str())
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    *req.headers_mut() = map;
    Ok(req)
}

/// Go's `%q` for the ASCII text that URLs and header names are made of.
pub(crate) fn go_quote(s: &str) -> String {
    nsq_flags::go_quote(s)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b.get(i), b.get(i + 1), b.get(i + 2)) {
            (Some(b'%'), Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (Some(&c), _, _) => {
                out.push(c);
                i += 1;
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= chunk.len() {
                let idx = ((n >> shift) & 63) as usize;
                out.push(ALPHABET.get(idx).map_or('A', |c| *c as char));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `x-foo-bar` → `X-Foo-Bar`; keys with characters
/// outside a header token are left alone.
pub(crate) fn canonical_header_key(key: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !key.chars().all(token) {
        return key.to_string();
    }
    let mut upper = true;
    key.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_keys() {
        assert_eq!(canonical_header_key("x-foo-bar"), "X-Foo-Bar");
        assert_eq!(canonical_header_key("CONTENT-type"), "Content-Type");
        assert_eq!(canonical_header_key("bad key"), "bad key");
    }

    #[test]
    fn base64_matches_rfc_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:p@ss", "dXNlcjpwQHNz"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn url_parsing() {
        let t = parse_url("http://u:p%40@example.com:8080/a/b?x=1").unwrap();
        assert_eq!(t.dial, "example.com:8080");
        assert_eq!(t.host_header, "example.com:8080");
        assert_eq!(t.path_and_query, "/a/b?x=1");
        assert_eq!(t.authorization.as_deref(), Some("Basic dTpwQA=="));
        let t = parse_url("http://example.com").unwrap();
        assert_eq!(
            (t.dial.as_str(), t.path_and_query.as_str()),
            ("example.com:80", "/")
        );
        let t = parse_url("http://[::1]:9/x").unwrap();
        assert_eq!(t.dial, "[::1]:9");
        assert_eq!(
            parse_url("ftp://x/").err().unwrap(),
            "unsupported protocol scheme \"ftp\""
        );
        assert!(parse_url("a b").is_err());
        assert!(parse_url("/just/a/path").is_err());
    }

    #[tokio::test]
    async fn refused_connection_error_reads_like_go() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let c = HttpClient::new(Duration::from_secs(1), Duration::from_secs(1), 2);
        let url = format!("http://{addr}/");
        let e = c
            .send(Method::Post, &url, &[], Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Post \"{url}\": dial tcp {addr}: connect: connection refused")
        );
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let c = HttpClient::new(Duration::from_secs(1), Duration::from_millis(100), 2);
        let e = c
            .send(Method::Get, &format!("http://{addr}/"), &[], Bytes::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Client.Timeout exceeded"), "{e}");
        drop(l);
    }
}
