//! Client authorization against external auth servers (`--auth-http-address`).
//!
//! A client sends `AUTH <secret>`; nsqd asks an auth server what that secret may do and caches
//! the answer on the connection until its TTL runs out. SUB and PUB/MPUB/DPUB are then checked
//! against the cached grants, and an expired cache is refreshed with the same secret at the next
//! check. Every failure to get a valid answer denies the client: an auth server that is down,
//! slow or confused never lets anyone in.
//!
//! Only `http://` auth servers are spoken to for now; an `https://` address is treated as a
//! failed server (and logged), as is NSQ's 403-with-`https_port` upgrade hint.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use nsq_protocol::quote::go_quote;
use nsq_protocol::{ErrorCode, WireError};
use regex::bytes::{Regex, RegexBuilder};
use regex_syntax::ast::{self, Ast};
use serde::{Deserialize, Serialize};

use crate::options::Options;

const ACCEPT_NSQ_V1: &str = "application/vnd.nsq; version=1.0";

/// An auth answer is a few grants; anything near this size is not an auth server talking.
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Go's regexp refuses counted repetitions above this.
const GO_MAX_REPEAT: u32 = 1000;

/// How the auth server is asked (`--auth-http-request-method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Get,
    Post,
}

/// The daemon-wide auth settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `host:port` (meaning `http://host:port/auth`) or full URLs; empty disables auth.
    pub addresses: Vec<String>,
    pub method: AuthMethod,
    pub connect_timeout: Duration,
    /// Bounds one whole request to one auth server, connecting included.
    pub request_timeout: Duration,
}

impl AuthConfig {
    pub fn from_options(opts: &Options) -> AuthConfig {
        AuthConfig {
            addresses: opts.auth_http_addresses.clone(),
            // Options validation has already limited the method to `get` or `post`.
            method: if opts.auth_http_request_method == "post" {
                AuthMethod::Post
            } else {
                AuthMethod::Get
            },
            connect_timeout: opts.http_client_connect_timeout,
            request_timeout: opts.http_client_request_timeout,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.addresses.is_empty()
    }
}

/// What the auth server is told about the connection, plus its address for log lines.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// The client as log lines name it (its remote address).
    pub addr: &'a str,
    /// The peer's IP without port (IPv6 without brackets); empty for unix sockets.
    pub remote_ip: &'a str,
    /// Whether the connection has been upgraded to TLS.
    pub tls: bool,
    /// Subject CN of the client certificate, or empty.
    pub common_name: &'a str,
}

/// Per-connection authorization state.
#[derive(Debug, Default)]
pub struct ConnAuth {
    /// Kept for re-querying when the cached answer expires.
    secret: Vec<u8>,
    state: Option<AuthState>,
}

/// A decoded auth server answer: who the client is and what it may do, until `expires`.
#[derive(Debug)]
pub struct AuthState {
    identity: String,
    identity_url: String,
    grants: Vec<Grant>,
    expires: Instant,
}

#[derive(Debug)]
struct Grant {
    topic: Regex,
    channels: Vec<Regex>,
    subscribe: bool,
    publish: bool,
}

impl ConnAuth {
    pub fn new() -> ConnAuth {
        ConnAuth::default()
    }

    /// True once the auth server granted at least one authorization (NSQ's `authed`).
    pub fn is_authed(&self) -> bool {
        self.state.as_ref().is_some_and(|s| !s.grants.is_empty())
    }

    /// The identity from the latest answer ("" before any).
    pub fn identity(&self) -> &str {
        self.state.as_ref().map_or("", |s| s.identity.as_str())
    }

    /// The identity URL from the latest answer ("" before any).
    pub fn identity_url(&self) -> &str {
        self.state.as_ref().map_or("", |s| s.identity_url.as_str())
    }

    /// Handles the body of an AUTH command: asks the auth servers about `secret` and returns the
    /// response frame body `{"identity":…,"identity_url":…,"permission_count":N}`.
    ///
    /// Errors, in NSQ's order: `E_INVALID AUTH already set`, `E_AUTH_DISABLED AUTH disabled`,
    /// `E_AUTH_FAILED AUTH failed` (details only in the log), `E_UNAUTHORIZED AUTH no
    /// authorizations found`, `E_AUTH_ERROR AUTH error <err>`. All are fatal.
    pub async fn auth(
        &mut self,
        cfg: &AuthConfig,
        secret: &[u8],
        peer: &Peer<'_>,
    ) -> Result<Vec<u8>, WireError> {
        if self.is_authed() {
            return Err(WireError::invalid("AUTH already set"));
        }
        if !cfg.enabled() {
            return Err(WireError::new(ErrorCode::AuthDisabled, "AUTH disabled"));
        }
        self.secret = secret.to_vec();
        let state = query_any(cfg, &self.secret, peer).await?;
        let reply = AuthReply {
            identity: &state.identity,
            identity_url: &state.identity_url,
            permission_count: state.grants.len(),
        };
        let encoded = nsq_http::json::to_vec(&reply);
        let no_grants = state.grants.is_empty();
        // Kept even without grants, as NSQ does: /stats shows the identity until the close.
        self.state = Some(state);
        if no_grants {
            return Err(WireError::new(
                ErrorCode::Unauthorized,
                "AUTH no authorizations found",
            ));
        }
        encoded.map_err(|e| WireError::new(ErrorCode::AuthError, format!("AUTH error {e}")))
    }

