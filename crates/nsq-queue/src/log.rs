//! The ordered message log behind a topic, addressed by sequence numbers.
use std::collections::VecDeque;

use nsq_protocol::Message;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The backing store refused the write (for instance a full disk). The text is what
    /// publishers see after `PUB failed `.
    #[error("{0}")]
    Write(String),
}

/// What a topic needs from its message storage.
///
/// Sequence numbers start at 0 and increase by one per appended message. Messages in
/// `head()..tail()` are retained; everything below `head()` is gone.
///
/// Promises: `append` either stores every message of the batch or none and reports the error;
/// a message read at sequence `s` is the one appended at `s`; `trim_to(s)` only forgets messages
/// below `s`. Sequence numbers are never reused. A read may return fewer messages than their
/// sequence numbers span (a disk log skips records it finds damaged), so it reports where to
/// continue.
pub trait MessageLog: Send {
    fn append(&mut self, msgs: &mut dyn Iterator<Item = Message>) -> Result<(), QueueError>;
    /// Appends clones of the messages with sequence numbers in `from..from+max` (clamped to the
    /// retained range) to `out`, and returns the sequence number to continue from: past
    /// everything read or skipped, never past `from + max`, and greater than `from` whenever
    /// `from < tail()` and `max > 0`, unless the data cannot be read at all (an I/O error).
    fn read(&mut self, from: u64, max: usize, out: &mut Vec<Message>) -> u64;
    fn head(&self) -> u64;
    fn tail(&self) -> u64;
    fn trim_to(&mut self, seq: u64);
    /// Moves an empty-ended log's tail forward to `seq` so those sequence numbers are never
    /// given to new messages (recovery, when channels remember positions the log lost).
    fn skip_to(&mut self, _seq: u64) {}
}

/// An in-memory log: a ring of messages that share their bodies with every reader.
#[derive(Debug, Default)]
pub struct MemoryLog {
    base: u64,
    msgs: VecDeque<Message>,
}

impl MemoryLog {
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }
}

impl MessageLog for MemoryLog {
    fn append(&mut self, msgs: &mut dyn Iterator<Item = Message>) -> Result<(), QueueError> {
        self.msgs.extend(msgs);
        Ok(())
    }

    fn read(&mut self, from: u64, max: usize, out: &mut Vec<Message>) -> u64 {
        let start = from.max(self.base);
        if start >= self.tail() {
            return from.max(self.tail());
        }
        let idx = (start - self.base) as usize;
        let end = (idx + max).min(self.msgs.len());
        out.extend(self.msgs.range(idx..end).cloned());
        self.base + end as u64
    }

    fn head(&self) -> u64 {
        self.base
    }

    fn tail(&self) -> u64 {
        self.base + self.msgs.len() as u64
    }

    fn trim_to(&mut self, seq: u64) {
        let n = seq.saturating_sub(self.base).min(self.msgs.len() as u64) as usize;
        self.msgs.drain(..n);
        self.base += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use nsq_protocol::MessageId;

    fn msg(i: u64) -> Message {
        Message::new(
            MessageId::from_guid(i),
            i as i64,
            Bytes::from(i.to_string()),
        )
    }

    #[test]
    fn append_read_trim() {
        let mut log = MemoryLog::new();
        log.append(&mut (0..10).map(msg)).unwrap();
        assert_eq!((log.head(), log.tail()), (0, 10));
        let mut out = Vec::new();
        assert_eq!(log.read(8, 5, &mut out), 10);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], msg(8));
        log.trim_to(4);
        assert_eq!(log.head(), 4);
        out.clear();
        assert_eq!(log.read(0, 1, &mut out), 5);
        assert_eq!(out[0], msg(4));
        log.append(&mut std::iter::once(msg(99))).unwrap();
        out.clear();
        log.read(10, 1, &mut out);
        assert_eq!(out[0], msg(99));
    }
}
