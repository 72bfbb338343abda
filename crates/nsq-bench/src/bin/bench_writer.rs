//! `bench_writer`: publishes fixed-size messages in MPUB batches over one connection for
//! `--runfor` (or until `--count` messages), then prints NSQ's summary line, `msgs: N` and
//! `msgs/s: N`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use nsq_bench::writer::{Writer, WriterOpts};
use nsq_bench::{cli, report, user_agent};
use nsq_flags::{Flag, FlagSet};

const NAME: &str = "bench_writer";

fn main() -> ExitCode {
    let mut fs = FlagSet::new(NAME)
        .flag(cli::address_flag())
        .flag(cli::topic_flag())
        .flag(cli::size_flag())
        .flag(cli::runfor_flag())
        .flag(cli::deadline_flag())
        .flag(Flag::int(
            "count",
            0,
            "stop after publishing this many messages (0: run for --runfor)",
        ));
    for f in cli::writer_flags()
        .into_iter()
        .chain(cli::transport_flags())
    {
        fs.add(f);
    }
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let opts = cli::writer_opts(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    let start_at = cli::deadline(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    cli::finish(NAME, run(opts, start_at))
}

fn run(opts: WriterOpts, start_at: Option<DateTime<Utc>>) -> anyhow::Result<()> {
    let writer = Writer::connect(opts, &user_agent(NAME))?;
    cli::wait_until(NAME, start_at);
    let summary = writer.run()?;
    report::log(NAME, &summary.go_line());
    println!("{}", summary.machine_lines(""));
    Ok(())
}
