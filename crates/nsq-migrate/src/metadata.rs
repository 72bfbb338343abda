//! Reading `nsqd.dat`, NSQ's JSON list of topics and channels: which queues exist, and so which
//! disk queues and store directories are live.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::import::TopicSpec;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelMeta {
    pub name: String,
    #[serde(default)]
    pub paused: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub channels: Option<Vec<ChannelMeta>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    #[serde(default)]
    pub topics: Option<Vec<TopicMeta>>,
    #[serde(default)]
    pub version: String,
}

/// Same wording as nsqd's own metadata errors, so operators see one message for one problem.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("failed to read metadata from {} - {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to parse metadata in {} - {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub fn file_name(data_path: &Path) -> PathBuf {
    data_path.join("nsqd.dat")
}

/// Reads `nsqd.dat`; `None` when it does not exist (a fresh data directory).
pub fn load(data_path: &Path) -> Result<Option<Metadata>, MetadataError> {
    let path = file_name(data_path);
    match std::fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| MetadataError::Parse { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MetadataError::Read { path, source }),
    }
}

impl Metadata {
    /// The durable topics and channels: ephemeral names are dropped (they have no files), as
    /// are `null` lists.
    pub fn topic_specs(&self) -> Vec<TopicSpec> {
        self.topics
            .iter()
            .flatten()
            .filter(|t| !crate::is_ephemeral(&t.name))
            .map(|t| TopicSpec {
                name: t.name.clone(),
                channels: t
                    .channels
                    .iter()
                    .flatten()
                    .filter(|c| !crate::is_ephemeral(&c.name))
                    .map(|c| c.name.clone())
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_skip_ephemeral_and_accept_nulls() {
        let md: Metadata = serde_json::from_str(
            r#"{"topics":[{"name":"a","channels":null},{"name":"b#ephemeral"},
                {"name":"c","paused":true,"channels":[{"name":"x"},{"name":"y#ephemeral"}],"z":1}],
                "version":"1.3.0"}"#,
        )
        .unwrap();
        let specs = md.topic_specs();
        assert_eq!(specs.len(), 2);
        assert_eq!((specs[0].name.as_str(), specs[0].channels.len()), ("a", 0));
        assert_eq!(specs[1].channels, ["x"]);
        let none: Metadata = serde_json::from_str(r#"{"topics":null}"#).unwrap();
        assert!(none.topic_specs().is_empty());
    }

    #[test]
    fn missing_and_bad_files() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).unwrap().is_none());
        std::fs::write(file_name(d.path()), "{bad").unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.starts_with("failed to parse metadata in "), "{e}");
    }
}
