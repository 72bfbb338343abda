//! Where the store keeps its files inside an nsqd data directory.
//!
//! ```text
//! <data-path>/nsqd.dat                              topics, channels, pause flags (NSQ's format)
//! <data-path>/store/t-<topic>/seg-<seq>.log         the topic's log segments
//! <data-path>/store/t-<topic>/c-<channel>.<g>.ckpt    a channel's checkpoint, generation g
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

/// Channels of a stored topic: every name with a checkpoint or a journal (a channel whose
/// checkpoints were lost is still recovered from its journals).
pub fn stored_channels(data_path: &Path, topic: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(topic_dir(data_path, topic)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| channel_of(e.file_name().to_str()?).map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The channel a file belongs to: `c-<name>.ckpt` (an earlier version's single checkpoint),
/// `c-<name>.<generation>.ckpt` or `c-<name>.<generation>.journal`.
fn channel_of(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("c-")?;
    if let Some(base) = rest.strip_suffix(".journal") {
        return without_generation(base);
    }
    let base = rest.strip_suffix(".ckpt")?;
    Some(without_generation(base).unwrap_or(base))
}

/// `<name>.<20 digits>` → `<name>`.
fn without_generation(s: &str) -> Option<&str> {
    let (name, gen) = s.rsplit_once('.')?;
    (gen.len() == 20 && gen.bytes().all(|b| b.is_ascii_digit())).then_some(name)
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
        std::fs::write(f.checkpoint(7), b"x").unwrap();
        std::fs::write(f.journal(8), b"").unwrap();
        // A channel whose checkpoints are gone is found by its journal; an earlier version's
        // single checkpoint counts too.
        std::fs::write(channel_files(d.path(), "..", "j").journal(3), b"").unwrap();
        std::fs::write(d.path().join("store/t-../c-old.ckpt"), b"x").unwrap();
        std::fs::write(d.path().join("store/t-../c-x.ckpt.tmp"), b"x").unwrap();
        std::fs::write(
            d.path()
                .join("store/t-../held-deferred.00000000000000000001.journal"),
            b"",
        )
        .unwrap();
        assert_eq!(stored_topics(d.path()), vec![".."]);
        assert_eq!(stored_channels(d.path(), ".."), vec!["c.1", "j", "old"]);
    }
}
