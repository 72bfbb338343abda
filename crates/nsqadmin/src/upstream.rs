//! Outbound HTTP to nsqlookupd, nsqd, graphite and the notification endpoint: pooled keep-alive
//! connections (plain or TLS), connect and request deadlines, NSQ's `Accept` header, the retry
//! over HTTPS that nsqd's `403 {"https_port":N}` asks for, and Go's error wording so partial
//! failures read as they do from NSQ's nsqadmin.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;

/// Idle connections kept per upstream, as Go's default transport keeps.
const IDLE_PER_HOST: usize = 4;
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why an upstream request failed, worded as Go's HTTP client and NSQ's helpers word it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The request never got an answer: `Get "http://…": dial tcp …: connect: connection refused`.
    #[error("{method} \"{url}\": {detail}")]
    Transport {
        method: &'static str,
        url: String,
        detail: String,
    },
    /// A non-200 answer.
    #[error("got response {status} {body}")]
    Status {
        /// `404 Not Found`
        status: String,
        /// The body, quoted as Go's `%q` quotes it.
        body: String,
    },
    /// A 200 whose body is not the JSON expected.
    #[error("{0}")]
    Decode(String),
    /// The address could not be made into a URL.
    #[error("parse \"{url}\": {detail}")]
    BadUrl { url: String, detail: String },
}

/// Why the client could not be built from its TLS flags.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("failed to LoadX509KeyPair {cert}, {key} - {detail}")]
    KeyPair {
        cert: String,
        key: String,
        detail: String,
    },
    #[error("failed to read TLS root CA file {path} - {detail}")]
    RootCa { path: String, detail: String },
    #[error("failed to AppendCertsFromPEM {0}")]
    NoCertificates(String),
    #[error("failed to build TLS client configuration - {0}")]
    Tls(#[from] rustls::Error),
}

/// TLS settings of the outbound client (`--http-client-tls-*`).
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub insecure_skip_verify: bool,
    pub root_ca_file: String,
    pub cert: String,
    pub key: String,
}

type PoolKey = (bool, String);

/// A pooled HTTP/1.1 client with NSQ's conventions.
pub struct Client {
    connect_timeout: Duration,
    request_timeout: Duration,
    tls: Arc<ClientConfig>,
    idle: Mutex<HashMap<PoolKey, Vec<SendRequest<Full<Bytes>>>>>,
}

impl Client {
    pub fn new(
        connect_timeout: Duration,
        request_timeout: Duration,
        tls: &TlsSettings,
    ) -> Result<Client, ClientSetupError> {
        Ok(Client {
            connect_timeout,
            request_timeout,
            tls: Arc::new(tls_config(tls)?),
            idle: Mutex::new(HashMap::new()),
        })
    }

    /// `GET` with NSQ's V1 `Accept` header; the body of a 200 answer.
    pub async fn get_v1(&self, url: &str) -> Result<Bytes, UpstreamError> {
        self.v1(Method::GET, url).await
    }