    /// NSQ's CheckAuth for `cmd` (`SUB` with its channel; `PUB`, `MPUB`, `DPUB` with channel
    /// `""`). Passes everything when auth is disabled. Re-queries the auth servers with the
    /// AUTH secret when the cached answer has expired.
    ///
    /// Errors (all fatal): `E_AUTH_FIRST AUTH required before <cmd>`, `E_AUTH_FAILED AUTH
    /// failed`, `E_UNAUTHORIZED AUTH failed for <cmd> on "<topic>" "<channel>"`.
    pub async fn check(
        &mut self,
        cfg: &AuthConfig,
        cmd: &str,
        topic: &[u8],
        channel: &[u8],
        peer: &Peer<'_>,
    ) -> Result<(), WireError> {
        if !cfg.enabled() {
            return Ok(());
        }
        if !self.is_authed() {
            return Err(WireError::new(
                ErrorCode::AuthFirst,
                format!("AUTH required before {cmd}"),
            ));
        }
        if self
            .state
            .as_ref()
            .is_some_and(|s| s.expires < Instant::now())
        {
            // On failure the old, expired answer stays; the connection closes anyway.
            self.state = Some(query_any(cfg, &self.secret, peer).await?);
        }
        if self
            .state
            .as_ref()
            .is_some_and(|s| s.allows(topic, channel))
        {
            return Ok(());
        }
        Err(WireError::new(
            ErrorCode::Unauthorized,
            format!(
                "AUTH failed for {cmd} on {} {}",
                go_quote(topic),
                go_quote(channel)
            ),
        ))
    }
}

#[derive(Serialize)]
struct AuthReply<'a> {
    identity: &'a str,
    identity_url: &'a str,
    permission_count: usize,
}

impl AuthState {
    /// Whether any grant lets the client act on `topic` (an empty `channel` means publishing).
    pub fn allows(&self, topic: &[u8], channel: &[u8]) -> bool {
        self.grants.iter().any(|g| g.allows(topic, channel))
    }
}

impl Grant {
    /// An empty channel means publishing; anything else subscribing. Patterns are searched, not
    /// anchored, as Go's `MatchString` does.
    fn allows(&self, topic: &[u8], channel: &[u8]) -> bool {
        let permitted = if channel.is_empty() {
            self.publish
        } else {
            self.subscribe
        };
        permitted && self.topic.is_match(topic) && self.channels.iter().any(|c| c.is_match(channel))
    }
}

// ---------------------------------------------------------------------------------------------
// Asking the auth servers
// ---------------------------------------------------------------------------------------------

/// Tries every auth server once, starting at a random one so load spreads, and maps a total
/// failure to `E_AUTH_FAILED` after logging why (the client is never told).
async fn query_any(
    cfg: &AuthConfig,
    secret: &[u8],
    peer: &Peer<'_>,
) -> Result<AuthState, WireError> {
    let n = cfg.addresses.len();
    let start = if n == 0 {
        0
    } else {
        rand::random::<usize>() % n
    };
    let mut failures: Vec<(&str, QueryError)> = Vec::new();
    for i in 0..n {
        let addr = cfg.addresses[(start + i) % n].as_str();
        match query_one(cfg, addr, secret, peer).await {
            Ok(state) => {
                if !failures.is_empty() {
                    log::warn!(
                        "PROTOCOL(V2): [{}] AUTH server(s) failed before {addr} answered: {}",
                        peer.addr,
                        describe(&failures)
                    );
                }
                return Ok(state);
            }
            Err(e) => failures.push((addr, e)),
        }
    }
    // A refusal by status code is usually a bad secret; anything else means the auth service
    // itself is unreachable or broken, which operators must notice.
    let detail = describe(&failures);
    if failures
        .iter()
        .all(|(_, e)| matches!(e, QueryError::Status { .. }))
    {
        log::warn!("PROTOCOL(V2): [{}] AUTH failed {detail}", peer.addr);
    } else {
        log::error!("PROTOCOL(V2): [{}] AUTH failed {detail}", peer.addr);
    }
    Err(WireError::new(ErrorCode::AuthFailed, "AUTH failed"))
}

fn describe(failures: &[(&str, QueryError)]) -> String {
    failures
        .iter()
        .map(|(addr, e)| format!("failed to auth against {addr} - {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug)]
enum QueryError {
    /// The address is not something we can send a request to.
    Address(String),
    Connect(String),
    Timeout(Duration),
    Http(String),
    Status {
        status: String,
        body: String,
    },
    /// A 200 answer that is not a valid auth state.
    Invalid(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Address(s)
            | QueryError::Connect(s)
            | QueryError::Http(s)
            | QueryError::Invalid(s) => f.write_str(s),
            QueryError::Timeout(d) => write!(f, "request timed out after {d:?}"),
            QueryError::Status { status, body } => write!(f, "got response {status} {body}"),
        }
    }
}

async fn query_one(
    cfg: &AuthConfig,
    addr: &str,
    secret: &[u8],
    peer: &Peer<'_>,
) -> Result<AuthState, QueryError> {
    let fields = AuthFields {
        common_name: peer.common_name,
        remote_ip: peer.remote_ip,
        secret,
        tls: peer.tls,
    };
    let endpoint = endpoint(addr);
    let (url, body) = match cfg.method {
        AuthMethod::Get => (format!("{endpoint}?{}", fields.query()), None),
        AuthMethod::Post => (endpoint, Some(fields.json_body())),
    };
    let target = Target::parse(&url)?;
    let body = tokio::time::timeout(
        cfg.request_timeout,
        send(&target, body, cfg.connect_timeout),
    )
    .await
    .map_err(|_| QueryError::Timeout(cfg.request_timeout))??;
    parse_state(&body, Instant::now()).map_err(QueryError::Invalid)
}

/// `host:port` means NSQ's default path; anything with a scheme is used as given.
fn endpoint(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}/auth")
    }
}

