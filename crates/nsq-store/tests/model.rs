//! A model test of the store: random sequences of publishes, deferred publishes, deliveries,
//! FIN, REQ (with and without delay), TOUCH, timeouts, channel empties, checkpoints and
//! crashes (kill -9: unwritten bytes vanish; optionally a torn write leaves junk at the end of
//! the files) run against the real topic log, channel journals and queue state machines,
//! wired the way nsqd wires them. After every crash the recovered state is checked against a
//! plain model of what clients were told:
//!
//! - nothing acknowledged is lost: every acknowledged message that was not durably finished
//!   on a channel is still owed by it or still ahead of its cursor;
//! - nothing durably finished comes back;
//! - a message deferred durably keeps its due time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use nsq_protocol::{Message, MessageId};
use nsq_queue::{ChannelState, MessageLog, TopicState};
use nsq_store::journal::{ChannelFiles, ChannelSnapshot, Clock, Event, JournalWriter};
use nsq_store::{DiskLog, LogOptions, LogWriter};

const CHANNELS: usize = 2;
const TIMEOUT: Duration = Duration::from_millis(1000);
const CLIENT: u64 = 1;
/// Unix milliseconds at virtual time zero.
const EPOCH_MS: i64 = 1_000_000;

#[derive(Debug, Clone)]
enum Op {
    Publish(u8),
    Dpub(u16),
    Deliver(usize, u8),
    Fin(usize, u8),
    Req(usize, u8, u16),
    Touch(usize, u8),
    Advance(u16),
    FlushJournal(usize),
    Checkpoint(usize),
    Empty(usize),
    /// Junk bytes torn onto the newest files, and whether the crash came in the middle of
    /// channel 0's last checkpoint (its new journal created, its checkpoint not yet renamed
    /// in: the newest checkpoint file is missing).
    Crash(u8, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let ch = 0..CHANNELS;
    prop_oneof![
        4 => (1u8..5).prop_map(Op::Publish),
        2 => (1u16..3000).prop_map(Op::Dpub),
        5 => (ch.clone(), 1u8..6).prop_map(|(c, n)| Op::Deliver(c, n)),
        5 => (ch.clone(), any::<u8>()).prop_map(|(c, i)| Op::Fin(c, i)),
        2 => (ch.clone(), any::<u8>(), prop_oneof![Just(0u16), 1u16..3000])
            .prop_map(|(c, i, d)| Op::Req(c, i, d)),
        1 => (ch.clone(), any::<u8>()).prop_map(|(c, i)| Op::Touch(c, i)),
        2 => (1u16..2500).prop_map(Op::Advance),
        2 => ch.clone().prop_map(Op::FlushJournal),
        3 => ch.clone().prop_map(Op::Checkpoint),
        1 => ch.clone().prop_map(Op::Empty),
        2 => (0u8..50, any::<bool>()).prop_map(|(j, m)| Op::Crash(j, m)),
    ]
}

/// What clients were told, per channel.
#[derive(Debug, Default)]
struct Expect {
    /// Acknowledged messages the channel must still deliver (or is delivering).
    owed: BTreeSet<MessageId>,
    /// FINs written to the journal: these must never come back.
    finished: BTreeSet<MessageId>,
    /// FINs applied but not yet written (a crash may undo them: at least once).
    finish_pending: Vec<MessageId>,
    /// Due times (Unix ms) of durable deferrals.
    due: BTreeMap<MessageId, i64>,
    due_pending: Vec<(MessageId, i64)>,
}

struct Channel {
    state: ChannelState,
    journal: JournalWriter,
    /// IDs handed to the consumer, for picking FIN/REQ/TOUCH targets.
    delivered: Vec<MessageId>,
}

struct Broker {
    dir: PathBuf,
    topic: TopicState,
    writer: std::sync::Arc<LogWriter>,
    channels: Vec<Channel>,
    start: Instant,
    t_ms: u64,
}

fn log_opts() -> LogOptions {
    LogOptions {
        max_bytes_per_file: 400,
        max_body: 1024,
        cache_messages: 3,
    }
}

fn channel_files(dir: &Path, i: usize) -> ChannelFiles {
    ChannelFiles {
        dir: dir.to_path_buf(),
        name: format!("c-{i}"),
    }
}

impl Broker {
    fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.t_ms)
    }

    fn now_ms(&self) -> i64 {
        EPOCH_MS + self.t_ms as i64
    }

    /// Opens (or reopens after a crash) the topic and its channels, returning each channel's
    /// recovered snapshot for checking.
    fn open(dir: &Path, start: Instant, t_ms: u64) -> (Broker, Vec<ChannelSnapshot>) {
        let (log, _) = DiskLog::open(dir, log_opts()).unwrap();
        let writer = log.writer();
        let mut topic = TopicState::new(Box::new(log), None);
        topic.cap_release();
        let now = start + Duration::from_millis(t_ms);
        let now_ms = EPOCH_MS + t_ms as i64;
        let mut channels = Vec::new();
        let mut snaps = Vec::new();
        for i in 0..CHANNELS {
            let files = channel_files(dir, i);
            let head = topic.log_mut().head();
            let (mut snap, report) = files.recover(topic.log_mut(), head).unwrap();
            assert!(!report.is_damaged(), "{report:?}");
            snaps.push(snap.clone());
            let mut state = ChannelState::new(i as u64);
            snap.restore_into(&mut state, Clock { now, now_ms });
            let pos = snap.pos;
            let journal = JournalWriter::start(files, &mut snap, &report).unwrap();
            topic.restore_channel(i as u64, None, pos, journal.retain_from());
            channels.push(Channel {
                state,
                journal,
                delivered: Vec::new(),
            });
        }
        topic.finish_restore(false, None);
        (
            Broker {
                dir: dir.to_path_buf(),
                topic,
                writer,
                channels,
                start,
                t_ms,
            },
            snaps,
        )
    }

    fn flush_journal(&mut self, c: usize, expect: &mut [Expect]) {
        self.channels[c].journal.flush(false).unwrap();
        let e = &mut expect[c];
        for id in e.finish_pending.drain(..) {
            e.finished.insert(id);
            e.owed.remove(&id);
            e.due.remove(&id);
        }
        for (id, due) in e.due_pending.drain(..) {
            if !e.finished.contains(&id) {
                e.due.insert(id, due);
            }
        }
    }

    fn pick(&self, c: usize, i: u8) -> Option<MessageId> {
        let d = &self.channels[c].delivered;
        (!d.is_empty()).then(|| d[i as usize % d.len()])
    }

    fn apply(&mut self, op: &Op, expect: &mut [Expect], next_id: &mut u64) {
        let now = self.now();
        let now_ms = self.now_ms();
        match *op {
            Op::Publish(n) => {
                let msgs: Vec<Message> = (0..n)
                    .map(|_| {
                        *next_id += 1;
                        Message::new(
                            MessageId::from_guid(*next_id),
                            now_ms,
                            Bytes::from(format!("m{next_id}")),
                        )
                    })
                    .collect();
                let ids: Vec<MessageId> = msgs.iter().map(|m| m.id).collect();
                self.topic.publish(msgs).unwrap();
                let tail = self.topic.tail();
                self.writer.flush(tail, false).unwrap();
                self.topic.release_to(self.writer.written(), &[]);
                // Acknowledged: every channel owes them.
                for e in expect.iter_mut() {
                    e.owed.extend(ids.iter().copied());
                }
            }
            Op::Dpub(delay) => {
                *next_id += 1;
                let msg = Message::new(
                    MessageId::from_guid(*next_id),
                    now_ms,
                    Bytes::from(format!("d{next_id}")),
                );
                let due = now_ms + i64::from(delay);
                for c in 0..CHANNELS {
                    let ch = &mut self.channels[c];
                    ch.state
                        .defer(msg.clone(), now + Duration::from_millis(u64::from(delay)));
                    ch.journal.append(&Event::Deferred(msg.clone(), due));
                    self.flush_journal(c, expect);
                    expect[c].owed.insert(msg.id);
                    expect[c].due.insert(msg.id, due);
                }
            }
            Op::Deliver(c, max) => {
                let ch = &mut self.channels[c];
                let before = self.topic.channel_pos(c as u64);
                let mut out = Vec::new();
                let n = ch.state.take(
                    &mut self.topic,
                    CLIENT,
                    max as usize,
                    usize::MAX,
                    now,
                    TIMEOUT,
                    &mut out,
                );
                let after = self.topic.channel_pos(c as u64);
                if after != before {
                    if let Some(pos) = after {
                        ch.journal.append(&Event::Advance(pos));
                    }
                }
                let ids = ch.state.last_take_redelivered().to_vec();
                if !ids.is_empty() {
                    ch.journal.append(&Event::Attempt(ids.clone()));
                    // Redelivered: no longer deferred once the event is written (below).
                    for id in ids {
                        expect[c].due.remove(&id);
                        expect[c].due_pending.retain(|(x, _)| *x != id);
                    }
                }
                ch.delivered.extend(out.iter().map(|m| m.id));
                if n > 0 {
                    // Delivery events are written before the messages leave.
                    self.flush_journal(c, expect);
                }
            }
            Op::Fin(c, i) => {
                if let Some(id) = self.pick(c, i) {
                    let ch = &mut self.channels[c];
                    if ch.state.finish(CLIENT, &id).is_ok() {
                        ch.journal.append(&Event::Finish(vec![id]));
                        expect[c].finish_pending.push(id);
                    }
                }
            }
            Op::Req(c, i, delay) => {
                if let Some(id) = self.pick(c, i) {
                    let ch = &mut self.channels[c];
                    let d = Duration::from_millis(u64::from(delay));
                    let released = self.topic.released();
                    if let Ok(ready) = ch.state.requeue(CLIENT, &id, d, now, released) {
                        if !ready {
                            let due = now_ms + i64::from(delay);
                            ch.journal.append(&Event::Defer(id, due));
                            expect[c].due_pending.push((id, due));
                        }
                    }
                }
            }
            Op::Touch(c, i) => {
                if let Some(id) = self.pick(c, i) {
                    let _ = self.channels[c]
                        .state
                        .touch(CLIENT, &id, now, TIMEOUT, TIMEOUT * 10);
                }
            }
            Op::Advance(ms) => {
                self.t_ms += u64::from(ms);
                let now = self.now();
                let released = self.topic.released();
                for ch in &mut self.channels {
                    ch.state.scan(now, released);
                }
            }
            Op::FlushJournal(c) => self.flush_journal(c, expect),
            Op::Checkpoint(c) => {
                self.flush_journal(c, expect);
                let ch = &self.channels[c];
                let pos = self.topic.channel_pos(c as u64).unwrap_or(0);
                let snap = ChannelSnapshot::of(&ch.state, pos, Clock { now, now_ms });
                let retain = ch.journal.checkpoint(|| (snap, ())).unwrap();
                self.topic.set_retain(c as u64, retain);
                self.writer.delete_trimmed();
            }
            Op::Empty(c) => {
                let ch = &mut self.channels[c];
                ch.state.empty(&mut self.topic);
                let pos = self.topic.channel_pos(c as u64).unwrap_or(0);
                ch.journal.append(&Event::Empty(pos));
                self.flush_journal(c, expect);
                let e = &mut expect[c];
                e.owed.clear();
                e.due.clear();
                e.due_pending.clear();
                e.finish_pending.clear();
            }
            Op::Crash(..) => unreachable!("handled by the runner"),
        }
    }
}

