//! The in-place upgrade: turning the Go disk queues of a data directory into native topic logs
//! and channel checkpoints, once, without losing or duplicating a message across a crash.
//!
//! Order of durable steps for one topic `T`:
//! 1. build everything in `store/importing-T` (log segments fsynced, checkpoints written), plus a
//!    marker `legacy-import.done` naming the Go files consumed;
//! 2. rename the staging directory to `store/t-T` and fsync `store/` — from here the native copy
//!    is authoritative;
//! 3. remove the named Go files, fsync the data directory, remove the marker.
//!
//! A crash before 2 leaves the Go files untouched and a staging directory that the next run
//! throws away before importing again. A crash after 2 leaves the marker, and the next run only
//! finishes step 3. The staging name deliberately does not start with `t-`: every `t-<name>`
//! could be a real topic (`T.importing` is a valid topic name), and the store lists topics by
//! that prefix.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use nsq_diskqueue::{list_queues, queue_name, remove_queue_files, scan_queue, segment_path};
use nsq_protocol::Message;
use nsq_queue::MessageLog;
use nsq_store::journal::{ChannelSnapshot, Owed};
use nsq_store::layout::{channel_files, store_dir, stored_topics, topic_dir};
use nsq_store::{DiskLog, LogOptions};

use crate::fsutil::{plain_name, read_marker, remove_dir_all, remove_file, sync_dir, write_marker};
use crate::{is_ephemeral, MigrateError, DEFAULT_MAX_BYTES_PER_FILE, DEFAULT_MAX_MSG_SIZE};

/// Inside a topic's store directory while its Go files are being removed.
pub const IMPORT_MARKER: &str = "legacy-import.done";
/// Prefix of a topic's staging directory inside `store/`.
const STAGING_PREFIX: &str = "importing-";

/// Appends are flushed to the log file in batches this large, so memory stays bounded however
/// long the Go queue is.
const BATCH_MESSAGES: usize = 1024;
const BATCH_BYTES: usize = 4 << 20;

/// A durable topic and its durable channels, as listed in `nsqd.dat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub channels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// nsqd's `--max-msg-size`: the longest body the Go files may hold and the native log
    /// accepts.
    pub max_msg_size: i64,
    /// nsqd's `--max-bytes-per-file`, used for the native log's segments.
    pub max_bytes_per_file: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_msg_size: DEFAULT_MAX_MSG_SIZE,
            max_bytes_per_file: DEFAULT_MAX_BYTES_PER_FILE,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Topics converted by this call.
    pub topics: usize,
    /// Records moved from topic queues into native logs.
    pub messages: u64,
    /// Records moved from channel queues into channel checkpoints.
    pub channel_messages: u64,
    /// Damage skipped while reading the Go files, one line each (file and offset).
    pub corrupt: Vec<String>,
    /// Go queues of topics or channels not in `nsqd.dat`, left untouched (Go nsqd ignores them
    /// too).
    pub ignored_queues: Vec<String>,
}

/// Where a simulated crash stops the import (tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Never,
    BeforeRename,
    BeforeRemoval,
}

/// Upgrades the Go disk queues of `data_path` in place; called by nsqd after loading
/// `nsqd.dat` and before serving. `topics` are the durable topics and channels of `nsqd.dat`
/// (ephemeral names are skipped here anyway).
///
/// For every listed topic with Go files: the topic queue's unread records become the topic's
/// native log, which every listed channel then reads from the start (the Go pump had not yet
/// copied them to any channel); a channel queue's records become that channel's owed messages,
/// due now, with attempts and timestamps preserved. Listed channels without Go files still get a
/// checkpoint whose cursor sees the imported topic messages.
///
/// A topic that already has a native store directory *and* Go files with no import marker is
/// refused with [`MigrateError::MixedState`] before anything is changed: that only happens when
/// both daemons have run on the directory, and neither side can be known to be the newer one.
/// Calling this again after success is a no-op.
pub fn import_legacy(
    data_path: &Path,
    topics: &[TopicSpec],
    opts: &ImportOptions,
) -> Result<ImportReport, MigrateError> {
    import_inner(data_path, topics, opts, Stop::Never)
}

/// The Go queues of one topic that will be imported.
#[derive(Debug, Default)]
struct TopicPlan {
    topic_queue: bool,
    channel_queues: BTreeSet<String>,
}

