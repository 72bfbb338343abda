//! `bench_pubsub`: a publisher and a consumer on one topic at the same time, each on its own
//! connection and thread, for `--runfor`. Prints both sides' summaries and the backlog left
//! (published minus finished during the run).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use nsq_bench::reader::{Reader, ReaderOpts};
use nsq_bench::writer::{Writer, WriterOpts};
use nsq_bench::{cli, report, user_agent};

const NAME: &str = "bench_pubsub";

fn main() -> ExitCode {
    let mut fs = cli::base_flags(NAME);
    for f in cli::writer_flags()
        .into_iter()
        .chain(cli::reader_flags())
        .chain(cli::transport_flags())
    {
        fs.add(f);
    }
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let wopts = cli::writer_opts(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    let ropts = cli::reader_opts(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    let start_at = cli::deadline(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    cli::finish(NAME, run(wopts, ropts, start_at))
}

fn run(
    wopts: WriterOpts,
    ropts: ReaderOpts,
    start_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    // Subscribe first so the channel exists before the first message is published.
    let reader = Reader::connect(ropts, &user_agent(NAME))?;
    let writer = Writer::connect(wopts, &user_agent(NAME))?;
    cli::wait_until(NAME, start_at);

    let consume = std::thread::spawn(move || reader.run());
    let publish = std::thread::spawn(move || writer.run());
    let pubs = publish
        .join()
        .map_err(|_| anyhow!("publisher thread panicked"))?
        .context("publisher")?;
    let subs = consume
        .join()
        .map_err(|_| anyhow!("consumer thread panicked"))?
        .context("consumer")?;

    report::log(NAME, &format!("publish: {}", pubs.go_line()));
    report::log(NAME, &format!("consume: {}", subs.go_line()));
    println!("{}", pubs.machine_lines("pub "));
    println!("{}", subs.machine_lines("sub "));
    println!("backlog: {}", pubs.msgs.saturating_sub(subs.msgs));
    Ok(())
}
