//! The link between live topics and channels and the store: opening and recovering them,
//! writing before acknowledging as `--durability` asks, checkpointing, and the final flush.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nsq_queue::{ChannelState, MessageLog, QueueError};
use nsq_store::journal::{ChannelSnapshot, Clock, Event, JournalWriter, Owed, RecoveryReport};
use nsq_store::{layout, DiskLog, Health, LogOptions, LogWriter};

use crate::channel::Channel;
use crate::options::Durability;
use crate::topic::{unix_nanos, Topic};

/// Pending bytes after which the `memory` level writes without waiting for the sync task.
const WRITE_BEHIND_BYTES: usize = 1 << 20;

/// A topic's handle on its log's writer.
pub struct TopicStore {
    pub writer: Arc<LogWriter>,
    pub level: Durability,
    pub dir: PathBuf,
    pub data_path: PathBuf,
    /// Deferred publishes held by the topic itself.
    pub held: Arc<JournalWriter>,
    /// `--sync-every`: once this many messages wait for an fsync, a background fsync starts.
    pub sync_every: u64,
    /// A background fsync is already on its way.
    pub sync_scheduled: Arc<std::sync::atomic::AtomicBool>,
    /// Damage found in the topic's files (its log and held deferred publishes).
    pub health: Arc<Health>,
    /// Serialises writes of `topic.state`; holds the head it last recorded.
    pub state_file: std::sync::Mutex<u64>,
    /// Wakes the sync loop early (a journal outgrew [`CHECKPOINT_JOURNAL_BYTES`]).
    pub checkpoint_wanted: Arc<tokio::sync::Notify>,
}

/// A channel journal this large is checkpointed without waiting for `--sync-timeout`, so the
/// journal that recovery replays stays short whatever the timeout and the traffic.
pub const CHECKPOINT_JOURNAL_BYTES: u64 = 8 << 20;

pub fn unix_ms() -> i64 {
    unix_nanos() / 1_000_000
}

/// Now, on both clocks.
fn clock() -> Clock {
    Clock {
        now: Instant::now(),
        now_ms: unix_ms(),
    }
}

/// Runs blocking storage work from async code without stalling the other tasks of this
/// runtime thread.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl TopicStore {
    /// At `write` and `fsync`, channels see a message only once it is written, and a failed
    /// write drops its messages: what a publisher was told failed is never delivered. At
    /// `memory`, messages go to channels at once and a failed background write is retried.
    pub fn releases_written(&self) -> bool {
        self.level != Durability::Memory
    }

    /// Makes the log durable up to `upto` as the level requires before acknowledging.
    pub fn commit(&self, upto: u64) -> Result<(), QueueError> {
        let res = match self.level {
            Durability::Memory if self.writer.pending_bytes() < WRITE_BEHIND_BYTES => Ok(()),
            Durability::Memory | Durability::Write => {
                // A write that starts a new segment fsyncs the old one, the new one and the
                // directory: let the runtime move other tasks off this thread meanwhile.
                let res = if self.writer.would_roll() {
                    blocking(|| self.writer.flush(upto, false))
                } else {
                    self.writer.flush(upto, false)
                };
                if upto.saturating_sub(self.writer.synced()) >= self.sync_every.max(1) {
                    self.sync_in_background(upto);
                }
                res
            }
            Durability::Fsync => blocking(|| self.writer.flush(upto, true)),
        };
        res.map_err(|e| QueueError::Write(format!("write to {} failed - {e}", self.dir.display())))
    }

    /// NSQ's `--sync-every`: fsync off the publish path once enough messages are unsynced.
    fn sync_in_background(&self, upto: u64) {
        use std::sync::atomic::Ordering;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.sync_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let writer = self.writer.clone();
        let scheduled = self.sync_scheduled.clone();
        let dir = self.dir.clone();
        handle.spawn_blocking(move || {
            if let Err(e) = writer.flush(upto, true) {
                log::error!("sync of {} failed - {e}", dir.display());
            }
            scheduled.store(false, Ordering::Release);
        });
    }

    /// Makes journal events durable as the level requires (deliveries and deferrals).
    pub fn commit_journal(&self, j: &JournalWriter) -> Result<(), QueueError> {
        if j.journal_bytes() > CHECKPOINT_JOURNAL_BYTES {
            self.checkpoint_wanted.notify_one();
        }
        let res = match self.level {
            Durability::Memory => Ok(()),
            Durability::Write => j.flush(false),
            Durability::Fsync => blocking(|| j.flush(true)),
        };
        res.map_err(|e| QueueError::Write(format!("journal write failed - {e}")))
    }
}

pub fn log_options(opts: &crate::options::Options) -> LogOptions {
    LogOptions {
        max_bytes_per_file: opts.max_bytes_per_file.max(1) as u64,
        max_body: opts.max_msg_size.max(0) as usize,
        cache_messages: opts.mem_queue_size.max(0) as usize,
    }
}

