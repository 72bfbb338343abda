//! Small durable-filesystem steps shared by import and export: directory fsync, marker files
//! that name the files a later run may delete, and removing directories.
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::MigrateError;

/// Makes the directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), MigrateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MigrateError::io("sync directory", dir, e))
}

/// First line of every marker, so a foreign or truncated file is never taken for one.
const MARKER_HEADER: &str = "nsq-migrate marker v1";

/// Writes a marker: a header line, one entry per line, then `end`, fsynced. Entries are plain
/// names (never paths) so a marker cannot be used to delete anything outside its directory.
pub(crate) fn write_marker(path: &Path, entries: &[String]) -> Result<(), MigrateError> {
    let mut text = format!("{MARKER_HEADER}\n");
    for e in entries {
        text.push_str(e);
        text.push('\n');
    }
    text.push_str("end\n");
    let tmp = tmp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| MigrateError::io("write marker", path, e))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads a marker written by [`write_marker`]. `Ok(None)` when it does not exist.
pub(crate) fn read_marker(path: &Path) -> Result<Option<Vec<String>>, MigrateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(MigrateError::io("read marker", path, e)),
    };
    let bad = |reason: &str| MigrateError::BadMarker {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    if lines.next() != Some(MARKER_HEADER) {
        return Err(bad("unknown header"));
    }
    let mut entries = Vec::new();
    for line in lines.by_ref() {
        if line == "end" {
            return Ok(Some(entries));
        }
        if line.is_empty() || line == "." || line == ".." || line.contains(['/', '\\']) {
            return Err(bad("entry is not a plain file name"));
        }
        entries.push(line.to_string());
    }
    Err(bad("truncated"))
}

/// Removes a file; one already gone is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), MigrateError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(MigrateError::io("remove", path, e)),
    }
}

/// Removes a directory tree; one already gone is fine.
pub(crate) fn remove_dir_all(path: &Path) -> Result<(), MigrateError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(MigrateError::io("remove directory", path, e)),
    }
}

/// The plain name of a path this crate built by joining a name onto a directory.
pub(crate) fn plain_name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_reject_paths_and_truncation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m");
        assert!(read_marker(&p).unwrap().is_none());
        let entries = vec!["a.diskqueue.meta.dat".to_string(), "t:c".to_string()];
        write_marker(&p, &entries).unwrap();
        assert_eq!(read_marker(&p).unwrap().unwrap(), entries);
        assert!(!tmp_path(&p).exists());
        for text in [
            "nsq-migrate marker v1\na\n",
            "nsq-migrate marker v1\n../x\nend\n",
            "nsq-migrate marker v1\n/etc/passwd\nend\n",
            "other\nend\n",
        ] {
            std::fs::write(&p, text).unwrap();
            assert!(
                matches!(read_marker(&p), Err(MigrateError::BadMarker { .. })),
                "{text:?}"
            );
        }
    }
}
