//! `bench_reader`: subscribes with a fixed RDY and finishes every message for `--runfor` (or
//! until `--count` messages), then prints NSQ's summary line, `msgs: N` and `msgs/s: N`. With
//! `--no-fin` it finishes nothing and holds the messages in flight until nsqd goes away.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use nsq_bench::cli;
use nsq_bench::reader::Reader;

fn main() -> ExitCode {
    cli::one_side_main(
        "bench_reader",
        "stop after receiving this many messages (0: run for --runfor)",
        cli::reader_flags().into_iter().chain([cli::no_fin_flag()]),
        cli::reader_opts,
        Reader::connect,
        Reader::run,
    )
}
