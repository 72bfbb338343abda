//! The rollback converter: writing every message the native store still owes as Go disk queues,
//! then retiring the store, so Go nsqd can take the data directory over.
//!
//! What each Go queue receives, for a topic `T` listed in `nsqd.dat`:
//! * `T:C`, for every channel with a checkpoint: the channel's owed messages (oldest first,
//!   attempts kept), then every log message from the channel's cursor to the log's tail;
//! * `T`: every log message from the log's head, but only when no channel of `nsqd.dat` has a
//!   checkpoint — otherwise the channels already hold all of them and Go's pump must not copy
//!   them again.
//!
//! Durable steps, with markers in `store/` so an interrupted run is finished, never repeated
//! into duplicates:
//! 1. `legacy-export.pending` lists every Go queue about to be written (all checked absent);
//! 2. the queues are written and fsynced;
//! 3. `legacy-export.done` lists the topic directories to retire, then `pending` goes — from
//!    here the Go files are authoritative;
//! 4. the topic directories, the `done` marker and the empty store go.
//!
//! A run that finds `pending` removes those queues' files (they are its own partial output) and
//! converts again; one that finds `done` only finishes step 4. nsqd refuses to start while
//! either marker exists.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nsq_diskqueue::{list_queues, queue_name, remove_queue_files, scan_queue, LegacyWriter};
use nsq_protocol::Message;
use nsq_queue::MessageLog;
use nsq_store::journal::Owed;
use nsq_store::layout::{channel_files, store_dir, stored_channels, stored_topics, topic_dir};
use nsq_store::{DiskLog, LogOptions};

use crate::fsutil::{plain_name, read_marker, remove_dir_all, remove_file, sync_dir, write_marker};
use crate::logread::{damage_text, for_each_record, largest_body};
use crate::{
    is_ephemeral, metadata, MigrateError, DEFAULT_MAX_BYTES_PER_FILE, DEFAULT_MAX_MSG_SIZE,
};

/// In `store/` from the first Go file written until they are all durable.
pub const EXPORT_PENDING: &str = "legacy-export.pending";
/// In `store/` from the moment the Go files are complete until the store is gone.
pub const EXPORT_DONE: &str = "legacy-export.done";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The `--max-msg-size` of the nsqd that wrote the store and of the Go nsqd that will read
    /// the queues: larger bodies are refused (Go would discard them as corruption), and store
    /// records claiming more are treated as damage.
    pub max_msg_size: i64,
    /// Go's segment rollover size for the queues written.
    pub max_bytes_per_file: u64,
    /// Leave the native store in place after converting.
    pub keep_store: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            max_msg_size: DEFAULT_MAX_MSG_SIZE,
            max_bytes_per_file: DEFAULT_MAX_BYTES_PER_FILE,
            keep_store: false,
        }
    }
}

/// One Go queue written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueExport {
    pub queue: String,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicExport {
    pub topic: String,
    pub queues: Vec<QueueExport>,
}

impl TopicExport {
    pub fn messages(&self) -> u64 {
        self.queues.iter().map(|q| q.messages).sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub topics: Vec<TopicExport>,
    /// Records written over all queues.
    pub messages: u64,
    /// Damage found in the store, one line each. Any damage keeps the store in place.
    pub corrupt: Vec<String>,
    /// Store contents not converted because `nsqd.dat` does not list them (left in place).
    pub ignored: Vec<String>,
    /// No native store directory remains.
    pub store_removed: bool,
    /// An interrupted earlier run was found and finished or undone.
    pub resumed: bool,
}

/// Where a simulated crash stops the export (tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Never,
    AfterWrite,
    AfterDoneMarker,
}

/// Fails when an interrupted rollback left a marker: the directory is then half Go, half native.
pub(crate) fn check_no_rollback_pending(data_path: &Path) -> Result<(), MigrateError> {
    let store = store_dir(data_path);
    for name in [EXPORT_PENDING, EXPORT_DONE] {
        let marker = store.join(name);
        if marker.exists() {
            return Err(MigrateError::RollbackInProgress { marker });
        }
    }
    Ok(())
}

