//! Log lines in the shape of Go's standard `log` package (`2006/01/02 15:04:05 message` on
//! stderr), used by `nsq_to_http` and `nsq_to_nsq` for their own lines and for the client
//! library's records.
use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

/// One line as Go's `log.Printf` writes it, without the newline.
pub(crate) fn line(msg: impl Display) -> String {
    format!(
        "{} {}",
        chrono::Local::now().format("%Y/%m/%d %H:%M:%S"),
        msg
    )
}

/// `log.Printf`: a timestamped line on stderr. A closed stderr is not worth dying for.
pub(crate) fn print(msg: impl Display) {
    let text = line(msg);
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// `log.Fatal`: the line, then exit status 1.
pub(crate) fn fatal(msg: impl Display) -> ExitCode {
    print(msg);
    ExitCode::from(1)
}

/// `log.Fatal` once the consumer is running: exits at once, as Go's `os.Exit` does, so that
/// no shutdown chatter follows the fatal line.
pub(crate) fn exit_fatal(msg: impl Display) -> ! {
    print(msg);
    std::process::exit(1)
}

/// Routes the `log` crate's records (the client library's connection chatter) to stderr in
/// the same shape as our own lines.
struct GoLogger;

impl log::Log for GoLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // go-nsq's level tags, so that operators' greps for ERR/WRN keep working.
        let tag = match record.level() {
            log::Level::Error => "ERR",
            log::Level::Warn => "WRN",
            log::Level::Info => "INF",
            _ => "DBG",
        };
        if record.target().starts_with("nsq_client") {
            print(format_args!("{tag} {}", record.args()));
        } else {
            print(record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: GoLogger = GoLogger;

/// Installs the logger once; later calls (or another logger already installed) are harmless.
pub(crate) fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_go_timestamp_shape() {
        let l = line("hello");
        let (stamp, rest) = l.split_at(19);
        assert_eq!(rest, " hello");
        let b = stamp.as_bytes();
        assert_eq!(
            (b[4], b[7], b[10], b[13], b[16]),
            (b'/', b'/', b' ', b':', b':')
        );
        assert!(stamp
            .bytes()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16].contains(&i) || c.is_ascii_digit()));
    }
}
