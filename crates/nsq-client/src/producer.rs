//! A producer: one connection to one nsqd, opened on first use and reopened after failures;
//! commands are pipelined and their answers matched in order.
//!
//! Callers append their command's bytes to the connection's output buffer and their reply
//! slot to its queue under one short lock, so order on the wire and order of answers agree. A
//! writer task sends the whole buffer in one write whenever it is woken, and a reader task
//! answers callers as nsqd's responses arrive. Nothing is copied twice or sent through a
//! channel per command, and a busy producer makes one write per batch, not per message.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{BufMut, Bytes};
use tokio::sync::{oneshot, Notify};

use crate::conn::{self, Frame};
use crate::{Config, Error};

type Reply = oneshot::Sender<Result<(), Error>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What callers and the connection's two tasks share.
struct Link {
    addr: String,
    state: Mutex<LinkState>,
    /// Wakes the writer: there is output, or the link is stopping or failed.
    wake: Notify,
}

#[derive(Default)]
struct LinkState {
    /// Command bytes not yet written.
    out: Vec<u8>,
    /// One per answered command, written or not, in the order of their bytes.
    waiting: VecDeque<Reply>,
    /// Unanswered commands (NOP), resolved once written.
    after_write: Vec<Reply>,
    /// Set once; from then on callers must open a new link.
    failed: bool,
    stopping: bool,
    stoppers: Vec<oneshot::Sender<()>>,
}

impl Link {
    /// Fails every caller still waiting and marks the link unusable.
    fn fail(&self, e: &Error) {
        let (waiting, after) = {
            let mut st = lock(&self.state);
            if st.failed {
                return;
            }
            st.failed = true;
            st.out.clear();
            (
                std::mem::take(&mut st.waiting),
                std::mem::take(&mut st.after_write),
            )
        };
        for reply in waiting.into_iter().chain(after) {
            let _ = reply.send(Err(e.duplicate()));
        }
        self.wake.notify_one();
    }
}