/// Converts the native store of `data_path` into Go disk queues (see the module doc for what
/// goes where), keeping `nsqd.dat` as is. The caller holds the data-path lock.
///
/// Refuses with [`MigrateError::LegacyExists`] before writing anything when a Go queue it would
/// write already has files. If a write fails, the queues written so far are removed again and
/// the store is untouched. The store is removed only after every Go file is durable, and only
/// when `keep_store` is off and no damage was found.
pub fn export_legacy(data_path: &Path, opts: &ExportOptions) -> Result<ExportReport, MigrateError> {
    export_inner(data_path, opts, Stop::Never)
}

struct TopicPlan {
    topic: String,
    /// Channels with a checkpoint, in name order.
    channels: Vec<String>,
    topic_queue: bool,
}

impl TopicPlan {
    fn queues(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .channels
            .iter()
            .map(|c| queue_name(&self.topic, Some(c)))
            .collect();
        if self.topic_queue {
            out.insert(0, self.topic.clone());
        }
        out
    }
}

pub(crate) fn export_inner(
    data_path: &Path,
    opts: &ExportOptions,
    stop: Stop,
) -> Result<ExportReport, MigrateError> {
    let store = store_dir(data_path);
    let mut report = ExportReport::default();
    if finish_done(data_path, &mut report)? {
        return Ok(report);
    }
    undo_pending(data_path, &mut report)?;
    if !store.is_dir() {
        report.store_removed = true;
        return Ok(report);
    }
    // Leftovers of an interrupted import are settled first, as nsqd would on its next start.
    crate::import::remove_stale_staging(&store)?;
    for topic in stored_topics(data_path) {
        crate::import::finish_removal(data_path, &topic)?;
    }

    let md = metadata::load(data_path)?.unwrap_or_default();
    let plans = plan(data_path, &md, &mut report);
    let existing: BTreeSet<String> = list_queues(data_path)?.into_iter().collect();
    let all: Vec<String> = plans.iter().flat_map(TopicPlan::queues).collect();
    if let Some(queue) = all.iter().find(|q| existing.contains(*q)) {
        return Err(MigrateError::LegacyExists {
            queue: queue.clone(),
            dir: data_path.to_path_buf(),
        });
    }

    write_marker(&store.join(EXPORT_PENDING), &all)?;
    let mut created = Vec::new();
    let written = plans.iter().try_for_each(|p| {
        let t = export_topic(data_path, p, opts, &mut created, &mut report.corrupt)?;
        report.topics.push(t);
        Ok::<(), MigrateError>(())
    });
    if let Err(e) = written {
        // Only this run's own output is removed; the store was never touched.
        let undone = created
            .iter()
            .try_for_each(|q| remove_queue(data_path, q))
            .and_then(|()| sync_dir(data_path))
            .and_then(|()| remove_file(&store.join(EXPORT_PENDING)));
        if let Err(u) = undone {
            log::error!("failed to remove partial output ({u}); the next run will retry");
        }
        return Err(e);
    }
    report.messages = report.topics.iter().map(TopicExport::messages).sum();
    report.corrupt.sort();
    report.corrupt.dedup();
    if stop == Stop::AfterWrite {
        return Ok(report);
    }

    if opts.keep_store || !report.corrupt.is_empty() {
        if !opts.keep_store {
            log::warn!(
                "damage was found in the native store; keeping {} for inspection",
                store.display()
            );
        }
        remove_file(&store.join(EXPORT_PENDING))?;
        sync_dir(&store)?;
        return Ok(report);
    }
    let dirs: Vec<String> = plans
        .iter()
        .filter_map(|p| plain_name(&topic_dir(data_path, &p.topic)))
        .collect();
    write_marker(&store.join(EXPORT_DONE), &dirs)?;
    remove_file(&store.join(EXPORT_PENDING))?;
    sync_dir(&store)?;
    if stop == Stop::AfterDoneMarker {
        return Ok(report);
    }
    let resumed = report.resumed;
    finish_done(data_path, &mut report)?;
    report.resumed = resumed;
    Ok(report)
}

