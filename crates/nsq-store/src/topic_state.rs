//! A topic's small state file, `topic.state`: what the log alone cannot tell after a restart —
//! the trim point (messages below it are gone even if their segment is still on disk), the
//! ranges dropped by emptying a paused topic, and the pause flags of the topic and its
//! channels (so they survive a damaged `nsqd.dat`).
//!
//! Layout (big-endian): `NSQRSTS1 | crc32c u32 (of the rest) | head u64 | released u64 |
//! paused u8 | n u32 | n × (from u64, to u64) | m u32 | m × (len u16, channel name)`.
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut, Bytes};

const MAGIC: &[u8; 8] = b"NSQRSTS1";

/// What `topic.state` records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicStateFile {
    /// Log positions below this are gone.
    pub head: u64,
    /// What the topic had handed to its channels; while it is paused, what lies beyond is
    /// still the topic's (its depth), not the channels'.
    pub released: u64,
    pub paused: bool,
    /// Position ranges `from..to` that channels skip (emptied while the topic was paused).
    pub skips: Vec<(u64, u64)>,
    /// Names of the topic's paused channels.
    pub paused_channels: Vec<String>,
}

pub fn path(topic_dir: &Path) -> PathBuf {
    topic_dir.join("topic.state")
}

impl TopicStateFile {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.put_u64(self.head);
        body.put_u64(self.released);
        body.put_u8(u8::from(self.paused));
        body.put_u32(self.skips.len() as u32);
        for &(a, b) in &self.skips {
            body.put_u64(a);
            body.put_u64(b);
        }
        body.put_u32(self.paused_channels.len() as u32);
        for c in &self.paused_channels {
            let name = c.as_bytes();
            let len = name.len().min(u16::MAX as usize);
            body.put_u16(len as u16);
            body.put_slice(name.get(..len).unwrap_or_default());
        }
        let mut out = MAGIC.to_vec();
        out.put_u32(crc32c::crc32c(&body));
        out.extend_from_slice(&body);
        out
    }

    /// Decodes the file, or says why it is not a valid one.
    pub fn decode(data: &Bytes) -> Result<TopicStateFile, &'static str> {
        let (magic, rest) = data.split_first_chunk::<8>().ok_or("too short")?;
        if magic != MAGIC {
            return Err("bad magic");
        }
        let (crc, _) = rest.split_first_chunk::<4>().ok_or("too short")?;
        let mut b = data.slice(12..);
        if crc32c::crc32c(&b) != u32::from_be_bytes(*crc) {
            return Err("checksum mismatch");
        }
        if b.remaining() < 21 {
            return Err("too short");
        }
        let head = b.get_u64();
        let released = b.get_u64();
        let paused = b.get_u8() != 0;
        let n = b.get_u32() as usize;
        if b.remaining() < n.saturating_mul(16) {
            return Err("cut short");
        }
        let skips = (0..n).map(|_| (b.get_u64(), b.get_u64())).collect();
        if b.remaining() < 4 {
            return Err("cut short");
        }
        let m = b.get_u32() as usize;
        let mut paused_channels = Vec::new();
        for _ in 0..m {
            if b.remaining() < 2 {
                return Err("cut short");
            }
            let len = b.get_u16() as usize;
            if b.remaining() < len {
                return Err("cut short");
            }
            let name = b.split_to(len);
            let name = std::str::from_utf8(&name).map_err(|_| "channel name not UTF-8")?;
            paused_channels.push(name.to_string());
        }
        Ok(TopicStateFile {
            head,
            released,
            paused,
            skips,
            paused_channels,
        })
    }

    /// Reads the file: `Ok(None)` when there is none, `Err` with the reason when it is damaged.
    pub fn load(topic_dir: &Path) -> Result<Option<TopicStateFile>, String> {
        match std::fs::read(path(topic_dir)) {
            Ok(data) => TopicStateFile::decode(&Bytes::from(data))
                .map(Some)
                .map_err(str::to_string),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Replaces the file atomically: temporary file, fsync, rename, directory fsync.
    pub fn save(&self, topic_dir: &Path) -> std::io::Result<()> {
        let target = path(topic_dir);
        let tmp = target.with_extension("state.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        let bytes = self.encode();
        f.write_all(&bytes)?;
        crate::io_stats::wrote(bytes.len());
        crate::io_stats::fsync(|| f.sync_all())?;
        std::fs::rename(&tmp, &target)?;
        let dir = std::fs::File::open(topic_dir)?;
        crate::io_stats::fsync(|| dir.sync_all())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_detected() {
        let s = TopicStateFile {
            head: 42,
            released: 45,
            paused: true,
            skips: vec![(50, 60), (70, 71)],
            paused_channels: vec!["a".into(), "b.c#x".into()],
        };
        let bytes = s.encode();
        assert_eq!(
            TopicStateFile::decode(&Bytes::from(bytes.clone())),
            Ok(s.clone())
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            assert!(TopicStateFile::decode(&Bytes::from(bad)).is_err(), "{i}");
            assert!(TopicStateFile::decode(&Bytes::copy_from_slice(&bytes[..i])).is_err());
        }
        let d = tempfile::tempdir().unwrap();
        assert_eq!(TopicStateFile::load(d.path()), Ok(None));
        s.save(d.path()).unwrap();
        assert_eq!(TopicStateFile::load(d.path()), Ok(Some(s)));
    }
}
