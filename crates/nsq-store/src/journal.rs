//! A channel's durable state: an append-only journal of what happened to its messages, and
//! checkpoints that summarise it so journals stay short.
//!
//! A checkpoint holds the channel's cursor into the topic log and every message the channel
//! still owes (in flight, requeued or deferred) with its body, attempts and due time. The topic
//! log therefore only has to keep records from each channel's last checkpoint cursor onwards.
//! Journal generation `g` holds the events after checkpoint generation `g` was taken; recovery
//! loads the newest checkpoint and replays every journal from its generation on.
//!
//! Journal record: `len u32 | crc32c u32 | kind u8 | payload` (big-endian, CRC over kind and
//! payload). Kinds: 1 advance(pos u64), 2 attempt(n u32, ids 16×n), 3 finish(n u32, ids 16×n),
//! 4 defer(id 16, due_ms i64), 5 deferred(due_ms i64, message), 6 empty(pos u64). A message is
//! `id 16 | timestamp i64 | attempts u16 | body_len u32 | body`.
//!
//! Checkpoint file: `NSQRSCK1 | crc32c u32 (of the rest) | generation u64 | pos u64 | count u32 |
//! count × (due_ms i64 | message)`.
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut, Bytes};

use nsq_protocol::{Message, MessageId};
use nsq_queue::MessageLog;

const CKPT_MAGIC: &[u8; 8] = b"NSQRSCK1";

const ADVANCE: u8 = 1;
const ATTEMPT: u8 = 2;
const FINISH: u8 = 3;
const DEFER: u8 = 4;
const DEFERRED: u8 = 5;
const EMPTY: u8 = 6;

/// Something that happened to a channel's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The cursor moved to `pos`: the log messages below it were delivered once.
    Advance(u64),
    /// Messages redelivered from the channel's own queue (attempts + 1).
    Attempt(Vec<MessageId>),
    Finish(Vec<MessageId>),
    /// A message was deferred until `due_ms` (Unix milliseconds).
    Defer(MessageId, i64),
    /// A deferred publish copied to this channel (it is not in the topic log).
    Deferred(Message, i64),
    /// Everything was dropped; the cursor moved to `pos`.
    Empty(u64),
}

fn put_message(buf: &mut Vec<u8>, m: &Message) {
    buf.put_slice(&m.id.0);
    buf.put_i64(m.timestamp);
    buf.put_u16(m.attempts);
    buf.put_u32(m.body.len() as u32);
    buf.put_slice(&m.body);
}

fn get_message(b: &mut Bytes) -> Option<Message> {
    if b.remaining() < 30 {
        return None;
    }
    let mut id = [0u8; 16];
    b.copy_to_slice(&mut id);
    let timestamp = b.get_i64();
    let attempts = b.get_u16();
    let len = b.get_u32() as usize;
    if b.remaining() < len {
        return None;
    }
    let body = b.split_to(len);
    Some(Message {
        id: MessageId(id),
        timestamp,
        attempts,
        body,
    })
}

fn put_ids(buf: &mut Vec<u8>, ids: &[MessageId]) {
    buf.put_u32(ids.len() as u32);
    for id in ids {
        buf.put_slice(&id.0);
    }
}

fn get_ids(b: &mut Bytes) -> Option<Vec<MessageId>> {
    if b.remaining() < 4 {
        return None;
    }
    let n = b.get_u32() as usize;
    if b.remaining() < n.checked_mul(16)? {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut id = [0u8; 16];
        b.copy_to_slice(&mut id);
        out.push(MessageId(id));
    }
    Some(out)
}