/// Step 4: retires the topic directories named by the `done` marker, then the store itself if
/// nothing else is left in it. Returns whether a marker was found.
fn finish_done(data_path: &Path, report: &mut ExportReport) -> Result<bool, MigrateError> {
    let store = store_dir(data_path);
    let marker = store.join(EXPORT_DONE);
    let Some(dirs) = read_marker(&marker)? else {
        return Ok(false);
    };
    for d in &dirs {
        if !d.starts_with("t-") {
            return Err(MigrateError::BadMarker {
                path: marker,
                reason: format!("{d:?} is not a topic directory"),
            });
        }
        remove_dir_all(&store.join(d))?;
    }
    sync_dir(&store)?;
    remove_file(&marker)?;
    sync_dir(&store)?;
    // Fails harmlessly when topics not in nsqd.dat are still there.
    if std::fs::remove_dir(&store).is_ok() {
        sync_dir(data_path)?;
    }
    report.store_removed = !store.exists();
    report.resumed = true;
    Ok(true)
}

/// Removes what an interrupted run wrote before its Go files were complete. Every queue in the
/// marker was checked absent before the marker was written, so all their files are that run's.
fn undo_pending(data_path: &Path, report: &mut ExportReport) -> Result<(), MigrateError> {
    let store = store_dir(data_path);
    let marker = store.join(EXPORT_PENDING);
    let Some(queues) = read_marker(&marker)? else {
        return Ok(());
    };
    for q in &queues {
        remove_queue(data_path, q)?;
    }
    sync_dir(data_path)?;
    remove_file(&marker)?;
    sync_dir(&store)?;
    log::warn!(
        "removed the partial output of an interrupted rollback ({} queues); converting again",
        queues.len()
    );
    report.resumed = true;
    Ok(())
}

/// Removes every file of a Go queue.
fn remove_queue(data_path: &Path, queue: &str) -> Result<(), MigrateError> {
    // The scan is only a way to list the queue's files; any size limit is fine.
    let scan = scan_queue(data_path, queue, i64::from(i32::MAX), |_| {})?;
    remove_queue_files(&scan.files)?;
    Ok(())
}

fn plan(data_path: &Path, md: &metadata::Metadata, report: &mut ExportReport) -> Vec<TopicPlan> {
    let mut live: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for spec in md.topic_specs() {
        live.entry(spec.name).or_default().extend(spec.channels);
    }
    for t in stored_topics(data_path) {
        if !live.contains_key(&t) {
            let text = format!(
                "{} (topic {t} is not in nsqd.dat)",
                topic_dir(data_path, &t).display()
            );
            log::warn!("not converting {text}");
            report.ignored.push(text);
        }
    }
    let mut plans = Vec::new();
    for (topic, live_channels) in live {
        if !topic_dir(data_path, &topic).is_dir() {
            continue;
        }
        let mut channels = Vec::new();
        for c in stored_channels(data_path, &topic) {
            let valid = nsq_protocol::names::is_valid_channel_name(c.as_bytes());
            if is_ephemeral(&c) || !valid {
                let text = format!(
                    "{}/c-{c}.* (not a durable channel name)",
                    channel_files(data_path, &topic, &c).dir.display()
                );
                log::warn!("not converting {text}");
                report.ignored.push(text);
                continue;
            }
            if !live_channels.contains(&c) {
                // Converted anyway, so nothing is lost: Go nsqd likewise keeps a deleted
                // channel's leftover queue and ignores it unless the channel is created again.
                log::warn!("channel {topic}:{c} has a checkpoint but is not in nsqd.dat");
            }
            channels.push(c);
        }
        let topic_queue = !channels.iter().any(|c| live_channels.contains(c));
        plans.push(TopicPlan {
            topic,
            channels,
            topic_queue,
        });
    }
    plans
}

/// One Go queue being written.
struct Out {
    queue: String,
    writer: LegacyWriter,
    /// First log sequence number this queue receives.
    from: u64,
    count: u64,
}

impl Out {
    fn put(&mut self, payload: &[u8]) -> Result<(), MigrateError> {
        self.writer
            .put(payload)
            .map_err(|source| MigrateError::Queue {
                queue: self.queue.clone(),
                source,
            })?;
        self.count += 1;
        Ok(())
    }
}

