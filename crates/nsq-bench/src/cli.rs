//! Command-line flags shared by the bench tools, with the names and defaults of NSQ's
//! `bench_writer`/`bench_reader`, Go's parsing rules (through `nsq-flags`) and Go's start
//! `--deadline` format.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use nsq_flags::{Flag, FlagSet, Parsed, Values};

use crate::reader::ReaderOpts;
use crate::report::{self, Summary};
use crate::transport::{Compression, Transport};
use crate::writer::WriterOpts;

pub fn address_flag() -> Flag {
    Flag::string(
        "nsqd-tcp-address",
        "127.0.0.1:4150",
        "<addr>:<port> to connect to nsqd",
    )
}

pub fn topic_flag() -> Flag {
    Flag::string(
        "topic",
        "sub_bench",
        "topic to publish to / receive messages on",
    )
}

pub fn size_flag() -> Flag {
    Flag::int("size", 200, "size of messages")
}

pub fn runfor_flag() -> Flag {
    Flag::duration("runfor", Duration::from_secs(10), "duration of time to run")
}

pub fn deadline_flag() -> Flag {
    Flag::string(
        "deadline",
        "",
        "deadline to start the benchmark run (\"YYYY-MM-DD hh:mm:ss\", UTC)",
    )
}

/// The flags that shape publishing (not `--count`, whose meaning differs per tool).
pub fn writer_flags() -> [Flag; 2] {
    [
        Flag::int("batch-size", 200, "batch size of messages"),
        Flag::int(
            "pipeline",
            1,
            "MPUBs sent before waiting for a response (1 waits for each, as NSQ's bench_writer)",
        ),
    ]
}

/// The flags that shape consuming (not `--count`).
pub fn reader_flags() -> [Flag; 2] {
    [
        Flag::string("channel", "ch", "channel to receive messages on"),
        Flag::int("rdy", 2500, "RDY count to use"),
    ]
}

/// `bench_reader`'s own flag (not `bench_pubsub`'s, whose consumer must drain the topic).
pub fn no_fin_flag() -> Flag {
    Flag::bool(
        "no-fin",
        false,
        "leave messages unfinished and, once --count or --runfor is reached, keep the \
         connection open (answering heartbeats) until nsqd closes it, so they stay in flight",
    )
}

/// The connection upgrades negotiated in IDENTIFY, shared by every tool.
pub fn transport_flags() -> [Flag; 5] {
    [
        Flag::bool("tls", false, "upgrade the connection to TLS in IDENTIFY"),
        Flag::string(
            "tls-ca-file",
            "",
            "PEM file of CA certificates to verify nsqd's certificate with (needs --tls; \
             without it any certificate is accepted: benchmarks only)",
        ),
        Flag::bool(
            "snappy",
            false,
            "compress the connection with snappy (after TLS)",
        ),
        Flag::bool(
            "deflate",
            false,
            "compress the connection with deflate (after TLS)",
        ),
        Flag::int("deflate-level", 6, "deflate compression level (1-9)"),
    ]
}

/// The transport the flags of [`transport_flags`] ask for.
pub fn transport(v: &Values) -> Result<Transport> {
    let ca = v.string("tls-ca-file");
    let tls = v.bool("tls");
    if !ca.is_empty() && !tls {
        bail!("--tls-ca-file needs --tls");
    }
    let level = v.int("deflate-level");
    if !(1..=9).contains(&level) {
        bail!("--deflate-level must be between 1 and 9 (got {level})");
    }
    let compression = match (v.bool("snappy"), v.bool("deflate")) {
        (true, true) => bail!("--snappy and --deflate cannot be used together"),
        (true, false) => Compression::Snappy,
        (false, true) => Compression::Deflate(level as u32),
        (false, false) => Compression::None,
    };
    Ok(Transport {
        tls,
        tls_ca_file: (!ca.is_empty()).then(|| ca.into()),
        compression,
    })
}

/// The flags every tool shares: nsqd's address, topic, message size, run time and start time.
pub fn base_flags(name: &str) -> FlagSet {
    FlagSet::new(name)
        .flag(address_flag())
        .flag(topic_flag())
        .flag(size_flag())
        .flag(runfor_flag())
        .flag(deadline_flag())
}

