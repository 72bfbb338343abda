//! `bench_latency`: end-to-end latency of messages published at a fixed rate (`--mode=e2e`) or
//! round-trip time of one PUB at a time (`--mode=rtt`), as percentiles on stdout.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use nsq_bench::latency::{self, LatencyOpts};
use nsq_bench::{cli, report, user_agent};
use nsq_flags::FlagSet;

const NAME: &str = "bench_latency";

fn main() -> ExitCode {
    let mut fs = FlagSet::new(NAME);
    for f in latency::flags() {
        fs.add(f);
    }
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let opts = latency::opts(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    cli::finish(NAME, run(&opts))
}

fn run(opts: &LatencyOpts) -> anyhow::Result<()> {
    let outcome = latency::run(NAME, opts, &user_agent(NAME))?;
    report::log(NAME, &outcome.log_line());
    println!("{}", outcome.machine_lines());
    Ok(())
}
