//! `nsqd_rollback`: converts a data directory of this nsqd back into Go nsqd's layout (disk
//! queues next to `nsqd.dat`), so Go nsqd can take over without losing queued messages.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use nsq_flags::{Flag, FlagSet, Parsed};
use nsq_migrate::{export_legacy, ExportOptions, ExportReport};

const APP: &str = "nsqd_rollback";

fn flags() -> FlagSet {
    FlagSet::new(APP)
        .flag(Flag::string(
            "data-path",
            "",
            "path to the nsqd data directory to convert (default: the working directory)",
        ))
        .flag(Flag::int(
            "max-bytes-per-file",
            nsq_migrate::DEFAULT_MAX_BYTES_PER_FILE as i64,
            "number of bytes per Go disk queue file before rolling",
        ))
        .flag(Flag::int(
            "max-msg-size",
            nsq_migrate::DEFAULT_MAX_MSG_SIZE,
            "maximum size of a single message in bytes (as given to nsqd)",
        ))
        .flag(Flag::bool(
            "keep-store",
            false,
            "keep the native store after converting (it is removed by default)",
        ))
        .flag(Flag::bool("version", false, "print version string"))
}

fn main() -> ExitCode {
    let flags = flags();
    let cli = match flags.parse(std::env::args().skip(1)) {
        Ok(Parsed::Args(cli)) => cli,
        Ok(Parsed::Help(usage)) => {
            eprint!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            eprint!("{}", flags.usage());
            return ExitCode::from(2);
        }
    };
    let v = cli.values();
    if v.bool("version") {
        println!("{}", nsq_daemon::version_line(APP));
        return ExitCode::SUCCESS;
    }
    if let Some(extra) = cli.positional().first() {
        eprintln!("unexpected argument {extra:?}");
        eprint!("{}", flags.usage());
        return ExitCode::from(2);
    }
    let (max_bytes, max_msg) = (v.int("max-bytes-per-file"), v.int("max-msg-size"));
    if max_bytes <= 0 || max_msg <= 0 {
        eprintln!("--max-bytes-per-file and --max-msg-size must be positive");
        return ExitCode::from(2);
    }
    let opts = ExportOptions {
        max_msg_size: max_msg,
        max_bytes_per_file: max_bytes as u64,
        keep_store: v.bool("keep-store"),
    };
    nsq_daemon::logging::init(&format!("[{APP}] "), nsq_daemon::LogLevel::Warn);
    match run(v.string("data-path"), &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{APP}: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(data_path: &str, opts: &ExportOptions) -> anyhow::Result<()> {
    let dir = if data_path.is_empty() {
        std::env::current_dir().context("failed to find the working directory")?
    } else {
        PathBuf::from(data_path)
    };
    // The same lock as nsqd (ours and Go's): converting under a running daemon would lose
    // whatever it writes meanwhile.
    let _lock = nsq_daemon::process::lock_dir(&dir)
        .map_err(|e| anyhow::anyhow!("failed to lock data-path: {e}"))?;
    let report = export_legacy(&dir, opts)
        .with_context(|| format!("failed to convert {}", dir.display()))?;
    print_summary(&dir, opts, &report);
    Ok(())
}

fn print_summary(dir: &std::path::Path, opts: &ExportOptions, r: &ExportReport) {
    if r.resumed {
        println!("finished an interrupted earlier run");
    }
    for t in &r.topics {
        let queues: Vec<String> = t
            .queues
            .iter()
            .map(|q| format!("{} {}", q.queue, q.messages))
            .collect();
        println!(
            "topic {}: {} messages ({})",
            t.topic,
            t.messages(),
            queues.join(", ")
        );
    }
    for c in &r.corrupt {
        eprintln!("damaged: {c}");
    }
    for i in &r.ignored {
        eprintln!("not converted: {i}");
    }
    let store = if r.store_removed {
        "native store removed"
    } else if opts.keep_store {
        "native store kept (--keep-store)"
    } else if !r.corrupt.is_empty() {
        "native store kept because damage was found"
    } else {
        "native store kept for the topics not converted"
    };
    println!(
        "total: {} messages in {} queues of {} topics written to {}; {store}",
        r.messages,
        r.topics.iter().map(|t| t.queues.len()).sum::<usize>(),
        r.topics.len(),
        dir.display()
    );
}
