//! Helpers shared by the fuzz targets: a scratch directory for targets that read files, and a
//! way to cut an input into chunks whose sizes the input itself chooses.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// An empty directory private to this process. RAM-backed when `/dev/shm` exists, because the
/// file-reading targets write a few files per input and a disk would make that the bottleneck.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("nsq-fuzz-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    dir
}

/// Splits `data` into chunks whose sizes cycle through `sizes` (a zero size counts as one), so
/// a decoder sees its input cut at places the fuzzer controls.
pub fn chunks<'a>(mut data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while !data.is_empty() {
        let want = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(255);
        let n = usize::from(want).max(1).min(data.len());
        let (head, rest) = data.split_at(n);
        out.push(head);
        data = rest;
        i += 1;
    }
    out
}
