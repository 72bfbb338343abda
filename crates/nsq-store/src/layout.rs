//! Where the store keeps its files inside an nsqd data directory.
//!
//! ```text
//! <data-path>/nsqd.dat                              topics, channels, pause flags (NSQ's format)
//! <data-path>/store/t-<topic>/seg-<seq>.log         the topic's log segments
//! <data-path>/store/t-<topic>/c-<channel>.ckpt      a channel's checkpoint
//! <data-path>/store/t-<topic>/c-<channel>.<g>.journal  a channel's journal, generation g
//! ```
//! Topic and channel names are limited to `[.a-zA-Z0-9_-]`, so prefixing them is enough to make
//! every name (even `.` or `..`) a safe file name.
use std::path::{Path, PathBuf};

use crate::journal::ChannelFiles;

pub fn store_dir(data_path: &Path) -> PathBuf {
    data_path.join("store")
}

pub fn topic_dir(data_path: &Path, topic: &str) -> PathBuf {
    store_dir(data_path).join(format!("t-{topic}"))
}

pub fn channel_files(data_path: &Path, topic: &str, channel: &str) -> ChannelFiles {
    ChannelFiles {
        dir: topic_dir(data_path, topic),
        name: format!("c-{channel}"),
    }
}

/// The journal of deferred publishes a topic holds while it has no channels (or is paused).
/// Its `due_ms` fields hold the requested delay, since the delay only starts when the message
/// reaches a channel.
pub fn held_deferred_files(data_path: &Path, topic: &str) -> ChannelFiles {
    ChannelFiles {
        dir: topic_dir(data_path, topic),
        name: "held-deferred".to_string(),
    }
}

/// Topics that have a directory in the store.
pub fn stored_topics(data_path: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(store_dir(data_path)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("t-")
                .map(str::to_string)
        })
        .collect();
    out.sort();
    out
}

/// Channels of a stored topic that have a checkpoint.
pub fn stored_channels(data_path: &Path, topic: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(topic_dir(data_path, topic)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.to_string();
            n.strip_prefix("c-")?
                .strip_suffix(".ckpt")
                .map(str::to_string)
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_listed() {
        let d = tempfile::tempdir().unwrap();
        let t = topic_dir(d.path(), "..");
        assert!(t.ends_with("store/t-.."));
        std::fs::create_dir_all(&t).unwrap();
        let f = channel_files(d.path(), "..", "c.1");
        std::fs::write(f.checkpoint(), b"x").unwrap();
        assert_eq!(stored_topics(d.path()), vec![".."]);
        assert_eq!(stored_channels(d.path(), ".."), vec!["c.1"]);
    }
}