/// The four facts sent to the auth server.
struct AuthFields<'a> {
    common_name: &'a str,
    remote_ip: &'a str,
    secret: &'a [u8],
    tls: bool,
}

impl AuthFields<'_> {
    fn tls_str(&self) -> &'static str {
        if self.tls {
            "true"
        } else {
            "false"
        }
    }

    /// The GET query string: keys sorted, values escaped like Go's `url.Values.Encode`.
    fn query(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in [
            ("common_name", self.common_name.as_bytes()),
            ("remote_ip", self.remote_ip.as_bytes()),
            ("secret", self.secret),
            ("tls", self.tls_str().as_bytes()),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                out.push('&');
            }
            out.push_str(k);
            out.push('=');
            go_query_escape(v, &mut out);
        }
        out
    }

    /// The POST body: Go marshals `url.Values`, so every value is a one-element string array and
    /// keys come out sorted. A secret that is not UTF-8 gets U+FFFD, as Go's encoder does.
    fn json_body(&self) -> Vec<u8> {
        let secret = String::from_utf8_lossy(self.secret);
        let mut m: BTreeMap<&str, [&str; 1]> = BTreeMap::new();
        m.insert("common_name", [self.common_name]);
        m.insert("remote_ip", [self.remote_ip]);
        m.insert("secret", [&secret]);
        m.insert("tls", [self.tls_str()]);
        // Serializing plain strings cannot fail; an empty body would be refused by the server.
        nsq_http::json::to_vec(&m).unwrap_or_default()
    }
}

/// Go's `url.QueryEscape`: unreserved bytes stay, space becomes `+`, the rest `%XX`. Public so
/// the fuzz targets can check that any AUTH secret survives the trip to the auth server.
pub fn go_query_escape(raw: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// Where and what to send, taken apart from a URL.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// `host:port` to connect to.
    connect: String,
    /// The Host header: the URL's host and port as written, without credentials.
    host: String,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, QueryError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| QueryError::Address(format!("invalid URL {url:?}: {e}")))?;
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => {}
            Some(s) if s.eq_ignore_ascii_case("https") => {
                return Err(QueryError::Address(format!(
                    "https auth servers are not supported ({url:?} refused)"
                )))
            }
            _ => {
                return Err(QueryError::Address(format!(
                    "unsupported protocol scheme in {url:?}"
                )))
            }
        }
        let authority = uri
            .authority()
            .ok_or_else(|| QueryError::Address(format!("no host in URL {url:?}")))?;
        let host = authority.host();
        if host.is_empty() || host == "[]" {
            return Err(QueryError::Address(format!("no host in URL {url:?}")));
        }
        let port = authority.port_u16().unwrap_or(80);
        let written = authority.as_str();
        let host_header = written.rsplit_once('@').map_or(written, |(_, h)| h);
        Ok(Target {
            connect: format!("{host}:{port}"),
            host: host_header.to_string(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
        })
    }
}

