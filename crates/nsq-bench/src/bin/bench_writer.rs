//! `bench_writer`: publishes fixed-size messages in MPUB batches over one connection for
//! `--runfor` (or until `--count` messages), then prints NSQ's summary line, `msgs: N` and
//! `msgs/s: N`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use nsq_bench::cli;
use nsq_bench::writer::Writer;

fn main() -> ExitCode {
    cli::one_side_main(
        "bench_writer",
        "stop after publishing this many messages (0: run for --runfor)",
        cli::writer_flags(),
        cli::writer_opts,
        Writer::connect,
        Writer::run,
    )
}
