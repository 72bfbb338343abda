//! The queue meta file `<queue>.diskqueue.meta.dat`: its text format, tolerant parsing, and
//! atomic replacement.
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::files::{check_queue_name, meta_path};
use crate::{private_file_options, Error, Position};

/// The five numbers of a meta file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueueMeta {
    /// Records written and not yet handed out.
    pub depth: i64,
    pub read_file_num: i64,
    pub read_pos: i64,
    pub write_file_num: i64,
    pub write_pos: i64,
}

impl QueueMeta {
    pub fn read_position(&self) -> Position {
        Position {
            file_num: self.read_file_num,
            pos: self.read_pos,
        }
    }

    pub fn write_position(&self) -> Position {
        Position {
            file_num: self.write_file_num,
            pos: self.write_pos,
        }
    }

    /// The file content, byte for byte what Go's `%d\n%d,%d\n%d,%d\n` produces.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{},{}\n{},{}\n",
            self.depth, self.read_file_num, self.read_pos, self.write_file_num, self.write_pos
        )
    }
}

/// The fields a damaged meta file yielded before parsing stopped, in file order. Go nsqd keeps
/// the positions it managed to scan (but not the depth) and carries on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartialMeta {
    pub depth: Option<i64>,
    pub read_file_num: Option<i64>,
    pub read_pos: Option<i64>,
    pub write_file_num: Option<i64>,
    pub write_pos: Option<i64>,
}

/// A meta file that exists but could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse disk queue metadata {}: {reason}", path.display())]
pub struct BadMeta {
    pub path: PathBuf,
    pub parsed: PartialMeta,
    pub reason: String,
}

/// A valid meta file is under 100 bytes; reading more would only let a garbage file cost memory.
const META_READ_LIMIT: u64 = 4096;

/// Reads a queue's meta file. `Ok(None)` when it does not exist (a fresh queue, or one emptied
/// since its last sync); [`Error::BadMeta`] when it exists but is not in the expected format.
pub fn read_meta(dir: &Path, queue: &str) -> Result<Option<QueueMeta>, Error> {
    check_queue_name(queue)?;
    let path = meta_path(dir, queue);
    let mut text = Vec::new();
    let read =
        std::fs::File::open(&path).and_then(|f| f.take(META_READ_LIMIT).read_to_end(&mut text));
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", &path, e)),
    }
    parse(&text).map(Some).map_err(|(parsed, reason)| {
        Error::from(BadMeta {
            path,
            parsed,
            reason,
        })
    })
}

/// Replaces a queue's meta file the way Go does: write `<meta>.<random>.tmp` (mode 0600),
/// fsync it, rename it over the meta file.
pub fn write_meta(dir: &Path, queue: &str, meta: &QueueMeta) -> Result<(), Error> {
    check_queue_name(queue)?;
    let path = meta_path(dir, queue);
    let mut tmp = path.clone().into_os_string();
    // Go uses rand.Int(): a non-negative 63-bit number.
    tmp.push(format!(".{}.tmp", rand::random::<u64>() >> 1));
    let tmp = PathBuf::from(tmp);
    let write = || -> io::Result<()> {
        let mut f = private_file_options().create_new(true).open(&tmp)?;
        f.write_all(meta.to_text().as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write", &path, e)
    })
}

const FIELD_NAMES: [&str; 5] = [
    "depth",
    "read file number",
    "read position",
    "write file number",
    "write position",
];

/// Parses `%d\n%d,%d\n%d,%d\n` with the leniencies of Go's `fmt.Fscanf`: blanks before a
/// number, an explicit sign, `\r\n` for `\n`, a missing final newline, and anything after the
/// third line.
fn parse(text: &[u8]) -> Result<QueueMeta, (PartialMeta, String)> {
    let mut cur = Cursor { text, at: 0 };
    let mut vals = [0i64; 5];
    for (k, name) in FIELD_NAMES.iter().enumerate() {
        let partial = |vals: &[i64; 5], n: usize| {
            let get = |i: usize| vals.get(i).copied().filter(|_| i < n);
            PartialMeta {
                depth: get(0),
                read_file_num: get(1),
                read_pos: get(2),
                write_file_num: get(3),
                write_pos: get(4),
            }
        };
        let val = cur
            .int()
            .ok_or_else(|| (partial(&vals, k), format!("expected {name}")))?;
        if let Some(slot) = vals.get_mut(k) {
            *slot = val;
        }
        let sep_ok = match k {
            1 | 3 => cur.eat(b","),
            4 => cur.newline() || cur.at_end(),
            _ => cur.newline(),
        };
        if !sep_ok {
            let what = if k % 2 == 1 { "','" } else { "newline" };
            return Err((
                partial(&vals, k + 1),
                format!("expected {what} after {name}"),
            ));
        }
    }
    let [depth, read_file_num, read_pos, write_file_num, write_pos] = vals;
    Ok(QueueMeta {
        depth,
        read_file_num,
        read_pos,
        write_file_num,
        write_pos,
    })
}

struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.text.len()
    }

    fn eat(&mut self, s: &[u8]) -> bool {
        let found = self.text.get(self.at..).is_some_and(|t| t.starts_with(s));
        if found {
            self.at += s.len();
        }
        found
    }

    fn newline(&mut self) -> bool {
        self.eat(b"\n") || self.eat(b"\r\n")
    }

    fn int(&mut self) -> Option<i64> {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        let start = self.at;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.at += 1;
        }
        let digits = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at == digits {
            return None;
        }
        std::str::from_utf8(self.text.get(start..self.at)?)
            .ok()?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(d: i64, rf: i64, rp: i64, wf: i64, wp: i64) -> QueueMeta {
        QueueMeta {
            depth: d,
            read_file_num: rf,
            read_pos: rp,
            write_file_num: wf,
            write_pos: wp,
        }
    }

    #[test]
    fn text_format() {
        assert_eq!(meta(0, 0, 0, 0, 0).to_text(), "0\n0,0\n0,0\n");
        assert_eq!(
            meta(42, 3, 1048000, 5, 20480).to_text(),
            "42\n3,1048000\n5,20480\n"
        );
        assert_eq!(meta(-1, 0, 0, 0, 0).to_text(), "-1\n0,0\n0,0\n");
    }

    #[test]
    fn parse_accepts_go_spellings() {
        let m = meta(42, 3, 1048000, 5, 20480);
        for text in [
            "42\n3,1048000\n5,20480\n",
            "42\n3,1048000\n5,20480",
            "42\r\n3,1048000\r\n5,20480\r\n",
            " 42\n 3, 1048000\n\t5,+20480\n",
            "42\n3,1048000\n5,20480\ntrailing garbage",
        ] {
            assert_eq!(parse(text.as_bytes()), Ok(m), "{text:?}");
        }
        assert_eq!(parse(b"-3\n-1,-2\n0,0\n"), Ok(meta(-3, -1, -2, 0, 0)));
    }

    #[test]
    fn parse_reports_what_it_got() {
        let (p, reason) = parse(b"5\n1,100\n").unwrap_err();
        assert_eq!(
            p,
            PartialMeta {
                depth: Some(5),
                read_file_num: Some(1),
                read_pos: Some(100),
                ..PartialMeta::default()
            }
        );
        assert_eq!(reason, "expected write file number");

        let (p, reason) = parse(b"5\n1;100\n").unwrap_err();
        assert_eq!(p.read_file_num, Some(1));
        assert_eq!(p.read_pos, None);
        assert_eq!(reason, "expected ',' after read file number");

        let (p, reason) = parse(b"5 1,1\n").unwrap_err();
        assert_eq!(p.depth, Some(5));
        assert_eq!(reason, "expected newline after depth");

        for text in [
            &b""[..],
            b"\n",
            b"x\n0,0\n0,0\n",
            b"-\n0,0\n0,0\n",
            b"99999999999999999999\n0,0\n0,0\n",
            b"\xff\xfe",
        ] {
            let (p, _) = parse(text).unwrap_err();
            assert_eq!(p, PartialMeta::default(), "{text:?}");
        }
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(read_meta(d, "t:c").unwrap(), None);
        let m = meta(7, 1, 26, 2, 300);
        write_meta(d, "t:c", &m).unwrap();
        let path = meta_path(d, "t:c");
        assert_eq!(std::fs::read(&path).unwrap(), b"7\n1,26\n2,300\n");
        assert_eq!(read_meta(d, "t:c").unwrap(), Some(m));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Replacing leaves no temporary behind.
        write_meta(d, "t:c", &meta(0, 0, 0, 0, 0)).unwrap();
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 1);
        assert_eq!(std::fs::read(&path).unwrap(), b"0\n0,0\n0,0\n");
    }

    #[test]
    fn unparseable_file_is_an_error_with_partial_fields() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(meta_path(d, "t"), b"3\n0,52\ngarbage").unwrap();
        let Err(Error::BadMeta(bad)) = read_meta(d, "t") else {
            panic!("expected BadMeta");
        };
        assert_eq!(bad.path, meta_path(d, "t"));
        assert_eq!(bad.parsed.read_pos, Some(52));
        assert_eq!(bad.parsed.write_file_num, None);
        assert!(bad.to_string().contains("expected write file number"));
    }

    #[test]
    fn invalid_queue_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_meta(dir.path(), "../x"),
            Err(Error::InvalidQueueName(_))
        ));
        assert!(matches!(
            write_meta(dir.path(), "a/b", &QueueMeta::default()),
            Err(Error::InvalidQueueName(_))
        ));
    }
}
