//! One topic's output file: opening it under the next free `<REV>`, writing (optionally
//! compressed), syncing so that written messages can be FINed, rotation checks, and closing, which
//! moves the file from the work directory to the output directory without overwriting anything.
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::naming::{join, output_path, split, with_rev};
use super::strftime::{strftime, Stamp};

/// How files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip at this level (1..=9); each sync ends a gzip member and starts the next.
    Gzip(u32),
    /// zstd at this level (1..=19); each sync ends a zstd frame and starts the next, so a file is
    /// a run of complete frames plus, after a crash, at most one cut-off frame of unsynced data.
    Zstd(i32),
}

impl Compression {
    /// What is appended to file names that do not already end with it.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip(_) => ".gz",
            Compression::Zstd(_) => ".zst",
        }
    }
}

/// The settings every topic's file shares.
#[derive(Debug, Clone)]
pub struct FileSettings {
    pub channel: String,
    pub output_dir: String,
    pub work_dir: String,
    pub datetime_format: String,
    pub compression: Compression,
    pub skip_empty_files: bool,
    /// Bytes; zero or less: no rotation by size.
    pub rotate_size: i64,
    /// `None`: no rotation by age.
    pub rotate_interval: Option<Duration>,
}

impl FileSettings {
    fn moves_files(&self) -> bool {
        self.work_dir != self.output_dir
    }
}

/// The wall clock used for `<DATETIME>`; replaceable so tests can cross an hour at will.
pub type Clock = Arc<dyn Fn() -> Stamp + Send + Sync>;

/// A failure that stops the program, worded as NSQ logs it.
#[derive(Debug, thiserror::Error)]
#[error("[{topic}/{channel}] {what}: {source}")]
pub struct FatalError {
    pub topic: String,
    pub channel: String,
    pub what: String,
    #[source]
    pub source: io::Error,
}

/// The open file's writer.
enum Writer {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<File>),
    Zstd(ZstdFile),
}

impl Writer {
    fn new(file: File, compression: Compression) -> io::Result<Writer> {
        Ok(match compression {
            Compression::None => Writer::Plain(BufWriter::with_capacity(64 * 1024, file)),
            Compression::Gzip(level) => Writer::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::new(level),
            )),
            Compression::Zstd(level) => Writer::Zstd(ZstdFile::new(file, level)?),
        })
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Writer::Plain(w) => w.write_all(buf),
            Writer::Gzip(w) => w.write_all(buf),
            Writer::Zstd(w) => w.write_all(buf),
        }
    }

    /// Ends the compressed stream so that everything written so far decodes on its own, and
    /// hands back the file with all of it written (not yet synced).
    fn finish(self) -> io::Result<File> {
        match self {
            Writer::Plain(w) => w.into_inner().map_err(io::IntoInnerError::into_error),
            Writer::Gzip(w) => w.finish(),
            Writer::Zstd(mut w) => {
                w.end_frame()?;
                Ok(w.file)
            }
        }
    }

    /// Makes everything written so far durable and decodable, and returns the writer to go on
    /// with: gzip starts a new member; zstd ends its frame and keeps its context for the next.
    fn sync(self, compression: Compression) -> io::Result<Writer> {
        match self {
            Writer::Zstd(mut w) => {
                w.end_frame()?;
                w.file.sync_all()?;
                Ok(Writer::Zstd(w))
            }
            other => {
                let file = other.finish()?;
                file.sync_all()?;
                Writer::new(file, compression)
            }
        }
    }
}

/// A zstd stream written as a run of frames, one per sync. The compression context lives as
/// long as the file: at high levels it holds megabytes of tables, too much to rebuild per sync.
struct ZstdFile {
    file: File,
    encoder: zstd::stream::raw::Encoder<'static>,
    /// Compressed bytes on their way to the file; its length never changes.
    out: Vec<u8>,
}

impl ZstdFile {
    fn new(file: File, level: i32) -> io::Result<ZstdFile> {
        Ok(ZstdFile {
            file,
            encoder: zstd::stream::raw::Encoder::new(level)?,
            out: vec![0; zstd::zstd_safe::CCtx::out_size()],
        })
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        use zstd::stream::raw::Operation;
        while !buf.is_empty() {
            let status = self.encoder.run_on_buffers(buf, &mut self.out)?;
            self.file
                .write_all(self.out.get(..status.bytes_written).unwrap_or_default())?;
            buf = buf.get(status.bytes_read..).unwrap_or_default();
        }
        Ok(())
    }

