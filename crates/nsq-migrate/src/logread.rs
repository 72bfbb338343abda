//! Reading a native topic log by exact sequence number, for the rollback converter.
//!
//! `DiskLog`'s reader returns messages without their sequence numbers, so after a damaged
//! record a caller counting messages would lose its place; the converter must know exactly which
//! records lie at or beyond each channel's cursor. The segment scan reports every valid record's
//! offset and sequence number, so this reads whole segments through it instead.
use std::path::{Path, PathBuf};

use bytes::Bytes;
use nsq_protocol::Message;
use nsq_store::record::{decode, Decoded, RECORD_OVERHEAD};
use nsq_store::segment::{parse_segment_name, scan, Damage};

use crate::MigrateError;

/// Segment files of a log directory as (first sequence number, path), oldest first.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, MigrateError> {
    let err = |e| MigrateError::io("read directory", dir, e);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn damage_text(d: &Damage) -> String {
    format!(
        "{} offset {}: {} ({} records lost)",
        d.path.display(),
        d.offset,
        d.reason,
        d.lost
    )
}

/// The longest body in a log, with where it is. Opening a `DiskLog` with a smaller body limit
/// would take such a record for damage and cut the segment off there, so the converter checks
/// before opening. Record sizes come from the distances between the offsets the segment scan
/// reports, so each segment is read once.
pub(crate) fn largest_body(dir: &Path) -> Result<Option<(PathBuf, u64, u64)>, MigrateError> {
    // The record length field is a u32, so this accepts every length a record can have.
    const ANY_BODY: usize = u32::MAX as usize;
    let mut best: Option<(PathBuf, u64, u64)> = None;
    for (first, path) in segments(dir)? {
        let s = scan(&path, first, ANY_BODY)?;
        let mut ends: Vec<u64> = s.damage.iter().map(|d| d.offset).collect();
        ends.extend(s.records.iter().map(|&(off, _)| off));
        ends.push(s.valid_len);
        ends.sort_unstable();
        for &(off, _) in &s.records {
            let Some(&end) = ends.iter().find(|&&e| e > off) else {
                continue;
            };
            let body = (end - off).saturating_sub(RECORD_OVERHEAD as u64);
            if best.as_ref().is_none_or(|(_, _, b)| body > *b) {
                best = Some((path.clone(), off, body));
            }
        }
    }
    Ok(best)
}

/// Calls `on_record(seq, message)` for every valid record with `from <= seq < to`, in sequence
/// order. Damage found in the segments read is described in `damage` (and logged); it never
/// stops the reading.
pub(crate) fn for_each_record(
    dir: &Path,
    from: u64,
    to: u64,
    max_body: usize,
    damage: &mut Vec<String>,
    mut on_record: impl FnMut(u64, Message) -> Result<(), MigrateError>,
) -> Result<(), MigrateError> {
    let segs = segments(dir)?;
    for (i, (first, path)) in segs.iter().enumerate() {
        // Sequence numbers only grow, so a segment whose successor starts at or below `from`
        // holds nothing wanted.
        if segs.get(i + 1).is_some_and(|(next, _)| *next <= from) || *first >= to {
            continue;
        }
        let s = scan(path, *first, max_body)?;
        for d in &s.damage {
            let text = damage_text(d);
            log::error!("damaged record in topic log: {text}");
            damage.push(text);
        }
        if s.records.iter().all(|&(_, seq)| seq < from || seq >= to) {
            continue;
        }
        let data = Bytes::from(std::fs::read(path).map_err(|e| MigrateError::io("read", path, e))?);
        for &(offset, seq) in &s.records {
            if seq < from || seq >= to {
                continue;
            }
            let at = usize::try_from(offset).unwrap_or(usize::MAX);
            if at >= data.len() {
                continue;
            }
            // The scan just validated this record; it can only fail if the file changed in
            // between, which the data-path lock rules out, so a mismatch is reported as damage.
            match decode(&data.slice(at..), max_body) {
                Decoded::Record { record, .. } if record.seq == seq => on_record(seq, record.msg)?,
                _ => {
                    let text = format!("{} offset {offset}: changed while reading", path.display());
                    log::error!("damaged record in topic log: {text}");
                    damage.push(text);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsq_protocol::MessageId;
    use nsq_queue::MessageLog;
    use nsq_store::{DiskLog, LogOptions};

    #[test]
    fn reads_exact_ranges_across_segments_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let opts = LogOptions {
            max_bytes_per_file: 200,
            max_body: 1024,
            cache_messages: 0,
        };
        let (mut log, _) = DiskLog::open(d.path(), opts.clone()).unwrap();
        for i in 0..20u64 {
            let m = Message::new(
                MessageId::from_guid(i),
                i as i64,
                Bytes::from(format!("b{i}")),
            );
            log.append(&mut std::iter::once(m)).unwrap();
            log.writer().flush(i + 1, false).unwrap();
        }
        drop(log);
        let collect = |from, to, damage: &mut Vec<String>| {
            let mut got = Vec::new();
            for_each_record(d.path(), from, to, 1024, damage, |seq, m| {
                assert_eq!(seq as i64, m.timestamp);
                got.push(seq);
                Ok(())
            })
            .unwrap();
            got
        };
        let mut damage = Vec::new();
        assert_eq!(collect(0, 20, &mut damage), (0..20).collect::<Vec<_>>());
        assert_eq!(collect(7, 13, &mut damage), (7..13).collect::<Vec<_>>());
        assert!(collect(20, 20, &mut damage).is_empty());
        assert!(damage.is_empty());
        let (_, _, body) = largest_body(d.path()).unwrap().unwrap();
        assert_eq!(body, 3, "b10..b19");

        // Damage one record in the middle of the first segment: only it is missing.
        let (_, first) = segments(d.path()).unwrap().remove(0);
        let mut data = std::fs::read(&first).unwrap();
        let rec = nsq_store::record::RECORD_OVERHEAD + 2;
        data[16 + rec + 20] ^= 0xff;
        std::fs::write(&first, data).unwrap();
        let got = collect(0, 20, &mut damage);
        assert_eq!(got.len(), 19);
        assert!(!got.contains(&1));
        assert_eq!(damage.len(), 1);
    }
}
