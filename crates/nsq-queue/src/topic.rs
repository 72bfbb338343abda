//! A topic's queue: its log, which part of it has been released to channels, and each channel's
//! cursor into it.
//!
//! Messages below `released` belong to the channels; messages from `released` to the log's tail
//! are still held by the topic (it has no channels, or it is paused). A channel created while
//! the topic has others starts at `released` (it sees only later messages); the first channel of
//! a topic starts at the oldest retained message, so it receives the backlog, as in NSQ.
use nsq_protocol::Message;

use crate::log::{MemoryLog, MessageLog, QueueError};

/// Identifies a channel's cursor within its topic.
pub type ChannelKey = u64;

#[derive(Debug, Clone)]
struct Cursor {
    key: ChannelKey,
    pos: u64,
    /// Memory-only channels never hold more than `bound` messages of backlog.
    bound: Option<u64>,
    /// Messages this channel has received from the topic.
    received: u64,
    /// The log must keep records from here on for this channel (its last durable checkpoint);
    /// `None`: from its cursor.
    retain: Option<u64>,
}

/// A deferred publish waiting for the topic to hand it to its channels.
#[derive(Debug, Clone)]
pub struct PendingDeferred {
    pub msg: Message,
    pub defer_ms: i64,
}

pub struct TopicState {
    log: Box<dyn MessageLog>,
    released: u64,
    paused: bool,
    /// Held back internally (a new topic waiting for its channels to be pre-created); unlike
    /// `paused` it is never reported or persisted.
    hold: bool,
    cursors: Vec<Cursor>,
    pending_deferred: Vec<PendingDeferred>,
    /// Ranges of released sequence numbers that channels jump over: messages the topic held
    /// when it was emptied while paused. Sequence numbers are never reused, so emptying marks
    /// rather than cuts.
    skips: Vec<(u64, u64)>,
    /// Bound on the held backlog of a memory-only (ephemeral) topic.
    bound: Option<u64>,
    /// Nothing at or beyond this position is released (`None`: no limit). A durable topic
    /// releases only what its store has written, so a message whose publish failed is never
    /// delivered.
    release_cap: Option<u64>,
    message_count: u64,
    message_bytes: u64,
}

impl std::fmt::Debug for TopicState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicState")
            .field("head", &self.log.head())
            .field("tail", &self.log.tail())
            .field("released", &self.released)
            .field("paused", &self.paused)
            .field("cursors", &self.cursors)
            .finish()
    }
}

impl TopicState {
    /// A topic over `log`. `bound` limits the held backlog (ephemeral topics: overflow is
    /// dropped, as NSQ drops what does not fit in memory).
    pub fn new(log: Box<dyn MessageLog>, bound: Option<u64>) -> TopicState {
        let released = log.head();
        TopicState {
            log,
            released,
            paused: false,
            hold: false,
            cursors: Vec::new(),
            pending_deferred: Vec::new(),
            skips: Vec::new(),
            bound,
            release_cap: None,
            message_count: 0,
            message_bytes: 0,
        }
    }

    /// Releases only positions below what [`TopicState::release_to`] allows from now on.
    pub fn cap_release(&mut self) {
        self.release_cap = Some(self.log.tail());
    }

    /// Allows releasing up to `upto` (what the store has written). `dropped` lists position
    /// ranges whose write failed: channels skip them. Returns `true` when channels can now see
    /// new messages (wake them).
    pub fn release_to(&mut self, upto: u64, dropped: &[(u64, u64)]) -> bool {
        let mut added = false;
        for &(a, b) in dropped {
            let a = a.max(self.released);
            if a < b && !self.skips.iter().any(|&(x, y)| x <= a && b <= y) {
                self.skips.push((a, b));
                added = true;
            }
        }
        if added {
            self.skips.sort_unstable();
        }
        if let Some(cap) = self.release_cap.as_mut() {
            *cap = (*cap).max(upto);
        }
        self.release()
    }

    pub fn in_memory(bound: Option<u64>) -> TopicState {
        TopicState::new(Box::new(MemoryLog::new()), bound)
    }

