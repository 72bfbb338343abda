//! A channel's own message state: messages put back in its queue (requeues and timeouts),
//! messages in flight to consumers with their deadlines, and deferred messages with their due
//! times. Fresh messages come from the topic log through the channel's cursor.
//!
//! The channel's queue, as consumers see it, is one FIFO: a message put back joins it behind
//! everything the topic had already handed to the channel, as in NSQ, where it goes back into
//! the channel's queue after the messages buffered there. Put-back messages are kept apart from
//! the log, each with the log position (the topic's `released`) it must wait for.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use nsq_protocol::{Message, MessageId};

use crate::topic::{ChannelKey, TopicState};

/// A consumer connection, as the channel knows it.
pub type ClientId = u64;

type IdMap<V> = HashMap<MessageId, V, ahash::RandomState>;

#[derive(Debug, Clone)]
pub struct InFlight {
    pub msg: Message,
    pub client: ClientId,
    pub deadline: Instant,
    pub delivered_at: Instant,
}

/// Why FIN, REQ or TOUCH failed; the text is what follows `failed ` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    #[error("ID not in flight")]
    NotInFlight,
    #[error("client does not own message")]
    NotOwner,
    #[error("ID already deferred")]
    AlreadyDeferred,
}

/// What a scan for expired in-flight and due deferred messages did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Owners of timed-out messages, one entry per message.
    pub timed_out_owners: Vec<ClientId>,
    /// Deferred messages that became due.
    pub deferred_due: usize,
}

impl ScanOutcome {
    pub fn requeued(&self) -> usize {
        self.timed_out_owners.len() + self.deferred_due
    }
}

/// A message put back in the channel's queue, served once the channel's cursor has reached
/// `after` (every log message released to the channel before it was put back is delivered).
#[derive(Debug)]
struct Requeued {
    msg: Message,
    after: u64,
}

#[derive(Debug)]
pub struct ChannelState {
    key: ChannelKey,
    /// In the order they were put back, so their `after` positions never decrease (start-up
    /// restores, with 0, come first).
    requeued: VecDeque<Requeued>,
    in_flight: IdMap<InFlight>,
    /// Deadlines with lazy deletion: an entry is live only if the in-flight map still holds the
    /// ID with the same deadline. Rebuilt when stale entries dominate, so FINs do not make it
    /// grow without bound.
    deadlines: BinaryHeap<Reverse<(Instant, MessageId)>>,
    deferred: IdMap<(Message, Instant)>,
    due: BinaryHeap<Reverse<(Instant, MessageId)>>,
    paused: bool,
    requeue_count: u64,
    timeout_count: u64,
    /// IDs of the messages the last [`ChannelState::take`] served from the channel's own queue
    /// (redeliveries) rather than the topic log; they may be anywhere in its batch. Kept so
    /// that takes do not allocate.
    last_redelivered: Vec<MessageId>,
}

impl ChannelState {
    pub fn new(key: ChannelKey) -> ChannelState {
        ChannelState {
            key,
            requeued: VecDeque::new(),
            in_flight: IdMap::default(),
            deadlines: BinaryHeap::new(),
            deferred: IdMap::default(),
            due: BinaryHeap::new(),
            paused: false,
            requeue_count: 0,
            timeout_count: 0,
            last_redelivered: Vec::new(),
        }
    }

    pub fn key(&self) -> ChannelKey {
        self.key
    }

