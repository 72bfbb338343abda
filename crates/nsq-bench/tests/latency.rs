//! `bench_latency` against the real nsqd on an ephemeral loopback port: both modes count every
//! message and print ordered percentiles; an nsqd error frame ends the run with exit 1.
//!
//! Needs the `nsqd` binary built (see `common`).

mod common;

use common::*;
use std::collections::HashMap;
use std::process::{Command, Output, Stdio};

fn bench_latency(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench_latency"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run bench_latency")
}

/// The `key: value` lines of a successful run.
fn results(out: &Output) -> HashMap<String, String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench_latency failed:\n{stderr}");
    keys(&out.stdout)
}

fn assert_ordered_percentiles(r: &HashMap<String, String>) {
    let p: Vec<f64> = ["p50_us", "p99_us", "p999_us", "max_us"]
        .iter()
        .map(|k| num(r, k))
        .collect();
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "percentiles {p:?}");
    assert!(p[0] > 0.0, "a latency of zero: {r:?}");
}

#[test]
fn e2e_receives_every_message() {
    let nsqd = Nsqd::start();
    let addr = format!("--nsqd-tcp-address={}", nsqd.tcp);
    let r = results(&bench_latency(&[
        &addr,
        "--mode=e2e",
        "--topic=lat_e2e",
        "--rate=2000",
        "--runfor=2s",
        "--warmup=500ms",
        "--size=64",
    ]));
    assert_eq!(r["mode"], "e2e");
    assert_eq!(num(&r, "rate"), 2000.0);
    // 2000/s for the 1.5 s after the warmup.
    assert_eq!(num(&r, "sent"), 3000.0);
    assert_eq!(num(&r, "received"), num(&r, "sent"));
    assert!(!r.contains_key("lost"), "{r:?}");
    assert_ordered_percentiles(&r);
}

#[test]
fn e2e_with_many_in_flight_and_rtt() {
    let nsqd = Nsqd::start();
    let addr = format!("--nsqd-tcp-address={}", nsqd.tcp);
    let r = results(&bench_latency(&[
        &addr,
        "--topic=lat_e2e_mif",
        "--rate=2000",
        "--runfor=1s",
        "--warmup=200ms",
        "--max-in-flight=200",
    ]));
    assert_eq!(r["mode"], "e2e");
    assert!(num(&r, "sent") > 0.0);
    assert_eq!(num(&r, "received"), num(&r, "sent"));
    assert_ordered_percentiles(&r);

    let r = results(&bench_latency(&[
        &addr,
        "--mode=rtt",
        "--topic=lat_rtt",
        "--runfor=1s",
        "--warmup=200ms",
    ]));
    assert_eq!(r["mode"], "rtt");
    assert_eq!(num(&r, "rate"), 0.0);
    assert!(num(&r, "sent") > 0.0);
    assert_eq!(num(&r, "received"), num(&r, "sent"));
    assert_ordered_percentiles(&r);

    let r = results(&bench_latency(&[
        &addr,
        "--mode=rtt",
        "--topic=lat_rtt",
        "--count=100",
        "--warmup=0s",
    ]));
    assert_eq!(num(&r, "sent"), 100.0);
}

#[test]
fn an_error_frame_exits_1_with_one_line() {
    let nsqd = Nsqd::start();
    let out = bench_latency(&[
        &format!("--nsqd-tcp-address={}", nsqd.tcp),
        "--topic=bad!topic",
        "--runfor=1s",
        "--warmup=0s",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fatal: Vec<&str> = stderr.lines().filter(|l| l.contains("FATAL")).collect();
    assert_eq!(fatal.len(), 1, "{stderr}");
    assert!(fatal[0].contains("E_BAD_TOPIC"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_flags_exit_2() {
    for args in [&["--mode=nope"][..], &["--size=8"], &["--warmup=20s"]] {
        let out = bench_latency(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