/// Aborts the connection driver when the request finishes or is cancelled by a timeout, so a
/// stuck auth server cannot keep a socket alive behind our back.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the body of a 200 answer.
async fn send(
    t: &Target,
    body: Option<Vec<u8>>,
    connect_timeout: Duration,
) -> Result<Bytes, QueryError> {
    let stream = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&t.connect))
        .await
        .map_err(|_| QueryError::Connect(format!("dial tcp {}: i/o timeout", t.connect)))?
        .map_err(|e| QueryError::Connect(format!("dial tcp {}: {e}", t.connect)))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| QueryError::Http(e.to_string()))?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let mut req = http::Request::builder()
        .uri(t.path_and_query.as_str())
        .header(http::header::HOST, t.host.as_str())
        .header(http::header::ACCEPT, ACCEPT_NSQ_V1);
    req = match &body {
        Some(b) => req
            .method(http::Method::POST)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CONTENT_LENGTH, b.len()),
        None => req.method(http::Method::GET),
    };
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| QueryError::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| QueryError::Http(e.to_string()))?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| QueryError::Http(format!("reading response: {e}")))?
        .to_bytes();
    if status != http::StatusCode::OK {
        if status == http::StatusCode::FORBIDDEN && contains(&body, b"https_port") {
            // NSQ would retry over https on the advertised port; we cannot speak https yet.
            log::warn!(
                "auth server {} asks for https, which is not supported for auth servers",
                t.host
            );
        }
        // The body goes to the log only; keep a runaway one from flooding it.
        let shown = &body[..body.len().min(1024)];
        return Err(QueryError::Status {
            status: format!(
                "{} {}",
                status.as_str(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string(),
            body: go_quote(shown),
        });
    }
    Ok(body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// The auth server's answer
// ---------------------------------------------------------------------------------------------

/// The answer as sent; `null` or missing fields read as empty, as in Go.
#[derive(Deserialize)]
struct RawState {
    ttl: Option<i64>,
    identity: Option<String>,
    identity_url: Option<String>,
    authorizations: Option<Vec<RawGrant>>,
}

#[derive(Deserialize)]
struct RawGrant {
    topic: Option<String>,
    channels: Option<Vec<String>>,
    permissions: Option<Vec<String>>,
}

/// Decodes and validates a 200 answer received at `now`, with NSQ's checks in NSQ's order.
/// Public so the fuzz targets can feed it arbitrary answers without an auth server.
pub fn parse_state(body: &[u8], now: Instant) -> Result<AuthState, String> {
    let raw: RawState =
        serde_json::from_slice(body).map_err(|e| format!("invalid response JSON: {e}"))?;
    let mut grants = Vec::new();
    for g in raw.authorizations.unwrap_or_default() {
        let (mut subscribe, mut publish) = (false, false);
        for p in g.permissions.unwrap_or_default() {
            match p.as_str() {
                "subscribe" => subscribe = true,
                "publish" => publish = true,
                _ => return Err(format!("unknown permission {p}")),
            }
        }
        let topic_pattern = g.topic.unwrap_or_default();
        let topic = compile_go_regex(&topic_pattern).map_err(|e| {
            format!(
                "unable to compile topic {} {e}",
                go_quote(topic_pattern.as_bytes())
            )
        })?;
        let channels = g
            .channels
            .unwrap_or_default()
            .iter()
            .map(|c| {
                compile_go_regex(c).map_err(|e| {
                    format!("unable to compile channel {} {e}", go_quote(c.as_bytes()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        grants.push(Grant {
            topic,
            channels,
            subscribe,
            publish,
        });
    }
    let ttl = raw.ttl.unwrap_or(0);
    if ttl <= 0 {
        return Err(format!("invalid TTL {ttl} (must be >0)"));
    }
    // An absurd TTL means "forever", not an overflow.
    let expires = now
        .checked_add(Duration::from_secs(ttl as u64))
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
    Ok(AuthState {
        identity: raw.identity.unwrap_or_default(),
        identity_url: raw.identity_url.unwrap_or_default(),
        grants,
        expires,
    })
}

/// Compiles an auth pattern with the meaning Go's RE2-based `regexp` gives it.
///
/// Subjects are topic and channel names, which are ASCII, so ASCII-only classes (Go's `\d`,
/// `\w`, `\s`, `\b`) and Unicode ones agree on them. Compiling without Unicode first keeps
/// patterns like `\w{500}` under the size limit; `\p{…}` classes need Unicode mode.
fn compile_go_regex(pattern: &str) -> Result<Regex, String> {
    let pattern = go_angle_escapes(pattern);
    go_syntax_check(&pattern)?;
    match RegexBuilder::new(&pattern).unicode(false).build() {
        Ok(re) => Ok(re),
        Err(_) => RegexBuilder::new(&pattern)
            .build()
            .map_err(|e| e.to_string()),
    }
}

/// In Go `\<` and `\>` are the literal characters; here they would be word-boundary
/// assertions, so they are unescaped first (escape pairs like `\\` are skipped over).
fn go_angle_escapes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(n @ ('<' | '>')) => out.push(n),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Refuses syntax the regex crate accepts but Go's `regexp` does not (or reads differently), so
/// a grant never means more here than it does in NSQ. Parse errors are left to the compiler.
fn go_syntax_check(pattern: &str) -> Result<(), String> {
    let Ok(parsed) = ast::parse::Parser::new().parse(pattern) else {
        return Ok(());
    };
    ast::visit(&parsed, GoSyntax)
}

struct GoSyntax;

impl GoSyntax {
    fn flags(flags: &ast::Flags) -> Result<(), String> {
        for item in &flags.items {
            if let ast::FlagsItemKind::Flag(
                ast::Flag::IgnoreWhitespace | ast::Flag::Unicode | ast::Flag::CRLF,
            ) = item.kind
            {
                return Err("invalid or unsupported Perl syntax: flag not supported by RE2".into());
            }
        }
        Ok(())
    }
}

impl ast::Visitor for GoSyntax {
    type Output = ();
    type Err = String;

    fn finish(self) -> Result<(), String> {
        Ok(())
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), String> {
        match node {
            Ast::Repetition(r) => {
                if let Ast::Repetition(_) = *r.ast {
                    return Err("invalid nested repetition operator".into());
                }
                if let ast::RepetitionKind::Range(range) = &r.op.kind {
                    let (lo, hi) = match *range {
                        ast::RepetitionRange::Exactly(n) | ast::RepetitionRange::AtLeast(n) => {
                            (n, n)
                        }
                        ast::RepetitionRange::Bounded(a, b) => (a, b),
                    };
                    if lo > GO_MAX_REPEAT || hi > GO_MAX_REPEAT {
                        return Err("invalid repeat count".into());
                    }
                }
                Ok(())
            }
            Ast::Flags(f) => GoSyntax::flags(&f.flags),
            Ast::Group(g) => match &g.kind {
                ast::GroupKind::NonCapturing(flags) => GoSyntax::flags(flags),
                _ => Ok(()),
            },
            Ast::Assertion(a) => match a.kind {
                ast::AssertionKind::StartLine
                | ast::AssertionKind::EndLine
                | ast::AssertionKind::StartText
                | ast::AssertionKind::EndText
                | ast::AssertionKind::WordBoundary
                | ast::AssertionKind::NotWordBoundary => Ok(()),
                _ => Err("invalid escape sequence".into()),
            },
            Ast::Literal(l) => GoSyntax::literal(l),
            _ => Ok(()),
        }
    }

    fn visit_class_set_item_pre(&mut self, item: &ast::ClassSetItem) -> Result<(), String> {
        match item {
            // Go has no nested classes: `[[a]]` is a different pattern there.
            ast::ClassSetItem::Bracketed(_) => Err("nested character class".into()),
            ast::ClassSetItem::Literal(l) => GoSyntax::literal(l),
            ast::ClassSetItem::Range(r) => {
                GoSyntax::literal(&r.start)?;
                GoSyntax::literal(&r.end)
            }
            _ => Ok(()),
        }
    }

    fn visit_class_set_binary_op_pre(&mut self, _: &ast::ClassSetBinaryOp) -> Result<(), String> {
        Err("character class set operations are not supported by RE2".into())
    }
}

impl GoSyntax {
    /// Go knows only `\x` hex escapes, not `\u`/`\U`.
    fn literal(l: &ast::Literal) -> Result<(), String> {
        match l.kind {
            ast::LiteralKind::HexFixed(ast::HexLiteralKind::UnicodeShort)
            | ast::LiteralKind::HexFixed(ast::HexLiteralKind::UnicodeLong)
            | ast::LiteralKind::HexBrace(ast::HexLiteralKind::UnicodeShort)
            | ast::LiteralKind::HexBrace(ast::HexLiteralKind::UnicodeLong) => {
                Err("invalid escape sequence".into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::Mutex;

    fn grant(topic: &str, channels: &[&str], perms: &[&str]) -> serde_json::Value {
        serde_json::json!({"topic": topic, "channels": channels, "permissions": perms})
    }

    fn state(grants: &[serde_json::Value]) -> AuthState {
        let body = serde_json::json!({"ttl": 60, "identity": "id", "authorizations": grants});
        parse_state(body.to_string().as_bytes(), Instant::now()).unwrap()
    }

    fn peer() -> Peer<'static> {
        Peer {
            addr: "127.0.0.1:5555",
            remote_ip: "127.0.0.1",
            tls: false,
            common_name: "",
        }
    }

    // ---- request encoding ----

    #[test]
    fn get_query_is_sorted_and_go_escaped() {
        let f = AuthFields {
            common_name: "cn x",
            remote_ip: "::1",
            secret: b"a b&c=d/\xc3\xa9~*+%",
            tls: true,
        };
        assert_eq!(
            f.query(),
            "common_name=cn+x&remote_ip=%3A%3A1&secret=a+b%26c%3Dd%2F%C3%A9~%2A%2B%25&tls=true"
        );
        let f = AuthFields {
            common_name: "",
            remote_ip: "10.1.2.3",
            secret: b"abc",
            tls: false,
        };
        assert_eq!(
            f.query(),
            "common_name=&remote_ip=10.1.2.3&secret=abc&tls=false"
        );
    }

    #[test]
    fn post_body_has_one_element_arrays_sorted() {
        let f = AuthFields {
            common_name: "",
            remote_ip: "10.1.2.3",
            secret: b"abc",
            tls: false,
        };
        assert_eq!(
            String::from_utf8(f.json_body()).unwrap(),
            r#"{"common_name":[""],"remote_ip":["10.1.2.3"],"secret":["abc"],"tls":["false"]}"#
        );
        // Go's encoder escapes HTML characters and replaces invalid UTF-8.
        let f = AuthFields {
            common_name: "<cn>",
            remote_ip: "",
            secret: b"\"&\xff",
            tls: true,
        };
        assert_eq!(
            String::from_utf8(f.json_body()).unwrap(),
            "{\"common_name\":[\"\\u003ccn\\u003e\"],\"remote_ip\":[\"\"],\
             \"secret\":[\"\\\"\\u0026\u{fffd}\"],\"tls\":[\"true\"]}"
        );
    }

    #[test]
    fn endpoints_and_targets() {
        assert_eq!(endpoint("127.0.0.1:4181"), "http://127.0.0.1:4181/auth");
        assert_eq!(endpoint("http://a:1/x?y=1"), "http://a:1/x?y=1");
        let t = Target::parse("http://127.0.0.1:4181/auth?secret=x").unwrap();
        assert_eq!(
            t,
            Target {
                connect: "127.0.0.1:4181".into(),
                host: "127.0.0.1:4181".into(),
                path_and_query: "/auth?secret=x".into(),
            }
        );
        let t = Target::parse("http://user:pw@auth.example").unwrap();
        assert_eq!(
            (
                t.connect.as_str(),
                t.host.as_str(),
                t.path_and_query.as_str()
            ),
            ("auth.example:80", "auth.example", "/")
        );
        let t = Target::parse("http://[::1]:4181/auth").unwrap();
        assert_eq!(t.host, "[::1]:4181");
        assert!(
            t.connect.parse::<std::net::SocketAddr>().is_ok(),
            "{}",
            t.connect
        );
        for bad in [
            "https://a:1/auth",
            "ftp://a/auth",
            "http:///auth",
            "not a url",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(QueryError::Address(_))),
                "{bad}"
            );
        }
        let e = Target::parse("https://a:1/auth").unwrap_err().to_string();
        assert!(e.contains("https auth servers are not supported"), "{e}");
    }

    // ---- response validation ----

    #[test]
    fn validation_rejects_like_nsq() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"ttl":1,"authorizations":[{"topic":"t","channels":[".*"],"permissions":["subscribe","admin"]}]}"#,
                "unknown permission admin",
            ),
            (
                r#"{"ttl":1,"authorizations":[{"topic":"(","channels":[],"permissions":[]}]}"#,
                "unable to compile topic \"(\"",
            ),
            (
                r#"{"ttl":1,"authorizations":[{"topic":"t","channels":["ok","[z-a]"],"permissions":[]}]}"#,
                "unable to compile channel \"[z-a]\"",
            ),
            (
                r#"{"ttl":0,"authorizations":[]}"#,
                "invalid TTL 0 (must be >0)",
            ),
            (r#"{"ttl":-5}"#, "invalid TTL -5 (must be >0)"),
            (r#"{"identity":"x"}"#, "invalid TTL 0 (must be >0)"),
            (r#"{"ttl":1.5}"#, "invalid response JSON"),
            (r#"{"ttl":"60"}"#, "invalid response JSON"),
            (r#"not json"#, "invalid response JSON"),
            (r#"{"ttl":1} x"#, "invalid response JSON"),
        ];
        for (body, want) in cases {
            let e = parse_state(body.as_bytes(), Instant::now())
                .map(|_| ())
                .unwrap_err();
            assert!(e.starts_with(want), "{body}: {e}");
        }
    }

    #[test]
    fn permissions_checked_before_patterns() {
        let body =
            r#"{"ttl":1,"authorizations":[{"topic":"(","channels":[],"permissions":["x"]}]}"#;
        let e = parse_state(body.as_bytes(), Instant::now())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e, "unknown permission x");
    }

    #[test]
    fn nulls_and_missing_fields_read_as_empty() {
        let now = Instant::now();
        let s = parse_state(
            br#"{"ttl":10,"identity":null,"authorizations":[{"topic":null,"channels":null,"permissions":null}],"extra":1}"#,
            now,
        )
        .unwrap();
        assert_eq!((s.identity.as_str(), s.identity_url.as_str()), ("", ""));
        assert_eq!(s.grants.len(), 1);
        assert_eq!(s.expires, now + Duration::from_secs(10));
        // A huge TTL does not overflow.
        let s = parse_state(br#"{"ttl":9223372036854775807}"#, now).unwrap();
        assert!(s.expires > now + Duration::from_secs(86_400 * 365));
    }

    #[test]
    fn go_incompatible_patterns_are_refused() {
        for p in [
            "(?x)a b",
            "(?u:a)",
            "(?R)a",
            "a{1001}",
            "a{2,1001}",
            "a**",
            "a+*",
            "[[a-z]]",
            "[a-z&&b]",
            "[a-z--b]",
            r"\u0041",
            r"\U{41}",
            r"[\u0041]",
            r"\b{start}",
        ] {
            assert!(compile_go_regex(p).is_err(), "{p} accepted");
        }
        for p in [
            "",
            ".*",
            "^orders$",
            "a{1000}",
            "(?i)ABC",
            "(?is:a.b)",
            "(?U)a+",
            r"\d+\w*\s?\b",
            r"\pL+",
            r"\p{Greek}",
            "[[:alpha:]]+",
            "[a-z0-9_]+",
            "[^a]",
            r"\x41\x{42}",
            r"\w{1000}",
            "(?:a*)*",
            "a*?",
            "(?P<n>a)|(?<m>b)",
            r"\.\-\&",
        ] {
            assert!(compile_go_regex(p).is_ok(), "{p} refused");
        }
    }

    #[test]
    fn angle_escapes_are_literals_as_in_go() {
        let re = compile_go_regex(r"a\<b\>").unwrap();
        assert!(re.is_match(b"xa<b>"));
        let re = compile_go_regex(r"a\\<").unwrap();
        assert!(re.is_match(br"a\<"));
        assert_eq!(go_angle_escapes(r"\\\<x\"), r"\\<x\");
    }

    // ---- matching ----

    #[test]
    fn permission_follows_the_channel() {
        let s = state(&[grant("t", &[".*"], &["subscribe"])]);
        assert!(s.allows(b"t", b"c"));
        assert!(!s.allows(b"t", b""));
        let s = state(&[grant("t", &[".*"], &["publish"])]);
        assert!(!s.allows(b"t", b"c"));
        assert!(s.allows(b"t", b""));
        let s = state(&[grant("t", &[".*"], &[])]);
        assert!(!s.allows(b"t", b"c") && !s.allows(b"t", b""));
    }

    #[test]
    fn patterns_are_unanchored_searches() {
        let s = state(&[grant("orders", &["c"], &["subscribe", "publish"])]);
        assert!(s.allows(b"old_orders_2", b"abc"));
        assert!(!s.allows(b"order", b"abc"));
        let s = state(&[grant("^orders$", &["^c$"], &["subscribe"])]);
        assert!(s.allows(b"orders", b"c"));
        assert!(!s.allows(b"orders2", b"c"));
        assert!(!s.allows(b"orders", b"cc"));
        // An empty topic pattern matches every topic.
        let s = state(&[grant("", &[".*"], &["subscribe"])]);
        assert!(s.allows(b"anything", b"c"));
    }

    #[test]
    fn publishing_needs_a_channel_pattern_matching_empty() {
        let s = state(&[grant("t", &["^c$"], &["publish"])]);
        assert!(!s.allows(b"t", b""));
        let s = state(&[grant("t", &["^c$", ""], &["publish"])]);
        assert!(s.allows(b"t", b""));
        let s = state(&[grant("t", &[], &["publish", "subscribe"])]);
        assert!(!s.allows(b"t", b"") && !s.allows(b"t", b"c"));
    }

    #[test]
    fn any_grant_suffices() {
        let s = state(&[
            grant("^a$", &[".*"], &["subscribe"]),
            grant("^b$", &[".*"], &["publish"]),
        ]);
        assert!(s.allows(b"a", b"c"));
        assert!(s.allows(b"b", b""));
        assert!(!s.allows(b"a", b""));
        assert!(!s.allows(b"b", b"c"));
    }

    // ---- ConnAuth without a server ----

    fn cfg(addresses: Vec<String>, method: AuthMethod) -> AuthConfig {
        AuthConfig {
            addresses,
            method,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_millis(500),
        }
    }

    #[tokio::test]
    async fn disabled_auth_passes_checks_and_refuses_auth() {
        let c = cfg(vec![], AuthMethod::Get);
        let mut a = ConnAuth::new();
        assert!(a.check(&c, "SUB", b"t", b"c", &peer()).await.is_ok());
        let e = a.auth(&c, b"s", &peer()).await.unwrap_err();
        assert_eq!(e.frame_text(), "E_AUTH_DISABLED AUTH disabled");
    }

    #[tokio::test]
    async fn checks_before_auth_fail_with_auth_first() {
        let c = cfg(vec!["127.0.0.1:1".into()], AuthMethod::Get);
        let mut a = ConnAuth::new();
        for cmd in ["SUB", "PUB", "MPUB", "DPUB"] {
            let e = a.check(&c, cmd, b"t", b"", &peer()).await.unwrap_err();
            assert_eq!(
                e.frame_text(),
                format!("E_AUTH_FIRST AUTH required before {cmd}")
            );
        }
    }

    #[tokio::test]
    async fn unauthorized_text_uses_go_quoting() {
        let c = cfg(vec!["127.0.0.1:1".into()], AuthMethod::Get);
        let mut a = ConnAuth::new();
        a.state = Some(state(&[grant("^x$", &[".*"], &["subscribe", "publish"])]));
        let e = a
            .check(&c, "SUB", b"t#ephemeral", b"c", &peer())
            .await
            .unwrap_err();
        assert_eq!(
            e.frame_text(),
            r#"E_UNAUTHORIZED AUTH failed for SUB on "t#ephemeral" "c""#
        );
        let e = a.check(&c, "DPUB", b"t", b"", &peer()).await.unwrap_err();
        assert_eq!(
            e.frame_text(),
            r#"E_UNAUTHORIZED AUTH failed for DPUB on "t" """#
        );
        assert!(a.check(&c, "PUB", b"x", b"", &peer()).await.is_ok());
    }

    #[tokio::test]
    async fn second_auth_is_refused() {
        let c = cfg(vec!["127.0.0.1:1".into()], AuthMethod::Get);
        let mut a = ConnAuth::new();
        a.state = Some(state(&[grant("", &[".*"], &["publish"])]));
        let e = a.auth(&c, b"s", &peer()).await.unwrap_err();
        assert_eq!(e.frame_text(), "E_INVALID AUTH already set");
    }

    #[tokio::test]
    async fn expired_state_with_server_down_fails_closed() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let c = cfg(vec![addr], AuthMethod::Get);
        let mut a = ConnAuth::new();
        let mut s = state(&[grant("", &[".*"], &["publish"])]);
        s.expires = Instant::now() - Duration::from_millis(1);
        a.state = Some(s);
        let e = a.check(&c, "PUB", b"t", b"", &peer()).await.unwrap_err();
        assert_eq!(e.frame_text(), "E_AUTH_FAILED AUTH failed");
    }

    // ---- against a local HTTP server ----

    /// Serves each connection with the next canned answer (the last repeats); records requests.
    struct Server {
        addr: String,
        requests: Arc<Mutex<Vec<String>>>,
    }

    async fn server(answers: Vec<String>) -> Server {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let rec = requests.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while let Ok((mut s, _)) = l.accept().await {
                let answer = answers[i.min(answers.len() - 1)].clone();
                i += 1;
                let rec = rec.clone();
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let Ok(n) = s.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        req.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&req).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap())
                                })
                                .unwrap_or(0);
                            if req.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    rec.lock()
                        .await
                        .push(String::from_utf8_lossy(&req).to_string());
                    if answer == "SILENT" {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    let _ = s.write_all(answer.as_bytes()).await;
                });
            }
        });
        Server { addr, requests }
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    const GRANT_ALL: &str = r#"{"ttl":3600,"identity":"alice <a>","identity_url":"http://x/alice","authorizations":[{"topic":".*","channels":[".*"],"permissions":["subscribe","publish"]}]}"#;

    #[tokio::test]
    async fn get_success_reply_and_request_shape() {
        let srv = server(vec![ok(GRANT_ALL)]).await;
        let c = cfg(vec![srv.addr.clone()], AuthMethod::Get);
        let mut a = ConnAuth::new();
        let reply = a.auth(&c, b"s e", &peer()).await.unwrap();
        assert_eq!(
            String::from_utf8(reply).unwrap(),
            r#"{"identity":"alice \u003ca\u003e","identity_url":"http://x/alice","permission_count":1}"#
        );
        assert!(a.is_authed());
        assert_eq!(
            (a.identity(), a.identity_url()),
            ("alice <a>", "http://x/alice")
        );
        assert!(a.check(&c, "SUB", b"t", b"c", &peer()).await.is_ok());
        let reqs = srv.requests.lock().await;
        assert_eq!(reqs.len(), 1, "a fresh answer is not re-queried");
        let r = &reqs[0];
        assert!(
            r.starts_with(
                "GET /auth?common_name=&remote_ip=127.0.0.1&secret=s+e&tls=false HTTP/1.1\r\n"
            ),
            "{r}"
        );
        let lower = r.to_ascii_lowercase();
        assert!(
            lower.contains("accept: application/vnd.nsq; version=1.0\r\n"),
            "{r}"
        );
        assert!(lower.contains(&format!("host: {}\r\n", srv.addr)), "{r}");
    }

    #[tokio::test]
    async fn post_sends_json_body() {
        let srv = server(vec![ok(GRANT_ALL)]).await;
        let url = format!("http://{}/v1/check", srv.addr);
        let c = cfg(vec![url], AuthMethod::Post);
        let mut a = ConnAuth::new();
        let p = Peer {
            tls: true,
            common_name: "client.example",
            ..peer()
        };
        a.auth(&c, b"abc", &p).await.unwrap();
        let reqs = srv.requests.lock().await;
        let r = &reqs[0];
        assert!(r.starts_with("POST /v1/check HTTP/1.1\r\n"), "{r}");
        let lower = r.to_ascii_lowercase();
        assert!(lower.contains("content-type: application/json\r\n"), "{r}");
        assert!(
            lower.contains("accept: application/vnd.nsq; version=1.0\r\n"),
            "{r}"
        );
        assert!(
            r.ends_with(
                r#"{"common_name":["client.example"],"remote_ip":["127.0.0.1"],"secret":["abc"],"tls":["true"]}"#
            ),
            "{r}"
        );
    }

    #[tokio::test]
    async fn chunked_answers_are_read() {
        let resp = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{GRANT_ALL}\r\n0\r\n\r\n",
            GRANT_ALL.len()
        );
        let srv = server(vec![resp]).await;
        let c = cfg(vec![srv.addr.clone()], AuthMethod::Get);
        assert!(ConnAuth::new().auth(&c, b"s", &peer()).await.is_ok());
    }

    #[tokio::test]
    async fn failures_map_to_nsq_errors() {
        let forbidden =
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 16\r\n\r\n{\"https_port\":1}".to_string();
        let none = ok(r#"{"ttl":60,"identity":"bob","authorizations":[]}"#);
        let invalid = ok(r#"{"ttl":0,"authorizations":[]}"#);
        for (answer, want) in [
            (forbidden, "E_AUTH_FAILED AUTH failed"),
            (invalid, "E_AUTH_FAILED AUTH failed"),
            (none, "E_UNAUTHORIZED AUTH no authorizations found"),
        ] {
            let srv = server(vec![answer]).await;
            let c = cfg(vec![srv.addr.clone()], AuthMethod::Get);
            let mut a = ConnAuth::new();
            let e = a.auth(&c, b"s", &peer()).await.unwrap_err();
            assert_eq!(e.frame_text(), want);
            assert!(!a.is_authed());
        }
    }

    #[tokio::test]
    async fn silent_server_times_out_promptly() {
        let srv = server(vec!["SILENT".to_string()]).await;
        let c = cfg(vec![srv.addr.clone()], AuthMethod::Get);
        let t0 = Instant::now();
        let e = ConnAuth::new().auth(&c, b"s", &peer()).await.unwrap_err();
        assert_eq!(e.frame_text(), "E_AUTH_FAILED AUTH failed");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn every_server_is_tried() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let down = l.local_addr().unwrap().to_string();
        drop(l);
        let srv = server(vec![ok(GRANT_ALL)]).await;
        let c = cfg(
            vec![down, "https://127.0.0.1:1/auth".into(), srv.addr.clone()],
            AuthMethod::Get,
        );
        for _ in 0..8 {
            assert!(ConnAuth::new().auth(&c, b"s", &peer()).await.is_ok());
        }
    }

    #[tokio::test]
    async fn expiry_requeries_with_the_same_secret() {
        let srv = server(vec![
            ok(GRANT_ALL),
            ok(r#"{"ttl":60,"identity":"carol","authorizations":[{"topic":"^only$","channels":[".*"],"permissions":["publish"]}]}"#),
        ])
        .await;
        let c = cfg(vec![srv.addr.clone()], AuthMethod::Get);
        let mut a = ConnAuth::new();
        a.auth(&c, b"sekrit", &peer()).await.unwrap();
        if let Some(s) = a.state.as_mut() {
            s.expires = Instant::now() - Duration::from_millis(1);
        }
        let e = a.check(&c, "PUB", b"t", b"", &peer()).await.unwrap_err();
        assert_eq!(
            e.frame_text(),
            r#"E_UNAUTHORIZED AUTH failed for PUB on "t" """#
        );
        assert_eq!(a.identity(), "carol");
        assert!(a.check(&c, "PUB", b"only", b"", &peer()).await.is_ok());
        let reqs = srv.requests.lock().await;
        assert_eq!(reqs.len(), 2);
        assert!(reqs[1].contains("secret=sekrit"), "{}", reqs[1]);
    }
}