/// `main` of a one-sided tool (`bench_writer`, `bench_reader`): its flags, parsed the Go way;
/// connect, wait for `--deadline`, run, then NSQ's summary line and the machine-readable lines.
pub fn one_side_main<O, T>(
    name: &str,
    count_help: &str,
    side_flags: impl IntoIterator<Item = Flag>,
    opts: fn(&Values) -> Result<O>,
    connect: fn(O, &str) -> Result<T>,
    run: fn(T) -> Result<Summary>,
) -> std::process::ExitCode {
    let mut fs = base_flags(name).flag(Flag::int("count", 0, count_help));
    for f in side_flags.into_iter().chain(transport_flags()) {
        fs.add(f);
    }
    let values = parse_or_exit(&fs, std::env::args().skip(1).collect());
    let o = opts(&values).unwrap_or_else(|e| usage_error(&fs, &e));
    let start_at = deadline(&values).unwrap_or_else(|e| usage_error(&fs, &e));
    let result = (|| {
        let side = connect(o, &crate::user_agent(name))?;
        wait_until(name, start_at);
        let summary = run(side)?;
        report::log(name, &summary.go_line());
        println!("{}", summary.machine_lines(""));
        Ok(())
    })();
    finish(name, result)
}

/// Parses the arguments after the program name. Help prints the usage and exits 0; a bad flag
/// prints the error and usage and exits 2, as Go's `flag` package does.
pub fn parse_or_exit(fs: &FlagSet, args: Vec<String>) -> Values {
    match fs.parse(args) {
        Ok(Parsed::Help(usage)) => {
            eprint!("{usage}");
            std::process::exit(0);
        }
        Ok(Parsed::Args(cl)) => {
            if let Some(extra) = cl.positional().first() {
                eprintln!("unexpected argument {extra:?}");
                eprint!("{}", fs.usage());
                std::process::exit(2);
            }
            cl.values().clone()
        }
        Err(e) => {
            eprintln!("{e}");
            eprint!("{}", fs.usage());
            std::process::exit(2);
        }
    }
}

/// Reports a flag value that parsed but makes no sense, with the usage, and exits 2 like a
/// flag error.
pub fn usage_error(fs: &FlagSet, e: &anyhow::Error) -> ! {
    eprintln!("{e}");
    eprint!("{}", fs.usage());
    std::process::exit(2);
}