/// Appends one event record to `buf`.
pub fn encode_event(buf: &mut Vec<u8>, e: &Event) {
    let start = buf.len();
    buf.put_u32(0);
    buf.put_u32(0);
    let body_at = buf.len();
    match e {
        Event::Advance(pos) => {
            buf.put_u8(ADVANCE);
            buf.put_u64(*pos);
        }
        Event::Attempt(ids) => {
            buf.put_u8(ATTEMPT);
            put_ids(buf, ids);
        }
        Event::Finish(ids) => {
            buf.put_u8(FINISH);
            put_ids(buf, ids);
        }
        Event::Defer(id, due) => {
            buf.put_u8(DEFER);
            buf.put_slice(&id.0);
            buf.put_i64(*due);
        }
        Event::Deferred(m, due) => {
            buf.put_u8(DEFERRED);
            buf.put_i64(*due);
            put_message(buf, m);
        }
        Event::Empty(pos) => {
            buf.put_u8(EMPTY);
            buf.put_u64(*pos);
        }
    }
    let len = (buf.len() - start - 4) as u32;
    let crc = crc32c::crc32c(&buf[body_at..]);
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

fn decode_event(mut b: Bytes) -> Option<Event> {
    if !b.has_remaining() {
        return None;
    }
    let kind = b.get_u8();
    let e = match kind {
        ADVANCE if b.remaining() >= 8 => Event::Advance(b.get_u64()),
        ATTEMPT => Event::Attempt(get_ids(&mut b)?),
        FINISH => Event::Finish(get_ids(&mut b)?),
        DEFER if b.remaining() >= 24 => {
            let mut id = [0u8; 16];
            b.copy_to_slice(&mut id);
            Event::Defer(MessageId(id), b.get_i64())
        }
        DEFERRED if b.remaining() >= 8 => {
            let due = b.get_i64();
            Event::Deferred(get_message(&mut b)?, due)
        }
        EMPTY if b.remaining() >= 8 => Event::Empty(b.get_u64()),
        _ => return None,
    };
    Some(e)
}

/// Decodes a journal's events, stopping at the first torn or damaged record (everything after
/// an interrupted append is discarded). Returns the events and whether damage was found before
/// the end of the data.
pub fn decode_journal(data: &Bytes) -> (Vec<Event>, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let len =
            u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let crc = u32::from_be_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        let end = pos + 4 + len;
        if len < 5 || end > data.len() {
            return (out, false);
        }
        let body = data.slice(pos + 8..end);
        if crc32c::crc32c(&body) != crc {
            return (out, end < data.len());
        }
        match decode_event(body) {
            Some(e) => out.push(e),
            None => return (out, true),
        }
        pos = end;
    }
    (out, false)
}

/// A message the channel still owes, with when it may be delivered (0: now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    pub msg: Message,
    pub due_ms: i64,
}

/// A channel's state as recovered from disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelSnapshot {
    pub generation: u64,
    /// Cursor into the topic log.
    pub pos: u64,
    /// Owed messages keyed by ID (attempts count past deliveries).
    pub owed: HashMap<MessageId, Owed>,
}