    /// Writes out the rest of the current frame; the next write starts a new one.
    fn end_frame(&mut self) -> io::Result<()> {
        use zstd::stream::raw::{Operation, OutBuffer};
        loop {
            let mut output = OutBuffer::around(&mut self.out[..]);
            let remaining = self.encoder.finish(&mut output, false)?;
            let written = output.pos();
            self.file
                .write_all(self.out.get(..written).unwrap_or_default())?;
            if remaining == 0 {
                return Ok(());
            }
        }
    }
}

/// The file one topic writes to.
pub struct OutputFile {
    settings: Arc<FileSettings>,
    topic: String,
    /// The name template with `<DATETIME>` and `<REV>` still in.
    template: String,
    clock: Clock,
    writer: Option<Writer>,
    /// The path the open file was opened under.
    out_name: String,
    /// The template with `<DATETIME>` filled in, as of the last open.
    filename: String,
    open_time: Instant,
    /// Bytes written since opening (uncompressed), plus the size the file had then.
    filesize: i64,
    rev: u64,
}

impl OutputFile {
    pub fn new(settings: Arc<FileSettings>, topic: &str, template: String, clock: Clock) -> Self {
        OutputFile {
            settings,
            topic: topic.to_string(),
            template,
            clock,
            writer: None,
            out_name: String::new(),
            filename: String::new(),
            open_time: Instant::now(),
            filesize: 0,
            rev: 0,
        }
    }

    pub fn is_open(&self) -> bool {
        self.writer.is_some()
    }

    /// The path of the open file.
    pub fn path(&self) -> Option<&str> {
        self.writer.as_ref().map(|_| self.out_name.as_str())
    }

    /// `[topic/channel]`, as log lines start.
    pub fn tag(&self) -> String {
        format!("[{}/{}]", self.topic, self.settings.channel)
    }

    fn fatal(&self, what: impl Into<String>, source: io::Error) -> FatalError {
        FatalError {
            topic: self.topic.clone(),
            channel: self.settings.channel.clone(),
            what: what.into(),
            source,
        }
    }

    fn current_filename(&self) -> String {
        let datetime = strftime(&self.settings.datetime_format, &(self.clock)());
        self.template.replace("<DATETIME>", &datetime)
    }

    /// Whether the next write should go to a new file: none is open, the date-time part of the
    /// name changed, or the file is too old or too big.
    pub fn needs_rotation(&self) -> bool {
        if self.writer.is_none() {
            return true;
        }
        let filename = self.current_filename();
        if filename != self.filename {
            log::info!("{} new filename {filename}, rotating...", self.tag());
            return true;
        }
        if let Some(limit) = self.settings.rotate_interval {
            let age = self.open_time.elapsed();
            if age > limit {
                log::info!(
                    "{} {} since last open, rotating...",
                    self.tag(),
                    nsq_flags::format_go_duration(age)
                );
                return true;
            }
        }
        if self.settings.rotate_size > 0 && self.filesize > self.settings.rotate_size {
            log::info!(
                "{} {} currently {} bytes (> {}), rotating...",
                self.tag(),
                self.out_name,
                self.filesize,
                self.settings.rotate_size
            );
            return true;
        }
        false
    }