/// Opens a topic's log, reporting what recovery found.
pub fn open_topic_log(
    data_path: &Path,
    topic: &str,
    opts: &LogOptions,
) -> Result<DiskLog, nsq_store::LogError> {
    let dir = layout::topic_dir(data_path, topic);
    let (log, recovery) = DiskLog::open(&dir, opts.clone())?;
    if recovery.truncated_bytes > 0 {
        log::warn!(
            "TOPIC({topic}): cut {} bytes of an interrupted write off the end of its log",
            recovery.truncated_bytes
        );
    }
    for d in &recovery.damage {
        log::error!(
            "TOPIC({topic}): damaged data in {} at offset {} ({}), {} message(s) skipped",
            d.path.display(),
            d.offset,
            d.reason,
            d.lost
        );
    }
    if let Some(path) = &recovery.empty_last_segment {
        let text = format!(
            "TOPIC({topic}): newest segment {} was empty and is removed; if damage emptied it, the messages it held are lost",
            path.display()
        );
        log::error!("{text}");
        log.health().record(0, 0, text);
    }
    Ok(log)
}

/// Recovers the deferred publishes a topic held into `state` and continues its journal.
pub fn recover_held_deferred(
    data_path: &Path,
    topic: &str,
    state: &mut nsq_queue::TopicState,
    health: &Health,
) -> Result<Arc<JournalWriter>, nsq_store::journal::JournalError> {
    let files = layout::held_deferred_files(data_path, topic);
    let head = state.log_mut().head();
    let (mut snap, report) = files.recover(state.log_mut(), head)?;
    report_problems(&format!("TOPIC({topic})"), &report, health);
    let mut held: Vec<&Owed> = snap.owed.values().collect();
    held.sort_by_key(|o| o.msg.timestamp);
    for o in held {
        state.hold_deferred(o.msg.clone(), o.due_ms);
    }
    Ok(Arc::new(JournalWriter::start(files, &mut snap, &report)?))
}

/// Starts a fresh journal for a new channel whose cursor is at `pos`.
pub fn new_channel_journal(
    data_path: &Path,
    topic: &str,
    channel: &str,
    pos: u64,
) -> Option<Arc<JournalWriter>> {
    let files = layout::channel_files(data_path, topic, channel);
    let mut snap = ChannelSnapshot {
        generation: 0,
        pos,
        owed: Default::default(),
    };
    match JournalWriter::start(files, &mut snap, &RecoveryReport::default()) {
        Ok(j) => Some(Arc::new(j)),
        Err(e) => {
            log::error!("CHANNEL({channel}): cannot create its journal - {e}; it will not survive a restart");
            None
        }
    }
}

/// Logs what recovery found wrong (ERROR, with files and offsets) and counts it in `health`.
fn report_problems(who: &str, report: &RecoveryReport, health: &Health) {
    for p in &report.problems {
        let text = format!("{who}: {p}");
        log::error!("{text}");
        let records = match p {
            nsq_store::journal::Problem::DamagedJournal { .. }
            | nsq_store::journal::Problem::MissingJournal { .. } => 1,
            _ => 0,
        };
        let bytes = match p {
            nsq_store::journal::Problem::DamagedJournal { skipped_bytes, .. } => *skipped_bytes,
            _ => 0,
        };
        health.record(records, bytes, text);
    }
    health.record_cut(report.torn_bytes);
}

/// A recovered channel: its cursor, the cursor of the oldest checkpoint kept (the log keeps
/// records from there), and a journal that continues after a fresh checkpoint.
pub struct RecoveredChannel {
    pub pos: u64,
    pub retain: u64,
    pub journal: Arc<JournalWriter>,
}

/// Recovers a channel's cursor and owed messages from its files into `state`. Damage is
/// reported and counted in `health`; it never stops the channel.
pub fn recover_channel(
    data_path: &Path,
    topic: &str,
    channel: &str,
    log: &mut dyn MessageLog,
    state: &mut ChannelState,
    health: &Health,
) -> Result<RecoveredChannel, nsq_store::journal::JournalError> {
    let files = layout::channel_files(data_path, topic, channel);
    let head = log.head();
    let (mut snap, report) = files.recover(log, head)?;
    report_problems(&format!("CHANNEL({channel})"), &report, health);
    if snap.pos > log.tail() {
        let text = format!(
            "CHANNEL({channel}): its cursor was at {} but the topic log ends at {}; messages in between are lost",
            snap.pos,
            log.tail()
        );
        log::error!("{text}");
        health.record(snap.pos - log.tail(), 0, text);
    }
    snap.restore_into(state, clock());
    let owed = snap.owed.len();
    if owed > 0 {
        log::info!("CHANNEL({channel}): recovered {owed} unfinished message(s)");
    }
    let pos = snap.pos;
    let journal = JournalWriter::start(files, &mut snap, &report)?;
    Ok(RecoveredChannel {
        pos,
        retain: journal.retain_from().min(pos),
        journal: Arc::new(journal),
    })
}