pub(crate) fn import_inner(
    data_path: &Path,
    topics: &[TopicSpec],
    opts: &ImportOptions,
    stop: Stop,
) -> Result<ImportReport, MigrateError> {
    crate::export::check_no_rollback_pending(data_path)?;
    let mut report = ImportReport::default();
    let store = store_dir(data_path);
    remove_stale_staging(&store)?;
    for topic in stored_topics(data_path) {
        finish_removal(data_path, &topic)?;
    }

    let live: BTreeMap<&str, BTreeSet<&str>> = topics
        .iter()
        .filter(|t| !is_ephemeral(&t.name))
        .map(|t| {
            let chans = t
                .channels
                .iter()
                .filter(|c| !is_ephemeral(c))
                .map(String::as_str)
                .collect();
            (t.name.as_str(), chans)
        })
        .collect();

    let mut plans: BTreeMap<&str, TopicPlan> = BTreeMap::new();
    for queue in list_queues(data_path)? {
        let (topic, channel) = match queue.split_once(':') {
            Some((t, c)) => (t, Some(c)),
            None => (queue.as_str(), None),
        };
        let Some((&topic, chans)) = live.get_key_value(topic) else {
            report.ignored_queues.push(queue);
            continue;
        };
        match channel {
            None => plans.entry(topic).or_default().topic_queue = true,
            Some(c) if chans.contains(c) => {
                let plan = plans.entry(topic).or_default();
                plan.channel_queues.insert(c.to_string());
            }
            Some(_) => report.ignored_queues.push(queue),
        }
    }
    for q in &report.ignored_queues {
        log::warn!("Go disk queue {q} belongs to no topic or channel in nsqd.dat; left as is");
    }

    // Checked for every topic before any is converted, so a refusal changes nothing.
    for (topic, plan) in &plans {
        let dir = topic_dir(data_path, topic);
        if dir.exists() {
            let mut queues: Vec<String> = plan
                .channel_queues
                .iter()
                .map(|c| queue_name(topic, Some(c)))
                .collect();
            if plan.topic_queue {
                queues.insert(0, topic.to_string());
            }
            return Err(MigrateError::MixedState {
                topic: topic.to_string(),
                store_dir: dir,
                queues,
            });
        }
    }

    if !plans.is_empty() {
        std::fs::create_dir_all(&store).map_err(|e| MigrateError::io("create", &store, e))?;
        sync_dir(data_path)?;
    }
    for (topic, plan) in &plans {
        let chans = live.get(topic).cloned().unwrap_or_default();
        import_topic(data_path, topic, &chans, plan, opts, stop, &mut report)?;
        report.topics += 1;
    }
    Ok(report)
}

/// Staging directories exist only while an import runs; one found now is from a crash before
/// its rename, when the Go files were still complete, so it is thrown away and redone.
pub(crate) fn remove_stale_staging(store: &Path) -> Result<(), MigrateError> {
    let entries = match std::fs::read_dir(store) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(MigrateError::io("read directory", store, e)),
    };
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(|e| MigrateError::io("read directory", store, e))?;
        let is_staging = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(STAGING_PREFIX));
        if is_staging {
            log::warn!(
                "removing {} left by an interrupted import; importing again",
                entry.path().display()
            );
            remove_dir_all(&entry.path())?;
            removed = true;
        }
    }
    if removed {
        sync_dir(store)?;
    }
    Ok(())
}

/// Completes step 3 for a topic whose import marker survived a crash. Returns whether there
/// was anything to finish.
pub(crate) fn finish_removal(data_path: &Path, topic: &str) -> Result<bool, MigrateError> {
    let dir = topic_dir(data_path, topic);
    let marker = dir.join(IMPORT_MARKER);
    let Some(names) = read_marker(&marker)? else {
        return Ok(false);
    };
    let files: Vec<PathBuf> = names.iter().map(|n| data_path.join(n)).collect();
    remove_queue_files(&files)?;
    sync_dir(data_path)?;
    remove_file(&marker)?;
    sync_dir(&dir)?;
    log::info!(
        "topic {topic}: removed {} Go disk queue files already imported",
        files.len()
    );
    Ok(true)
}

fn log_options(opts: &ImportOptions) -> LogOptions {
    LogOptions {
        max_bytes_per_file: opts.max_bytes_per_file,
        max_body: usize::try_from(opts.max_msg_size.max(0)).unwrap_or(usize::MAX),
        // Nothing reads the log during the import.
        cache_messages: 0,
    }
}