fn payload(m: &Message, buf: &mut Vec<u8>) {
    buf.clear();
    m.put_payload(buf);
}

fn export_topic(
    data_path: &Path,
    plan: &TopicPlan,
    opts: &ExportOptions,
    created: &mut Vec<String>,
    corrupt: &mut Vec<String>,
) -> Result<TopicExport, MigrateError> {
    let topic = plan.topic.as_str();
    let dir = topic_dir(data_path, topic);
    let max_body = usize::try_from(opts.max_msg_size.max(0)).unwrap_or(usize::MAX);
    let log_opts = LogOptions {
        max_bytes_per_file: opts.max_bytes_per_file,
        max_body,
        cache_messages: 0,
    };
    if let Some((path, offset, body)) = largest_body(&dir)? {
        if body > max_body as u64 {
            return Err(MigrateError::StoreMessageTooLarge {
                path,
                offset,
                body,
                max: opts.max_msg_size,
            });
        }
    }
    let (mut log, recovery) = DiskLog::open(&dir, log_opts)?;
    for d in &recovery.damage {
        let text = damage_text(d);
        log::error!("damaged record in topic log: {text}");
        corrupt.push(text);
    }
    if recovery.truncated_bytes > 0 {
        log::warn!(
            "topic {topic}: cut {} bytes of an interrupted write off the log",
            recovery.truncated_bytes
        );
    }
    let (head, tail) = (log.head(), log.tail());
    let max_bytes = i64::try_from(opts.max_bytes_per_file).unwrap_or(i64::MAX);
    let create = |queue: &str| {
        LegacyWriter::create(data_path, queue, max_bytes)
            .map(|w| w.max_msg_size(opts.max_msg_size))
            .map_err(|source| MigrateError::Queue {
                queue: queue.to_string(),
                source,
            })
    };

    let mut outs = Vec::new();
    let mut buf = Vec::new();
    for c in &plan.channels {
        let files = channel_files(data_path, topic, c);
        let (snap, recovery) = files.recover(&mut log, tail)?;
        for problem in &recovery.problems {
            let text = format!("channel {c}: {problem}");
            log::error!("{text}");
            corrupt.push(text);
        }
        let queue = queue_name(topic, Some(c));
        let writer = create(&queue)?;
        created.push(queue.clone());
        let mut out = Out {
            queue,
            writer,
            from: snap.pos.max(head),
            count: 0,
        };
        let mut owed: Vec<&Owed> = snap.owed.values().collect();
        owed.sort_by_key(|o| (o.msg.timestamp, o.msg.id.0));
        for o in owed {
            payload(&o.msg, &mut buf);
            out.put(&buf)?;
        }
        outs.push(out);
    }
    if plan.topic_queue {
        let writer = create(topic)?;
        created.push(topic.to_string());
        outs.push(Out {
            queue: topic.to_string(),
            writer,
            from: head,
            count: 0,
        });
    }
    // One pass over the log feeds every queue whose cursor the record has reached.
    if let Some(from) = outs.iter().map(|o| o.from).min() {
        for_each_record(&dir, from, tail, max_body, corrupt, |seq, m| {
            payload(&m, &mut buf);
            for out in outs.iter_mut().filter(|o| seq >= o.from) {
                out.put(&buf)?;
            }
            Ok(())
        })?;
    }
    let mut queues = Vec::new();
    for out in outs {
        out.writer.close().map_err(|source| MigrateError::Queue {
            queue: out.queue.clone(),
            source,
        })?;
        queues.push(QueueExport {
            queue: out.queue,
            messages: out.count,
        });
    }
    let exported = TopicExport {
        topic: topic.to_string(),
        queues,
    };
    log::info!(
        "topic {topic}: wrote {} messages to Go disk queues",
        exported.messages()
    );
    Ok(exported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::import::{import_legacy, ImportOptions, TopicSpec};

    /// A store with topic `t` (channels `a` with owed messages, `b` without) built by importing.
    fn store(d: &Path) -> (Vec<Key>, Vec<Key>) {
        let topic: Vec<Message> = (0..6).map(|i| msg(i, 0, "t")).collect();
        let chan: Vec<Message> = (50..53).map(|i| msg(i, 4, "a")).collect();
        write_legacy(d, "t", &topic, 1 << 20);
        write_legacy(d, "t:a", &chan, 1 << 20);
        write_nsqd_dat(d, &[("t", &["a", "b"])]);
        let specs = [TopicSpec {
            name: "t".into(),
            channels: vec!["a".into(), "b".into()],
        }];
        import_legacy(d, &specs, &ImportOptions::default()).unwrap();
        let a = sorted(&topic.iter().chain(&chan).collect::<Vec<_>>());
        let b = sorted(&topic.iter().collect::<Vec<_>>());
        (a, b)
    }

    #[test]
    fn crash_while_writing_is_undone_and_redone() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = store(d.path());
        let opts = ExportOptions::default();
        export_inner(d.path(), &opts, Stop::AfterWrite).unwrap();
        assert!(store_dir(d.path()).join(EXPORT_PENDING).exists());
        // nsqd must not start on a half-converted directory.
        let e = import_legacy(d.path(), &[], &ImportOptions::default()).unwrap_err();
        assert!(matches!(e, MigrateError::RollbackInProgress { .. }), "{e}");
        // Simulate a torn last queue: the rerun must discard it, not refuse or merge.
        std::fs::write(d.path().join("t:b.diskqueue.000000.dat"), b"\0\0").unwrap();
        let r = export_legacy(d.path(), &opts).unwrap();
        assert!(r.resumed && r.store_removed, "{r:?}");
        assert_eq!(legacy_view(d.path(), "t:a"), a);
        assert_eq!(legacy_view(d.path(), "t:b"), b);
        assert!(!store_dir(d.path()).exists());
    }

    #[test]
    fn crash_after_done_marker_only_finishes_removal() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = store(d.path());
        let opts = ExportOptions::default();
        export_inner(d.path(), &opts, Stop::AfterDoneMarker).unwrap();
        assert!(store_dir(d.path()).join(EXPORT_DONE).exists());
        assert!(topic_dir(d.path(), "t").exists());
        let r = export_legacy(d.path(), &opts).unwrap();
        assert!(r.resumed && r.store_removed && r.topics.is_empty(), "{r:?}");
        assert_eq!(legacy_view(d.path(), "t:a"), a);
        assert_eq!(legacy_view(d.path(), "t:b"), b);
        assert!(!store_dir(d.path()).exists());
    }

    #[test]
    fn failed_write_removes_partial_output_and_keeps_the_store() {
        let d = tempfile::tempdir().unwrap();
        store(d.path());
        // Log bodies are 3 bytes (`t-0`), owed ones 4 (`a-50`): the log passes the size
        // check, the first owed message fails to write.
        let opts = ExportOptions {
            max_msg_size: 3,
            ..ExportOptions::default()
        };
        let e = export_legacy(d.path(), &opts).unwrap_err().to_string();
        assert!(e.contains("invalid message write size"), "{e}");
        assert!(list_queues(d.path()).unwrap().is_empty());
        assert!(!store_dir(d.path()).join(EXPORT_PENDING).exists());
        assert!(topic_dir(d.path(), "t").exists());
    }

    #[test]
    fn too_small_a_size_limit_is_refused_before_the_store_is_opened() {
        let d = tempfile::tempdir().unwrap();
        let (_, b) = store(d.path());
        let before = log_view(d.path(), "t");
        let opts = ExportOptions {
            max_msg_size: 2,
            ..ExportOptions::default()
        };
        let e = export_legacy(d.path(), &opts).unwrap_err();
        assert!(
            matches!(
                e,
                MigrateError::StoreMessageTooLarge {
                    body: 3,
                    max: 2,
                    ..
                }
            ),
            "{e}"
        );
        // Nothing was cut off the log, and a correct limit then converts everything.
        assert_eq!(log_view(d.path(), "t"), before);
        assert!(!store_dir(d.path()).join(EXPORT_PENDING).exists());
        export_legacy(d.path(), &ExportOptions::default()).unwrap();
        assert_eq!(legacy_view(d.path(), "t:b"), b);
    }
}
