//! `bench_idle` against the real nsqd: its result keys, heartbeat answering, early stop on
//! SIGTERM and exit codes.
//!
//! Needs the `nsqd` binary built (see `common`).

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn bench_idle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bench_idle"))
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn holds_connections_answers_heartbeats_and_samples_nsqd() {
    let nsqd = Nsqd::start();
    let out = bench_idle()
        .arg(format!("--nsqd-tcp-address={}", nsqd.tcp))
        .args(["--conns=200", "--heartbeat-interval=1s", "--runfor=3s"])
        // Several waves, so the wave logic is exercised too.
        .arg("--wave-size=64")
        .arg(format!("--pid={}", nsqd.pid()))
        .output()
        .expect("run bench_idle");
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.get(..2),
        Some(&["conns: 200", "ready"][..]),
        "{stdout}"
    );
    let k = keys(&out.stdout);
    // Each connection gets at least one heartbeat in 3s at a 1s interval; had one gone
    // unanswered, nsqd would have closed it and the run would have failed.
    assert!(num(&k, "heartbeats") >= 200.0, "{stdout}");
    assert!(num(&k, "rss_before_kib") > 0.0, "{stdout}");
    assert!(num(&k, "rss_idle_kib") > 0.0, "{stdout}");
    num(&k, "rss_per_conn_bytes");
    assert!(num(&k, "cpu_idle_percent") >= 0.0, "{stdout}");
}

#[test]
fn sigterm_ends_the_hold_with_results() {
    let nsqd = Nsqd::start();
    let mut child = bench_idle()
        .arg(format!("--nsqd-tcp-address={}", nsqd.tcp))
        .args(["--conns=50", "--heartbeat-interval=1s", "--runfor=1h"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench_idle");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while lines.last().map(String::as_str) != Some("ready") {
        match rx.recv_timeout(WAIT) {
            Ok(l) => lines.push(l),
            Err(e) => {
                let _ = child.kill();
                panic!("no ready line ({e}); got {lines:?}");
            }
        }
    }
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(st.success());
    // Without a pid there are no memory or CPU lines.
    let mut rest = Vec::new();
    while let Ok(l) = rx.recv_timeout(WAIT) {
        rest.push(l);
    }
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait bench_idle") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("bench_idle ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}, stdout {lines:?} {rest:?}");
    assert_eq!(lines, ["conns: 50", "ready"]);
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert!(rest[0].starts_with("heartbeats: "), "{rest:?}");
}

#[test]
fn bad_flags_exit_2() {
    for bad in ["--conns=0", "--pid=-5", "--runfor=0s", "--no-such-flag"] {
        let out = bench_idle().arg(bad).output().expect("run bench_idle");
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", describe(&out));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn refused_connection_exits_1_with_one_line() {
    // A port that was just free: nothing listens there any more.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = bench_idle()
        .arg(format!("--nsqd-tcp-address={addr}"))
        .args(["--conns=3", "--runfor=1s"])
        .output()
        .expect("run bench_idle");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fatal: Vec<&str> = stderr.lines().filter(|l| l.contains("FATAL")).collect();
    assert_eq!(fatal.len(), 1, "{stderr}");
    assert!(fatal[0].contains("3 of 3 connections"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}