    /// Appends a batch; returns `true` when channels can now see new messages (wake them).
    pub fn publish(&mut self, msgs: Vec<Message>) -> Result<bool, QueueError> {
        let count = msgs.len() as u64;
        let bytes: u64 = msgs.iter().map(|m| m.body.len() as u64).sum();
        let mut msgs = msgs.into_iter();
        if let (Some(bound), true) = (self.bound, self.holding()) {
            let room = bound.saturating_sub(self.held());
            self.log.append(&mut msgs.by_ref().take(room as usize))?;
        } else {
            self.log.append(&mut msgs)?;
        }
        self.message_count += count;
        self.message_bytes += bytes;
        Ok(self.release())
    }

    /// Counts a deferred publish that goes straight to the channels.
    pub fn count_deferred_publish(&mut self, msg: &Message) {
        self.message_count += 1;
        self.message_bytes += msg.body.len() as u64;
    }

    /// Holds a deferred publish until the topic can hand it to its channels.
    pub fn hold_deferred(&mut self, msg: Message, defer_ms: i64) {
        self.count_deferred_publish(&msg);
        self.pending_deferred
            .push(PendingDeferred { msg, defer_ms });
    }

    /// Forgets a held deferred publish (its publish failed). Returns whether it was held.
    pub fn cancel_held_deferred(&mut self, id: &nsq_protocol::MessageId) -> bool {
        let before = self.pending_deferred.len();
        self.pending_deferred.retain(|p| &p.msg.id != id);
        before != self.pending_deferred.len()
    }

    /// Deferred publishes the topic holds (it has no channels, or is paused).
    pub fn pending_deferred(&self) -> &[PendingDeferred] {
        &self.pending_deferred
    }

    /// Whether new messages stay in the topic instead of going to channels.
    pub fn holding(&self) -> bool {
        self.paused || self.hold || self.cursors.is_empty()
    }

    /// Holds or releases the topic without pausing it; returns `true` if releasing handed
    /// messages to channels.
    pub fn set_hold(&mut self, hold: bool) -> bool {
        self.hold = hold;
        self.release()
    }

    /// Deferred publishes that can now go to the channels (none while holding).
    pub fn take_pending_deferred(&mut self) -> Vec<PendingDeferred> {
        if self.holding() {
            return Vec::new();
        }
        std::mem::take(&mut self.pending_deferred)
    }

    fn release(&mut self) -> bool {
        if self.holding() {
            return false;
        }
        let tail = self
            .release_cap
            .map_or(self.log.tail(), |c| c.min(self.log.tail()));
        if tail <= self.released {
            return false;
        }
        let n = (tail - self.released) - self.skipped_within(self.released, tail);
        for c in &mut self.cursors {
            c.received += n;
        }
        self.released = tail;
        self.enforce_bounds();
        true
    }

    fn enforce_bounds(&mut self) {
        let released = self.released;
        let mut moved = false;
        for c in &mut self.cursors {
            if let Some(bound) = c.bound {
                if released - c.pos > bound {
                    c.pos = released - bound;
                    moved = true;
                }
            }
        }
        if moved {
            self.trim();
        }
    }

    fn trim(&mut self) {
        let min = self
            .cursors
            .iter()
            .map(|c| c.retain.map_or(c.pos, |r| r.min(c.pos)))
            .min()
            .unwrap_or(self.released)
            .min(self.released);
        if min > self.log.head() {
            self.log.trim_to(min);
        }
        self.skips.retain(|&(_, end)| end > min);
    }

    /// Sequence numbers of `from..to` that fall inside skip ranges.
    fn skipped_within(&self, from: u64, to: u64) -> u64 {
        self.skips
            .iter()
            .map(|&(a, b)| b.min(to).saturating_sub(a.max(from)))
            .sum()
    }

    /// Messages held by the topic (not released, not emptied).
    fn held(&self) -> u64 {
        let tail = self.log.tail();
        (tail - self.released) - self.skipped_within(self.released, tail)
    }