struct Inner {
    link: Mutex<Option<Arc<Link>>>,
    /// Held while connecting, so concurrent callers open one connection, not several.
    connecting: tokio::sync::Mutex<()>,
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

fn put_name_line(out: &mut Vec<u8>, verb: &[u8], topic: &str) {
    out.extend_from_slice(verb);
    out.extend_from_slice(topic.as_bytes());
}

impl Producer {
    /// A producer for the nsqd at `addr` (`host:port`). Validates `config`; connects lazily.
    pub fn new(addr: &str, config: Config) -> Result<Producer, Error> {
        config.validate()?;
        Ok(Producer {
            addr: addr.to_string(),
            config,
            inner: Arc::new(Inner {
                link: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
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
        self.command(false, |out| out.extend_from_slice(b"NOP\n"))
            .await
    }

    /// PUB one message; resolves when nsqd answered OK.
    pub async fn publish(&self, topic: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        let body = body.into();
        self.command(true, |out| {
            put_name_line(out, b"PUB ", topic);
            out.push(b'\n');
            out.put_u32(body.len() as u32);
            out.extend_from_slice(&body);
        })
        .await
    }

    /// MPUB several messages at once (all or none are accepted).
    pub async fn multi_publish(&self, topic: &str, bodies: Vec<Bytes>) -> Result<(), Error> {
        self.command(true, |out| conn::put_mpub(out, topic, &bodies))
            .await
    }

    /// DPUB one message to be delivered after `delay`.
    pub async fn deferred_publish(
        &self,
        topic: &str,
        delay: Duration,
        body: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let body = body.into();
        let line = format!("DPUB {topic} {}", delay.as_millis());
        self.command(true, |out| conn::put_body_command(out, &line, &body))
            .await
    }

    /// Closes the connection once the commands already sent are answered. Later calls fail
    /// with [`Error::Stopped`].
    pub async fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        let link = lock(&self.inner.link).take();
        let Some(link) = link else { return };
        let (done_tx, done_rx) = oneshot::channel();
        {
            let mut st = lock(&link.state);
            if st.failed {
                return;
            }
            st.stopping = true;
            st.stoppers.push(done_tx);
        }
        link.wake.notify_one();
        let _ = done_rx.await;
    }

    /// The live link, connecting first when there is none or it has failed.
    async fn link(&self) -> Result<Arc<Link>, Error> {
        if let Some(l) = self.live_link()? {
            return Ok(l);
        }
        let _connecting = self.inner.connecting.lock().await;
        // Another caller may have connected while this one waited.
        if let Some(l) = self.live_link()? {
            return Ok(l);
        }
        let connected = conn::connect(&self.addr, &self.config).await?;
        let link = Arc::new(Link {
            addr: self.addr.clone(),
            state: Mutex::new(LinkState::default()),
            wake: Notify::new(),
        });
        let conn::Connected { reader, writer, .. } = connected;
        let reading = tokio::spawn(read_loop(link.clone(), reader));
        tokio::spawn(write_loop(link.clone(), writer, reading));
        if self.inner.stopped.load(Ordering::SeqCst) {
            link.fail(&Error::Stopped);
            return Err(Error::Stopped);
        }
        *lock(&self.inner.link) = Some(link.clone());
        Ok(link)
    }

    fn live_link(&self) -> Result<Option<Arc<Link>>, Error> {
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(Error::Stopped);
        }
        let guard = lock(&self.inner.link);
        Ok(guard
            .as_ref()
            .filter(|l| {
                let st = lock(&l.state);
                !st.failed && !st.stopping
            })
            .cloned())
    }

    /// Appends one command (written by `encode`) and waits for its answer, or for its write
    /// when nsqd does not answer it.
    async fn command(&self, answered: bool, encode: impl Fn(&mut Vec<u8>)) -> Result<(), Error> {
        // A link that failed after it was picked is replaced once; nothing was sent on it.
        for _ in 0..2 {
            let link = self.link().await?;
            let rx = {
                let mut st = lock(&link.state);
                if st.failed || st.stopping {
                    continue;
                }
                let was_idle = st.out.is_empty();
                encode(&mut st.out);
                let (tx, rx) = oneshot::channel();
                if answered {
                    st.waiting.push_back(tx);
                } else {
                    st.after_write.push(tx);
                }
                drop(st);
                if was_idle {
                    link.wake.notify_one();
                }
                rx
            };
            return rx.await.unwrap_or_else(|_| {
                Err(Error::Closed {
                    addr: self.addr.clone(),
                })
            });
        }
        Err(Error::Closed {
            addr: self.addr.clone(),
        })
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

/// Writes whatever callers appended, all of it in one write, until the link fails or has
/// stopped with every answer in.
async fn write_loop(
    link: Arc<Link>,
    mut writer: conn::FrameWriter<tokio::io::WriteHalf<conn::BoxIo>>,
    reading: tokio::task::JoinHandle<()>,
) {
    let mut batch = Vec::with_capacity(16 * 1024);
    let mut written: Vec<Reply> = Vec::new();
    loop {
        let stop_now = {
            let mut st = lock(&link.state);
            if st.failed {
                break;
            }
            std::mem::swap(&mut st.out, &mut batch);
            std::mem::swap(&mut st.after_write, &mut written);
            batch.is_empty() && st.stopping && st.waiting.is_empty()
        };
        if stop_now {
            break;
        }
        if batch.is_empty() {
            link.wake.notified().await;
            // Callers woken by the same read of answers are about to append their next
            // commands: letting them run first turns many small writes into one.
            tokio::task::yield_now().await;
            continue;
        }
        if let Err(e) = writer.write(&batch).await {
            log::error!("{}: producer connection failed: {e}", link.addr);
            for reply in written.drain(..) {
                let _ = reply.send(Err(e.duplicate()));
            }
            link.fail(&e);
            break;
        }
        batch.clear();
        for reply in written.drain(..) {
            let _ = reply.send(Ok(()));
        }
    }
    writer.shutdown().await;
    reading.abort();
    let stoppers = {
        let mut st = lock(&link.state);
        st.failed = true;
        std::mem::take(&mut st.stoppers)
    };
    link.fail(&Error::Stopped);
    for done in stoppers {
        let _ = done.send(());
    }
}

/// Reads nsqd's answers and hands each to the caller whose command it answers.
async fn read_loop(
    link: Arc<Link>,
    mut reader: conn::FrameReader<tokio::io::ReadHalf<conn::BoxIo>>,
) {
    let addr = link.addr.clone();
    let failure = loop {
        let frame = match reader.next_frame().await {
            Ok(f) => f,
            Err(e) => break e,
        };
        match frame {
            f if f.is_heartbeat() => {
                let mut st = lock(&link.state);
                let was_idle = st.out.is_empty();
                st.out.extend_from_slice(b"NOP\n");
                drop(st);
                if was_idle {
                    link.wake.notify_one();
                }
            }
            Frame::Response(body) => {
                let (reply, drained) = {
                    let mut st = lock(&link.state);
                    let reply = st.waiting.pop_front();
                    (reply, st.stopping && st.waiting.is_empty())
                };
                // PUB, MPUB and DPUB are answered `OK`; anything else is not an acknowledgement.
                let answer = if body.as_ref() == b"OK" {
                    Ok(())
                } else {
                    Err(Error::Protocol {
                        addr: addr.clone(),
                        reason: format!("unexpected response {:?}", String::from_utf8_lossy(&body)),
                    })
                };
                if let Some(reply) = reply {
                    let _ = reply.send(answer);
                }
                if drained {
                    link.wake.notify_one();
                }
            }
            Frame::Error(text) => {
                let e = conn::server_error(&addr, &text);
                let fatal = is_fatal(&e);
                let reply = lock(&link.state).waiting.pop_front();
                // nsqd closes after a fatal error: the link must be unusable before the caller
                // hears of it, so its next call opens a new connection.
                if fatal {
                    link.fail(&Error::Closed { addr: addr.clone() });
                }
                match reply {
                    Some(reply) => {
                        let _ = reply.send(Err(e));
                    }
                    None => log::error!("{addr}: {e}"),
                }
                if fatal {
                    break Error::Closed { addr: addr.clone() };
                }
            }
            Frame::Message(_) => {
                break Error::Protocol {
                    addr: addr.clone(),
                    reason: "message frame on a producer connection".into(),
                };
            }
        }
    };
    let quiet = {
        let st = lock(&link.state);
        st.failed || (st.stopping && st.waiting.is_empty())
    };
    if !quiet {
        log::error!("{addr}: producer connection failed: {failure}");
    }
    link.fail(&failure);
}