/// The channel's durable state right now (take with journal writes held off), with the
/// channel lock still held: every journal event is appended under it.
fn snapshot<'a>(
    topic: &Topic,
    channel: &'a Channel,
) -> (
    ChannelSnapshot,
    parking_lot::MutexGuard<'a, crate::channel::ChannelInner>,
) {
    let ci = channel.inner.lock();
    let ti = topic.inner.lock();
    let pos = ti.state.channel_pos(channel.key).unwrap_or(0);
    drop(ti);
    (ChannelSnapshot::of(&ci.state, pos, clock()), ci)
}

/// Writes a checkpoint for a channel with new events, then lets its topic's log drop what the
/// channel no longer needs.
pub fn checkpoint_channel(topic: &Topic, channel: &Channel) {
    let Some(j) = channel.journal.as_ref() else {
        return;
    };
    if !j.is_dirty() {
        return;
    }
    match j.checkpoint(|| snapshot(topic, channel)) {
        Ok(retain) => topic.inner.lock().state.set_retain(channel.key, retain),
        Err(e) => log::error!("CHANNEL({}): checkpoint failed - {e}", channel.name),
    }
}

/// Background sync: fsync the log (NSQ's `--sync-timeout` behaviour at every level),
/// checkpoint channels, delete log segments nobody needs.
pub fn sync_topic(topic: &Topic) {
    let Some(store) = topic.store.as_ref() else {
        return;
    };
    let tail = topic.inner.lock().state.tail();
    if let Err(e) = store.writer.flush(tail, true) {
        log::error!("TOPIC({}): sync failed - {e}", topic.name);
    }
    for c in topic.channels() {
        if let Some(j) = c.journal.as_ref() {
            if let Err(e) = j.flush(true) {
                log::error!("CHANNEL({}): journal sync failed - {e}", c.name);
            }
        }
        checkpoint_channel(topic, &c);
    }
    if store.held.is_dirty() {
        // Held deferred publishes are journaled under the topic lock.
        let res = store.held.checkpoint(|| {
            let ti = topic.inner.lock();
            let snap = ChannelSnapshot {
                generation: 0,
                pos: 0,
                owed: ti
                    .state
                    .pending_deferred()
                    .iter()
                    .map(|p| {
                        (
                            p.msg.id,
                            Owed {
                                msg: p.msg.clone(),
                                due_ms: p.defer_ms,
                            },
                        )
                    })
                    .collect(),
            };
            (snap, ti)
        });
        if let Err(e) = res {
            log::error!(
                "TOPIC({}): checkpoint of held deferred messages failed - {e}",
                topic.name
            );
        }
    }
    save_topic_state_if_trimmed(topic);
    store.writer.delete_trimmed();
}

/// Writes `topic.state` (trim point, skip ranges, pause flags) as the topic is now. The
/// topic and channel locks are taken only to copy the values; the file is written after.
pub fn save_topic_state(topic: &Topic) -> std::io::Result<()> {
    let Some(store) = topic.store.as_ref() else {
        return Ok(());
    };
    let mut last_head = store.state_file.lock().unwrap_or_else(|e| e.into_inner());
    let channels = topic.channels();
    let mut paused_channels: Vec<String> = channels
        .iter()
        .filter(|c| !c.ephemeral && c.paused())
        .map(|c| c.name.clone())
        .collect();
    paused_channels.sort();
    let file = {
        let ti = topic.inner.lock();
        nsq_store::topic_state::TopicStateFile {
            head: ti.state.head(),
            released: ti.state.released(),
            paused: ti.state.paused(),
            skips: ti.state.skips().to_vec(),
            paused_channels,
        }
    };
    file.save(&store.dir)?;
    *last_head = file.head;
    Ok(())
}

/// Writes `topic.state` when the log's trim point moved since it was last written.
fn save_topic_state_if_trimmed(topic: &Topic) {
    let Some(store) = topic.store.as_ref() else {
        return;
    };
    let head = topic.inner.lock().state.head();
    let saved = *store.state_file.lock().unwrap_or_else(|e| e.into_inner());
    if head != saved {
        if let Err(e) = save_topic_state(topic) {
            log::error!("TOPIC({}): failed to write its state - {e}", topic.name);
        }
    }
}

/// Final flush at shutdown: every channel's in-flight and deferred messages go into its
/// checkpoint, so they are delivered again after a restart with their attempts and delays.
pub fn close_topic(topic: &Topic) {
    for c in topic.channels() {
        if let Some(j) = c.journal.as_ref() {
            // Force a checkpoint even without new events: in-flight state must be recorded.
            j.append(&Event::Attempt(Vec::new()));
        }
    }
    sync_topic(topic);
}