    /// Where a channel added now would start: the oldest retained message for the first
    /// channel (it inherits the backlog), otherwise what has been released. Never decreases.
    pub fn next_channel_pos(&self) -> u64 {
        if self.cursors.is_empty() {
            self.log.head()
        } else {
            self.released
        }
    }

    /// Adds a channel cursor; returns `true` if messages were released to the channels.
    pub fn add_channel(&mut self, key: ChannelKey, bound: Option<u64>) -> bool {
        let pos = self.next_channel_pos();
        self.cursors.push(Cursor {
            key,
            pos,
            bound,
            received: 0,
            retain: None,
        });
        if self.cursors.len() == 1 {
            // The first channel inherits what the topic held.
            self.released = pos;
        }
        self.release()
    }

    /// Re-creates a channel's cursor at a recovered position (start-up only; call
    /// [`TopicState::finish_restore`] once every channel is back). The log keeps records from
    /// `retain` (at most `pos`) for the channel's durable state.
    pub fn restore_channel(&mut self, key: ChannelKey, bound: Option<u64>, pos: u64, retain: u64) {
        let pos = pos.clamp(self.log.head(), self.log.tail());
        self.cursors.push(Cursor {
            key,
            pos,
            bound,
            received: 0,
            retain: Some(retain.min(pos)),
        });
    }

    /// Decides what the topic still holds after recovery: everything when it has no channels;
    /// beyond the furthest channel when paused; nothing otherwise.
    ///
    /// `released`: what the topic had handed to its channels before the restart, if known
    /// (it matters only while paused).
    pub fn finish_restore(&mut self, paused: bool, released: Option<u64>) {
        self.paused = paused;
        self.released = if self.cursors.is_empty() {
            self.log.head()
        } else if paused {
            let furthest = self
                .cursors
                .iter()
                .map(|c| c.pos)
                .max()
                .unwrap_or(self.log.head());
            released.map_or(furthest, |r| r.clamp(furthest, self.log.tail()))
        } else {
            self.log.tail()
        };
        // Everything recovered is on disk.
        if let Some(cap) = self.release_cap.as_mut() {
            *cap = (*cap).max(self.log.tail());
        }
    }

    /// Ranges of released positions that channels skip (emptied while paused).
    pub fn skips(&self) -> &[(u64, u64)] {
        &self.skips
    }

    /// Brings back skip ranges recorded before a restart (start-up only).
    pub fn restore_skips(&mut self, skips: &[(u64, u64)]) {
        let head = self.log.head();
        self.skips = skips
            .iter()
            .copied()
            .filter(|&(a, b)| a < b && b > head)
            .collect();
        self.skips.sort_unstable();
    }

    /// The oldest position the log still holds.
    pub fn head(&self) -> u64 {
        self.log.head()
    }

    /// The log position up to which messages belong to the channels: everything below it has
    /// been handed to them (or dropped by emptying the topic), nothing from it on yet.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// The log position the next published message will get.
    pub fn tail(&self) -> u64 {
        self.log.tail()
    }

    /// The channel's cursor: the next log position it will read.
    pub fn channel_pos(&self, key: ChannelKey) -> Option<u64> {
        self.cursor(key).map(|c| c.pos)
    }

    /// Records that the channel's durable state no longer needs log records below `seq`.
    pub fn set_retain(&mut self, key: ChannelKey, seq: u64) {
        if let Some(c) = self.cursors.iter_mut().find(|c| c.key == key) {
            c.retain = Some(seq);
        }
        self.trim();
    }

    /// The log itself (start-up recovery reads through it).
    pub fn log_mut(&mut self) -> &mut dyn MessageLog {
        self.log.as_mut()
    }

    pub fn remove_channel(&mut self, key: ChannelKey) {
        self.cursors.retain(|c| c.key != key);
        self.trim();
    }

    pub fn channel_count(&self) -> usize {
        self.cursors.len()
    }

    fn cursor(&self, key: ChannelKey) -> Option<&Cursor> {
        self.cursors.iter().find(|c| c.key == key)
    }

