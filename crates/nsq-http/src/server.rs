//! Connection serving: the accept loop, one task per HTTP/1.1 keep-alive connection, and the
//! shutdown sequence (stop accepting, let in-flight requests finish, close idle connections).

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::BoxError;
use crate::router::{RemoteAddr, Router};
use nsq_flags::format_go_duration as go_duration;

/// Serves HTTP on `listener` until `shutdown` becomes `true` (or its sender is dropped).
///
/// Each connection runs in its own task with keep-alive. On shutdown the listener stops accepting
/// and every open connection finishes its current request and closes; this function returns as
/// soon as accepting has stopped, without waiting for those connections. Accept errors (e.g. file
/// descriptor exhaustion) are logged and retried with backoff, as Go's server does.
pub async fn serve<S: Send + Sync + 'static>(
    listener: TcpListener,
    router: Arc<Router<S>>,
    state: Arc<S>,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, router, state, shutdown).await;
}

/// [`serve`] for a Unix-domain socket listener (nsqd's `--http-address` may be a socket path).
#[cfg(unix)]
pub async fn serve_unix<S: Send + Sync + 'static>(
    listener: tokio::net::UnixListener,
    router: Arc<Router<S>>,
    state: Arc<S>,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, router, state, shutdown).await;
}

trait Acceptor {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn poll_accept_conn(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Io, RemoteAddr)>>;
}

impl Acceptor for TcpListener {
    type Io = tokio::net::TcpStream;

    fn poll_accept_conn(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Io, RemoteAddr)>> {
        self.poll_accept(cx).map_ok(|(stream, addr)| {
            // Go enables TCP_NODELAY on every connection; without it small keep-alive responses
            // can stall behind Nagle. Failure only costs latency.
            let _ = stream.set_nodelay(true);
            (stream, RemoteAddr::Tcp(addr))
        })
    }
}

#[cfg(unix)]
impl Acceptor for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    fn poll_accept_conn(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Io, RemoteAddr)>> {
        self.poll_accept(cx)
            .map_ok(|(stream, _)| (stream, RemoteAddr::Unix))
    }
}

fn shutdown_requested(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow()
}

/// Resolves once shutdown has been requested; a dropped sender counts as a request, since nobody
/// could ever signal it otherwise.
async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    while !shutdown_requested(shutdown) {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

async fn accept_loop<A: Acceptor, S: Send + Sync + 'static>(
    acceptor: A,
    router: Arc<Router<S>>,
    state: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = wait_for_shutdown(&mut shutdown) => return,
            accepted = poll_fn(|cx| acceptor.poll_accept_conn(cx)) => accepted,
        };
        match accepted {
            Ok((io, remote_addr)) => {
                backoff = None;
                tokio::spawn(serve_connection(
                    io,
                    remote_addr,
                    Arc::clone(&router),
                    Arc::clone(&state),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                let delay = backoff.map_or(MIN_ACCEPT_BACKOFF, |d| (d * 2).min(MAX_ACCEPT_BACKOFF));
                backoff = Some(delay);
                log::warn!(
                    "http: Accept error: {e}; retrying in {}",
                    go_duration(delay)
                );
                tokio::select! {
                    biased;
                    () = wait_for_shutdown(&mut shutdown) => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

async fn serve_connection<I, S>(
    io: I,
    remote_addr: RemoteAddr,
    router: Arc<Router<S>>,
    state: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + Sync + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let router = Arc::clone(&router);
        let state = Arc::clone(&state);
        async move {
            let request =
                request.map(|body| body.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync());
            Ok::<_, Infallible>(router.dispatch(state, request, remote_addr).await)
        }
    });

    // Title-cased header names reproduce Go's canonical wire form (`X-Nsq-Content-Type`).
    let connection = http1::Builder::new()
        .title_case_headers(true)
        .serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);

    let outcome = tokio::select! {
        outcome = connection.as_mut() => outcome,
        () = wait_for_shutdown(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = outcome {
        log::debug!("http: connection from {remote_addr} ended with error: {e}");
    }
}
