//! Writing a queue in Go nsqd's layout: the same segment rollover, the same meta file, the same
//! sequence of fsyncs, so Go nsqd finds exactly what it would have left itself.
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::files::{check_queue_name, queue_files, segment_path};
use crate::meta::{write_meta, QueueMeta};
use crate::{private_file_options, Error, Position, MIN_RECORD_LEN};

/// Writes `payloads` as a new queue and closes it cleanly: segments from file 0 with Go's
/// rollover at `max_bytes_per_file`, then a meta file with depth = number of records, read
/// position 0,0 and the final write position. A queue with no records gets only a meta file
/// (`0\n0,0\n0,0\n`), as Go leaves for a queue that never spilled to disk.
///
/// Fails with [`Error::QueueExists`] if the queue already has files. Payloads must be at least
/// 26 bytes; the caller checks them against the target nsqd's `--max-msg-size` (or uses
/// [`LegacyWriter::max_msg_size`]).
pub fn write_queue<P: AsRef<[u8]>>(
    dir: &Path,
    queue: &str,
    payloads: impl IntoIterator<Item = P>,
    max_bytes_per_file: i64,
) -> Result<QueueMeta, Error> {
    let mut w = LegacyWriter::create(dir, queue, max_bytes_per_file)?;
    for p in payloads {
        w.put(p.as_ref())?;
    }
    w.close()
}

/// Appends records to a new queue one at a time, as Go's disk queue writer does.
///
/// Dropping the writer without [`close`](LegacyWriter::close) leaves the files as a crash would:
/// records written since the last [`sync`](LegacyWriter::sync) or rollover are in the segment
/// but the meta file does not cover them. Tests use that, together with
/// [`write_meta`](crate::write_meta), to build the states Go nsqd leaves after a crash.
#[derive(Debug)]
pub struct LegacyWriter {
    dir: PathBuf,
    queue: String,
    max_bytes_per_file: i64,
    max_len: i64,
    meta: QueueMeta,
    /// The open write segment; `None` before the first record of a segment and after a failed
    /// write (the next write reopens it at the last good position).
    file: Option<File>,
}

impl LegacyWriter {
    /// Starts a queue at file 0, position 0. The queue must have no files yet, so the result never
    /// mixes with leftovers.
    pub fn create(dir: &Path, queue: &str, max_bytes_per_file: i64) -> Result<Self, Error> {
        check_queue_name(queue)?;
        if let Some(path) = queue_files(dir, queue)?.first() {
            return Err(Error::QueueExists {
                queue: queue.to_string(),
                path: path.clone(),
            });
        }
        Ok(LegacyWriter {
            dir: dir.to_path_buf(),
            queue: queue.to_string(),
            max_bytes_per_file,
            max_len: i64::from(i32::MAX),
            meta: QueueMeta::default(),
            file: None,
        })
    }

    /// Refuses payloads longer than `max_msg_size + 26`, the limit the target Go nsqd will
    /// read with; a longer record would make it discard the rest of the segment as corrupt.
    pub fn max_msg_size(mut self, max_msg_size: i64) -> Self {
        self.max_len = max_msg_size
            .saturating_add(MIN_RECORD_LEN as i64)
            .min(i64::from(i32::MAX));
        self
    }

    /// The state a sync would write now.
    pub fn meta(&self) -> QueueMeta {
        self.meta
    }

    /// Appends one record and returns where it starts. Before appending, moves to a new
    /// segment when the current one is not empty and the record would take it past
    /// `max_bytes_per_file`; the old segment is fsynced and the meta file rewritten, as Go does.
    pub fn put(&mut self, payload: &[u8]) -> Result<Position, Error> {
        let len = i64::try_from(payload.len()).unwrap_or(i64::MAX);
        if len < MIN_RECORD_LEN as i64 || len > self.max_len {
            return Err(Error::RecordSize {
                len: payload.len(),
                min: MIN_RECORD_LEN as i64,
                max: self.max_len,
            });
        }
        let total = 4 + len;
        let m = &mut self.meta;
        if m.write_pos > 0 && m.write_pos.saturating_add(total) > self.max_bytes_per_file {
            m.write_file_num += 1;
            m.write_pos = 0;
            // Go syncs with the new position before closing the old file.
            self.sync()?;
            self.file = None;
        }
        let at = self.meta.write_position();
        let path = segment_path(&self.dir, &self.queue, at.file_num);
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(open_segment(&path, at.pos)?),
        };
        let mut buf = Vec::with_capacity(payload.len() + 4);
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(payload);
        // One write per record, like Go, so a crash tears at most the last record.
        if let Err(e) = file.write_all(&buf) {
            self.file = None;
            return Err(Error::io("write", &path, e));
        }
        self.meta.write_pos += total;
        self.meta.depth += 1;
        Ok(at)
    }

    /// fsyncs the write segment (if one is open) and rewrites the meta file.
    pub fn sync(&mut self) -> Result<QueueMeta, Error> {
        if let Some(f) = &self.file {
            if let Err(e) = f.sync_all() {
                self.file = None;
                let path = segment_path(&self.dir, &self.queue, self.meta.write_file_num);
                return Err(Error::io("sync", &path, e));
            }
        }
        write_meta(&self.dir, &self.queue, &self.meta)?;
        Ok(self.meta)
    }

    /// Syncs and closes, like Go's clean close, then fsyncs the directory so the new names are
    /// durable too.
    pub fn close(mut self) -> Result<QueueMeta, Error> {
        let meta = self.sync()?;
        self.file = None;
        sync_dir(&self.dir)?;
        Ok(meta)
    }
}

