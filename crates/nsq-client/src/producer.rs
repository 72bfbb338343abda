//! A producer: one connection to one nsqd, opened on first use and reopened after failures;
//! commands are pipelined and their answers matched in order.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::conn::{self, Frame};
use crate::{Config, Error};

/// How many commands may wait for the connection task before callers wait too.
const QUEUE: usize = 1024;
/// Bytes gathered into one write at most (more commands wait for the next write).
const BATCH_BYTES: usize = 1024 * 1024;

type Reply = oneshot::Sender<Result<(), Error>>;

enum Op {
    /// Command bytes; `answered` is false for NOP, which nsqd does not answer.
    Cmd {
        data: Vec<u8>,
        answered: bool,
        reply: Reply,
    },
    /// Finish what was sent, then close.
    Stop(oneshot::Sender<()>),
}

struct Inner {
    conn: Mutex<Option<mpsc::Sender<Op>>>,
    stopped: AtomicBool,
}

/// A handle to one nsqd for publishing. Cheap to clone; clones share the connection.
///
/// ```no_run
/// # async fn run() -> Result<(), nsq_client::Error> {
/// let producer = nsq_client::Producer::new("127.0.0.1:4150", nsq_client::Config::new())?;
/// producer.publish("events", "hello").await?;
/// producer.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Producer {
    addr: String,
    config: Config,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("addr", &self.addr)
            .field("stopped", &self.inner.stopped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Producer {
    /// A producer for the nsqd at `addr` (`host:port`). Validates `config`; connects lazily.
    pub fn new(addr: &str, config: Config) -> Result<Producer, Error> {
        config.validate()?;
        Ok(Producer {
            addr: addr.to_string(),
            config,
            inner: Arc::new(Inner {
                conn: Mutex::new(None),
                stopped: AtomicBool::new(false),
            }),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connects if needed and sends NOP to check the connection.
    pub async fn ping(&self) -> Result<(), Error> {
        let mut data = Vec::new();
        conn::put_line(&mut data, "NOP");
        self.send(data, false).await
    }

    /// PUB one message; resolves when nsqd answered OK.
    pub async fn publish(&self, topic: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        let body = body.into();
        let mut data = Vec::with_capacity(topic.len() + body.len() + 16);
        conn::put_body_command(&mut data, &format!("PUB {topic}"), &body);
        self.send(data, true).await
    }

    /// MPUB several messages at once (all or none are accepted).
    pub async fn multi_publish(&self, topic: &str, bodies: Vec<Bytes>) -> Result<(), Error> {
        let mut data = Vec::new();
        conn::put_mpub(&mut data, topic, &bodies);
        self.send(data, true).await
    }

    /// DPUB one message to be delivered after `delay`.
    pub async fn deferred_publish(
        &self,
        topic: &str,
        delay: Duration,
        body: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let body = body.into();
        let mut data = Vec::with_capacity(topic.len() + body.len() + 32);
        conn::put_body_command(
            &mut data,
            &format!("DPUB {topic} {}", delay.as_millis()),
            &body,
        );
        self.send(data, true).await
    }

    /// Closes the connection once the commands already sent are answered. Later calls fail
    /// with [`Error::Stopped`].
    pub async fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        let tx = self.inner.conn.lock().await.take();
        if let Some(tx) = tx {
            let (done_tx, done_rx) = oneshot::channel();
            if tx.send(Op::Stop(done_tx)).await.is_ok() {
                let _ = done_rx.await;
            }
        }
    }

    /// The connection task's queue, connecting first when there is none or it has failed.
    async fn sender(&self) -> Result<mpsc::Sender<Op>, Error> {
        let mut guard = self.inner.conn.lock().await;
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(Error::Stopped);
        }
        if let Some(tx) = guard.as_ref().filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        *guard = None;
        let connected = conn::connect(&self.addr, &self.config).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(connected, rx, self.addr.clone()));
        *guard = Some(tx.clone());
        Ok(tx)
    }

    async fn send(&self, data: Vec<u8>, answered: bool) -> Result<(), Error> {
        let closed = || Error::Closed {
            addr: self.addr.clone(),
        };
        let (reply, rx) = oneshot::channel();
        let mut op = Op::Cmd {
            data,
            answered,
            reply,
        };
        // A connection that failed after it was picked is replaced once; nothing was sent on it.
        for attempt in 0..2 {
            let tx = self.sender().await?;
            match tx.send(op).await {
                Ok(()) => return rx.await.unwrap_or_else(|_| Err(closed())),
                Err(mpsc::error::SendError(back)) => {
                    if attempt == 1 {
                        break;
                    }
                    op = back;
                }
            }
        }
        Err(closed())
    }
}

/// Whether nsqd closes the connection after this error (all but the per-message failures).
fn is_fatal(e: &Error) -> bool {
    match e {
        Error::Server { code, .. } => !matches!(
            code.as_str(),
            "E_FIN_FAILED" | "E_REQ_FAILED" | "E_TOUCH_FAILED"
        ),
        _ => true,
    }
}

/// The connection task: writes queued commands in batches and answers their callers in order.
async fn run(connected: conn::Connected, mut rx: mpsc::Receiver<Op>, addr: String) {
    let conn::Connected {
        mut reader,
        mut writer,
        ..
    } = connected;
    let (ftx, mut frx) = mpsc::unbounded_channel();
    let reader_task = tokio::spawn(async move {
        loop {
            let f = reader.next_frame().await;
            let end = f.is_err();
            if ftx.send(f).is_err() || end {
                break;
            }
        }
    });

    let mut waiting: VecDeque<Reply> = VecDeque::new();
    let mut stoppers: Vec<oneshot::Sender<()>> = Vec::new();
    let mut stopping = false;
    let mut batch = Vec::new();
    let mut written: Vec<(bool, Reply)> = Vec::new();
    let failure: Option<Error> = loop {
        if stopping && waiting.is_empty() {
            break None;
        }
        tokio::select! {
            op = rx.recv(), if !stopping => {
                let mut next = match op {
                    Some(op) => Some(op),
                    // Every handle is gone: finish what was sent, then close.
                    None => { stopping = true; continue; }
                };
                while let Some(op) = next.take() {
                    match op {
                        Op::Cmd { data, answered, reply } => {
                            batch.extend_from_slice(&data);
                            written.push((answered, reply));
                        }
                        Op::Stop(done) => {
                            stoppers.push(done);
                            stopping = true;
                            break;
                        }
                    }
                    if batch.len() < BATCH_BYTES {
                        next = rx.try_recv().ok();
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let r = writer.write(&batch).await;
                batch.clear();
                match r {
                    Ok(()) => {
                        for (answered, reply) in written.drain(..) {
                            if answered {
                                waiting.push_back(reply);
                            } else {
                                let _ = reply.send(Ok(()));
                            }
                        }
                    }
                    Err(e) => {
                        for (_, reply) in written.drain(..) {
                            let _ = reply.send(Err(e.duplicate()));
                        }
                        break Some(e);
                    }
                }
            }
            f = frx.recv() => match f {
                Some(Ok(f)) if f.is_heartbeat() => {
                    let mut nop = Vec::new();
                    conn::put_line(&mut nop, "NOP");
                    if let Err(e) = writer.write(&nop).await {
                        break Some(e);
                    }
                }
                Some(Ok(Frame::Response(_))) => {
                    if let Some(reply) = waiting.pop_front() {
                        let _ = reply.send(Ok(()));
                    }
                }
                Some(Ok(Frame::Error(text))) => {
                    let e = conn::server_error(&addr, &text);
                    let fatal = is_fatal(&e);
                    if fatal {
                        // nsqd closes after this; the next call must not pick this connection.
                        rx.close();
                    }
                    match waiting.pop_front() {
                        Some(reply) => { let _ = reply.send(Err(e)); }
                        None => log::error!("{addr}: {e}"),
                    }
                    if fatal {
                        break Some(Error::Closed { addr: addr.clone() });
                    }
                }
                Some(Ok(Frame::Message(_))) => {
                    break Some(Error::Protocol {
                        addr: addr.clone(),
                        reason: "message frame on a producer connection".into(),
                    });
                }
                Some(Err(e)) => break Some(e),
                None => break Some(Error::Closed { addr: addr.clone() }),
            },
        }
    };
    if let Some(e) = &failure {
        log::error!("{addr}: producer connection failed: {e}");
        for reply in waiting.drain(..) {
            let _ = reply.send(Err(e.duplicate()));
        }
    }
    // Fail whatever is still queued rather than leaving its callers waiting.
    rx.close();
    while let Ok(op) = rx.try_recv() {
        match op {
            Op::Cmd { reply, .. } => {
                let _ = reply.send(Err(failure
                    .as_ref()
                    .map_or(Error::Stopped, Error::duplicate)));
            }
            Op::Stop(done) => stoppers.push(done),
        }
    }
    writer.shutdown().await;
    reader_task.abort();
    for done in stoppers {
        let _ = done.send(());
    }
}
