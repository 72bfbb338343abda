//! `nsqd.dat`: the JSON list of topics and channels (with pause flags) that survives restarts,
//! in NSQ's format so data directories move between Go nsqd and this one.
use std::io::Write;
use std::path::{Path, PathBuf};

// The file's schema is shared with the migration tools, which read it too.
pub use nsq_migrate::metadata::{ChannelMeta, Metadata, TopicMeta};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("failed to read metadata from {0} - {1}")]
    Read(String, std::io::Error),
    #[error("failed to parse metadata in {0} - {1}")]
    Parse(String, serde_json::Error),
    #[error("failed to write metadata to {0} - {1}")]
    Write(String, std::io::Error),
    #[error("failed to import Go nsqd's disk queues - {0}")]
    Import(String),
}

pub fn file_name(data_path: &Path) -> PathBuf {
    data_path.join("nsqd.dat")
}

/// Reads `nsqd.dat`, falling back to the pre-1.0 `nsqd.<node-id>.dat`. `None`: fresh start.
///
/// A file that is not valid JSON is renamed aside (`<name>.damaged-<unix seconds>`) and
/// reported at ERROR instead of stopping nsqd as Go's does: the store knows every topic and
/// channel with its pause flag, so start-up carries on from it.
pub fn load(data_path: &Path, node_id: i64) -> Result<Option<Metadata>, MetadataError> {
    let primary = file_name(data_path);
    let legacy = data_path.join(format!("nsqd.{node_id}.dat"));
    for path in [primary, legacy] {
        match std::fs::read(&path) {
            Ok(data) => match serde_json::from_slice(&data) {
                Ok(md) => return Ok(Some(md)),
                Err(e) => {
                    let err = MetadataError::Parse(path.display().to_string(), e);
                    let aside = set_aside(&path)
                        .map_err(|e| MetadataError::Read(path.display().to_string(), e))?;
                    log::error!(
                        "NSQ: {err}; kept as {} and starting from the topics and channels the store holds",
                        aside.display()
                    );
                    continue;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(MetadataError::Read(path.display().to_string(), e)),
        }
    }
    Ok(None)
}

/// Renames a damaged file out of the way, keeping it for inspection.
fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".damaged-{secs}"));
    let aside = PathBuf::from(name);
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

/// Writes `nsqd.dat` atomically: a fsynced temporary file renamed over the old one.
pub fn save(data_path: &Path, md: &Metadata) -> Result<(), MetadataError> {
    let path = file_name(data_path);
    let tmp = data_path.join(format!("nsqd.dat.{}.tmp", rand::random::<u32>()));
    let err = |e| MetadataError::Write(path.display().to_string(), e);
    let data = serde_json::to_vec(md).map_err(|e| err(std::io::Error::other(e)))?;
    let write = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nulls_missing_keys_and_empty_lists() {
        let md: Metadata = serde_json::from_str(
            r#"{"topics":[{"name":"a","channels":null},{"name":"b","paused":true,"channels":[{"name":"c"}],"x":1}]}"#,
        )
        .unwrap();
        let t = md.topics.unwrap();
        assert_eq!(t[0].channels, None);
        assert!(t[1].paused);
        assert_eq!(t[1].channels.as_ref().unwrap()[0].name, "c");
        let md: Metadata = serde_json::from_str(r#"{"topics":null,"version":"1.3.0"}"#).unwrap();
        assert!(md.topics.is_none());
    }

    #[test]
    fn round_trip_in_reference_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let md = Metadata {
            topics: Some(vec![TopicMeta {
                name: "t".into(),
                paused: false,
                channels: Some(vec![ChannelMeta {
                    name: "c".into(),
                    paused: true,
                }]),
            }]),
            version: "1.3.0".into(),
        };
        save(dir.path(), &md).unwrap();
        let raw = std::fs::read_to_string(file_name(dir.path())).unwrap();
        assert_eq!(
            raw,
            r#"{"topics":[{"name":"t","paused":false,"channels":[{"name":"c","paused":true}]}],"version":"1.3.0"}"#
        );
        assert_eq!(load(dir.path(), 0).unwrap(), Some(md));
    }

    #[test]
    fn legacy_file_is_read_when_primary_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("nsqd.7.dat"),
            r#"{"topics":[{"name":"old"}]}"#,
        )
        .unwrap();
        let md = load(dir.path(), 7).unwrap().unwrap();
        assert_eq!(md.topics.unwrap()[0].name, "old");
        assert!(load(dir.path(), 8).unwrap().is_none());
        // A damaged primary is set aside (kept) and the next candidate read.
        std::fs::write(file_name(dir.path()), "{bad").unwrap();
        let md = load(dir.path(), 7).unwrap().unwrap();
        assert_eq!(md.topics.unwrap()[0].name, "old");
        assert!(!file_name(dir.path()).exists());
        let aside: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("nsqd.dat.damaged-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(dir.path().join(&aside[0])).unwrap(), b"{bad");
    }
}