    /// Appends bytes to the open file.
    pub fn write(&mut self, buf: &[u8]) -> Result<(), FatalError> {
        let result = match self.writer.as_mut() {
            Some(w) => w.write_all(buf),
            None => Err(io::Error::other("no file open")),
        };
        result.map_err(|e| {
            let e = go_error("write", &self.out_name, e);
            self.fatal("writing message to disk", e)
        })?;
        self.filesize = self
            .filesize
            .saturating_add(i64::try_from(buf.len()).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Makes everything written so far durable: compressed streams are ended (a new one starts
    /// with the next write), buffers flushed and the file fsynced.
    pub fn sync(&mut self) -> Result<(), FatalError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        match writer.sync(self.settings.compression) {
            Ok(w) => {
                self.writer = Some(w);
                Ok(())
            }
            Err(e) => {
                let e = go_error("sync", &self.out_name, e);
                Err(self.fatal("failed syncing messages", e))
            }
        }
    }

    /// Syncs and closes the open file, then moves it to the output directory when a separate
    /// work directory is in use, picking the next free `<REV>` if the name is taken there.
    pub fn close(&mut self) -> Result<(), FatalError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let closing_name = match self.settings.compression {
            Compression::None => "failed to fsync output file",
            Compression::Gzip(_) => "failed to close GZIP writer",
            Compression::Zstd(_) => "failed to close zstd writer",
        };
        let file = writer
            .finish()
            .map_err(|e| self.fatal(closing_name, go_error("write", &self.out_name, e)))?;
        file.sync_all().map_err(|e| {
            let e = go_error("sync", &self.out_name, e);
            self.fatal("failed to fsync output file", e)
        })?;
        drop(file);

        if !self.settings.moves_files() {
            return Ok(());
        }
        let src = self.out_name.clone();
        let dst = output_path(&src, &self.settings.work_dir, &self.settings.output_dir);
        log::info!("{} moving finished file {src} to {dst}", self.tag());
        match exclusive_rename(&src, &dst) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(self.fatal(format!("unable to move file from {src} to {dst}"), e));
            }
        }
        let (_, name_template) = split(&self.filename);
        let (dst_dir, _) = split(&dst);
        let dst_template = join(dst_dir, name_template);
        if !dst_template.contains("<REV>") {
            // No revision in the file's own name: every candidate would be the same path.
            return Err(self.fatal(
                format!("unable to rename file from {src} to {dst}"),
                io::Error::from(io::ErrorKind::AlreadyExists),
            ));
        }
        let mut rev = self.rev;
        loop {
            rev += 1;
            log::warn!("{} destination file already exists: {dst}", self.tag());
            let candidate = with_rev(&dst_template, rev);
            match exclusive_rename(&src, &candidate) {
                Ok(()) => {
                    log::info!(
                        "{} renamed finished file {src} to {candidate} to avoid overwrite",
                        self.tag()
                    );
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(self.fatal(
                        format!("unable to rename file from {src} to {candidate}"),
                        e,
                    ))
                }
            }
        }
    }

    /// Closes the current file (if any) and opens the next one: the same name with the next
    /// `<REV>` when the date-time part is unchanged, otherwise revision 0; revisions already
    /// taken in the work or output directory, or files already past `--rotate-size`, are skipped.
    pub fn update_file(&mut self) -> Result<(), FatalError> {
        self.close()?;
        let filename = self.current_filename();
        if filename != self.filename {
            self.rev = 0;
        } else {
            self.rev += 1;
        }
        self.filename = filename;
        self.open_time = Instant::now();

        let full_path = join(&self.settings.work_dir, &self.filename);
        make_dir_for(&full_path).map_err(|e| self.fatal("unable to create dir", e))?;

        let exclusive = self.settings.compression != Compression::None
            || self.settings.rotate_interval.is_some();
        let mut previous: Option<String> = None;
        loop {
            let abs = with_rev(&full_path, self.rev);
            if previous.as_deref() == Some(abs.as_str()) {
                // The name has no revision to bump: taking the next one would not help.
                return Err(self.fatal(
                    format!("unable to open {abs}"),
                    io::Error::from(io::ErrorKind::AlreadyExists),
                ));
            }
            previous = Some(abs.clone());

            if self.settings.moves_files() {
                let out = output_path(&abs, &self.settings.work_dir, &self.settings.output_dir);
                make_dir_for(&out).map_err(|e| self.fatal("unable to create dir", e))?;
                match fs::metadata(&out) {
                    Ok(_) => {
                        log::warn!("{} output file already exists: {out}", self.tag());
                        self.rev += 1;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        let e = go_error("stat", &out, e);
                        return Err(self.fatal(format!("unable to stat output file {out}"), e));
                    }
                }
            }

            let mut open = OpenOptions::new();
            open.write(true).mode(0o666);
            if exclusive {
                open.create_new(true);
            } else {
                open.create(true).append(true);
            }
            let file = match open.open(&abs) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    log::warn!("{} working file already exists: {abs}", self.tag());
                    self.rev += 1;
                    continue;
                }
                Err(e) => {
                    let e = go_error("open", &abs, e);
                    return Err(self.fatal(format!("unable to open {abs}"), e));
                }
            };
            log::info!("{} opening {abs}", self.tag());
            let size = file
                .metadata()
                .map_err(|e| self.fatal(format!("unable to stat file {abs}"), e))?
                .len();
            self.filesize = i64::try_from(size).unwrap_or(i64::MAX);
            if self.settings.rotate_size > 0 && self.filesize > self.settings.rotate_size {
                log::info!(
                    "{} {abs} currently {} bytes (> {}), rotating...",
                    self.tag(),
                    self.filesize,
                    self.settings.rotate_size
                );
                self.rev += 1;
                continue;
            }
            self.out_name = abs;
            let writer = Writer::new(file, self.settings.compression)
                .map_err(|e| self.fatal(format!("unable to open {}", self.out_name), e))?;
            self.writer = Some(writer);
            return Ok(());
        }
    }
}