fn import_topic(
    data_path: &Path,
    topic: &str,
    channels: &BTreeSet<&str>,
    plan: &TopicPlan,
    opts: &ImportOptions,
    stop: Stop,
    report: &mut ImportReport,
) -> Result<(), MigrateError> {
    let store = store_dir(data_path);
    let staging = store.join(format!("{STAGING_PREFIX}{topic}"));
    remove_dir_all(&staging)?;
    std::fs::create_dir(&staging).map_err(|e| MigrateError::io("create", &staging, e))?;
    let mut consumed: Vec<PathBuf> = Vec::new();

    let (mut log, _) = DiskLog::open(&staging, log_options(opts))?;
    if plan.topic_queue {
        let files = import_topic_queue(data_path, topic, &mut log, opts, report)?;
        consumed.extend(files);
    }
    let start = log.head();
    let imported = log.tail() - start;
    for &channel in channels {
        let mut owed = HashMap::new();
        if plan.channel_queues.contains(channel) {
            let files = read_channel_queue(data_path, topic, channel, &mut owed, opts, report)?;
            consumed.extend(files);
        }
        report.channel_messages += owed.len() as u64;
        let mut files = channel_files(data_path, topic, channel);
        files.dir = staging.clone();
        // Generation 1 is what a channel journal started from nothing would write; nsqd
        // recovers it and carries on from generation 2.
        let snap = ChannelSnapshot {
            generation: 1,
            pos: start,
            owed,
        };
        files.write_checkpoint(&snap, snap.generation)?;
    }
    drop(log);

    let names: Vec<String> = consumed.iter().filter_map(|p| plain_name(p)).collect();
    write_marker(&staging.join(IMPORT_MARKER), &names)?;
    if stop == Stop::BeforeRename {
        return Ok(());
    }
    let target = topic_dir(data_path, topic);
    std::fs::rename(&staging, &target).map_err(|e| MigrateError::io("rename", &staging, e))?;
    sync_dir(&store)?;
    log::info!(
        "topic {topic}: imported {imported} messages and {} channels from Go disk queues",
        channels.len()
    );
    if stop == Stop::BeforeRemoval {
        return Ok(());
    }
    finish_removal(data_path, topic)?;
    Ok(())
}

/// Describes and logs what the Go reader skipped.
fn note_damage(
    data_path: &Path,
    queue: &str,
    scan: &nsq_diskqueue::QueueScan,
    undecodable: u64,
    report: &mut ImportReport,
) {
    for span in &scan.corrupt {
        let path = segment_path(data_path, queue, span.file_num);
        let text = format!("{} offset {}: {}", path.display(), span.offset, span.reason);
        log::warn!("skipping corrupt Go disk queue data: {text}");
        report.corrupt.push(text);
    }
    if let Some(bad) = &scan.bad_meta {
        log::error!("{bad}; read every segment from the oldest");
        report.corrupt.push(bad.to_string());
    }
    if undecodable > 0 {
        let text = format!("{queue}: {undecodable} records too short to be messages");
        log::warn!("skipping {text}");
        report.corrupt.push(text);
    }
}

