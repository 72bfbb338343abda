//! Reading a queue left by Go nsqd: every record it would still hand out, in order, plus a report
//! of what was damaged or missing.
//!
//! The reader salvages rather than mirrors Go exactly where Go would lose data: it reads the
//! unsynced tail of the write segment and segments past the meta's write file (both can exist
//! after a crash), and without a usable meta file it reads every segment from the oldest. That
//! can replay records consumed since the last sync, which NSQ's at-least-once delivery allows.
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::files::{check_queue_name, queue_files};
use crate::meta::{read_meta, BadMeta, QueueMeta};
use crate::{Error, Position, MIN_RECORD_LEN};

/// Why part of a queue could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorruptReason {
    /// A record length outside `[26, max_msg_size + 26]`; nothing after it in the segment can
    /// be framed.
    InvalidLength(i32),
    /// The segment ends inside a record (its length prefix or its payload).
    Truncated { file_size: i64 },
    /// Segments `file_num..=last_file_num` should hold unread records but do not exist.
    Missing { last_file_num: i64 },
    /// The meta file's read position is negative or past the end of its segment.
    ReadPosOutOfRange { file_size: i64 },
    /// The write segment ends cleanly before the meta file's write position.
    ShortSegment { write_pos: i64 },
}

impl std::fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorruptReason::InvalidLength(n) => write!(f, "invalid message read size ({n})"),
            CorruptReason::Truncated { file_size } => {
                write!(f, "record truncated by end of file (size {file_size})")
            }
            CorruptReason::Missing { last_file_num } => {
                write!(f, "segment files missing through {last_file_num:06}")
            }
            CorruptReason::ReadPosOutOfRange { file_size } => {
                write!(f, "read position outside file (size {file_size})")
            }
            CorruptReason::ShortSegment { write_pos } => {
                write!(f, "file ends before write position {write_pos}")
            }
        }
    }
}

/// A stretch of a queue that was skipped: from `offset` in segment `file_num` to the end of that
/// segment (for [`CorruptReason::Missing`], whole segments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptSpan {
    pub file_num: i64,
    pub offset: i64,
    pub reason: CorruptReason,
}

impl std::fmt::Display for CorruptSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "segment {:06} offset {}: {}",
            self.file_num, self.offset, self.reason
        )
    }
}

/// Everything [`scan_queue`] learned besides the records themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueScan {
    /// Number of records passed to the callback.
    pub record_count: u64,
    /// Skipped stretches, in file order.
    pub corrupt: Vec<CorruptSpan>,
    /// The meta file, when it exists and parses.
    pub meta: Option<QueueMeta>,
    /// The meta file, when it exists and does not parse (reading then starts at the oldest
    /// segment).
    pub bad_meta: Option<BadMeta>,
    /// Every file of the queue (segments, including already consumed ones, the meta file and
    /// stray meta temporaries), to remove once the records are stored elsewhere. Quarantined
    /// `.bad` segments are not included.
    pub files: Vec<PathBuf>,
}

/// A whole queue read into memory by [`read_queue`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyQueue {
    /// Unread record payloads (serialized messages), in queue order.
    pub records: Vec<Bytes>,
    pub corrupt: Vec<CorruptSpan>,
    pub meta: Option<QueueMeta>,
    pub bad_meta: Option<BadMeta>,
    pub files: Vec<PathBuf>,
}

/// Reads every unread record of `queue` into memory. See [`scan_queue`].
pub fn read_queue(dir: &Path, queue: &str, max_msg_size: i64) -> Result<LegacyQueue, Error> {
    let mut records = Vec::new();
    let scan = scan_queue(dir, queue, max_msg_size, |r| records.push(r))?;
    Ok(LegacyQueue {
        records,
        corrupt: scan.corrupt,
        meta: scan.meta,
        bad_meta: scan.bad_meta,
        files: scan.files,
    })
}

