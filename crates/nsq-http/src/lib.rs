//! The HTTP layer shared by nsqd, nsqlookupd and nsqadmin: httprouter-compatible routing, NSQ's
//! V1 and PlainText response styles, query and body helpers, and the connection server.
//!
//! ```no_run
//! use std::sync::Arc;
//! use nsq_http::{serve, v1_empty, v1_json, ApiError, HandlerResult, RequestCtx, Router};
//!
//! struct State;
//!
//! async fn create_topic(_state: Arc<State>, ctx: RequestCtx) -> HandlerResult {
//!     let query = ctx.query()?; // 400 INVALID_REQUEST when unparseable
//!     let _topic = query
//!         .get("topic")
//!         .ok_or_else(|| ApiError::new(400, "MISSING_ARG_TOPIC"))?;
//!     Ok(v1_empty())
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let mut router = Router::new();
//! router
//!     .get("/ping", |_, _| async { Ok(nsq_http::plain(http::StatusCode::OK, "OK")) })
//!     .get("/config/:opt", |_, ctx: RequestCtx| async move {
//!         Ok(v1_json(&ctx.param("opt").unwrap_or_default()))
//!     })
//!     .post("/topic/create", create_topic)
//!     .skip_access_log(["/pub", "/mpub"]);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (_stop, stopped) = tokio::sync::watch::channel(false);
//! serve(listener, Arc::new(router), Arc::new(State), stopped).await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod body;
pub mod client;
pub mod compress;
pub mod json;
pub mod path;
pub mod query;
pub mod response;
pub mod router;
pub mod server;

pub use body::{
    content_length, empty_body, full_body, read_body_limited, BodyError, BoxError, RequestBody,
};
pub use query::{parse_bool, InvalidQuery, Query};
pub use response::{
    plain, tls_required, v1_bytes, v1_empty, v1_error, v1_json, v1_json_bytes, v1_text, ApiError,
    ErrorStyle, HandlerResult, Response, APPLICATION_JSON, NSQ_V1, TEXT_PLAIN, X_NSQ_CONTENT_TYPE,
};
pub use router::{
    BoxFuture, Handler, Params, PreDispatch, RemoteAddr, RequestCtx, RouteError, Router,
};
#[cfg(unix)]
pub use server::serve_unix;
pub use server::{serve, serve_tls, TLS_HANDSHAKE_TIMEOUT};
