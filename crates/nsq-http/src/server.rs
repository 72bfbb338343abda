//! Connection serving: the accept loop, one task per HTTP/1.1 keep-alive connection (plain TCP,
//! Unix socket, or TLS after a per-connection handshake), and the shutdown sequence (stop
//! accepting, let in-flight requests finish, close idle connections).

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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

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
    accept_loop(listener, shutdown, move |io, remote_addr, shutdown| {
        tokio::spawn(serve_connection(
            io,
            remote_addr,
            Arc::clone(&router),
            Arc::clone(&state),
            shutdown,
        ));
    })
    .await;
}

/// [`serve`] for a Unix-domain socket listener (nsqd's `--http-address` may be a socket path).
#[cfg(unix)]
pub async fn serve_unix<S: Send + Sync + 'static>(
    listener: tokio::net::UnixListener,
    router: Arc<Router<S>>,
    state: Arc<S>,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, shutdown, move |io, remote_addr, shutdown| {
        tokio::spawn(serve_connection(
            io,
            remote_addr,
            Arc::clone(&router),
            Arc::clone(&state),
            shutdown,
        ));
    })
    .await;
}

/// How long a client may take to complete the TLS handshake on the HTTPS listener before the
/// connection is dropped. Go's server sets none; without one an idle socket would hold a task
/// (and a descriptor) forever.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`serve`] over TLS (nsqd's `--https-address`): each accepted connection first completes a TLS
/// server handshake with `acceptor`, then is served exactly like a plain one.
///
/// As Go's server does, a client that speaks plain HTTP to this port gets
/// `HTTP/1.0 400 Bad Request` with `Client sent an HTTP request to an HTTPS server.`, and other
/// failed handshakes are logged at WARN as `http: TLS handshake error from <addr>: <err>`; neither
/// affects other connections.
pub async fn serve_tls<S: Send + Sync + 'static>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Arc<Router<S>>,
    state: Arc<S>,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, shutdown, move |io, remote_addr, shutdown| {
        tokio::spawn(serve_tls_connection(
            io,
            remote_addr,
            acceptor.clone(),
            Arc::clone(&router),
            Arc::clone(&state),
            shutdown,
        ));
    })
    .await;
}

/// What Go's server answers, on the raw socket, to plain HTTP on a TLS port.
const PLAIN_HTTP_ON_TLS: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Go's test for "this TLS record header is really the start of an HTTP request".
fn looks_like_http(header: &[u8]) -> bool {
    matches!(header, b"GET /" | b"HEAD " | b"POST " | b"PUT /" | b"OPTIO")
}

async fn serve_tls_connection<S: Send + Sync + 'static>(
    mut tcp: TcpStream,
    remote_addr: RemoteAddr,
    acceptor: TlsAcceptor,
    router: Arc<Router<S>>,
    state: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    let handshake = async {
        // The first five bytes are a TLS record header, or the start of a plain HTTP request
        // line; they are read here and replayed to the TLS layer.
        let mut header = [0u8; 5];
        let mut got = 0;
        while got < header.len() {
            match tcp.read(&mut header[got..]).await {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(e),
            }
        }
        if got == header.len() && looks_like_http(&header) {
            let _ = tcp.write_all(PLAIN_HTTP_ON_TLS).await;
            let _ = tcp.shutdown().await;
            return Ok(None);
        }
        let io = Replay {
            prefix: header,
            start: 0,
            end: got,
            inner: tcp,
        };
        acceptor.accept(io).await.map(Some)
    };
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake) => outcome,
        // Shutdown abandons handshakes still in progress: nothing was asked of us yet.
        () = wait_for_shutdown(&mut shutdown) => return,
    };
    match outcome {
        Ok(Ok(Some(tls))) => serve_connection(tls, remote_addr, router, state, shutdown).await,
        Ok(Ok(None)) => {}
        Ok(Err(e)) => log::warn!("http: TLS handshake error from {remote_addr}: {e}"),
        Err(_) => log::warn!("http: TLS handshake error from {remote_addr}: handshake timed out"),
    }
}

/// A stream that yields some already-read bytes before reading on from `inner`.
struct Replay<I> {
    prefix: [u8; 5],
    start: usize,
    end: usize,
    inner: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Replay<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.start < self.end {
            let n = (self.end - self.start).min(buf.remaining());
            let from = self.start;
            buf.put_slice(&self.prefix[from..from + n]);
            self.start += n;
            return Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Replay<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
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

/// Accepts until shutdown, handing each connection (with its own shutdown receiver) to
/// `on_connection`, which spawns whatever serves it.
async fn accept_loop<A: Acceptor>(
    acceptor: A,
    mut shutdown: watch::Receiver<bool>,
    on_connection: impl Fn(A::Io, RemoteAddr, watch::Receiver<bool>),
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
                on_connection(io, remote_addr, shutdown.clone());
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