/// Passes every unread record of `queue` to `on_record`, in order, holding at most one record
/// in memory. `max_msg_size` is the Go nsqd's `--max-msg-size` (a record may be 26 bytes
/// longer).
///
/// Reading starts at the meta file's read position (or the oldest segment without a usable meta
/// file) and covers every later segment to its actual size. Damage is reported, never fatal: a
/// bad length or a truncated record ends that segment and reading goes on with the next one.
/// Only I/O errors other than a missing file fail the scan.
pub fn scan_queue(
    dir: &Path,
    queue: &str,
    max_msg_size: i64,
    mut on_record: impl FnMut(Bytes),
) -> Result<QueueScan, Error> {
    check_queue_name(queue)?;
    let files = queue_files(dir, queue)?;
    let (meta, bad_meta) = match read_meta(dir, queue) {
        Ok(meta) => (meta, None),
        Err(Error::BadMeta(bad)) => (None, Some(*bad)),
        Err(e) => return Err(e),
    };
    let limits = Limits {
        min: MIN_RECORD_LEN as i64,
        max: max_msg_size.saturating_add(MIN_RECORD_LEN as i64),
    };

    let mut scan = QueueScan {
        meta,
        bad_meta,
        files: files.all(),
        ..QueueScan::default()
    };
    let start = match meta {
        Some(m) => {
            scan.corrupt.extend(missing_segments(&m, &files.segments));
            m.read_position()
        }
        None => Position {
            file_num: files.segments.keys().next().copied().unwrap_or(0),
            pos: 0,
        },
    };

    let mut count = 0u64;
    let mut deliver = |r: Bytes| {
        count += 1;
        on_record(r);
    };
    for (&file_num, path) in files.segments.range(start.file_num..) {
        let seg = Segment {
            file_num,
            path,
            from: if file_num == start.file_num {
                start.pos
            } else {
                0
            },
            write_pos: meta
                .filter(|m| m.write_file_num == file_num)
                .map(|m| m.write_pos),
        };
        if let Some(span) = seg.read(limits, &mut deliver)? {
            scan.corrupt.push(span);
        }
    }
    scan.record_count = count;
    scan.corrupt.sort_by_key(|s| (s.file_num, s.offset));
    Ok(scan)
}

/// Gaps among the segments that the meta file says still hold unread records: every file from
/// the read file up to the write file, the write file only if it has data past the read
/// position.
fn missing_segments(
    m: &QueueMeta,
    present: &std::collections::BTreeMap<i64, PathBuf>,
) -> Vec<CorruptSpan> {
    let write_file_has_data = if m.write_file_num == m.read_file_num {
        m.write_pos > m.read_pos
    } else {
        m.write_pos > 0
    };
    let last = if write_file_has_data {
        Some(m.write_file_num)
    } else {
        m.write_file_num.checked_sub(1)
    };
    let Some(last) = last.filter(|&l| l >= m.read_file_num) else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    let gap = |from: i64, to: i64| CorruptSpan {
        file_num: from,
        offset: 0,
        reason: CorruptReason::Missing { last_file_num: to },
    };
    // `next` is None once the file numbers run out, so no arithmetic can overflow.
    let mut next = Some(m.read_file_num);
    for &n in present.range(m.read_file_num..=last).map(|(n, _)| n) {
        if let Some(want) = next.filter(|&w| w < n) {
            spans.push(gap(want, n - 1));
        }
        next = n.checked_add(1);
    }
    if let Some(want) = next.filter(|&w| w <= last) {
        spans.push(gap(want, last));
    }
    spans
}

#[derive(Clone, Copy)]
struct Limits {
    min: i64,
    max: i64,
}

struct Segment<'a> {
    file_num: i64,
    path: &'a Path,
    /// Where reading starts in this file.
    from: i64,
    /// The meta file's write position, when this is its write segment.
    write_pos: Option<i64>,
}

