//! `bench_writer`: publishes fixed-size messages in MPUB batches over one connection for
//! `--runfor` (or until `--count` messages), then prints NSQ's summary line, `msgs: N` and `msgs/s: N`.
#![forbid(unsafe_code)]

use anyhow::Result;
use nsq_bench::{cli, report, user_agent, writer::Writer};
use nsq_flags::{Flag, FlagSet};

const NAME: &str = "bench_writer";

fn main() -> Result<()> {
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
    for f in cli::writer_flags() {
        fs.add(f);
    }
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let opts = cli::writer_opts(&values)?;
    let writer = Writer::connect(opts, &user_agent(NAME))?;
    cli::wait_for_deadline(NAME, &values)?;
    let summary = writer.run()?;
    report::log(NAME, &summary.go_line());
    println!("{}", summary.machine_lines(""));
    Ok(())
}
