//! A channel's own message state: messages put back in its queue (requeues and timeouts),
//! messages in flight to consumers with their deadlines, and deferred messages with their due
//! times. Fresh messages come from the topic log through the channel's cursor.
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

#[derive(Debug)]
pub struct ChannelState {
    key: ChannelKey,
    requeued: VecDeque<Message>,
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
    /// How many of the messages the last [`ChannelState::take`] returned came from the
    /// channel's own queue (redeliveries) rather than the topic log; they are the first ones.
    last_take_requeued: usize,
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
            last_take_requeued: 0,
        }
    }

    pub fn key(&self) -> ChannelKey {
        self.key
    }

    /// Takes up to `max` messages for `client`: requeued ones first, then fresh ones from the
    /// topic log. Each is marked in flight (attempts counted) and appended to `out`.
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
        self.last_take_requeued = 0;
        if self.paused || max == 0 {
            return 0;
        }
        let start = out.len();
        let mut bytes = 0usize;
        while out.len() - start < max && bytes < max_bytes {
            match self.requeued.pop_front() {
                Some(m) => {
                    bytes += m.body.len();
                    out.push(m);
                }
                None => break,
            }
        }
        self.last_take_requeued = out.len() - start;
        let want = max - (out.len() - start);
        if want > 0 && bytes < max_bytes {
            topic.read_bounded(self.key, want, max_bytes - bytes, out);
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

    /// REQ: back into the queue now (`delay` zero) or after `delay`. Returns `true` when the
    /// message is immediately available again (wake a consumer).
    pub fn requeue(
        &mut self,
        client: ClientId,
        id: &MessageId,
        delay: Duration,
        now: Instant,
    ) -> Result<bool, MsgError> {
        self.owned(client, id)?;
        if !delay.is_zero() && self.deferred.contains_key(id) {
            return Err(MsgError::AlreadyDeferred);
        }
        let f = self.in_flight.remove(id).ok_or(MsgError::NotInFlight)?;
        self.requeue_count += 1;
        if delay.is_zero() {
            self.requeued.push_back(f.msg);
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
        self.last_take_requeued
    }

    /// Every message the channel owes its consumers (queued, in flight, deferred with their
    /// due time), each with its attempts so far: what a checkpoint must preserve.
    pub fn owed(&self) -> impl Iterator<Item = (&Message, Option<Instant>)> {
        self.requeued
            .iter()
            .map(|m| (m, None))
            .chain(self.in_flight.values().map(|f| (&f.msg, None)))
            .chain(self.deferred.values().map(|(m, due)| (m, Some(*due))))
    }

    /// Puts a message at the back of the channel's queue.
    pub fn push_back(&mut self, msg: Message) {
        self.requeued.push_back(msg);
    }

    /// Moves expired in-flight messages and due deferred messages back into the queue.
    pub fn scan(&mut self, now: Instant) -> ScanOutcome {
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
                self.requeued.push_back(f.msg);
            }
        }
        while let Some(Reverse((due, id))) = self.due.peek().copied() {
            if due > now {
                break;
            }
            self.due.pop();
            if let Some((m, _)) = self.deferred.remove(&id) {
                out.deferred_due += 1;
                self.requeued.push_back(m);
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
        let mut out: Vec<Message> = self.requeued.iter().cloned().collect();
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
        assert!(c.requeue(1, &out[0].id, Duration::ZERO, now).unwrap());
        assert!(!c
            .requeue(1, &out[1].id, Duration::from_secs(5), now)
            .unwrap());
        assert_eq!(
            (c.depth(&t), c.deferred_count(), c.requeue_count()),
            (1, 1, 2)
        );
        let mut again = Vec::new();
        c.take(&mut t, 1, 10, usize::MAX, now, T, &mut again);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        assert_eq!(c.scan(now + Duration::from_secs(4)).requeued(), 0);
        assert_eq!(c.scan(now + Duration::from_secs(5)).deferred_due, 1);
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
        c.requeue(1, &out[0].id, Duration::from_secs(5), now)
            .unwrap();
        c.requeue(1, &out[1].id, Duration::ZERO, now).unwrap();
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
        let s = c.scan(now + Duration::from_secs(1));
        assert_eq!(s.timed_out_owners, vec![9]);
        assert_eq!(c.timeout_count(), 1);
        assert_eq!(c.next_deadline(), Some(now + Duration::from_millis(1900)));
        assert_eq!(
            c.scan(now + Duration::from_millis(1900))
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
        c.requeue(1, &out[0].id, Duration::from_secs(1), now)
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
        c.requeue(1, &out[0].id, Duration::from_secs(9), now)
            .unwrap();
        let all = c.all_messages(&mut t);
        assert_eq!(all.len(), 4);
    }
}