impl Segment<'_> {
    /// Reads the segment's records up to its current size, returning the damage that ended
    /// reading early, if any.
    fn read(
        &self,
        limits: Limits,
        deliver: &mut impl FnMut(Bytes),
    ) -> Result<Option<CorruptSpan>, Error> {
        let span = |offset: i64, reason: CorruptReason| {
            Ok(Some(CorruptSpan {
                file_num: self.file_num,
                offset,
                reason,
            }))
        };
        let io_err = |e| Error::io("read", self.path, e);
        let mut file = match std::fs::File::open(self.path) {
            Ok(f) => f,
            // Removed since the directory was listed.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let last_file_num = self.file_num;
                return span(0, CorruptReason::Missing { last_file_num });
            }
            Err(e) => return Err(io_err(e)),
        };
        let size = file.metadata().map_err(io_err)?.len();
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let Some(from) = u64::try_from(self.from).ok().filter(|_| self.from <= size) else {
            return span(
                self.from,
                CorruptReason::ReadPosOutOfRange { file_size: size },
            );
        };
        file.seek(SeekFrom::Start(from)).map_err(io_err)?;
        // Go measures a finished segment's end once, when it opens it; so does this.
        let mut r = BufReader::with_capacity(64 * 1024, file.take(size.abs_diff(self.from)));
        let truncated = CorruptReason::Truncated { file_size: size };

        let mut pos = self.from;
        while pos < size {
            let mut prefix = [0u8; 4];
            match read_exact_or_eof(&mut r, &mut prefix).map_err(io_err)? {
                true => {}
                false => return span(pos, truncated),
            }
            let len = i32::from_be_bytes(prefix);
            let len64 = i64::from(len);
            if len64 < limits.min || len64 > limits.max {
                return span(pos, CorruptReason::InvalidLength(len));
            }
            // Checked before allocating, so a damaged length cannot cost more memory than the
            // file holds.
            if len64 > size - pos - 4 {
                return span(pos, truncated);
            }
            let Ok(ulen) = usize::try_from(len) else {
                return span(pos, CorruptReason::InvalidLength(len));
            };
            let mut payload = vec![0u8; ulen];
            match read_exact_or_eof(&mut r, &mut payload).map_err(io_err)? {
                true => {}
                false => return span(pos, truncated),
            }
            deliver(Bytes::from(payload));
            pos += 4 + len64;
        }
        match self.write_pos {
            Some(write_pos) if size < write_pos => {
                span(size, CorruptReason::ShortSegment { write_pos })
            }
            _ => Ok(None),
        }
    }
}

