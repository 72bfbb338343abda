//! Request routing with the observable behaviour of httprouter v1.3.0 as the NSQ daemons configure
//! it (exact match, trailing-slash and case/cleaning redirects, 405 with `Allow`, automatic
//! `OPTIONS`, V1 404/405, panics answered with 500), plus the per-request access log.

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};
use http_body_util::Full;

use crate::body::{content_length, empty_body, read_body_limited, BodyError, RequestBody};
use crate::path::{clean_path, escape_path, percent_decode, redirect_clean};
use crate::query::{InvalidQuery, Query};
use crate::response::{v1_error, HandlerResult, Response};
use nsq_flags::format_go_duration as go_duration;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A route handler: receives the shared state and the request, returns a response or an
/// [`ApiError`](crate::ApiError).
pub type Handler<S> = Arc<dyn Fn(Arc<S>, RequestCtx) -> BoxFuture<HandlerResult> + Send + Sync>;

/// Runs before routing; returning a response short-circuits the request. nsqd uses it to refuse
/// everything on the plain listener when TLS is required.
pub type PreDispatch<S> = Arc<dyn Fn(&S, &http::request::Parts) -> Option<Response> + Send + Sync>;

/// Peer address of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteAddr {
    Tcp(SocketAddr),
    /// Unix-socket peers are unnamed; Go prints them as `@`.
    Unix,
}

impl fmt::Display for RemoteAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteAddr::Tcp(addr) => write!(f, "{addr}"),
            RemoteAddr::Unix => f.write_str("@"),
        }
    }
}

/// Values captured by `:name` pattern segments, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Everything a handler gets about its request.
pub struct RequestCtx {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub remote_addr: RemoteAddr,
    pub params: Params,
    pub body: RequestBody,
}

impl RequestCtx {
    /// Builds a context outside the server, for exercising handlers directly.
    pub fn new(
        request: Request<RequestBody>,
        remote_addr: RemoteAddr,
        params: Params,
    ) -> RequestCtx {
        let (parts, body) = request.into_parts();
        RequestCtx {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
            remote_addr,
            params,
            body,
        }
    }

    /// The URL query parameters (the only place NSQ reads parameters from, even for POST).
    pub fn query(&self) -> Result<Query, InvalidQuery> {
        Query::parse(self.uri.query())
    }

    /// A `:name` path parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The declared `Content-Length`, if any.
    pub fn content_length(&self) -> Option<u64> {
        content_length(&self.headers)
    }

    /// Reads the body subject to `limit` (see [`read_body_limited`]); the body is consumed, so a
    /// second call sees an empty one.
    pub async fn read_body(&mut self, limit: u64) -> Result<Bytes, BodyError> {
        let body = std::mem::replace(&mut self.body, empty_body());
        read_body_limited(body, limit).await
    }
}

impl fmt::Debug for RequestCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestCtx")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("remote_addr", &self.remote_addr)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// A route that cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("route pattern {0:?} must begin with '/'")]
    NotRooted(String),
    /// Parameters must be whole `:name` segments; catch-alls (`*name`) are not supported.
    #[error("route pattern {0:?} has a malformed or unsupported wildcard")]
    BadWildcard(String),
    #[error("route {method} {pattern:?} is already registered")]
    Duplicate { method: Method, pattern: String },
    /// As in httprouter, a parameter may not share a position with another segment under the
    /// same prefix, so every path matches at most one route.
    #[error("route {method} {pattern:?} conflicts with {existing:?}")]
    Conflict {
        method: Method,
        pattern: String,
        existing: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Static(String),
    Param(String),
}

struct Route<S> {
    pattern: String,
    segments: Vec<Segment>,
    handler: Handler<S>,
}

struct MethodRoutes<S> {
    method: Method,
    routes: Vec<Route<S>>,
}

impl<S> MethodRoutes<S> {
    fn lookup(&self, path: &str) -> Option<(&Route<S>, Params)> {
        let parts = path_segments(path)?;
        self.routes
            .iter()
            .find_map(|route| match_exact(&route.segments, &parts).map(|p| (route, p)))
    }

    fn has(&self, path: &str) -> bool {
        self.lookup(path).is_some()
    }

