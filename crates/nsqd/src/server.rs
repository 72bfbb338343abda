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

    let tcp = bind(&opts.tcp_address)?;
    let tcp_addr = tcp.local_addr()?;
    let http = if opts.http_address.is_empty() {
        None
    } else {
        Some(bind(&opts.http_address)?)
    };
    let http_addr = match &http {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    if opts.broadcast_tcp_port == 0 {
        opts.broadcast_tcp_port = tcp_addr.port() as i64;
    }
    if opts.broadcast_http_port == 0 {
        opts.broadcast_http_port = http_addr.map(|a| a.port() as i64).unwrap_or(0);
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

    let nsqd = Arc::new(Nsqd::new(
        opts,
        data_path,
        tcp_addr.port() as i64,
        http_addr.map(|a| a.port() as i64).unwrap_or(0),
    ));
    nsqd.load_metadata().map_err(fatal)?;
    nsqd.persist_metadata().map_err(fatal)?;

    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    nsq_daemon::logging::always_info(&format!("TCP: listening on {tcp_addr}"));
    tasks.push(tokio::spawn(crate::tcp::serve(nsqd.clone(), tcp)));
    if let (Some(listener), Some(addr)) = (http, http_addr) {
        nsq_daemon::logging::always_info(&format!("HTTP: listening on {addr}"));
        let router = Arc::new(crate::http_api::router());
        tasks.push(tokio::spawn(nsq_http::serve(
            listener,
            router,
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