/// `read_exact`, with running out of data (the file shrank while being read) reported as
/// `false` rather than as an error.
fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{meta_path, segment_path};
    use crate::meta::write_meta;

    const MAX: i64 = 1024 * 1024;

    /// A 26-byte header followed by `body`, as Go nsqd serializes a message.
    fn payload(body: &str) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&1_700_000_000_000_000_000i64.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p.extend_from_slice(b"0d9c3b7a1e2f4000");
        p.extend_from_slice(body.as_bytes());
        p
    }

    fn record(body: &str) -> Vec<u8> {
        let p = payload(body);
        let mut r = (p.len() as i32).to_be_bytes().to_vec();
        r.extend_from_slice(&p);
        r
    }

    fn segment(records: &[&str]) -> Vec<u8> {
        records.iter().flat_map(|b| record(b)).collect()
    }

    fn meta(d: i64, rf: i64, rp: i64, wf: i64, wp: i64) -> QueueMeta {
        QueueMeta {
            depth: d,
            read_file_num: rf,
            read_pos: rp,
            write_file_num: wf,
            write_pos: wp,
        }
    }

    fn bodies(q: &LegacyQueue) -> Vec<String> {
        q.records
            .iter()
            .map(|r| {
                let m = nsq_protocol::Message::decode(r).expect("decodable");
                String::from_utf8(m.body.to_vec()).expect("utf8")
            })
            .collect()
    }

    #[test]
    fn reads_hand_built_queue() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let seg0 = segment(&["a", "bb"]);
        let seg1 = segment(&["ccc"]);
        std::fs::write(segment_path(d, "t", 0), &seg0).unwrap();
        std::fs::write(segment_path(d, "t", 1), &seg1).unwrap();
        write_meta(d, "t", &meta(3, 0, 0, 1, seg1.len() as i64)).unwrap();

        let q = read_queue(d, "t", MAX).unwrap();
        assert_eq!(bodies(&q), ["a", "bb", "ccc"]);
        assert!(q.corrupt.is_empty());
        assert_eq!(q.meta, Some(meta(3, 0, 0, 1, seg1.len() as i64)));
        assert_eq!(q.bad_meta, None);
        let mut files = q.files.clone();
        files.sort();
        let mut want = vec![
            segment_path(d, "t", 0),
            segment_path(d, "t", 1),
            meta_path(d, "t"),
        ];
        want.sort();
        assert_eq!(files, want);
    }

    #[test]
    fn read_position_mid_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let seg0 = segment(&["a", "bb", "ccc"]);
        std::fs::write(segment_path(d, "t", 0), &seg0).unwrap();
        let second = record("a").len() as i64;
        write_meta(d, "t", &meta(2, 0, second, 0, seg0.len() as i64)).unwrap();
        assert_eq!(bodies(&read_queue(d, "t", MAX).unwrap()), ["bb", "ccc"]);
    }

    #[test]
    fn consumed_segments_are_listed_but_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(segment_path(d, "t", 0), segment(&["old"])).unwrap();
        let seg1 = segment(&["new"]);
        std::fs::write(segment_path(d, "t", 1), &seg1).unwrap();
        write_meta(d, "t", &meta(1, 1, 0, 1, seg1.len() as i64)).unwrap();
        let q = read_queue(d, "t", MAX).unwrap();
        assert_eq!(bodies(&q), ["new"]);
        assert_eq!(q.files.len(), 3);
    }

    #[test]
    fn bad_length_ends_only_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut seg0 = segment(&["a"]);
        let bad_at = seg0.len() as i64;
        seg0.extend_from_slice(&25i32.to_be_bytes());
        seg0.extend_from_slice(&segment(&["lost"]));
        std::fs::write(segment_path(d, "t", 0), &seg0).unwrap();
        let seg1 = segment(&["b"]);
        std::fs::write(segment_path(d, "t", 1), &seg1).unwrap();
        write_meta(d, "t", &meta(3, 0, 0, 1, seg1.len() as i64)).unwrap();

        let q = read_queue(d, "t", MAX).unwrap();
        assert_eq!(bodies(&q), ["a", "b"]);
        assert_eq!(
            q.corrupt,
            [CorruptSpan {
                file_num: 0,
                offset: bad_at,
                reason: CorruptReason::InvalidLength(25),
            }]
        );
        assert_eq!(
            q.corrupt[0].to_string(),
            format!("segment 000000 offset {bad_at}: invalid message read size (25)")
        );
    }

    #[test]
    fn length_limits_follow_max_msg_size() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Bodies of 4 and 5 bytes: records of 30 and 31 bytes.
        std::fs::write(segment_path(d, "t", 0), segment(&["four", "fives"])).unwrap();
        let q = read_queue(d, "t", 4).unwrap();
        assert_eq!(bodies(&q), ["four"]);
        assert_eq!(q.corrupt[0].reason, CorruptReason::InvalidLength(31));
        assert_eq!(read_queue(d, "t", 5).unwrap().records.len(), 2);
        // Negative lengths are just another invalid length.
        std::fs::write(segment_path(d, "t", 0), (-1i32).to_be_bytes()).unwrap();
        let q = read_queue(d, "t", MAX).unwrap();
        assert_eq!(q.corrupt[0].reason, CorruptReason::InvalidLength(-1));
    }

    #[test]
    fn truncated_record_at_every_byte() {
        let full = segment(&["first", "second"]);
        let first_len = record("first").len();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for cut in 0..=full.len() {
            std::fs::write(segment_path(d, "t", 0), &full[..cut]).unwrap();
            std::fs::write(segment_path(d, "t", 1), segment(&["next"])).unwrap();
            let q = read_queue(d, "t", MAX).unwrap();
            let mut want = Vec::new();
            if cut >= first_len {
                want.push("first");
            }
            if cut == full.len() {
                want.push("second");
            }
            want.push("next");
            assert_eq!(bodies(&q), want, "cut at {cut}");
            let clean = cut == 0 || cut == first_len || cut == full.len();
            if clean {
                assert!(q.corrupt.is_empty(), "cut at {cut}");
            } else {
                let offset = if cut < first_len { 0 } else { first_len as i64 };
                assert_eq!(
                    q.corrupt,
                    [CorruptSpan {
                        file_num: 0,
                        offset,
                        reason: CorruptReason::Truncated {
                            file_size: cut as i64
                        },
                    }],
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn missing_meta_reads_from_oldest_segment() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(segment_path(d, "t", 4), segment(&["x"])).unwrap();
        std::fs::write(segment_path(d, "t", 6), segment(&["y"])).unwrap();
        let q = read_queue(d, "t", MAX).unwrap();
        assert_eq!(bodies(&q), ["x", "y"]);
        assert_eq!(q.meta, None);
        assert!(q.corrupt.is_empty());
    }

    #[test]
    fn unparseable_meta_is_reported_and_everything_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(segment_path(d, "t", 0), segment(&["x", "y"])).unwrap();
        std::fs::write(meta_path(d, "t"), b"2\n0,31\n").unwrap();
        let q = read_queue(d, "t", MAX).unwrap();
        assert_eq!(bodies(&q), ["x", "y"]);
        assert_eq!(q.meta, None);
        let bad = q.bad_meta.expect("bad meta reported");
        assert_eq!(bad.parsed.read_pos, Some(31));
        assert_eq!(q.files.len(), 2);
    }

    #[test]
    fn missing_segments_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let seg = segment(&["x"]);
        let len = seg.len() as i64;
        std::fs::write(segment_path(d, "t", 3), &seg).unwrap();
        std::fs::write(segment_path(d, "t", 5), &seg).unwrap();
        write_meta(d, "t", &meta(9, 1, 10, 7, len)).unwrap();
        let q = read_queue(d, "t", MAX).unwrap();
        assert_eq!(q.records.len(), 2);
        let missing: Vec<(i64, CorruptReason)> = q
            .corrupt
            .iter()
            .map(|s| (s.file_num, s.reason.clone()))
            .collect();
        assert_eq!(
            missing,
            [
                (1, CorruptReason::Missing { last_file_num: 2 }),
                (4, CorruptReason::Missing { last_file_num: 4 }),
                (6, CorruptReason::Missing { last_file_num: 7 }),
            ]
        );

        // A write file with nothing past the read position need not exist.
        write_meta(d, "t", &meta(0, 5, len, 6, 0)).unwrap();
        assert!(read_queue(d, "t", MAX).unwrap().corrupt.is_empty());
        write_meta(d, "t", &meta(0, 7, 4, 7, 4)).unwrap();
        assert!(read_queue(d, "t", MAX).unwrap().corrupt.is_empty());
    }

    #[test]
    fn extreme_meta_values_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(segment_path(d, "t", 0), segment(&["x"])).unwrap();
        let edges = [i64::MIN, -1, 0, 1, i64::MAX];
        for &rf in &edges {
            for &rp in &edges {
                for &wf in &edges {
                    for &wp in &edges {
                        write_meta(d, "t", &meta(0, rf, rp, wf, wp)).unwrap();
                        let q = read_queue(d, "t", MAX).unwrap();
                        assert!(q.records.len() <= 1);
                    }
                }
            }
        }
        write_meta(d, "t", &meta(0, 0, 0, 0, 0)).unwrap();
        for max in [i64::MIN, -27, 0, i64::MAX] {
            read_queue(d, "t", max).unwrap();
        }
    }

    #[test]
    fn read_position_past_end() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let seg0 = segment(&["x"]);
        std::fs::write(segment_path(d, "t", 0), &seg0).unwrap();
        std::fs::write(segment_path(d, "t", 1), segment(&["y"])).unwrap();
        write_meta(d, "t", &meta(1, 0, 1000, 1, 31)).unwrap();
        let q = read_queue(d, "t", MAX).unwrap();
        assert_eq!(bodies(&q), ["y"]);
        assert_eq!(
            q.corrupt[0].reason,
            CorruptReason::ReadPosOutOfRange {
                file_size: seg0.len() as i64
            }
        );
    }

    #[test]
    fn short_write_segment() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let seg0 = segment(&["x"]);
        std::fs::write(segment_path(d, "t", 0), &seg0).unwrap();
        write_meta(d, "t", &meta(2, 0, 0, 0, 500)).unwrap();
        let q = read_queue(d, "t", MAX).unwrap();
        assert_eq!(bodies(&q), ["x"]);
        assert_eq!(
            q.corrupt,
            [CorruptSpan {
                file_num: 0,
                offset: seg0.len() as i64,
                reason: CorruptReason::ShortSegment { write_pos: 500 },
            }]
        );
    }

    #[test]
    fn empty_and_absent_queues() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(read_queue(d, "none", MAX).unwrap(), LegacyQueue::default());
        write_meta(d, "t", &QueueMeta::default()).unwrap();
        let q = read_queue(d, "t", MAX).unwrap();
        assert!(q.records.is_empty() && q.corrupt.is_empty());
        assert_eq!(q.meta, Some(QueueMeta::default()));
        assert_eq!(q.files, [meta_path(d, "t")]);
        assert!(matches!(
            read_queue(d, "../t", MAX),
            Err(Error::InvalidQueueName(_))
        ));
    }

    #[test]
    fn scan_counts_records() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(segment_path(d, "t", 0), segment(&["a", "b", "c"])).unwrap();
        let mut seen = 0;
        let scan = scan_queue(d, "t", MAX, |_| seen += 1).unwrap();
        assert_eq!((seen, scan.record_count), (3, 3));
    }
}
