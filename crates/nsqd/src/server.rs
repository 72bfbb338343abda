//! nsqd's lifecycle: lock the data path, bind listeners, load metadata, serve until SIGINT or
//! SIGTERM, then shut down cleanly.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context};

use crate::daemon::Nsqd;
use crate::options::Options;

fn fatal(msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("failed to instantiate nsqd - {msg}")
}

/// A bound listener: TCP for `host:port`, a unix socket for anything else (as NSQ decides).
enum Bound {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Bound {
    fn port(&self) -> i64 {
        match self {
            Bound::Tcp(l) => l.local_addr().map(|a| a.port() as i64).unwrap_or(0),
            Bound::Unix(_) => -1,
        }
    }

    fn describe(&self) -> String {
        match self {
            Bound::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Bound::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_default(),
        }
    }
}

fn bind_any(addr: &str) -> anyhow::Result<Bound> {
    if nsq_daemon::process::is_tcp_addr(addr) {
        return Ok(Bound::Tcp(bind(addr)?));
    }
    tokio::net::UnixListener::bind(addr)
        .map(Bound::Unix)
        .map_err(|e| fatal(format!("listen ({addr}) failed - {e}")))
}

fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let std_listener = nsq_daemon::process::bind_tcp(addr)
        .map_err(|e| fatal(format!("listen ({addr}) failed - {e}")))?;
    tokio::net::TcpListener::from_std(std_listener)
        .map_err(|e| fatal(format!("listen ({addr}) failed - {e}")))
}

pub async fn run(mut opts: Options) -> anyhow::Result<()> {
    // Before anything is announced: a signal sent right after the listen lines must still
    // trigger a clean shutdown.
    let signals = Signals::install()?;
    let data_path = if opts.data_path.is_empty() {
        std::env::current_dir().context("failed to read working directory")?
    } else {
        PathBuf::from(&opts.data_path)
    };
    let _lock = nsq_daemon::process::lock_dir(&data_path)
        .map_err(|e| fatal(format!("failed to lock data-path: {e}")))?;
    log::info!("{}", nsq_daemon::version_line("nsqd"));
    log::info!("ID: {}", opts.node_id);

    // Built before any listener, as NSQ does, so a bad certificate fails start-up first.
    let tls_acceptor = crate::tls::server_config(&opts)
        .map_err(|e| fatal(format!("failed to build TLS config - {e}")))?
        .map(tokio_rustls::TlsAcceptor::from);

    let tcp = bind_any(&opts.tcp_address)?;
    let http = if opts.http_address.is_empty() {
        None
    } else {
        Some(bind_any(&opts.http_address)?)
    };
    // HTTPS (TCP only) is served only when TLS is configured; `--https-address=""` disables it.
    let https = match &tls_acceptor {
        Some(acceptor) if !opts.https_address.is_empty() => {
            let listener = bind(&opts.https_address)?;
            let addr = listener.local_addr()?;
            Some((listener, addr, acceptor.clone()))
        }
        _ => None,
    };
    // The port the plain listener's 403 points clients at: 0 when there is no HTTPS listener.
    let https_port = https.as_ref().map_or(0, |(_, addr, _)| addr.port());
    // NSQ reports -1 for a port that is a unix socket, and 0 for a disabled listener.
    let tcp_port = tcp.port();
    let http_port = http.as_ref().map(Bound::port).unwrap_or(0);
    if opts.broadcast_tcp_port == 0 && tcp_port > 0 {
        opts.broadcast_tcp_port = tcp_port;
    }
    if opts.broadcast_http_port == 0 && http_port > 0 {
        opts.broadcast_http_port = http_port;
    }

    if !opts.statsd_prefix.is_empty() {
        // `%s` becomes this node's host key, `<broadcast address>_<http port>` with dots and
        // colons made safe for metric names.
        let host_key = format!("{}_{}", opts.broadcast_address, opts.broadcast_http_port)
            .replace(['.', ':'], "_");
        opts.statsd_prefix = opts.statsd_prefix.replace("%s", &host_key);
        if !opts.statsd_prefix.ends_with('.') {
            opts.statsd_prefix.push('.');
        }
    }

    let tls_required_on_http = opts.tls_required == crate::options::TlsRequired::Yes;
    let nsqd = Arc::new(Nsqd::new(opts, data_path, tcp_port, http_port).with_tls(tls_acceptor));
    nsqd.load_metadata().map_err(fatal)?;
    nsqd.persist_metadata().map_err(fatal)?;

    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    nsq_daemon::logging::always_info(&format!("TCP: listening on {}", tcp.describe()));
    let tcp_listener = match tcp {
        Bound::Tcp(l) => crate::tcp::Listener::Tcp(l),
        Bound::Unix(l) => crate::tcp::Listener::Unix(l),
    };
    tasks.push(tokio::spawn(crate::tcp::serve(nsqd.clone(), tcp_listener)));
    if let Some(listener) = http {
        nsq_daemon::logging::always_info(&format!("HTTP: listening on {}", listener.describe()));
        let mut router = crate::http_api::router();
        if tls_required_on_http {
            // `--tls-required=true`: the plain listener answers every request with a 403
            // pointing at the HTTPS port (`tcp-https` leaves plain HTTP alone).
            router.pre_dispatch(move |_, _| Some(nsq_http::tls_required(https_port)));
        }
        let router = Arc::new(router);
        let stopped = http_stopped.clone();
        tasks.push(match listener {
            Bound::Tcp(l) => tokio::spawn(nsq_http::serve(l, router, nsqd.clone(), stopped)),
            Bound::Unix(l) => tokio::spawn(nsq_http::serve_unix(l, router, nsqd.clone(), stopped)),
        });
    }
    if let Some((listener, addr, acceptor)) = https {
        nsq_daemon::logging::always_info(&format!("HTTPS: listening on {addr}"));
        tasks.push(tokio::spawn(nsq_http::serve_tls(
            listener,
            acceptor,
            Arc::new(crate::http_api::router()),
            nsqd.clone(),
            http_stopped,
        )));
    }
    tokio::spawn(nsqd.clone().scan_loop());
    tokio::spawn(nsqd.clone().persist_loop());
    tokio::spawn(nsqd.clone().sync_loop());
    if let Some(events) = nsqd.take_lookup_events() {
        tokio::spawn(crate::lookup::lookup_loop(nsqd.clone(), events));
    }
    if !nsqd.opts.statsd_address.is_empty() {
        // Awaited at exit so that a push under way finishes sending.
        tasks.push(tokio::spawn(crate::statsd::statsd_loop(nsqd.clone())));
    }

    signals.wait().await;

    nsqd.begin_exit();
    let _ = stop_http.send(true);
    for t in tasks {
        let _ = t.await;
    }
    if let Err(e) = nsqd.persist_metadata() {
        log::error!("{e}");
    }
    let closing = nsqd.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close_store()).await;
    log::info!("NSQ: bye");
    Ok(())
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    /// Handling SIGXFSZ (never awaited) keeps a file-size limit from killing the process:
    /// the write fails with EFBIG instead and is reported like a full disk.
    _xfsz: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("failed to install signal handler")?,
            int: signal(SignalKind::interrupt()).context("failed to install signal handler")?,
            _xfsz: signal(SignalKind::from_raw(libc::SIGXFSZ))
                .context("failed to install signal handler")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
