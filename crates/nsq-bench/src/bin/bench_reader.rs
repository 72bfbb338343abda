//! `bench_reader`: subscribes with a fixed RDY and finishes every message for `--runfor` (or
//! until `--count` messages), then prints NSQ's summary line, `msgs: N` and `msgs/s: N`.
#![forbid(unsafe_code)]

use anyhow::Result;
use nsq_bench::{cli, reader::Reader, report, user_agent};
use nsq_flags::{Flag, FlagSet};

const NAME: &str = "bench_reader";

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
            "stop after receiving this many messages (0: run for --runfor)",
        ));
    for f in cli::reader_flags() {
        fs.add(f);
    }
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let opts = cli::reader_opts(&values)?;
    let reader = Reader::connect(opts, &user_agent(NAME))?;
    cli::wait_for_deadline(NAME, &values)?;
    let summary = reader.run()?;
    report::log(NAME, &summary.go_line());
    println!("{}", summary.machine_lines(""));
    Ok(())
}
