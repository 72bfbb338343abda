//! File naming: queue names, the paths of a queue's meta and segment files, recognising those
//! files in a data directory, and removing them.
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};

use crate::Error;

const META_SUFFIX: &str = ".diskqueue.meta.dat";
const SEGMENT_INFIX: &str = ".diskqueue.";

/// The disk queue name of a topic (`T`) or of one of its channels (`T:C`).
///
/// Go nsqd on Windows uses `T;C`; data directories from Windows are not supported.
pub fn queue_name(topic: &str, channel: Option<&str>) -> String {
    match channel {
        Some(c) => format!("{topic}:{c}"),
        None => topic.to_string(),
    }
}

/// `<dir>/<queue>.diskqueue.meta.dat`
pub fn meta_path(dir: &Path, queue: &str) -> PathBuf {
    dir.join(format!("{queue}{META_SUFFIX}"))
}

/// `<dir>/<queue>.diskqueue.NNNNNN.dat`, the number zero-padded to at least six digits.
pub fn segment_path(dir: &Path, queue: &str, file_num: i64) -> PathBuf {
    dir.join(format!("{queue}{SEGMENT_INFIX}{file_num:06}.dat"))
}

/// Rejects anything that could not have come from Go nsqd, and in particular anything that
/// could escape the data directory once turned into a file name.
pub(crate) fn check_queue_name(queue: &str) -> Result<(), Error> {
    let ok = match queue.split_once(':') {
        Some((t, c)) => is_valid_topic_name(t.as_bytes()) && is_valid_channel_name(c.as_bytes()),
        None => is_valid_topic_name(queue.as_bytes()),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidQueueName(queue.to_string()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Meta,
    /// A meta file's temporary copy left by a crash between write and rename.
    MetaTmp,
    Segment(i64),
    /// A segment Go quarantined after a read error.
    BadSegment,
}

/// Splits a directory entry name into its queue name and what the file is, or `None` for a file
/// that belongs to no queue (`nsqd.dat`, its temporaries, anything foreign).
///
/// Names may contain dots (even `.diskqueue.`), so the queue name is whatever precedes the
/// *last* `.diskqueue.`.
pub(crate) fn classify(name: &str) -> Option<(&str, FileKind)> {
    let (queue, kind) = if let Some(q) = name.strip_suffix(META_SUFFIX) {
        (q, FileKind::Meta)
    } else if let Some(rest) = name.strip_suffix(".tmp") {
        let (meta, random) = rest.rsplit_once('.')?;
        if random.is_empty() || !random.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (meta.strip_suffix(META_SUFFIX)?, FileKind::MetaTmp)
    } else if let Some(rest) = name.strip_suffix(".dat.bad") {
        (parse_segment(rest)?.0, FileKind::BadSegment)
    } else {
        let (q, n) = parse_segment(name.strip_suffix(".dat")?)?;
        (q, FileKind::Segment(n))
    };
    check_queue_name(queue).ok()?;
    Some((queue, kind))
}

/// `<queue>.diskqueue.<digits>` (without `.dat`) → queue and file number. Only the spelling
/// `%06d` produces is accepted, so a number maps back to exactly one path.
fn parse_segment(stem: &str) -> Option<(&str, i64)> {
    let (queue, digits) = stem.rsplit_once(SEGMENT_INFIX)?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    (format!("{n:06}") == digits).then_some((queue, n))
}

/// The files of one queue found in a data directory.
#[derive(Debug, Default)]
pub(crate) struct QueueFiles {
    pub meta: Option<PathBuf>,
    pub meta_tmp: Vec<PathBuf>,
    pub segments: BTreeMap<i64, PathBuf>,
}

impl QueueFiles {
    /// Every file worth removing once the queue has been converted. Quarantined `.bad`
    /// segments are left for the operator.
    pub fn all(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.segments.values().cloned().collect();
        v.extend(self.meta.iter().cloned());
        v.extend(self.meta_tmp.iter().cloned());
        v
    }

    pub fn first(&self) -> Option<&PathBuf> {
        self.meta
            .as_ref()
            .or_else(|| self.segments.values().next())
            .or_else(|| self.meta_tmp.first())
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, Error> {
    let err = |e| Error::io("read directory", dir, e);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        if entry.file_type().map_err(err)?.is_dir() {
            continue;
        }
        // Go never writes non-UTF-8 names; such a file is not a queue file.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

pub(crate) fn queue_files(dir: &Path, queue: &str) -> Result<QueueFiles, Error> {
    let mut files = QueueFiles::default();
    for name in read_dir_names(dir)? {
        let Some((q, kind)) = classify(&name) else {
            continue;
        };
        if q != queue {
            continue;
        }
        let path = dir.join(&name);
        match kind {
            FileKind::Meta => files.meta = Some(path),
            FileKind::MetaTmp => files.meta_tmp.push(path),
            FileKind::Segment(n) => {
                files.segments.insert(n, path);
            }
            FileKind::BadSegment => {}
        }
    }
    files.meta_tmp.sort();
    Ok(files)
}

/// Every queue in a data directory that has a meta file or at least one segment, sorted.
/// Quarantined `.bad` segments, temporaries and `nsqd.dat` do not make a queue.
pub fn list_queues(dir: &Path) -> Result<Vec<String>, Error> {
    let mut queues = BTreeSet::new();
    for name in read_dir_names(dir)? {
        if let Some((q, FileKind::Meta | FileKind::Segment(_))) = classify(&name) {
            queues.insert(q.to_string());
        }
    }
    Ok(queues.into_iter().collect())
}

/// Removes the given files; ones already gone are fine. Tries every file and returns the first
/// failure, so one stuck file does not leave the others behind.
pub fn remove_queue_files(files: &[PathBuf]) -> Result<(), Error> {
    let mut first = None;
    for path in files {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                first.get_or_insert(Error::io("remove", path, e));
            }
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(queue_name("orders", None), "orders");
        assert_eq!(queue_name("orders", Some("archive")), "orders:archive");
        let d = Path::new("/data");
        assert_eq!(
            meta_path(d, "orders:archive"),
            Path::new("/data/orders:archive.diskqueue.meta.dat")
        );
        assert_eq!(
            segment_path(d, "orders", 0),
            Path::new("/data/orders.diskqueue.000000.dat")
        );
        assert_eq!(
            segment_path(d, "orders", 42),
            Path::new("/data/orders.diskqueue.000042.dat")
        );
        assert_eq!(
            segment_path(d, "orders", 1_234_567),
            Path::new("/data/orders.diskqueue.1234567.dat")
        );
    }

    #[test]
    fn queue_name_rules() {
        assert!(check_queue_name("orders").is_ok());
        assert!(check_queue_name("orders:archive").is_ok());
        assert!(check_queue_name("a.b_c-D").is_ok());
        for bad in ["", ":c", "t:", "../x", "a/b", "t:c:d", "a b", "t:c/d"] {
            assert!(check_queue_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn classify_files() {
        use FileKind::*;
        let cases: &[(&str, Option<(&str, FileKind)>)] = &[
            ("t.diskqueue.meta.dat", Some(("t", Meta))),
            ("t:c.diskqueue.meta.dat", Some(("t:c", Meta))),
            (
                "t.diskqueue.meta.dat.8674665223082153551.tmp",
                Some(("t", MetaTmp)),
            ),
            ("t.diskqueue.000000.dat", Some(("t", Segment(0)))),
            ("t:c.diskqueue.000123.dat", Some(("t:c", Segment(123)))),
            ("t.diskqueue.1000000.dat", Some(("t", Segment(1_000_000)))),
            ("t.diskqueue.000007.dat.bad", Some(("t", BadSegment))),
            // A topic whose own name looks like a queue file.
            (
                "x.diskqueue.000001.diskqueue.000002.dat",
                Some(("x.diskqueue.000001", Segment(2))),
            ),
            (
                "x.diskqueue.meta.diskqueue.000000.dat",
                Some(("x.diskqueue.meta", Segment(0))),
            ),
            ("nsqd.dat", None),
            ("nsqd.dat.123.tmp", None),
            ("nsqd.17.dat", None),
            ("t.diskqueue.00001.dat", None),
            ("t.diskqueue.0000001.dat", None),
            ("t.diskqueue.-00001.dat", None),
            ("t.diskqueue.meta.dat.x.tmp", None),
            ("t.diskqueue.meta.dat..tmp", None),
            ("t.diskqueue.000000.dat.tmp", None),
            ("bad name.diskqueue.000000.dat", None),
            (".diskqueue.000000.dat", None),
            ("t.diskqueue.99999999999999999999.dat", None),
        ];
        for (name, want) in cases {
            assert_eq!(classify(name), *want, "{name}");
        }
    }

    #[test]
    fn list_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in [
            "nsqd.dat",
            "nsqd.dat.5.tmp",
            "a.diskqueue.meta.dat",
            "b.diskqueue.000003.dat",
            "b:c.diskqueue.meta.dat",
            "b:c.diskqueue.000000.dat",
            "only-bad.diskqueue.000000.dat.bad",
            "only-tmp.diskqueue.meta.dat.77.tmp",
            "README",
        ] {
            std::fs::write(d.join(name), b"x").unwrap();
        }
        std::fs::create_dir(d.join("sub.diskqueue.meta.dat")).unwrap();
        assert_eq!(list_queues(d).unwrap(), vec!["a", "b", "b:c"]);

        let files = queue_files(d, "b:c").unwrap();
        assert_eq!(files.all().len(), 2);
        remove_queue_files(&files.all()).unwrap();
        // Removing twice is harmless.
        remove_queue_files(&files.all()).unwrap();
        assert_eq!(list_queues(d).unwrap(), vec!["a", "b"]);
        assert!(list_queues(&d.join("missing")).is_err());
    }
}
