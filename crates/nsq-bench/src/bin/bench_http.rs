//! `bench_http`: GETs `--url`s with `--concurrency` keep-alive connections for `--runfor` (or
//! `--count` requests) and prints requests, req/s, latency percentiles in ms, errors and bytes
//! per response as `key: value` lines.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::bail;
use nsq_bench::{cli, http_load, report};

const NAME: &str = "bench_http";

fn main() -> ExitCode {
    let fs = http_load::flags(NAME);
    let values = cli::parse_or_exit(&fs, std::env::args().skip(1).collect());
    let opts = http_load::opts(&values).unwrap_or_else(|e| cli::usage_error(&fs, &e));
    cli::finish(NAME, run(opts))
}

fn run(opts: http_load::HttpLoadOpts) -> anyhow::Result<()> {
    let urls: Vec<String> = opts.targets.iter().map(|t| t.url()).collect();
    report::log(
        NAME,
        &format!("{} x GET {}", opts.concurrency, urls.join(" ")),
    );
    let results = http_load::run(opts)?;
    for e in &results.first_errors {
        report::log(NAME, &format!("error: {e}"));
    }
    report::log(NAME, &results.log_line());
    println!("{}", results.machine_lines());
    if results.ok == 0 {
        bail!("no request succeeded");
    }
    Ok(())
}