/// An I/O error worded as Go words it (`open /x: permission denied`), keeping its kind.
fn go_error(op: &str, path: &str, e: io::Error) -> io::Error {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_string(),
        None => text,
    };
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    };
    io::Error::new(e.kind(), format!("{op} {path}: {text}"))
}

/// Creates the directories leading to `path` (mode 0770, as NSQ does).
fn make_dir_for(path: &str) -> io::Result<()> {
    let (dir, _) = split(path);
    if dir.is_empty() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o770)
        .create(dir)
        .map_err(|e| go_error("mkdir", dir, e))
}

/// Moves `src` to `dst` unless `dst` exists (a hard link, then removing `src`).
fn exclusive_rename(src: &str, dst: &str) -> io::Result<()> {
    fs::hard_link(src, dst).map_err(|e| go_error("link", &format!("{src} {dst}"), e))?;
    fs::remove_file(src).map_err(|e| go_error("remove", src, e))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::to_file::strftime::Stamp;

    fn zstd_file(dir: &std::path::Path) -> OutputFile {
        let settings = Arc::new(FileSettings {
            channel: "c".into(),
            output_dir: dir.to_string_lossy().into_owned(),
            work_dir: dir.to_string_lossy().into_owned(),
            datetime_format: "%H".into(),
            compression: Compression::Zstd(3),
            skip_empty_files: false,
            rotate_size: 0,
            rotate_interval: None,
        });
        let clock: Clock = Arc::new(|| Stamp {
            year: 2024,
            month: 3,
            day: 7,
            yday: 67,
            weekday: 4,
            hour: 10,
            minute: 0,
            second: 0,
            nanosecond: 0,
            offset: 0,
            zone_name: Some("UTC".into()),
        });
        let template = format!("{}/t<REV>.log.zst", dir.display());
        OutputFile::new(settings, "t", template, clock)
    }

    /// Decodes frame after frame and stops at the first that is cut off or damaged, as a reader
    /// salvaging a file after a crash would.
    fn complete_frames(mut raw: &[u8]) -> String {
        let mut out = Vec::new();
        while !raw.is_empty() {
            let Ok(size) = zstd::zstd_safe::find_frame_compressed_size(raw) else {
                break;
            };
            let Some(frame) = raw.get(..size) else { break };
            match zstd::stream::decode_all(frame) {
                Ok(bytes) => out.extend(bytes),
                Err(_) => break,
            }
            raw = &raw[size..];
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_sync_ends_a_frame_that_decodes_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = zstd_file(dir.path());
        f.update_file().unwrap();
        let path = f.path().unwrap().to_string();
        assert!(path.ends_with("t-000000.log.zst"), "{path}");

        let mut synced = Vec::new();
        let mut want = String::new();
        for batch in 0..4 {
            for i in 0..3 {
                let line = format!("batch {batch} message {i}\n");
                f.write(line.as_bytes()).unwrap();
                want.push_str(&line);
            }
            f.sync().unwrap();
            let raw = fs::read(&path).unwrap();
            // Everything synced so far is a run of whole frames holding exactly what was written.
            assert_eq!(complete_frames(&raw), want);
            synced.push((raw.len(), want.clone()));
        }
        let raw = fs::read(&path).unwrap();
        let frames = synced.len();
        let mut n = 0;
        let mut rest = &raw[..];
        while !rest.is_empty() {
            let size = zstd::zstd_safe::find_frame_compressed_size(rest).unwrap();
            rest = &rest[size..];
            n += 1;
        }
        assert_eq!(n, frames);

        // The streaming decoder reads the concatenated frames in one go.
        let mut all = String::new();
        zstd::stream::read::Decoder::new(&raw[..])
            .unwrap()
            .read_to_string(&mut all)
            .unwrap();
        assert_eq!(all, want);

        // A file cut anywhere loses only what came after the last sync before the cut.
        for cut in 0..=raw.len() {
            let kept = synced
                .iter()
                .rev()
                .find(|(len, _)| *len <= cut)
                .map(|(_, text)| text.as_str())
                .unwrap_or("");
            assert_eq!(complete_frames(&raw[..cut]), kept, "cut at {cut}");
        }
        f.close().unwrap();
    }

    #[test]
    fn close_ends_the_last_frame() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = zstd_file(dir.path());
        f.update_file().unwrap();
        let path = f.path().unwrap().to_string();
        f.write(b"only\n").unwrap();
        f.close().unwrap();
        let raw = fs::read(&path).unwrap();
        assert_eq!(zstd::stream::decode_all(&raw[..]).unwrap(), b"only\n");
    }
}