fn import_topic_queue(
    data_path: &Path,
    topic: &str,
    log: &mut DiskLog,
    opts: &ImportOptions,
    report: &mut ImportReport,
) -> Result<Vec<PathBuf>, MigrateError> {
    let dir = log.dir().to_path_buf();
    let mut batch: Vec<Message> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut undecodable = 0u64;
    let mut failed: Option<MigrateError> = None;
    let scan = scan_queue(data_path, topic, opts.max_msg_size, |payload: Bytes| {
        if failed.is_some() {
            return;
        }
        let Some(m) = Message::decode(&payload) else {
            undecodable += 1;
            return;
        };
        batch_bytes += m.body.len();
        batch.push(m);
        if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
            batch_bytes = 0;
            if let Err(e) = append(log, &dir, &mut batch, false) {
                failed = Some(e);
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    append(log, &dir, &mut batch, true)?;
    report.messages += log.tail() - log.head();
    note_damage(data_path, topic, &scan, undecodable, report);
    Ok(scan.files)
}

fn append(
    log: &mut DiskLog,
    dir: &Path,
    batch: &mut Vec<Message>,
    sync: bool,
) -> Result<(), MigrateError> {
    log.append(&mut batch.drain(..))
        .map_err(|e| MigrateError::io("append to", dir, std::io::Error::other(e.to_string())))?;
    log.writer()
        .flush(log.tail(), sync)
        .map_err(|e| MigrateError::io("write", dir, e))
}

fn read_channel_queue(
    data_path: &Path,
    topic: &str,
    channel: &str,
    owed: &mut HashMap<nsq_protocol::MessageId, Owed>,
    opts: &ImportOptions,
    report: &mut ImportReport,
) -> Result<Vec<PathBuf>, MigrateError> {
    let queue = queue_name(topic, Some(channel));
    let mut undecodable = 0u64;
    let mut duplicates = 0u64;
    let scan = scan_queue(data_path, &queue, opts.max_msg_size, |payload: Bytes| {
        let Some(msg) = Message::decode(&payload) else {
            undecodable += 1;
            return;
        };
        // A message requeued to disk after being read from it can be there twice; the later
        // copy has the higher attempts count.
        if owed.insert(msg.id, Owed { msg, due_ms: 0 }).is_some() {
            duplicates += 1;
        }
    })?;
    if duplicates > 0 {
        log::warn!(
            "Go disk queue {queue}: {duplicates} messages appeared twice; kept the later copy"
        );
    }
    note_damage(data_path, &queue, &scan, undecodable, report);
    Ok(scan.files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    fn specs() -> Vec<TopicSpec> {
        vec![TopicSpec {
            name: "t".into(),
            channels: vec!["a".into(), "b".into()],
        }]
    }

    fn fixture(d: &Path) -> (Vec<Message>, Vec<Message>) {
        let topic: Vec<Message> = (0..10).map(|i| msg(i, (i % 3) as u16, "topic")).collect();
        let chan: Vec<Message> = (100..104).map(|i| msg(i, 5, "chan-a")).collect();
        write_legacy(d, "t", &topic, 200);
        write_legacy(d, "t:a", &chan, 200);
        (topic, chan)
    }

    fn check(d: &Path, topic: &[Message], chan: &[Message]) {
        let mut want_a: Vec<_> = topic.iter().chain(chan).map(key).collect();
        want_a.sort();
        let mut want_b: Vec<_> = topic.iter().map(key).collect();
        want_b.sort();
        assert_eq!(native_view(d, "t", "a"), want_a);
        assert_eq!(native_view(d, "t", "b"), want_b);
        assert!(list_queues(d).unwrap().is_empty());
        assert!(!topic_dir(d, "t").join(IMPORT_MARKER).exists());
    }

    #[test]
    fn crash_after_rename_finishes_removal_without_duplicates() {
        let d = tempfile::tempdir().unwrap();
        let (topic, chan) = fixture(d.path());
        let opts = ImportOptions::default();
        let r = import_inner(d.path(), &specs(), &opts, Stop::BeforeRemoval).unwrap();
        assert_eq!((r.topics, r.messages, r.channel_messages), (1, 10, 4));
        // The crash left the native topic, its marker and every Go file.
        assert!(topic_dir(d.path(), "t").join(IMPORT_MARKER).exists());
        assert_eq!(list_queues(d.path()).unwrap(), ["t", "t:a"]);
        let r = import_legacy(d.path(), &specs(), &opts).unwrap();
        assert_eq!(r, ImportReport::default());
        check(d.path(), &topic, &chan);
    }

    #[test]
    fn crash_before_rename_is_redone() {
        let d = tempfile::tempdir().unwrap();
        let (topic, chan) = fixture(d.path());
        let opts = ImportOptions::default();
        import_inner(d.path(), &specs(), &opts, Stop::BeforeRename).unwrap();
        let staging = store_dir(d.path()).join("importing-t");
        assert!(staging.exists());
        assert!(!topic_dir(d.path(), "t").exists());
        // Damage the abandoned staging copy: it must not be trusted.
        std::fs::write(staging.join("seg-00000000000000000000.log"), b"junk").unwrap();
        let r = import_legacy(d.path(), &specs(), &opts).unwrap();
        assert_eq!((r.topics, r.messages, r.channel_messages), (1, 10, 4));
        assert!(!staging.exists());
        check(d.path(), &topic, &chan);
    }

    #[test]
    fn staging_name_cannot_collide_with_a_topic() {
        let d = tempfile::tempdir().unwrap();
        let dotted = vec![
            TopicSpec {
                name: "t".into(),
                channels: vec![],
            },
            TopicSpec {
                name: "t.importing".into(),
                channels: vec![],
            },
        ];
        write_legacy(d.path(), "t", &[msg(1, 0, "x")], 1 << 20);
        write_legacy(d.path(), "t.importing", &[msg(2, 0, "y")], 1 << 20);
        let r = import_legacy(d.path(), &dotted, &ImportOptions::default()).unwrap();
        assert_eq!((r.topics, r.messages), (2, 2));
        assert_eq!(stored_topics(d.path()), ["t", "t.importing"]);
        assert_eq!(
            log_view(d.path(), "t.importing"),
            vec![key(&msg(2, 0, "y"))]
        );
    }
}
