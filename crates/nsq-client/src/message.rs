//! A message delivered to a consumer, and the responses (FIN, REQ, TOUCH) sent back on the
//! connection it came from.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nsq_protocol::MessageId;

use crate::consumer::ConnHandle;

/// One delivered message. Respond once with [`Message::finish`] or [`Message::requeue`];
/// [`Message::touch`] any number of times before that. A message dropped without a response
/// is redelivered by nsqd when its timeout passes.
///
/// ```no_run
/// # async fn run(consumer: nsq_client::Consumer) {
/// while let Some(msg) = consumer.recv().await {
///     if msg.body.is_empty() {
///         msg.requeue(None);
///     } else {
///         msg.finish();
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Message {
    pub id: MessageId,
    /// Nanoseconds since the Unix epoch, set by nsqd when the message was published.
    pub timestamp: i64,
    /// Delivery attempts so far, this one included.
    pub attempts: u16,
    pub body: Bytes,
    /// The nsqd (`host:port`) the message came from, shared by its connection's messages.
    pub nsqd_address: Arc<str>,
    responder: Arc<Responder>,
}

/// The response side of a message, shared so a handler wrapper can answer for a handler that
/// took the message and returned without answering.
#[derive(Debug)]
pub(crate) struct Responder {
    id: MessageId,
    attempts: u16,
    responded: AtomicBool,
    conn: Option<Arc<ConnHandle>>,
}

impl Responder {
    pub(crate) fn finish(&self) {
        if self.responded.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(c) = &self.conn {
            c.finish(&self.id);
        }
    }

    pub(crate) fn requeue(&self, delay: Option<Duration>, backoff: bool) {
        if self.responded.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(c) = &self.conn {
            c.requeue(&self.id, self.attempts, delay, backoff);
        }
    }

    pub(crate) fn has_responded(&self) -> bool {
        self.responded.load(Ordering::SeqCst)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        // nsqd times the message out and redelivers it; the connection only needs to stop
        // counting it, so a graceful close does not wait for it.
        if !self.responded.load(Ordering::SeqCst) {
            if let Some(c) = &self.conn {
                c.abandoned();
            }
        }
    }
}

impl Message {
    pub(crate) fn delivered(
        m: nsq_protocol::Message,
        nsqd_address: Arc<str>,
        conn: Arc<ConnHandle>,
    ) -> Message {
        Message {
            id: m.id,
            timestamp: m.timestamp,
            attempts: m.attempts,
            body: m.body,
            nsqd_address,
            responder: Arc::new(Responder {
                id: m.id,
                attempts: m.attempts,
                responded: AtomicBool::new(false),
                conn: Some(conn),
            }),
        }
    }

    pub(crate) fn responder(&self) -> Arc<Responder> {
        self.responder.clone()
    }

    /// FIN: the message is done.
    pub fn finish(&self) {
        self.responder.finish();
    }

    /// REQ with this delay (`None`: go-nsq's default, growing with attempts), and backoff.
    pub fn requeue(&self, delay: Option<Duration>) {
        self.responder.requeue(delay, true);
    }

    /// REQ without entering backoff.
    pub fn requeue_without_backoff(&self, delay: Option<Duration>) {
        self.responder.requeue(delay, false);
    }

    /// TOUCH: reset the message's timeout on nsqd.
    pub fn touch(&self) {
        if self.has_responded() {
            return;
        }
        if let Some(c) = &self.responder.conn {
            c.touch(&self.id);
        }
    }

    /// Whether FIN or REQ has been sent.
    pub fn has_responded(&self) -> bool {
        self.responder.has_responded()
    }
}