    /// `GET` a V1 endpoint and decode its JSON body.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, UpstreamError> {
        let body = self.get_v1(url).await?;
        decode_json(&body)
    }

    /// `POST` with an empty body and NSQ's V1 `Accept` header; only the status matters.
    pub async fn post_v1(&self, url: &str) -> Result<(), UpstreamError> {
        self.v1(Method::POST, url).await.map(|_| ())
    }

    async fn v1(&self, method: Method, url: &str) -> Result<Bytes, UpstreamError> {
        let mut url = url.to_string();
        // One retry: nsqd answers 403 with its HTTPS port when it requires TLS.
        for attempt in 0..2 {
            let (status, body) = self
                .request(method.clone(), &url, Bytes::new(), None)
                .await?;
            if status == StatusCode::OK {
                return Ok(body);
            }
            if status == StatusCode::FORBIDDEN && attempt == 0 && url.starts_with("http://") {
                url = https_endpoint(&url, &body)?;
                continue;
            }
            return Err(status_error(status, &body));
        }
        Err(UpstreamError::Decode("too many retries".into()))
    }

    /// A request with an optional `Authorization` value; the status, the answer's content type
    /// and its body.
    pub async fn request_with_auth(
        &self,
        method: Method,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<(StatusCode, Option<http::HeaderValue>, Bytes), UpstreamError> {
        self.exchange(method, url, Bytes::new(), None, authorization)
            .await
    }

    /// One request; any status. `content_type` is set when there is a body.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<(StatusCode, Bytes), UpstreamError> {
        self.exchange(method, url, body, content_type, None)
            .await
            .map(|(status, _, body)| (status, body))
    }

    async fn exchange(
        &self,
        method: Method,
        url: &str,
        body: Bytes,
        content_type: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<(StatusCode, Option<http::HeaderValue>, Bytes), UpstreamError> {
        let go_method = match method {
            Method::POST => "Post",
            Method::PUT => "Put",
            Method::DELETE => "Delete",
            _ => "Get",
        };
        let transport = |detail: String| UpstreamError::Transport {
            method: go_method,
            url: url.to_string(),
            detail,
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| UpstreamError::BadUrl {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            other => {
                return Err(transport(format!(
                    "unsupported protocol scheme \"{}\"",
                    other.unwrap_or_default()
                )))
            }
        };
        let Some(authority) = uri.authority().cloned() else {
            return Err(transport("no Host in request URL".into()));
        };
        let host = authority.host().to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let key: PoolKey = (https, authority.to_string());
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());

        let exchange = async {
            let mut sender = self.sender(&key, &host, port, https).await?;
            let mut builder = Request::builder()
                .method(method.clone())
                .uri(path.as_str())
                .header(http::header::HOST, authority.as_str())
                .header(http::header::USER_AGENT, "Go-http-client/1.1")
                .header(http::header::ACCEPT, "application/vnd.nsq; version=1.0");
            if let Some(ct) = content_type {
                builder = builder.header(http::header::CONTENT_TYPE, ct);
            }
            if let Some(auth) = authorization {
                builder = builder.header(http::header::AUTHORIZATION, auth);
            }
            let request = builder
                .body(Full::new(body.clone()))
                .map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| transport_detail(&e))?;
            let status = response.status();
            let answer_type = response.headers().get(http::header::CONTENT_TYPE).cloned();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| transport_detail(&e))?
                .to_bytes();
            self.put_back(key.clone(), sender);
            Ok::<_, String>((status, answer_type, bytes))
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(detail)) => Err(transport(detail)),
            Err(_) => Err(transport(
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into(),
            )),
        }
    }

    async fn sender(
        &self,
        key: &PoolKey,
        host: &str,
        port: u16,
        https: bool,
    ) -> Result<SendRequest<Full<Bytes>>, String> {
        loop {
            let pooled = self.idle.lock().get_mut(key).and_then(Vec::pop);
            let Some(mut sender) = pooled else { break };
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = if bare_host.contains(':') {
            format!("[{bare_host}]:{port}")
        } else {
            format!("{bare_host}:{port}")
        };
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr.as_str()))
                .await
            {
                Err(_) => return Err(format!("dial tcp {addr}: i/o timeout")),
                Ok(Err(e)) => return Err(dial_error(&addr, &e)),
                Ok(Ok(s)) => s,
            };
        let _ = stream.set_nodelay(true);
        if https {
            let name =
                ServerName::try_from(bare_host.to_string()).map_err(|e| format!("tls: {e}"))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
            let tls = connector
                .connect(name, stream)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(stream)).await
        }
    }

    fn put_back(&self, key: PoolKey, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        let list = idle.entry(key).or_default();
        if list.len() < IDLE_PER_HOST {
            list.push(sender);
        }
    }
}

async fn handshake<T>(io: TokioIo<T>) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn transport_detail(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    if text.contains("connection closed before message completed") {
        "EOF".to_string()
    } else {
        text
    }
}

fn dial_error(addr: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    let what = match e.kind() {
        ConnectionRefused => "connect: connection refused".to_string(),
        ConnectionReset => "connect: connection reset by peer".to_string(),
        TimedOut => "i/o timeout".to_string(),
        _ => {
            let text = e.to_string();
            // Resolution failures carry no address; Go names the host.
            if text.contains("lookup") || text.contains("resolve") || text.contains("known") {
                return format!("dial tcp: lookup {addr}: no such host");
            }
            text
        }
    };
    format!("dial tcp {addr}: {what}")
}

/// `got response 404 Not Found "{\"message\":\"TOPIC_NOT_FOUND\"}"`
pub fn status_error(status: StatusCode, body: &[u8]) -> UpstreamError {
    let reason = status.canonical_reason().unwrap_or("status code");
    UpstreamError::Status {
        status: format!("{} {reason}", status.as_u16()),
        body: nsq_flags::go_quote(&String::from_utf8_lossy(body)),
    }
}

