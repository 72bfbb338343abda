//! `bench_pubsub`: a publisher and a consumer on one topic at the same time, each on its own
//! connection and thread, for `--runfor`. Prints both sides' summaries and the backlog left
//! (published minus finished during the run).
#![forbid(unsafe_code)]

use anyhow::{anyhow, Context, Result};
use nsq_bench::{cli, reader::Reader, report, user_agent, writer::Writer};
use nsq_flags::FlagSet;

const NAME: &str = "bench_pubsub";

fn main() -> Result<()> {
    let mut fs = FlagSet::new(NAME)
        .flag(cli::address_flag())
        .flag(cli::topic_flag())
        .flag(cli::size_flag())
        .flag(cli::runfor_flag())
        .flag(cli::deadline_flag());
    for f in cli::writer_flags().into_iter().chain(cli::reader_flags()) {
        fs.add(f);
    }
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let wopts = cli::writer_opts(&values)?;
    let ropts = cli::reader_opts(&values)?;
    // Subscribe first so the channel exists before the first message is published.
    let reader = Reader::connect(ropts, &user_agent(NAME))?;
    let writer = Writer::connect(wopts, &user_agent(NAME))?;
    cli::wait_for_deadline(NAME, &values)?;

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
