//! `fake_cluster`: fake nsqd and nsqlookupd HTTP servers answering with NSQ 1.3.0's JSON, for
//! measuring nsqadmin against a large cluster. Prints `lookupd-http ADDR`, one
//! `nsqd-http ADDR` per node, then `ready`; serves until SIGINT or SIGTERM.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use nsq_bench::{cli, fake_cluster};

const NAME: &str = "fake_cluster";

fn main() -> ExitCode {
    let fs = fake_cluster::flags(NAME);
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let opts = fake_cluster::opts(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    cli::finish(NAME, fake_cluster::run(NAME, opts))
}
