//! What the bench tools' integration tests share: a real nsqd on ephemeral loopback ports with a
//! private data directory, and the `key: value` result lines the tools print.
//!
//! nsqd is another crate's binary, so it must be built first (`cargo build --bins`, which the
//! README's test command runs); `$NSQD_BIN` names another one.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any single wait may take before the test fails (not a timing assertion: only a
/// guard against hanging forever).
pub const WAIT: Duration = Duration::from_secs(60);

pub fn nsqd_bin() -> PathBuf {
    let path = match std::env::var_os("NSQD_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_bench_writer")).with_file_name("nsqd"),
    };
    assert!(
        path.is_file(),
        "nsqd binary not found at {} (build every binary first with `cargo build --bins`, \
         or set NSQD_BIN)",
        path.display()
    );
    path
}

/// nsqd on 127.0.0.1:0, killed (and its data directory removed) on drop.
pub struct Nsqd {
    child: Child,
    /// Its TCP address, as it logged it.
    pub tcp: String,
    _dir: tempfile::TempDir,
    /// nsqd's stderr lines, read by a thread so nsqd never blocks on a full pipe.
    log: mpsc::Receiver<String>,
}

impl Nsqd {
    pub fn start() -> Nsqd {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(nsqd_bin())
            .arg("--tcp-address=127.0.0.1:0")
            .arg("--http-address=127.0.0.1:0")
            .arg(format!("--data-path={}", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nsqd");
        let stderr = child.stderr.take().expect("nsqd stderr");
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut n = Nsqd {
            child,
            tcp: String::new(),
            _dir: dir,
            log,
        };
        const MARKER: &str = "TCP: listening on ";
        let line = n.wait_for_log(MARKER);
        n.tcp = line
            .split_once(MARKER)
            .map(|(_, addr)| addr.trim().to_string())
            .unwrap_or_default();
        n
    }

    /// The first log line (from now on) containing `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        loop {
            match self.log.recv_timeout(WAIT) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("nsqd never logged {needle:?}: {e}"),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nsqd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `key: value` lines of a tool's stdout (a bare line such as `ready` maps to "").
pub fn keys(stdout: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| match l.split_once(": ") {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// A numeric result line.
pub fn num(keys: &HashMap<String, String>, key: &str) -> f64 {
    keys.get(key)
        .unwrap_or_else(|| panic!("no {key:?} line in {keys:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key:?} is not a number: {e} in {keys:?}"))
}
