//! One topic's loop: messages are written as they arrive and FINed only once synced; syncs
//! happen at the first message of each new file, every `--sync-interval`, when `--max-in-flight`
//! messages wait, when a connection is nearly out of RDY, and on SIGHUP (which also closes the
//! file) or shutdown (which closes and, with a work directory, moves it).
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::output::{FatalError, OutputFile};

/// A delivered message, as the loop needs it.
pub trait Delivery: Send + 'static {
    fn body(&self) -> &[u8];
    fn nsqd_address(&self) -> &str;
    fn finish(&self);
}

/// Where messages come from: a consumer, or a fake in tests.
pub trait Source: Send + Sync + 'static {
    type Msg: Delivery;
    /// The next message; `None` once stopped.
    fn recv(&self) -> impl Future<Output = Option<Self::Msg>> + Send;
    /// Begins a graceful stop; `recv` returns `None` once it is complete.
    fn stop(&self);
    /// Open connections, which share `max_in_flight` between them.
    fn connections(&self) -> usize;
}

/// Orders from the process to every topic's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGHUP: sync and close the file; the next message opens one again.
    Reopen,
    /// SIGINT/SIGTERM: stop consuming, then sync, close and exit.
    Stop,
}

/// Timing and batching.
#[derive(Debug, Clone, Copy)]
pub struct RouterSettings {
    pub sync_interval: Duration,
    pub max_in_flight: usize,
    pub skip_empty_files: bool,
}

/// Runs file work that blocks (writes, fsync, renames) without stalling other tasks where the
/// runtime allows it.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Whether some connection has nearly used its share of RDY with unsynced messages, as the Go
/// client judges starvation: at least 85% of `max_in_flight / connections`.
fn starved(pending: &HashMap<String, usize>, connections: usize, max_in_flight: usize) -> bool {
    if connections == 0 {
        return false;
    }
    let total = max_in_flight as f64;
    let per_conn = (total / connections as f64).max(1.0).min(total).floor();
    let threshold = (per_conn * 0.85) as usize;
    pending.values().any(|&n| n > 0 && n >= threshold)
}

/// Runs until the source stops. Returns an error only for failures NSQ treats as fatal.
pub async fn run<S: Source>(
    source: &S,
    file: &mut OutputFile,
    settings: RouterSettings,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> Result<(), FatalError> {
    let mut ticker = interval_at(
        Instant::now() + settings.sync_interval,
        settings.sync_interval,
    );
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pending: Vec<S::Msg> = Vec::with_capacity(settings.max_in_flight.min(4096));
    let mut pending_by_conn: HashMap<String, usize> = HashMap::new();
    let mut stopping = false;
    let mut control_open = true;

    loop {
        let mut sync = false;
        let mut close = false;
        let mut exit = false;
        tokio::select! {
            msg = source.recv() => match msg {
                None => {
                    sync = true;
                    close = true;
                    exit = true;
                }
                Some(m) => {
                    if file.needs_rotation() {
                        blocking(|| file.update_file())?;
                        // The first message of every file is made durable at once.
                        sync = true;
                    }
                    // Buffered: writes reach the file at a sync, or when a buffer fills.
                    file.write(m.body())?;
                    file.write(b"\n")?;
                    *pending_by_conn.entry(m.nsqd_address().to_string()).or_default() += 1;
                    pending.push(m);
                    if pending.len() >= settings.max_in_flight {
                        sync = true;
                    }
                }
            },
            ctl = control.recv(), if control_open => match ctl {
                Some(Control::Reopen) => {
                    sync = true;
                    close = true;
                }
                Some(Control::Stop) | None => {
                    control_open = ctl.is_some();
                    if !stopping {
                        stopping = true;
                        source.stop();
                    }
                    sync = true;
                }
            },
            _ = ticker.tick(), if !stopping => {
                blocking(|| -> Result<(), FatalError> {
                    if file.needs_rotation() {
                        if settings.skip_empty_files {
                            close = true;
                        } else {
                            file.update_file()?;
                        }
                    }
                    Ok(())
                })?;
                sync = true;
            }
        }

        // Once stopping, messages still arriving are synced at once so the connections can
        // drain and close.
        let due = sync
            || stopping
            || starved(
                &pending_by_conn,
                source.connections(),
                settings.max_in_flight,
            );
        if due && !pending.is_empty() {
            log::info!("{} syncing {} records to disk", file.tag(), pending.len());
            blocking(|| file.sync())?;
            for m in pending.drain(..) {
                m.finish();
            }
            pending_by_conn.clear();
        }
        if close {
            blocking(|| file.close())?;
        }
        if exit {
            return Ok(());
        }
    }
}