/// A tool's exit: 0, or 1 after logging the whole error chain on one line (never a backtrace:
/// these are expected failures such as a refused connection).
pub fn finish(prefix: &str, result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            report::log(prefix, &format!("FATAL: {e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}

/// A flag value that must be at least `min`, as a `usize`.
pub fn at_least(v: &Values, name: &str, min: i64) -> Result<usize> {
    let n = v.int(name);
    if n < min {
        bail!("--{name} must be at least {min} (got {n})");
    }
    usize::try_from(n).with_context(|| format!("--{name} is too large"))
}

fn positive_runfor(v: &Values) -> Result<Duration> {
    let d = v.duration("runfor");
    if d.is_zero() {
        bail!("--runfor must be positive: the tools stop only at --runfor or --count");
    }
    Ok(d)
}

fn count(v: &Values) -> Result<u64> {
    let n = v.int("count");
    u64::try_from(n).with_context(|| format!("--count must not be negative (got {n})"))
}

pub fn writer_opts(v: &Values) -> Result<WriterOpts> {
    Ok(WriterOpts {
        addr: v.string("nsqd-tcp-address").to_string(),
        topic: v.string("topic").to_string(),
        size: at_least(v, "size", 0)?,
        batch_size: at_least(v, "batch-size", 1)?,
        pipeline: at_least(v, "pipeline", 1)?,
        runfor: positive_runfor(v)?,
        count: if v.get("count").is_some() {
            count(v)?
        } else {
            0
        },
        transport: transport(v)?,
    })
}

pub fn reader_opts(v: &Values) -> Result<ReaderOpts> {
    Ok(ReaderOpts {
        addr: v.string("nsqd-tcp-address").to_string(),
        topic: v.string("topic").to_string(),
        channel: v.string("channel").to_string(),
        size: at_least(v, "size", 0)?,
        rdy: at_least(v, "rdy", 1)? as u64,
        runfor: positive_runfor(v)?,
        count: if v.get("count").is_some() {
            count(v)?
        } else {
            0
        },
        transport: transport(v)?,
        // Absent from tools that never hold messages.
        no_fin: v.get("no-fin").is_some() && v.bool("no-fin"),
    })
}

/// `--deadline` as a time, `None` when not given. Like NSQ's tools the text has no zone and is
/// taken as UTC. Parsed before connecting so a typo fails at once.
pub fn deadline(v: &Values) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let text = v.string("deadline");
    if text.is_empty() {
        return Ok(None);
    }
    let at = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .with_context(|| format!("--deadline {text:?} is not \"YYYY-MM-DD hh:mm:ss\""))?;
    Ok(Some(at.and_utc()))
}

/// Sleeps until the deadline, if any; a time already past starts at once.
pub fn wait_until(prefix: &str, at: Option<chrono::DateTime<chrono::Utc>>) {
    let Some(at) = at else {
        return;
    };
    let wait = at - chrono::Utc::now();
    report::log(
        prefix,
        &format!(
            "sleeping until {} ({})",
            at.format("%Y-%m-%d %H:%M:%S +0000 UTC"),
            nsq_flags::format_go_duration_nanos(wait.num_nanoseconds().unwrap_or(i64::MAX))
        ),
    );
    if let Ok(d) = wait.to_std() {
        std::thread::sleep(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_set() -> FlagSet {
        let mut fs = base_flags("bench_writer").flag(Flag::int("count", 0, "stop after this many"));
        for f in writer_flags().into_iter().chain(transport_flags()) {
            fs.add(f);
        }
        fs
    }

    fn values(fs: &FlagSet, args: &[&str]) -> Values {
        match fs.parse(args.iter().copied()) {
            Ok(Parsed::Args(cl)) => cl.values().clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_match_nsq_bench_writer() {
        let o = writer_opts(&values(&writer_set(), &[])).unwrap();
        assert_eq!(o.addr, "127.0.0.1:4150");
        assert_eq!(o.topic, "sub_bench");
        assert_eq!((o.size, o.batch_size, o.pipeline), (200, 200, 1));
        assert_eq!(o.runfor, Duration::from_secs(10));
        assert_eq!(o.count, 0);
        assert_eq!(o.transport, Transport::default());
    }

    #[test]
    fn transport_flags_combine_and_check() {
        let fs = writer_set();
        let t = writer_opts(&values(&fs, &["--tls", "--tls-ca-file=ca.pem", "--snappy"]))
            .unwrap()
            .transport;
        assert!(t.tls);
        assert_eq!(
            t.tls_ca_file.as_deref(),
            Some(std::path::Path::new("ca.pem"))
        );
        assert_eq!(t.compression, Compression::Snappy);
        let t = writer_opts(&values(&fs, &["--deflate", "--deflate-level=9"]))
            .unwrap()
            .transport;
        assert_eq!((t.tls, t.compression), (false, Compression::Deflate(9)));
        assert!(writer_opts(&values(&fs, &["--snappy", "--deflate"])).is_err());
        assert!(writer_opts(&values(&fs, &["--deflate", "--deflate-level=0"])).is_err());
        assert!(writer_opts(&values(&fs, &["--tls-ca-file=ca.pem"])).is_err());
    }

    #[test]
    fn go_style_flags_and_checks() {
        let fs = writer_set();
        let o = writer_opts(&values(
            &fs,
            &["-size=100", "--runfor", "5s", "-pipeline", "8"],
        ))
        .unwrap();
        assert_eq!((o.size, o.pipeline), (100, 8));
        assert_eq!(o.runfor, Duration::from_secs(5));
        assert!(writer_opts(&values(&fs, &["--batch-size=0"])).is_err());
        assert!(writer_opts(&values(&fs, &["--runfor=0s"])).is_err());
        assert!(writer_opts(&values(&fs, &["--count=-1"])).is_err());
        assert!(deadline(&values(&fs, &["--deadline=tomorrow"])).is_err());
        let at = deadline(&values(&fs, &["--deadline", "2030-01-02 03:04:05"])).unwrap();
        assert_eq!(at.map(|t| t.timestamp()), Some(1_893_553_445));
        assert_eq!(deadline(&values(&fs, &[])).unwrap(), None);
    }

    #[test]
    fn no_fin_only_where_offered() {
        let mut fs = base_flags("bench_reader").flag(Flag::int("count", 0, "stop after"));
        for f in reader_flags().into_iter().chain(transport_flags()) {
            fs.add(f);
        }
        // bench_pubsub's set has no --no-fin: its consumer always finishes.
        assert!(!reader_opts(&values(&fs, &[])).unwrap().no_fin);
        fs.add(no_fin_flag());
        assert!(!reader_opts(&values(&fs, &[])).unwrap().no_fin);
        assert!(reader_opts(&values(&fs, &["--no-fin"])).unwrap().no_fin);
    }
}