/// Appends junk to the newest segment and journals: a torn write of data nobody was told
/// about.
fn tear(dir: &Path, junk: u8) {
    if junk == 0 {
        return;
    }
    let mut newest: BTreeMap<String, PathBuf> = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let kind = if name.starts_with("seg-") {
            "seg".to_string()
        } else if name.ends_with(".journal") {
            name.split('.').next().unwrap().to_string()
        } else {
            continue;
        };
        let slot = newest.entry(kind).or_insert_with(|| p.clone());
        if p > *slot {
            *slot = p;
        }
    }
    for p in newest.values() {
        let mut data = std::fs::read(p).unwrap();
        data.extend((0..junk).map(|i| i.wrapping_mul(37).wrapping_add(11)));
        std::fs::write(p, data).unwrap();
    }
}

/// Checks a recovered channel against the model.
fn check(
    c: usize,
    snap: &ChannelSnapshot,
    log: &mut dyn MessageLog,
    e: &Expect,
    now_ms: i64,
) -> Result<(), TestCaseError> {
    let mut ahead = BTreeSet::new();
    let mut pos = snap.pos.max(log.head());
    let mut out = Vec::new();
    while pos < log.tail() {
        let next = log.read(pos, 64, &mut out);
        prop_assert!(next > pos);
        pos = next;
    }
    ahead.extend(out.iter().map(|m| m.id));
    for id in &e.owed {
        if e.finished.contains(id) {
            continue;
        }
        prop_assert!(
            snap.owed.contains_key(id) || ahead.contains(id),
            "channel {c}: acknowledged {id:?} lost"
        );
    }
    for id in &e.finished {
        prop_assert!(
            !snap.owed.contains_key(id) && !ahead.contains(id),
            "channel {c}: finished {id:?} came back"
        );
    }
    // Not deliverable before its due time (once that has passed, "now" is as good).
    for (id, due) in &e.due {
        if let Some(o) = snap.owed.get(id) {
            prop_assert!(
                o.due_ms == *due || (o.due_ms < *due && *due <= now_ms),
                "channel {c}: {id:?} due at {due}, recovered with {} at {now_ms}",
                o.due_ms
            );
        }
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    std::fs::create_dir_all(&dir).unwrap();
    let start = Instant::now();
    let (mut b, _) = Broker::open(&dir, start, 0);
    let mut expect: Vec<Expect> = (0..CHANNELS).map(|_| Expect::default()).collect();
    let mut next_id = 0;
    let crash = |b: Broker,
                 expect: &mut Vec<Expect>,
                 junk: u8,
                 mid_checkpoint: bool|
     -> Result<Broker, TestCaseError> {
        let (dir, t_ms) = (b.dir.clone(), b.t_ms);
        drop(b);
        tear(&dir, junk);
        if mid_checkpoint {
            let mut ckpts: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.starts_with("c-0.") && n.ends_with(".ckpt")
                })
                .collect();
            ckpts.sort();
            if ckpts.len() >= 2 {
                std::fs::remove_file(ckpts.last().unwrap()).unwrap();
            }
        }
        for e in expect.iter_mut() {
            e.finish_pending.clear();
            e.due_pending.clear();
        }
        let (mut b, snaps) = Broker::open(&dir, start, t_ms);
        for (c, snap) in snaps.iter().enumerate() {
            let now_ms = b.now_ms();
            check(c, snap, b.topic.log_mut(), &expect[c], now_ms)?;
        }
        Ok(b)
    };
    for op in &ops {
        match op {
            Op::Crash(junk, mid) => b = crash(b, &mut expect, *junk, *mid)?,
            op => b.apply(op, &mut expect, &mut next_id),
        }
    }
    crash(b, &mut expect, 0, false)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_keeps_what_clients_were_told(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}

/// The interleaving behind the lost deferred messages, written out: a deferred publish
/// journaled right before a checkpoint, then a crash.
#[test]
fn deferred_publish_then_checkpoint_then_crash() {
    run(vec![
        Op::Publish(2),
        Op::Deliver(0, 2),
        Op::Dpub(2000),
        Op::Checkpoint(0),
        Op::Checkpoint(1),
        Op::Dpub(1500),
        Op::Crash(7, false),
        Op::Checkpoint(0),
        Op::Crash(0, true),
    ])
    .unwrap();
}
