//! `bench_idle` against the real nsqd: its result keys, heartbeat answering, early stop on
//! SIGTERM and exit codes.
//!
//! Needs the `nsqd` binary next to `bench_idle` (`cargo build --bins`, which a workspace-wide
//! `cargo test` also does), or its path in `$NSQD_BIN`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any single wait may take before the test fails (not a timing assertion: only a
/// guard against hanging forever).
const WAIT: Duration = Duration::from_secs(60);

fn bench_idle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bench_idle"))
}

/// A real nsqd on ephemeral loopback ports with a private data directory, killed on drop.
/// Kept in this file on purpose: other test files of this crate have their own helpers.
struct Nsqd {
    child: Child,
    tcp: String,
    dir: PathBuf,
    /// nsqd's stderr lines, gathered by a thread.
    log: mpsc::Receiver<String>,
}

fn nsqd_bin() -> PathBuf {
    let path = match std::env::var_os("NSQD_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_bench_idle")).with_file_name("nsqd"),
    };
    assert!(
        path.is_file(),
        "nsqd binary not found at {} (build every binary first with `cargo build --bins`, \
         or set NSQD_BIN)",
        path.display()
    );
    path
}

impl Nsqd {
    fn start() -> Nsqd {
        let dir = std::env::temp_dir().join(format!(
            "nsq-bench-idle-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(nsqd_bin())
            .arg("--tcp-address=127.0.0.1:0")
            .arg("--http-address=127.0.0.1:0")
            .arg(format!("--data-path={}", dir.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nsqd");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut n = Nsqd {
            child,
            tcp: String::new(),
            dir,
            log,
        };
        let marker = "TCP: listening on ";
        let line = n.wait_for_log(marker);
        n.tcp = line[line.find(marker).unwrap() + marker.len()..]
            .trim()
            .to_string();
        n
    }

    fn wait_for_log(&self, needle: &str) -> String {
        loop {
            match self.log.recv_timeout(WAIT) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("nsqd never logged {needle:?}: {e}"),
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nsqd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `key: value` lines of stdout (`ready` has no value and maps to "").
fn keys(stdout: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| match l.split_once(": ") {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

fn num(keys: &HashMap<String, String>, key: &str) -> f64 {
    keys.get(key)
        .unwrap_or_else(|| panic!("no {key:?} line in {keys:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key:?} is not a number: {e}"))
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
