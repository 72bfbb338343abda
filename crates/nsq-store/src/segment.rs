//! Segment files of a topic log: naming, the header, and the recovery scan that finds where
//! valid data ends and which records are damaged.
//!
//! A segment is `seg-<first sequence, 20 digits>.log`: a 16-byte header (`NSQRSEG1` then the
//! first sequence number as u64 BE) followed by records (see `record`).
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::record::{decode, Decoded};

pub const HEADER_LEN: u64 = 16;
const MAGIC: &[u8; 8] = b"NSQRSEG1";

pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("seg-{first_seq:020}.log"))
}

/// The first sequence number encoded in a segment file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

pub fn header(first_seq: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&first_seq.to_be_bytes());
    h
}

/// A damaged stretch found while scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub path: PathBuf,
    pub offset: u64,
    pub reason: &'static str,
    /// Records lost (sequence numbers skipped over).
    pub lost: u64,
}

/// What a full scan of one segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Offset just past the last whole record: where appending must continue.
    pub valid_len: u64,
    /// The sequence number the next record would have.
    pub next_seq: u64,
    /// Offsets of the valid records, with their sequence numbers.
    pub records: Vec<(u64, u64)>,
    pub damage: Vec<Damage>,
    /// A torn record at the end (an interrupted write) was found and must be cut off.
    pub torn_tail: bool,
    /// The header is not this segment's (its records were still scanned).
    pub header_damaged: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a segment file (bad header)")]
    BadHeader(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SegmentError + '_ {
    move |source| SegmentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a whole segment and checks every record. After a damaged record the scan looks for
/// the next position holding a valid record with a plausible sequence number, so the records
/// after the damage are still found.
pub fn scan(path: &Path, expected_first: u64, max_body: usize) -> Result<Scan, SegmentError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_err(path))?;
    let Some(head) = data.first_chunk::<{ HEADER_LEN as usize }>() else {
        let partial = MAGIC.get(..data.len().min(8)) == data.get(..data.len().min(8));
        if partial {
            // Crashed while writing the header of a fresh segment: nothing in it.
            return Ok(Scan {
                valid_len: 0,
                next_seq: expected_first,
                records: Vec::new(),
                damage: Vec::new(),
                torn_tail: true,
                header_damaged: false,
            });
        }
        return Err(SegmentError::BadHeader(path.to_path_buf()));
    };
    let header_damaged = *head != header(expected_first);
    let data = Bytes::from(data);
    let mut out = Scan {
        valid_len: HEADER_LEN,
        next_seq: expected_first,
        records: Vec::new(),
        damage: Vec::new(),
        torn_tail: false,
        header_damaged,
    };
    if header_damaged {
        out.damage.push(Damage {
            path: path.to_path_buf(),
            offset: 0,
            reason: "damaged segment header (records are still read)",
            lost: 0,
        });
    }
    let mut pos = HEADER_LEN as usize;
    while pos < data.len() {
        match decode(&data.slice(pos..), max_body) {
            Decoded::Record { record, size } if record.seq >= out.next_seq => {
                out.records.push((pos as u64, record.seq));
                out.next_seq = record.seq + 1;
                pos += size;
                out.valid_len = pos as u64;
            }
            Decoded::Truncated => {
                // Only the end of the file can be short; anything before it is damage.
                match resync(&data, pos + 1, out.next_seq, max_body) {
                    Some((at, seq)) => {
                        out.damage.push(Damage {
                            path: path.to_path_buf(),
                            offset: pos as u64,
                            reason: "truncated record",
                            lost: seq - out.next_seq,
                        });
                        pos = at;
                    }
                    None => {
                        out.torn_tail = true;
                        break;
                    }
                }
            }
            Decoded::Record { .. } | Decoded::Corrupt(_) => {
                let reason = match decode(&data.slice(pos..), max_body) {
                    Decoded::Corrupt(r) => r,
                    _ => "sequence number out of order",
                };
                match resync(&data, pos + 1, out.next_seq, max_body) {
                    Some((at, seq)) => {
                        out.damage.push(Damage {
                            path: path.to_path_buf(),
                            offset: pos as u64,
                            reason,
                            lost: seq - out.next_seq,
                        });
                        pos = at;
                    }
                    None => {
                        // Damage running to the end: a torn multi-record write or bad data
                        // at the tail; either way nothing valid follows.
                        out.damage.push(Damage {
                            path: path.to_path_buf(),
                            offset: pos as u64,
                            reason,
                            lost: 0,
                        });
                        out.torn_tail = true;
                        break;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Why a segment's header is not what its name says.
#[derive(Debug)]
pub enum HeaderProblem {
    /// The file is shorter than a header (this many bytes).
    Short(u64),
    Damaged,
    Io(std::io::Error),
}

/// Checks that the segment at `path` starts with its header, reading nothing else.
pub fn check_header(path: &Path, first_seq: u64) -> Result<(), HeaderProblem> {
    let mut head = [0u8; HEADER_LEN as usize];
    let mut f = File::open(path).map_err(HeaderProblem::Io)?;
    let mut got = 0;
    while got < head.len() {
        match f.read(head.get_mut(got..).unwrap_or_default()) {
            Ok(0) => return Err(HeaderProblem::Short(got as u64)),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HeaderProblem::Io(e)),
        }
    }
    if head == header(first_seq) {
        Ok(())
    } else {
        Err(HeaderProblem::Damaged)
    }
}

/// The next offset at or after `from` holding a whole, valid record whose sequence number is
/// at least `min_seq` (and not absurdly far ahead).
fn resync(data: &Bytes, from: usize, min_seq: u64, max_body: usize) -> Option<(usize, u64)> {
    (from..data.len()).find_map(|at| match decode(&data.slice(at..), max_body) {
        Decoded::Record { record, .. }
            if record.seq >= min_seq && record.seq - min_seq < 1 << 32 =>
        {
            Some((at, record.seq))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::encode;
    use nsq_protocol::{Message, MessageId};

    fn write_segment(path: &Path, first: u64, n: u64) -> Vec<u64> {
        let mut buf = header(first).to_vec();
        let mut offsets = Vec::new();
        for seq in first..first + n {
            offsets.push(buf.len() as u64);
            let m = Message::new(MessageId::from_guid(seq), 1, Bytes::from(format!("m{seq}")));
            encode(&mut buf, seq, &m);
        }
        offsets.push(buf.len() as u64);
        std::fs::write(path, &buf).unwrap();
        offsets
    }

    #[test]
    fn names() {
        assert_eq!(parse_segment_name("seg-00000000000000000042.log"), Some(42));
        assert_eq!(parse_segment_name("seg-x.log"), None);
        let p = segment_path(Path::new("/d"), 7);
        assert_eq!(p, Path::new("/d/seg-00000000000000000007.log"));
    }

    #[test]
    fn clean_scan() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        let off = write_segment(&p, 10, 5);
        let s = scan(&p, 10, 100).unwrap();
        assert_eq!(s.next_seq, 15);
        assert_eq!(s.valid_len, *off.last().unwrap());
        assert!(s.damage.is_empty() && !s.torn_tail);
    }

    #[test]
    fn truncation_at_every_byte_of_the_last_record() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        let off = write_segment(&p, 0, 3);
        let full = std::fs::read(&p).unwrap();
        for cut in off[2]..off[3] {
            std::fs::write(&p, &full[..cut as usize]).unwrap();
            let s = scan(&p, 0, 100).unwrap();
            assert_eq!(s.next_seq, 2, "cut at {cut}");
            assert_eq!(s.valid_len, off[2]);
            assert_eq!(s.torn_tail, cut != off[2]);
            assert!(s.damage.is_empty());
        }
    }

    #[test]
    fn damage_in_the_middle_skips_one_record() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        let off = write_segment(&p, 0, 5);
        let mut data = std::fs::read(&p).unwrap();
        data[off[2] as usize + 20] ^= 0xff;
        std::fs::write(&p, &data).unwrap();
        let s = scan(&p, 0, 100).unwrap();
        assert_eq!(
            s.records.iter().map(|r| r.1).collect::<Vec<_>>(),
            vec![0, 1, 3, 4]
        );
        assert_eq!(s.damage.len(), 1);
        assert_eq!(s.damage[0].offset, off[2]);
        assert_eq!(s.damage[0].lost, 1);
        assert_eq!(s.next_seq, 5);
    }

    #[test]
    fn damaged_length_field_resyncs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        let off = write_segment(&p, 0, 4);
        let mut data = std::fs::read(&p).unwrap();
        data[off[1] as usize] = 0x7f;
        std::fs::write(&p, &data).unwrap();
        let s = scan(&p, 0, 100).unwrap();
        assert_eq!(
            s.records.iter().map(|r| r.1).collect::<Vec<_>>(),
            vec![0, 2, 3]
        );
    }

    #[test]
    fn bad_header_is_reported_and_torn_header_is_empty() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        std::fs::write(&p, b"GARB").unwrap();
        assert!(matches!(scan(&p, 0, 100), Err(SegmentError::BadHeader(_))));
        std::fs::write(&p, b"NSQRS").unwrap();
        let s = scan(&p, 3, 100).unwrap();
        assert_eq!((s.valid_len, s.next_seq, s.torn_tail), (0, 3, true));
        // A damaged header does not hide the records after it.
        let off = write_segment(&p, 4, 3);
        let mut data = std::fs::read(&p).unwrap();
        data[2] ^= 0x20;
        std::fs::write(&p, &data).unwrap();
        let s = scan(&p, 4, 100).unwrap();
        assert!(s.header_damaged);
        assert_eq!(s.next_seq, 7);
        assert_eq!(s.valid_len, *off.last().unwrap());
        assert!(matches!(check_header(&p, 4), Err(HeaderProblem::Damaged)));
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(check_header(&p, 4), Err(HeaderProblem::Short(0))));
    }
}