impl ChannelSnapshot {
    /// Applies one event; `log` supplies the messages an advance moved over.
    pub fn apply(&mut self, e: Event, log: &mut dyn MessageLog) {
        match e {
            Event::Advance(pos) => {
                let mut cur = self.pos.max(log.head());
                let mut batch = Vec::new();
                while cur < pos {
                    batch.clear();
                    let next = log.read(cur, (pos - cur).min(1024) as usize, &mut batch);
                    for mut m in batch.drain(..) {
                        m.attempts = m.attempts.wrapping_add(1);
                        self.owed.insert(m.id, Owed { msg: m, due_ms: 0 });
                    }
                    if next <= cur {
                        break;
                    }
                    cur = next;
                }
                self.pos = self.pos.max(pos);
            }
            Event::Attempt(ids) => {
                for id in ids {
                    if let Some(o) = self.owed.get_mut(&id) {
                        o.msg.attempts = o.msg.attempts.wrapping_add(1);
                        o.due_ms = 0;
                    }
                }
            }
            Event::Finish(ids) => {
                for id in ids {
                    self.owed.remove(&id);
                }
            }
            Event::Defer(id, due) => {
                if let Some(o) = self.owed.get_mut(&id) {
                    o.due_ms = due;
                }
            }
            Event::Deferred(msg, due) => {
                self.owed.insert(msg.id, Owed { msg, due_ms: due });
            }
            Event::Empty(pos) => {
                self.owed.clear();
                self.pos = pos;
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.put_u64(self.generation);
        body.put_u64(self.pos);
        body.put_u32(self.owed.len() as u32);
        for o in self.owed.values() {
            body.put_i64(o.due_ms);
            put_message(&mut body, &o.msg);
        }
        let mut out = CKPT_MAGIC.to_vec();
        out.put_u32(crc32c::crc32c(&body));
        out.extend_from_slice(&body);
        out
    }

    pub fn decode(data: &Bytes) -> Option<ChannelSnapshot> {
        if data.len() < 12 || &data[..8] != CKPT_MAGIC {
            return None;
        }
        let crc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let mut b = data.slice(12..);
        if crc32c::crc32c(&b) != crc || b.remaining() < 20 {
            return None;
        }
        let generation = b.get_u64();
        let pos = b.get_u64();
        let n = b.get_u32();
        let mut owed = HashMap::new();
        for _ in 0..n {
            if b.remaining() < 8 {
                return None;
            }
            let due_ms = b.get_i64();
            let msg = get_message(&mut b)?;
            owed.insert(msg.id, Owed { msg, due_ms });
        }
        Some(ChannelSnapshot {
            generation,
            pos,
            owed,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: damaged checkpoint")]
    BadCheckpoint(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where one channel's files live: `<dir>/<name>.ckpt` and `<dir>/<name>.<generation>.journal`.
#[derive(Debug, Clone)]
pub struct ChannelFiles {
    pub dir: PathBuf,
    pub name: String,
}

impl ChannelFiles {
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join(format!("{}.ckpt", self.name))
    }

    pub fn journal(&self, generation: u64) -> PathBuf {
        self.dir
            .join(format!("{}.{generation:020}.journal", self.name))
    }

    fn journals(&self) -> Result<Vec<(u64, PathBuf)>, JournalError> {
        let prefix = format!("{}.", self.name);
        let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().to_str()?.to_string();
                let gen = n
                    .strip_prefix(&prefix)?
                    .strip_suffix(".journal")?
                    .parse()
                    .ok()?;
                Some((gen, e.path()))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Loads the newest checkpoint and replays the journals after it. A missing checkpoint
    /// means a fresh channel starting at `start_pos`.
    pub fn recover(
        &self,
        log: &mut dyn MessageLog,
        start_pos: u64,
    ) -> Result<(ChannelSnapshot, bool), JournalError> {
        let ckpt_path = self.checkpoint();
        let mut snap = match std::fs::read(&ckpt_path) {
            Ok(data) => ChannelSnapshot::decode(&Bytes::from(data))
                .ok_or_else(|| JournalError::BadCheckpoint(ckpt_path.clone()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ChannelSnapshot {
                generation: 0,
                pos: start_pos,
                owed: HashMap::new(),
            },
            Err(e) => return Err(io_err(&ckpt_path)(e)),
        };
        let mut damaged = false;
        for (gen, path) in self.journals()? {
            if gen < snap.generation {
                continue;
            }
            let data = Bytes::from(std::fs::read(&path).map_err(io_err(&path))?);
            let (events, bad) = decode_journal(&data);
            damaged |= bad;
            for e in events {
                snap.apply(e, log);
            }
        }
        Ok((snap, damaged))
    }

    /// Writes `snap` as the new checkpoint and starts journal `snap.generation`, in an order
    /// that survives a crash at any step: the new (empty) journal and the checkpoint are
    /// durable before older journals are removed.
    pub fn write_checkpoint(&self, snap: &ChannelSnapshot) -> Result<File, JournalError> {
        let journal_path = self.journal(snap.generation);
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(io_err(&journal_path))?;
        let tmp = self.dir.join(format!("{}.ckpt.tmp", self.name));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&snap.encode())?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.checkpoint())?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(io_err(&tmp))?;
        for (gen, path) in self.journals()? {
            if gen < snap.generation {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(journal)
    }

    /// Removes every file of the channel (it was deleted).
    pub fn remove(&self) -> Result<(), JournalError> {
        for (_, path) in self.journals()? {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(self.checkpoint());
        Ok(())
    }
}

/// The write side of a channel's journal, shared by the channel's consumers and the
/// checkpointing task.
///
/// Events are encoded into a pending buffer under the channel lock (so their order is the
/// channel's order) and written by [`JournalWriter::flush`] after that lock is released.
/// Lock order: the I/O lock may be held while taking the channel lock (checkpointing), and the
/// channel lock while taking the pending lock; never the reverse.
#[derive(Debug)]
pub struct JournalWriter {
    files: ChannelFiles,
    pending: std::sync::Mutex<Vec<u8>>,
    /// Generation, file, and the file's length after the last complete write.
    io: std::sync::Mutex<(u64, File, u64)>,
    /// Events were appended since the last checkpoint.
    dirty: std::sync::atomic::AtomicBool,
    /// The last flushed buffer, emptied, reused as the next pending buffer (only touched with
    /// `io` held) so every flush does not start a buffer from nothing.
    spare: std::sync::Mutex<Vec<u8>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl JournalWriter {
    /// Starts writing after `snap`: writes it as a checkpoint of the next generation.
    pub fn start(
        files: ChannelFiles,
        snap: &mut ChannelSnapshot,
    ) -> Result<JournalWriter, JournalError> {
        snap.generation += 1;
        let file = files.write_checkpoint(snap)?;
        let path = files.journal(snap.generation);
        let len = file.metadata().map_err(io_err(&path))?.len();
        Ok(JournalWriter {
            pending: std::sync::Mutex::new(Vec::new()),
            io: std::sync::Mutex::new((snap.generation, file, len)),
            dirty: std::sync::atomic::AtomicBool::new(false),
            spare: std::sync::Mutex::new(Vec::new()),
            files,
        })
    }

    pub fn files(&self) -> &ChannelFiles {
        &self.files
    }

    /// Records an event (call with the channel lock held).
    pub fn append(&self, e: &Event) {
        encode_event(&mut lock(&self.pending), e);
        self.dirty.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether a checkpoint would record anything new.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn has_pending(&self) -> bool {
        !lock(&self.pending).is_empty()
    }

    /// Writes the pending events (and fsyncs with `sync`).
    pub fn flush(&self, sync: bool) -> std::io::Result<()> {
        let mut io = lock(&self.io);
        let mut spare = lock(&self.spare);
        let mut buf = std::mem::replace(&mut *lock(&self.pending), std::mem::take(&mut *spare));
        if !buf.is_empty() {
            if let Err(e) = append_whole(&mut io, &buf) {
                let mut p = lock(&self.pending);
                let mut back = buf;
                back.extend_from_slice(&p);
                *p = back;
                return Err(e);
            }
        }
        if buf.capacity() <= 1 << 20 {
            buf.clear();
            *spare = buf;
        }
        drop(spare);
        if sync {
            io.1.sync_data()?;
        }
        Ok(())
    }

    /// Replaces the journal with a checkpoint. `snapshot` is called with journal writes held
    /// off; it must return the channel's state and be consistent with every event appended
    /// before it returns (take it under the channel lock).
    pub fn checkpoint(
        &self,
        snapshot: impl FnOnce() -> ChannelSnapshot,
    ) -> Result<(), JournalError> {
        let mut io = lock(&self.io);
        self.dirty
            .store(false, std::sync::atomic::Ordering::Release);
        let mut snap = snapshot();
        // Events before the snapshot go to the old journal so it stays complete if writing the
        // checkpoint fails; later events wait in the buffer for the new journal.
        let before = std::mem::take(&mut *lock(&self.pending));
        let old = self.files.journal(io.0);
        if let Err(e) = append_whole(&mut io, &before) {
            let mut p = lock(&self.pending);
            let mut back = before;
            back.extend_from_slice(&p);
            *p = back;
            self.dirty.store(true, std::sync::atomic::Ordering::Release);
            return Err(io_err(&old)(e));
        }
        snap.generation = io.0 + 1;
        let file = self.files.write_checkpoint(&snap).inspect_err(|_| {
            self.dirty.store(true, std::sync::atomic::Ordering::Release);
        })?;
        let path = self.files.journal(snap.generation);
        let len = file.metadata().map_err(io_err(&path))?.len();
        *io = (snap.generation, file, len);
        Ok(())
    }
}

/// Appends `buf` to the journal file, or leaves the file exactly as it was: a torn record would
/// end every later replay at that point.
fn append_whole(io: &mut (u64, File, u64), buf: &[u8]) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    match io.1.write_all(buf) {
        Ok(()) => {
            io.2 += buf.len() as u64;
            Ok(())
        }
        Err(e) => {
            let _ = io.1.set_len(io.2);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsq_queue::MemoryLog;

    fn msg(i: u64) -> Message {
        Message::new(
            MessageId::from_guid(i),
            i as i64,
            Bytes::from(format!("m{i}")),
        )
    }

    fn log_with(n: u64) -> MemoryLog {
        let mut l = MemoryLog::new();
        l.append(&mut (0..n).map(msg)).unwrap();
        l
    }

    #[test]
    fn events_round_trip_and_torn_tail_is_dropped() {
        let events = vec![
            Event::Advance(3),
            Event::Attempt(vec![msg(1).id]),
            Event::Finish(vec![msg(0).id, msg(2).id]),
            Event::Defer(msg(1).id, 99),
            Event::Deferred(msg(7), 5),
            Event::Empty(9),
        ];
        let mut buf = Vec::new();
        for e in &events {
            encode_event(&mut buf, e);
        }
        let full = Bytes::from(buf.clone());
        assert_eq!(decode_journal(&full), (events.clone(), false));
        for cut in 0..buf.len() {
            let (got, damaged) = decode_journal(&Bytes::copy_from_slice(&buf[..cut]));
            assert!(!damaged);
            assert!(events.starts_with(&got));
        }
        let mut bad = buf.clone();
        bad[10] ^= 1;
        let (got, damaged) = decode_journal(&Bytes::from(bad));
        assert!(got.is_empty() && damaged);
    }

    #[test]
    fn replay_tracks_owed_messages_and_attempts() {
        let mut log = log_with(5);
        let mut s = ChannelSnapshot::default();
        s.apply(Event::Advance(3), &mut log);
        s.apply(Event::Finish(vec![msg(0).id]), &mut log);
        s.apply(Event::Attempt(vec![msg(1).id]), &mut log);
        s.apply(Event::Defer(msg(2).id, 1234), &mut log);
        s.apply(Event::Deferred(msg(10), 77), &mut log);
        assert_eq!(s.pos, 3);
        assert_eq!(s.owed.len(), 3);
        assert_eq!(s.owed[&msg(1).id].msg.attempts, 2);
        assert_eq!(s.owed[&msg(2).id].due_ms, 1234);
        assert_eq!(s.owed[&msg(2).id].msg.attempts, 1);
        assert_eq!(s.owed[&msg(10).id].due_ms, 77);
        let again = ChannelSnapshot::decode(&Bytes::from(s.encode())).unwrap();
        assert_eq!(again, s);
        s.apply(Event::Empty(5), &mut log);
        assert!(s.owed.is_empty());
        assert_eq!(s.pos, 5);
    }

    #[test]
    fn recover_from_checkpoint_and_later_journals() {
        let d = tempfile::tempdir().unwrap();
        let files = ChannelFiles {
            dir: d.path().to_path_buf(),
            name: "c".into(),
        };
        let mut log = log_with(6);
        // Fresh channel: nothing on disk.
        let (s, damaged) = files.recover(&mut log, 2).unwrap();
        assert_eq!((s.pos, s.owed.len(), damaged), (2, 0, false));
        // Generation 0 journal, then a checkpoint at generation 1, then journal 1.
        let mut j0 = Vec::new();
        encode_event(&mut j0, &Event::Advance(4));
        encode_event(&mut j0, &Event::Finish(vec![msg(2).id]));
        std::fs::write(files.journal(0), &j0).unwrap();
        let (mut s, _) = files.recover(&mut log, 2).unwrap();
        assert_eq!(s.owed.len(), 1);
        s.generation = 1;
        let mut journal = files.write_checkpoint(&s).unwrap();
        assert!(!files.journal(0).exists());
        let mut j1 = Vec::new();
        encode_event(&mut j1, &Event::Advance(6));
        encode_event(&mut j1, &Event::Finish(vec![msg(3).id, msg(4).id]));
        journal.write_all(&j1).unwrap();
        let (s, _) = files.recover(&mut log, 0).unwrap();
        assert_eq!(s.pos, 6);
        let mut owed: Vec<i64> = s.owed.values().map(|o| o.msg.timestamp).collect();
        owed.sort();
        assert_eq!(owed, vec![5]);
        // A damaged checkpoint is reported, never silently ignored.
        std::fs::write(files.checkpoint(), b"NSQRSCK1garbage").unwrap();
        assert!(matches!(
            files.recover(&mut log, 0),
            Err(JournalError::BadCheckpoint(_))
        ));
    }
}