    /// httprouter's fixed-path search: a case-insensitive match of the (already cleaned) path,
    /// else of the path with its trailing slash toggled. Returns the route-cased path.
    fn find_fixed_path(&self, cleaned: &str) -> Option<String> {
        let candidates = std::iter::once(cleaned.to_string()).chain(toggle_trailing_slash(cleaned));
        for candidate in candidates {
            let Some(parts) = path_segments(&candidate) else {
                continue;
            };
            if let Some(fixed) = self
                .routes
                .iter()
                .find_map(|route| match_case_insensitive(&route.segments, &parts))
            {
                return Some(fixed);
            }
        }
        None
    }
}

/// Splits a rooted path into segments; `/` is one empty segment and a trailing slash yields a
/// final empty segment, so `/ping` and `/ping/` never match the same pattern.
fn path_segments(path: &str) -> Option<Vec<&str>> {
    Some(path.strip_prefix('/')?.split('/').collect())
}

fn match_exact(pattern: &[Segment], parts: &[&str]) -> Option<Params> {
    if pattern.len() != parts.len() {
        return None;
    }
    let mut params = Vec::new();
    let last = parts.len() - 1;
    for (i, (segment, part)) in pattern.iter().zip(parts).enumerate() {
        match segment {
            Segment::Static(s) if s == part => {}
            Segment::Static(_) => return None,
            // httprouter lets a parameter be empty only when more path follows it.
            Segment::Param(_) if part.is_empty() && i == last => return None,
            Segment::Param(name) => params.push((name.clone(), (*part).to_string())),
        }
    }
    Some(Params(params))
}

fn match_case_insensitive(pattern: &[Segment], parts: &[&str]) -> Option<String> {
    if pattern.len() != parts.len() {
        return None;
    }
    let last = parts.len() - 1;
    let mut fixed = String::new();
    for (i, (segment, part)) in pattern.iter().zip(parts).enumerate() {
        fixed.push('/');
        match segment {
            Segment::Static(s) if s.to_lowercase() == part.to_lowercase() => fixed.push_str(s),
            Segment::Static(_) => return None,
            Segment::Param(_) if part.is_empty() && i == last => return None,
            Segment::Param(_) => fixed.push_str(part),
        }
    }
    Some(fixed)
}

fn toggle_trailing_slash(path: &str) -> Option<String> {
    if path == "/" {
        None
    } else if let Some(stripped) = path.strip_suffix('/') {
        Some(stripped.to_string())
    } else {
        Some(format!("{path}/"))
    }
}

fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, RouteError> {
    let Some(parts) = path_segments(pattern) else {
        return Err(RouteError::NotRooted(pattern.to_string()));
    };
    parts
        .into_iter()
        .map(|part| {
            let bad = || RouteError::BadWildcard(pattern.to_string());
            match part.strip_prefix(':') {
                Some(name) if name.is_empty() || name.contains([':', '*']) => Err(bad()),
                Some(name) => Ok(Segment::Param(name.to_string())),
                None if part.contains([':', '*']) => Err(bad()),
                None => Ok(Segment::Static(part.to_string())),
            }
        })
        .collect()
}

/// Whether two patterns could both match some path (in which case httprouter refuses the second).
fn conflicts(a: &[Segment], b: &[Segment]) -> bool {
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            _ if x == y => continue,
            // A trailing-slash route beside a parameter is allowed: an empty final segment never
            // binds a parameter.
            (Segment::Static(s), Segment::Param(_)) | (Segment::Param(_), Segment::Static(s))
                if s.is_empty() =>
            {
                return false
            }
            (Segment::Param(_), _) | (_, Segment::Param(_)) => return true,
            _ => return false,
        }
    }
    false
}

/// Route table plus dispatch. `S` is the daemon state handed to every handler.
pub struct Router<S> {
    trees: Vec<MethodRoutes<S>>,
    pre_dispatch: Option<PreDispatch<S>>,
    unlogged: HashSet<String>,
    compress: bool,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Router {
            trees: Vec::new(),
            pre_dispatch: None,
            unlogged: HashSet::new(),
            compress: false,
        }
    }
}