/// Opens (creating if needed, mode 0600) a segment for writing at `pos`, cutting off anything a
/// failed write left beyond it.
fn open_segment(path: &Path, pos: i64) -> Result<File, Error> {
    let err = |e| Error::io("open", path, e);
    let mut f = private_file_options()
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(err)?;
    let pos = u64::try_from(pos).unwrap_or(0);
    f.set_len(pos).map_err(err)?;
    f.seek(SeekFrom::Start(pos)).map_err(err)?;
    Ok(f)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::meta_path;

    fn payload(body: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&0x1122_3344_5566_7788i64.to_be_bytes());
        p.extend_from_slice(&3u16.to_be_bytes());
        p.extend_from_slice(b"0123456789abcdef");
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn one_record_byte_exact() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let meta = write_queue(d, "t", [payload(b"hello")], 100 * 1024 * 1024).unwrap();

        // 4-byte length (31) then the 31-byte payload: 35 bytes.
        let mut want = vec![0, 0, 0, 31];
        want.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
        want.extend_from_slice(&[0, 3]);
        want.extend_from_slice(b"0123456789abcdef");
        want.extend_from_slice(b"hello");
        assert_eq!(want.len(), 35);
        assert_eq!(
            std::fs::read(d.join("t.diskqueue.000000.dat")).unwrap(),
            want
        );
        assert_eq!(
            std::fs::read_to_string(d.join("t.diskqueue.meta.dat")).unwrap(),
            "1\n0,0\n0,35\n"
        );
        assert_eq!(
            meta.write_position(),
            Position {
                file_num: 0,
                pos: 35
            }
        );
        // Nothing else: no temporaries, no empty next segment.
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(d.join("t.diskqueue.000000.dat")), 0o600);
            assert_eq!(mode(d.join("t.diskqueue.meta.dat")), 0o600);
        }
    }

    #[test]
    fn rollover_byte_exact() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Records of 30, 34 and 30 bytes with a 64-byte limit: 30+34 = 64 fits exactly, the
        // third goes to file 1.
        let (a, b, c) = (payload(b""), payload(b"wxyz"), payload(b""));
        let meta = write_queue(d, "t:c", [&a, &b, &c], 64).unwrap();
        let seg0 = std::fs::read(d.join("t:c.diskqueue.000000.dat")).unwrap();
        let seg1 = std::fs::read(d.join("t:c.diskqueue.000001.dat")).unwrap();
        assert_eq!(seg0.len(), 64);
        assert_eq!(&seg0[..4], &[0, 0, 0, 26]);
        assert_eq!(&seg0[4..30], &a[..]);
        assert_eq!(&seg0[30..34], &[0, 0, 0, 30]);
        assert_eq!(&seg0[34..], &b[..]);
        assert_eq!(&seg1[..4], &[0, 0, 0, 26]);
        assert_eq!(&seg1[4..], &c[..]);
        assert_eq!(
            std::fs::read_to_string(meta_path(d, "t:c")).unwrap(),
            "3\n0,0\n1,30\n"
        );
        assert_eq!(meta.depth, 3);
    }

    #[test]
    fn oversized_record_goes_alone_into_a_fresh_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let big = payload(&[7u8; 100]);
        let small = payload(b"");
        let mut w = LegacyWriter::create(d, "t", 70).unwrap();
        assert_eq!(
            w.put(&big).unwrap(),
            Position {
                file_num: 0,
                pos: 0
            }
        );
        assert_eq!(
            w.put(&small).unwrap(),
            Position {
                file_num: 1,
                pos: 0
            }
        );
        assert_eq!(
            w.put(&big).unwrap(),
            Position {
                file_num: 2,
                pos: 0
            }
        );
        assert_eq!(
            w.put(&small).unwrap(),
            Position {
                file_num: 3,
                pos: 0
            }
        );
        assert_eq!(
            w.put(&small).unwrap(),
            Position {
                file_num: 3,
                pos: 30
            }
        );
        assert_eq!(
            w.close().unwrap().write_position(),
            Position {
                file_num: 3,
                pos: 60
            }
        );
    }

    #[test]
    fn empty_queue_is_just_a_meta_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let meta = write_queue(d, "t", std::iter::empty::<&[u8]>(), 1024).unwrap();
        assert_eq!(meta, QueueMeta::default());
        assert_eq!(
            std::fs::read_to_string(meta_path(d, "t")).unwrap(),
            "0\n0,0\n0,0\n"
        );
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 1);
    }

    #[test]
    fn rollover_syncs_meta_but_unsynced_records_are_not_covered() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = payload(b"");
        let mut w = LegacyWriter::create(d, "t", 60).unwrap();
        w.put(&p).unwrap();
        w.put(&p).unwrap();
        w.put(&p).unwrap(); // rolls: meta now says 1,0
        w.put(&p).unwrap();
        drop(w);
        assert_eq!(
            std::fs::read_to_string(meta_path(d, "t")).unwrap(),
            "2\n0,0\n1,0\n"
        );
        assert_eq!(
            std::fs::metadata(segment_path(d, "t", 1)).unwrap().len(),
            60
        );
    }

    #[test]
    fn refuses_bad_sizes_and_existing_queues() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut w = LegacyWriter::create(d, "t", 1024).unwrap().max_msg_size(4);
        let err = w.put(&[0u8; 25]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid message write size (25) minMsgSize=26 maxMsgSize=30"
        );
        assert!(w.put(&payload(b"abcde")).is_err());
        w.put(&payload(b"abcd")).unwrap();
        w.close().unwrap();

        assert!(matches!(
            LegacyWriter::create(d, "t", 1024),
            Err(Error::QueueExists { .. })
        ));
        // Another queue of the same topic is unaffected.
        LegacyWriter::create(d, "t:c", 1024).unwrap();
        assert!(matches!(
            LegacyWriter::create(d, "t/../x", 1024),
            Err(Error::InvalidQueueName(_))
        ));
    }
}
