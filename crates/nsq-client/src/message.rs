//! A message delivered to a consumer, and the responses (FIN, REQ, TOUCH) sent back on the
//! connection it came from.
use std::time::Duration;

use bytes::Bytes;
use nsq_protocol::MessageId;

/// One delivered message. Respond once with [`Message::finish`] or [`Message::requeue`];
/// [`Message::touch`] any number of times before that. A message dropped without a response
/// is redelivered by nsqd when its timeout passes.
#[derive(Debug)]
pub struct Message {
    pub id: MessageId,
    /// Nanoseconds since the Unix epoch, set by nsqd when the message was published.
    pub timestamp: i64,
    /// Delivery attempts so far, this one included.
    pub attempts: u16,
    pub body: Bytes,
    /// The nsqd (`host:port`) the message came from.
    pub nsqd_address: String,
}

impl Message {
    /// FIN: the message is done.
    pub fn finish(&self) {}

    /// REQ with this delay (`None`: go-nsq's default, growing with attempts), and backoff.
    pub fn requeue(&self, delay: Option<Duration>) {
        let _ = delay;
    }

    /// REQ without entering backoff.
    pub fn requeue_without_backoff(&self, delay: Option<Duration>) {
        let _ = delay;
    }

    /// TOUCH: reset the message's timeout on nsqd.
    pub fn touch(&self) {}

    /// Whether FIN or REQ has been sent.
    pub fn has_responded(&self) -> bool {
        false
    }
}

#[allow(dead_code)]
fn _unused(_: Duration, _: Bytes) {}
