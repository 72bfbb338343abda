//! nsqlookupd's lifecycle: bind the listeners, serve until SIGINT or SIGTERM, then close the
//! listeners and every connection.
use std::io;
use std::sync::Arc;

use crate::lookupd::Lookupd;
use crate::options::Options;

/// Why nsqlookupd could not start; the binary logs it as FATAL and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to instantiate nsqlookupd - listen ({addr}) failed - {source}")]
    Listen { addr: String, source: io::Error },
    #[error("failed to install signal handler - {0}")]
    Signals(io::Error),
}

fn bind(addr: &str) -> Result<tokio::net::TcpListener, StartError> {
    let listen_error = |source| StartError::Listen {
        addr: addr.to_string(),
        source,
    };
    let std_listener = nsq_daemon::process::bind_tcp(addr).map_err(listen_error)?;
    tokio::net::TcpListener::from_std(std_listener).map_err(listen_error)
}

pub async fn run(opts: Options) -> Result<(), StartError> {
    // Before anything is announced: a signal sent right after the listen lines must still
    // trigger a clean shutdown.
    let signals = Signals::install()?;
    log::info!("{}", nsq_daemon::version_line("nsqlookupd"));

    let tcp = bind(&opts.tcp_address)?;
    let http = bind(&opts.http_address)?;
    let local = |l: &tokio::net::TcpListener, addr: &str| {
        l.local_addr().map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            source,
        })
    };
    let tcp_addr = local(&tcp, &opts.tcp_address)?;
    let http_addr = local(&http, &opts.http_address)?;
    let lookupd = Arc::new(Lookupd::new(opts, tcp_addr.port(), http_addr.port()));

    nsq_daemon::logging::always_info(&format!("TCP: listening on {tcp_addr}"));
    let tcp_task = tokio::spawn(crate::tcp::serve(lookupd.clone(), tcp));
    nsq_daemon::logging::always_info(&format!("HTTP: listening on {http_addr}"));
    let http_task = tokio::spawn(nsq_http::serve(
        http,
        Arc::new(crate::http_api::router()),
        lookupd.clone(),
        lookupd.shutdown_signal(),
    ));

    signals.wait().await;

    lookupd.begin_exit();
    let _ = tcp_task.await;
    let _ = http_task.await;
    log::info!("LOOKUP: bye");
    Ok(())
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, StartError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(StartError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(StartError::Signals)?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
