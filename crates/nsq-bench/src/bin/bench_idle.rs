//! `bench_idle`: opens many consumer connections that only answer heartbeats, prints `ready`
//! once all are up, holds them for `--runfor` (or until SIGINT/SIGTERM), then prints the
//! heartbeat count and, with `--pid`, nsqd's memory and CPU use as `key: value` lines.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use nsq_bench::{cli, idle, user_agent};

const NAME: &str = "bench_idle";

fn main() -> ExitCode {
    let fs = idle::flags(NAME);
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let opts = idle::opts(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    cli::finish(NAME, idle::run(NAME, &user_agent(NAME), opts))
}