impl<S: Send + Sync + 'static> Router<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `method` and `pattern` (`/config/:opt` style).
    ///
    /// # Panics
    /// If the pattern is malformed or conflicts with an existing route; route tables are fixed at
    /// startup, so this is a programming error (httprouter panics likewise). Use
    /// [`Router::try_handle`] to get the error instead.
    pub fn route<F, Fut>(&mut self, method: Method, pattern: &str, handler: F) -> &mut Self
    where
        F: Fn(Arc<S>, RequestCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let handler: Handler<S> = Arc::new(move |state, ctx| Box::pin(handler(state, ctx)));
        if let Err(e) = self.try_handle(method, pattern, handler) {
            panic!("{e}");
        }
        self
    }

    pub fn get<F, Fut>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: Fn(Arc<S>, RequestCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.route(Method::GET, pattern, handler)
    }

    pub fn post<F, Fut>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: Fn(Arc<S>, RequestCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.route(Method::POST, pattern, handler)
    }

    pub fn put<F, Fut>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: Fn(Arc<S>, RequestCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.route(Method::PUT, pattern, handler)
    }

    pub fn delete<F, Fut>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: Fn(Arc<S>, RequestCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.route(Method::DELETE, pattern, handler)
    }

    /// Registers an already-boxed handler, reporting pattern problems instead of panicking.
    pub fn try_handle(
        &mut self,
        method: Method,
        pattern: &str,
        handler: Handler<S>,
    ) -> Result<(), RouteError> {
        let segments = parse_pattern(pattern)?;
        let index = match self.trees.iter().position(|t| t.method == method) {
            Some(i) => i,
            None => {
                self.trees.push(MethodRoutes {
                    method: method.clone(),
                    routes: Vec::new(),
                });
                self.trees.len() - 1
            }
        };
        let tree = &mut self.trees[index];
        for existing in &tree.routes {
            if existing.segments == segments {
                return Err(RouteError::Duplicate {
                    method,
                    pattern: pattern.to_string(),
                });
            }
            if conflicts(&existing.segments, &segments) {
                return Err(RouteError::Conflict {
                    method,
                    pattern: pattern.to_string(),
                    existing: existing.pattern.clone(),
                });
            }
        }
        tree.routes.push(Route {
            pattern: pattern.to_string(),
            segments,
            handler,
        });
        Ok(())
    }

    /// Requests answered by the routes with these patterns are not access-logged (nsqd: `/pub`,
    /// `/mpub`). Their 404/405/500 answers still are, as in the reference.
    pub fn skip_access_log<'a>(
        &mut self,
        patterns: impl IntoIterator<Item = &'a str>,
    ) -> &mut Self {
        self.unlogged
            .extend(patterns.into_iter().map(str::to_string));
        self
    }

    /// Installs the hook consulted before routing (see [`PreDispatch`]).
    pub fn pre_dispatch(
        &mut self,
        hook: impl Fn(&S, &http::request::Parts) -> Option<Response> + Send + Sync + 'static,
    ) -> &mut Self {
        self.pre_dispatch = Some(Arc::new(hook));
        self
    }

    fn tree(&self, method: &Method) -> Option<&MethodRoutes<S>> {
        self.trees.iter().find(|t| t.method == *method)
    }

    /// The `Allow` value for `path`: every other method with a route there, plus `OPTIONS`,
    /// sorted; `None` when no other method matches. `*` (server-wide) lists every method.
    fn allowed(&self, path: &str, request_method: &Method) -> Option<String> {
        let mut methods: Vec<&str> = self
            .trees
            .iter()
            .filter(|t| t.method != Method::OPTIONS)
            .filter(|t| path == "*" || (t.method != *request_method && t.has(path)))
            .map(|t| t.method.as_str())
            .collect();
        if methods.is_empty() {
            return None;
        }
        methods.push(Method::OPTIONS.as_str());
        methods.sort_unstable();
        Some(methods.join(", "))
    }

    /// Compresses every response (errors and redirects included) for clients that accept gzip
    /// or deflate, as nsqadmin does; see [`crate::compress`].
    pub fn compress_responses(&mut self) -> &mut Self {
        self.compress = true;
        self
    }

    /// Answers one request. Never fails: every outcome, including a panicking handler, is a
    /// response.
    pub async fn dispatch(
        &self,
        state: Arc<S>,
        request: Request<RequestBody>,
        remote_addr: RemoteAddr,
    ) -> Response {
        if !self.compress {
            return self.dispatch_plain(state, request, remote_addr).await;
        }
        let encoding = crate::compress::negotiate(request.headers());
        let response = self.dispatch_plain(state, request, remote_addr).await;
        match encoding {
            Some(encoding) => crate::compress::compress(response, encoding),
            None => response,
        }
    }

    async fn dispatch_plain(
        &self,
        state: Arc<S>,
        request: Request<RequestBody>,
        remote_addr: RemoteAddr,
    ) -> Response {
        let (parts, body) = request.into_parts();

        // Go's server rejects such a request line before any handler runs.
        let Ok(decoded) = percent_decode(parts.uri.path(), false) else {
            return bad_request();
        };
        let path = String::from_utf8_lossy(&decoded).into_owned();

        if let Some(hook) = &self.pre_dispatch {
            if let Some(response) = hook(&state, &parts) {
                return response;
            }
        }

        let http::request::Parts {
            method,
            uri,
            version,
            headers,
            ..
        } = parts;
        let start = Instant::now();
        let log_line = |status: StatusCode, elapsed: Duration| {
            log::info!(
                "{} {} {} ({}) {}",
                status.as_u16(),
                method,
                request_uri(&uri),
                remote_addr,
                go_duration(elapsed)
            );
        };

        if let Some(tree) = self.tree(&method) {
            if let Some((route, params)) = tree.lookup(&path) {
                let logged = !self.unlogged.contains(&route.pattern);
                let ctx = RequestCtx {
                    method: method.clone(),
                    uri: uri.clone(),
                    version,
                    headers,
                    remote_addr,
                    params,
                    body,
                };
                let response = match run_handler(&route.handler, state, ctx).await {
                    Ok(response) => response,
                    Err(panic_message) => {
                        log::error!("panic in HTTP handler - {panic_message}");
                        let response =
                            v1_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
                        log_line(response.status(), start.elapsed());
                        return response;
                    }
                };
                if logged {
                    log_line(response.status(), start.elapsed());
                }
                return response;
            }

            if method != Method::CONNECT && path != "/" {
                let status = if method == Method::GET {
                    StatusCode::MOVED_PERMANENTLY
                } else {
                    StatusCode::TEMPORARY_REDIRECT
                };
                let target = toggle_trailing_slash(&path)
                    .filter(|toggled| tree.has(toggled))
                    .or_else(|| tree.find_fixed_path(&clean_path(&path)));
                if let Some(target) = target {
                    return redirect(&method, status, &target, uri.query());
                }
            }
        }

        if method == Method::OPTIONS {
            if let Some(allow) = self.allowed(&path, &method) {
                return with_allow(http::Response::new(Full::new(Bytes::new())), &allow);
            }
        } else if let Some(allow) = self.allowed(&path, &method) {
            let response = with_allow(
                v1_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
                &allow,
            );
            log_line(response.status(), start.elapsed());
            return response;
        }

        let response = v1_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        log_line(response.status(), start.elapsed());
        response
    }
}

