//! Output file names: the per-topic template (`<TOPIC> <HOST> <PID>` filled in, `<REV>` kept or
//! dropped, `.gz` or `.zst` appended), and Go's path joining rules, which decide where files land when the
//! work and output directories differ.

/// Why a topic's file name template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error("missing <REV> in --filename-format when gzip, rotation, or work dir enabled")]
    MissingRev,
    /// The same rule for zstd output, named after the flag actually given.
    #[error("missing <REV> in --filename-format when zstd, rotation, or work dir enabled")]
    MissingRevZstd,
}

use super::output::Compression;

/// What the template depends on, besides the topic.
#[derive(Debug, Clone)]
pub struct NamingOptions<'a> {
    pub filename_format: &'a str,
    pub host_identifier: &'a str,
    /// Compressed files need `<REV>` and get the compression's extension.
    pub compression: Compression,
    /// Rotation or a separate work directory: `<REV>` is needed to keep names apart.
    pub needs_rev: bool,
    pub hostname: &'a str,
    pub pid: u32,
}

/// The template for `topic`: every token but `<DATETIME>` and `<REV>` replaced, in NSQ's order.
pub fn filename_template(opts: &NamingOptions<'_>, topic: &str) -> Result<String, NamingError> {
    let short = opts.hostname.split('.').next().unwrap_or_default();
    let identifier = if opts.host_identifier.is_empty() {
        short.to_string()
    } else {
        opts.host_identifier
            .replace("<SHORT_HOST>", short)
            .replace("<HOSTNAME>", opts.hostname)
    };
    let mut template = opts.filename_format.to_string();
    let compressed = opts.compression != Compression::None;
    if compressed || opts.needs_rev {
        if !template.contains("<REV>") {
            return Err(match opts.compression {
                Compression::Zstd(_) => NamingError::MissingRevZstd,
                _ => NamingError::MissingRev,
            });
        }
    } else {
        template = template.replace("<REV>", "");
    }
    template = template
        .replace("<TOPIC>", topic)
        .replace("<HOST>", &identifier)
        .replace("<PID>", &opts.pid.to_string());
    let extension = opts.compression.extension();
    if compressed && !template.ends_with(extension) {
        template.push_str(extension);
    }
    Ok(template)
}

/// `<REV>` as NSQ writes it: `-000000`, `-000001`, ...
pub fn with_rev(path: &str, rev: u64) -> String {
    path.replace("<REV>", &format!("-{rev:06}"))
}

/// Go's `path.Clean`: the shortest equivalent slash-separated path.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `path.Join` (and `filepath.Join` on Unix): empty elements ignored, result cleaned.
pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(b),
        (false, true) => clean(a),
        (false, false) => clean(&format!("{a}/{b}")),
    }
}

/// Go's `filepath.Split`: everything up to and including the last slash, and the rest.
pub fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (
            path.get(..=i).unwrap_or_default(),
            path.get(i + 1..).unwrap_or_default(),
        ),
        None => ("", path),
    }
}

/// Where a file in the work directory goes in the output directory, by NSQ's rule: the work
/// directory's text is cut from the front of the path and the rest joined to the output
/// directory.
pub fn output_path(work_path: &str, work_dir: &str, output_dir: &str) -> String {
    join(
        output_dir,
        work_path.strip_prefix(work_dir).unwrap_or(work_path),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts<'a>(format: &'a str) -> NamingOptions<'a> {
        NamingOptions {
            filename_format: format,
            host_identifier: "",
            compression: Compression::None,
            needs_rev: false,
            hostname: "web1.example.com",
            pid: 42,
        }
    }

    #[test]
    fn tokens_are_replaced() {
        let o = opts("<TOPIC>.<HOST><REV>.<DATETIME>.<PID>.log");
        assert_eq!(
            filename_template(&o, "t").unwrap(),
            "t.web1.<DATETIME>.42.log"
        );
        let o = NamingOptions {
            host_identifier: "<SHORT_HOST>+<HOSTNAME>",
            ..opts("<HOST>")
        };
        assert_eq!(filename_template(&o, "t").unwrap(), "web1+web1.example.com");
    }

    #[test]
    fn rev_is_required_with_gzip_rotation_or_work_dir() {
        let o = NamingOptions {
            compression: Compression::Gzip(6),
            ..opts("<TOPIC>.log")
        };
        assert_eq!(filename_template(&o, "t"), Err(NamingError::MissingRev));
        let o = NamingOptions {
            needs_rev: true,
            ..opts("<TOPIC>.log")
        };
        assert_eq!(filename_template(&o, "t"), Err(NamingError::MissingRev));
        let o = NamingOptions {
            compression: Compression::Gzip(6),
            ..opts("<TOPIC><REV>.log")
        };
        assert_eq!(filename_template(&o, "t").unwrap(), "t<REV>.log.gz");
        let o = NamingOptions {
            compression: Compression::Gzip(6),
            ..opts("<TOPIC><REV>.gz")
        };
        assert_eq!(filename_template(&o, "t").unwrap(), "t<REV>.gz");
    }

    #[test]
    fn zstd_names_follow_the_gzip_rules() {
        let zstd = Compression::Zstd(3);
        let o = NamingOptions {
            compression: zstd,
            ..opts("<TOPIC>.log")
        };
        assert_eq!(filename_template(&o, "t"), Err(NamingError::MissingRevZstd));
        let o = NamingOptions {
            compression: zstd,
            ..opts("<TOPIC><REV>.log")
        };
        assert_eq!(filename_template(&o, "t").unwrap(), "t<REV>.log.zst");
        let o = NamingOptions {
            compression: zstd,
            ..opts("<TOPIC><REV>.zst")
        };
        assert_eq!(filename_template(&o, "t").unwrap(), "t<REV>.zst");
    }

    #[test]
    fn revisions_are_six_digits() {
        assert_eq!(with_rev("a<REV>.log", 0), "a-000000.log");
        assert_eq!(with_rev("a<REV>.log", 1234567), "a-1234567.log");
    }

    #[test]
    fn go_path_rules() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("/a/../../b/./c//"), "/b/c");
        assert_eq!(clean("a/../.."), "..");
        assert_eq!(join("/tmp/w/", "x/y.log"), "/tmp/w/x/y.log");
        assert_eq!(join("", "x"), "x");
        assert_eq!(split("/a/b.log"), ("/a/", "b.log"));
        assert_eq!(split("b.log"), ("", "b.log"));
        assert_eq!(output_path("/w/x.log", "/w", "/o"), "/o/x.log");
        // A work dir spelled unlike its cleaned form is not cut off, as in NSQ.
        assert_eq!(output_path("w/x.log", "./w", "/o"), "/o/w/x.log");
    }
}
