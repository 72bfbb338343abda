//! nsqadmin's lifecycle: build the client, bind the listener, serve and sample until SIGINT or
//! SIGTERM.
use std::io;
use std::sync::Arc;

use crate::admin::Admin;
use crate::cluster::Cluster;
use crate::history::History;
use crate::notify::Notifier;
use crate::options::Options;
use crate::upstream::{Client, ClientSetupError, TlsSettings};

/// Why nsqadmin could not start; the binary logs it as FATAL and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to instantiate nsqadmin - {0}")]
    Invalid(#[from] crate::options::InvalidOptions),
    #[error("failed to instantiate nsqadmin - {0}")]
    Client(#[from] ClientSetupError),
    #[error("failed to instantiate nsqadmin - listen ({addr}) failed - {source}")]
    Listen { addr: String, source: io::Error },
    #[error("failed to install signal handler - {0}")]
    Signals(io::Error),
}

/// A running nsqadmin, for tests and the binary.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub admin: Arc<Admin>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Validates the options, binds and starts serving and sampling.
pub async fn start(opts: Options) -> Result<Running, StartError> {
    opts.validate()?;
    let client = Arc::new(Client::new(
        opts.http_client_connect_timeout,
        opts.http_client_request_timeout,
        &TlsSettings {
            insecure_skip_verify: opts.http_client_tls_insecure_skip_verify,
            root_ca_file: opts.http_client_tls_root_ca_file.clone(),
            cert: opts.http_client_tls_cert.clone(),
            key: opts.http_client_tls_key.clone(),
        },
    )?);
    log::info!("{}", nsq_daemon::version_line("nsqadmin"));
    let listen_error = |source| StartError::Listen {
        addr: opts.http_address.clone(),
        source,
    };
    let std_listener = nsq_daemon::process::bind_tcp(&opts.http_address).map_err(listen_error)?;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;

    let notifier = (!opts.notification_http_endpoint.is_empty())
        .then(|| Notifier::start(opts.notification_http_endpoint.clone(), Arc::clone(&client)));
    let history = Arc::new(History::new(opts.history_interval, opts.history_retention));
    let router = Arc::new(crate::api::router_for(&opts));
    let admin = Arc::new(Admin::new(
        opts,
        Cluster::new(Arc::clone(&client)),
        Arc::clone(&history),
        notifier,
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    nsq_daemon::logging::always_info(&format!("HTTP: listening on {addr}"));
    let mut tasks = vec![tokio::spawn(nsq_http::serve(
        listener,
        router,
        Arc::clone(&admin),
        stopped,
    ))];
    if history.enabled() {
        tasks.push(tokio::spawn(sample_loop(Arc::clone(&admin))));
    }
    Ok(Running {
        addr,
        admin,
        stop,
        tasks,
    })
}

/// Samples the whole cluster into the history every interval. A failed round is logged and
/// skipped; charts show the gap.
async fn sample_loop(admin: Arc<Admin>) {
    let interval = admin.opts().history_interval;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let opts = admin.opts();
        let producers = match admin
            .cluster
            .producers(&opts.lookupd_http_addresses, &opts.nsqd_http_addresses)
            .await
        {
            Ok(p) => p.value,
            Err(e) => {
                log::debug!("HISTORY: no sample - {e}");
                continue;
            }
        };
        match admin.cluster.nsqd_stats(&producers, "", "", false).await {
            Ok(stats) => {
                let snapshot = crate::history::snapshot_of(&stats.value);
                admin
                    .history
                    .record(crate::cluster::unix_now_ms(), &snapshot);
            }
            Err(e) => log::debug!("HISTORY: no sample - {e}"),
        }
    }
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(opts: Options) -> Result<(), StartError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;
    let running = start(opts).await?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    running.stop().await;
    log::info!("NSQADMIN: bye");
    Ok(())
}