/// The request target as Go's `URL.RequestURI` reports it: path and query, without any scheme or
/// host an absolute-form target carried.
fn request_uri(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |pq| pq.as_str())
}

fn with_allow(mut response: Response, allow: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

fn bad_request() -> Response {
    let mut response = http::Response::new(Full::new(Bytes::from_static(b"400 Bad Request")));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::response::TEXT_PLAIN),
    );
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Mirrors Go's `http.Redirect` for a local target: the path is re-escaped and cleaned (keeping a
/// trailing slash), the original query is kept, and only GET carries the small HTML body.
fn redirect(method: &Method, status: StatusCode, path: &str, query: Option<&str>) -> Response {
    let mut location = escape_path(&redirect_clean(path));
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        location.push('?');
        location.push_str(q);
    }
    let body = if *method == Method::GET {
        let reason = status.canonical_reason().unwrap_or("");
        Bytes::from(format!(
            "<a href=\"{}\">{reason}</a>.\n\n",
            html_escape(&location)
        ))
    } else {
        Bytes::new()
    };
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(LOCATION, value);
    }
    if *method == Method::GET || *method == Method::HEAD {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    response
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Runs a handler to completion, turning an `ApiError` into its response and a panic (while
/// building or polling the future) into `Err(message)`.
async fn run_handler<S>(
    handler: &Handler<S>,
    state: Arc<S>,
    ctx: RequestCtx,
) -> Result<Response, String> {
    // Unwind safety: after a panic the future is dropped without being polled again, and shared
    // state is exposed exactly as Go's recover() would leave it.
    let future = catch_unwind(AssertUnwindSafe(|| handler(state, ctx))).map_err(panic_text)?;
    match (CatchUnwind { future }).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(api_error)) => Ok(api_error.into_response()),
        Err(payload) => Err(panic_text(payload)),
    }
}

fn panic_text(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Polls a boxed future, converting a panic during a poll into an error result.
struct CatchUnwind<T> {
    future: BoxFuture<T>,
}

impl<T> Future for CatchUnwind<T> {
    type Output = Result<T, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.future;
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

#[cfg(test)]
mod tests;