    /// Takes up to `max` messages for `client` in queue order: fresh ones from the topic log,
    /// with each put-back message once the log messages released before it are taken. Each is
    /// marked in flight (attempts counted) and appended to `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn take(
        &mut self,
        topic: &mut TopicState,
        client: ClientId,
        max: usize,
        max_bytes: usize,
        now: Instant,
        msg_timeout: Duration,
        out: &mut Vec<Message>,
    ) -> usize {
        self.last_redelivered.clear();
        if self.paused || max == 0 {
            return 0;
        }
        let start = out.len();
        if self.requeued.is_empty() {
            topic.read_bounded(self.key, max, max_bytes, out);
        } else {
            self.take_interleaved(topic, max, max_bytes, out);
        }
        let deadline = now + msg_timeout;
        for m in &mut out[start..] {
            m.attempts = m.attempts.wrapping_add(1);
            self.deadlines.push(Reverse((deadline, m.id)));
            // An ID already in flight keeps its entry; the message is still sent, as NSQ does.
            self.in_flight.entry(m.id).or_insert_with(|| InFlight {
                msg: m.clone(),
                client,
                deadline,
                delivered_at: now,
            });
        }
        self.compact_deadlines();
        out.len() - start
    }

    /// Merges the put-back queue with the log: before each put-back message, the log messages
    /// below its `after` position.
    fn take_interleaved(
        &mut self,
        topic: &mut TopicState,
        max: usize,
        max_bytes: usize,
        out: &mut Vec<Message>,
    ) {
        let start = out.len();
        let mut bytes = 0usize;
        // The log has nothing more for this channel below this position during this take, so
        // later put-back messages waiting for no more than it go out without asking it again.
        let mut drained_below = 0u64;
        while out.len() - start < max && bytes < max_bytes {
            let room = max - (out.len() - start);
            let Some(after) = self.requeued.front().map(|r| r.after) else {
                topic.read_bounded(self.key, room, max_bytes - bytes, out);
                return;
            };
            if after > drained_below {
                let before = out.len();
                // Emptied, damaged or unreadable ranges end this with `None`, so they never
                // hold the put-back message back.
                if topic
                    .read_below(self.key, after, room, max_bytes - bytes, out)
                    .is_some()
                {
                    bytes += out[before..].iter().map(|m| m.body.len()).sum::<usize>();
                    continue;
                }
                drained_below = after;
            }
            let Some(r) = self.requeued.pop_front() else {
                return;
            };
            bytes += r.msg.body.len();
            self.last_redelivered.push(r.msg.id);
            out.push(r.msg);
        }
    }

    fn compact_deadlines(&mut self) {
        if self.deadlines.len() > 2 * self.in_flight.len() + 1024 {
            self.deadlines = self
                .in_flight
                .iter()
                .map(|(id, f)| Reverse((f.deadline, *id)))
                .collect();
        }
    }

    fn owned(&self, client: ClientId, id: &MessageId) -> Result<(), MsgError> {
        match self.in_flight.get(id) {
            None => Err(MsgError::NotInFlight),
            Some(f) if f.client != client => Err(MsgError::NotOwner),
            Some(_) => Ok(()),
        }
    }

    /// FIN: the message is done.
    pub fn finish(&mut self, client: ClientId, id: &MessageId) -> Result<InFlight, MsgError> {
        // One hash lookup: this runs for every message consumed.
        match self.in_flight.entry(*id) {
            std::collections::hash_map::Entry::Occupied(e) if e.get().client == client => {
                Ok(e.remove())
            }
            std::collections::hash_map::Entry::Occupied(_) => Err(MsgError::NotOwner),
            std::collections::hash_map::Entry::Vacant(_) => Err(MsgError::NotInFlight),
        }
    }

    /// REQ: back into the queue now (`delay` zero) or after `delay`. `released` is the topic's
    /// [`TopicState::released`] now: a message put back now goes behind those. Returns `true`
    /// when the message is immediately available again (wake a consumer).
    pub fn requeue(
        &mut self,
        client: ClientId,
        id: &MessageId,
        delay: Duration,
        now: Instant,
        released: u64,
    ) -> Result<bool, MsgError> {
        self.owned(client, id)?;
        if !delay.is_zero() && self.deferred.contains_key(id) {
            return Err(MsgError::AlreadyDeferred);
        }
        let f = self.in_flight.remove(id).ok_or(MsgError::NotInFlight)?;
        self.requeue_count += 1;
        if delay.is_zero() {
            self.put_back(f.msg, released);
            Ok(true)
        } else {
            // A body is usually a slice of a large shared buffer (a read of the topic's log or
            // of a client's MPUB); held for the delay, it would keep that whole buffer alive.
            let mut msg = f.msg;
            msg.body = bytes::Bytes::copy_from_slice(&msg.body);
            self.defer(msg, now + delay);
            Ok(false)
        }
    }

    /// TOUCH: extends the deadline to `now + msg_timeout`, but never past delivery time plus
    /// `max_msg_timeout`.
    pub fn touch(
        &mut self,
        client: ClientId,
        id: &MessageId,
        now: Instant,
        msg_timeout: Duration,
        max_msg_timeout: Duration,
    ) -> Result<(), MsgError> {
        self.owned(client, id)?;
        let f = self.in_flight.get_mut(id).ok_or(MsgError::NotInFlight)?;
        let deadline = (now + msg_timeout).min(f.delivered_at + max_msg_timeout);
        f.deadline = deadline;
        self.deadlines.push(Reverse((deadline, *id)));
        self.compact_deadlines();
        Ok(())
    }

    /// Schedules a message to re-enter the queue at `due`.
    pub fn defer(&mut self, msg: Message, due: Instant) {
        let id = msg.id;
        if self.deferred.insert(id, (msg, due)).is_none() {
            self.due.push(Reverse((due, id)));
        }
    }

    /// Forgets a deferred message (its publish failed). Returns whether it was deferred here.
    pub fn cancel_deferred(&mut self, id: &MessageId) -> bool {
        // The due-heap entry is discarded when it comes up and finds nothing.
        self.deferred.remove(id).is_some()
    }

    /// How many messages the last take served from the channel's own queue.
    pub fn last_take_requeued(&self) -> usize {
        self.last_redelivered.len()
    }

    /// IDs of the messages the last take served from the channel's own queue (redeliveries),
    /// in the order they were taken.
    pub fn last_take_redelivered(&self) -> &[MessageId] {
        &self.last_redelivered
    }

    /// Every message the channel owes its consumers (queued, in flight, deferred with their
    /// due time), each with its attempts so far: what a checkpoint must preserve.
    pub fn owed(&self) -> impl Iterator<Item = (&Message, Option<Instant>)> {
        self.requeued
            .iter()
            .map(|r| (&r.msg, None))
            .chain(self.in_flight.values().map(|f| (&f.msg, None)))
            .chain(self.deferred.values().map(|(m, due)| (m, Some(*due))))
    }

    /// Puts a message recovered at start-up in the channel's queue. Its place among the log
    /// messages was not recorded, so it may go out before any of them.
    pub fn push_back(&mut self, msg: Message) {
        self.put_back(msg, 0);
    }

    fn put_back(&mut self, msg: Message, after: u64) {
        // Keeps `after` non-decreasing along the queue: a message never waits for more than
        // the one behind it.
        let after = self.requeued.back().map_or(after, |r| r.after.max(after));
        self.requeued.push_back(Requeued { msg, after });
    }

    /// Moves expired in-flight messages and due deferred messages back into the queue, behind
    /// the log messages the topic has released (`released`, its [`TopicState::released`] now).
    pub fn scan(&mut self, now: Instant, released: u64) -> ScanOutcome {
        let mut out = ScanOutcome::default();
        while let Some(Reverse((deadline, id))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let live = matches!(self.in_flight.get(&id), Some(f) if f.deadline == deadline);
            if !live {
                continue;
            }
            if let Some(f) = self.in_flight.remove(&id) {
                self.timeout_count += 1;
                out.timed_out_owners.push(f.client);
                self.put_back(f.msg, released);
            }
        }
        while let Some(Reverse((due, id))) = self.due.peek().copied() {
            if due > now {
                break;
            }
            self.due.pop();
            if let Some((m, _)) = self.deferred.remove(&id) {
                out.deferred_due += 1;
                self.put_back(m, released);
            }
        }
        out
    }

    /// The earliest time a scan could find something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let a = self.deadlines.peek().map(|r| r.0 .0);
        let b = self.due.peek().map(|r| r.0 .0);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops every queued, in-flight and deferred message of the channel (its unread topic
    /// backlog included); the caller resets its consumers' in-flight counts.
    pub fn empty(&mut self, topic: &mut TopicState) {
        self.requeued.clear();
        self.in_flight.clear();
        self.deadlines.clear();
        self.deferred.clear();
        self.due.clear();
        topic.skip_channel_backlog(self.key);
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Queued messages: requeued plus the unread topic backlog (in-flight and deferred excluded).
    pub fn depth(&self, topic: &TopicState) -> u64 {
        self.requeued.len() as u64 + topic.channel_backlog(self.key)
    }

    /// Whether a consumer could take a message right now.
    pub fn has_ready(&self, topic: &TopicState) -> bool {
        !self.paused && (!self.requeued.is_empty() || topic.channel_backlog(self.key) > 0)
    }

    pub fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    pub fn deferred_count(&self) -> usize {
        self.deferred.len()
    }

    pub fn requeue_count(&self) -> u64 {
        self.requeue_count
    }

    pub fn timeout_count(&self) -> u64 {
        self.timeout_count
    }

    /// Every message the channel is responsible for, for persisting at shutdown: queued, then
    /// in flight, then deferred (each keeps its attempts).
    pub fn all_messages(&self, topic: &mut TopicState) -> Vec<Message> {
        let mut out: Vec<Message> = self.requeued.iter().map(|r| r.msg.clone()).collect();
        let backlog = topic.channel_backlog(self.key) as usize;
        topic.read(self.key, backlog, &mut out);
        out.extend(self.in_flight.values().map(|f| f.msg.clone()));
        out.extend(self.deferred.values().map(|(m, _)| m.clone()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msgs(range: std::ops::Range<u64>) -> Vec<Message> {
        range
            .map(|i| Message::new(MessageId::from_guid(i), i as i64, Bytes::from_static(b"b")))
            .collect()
    }

    fn setup(n: u64) -> (TopicState, ChannelState) {
        let mut t = TopicState::in_memory(None);
        t.add_channel(7, None);
        t.publish(msgs(0..n)).unwrap();
        (t, ChannelState::new(7))
    }

    const T: Duration = Duration::from_secs(60);

    #[test]
    fn take_marks_in_flight_and_counts_attempts() {
        let (mut t, mut c) = setup(3);
        let now = Instant::now();
        let mut out = Vec::new();
        assert_eq!(c.take(&mut t, 1, 2, usize::MAX, now, T, &mut out), 2);
        assert_eq!(out[0].attempts, 1);
        assert_eq!(c.in_flight_count(), 2);
        assert_eq!(c.depth(&t), 1);
        assert_eq!(c.finish(2, &out[0].id).unwrap_err(), MsgError::NotOwner);
        assert!(c.finish(1, &out[0].id).is_ok());
        assert_eq!(c.finish(1, &out[0].id).unwrap_err(), MsgError::NotInFlight);
    }

    #[test]
    fn requeue_now_and_later() {
        let (mut t, mut c) = setup(2);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 2, usize::MAX, now, T, &mut out);
        assert!(c
            .requeue(1, &out[0].id, Duration::ZERO, now, t.released())
            .unwrap());
        assert!(!c
            .requeue(1, &out[1].id, Duration::from_secs(5), now, t.released())
            .unwrap());
        assert_eq!(
            (c.depth(&t), c.deferred_count(), c.requeue_count()),
            (1, 1, 2)
        );
        let mut again = Vec::new();
        c.take(&mut t, 1, 10, usize::MAX, now, T, &mut again);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        assert_eq!(
            c.scan(now + Duration::from_secs(4), t.released())
                .requeued(),
            0
        );
        assert_eq!(
            c.scan(now + Duration::from_secs(5), t.released())
                .deferred_due,
            1
        );
        assert_eq!(c.depth(&t), 1);
    }

    /// A deferred message must not keep alive the large buffer its body was sliced from.
    #[test]
    fn deferring_copies_the_body_out_of_its_shared_buffer() {
        let shared = Bytes::from(vec![b'x'; 1 << 20]);
        let mut t = TopicState::in_memory(None);
        t.add_channel(7, None);
        let bodies = [shared.slice(0..10), shared.slice(10..20)];
        t.publish(
            (0..2)
                .map(|i| Message::new(MessageId::from_guid(i), 0, bodies[i as usize].clone()))
                .collect(),
        )
        .unwrap();
        let mut c = ChannelState::new(7);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 2, usize::MAX, now, T, &mut out);
        c.requeue(1, &out[0].id, Duration::from_secs(5), now, t.released())
            .unwrap();
        c.requeue(1, &out[1].id, Duration::ZERO, now, t.released())
            .unwrap();
        let inside = |b: &Bytes| {
            let range = shared.as_ptr_range();
            range.contains(&b.as_ptr())
        };
        let owed: Vec<_> = c.owed().collect();
        let deferred = owed.iter().find(|(_, due)| due.is_some()).unwrap().0;
        let requeued = owed.iter().find(|(_, due)| due.is_none()).unwrap().0;
        assert_eq!(&deferred.body[..], &shared[0..10]);
        assert!(
            !inside(&deferred.body),
            "the deferred body still points into the buffer"
        );
        // A message requeued for now goes out again soon: it keeps sharing.
        assert!(inside(&requeued.body));
    }

    #[test]
    fn timeouts_and_touch() {
        let (mut t, mut c) = setup(2);
        let now = Instant::now();
        let mut out = Vec::new();
        let to = Duration::from_secs(1);
        c.take(&mut t, 9, 2, usize::MAX, now, to, &mut out);
        c.touch(
            9,
            &out[0].id,
            now + Duration::from_millis(900),
            to,
            Duration::from_secs(15),
        )
        .unwrap();
        let s = c.scan(now + Duration::from_secs(1), t.released());
        assert_eq!(s.timed_out_owners, vec![9]);
        assert_eq!(c.timeout_count(), 1);
        assert_eq!(c.next_deadline(), Some(now + Duration::from_millis(1900)));
        assert_eq!(
            c.scan(now + Duration::from_millis(1900), t.released())
                .timed_out_owners
                .len(),
            1
        );
        // TOUCH never extends past delivery + max.
        let mut out2 = Vec::new();
        let later = now + Duration::from_secs(2);
        c.take(&mut t, 9, 1, usize::MAX, later, to, &mut out2);
        c.touch(
            9,
            &out2[0].id,
            later + Duration::from_millis(500),
            to,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(c.next_deadline(), Some(later + Duration::from_secs(1)));
    }

    #[test]
    fn stale_deadlines_are_compacted() {
        let mut t = TopicState::in_memory(None);
        t.add_channel(7, None);
        let mut c = ChannelState::new(7);
        let now = Instant::now();
        for round in 0..50u64 {
            t.publish(msgs(round * 100..round * 100 + 100)).unwrap();
            let mut out = Vec::new();
            c.take(&mut t, 1, 100, usize::MAX, now, T, &mut out);
            for m in &out {
                c.finish(1, &m.id).unwrap();
            }
        }
        assert!(c.deadlines.len() <= 1024 + 100);
    }

    #[test]
    fn empty_forgets_everything() {
        let (mut t, mut c) = setup(5);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 2, usize::MAX, now, T, &mut out);
        c.requeue(1, &out[0].id, Duration::from_secs(1), now, t.released())
            .unwrap();
        c.empty(&mut t);
        assert_eq!(
            (c.depth(&t), c.in_flight_count(), c.deferred_count()),
            (0, 0, 0)
        );
        assert_eq!(c.finish(1, &out[1].id).unwrap_err(), MsgError::NotInFlight);
    }

    #[test]
    fn byte_bound_limits_batch() {
        let (mut t, mut c) = setup(10);
        let mut out = Vec::new();
        assert_eq!(c.take(&mut t, 1, 10, 2, Instant::now(), T, &mut out), 2);
    }

    #[test]
    fn paused_channel_gives_nothing() {
        let (mut t, mut c) = setup(1);
        c.set_paused(true);
        let mut out = Vec::new();
        assert_eq!(
            c.take(&mut t, 1, 5, usize::MAX, Instant::now(), T, &mut out),
            0
        );
        assert!(!c.has_ready(&t));
        c.set_paused(false);
        assert!(c.has_ready(&t));
    }

    #[test]
    fn all_messages_for_shutdown() {
        let (mut t, mut c) = setup(4);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 2, usize::MAX, now, T, &mut out);
        c.requeue(1, &out[0].id, Duration::from_secs(9), now, t.released())
            .unwrap();
        let all = c.all_messages(&mut t);
        assert_eq!(all.len(), 4);
    }

    // -----------------------------------------------------------------------------------------
    // Queue order of put-back messages
    // -----------------------------------------------------------------------------------------

    /// (sequence, attempts) of each message, in order.
    fn order(v: &[Message]) -> Vec<(i64, u16)> {
        v.iter().map(|m| (m.timestamp, m.attempts)).collect()
    }

    fn take_all(c: &mut ChannelState, t: &mut TopicState, now: Instant) -> Vec<Message> {
        let mut out = Vec::new();
        c.take(t, 1, usize::MAX, usize::MAX, now, T, &mut out);
        out
    }

    #[test]
    fn timed_out_message_goes_behind_the_queued_backlog() {
        let (mut t, mut c) = setup(3);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 1, usize::MAX, now, T, &mut out);
        assert_eq!(c.scan(now + T, t.released()).timed_out_owners, vec![1]);
        t.publish(msgs(3..4)).unwrap();
        assert_eq!(c.depth(&t), 4);
        let got = take_all(&mut c, &mut t, now + T);
        assert_eq!(order(&got), vec![(1, 1), (2, 1), (0, 2), (3, 1)]);
        assert_eq!(c.last_take_redelivered(), &[MessageId::from_guid(0)]);
        assert_eq!(c.last_take_requeued(), 1);
    }

    #[test]
    fn req_zero_goes_behind_the_queued_backlog_and_ahead_of_later_publishes() {
        let (mut t, mut c) = setup(2);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 1, usize::MAX, now, T, &mut out);
        assert!(c
            .requeue(1, &out[0].id, Duration::ZERO, now, t.released())
            .unwrap());
        t.publish(msgs(2..3)).unwrap();
        // One at a time, as a consumer with RDY 1 that finishes each takes them.
        let mut seen = Vec::new();
        loop {
            let mut one = Vec::new();
            if c.take(&mut t, 1, 1, usize::MAX, now, T, &mut one) == 0 {
                break;
            }
            c.finish(1, &one[0].id).unwrap();
            seen.extend(order(&one));
        }
        assert_eq!(seen, vec![(1, 1), (0, 2), (2, 1)]);
        assert!(!c.has_ready(&t));
    }

    #[test]
    fn deferred_message_goes_behind_what_was_released_before_it_became_due() {
        let (mut t, mut c) = setup(1);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 1, usize::MAX, now, T, &mut out);
        let delay = Duration::from_secs(5);
        assert!(!c.requeue(1, &out[0].id, delay, now, t.released()).unwrap());
        t.publish(msgs(1..3)).unwrap();
        assert_eq!(c.scan(now + delay, t.released()).deferred_due, 1);
        t.publish(msgs(3..4)).unwrap();
        let got = take_all(&mut c, &mut t, now + delay);
        assert_eq!(order(&got), vec![(1, 1), (2, 1), (0, 2), (3, 1)]);
    }

    #[test]
    fn batches_split_anywhere_keep_the_order_and_report_redeliveries() {
        let (mut t, mut c) = setup(4);
        let now = Instant::now();
        let mut first = Vec::new();
        c.take(&mut t, 1, 2, usize::MAX, now, T, &mut first);
        c.requeue(1, &first[1].id, Duration::ZERO, now, t.released())
            .unwrap();
        t.publish(msgs(4..5)).unwrap();
        c.requeue(1, &first[0].id, Duration::ZERO, now, t.released())
            .unwrap();
        t.publish(msgs(5..6)).unwrap();
        let want = [(2, 1), (3, 1), (1, 2), (4, 1), (0, 2), (5, 1)];
        let mut got = Vec::new();
        let mut redelivered = Vec::new();
        // By count, then by bytes (one-byte bodies).
        for (max, max_bytes) in [(3, usize::MAX), (1, usize::MAX), (9, 1), (9, usize::MAX)] {
            let mut out = Vec::new();
            c.take(&mut t, 1, max, max_bytes, now, T, &mut out);
            assert_eq!(c.last_take_requeued(), c.last_take_redelivered().len());
            redelivered.extend_from_slice(c.last_take_redelivered());
            got.extend(order(&out));
        }
        assert_eq!(got, want);
        assert_eq!(
            redelivered,
            vec![MessageId::from_guid(1), MessageId::from_guid(0)]
        );
    }

    #[test]
    fn restored_messages_may_go_first() {
        let (mut t, mut c) = setup(2);
        c.push_back(Message::new(
            MessageId::from_guid(9),
            9,
            Bytes::from_static(b"r"),
        ));
        let got = take_all(&mut c, &mut t, Instant::now());
        assert_eq!(order(&got), vec![(9, 1), (0, 1), (1, 1)]);
    }

    #[test]
    fn emptied_topic_ranges_do_not_hold_put_back_messages() {
        let (mut t, mut c) = setup(1);
        let now = Instant::now();
        t.set_paused(true);
        t.publish(msgs(1..3)).unwrap();
        t.empty();
        t.publish(msgs(3..4)).unwrap();
        t.set_paused(false);
        t.publish(msgs(4..5)).unwrap();
        t.set_paused(true);
        t.publish(msgs(5..6)).unwrap();
        t.empty();
        // 1, 2 and 5 were dropped; 5's range ends where `released` is.
        let mut out = Vec::new();
        c.take(&mut t, 1, 1, usize::MAX, now, T, &mut out);
        c.requeue(1, &out[0].id, Duration::ZERO, now, t.released())
            .unwrap();
        let got = take_all(&mut c, &mut t, now);
        assert_eq!(order(&got), vec![(3, 1), (4, 1), (0, 2)]);
        t.set_paused(false);
        t.publish(msgs(6..7)).unwrap();
        c.requeue(1, &got[0].id, Duration::ZERO, now, t.released())
            .unwrap();
        let got = take_all(&mut c, &mut t, now);
        assert_eq!(order(&got), vec![(6, 1), (3, 2)]);
    }

    #[test]
    fn emptied_channel_backlog_does_not_hold_put_back_messages() {
        let (mut t, mut c) = setup(3);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 1, usize::MAX, now, T, &mut out);
        c.requeue(1, &out[0].id, Duration::ZERO, now, t.released())
            .unwrap();
        c.empty(&mut t);
        t.publish(msgs(3..4)).unwrap();
        let mut again = Vec::new();
        c.take(&mut t, 1, 1, usize::MAX, now, T, &mut again);
        c.requeue(1, &again[0].id, Duration::ZERO, now, t.released())
            .unwrap();
        t.publish(msgs(4..5)).unwrap();
        let got = take_all(&mut c, &mut t, now);
        assert_eq!(order(&got), vec![(3, 2), (4, 1)]);
    }

    /// A log that cannot read one position (an I/O error): reads there make no progress.
    struct Unreadable {
        inner: crate::MemoryLog,
        bad: u64,
    }

    impl crate::MessageLog for Unreadable {
        fn append(
            &mut self,
            msgs: &mut dyn Iterator<Item = Message>,
        ) -> Result<(), crate::QueueError> {
            self.inner.append(msgs)
        }
        fn read(&mut self, from: u64, max: usize, out: &mut Vec<Message>) -> u64 {
            if from == self.bad {
                return from;
            }
            let max = if from < self.bad {
                max.min((self.bad - from) as usize)
            } else {
                max
            };
            self.inner.read(from, max, out)
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

    #[test]
    fn unreadable_log_does_not_hold_put_back_messages() {
        let log = Unreadable {
            inner: crate::MemoryLog::new(),
            bad: 2,
        };
        let mut t = TopicState::new(Box::new(log), None);
        t.add_channel(7, None);
        t.publish(msgs(0..4)).unwrap();
        let mut c = ChannelState::new(7);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 1, usize::MAX, now, T, &mut out);
        c.requeue(1, &out[0].id, Duration::ZERO, now, t.released())
            .unwrap();
        let got = take_all(&mut c, &mut t, now);
        assert_eq!(order(&got), vec![(1, 1), (0, 2)]);
        assert_eq!(
            t.channel_pos(7),
            Some(2),
            "the cursor waits at the bad record"
        );
    }

    #[test]
    fn paused_channel_keeps_the_order_for_when_it_resumes() {
        let (mut t, mut c) = setup(2);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 1, usize::MAX, now, T, &mut out);
        c.set_paused(true);
        c.requeue(1, &out[0].id, Duration::ZERO, now, t.released())
            .unwrap();
        t.publish(msgs(2..3)).unwrap();
        assert!(take_all(&mut c, &mut t, now).is_empty());
        assert_eq!(c.last_take_requeued(), 0);
        assert_eq!(c.depth(&t), 3);
        c.set_paused(false);
        let got = take_all(&mut c, &mut t, now);
        assert_eq!(order(&got), vec![(1, 1), (0, 2), (2, 1)]);
    }

    #[test]
    fn paused_topic_holds_later_publishes_behind_put_back_messages() {
        let (mut t, mut c) = setup(2);
        let now = Instant::now();
        let mut out = Vec::new();
        c.take(&mut t, 1, 1, usize::MAX, now, T, &mut out);
        t.set_paused(true);
        t.publish(msgs(2..3)).unwrap();
        c.requeue(1, &out[0].id, Duration::ZERO, now, t.released())
            .unwrap();
        t.set_paused(false);
        let got = take_all(&mut c, &mut t, now);
        assert_eq!(order(&got), vec![(1, 1), (0, 2), (2, 1)]);
    }

    // -----------------------------------------------------------------------------------------
    // Against a plain model of the channel's queue
    // -----------------------------------------------------------------------------------------

    #[derive(Debug, Clone)]
    enum Op {
        Publish(u64),
        Dpub(u64),
        Take(usize, usize),
        Req(usize, u64),
        Fin(usize),
        Wait(u64),
        PauseChannel(bool),
        PauseTopic(bool),
        EmptyTopic,
        EmptyChannel,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (1u64..4).prop_map(Op::Publish),
            1 => (1u64..30).prop_map(Op::Dpub),
            4 => (0usize..6, prop_oneof![Just(usize::MAX), 1usize..4])
                .prop_map(|(k, b)| Op::Take(k, b)),
            2 => (0usize..8, prop_oneof![Just(0u64), 1u64..30]).prop_map(|(i, d)| Op::Req(i, d)),
            2 => (0usize..8).prop_map(Op::Fin),
            2 => (0u64..15).prop_map(Op::Wait),
            1 => proptest::bool::ANY.prop_map(Op::PauseChannel),
            1 => proptest::bool::ANY.prop_map(Op::PauseTopic),
            1 => Just(Op::EmptyTopic),
            1 => Just(Op::EmptyChannel),
        ]
    }

    /// NSQ's channel queue: one FIFO; messages reach it when the topic hands them over and
    /// put-back messages join its end when they are put back. Entries: (seq, attempts,
    /// put back).
    #[derive(Default)]
    struct Model {
        fifo: VecDeque<(u64, u16, bool)>,
        held: Vec<u64>,
        in_flight: std::collections::BTreeMap<u64, (u64, u16)>,
        deferred: std::collections::BTreeMap<u64, (u64, u16)>,
        channel_paused: bool,
        topic_paused: bool,
    }

    impl Model {
        /// Moves entries of `from` due by `now` to the queue's end, earliest (then lowest ID)
        /// first: the order in which simultaneous expiries are put back.
        fn put_back_due(
            from: &mut std::collections::BTreeMap<u64, (u64, u16)>,
            now: u64,
            fifo: &mut VecDeque<(u64, u16, bool)>,
        ) {
            let mut due: Vec<_> = from
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|(seq, (at, attempts))| (*at, MessageId::from_guid(*seq), *seq, *attempts))
                .collect();
            due.sort();
            for (_, _, seq, attempts) in due {
                from.remove(&seq);
                fifo.push_back((seq, attempts, true));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn queue_order_matches_a_plain_fifo(ops in proptest::collection::vec(op(), 1..80)) {
            const TIMEOUT: u64 = 10;
            let (mut t, mut c) = setup(0);
            let mut m = Model::default();
            let t0 = Instant::now();
            let mut now_ms = 0u64;
            let mut next = 0u64;
            for op in ops {
                let now = t0 + Duration::from_millis(now_ms);
                match op {
                    Op::Publish(n) => {
                        t.publish(msgs(next..next + n)).unwrap();
                        let seqs = next..next + n;
                        if m.topic_paused {
                            m.held.extend(seqs);
                        } else {
                            m.fifo.extend(seqs.map(|s| (s, 0, false)));
                        }
                        next += n;
                    }
                    Op::Dpub(delay) => {
                        // Deferred publishes get IDs far from the log's.
                        let seq = 1_000_000 + next;
                        next += 1;
                        let msg = msgs(seq..seq + 1).pop().unwrap();
                        c.defer(msg, now + Duration::from_millis(delay));
                        m.deferred.insert(seq, (now_ms + delay, 0));
                    }
                    Op::Take(k, max_bytes) => {
                        let mut out = Vec::new();
                        let n = c.take(&mut t, 1, k, max_bytes, now,
                            Duration::from_millis(TIMEOUT), &mut out);
                        let mut want = Vec::new();
                        let mut want_redelivered = Vec::new();
                        if !m.channel_paused {
                            for _ in 0..k.min(max_bytes) {
                                let Some((seq, attempts, put_back)) = m.fifo.pop_front() else {
                                    break;
                                };
                                let attempts = attempts + 1;
                                want.push((seq as i64, attempts));
                                if put_back {
                                    want_redelivered.push(MessageId::from_guid(seq));
                                }
                                m.in_flight.insert(seq, (now_ms + TIMEOUT, attempts));
                            }
                        }
                        proptest::prop_assert_eq!(n, out.len());
                        proptest::prop_assert_eq!(order(&out), want);
                        proptest::prop_assert_eq!(c.last_take_redelivered(), &want_redelivered[..]);
                        proptest::prop_assert_eq!(c.last_take_requeued(), want_redelivered.len());
                    }
                    Op::Req(i, delay) => {
                        let Some(&seq) = m.in_flight.keys().nth(i % m.in_flight.len().max(1))
                        else {
                            continue;
                        };
                        let (_, attempts) = m.in_flight.remove(&seq).unwrap();
                        let now_ready = c.requeue(1, &MessageId::from_guid(seq),
                            Duration::from_millis(delay), now, t.released()).unwrap();
                        proptest::prop_assert_eq!(now_ready, delay == 0);
                        if delay == 0 {
                            m.fifo.push_back((seq, attempts, true));
                        } else {
                            m.deferred.insert(seq, (now_ms + delay, attempts));
                        }
                    }
                    Op::Fin(i) => {
                        let Some(&seq) = m.in_flight.keys().nth(i % m.in_flight.len().max(1))
                        else {
                            continue;
                        };
                        m.in_flight.remove(&seq);
                        c.finish(1, &MessageId::from_guid(seq)).unwrap();
                    }
                    Op::Wait(ms) => {
                        now_ms += ms;
                        c.scan(t0 + Duration::from_millis(now_ms), t.released());
                        Model::put_back_due(&mut m.in_flight, now_ms, &mut m.fifo);
                        Model::put_back_due(&mut m.deferred, now_ms, &mut m.fifo);
                    }
                    Op::PauseChannel(p) => {
                        c.set_paused(p);
                        m.channel_paused = p;
                    }
                    Op::PauseTopic(p) => {
                        t.set_paused(p);
                        m.topic_paused = p;
                        if !p {
                            m.fifo.extend(m.held.drain(..).map(|s| (s, 0, false)));
                        }
                    }
                    Op::EmptyTopic => {
                        t.empty();
                        m.held.clear();
                    }
                    Op::EmptyChannel => {
                        c.empty(&mut t);
                        m.fifo.clear();
                        m.in_flight.clear();
                        m.deferred.clear();
                    }
                }
                proptest::prop_assert_eq!(c.depth(&t), m.fifo.len() as u64);
                proptest::prop_assert_eq!(c.has_ready(&t), !m.channel_paused && !m.fifo.is_empty());
                proptest::prop_assert_eq!(c.in_flight_count(), m.in_flight.len());
                proptest::prop_assert_eq!(c.deferred_count(), m.deferred.len());
                proptest::prop_assert_eq!(t.depth(), m.held.len() as u64);
                let owed = m.fifo.iter().filter(|e| e.2).count() + m.in_flight.len() + m.deferred.len();
                proptest::prop_assert_eq!(c.owed().count(), owed);
            }
        }
    }
}