    /// Moves up to `max` of the channel's next messages into `out`.
    pub fn read(&mut self, key: ChannelKey, max: usize, out: &mut Vec<Message>) -> usize {
        self.read_bounded(key, max, usize::MAX, out)
    }

    /// Like [`TopicState::read`], stopping once the bodies read reach `max_bytes` (at least one
    /// message is read), so a batch of large messages stays bounded in memory.
    pub fn read_bounded(
        &mut self,
        key: ChannelKey,
        max: usize,
        max_bytes: usize,
        out: &mut Vec<Message>,
    ) -> usize {
        self.read_below(key, u64::MAX, max, max_bytes, out)
            .unwrap_or(0)
    }

    /// Like [`TopicState::read_bounded`], reading only log positions below `end`. Returns
    /// `None` when the cursor could not move: the channel has nothing below `end` left to read
    /// (or the log cannot give it). `Some(0)` means the cursor only passed emptied or damaged
    /// positions.
    pub fn read_below(
        &mut self,
        key: ChannelKey,
        end: u64,
        max: usize,
        max_bytes: usize,
        out: &mut Vec<Message>,
    ) -> Option<usize> {
        let released = self.released;
        let end = end.min(released);
        let idx = self.cursors.iter().position(|c| c.key == key)?;
        let from = self.cursors[idx].pos;
        let was_min_candidate = from == self.log.head();
        let start = out.len();
        let mut pos = from;
        let mut bytes = 0usize;
        'ranges: while out.len() - start < max && bytes < max_bytes {
            // Emptied ranges hold no messages: the cursor jumps them, and a batch continues
            // after them rather than coming up short while messages are ready.
            for &(a, b) in &self.skips {
                if pos >= a && pos < b && pos < end {
                    pos = b.min(released);
                }
            }
            let mut limit = end;
            for &(a, _) in &self.skips {
                if a >= pos && a < limit {
                    limit = a;
                }
            }
            if pos >= limit {
                break;
            }
            // A disk log may return fewer messages than their sequence numbers span (damaged
            // records are skipped), so the cursor moves by what was consumed, not by the count.
            while pos < limit && out.len() - start < max && bytes < max_bytes {
                let left = (max - (out.len() - start)).min((limit - pos) as usize);
                // Read in chunks sized by the bodies seen so far, so the byte budget is kept
                // without one read per message.
                let chunk = if max_bytes == usize::MAX {
                    left
                } else {
                    let got = out.len() - start;
                    let avg = bytes.checked_div(got).unwrap_or(0);
                    let fit = (max_bytes - bytes) / avg.max(1);
                    left.min(fit.clamp(1, if got == 0 { 16 } else { 1024 }))
                };
                let before = out.len();
                let next = self.log.read(pos, chunk, out).min(limit);
                bytes += out[before..].iter().map(|m| m.body.len()).sum::<usize>();
                if next <= pos {
                    break 'ranges;
                }
                pos = next;
            }
        }
        self.cursors[idx].pos = pos;
        if was_min_candidate && pos != from {
            self.trim();
        }
        (pos != from).then_some(out.len() - start)
    }

    /// Messages released to the channel and not yet read by it.
    pub fn channel_backlog(&self, key: ChannelKey) -> u64 {
        self.cursor(key)
            .map(|c| (self.released - c.pos) - self.skipped_within(c.pos, self.released))
            .unwrap_or(0)
    }

    pub fn channel_received(&self, key: ChannelKey) -> u64 {
        self.cursor(key).map(|c| c.received).unwrap_or(0)
    }

    /// Counts a message handed to the channel outside the log (a deferred publish).
    pub fn count_received(&mut self, key: ChannelKey) {
        if let Some(c) = self.cursors.iter_mut().find(|c| c.key == key) {
            c.received += 1;
        }
    }

    /// Drops the channel's unread backlog.
    pub fn skip_channel_backlog(&mut self, key: ChannelKey) {
        let released = self.released;
        if let Some(c) = self.cursors.iter_mut().find(|c| c.key == key) {
            c.pos = released;
        }
        self.trim();
    }

    /// Messages the topic itself holds (not yet released to channels).
    pub fn depth(&self) -> u64 {
        self.held() + self.pending_deferred.len() as u64
    }

    /// Drops what the topic holds; channels keep what they already have.
    pub fn empty(&mut self) {
        self.pending_deferred.clear();
        let tail = self.log.tail();
        if self.cursors.is_empty() {
            self.released = tail;
            self.log.trim_to(tail);
        } else if tail > self.released {
            // Ranges stay disjoint (counts of skipped messages add them up): one that already
            // reaches the held part grows to the tail instead of being overlapped by a new one.
            match self.skips.last_mut() {
                Some(last) if last.1 >= self.released => last.1 = tail,
                _ => self.skips.push((self.released, tail)),
            }
        }
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Pauses or unpauses; returns `true` if unpausing released messages.
    pub fn set_paused(&mut self, paused: bool) -> bool {
        self.paused = paused;
        self.release()
    }

    pub fn message_count(&self) -> u64 {
        self.message_count
    }

    pub fn message_bytes(&self) -> u64 {
        self.message_bytes
    }

    /// Everything the topic holds, for persisting at shutdown.
    pub fn held_messages(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        let tail = self.log.tail();
        self.log
            .read(self.released, (tail - self.released) as usize, &mut out);
        out.extend(self.pending_deferred.iter().map(|p| p.msg.clone()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use nsq_protocol::MessageId;

    fn msgs(range: std::ops::Range<u64>) -> Vec<Message> {
        range
            .map(|i| {
                Message::new(
                    MessageId::from_guid(i),
                    i as i64,
                    Bytes::from(vec![b'x'; 3]),
                )
            })
            .collect()
    }

    fn ids(v: &[Message]) -> Vec<i64> {
        v.iter().map(|m| m.timestamp).collect()
    }

    #[test]
    fn topic_without_channels_holds_then_first_channel_gets_backlog() {
        let mut t = TopicState::in_memory(None);
        assert!(!t.publish(msgs(0..3)).unwrap());
        assert_eq!(t.depth(), 3);
        assert!(t.add_channel(1, None));
        assert_eq!(t.depth(), 0);
        assert_eq!(t.channel_backlog(1), 3);
        assert_eq!(t.channel_received(1), 3);
        // A second channel sees only later messages.
        assert!(!t.add_channel(2, None));
        assert_eq!(t.channel_backlog(2), 0);
        assert!(t.publish(msgs(3..5)).unwrap());
        let mut out = Vec::new();
        t.read(1, 10, &mut out);
        assert_eq!(ids(&out), vec![0, 1, 2, 3, 4]);
        out.clear();
        t.read(2, 10, &mut out);
        assert_eq!(ids(&out), vec![3, 4]);
        assert_eq!((t.message_count(), t.message_bytes()), (5, 15));
    }

    #[test]
    fn log_is_trimmed_when_every_channel_has_read() {
        let mut t = TopicState::in_memory(None);
        t.add_channel(1, None);
        t.add_channel(2, None);
        t.publish(msgs(0..4)).unwrap();
        let mut out = Vec::new();
        t.read(1, 4, &mut out);
        assert_eq!(t.log.head(), 0);
        t.read(2, 2, &mut out);
        assert_eq!(t.log.head(), 2);
        t.remove_channel(2);
        assert_eq!(t.log.head(), 4);
    }

    #[test]
    fn capped_release_waits_for_the_store_and_skips_dropped_writes() {
        let mut t = TopicState::in_memory(None);
        t.cap_release();
        t.add_channel(1, None);
        assert!(
            !t.publish(msgs(0..3)).unwrap(),
            "nothing released before it is written"
        );
        assert_eq!(t.channel_backlog(1), 0);
        assert!(t.release_to(3, &[]));
        t.publish(msgs(3..5)).unwrap();
        t.publish(msgs(5..6)).unwrap();
        // The write of 3..5 failed and was dropped; 5 was written after it.
        assert!(t.release_to(6, &[(3, 5)]));
        assert_eq!(t.channel_backlog(1), 4);
        assert_eq!(t.channel_received(1), 4);
        let mut out = Vec::new();
        while t.read(1, 2, &mut out) > 0 {}
        assert_eq!(ids(&out), vec![0, 1, 2, 5]);
        // Reporting the same range again changes nothing.
        assert!(!t.release_to(6, &[(3, 5)]));
    }

    #[test]
    fn pause_holds_and_empty_drops_held() {
        let mut t = TopicState::in_memory(None);
        t.add_channel(1, None);
        t.set_paused(true);
        t.publish(msgs(0..2)).unwrap();
        assert_eq!((t.depth(), t.channel_backlog(1)), (2, 0));
        t.empty();
        assert_eq!(t.depth(), 0);
        t.publish(msgs(2..3)).unwrap();
        assert!(t.set_paused(false));
        let mut out = Vec::new();
        t.read(1, 10, &mut out);
        assert_eq!(ids(&out), vec![2]);
    }

    #[test]
    fn emptied_while_paused_is_skipped_by_lagging_and_fresh_readers() {
        let mut t = TopicState::in_memory(None);
        t.add_channel(1, None);
        t.publish(msgs(0..2)).unwrap();
        t.set_paused(true);
        t.publish(msgs(2..4)).unwrap();
        t.empty();
        t.publish(msgs(4..5)).unwrap();
        t.empty();
        t.publish(msgs(5..6)).unwrap();
        assert_eq!(t.depth(), 1);
        t.set_paused(false);
        assert_eq!(t.channel_backlog(1), 3);
        let mut out = Vec::new();
        while t.read(1, 1, &mut out) > 0 {}
        assert_eq!(t.read(1, 1, &mut out), 0);
        assert_eq!(ids(&out), vec![0, 1, 5]);
        assert_eq!(t.channel_backlog(1), 0);
    }

    #[test]
    fn held_topic_gives_every_channel_the_backlog_on_release() {
        let mut t = TopicState::in_memory(None);
        t.set_hold(true);
        t.publish(msgs(0..2)).unwrap();
        t.add_channel(1, None);
        t.add_channel(2, None);
        assert_eq!(t.channel_backlog(1), 0);
        assert!(t.set_hold(false));
        assert_eq!((t.channel_backlog(1), t.channel_backlog(2)), (2, 2));
        assert!(!t.paused());
    }

    #[test]
    fn bounded_channel_drops_oldest_backlog() {
        let mut t = TopicState::in_memory(None);
        t.add_channel(1, Some(2));
        t.add_channel(2, None);
        t.publish(msgs(0..5)).unwrap();
        assert_eq!(t.channel_backlog(1), 2);
        assert_eq!(t.channel_backlog(2), 5);
        let mut out = Vec::new();
        t.read(1, 10, &mut out);
        assert_eq!(ids(&out), vec![3, 4]);
    }

    #[test]
    fn bounded_topic_drops_overflow_while_holding() {
        let mut t = TopicState::in_memory(Some(2));
        t.publish(msgs(0..5)).unwrap();
        assert_eq!(t.depth(), 2);
        assert_eq!(t.message_count(), 5);
    }

    #[test]
    fn deferred_publishes_wait_for_channels() {
        let mut t = TopicState::in_memory(None);
        let m = msgs(0..1).pop().unwrap();
        t.hold_deferred(m, 100);
        assert_eq!(t.depth(), 1);
        assert!(t.take_pending_deferred().is_empty());
        t.add_channel(1, None);
        assert_eq!(t.take_pending_deferred().len(), 1);
        assert_eq!(t.depth(), 0);
    }

    #[test]
    fn emptying_a_paused_topic_again_drops_nothing_twice() {
        let mut t = TopicState::in_memory(None);
        t.add_channel(1, None);
        t.set_paused(true);
        t.publish(msgs(0..1)).unwrap();
        t.empty();
        t.set_paused(false);
        t.set_paused(true);
        t.publish(msgs(1..2)).unwrap();
        t.empty();
        t.empty();
        assert_eq!(t.depth(), 0);
        t.publish(msgs(2..3)).unwrap();
        assert_eq!(t.depth(), 1);
        t.set_paused(false);
        assert_eq!(t.channel_backlog(1), 1);
        let mut out = Vec::new();
        t.read(1, 10, &mut out);
        assert_eq!(ids(&out), vec![2]);
    }

    #[test]
    fn one_read_continues_past_emptied_ranges() {
        let mut t = TopicState::in_memory(None);
        t.add_channel(1, None);
        t.publish(msgs(0..2)).unwrap();
        t.set_paused(true);
        t.publish(msgs(2..4)).unwrap();
        t.empty();
        t.set_paused(false);
        t.publish(msgs(4..6)).unwrap();
        let mut out = Vec::new();
        assert_eq!(t.read(1, 10, &mut out), 4);
        assert_eq!(ids(&out), vec![0, 1, 4, 5]);
        assert_eq!(t.channel_backlog(1), 0);
    }

    /// A log with one damaged record, which reads pass over.
    struct Damaged {
        inner: MemoryLog,
        bad: u64,
    }

    impl MessageLog for Damaged {
        fn append(&mut self, msgs: &mut dyn Iterator<Item = Message>) -> Result<(), QueueError> {
            self.inner.append(msgs)
        }
        fn read(&mut self, from: u64, max: usize, out: &mut Vec<Message>) -> u64 {
            let start = out.len();
            let next = self.inner.read(from, max, out);
            let bad = self.bad as i64;
            let mut i = start;
            while i < out.len() {
                if out[i].timestamp == bad {
                    out.remove(i);
                } else {
                    i += 1;
                }
            }
            next
        }
        fn head(&self) -> u64 {
            self.inner.head()
        }
        fn tail(&self) -> u64 {
            self.inner.tail()
        }
        fn trim_to(&mut self, seq: u64) {
            self.inner.trim_to(seq)
        }
    }

    /// Reads over a damaged record never reach past what was released (the held messages would
    /// be delivered now and again once released).
    #[test]
    fn damaged_records_do_not_carry_a_read_past_the_released_ones() {
        let log = Damaged {
            inner: MemoryLog::new(),
            bad: 1,
        };
        let mut t = TopicState::new(Box::new(log), None);
        t.add_channel(1, None);
        t.publish(msgs(0..20)).unwrap();
        t.set_paused(true);
        t.publish(msgs(20..25)).unwrap();
        let mut out = Vec::new();
        // A byte budget makes the read go in chunks, the first of 16 positions.
        t.read_bounded(1, 100, 1000, &mut out);
        let want: Vec<i64> = (0..20).filter(|&i| i != 1).collect();
        assert_eq!(ids(&out), want);
        t.set_paused(false);
        out.clear();
        t.read(1, 100, &mut out);
        assert_eq!(ids(&out), (20..25).collect::<Vec<_>>());
    }

    proptest::proptest! {
        /// Whatever the interleaving, each channel reads every released message exactly once,
        /// in order.
        #[test]
        fn channels_read_each_message_once(ops in proptest::collection::vec((0u8..4, 1usize..5), 1..60)) {
            let mut t = TopicState::in_memory(None);
            t.add_channel(1, None);
            t.add_channel(2, None);
            let mut next = 0u64;
            let mut seen: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
            for (op, n) in ops {
                match op {
                    0 | 1 => { t.publish(msgs(next..next + n as u64)).unwrap(); next += n as u64; }
                    2 => { let mut o = Vec::new(); t.read(1, n, &mut o); seen[0].extend(ids(&o)); }
                    _ => { let mut o = Vec::new(); t.read(2, n, &mut o); seen[1].extend(ids(&o)); }
                }
            }
            for (k, s) in [(1u64, 0usize), (2, 1)] {
                let mut o = Vec::new();
                t.read(k, usize::MAX, &mut o);
                seen[s].extend(ids(&o));
            }
            let want: Vec<i64> = (0..next as i64).collect();
            proptest::prop_assert_eq!(&seen[0], &want);
            proptest::prop_assert_eq!(&seen[1], &want);
            proptest::prop_assert_eq!(t.log.head(), t.log.tail());
        }
    }
}