fn https_endpoint(url: &str, body: &[u8]) -> Result<String, UpstreamError> {
    #[derive(serde::Deserialize)]
    struct Forbidden {
        #[serde(default)]
        https_port: u16,
    }
    let forbidden: Forbidden = decode_json(body)?;
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match crate::options::split_host_port(authority) {
        Ok((h, _)) => h.to_string(),
        Err(e) => return Err(UpstreamError::Decode(e)),
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(format!("https://{host}:{}{path}", forbidden.https_port))
}

/// Decodes a JSON body, wording the common failure as Go's decoder does.
pub fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, UpstreamError> {
    serde_json::from_slice(body).map_err(|e| UpstreamError::Decode(go_json_error(body, &e)))
}

fn go_json_error(body: &[u8], e: &serde_json::Error) -> String {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => "unexpected end of JSON input".to_string(),
        Some(&b)
            if !matches!(
                b,
                b'{' | b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9'
            ) =>
        {
            format!(
                "invalid character {} looking for beginning of value",
                go_char(b)
            )
        }
        _ if e.is_eof() => "unexpected end of JSON input".to_string(),
        _ => format!("json: {e}"),
    }
}

fn go_char(b: u8) -> String {
    match b {
        b'\'' => "'\\''".to_string(),
        0x20..=0x7e => format!("'{}'", b as char),
        _ => format!("'\\x{b:02x}'"),
    }
}

fn tls_config(s: &TlsSettings) -> Result<ClientConfig, ClientSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = if s.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(nsq_client::SkipVerify::new(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        if s.root_ca_file.is_empty() {
            // The system bundle, when there is one; unreadable means no public roots.
            if let Ok(iter) = CertificateDer::pem_file_iter(SYSTEM_CA_BUNDLE) {
                for cert in iter.flatten() {
                    let _ = roots.add(cert);
                }
            }
        } else {
            let iter = CertificateDer::pem_file_iter(&s.root_ca_file).map_err(|e| {
                ClientSetupError::RootCa {
                    path: s.root_ca_file.clone(),
                    detail: e.to_string(),
                }
            })?;
            for cert in iter.flatten() {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(ClientSetupError::NoCertificates(s.root_ca_file.clone()));
            }
        }
        builder.with_root_certificates(roots)
    };
    if s.cert.is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let key_pair_error = |detail: String| ClientSetupError::KeyPair {
        cert: s.cert.clone(),
        key: s.key.clone(),
        detail,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&s.cert)
        .map_err(|e| key_pair_error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| key_pair_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(key_pair_error(
            "tls: failed to find any PEM data in certificate input".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&s.key).map_err(|e| key_pair_error(e.to_string()))?;
    builder
        .with_client_auth_cert(certs, key)
        .map_err(|e| key_pair_error(e.to_string()))
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest `%XX`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn client(request: Duration) -> Client {
        Client::new(Duration::from_secs(1), request, &TlsSettings::default()).unwrap()
    }

    async fn server(answers: Vec<&'static [u8]>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for answer in answers {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                s.write_all(answer).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn errors_are_worded_as_go() {
        let addr = server(vec![
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 29\r\nConnection: close\r\n\r\n{\"message\":\"TOPIC_NOT_FOUND\"}",
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops",
        ])
        .await;
        let c = client(Duration::from_secs(2));
        let e = c
            .get_v1(&format!("http://{addr}/lookup?topic=x"))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"got response 404 Not Found "{\"message\":\"TOPIC_NOT_FOUND\"}""#
        );
        let e = c
            .get_json::<serde_json::Value>(&format!("http://{addr}/x"))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid character 'o' looking for beginning of value"
        );

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap().to_string();
        drop(closed);
        let e = c.get_v1(&format!("http://{dead}/info")).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Get \"http://{dead}/info\": dial tcp {dead}: connect: connection refused")
        );
        let e = c
            .post_v1(&format!("http://{dead}/topic/create"))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("Post \""), "{e}");
    }

    #[tokio::test]
    async fn a_silent_upstream_times_out() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let c = client(Duration::from_millis(200));
        let e = c.get_v1(&format!("http://{addr}/stats")).await.unwrap_err();
        assert!(e.to_string().contains("Client.Timeout exceeded"), "{e}");
        drop(l);
    }

    #[tokio::test]
    async fn connections_are_reused() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                            .await;
                    }
                });
            }
        });
        let c = client(Duration::from_secs(2));
        for _ in 0..5 {
            c.get_v1(&format!("http://{addr}/ping")).await.unwrap();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape("a b#c~d.e_f-g"), "a+b%23c~d.e_f-g");
        assert_eq!(query_escape("x/y"), "x%2Fy");
    }

    #[test]
    fn https_retry_target() {
        assert_eq!(
            https_endpoint("http://h:4151/stats?format=json", br#"{"https_port":4152}"#).unwrap(),
            "https://h:4152/stats?format=json"
        );
    }
}
