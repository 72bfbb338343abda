//! What the utilities' integration tests share: our nsqd and nsqlookupd on ephemeral loopback
//! ports with temporary data directories, the utility binaries run as child processes, and
//! helpers that publish and inspect topics over nsqd's HTTP API.
#![allow(dead_code, unused_imports)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use nsq_testkit::{eventually, http_request_with, HttpResponse, ProcessLog};

/// A binary of this package (`to_nsq`, `nsq_tail`, ...).
pub fn util_bin(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_nsq_tail")).with_file_name(name);
    assert!(path.is_file(), "{name} not found at {}", path.display());
    path
}

/// A sibling daemon binary (`nsqd`, `nsqlookupd`); `cargo build --bins` builds them all.
pub fn sibling(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_nsq_tail")).with_file_name(name);
    assert!(
        path.is_file(),
        "{name} not found at {} (run `cargo build --bins` first)",
        path.display()
    );
    path
}

/// A daemon child process, killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: ProcessLog,
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    /// Kept so the data directory lives as long as the daemon.
    pub data: Option<tempfile::TempDir>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_lookupd() -> Daemon {
    let args: Vec<String> = vec![
        "--tcp-address=127.0.0.1:0".into(),
        "--http-address=127.0.0.1:0".into(),
        "--broadcast-address=127.0.0.1".into(),
    ];
    let (child, log) = nsq_testkit::spawn_logged(
        &sibling("nsqlookupd"),
        &args,
        "nsqlookupd",
        "UTILS_TEST_ECHO",
    );
    let tcp = log.listen_addr("TCP: listening on ");
    let http = log.listen_addr("HTTP: listening on ");
    Daemon {
        child,
        log,
        http,
        tcp,
        data: None,
    }
}

/// nsqd with a fresh data directory, registered with `lookupd` when given.
pub fn start_nsqd(lookupd: Option<&Daemon>, extra: &[&str]) -> Daemon {
    let data = tempfile::tempdir().expect("tempdir");
    let mut args = vec![
        format!("--data-path={}", data.path().display()),
        "--tcp-address=127.0.0.1:0".into(),
        "--http-address=127.0.0.1:0".into(),
        "--https-address=".into(),
        "--broadcast-address=127.0.0.1".into(),
    ];
    if let Some(l) = lookupd {
        args.push(format!("--lookupd-tcp-address={}", l.tcp));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let (child, log) =
        nsq_testkit::spawn_logged(&sibling("nsqd"), &args, "nsqd", "UTILS_TEST_ECHO");
    let tcp = log.listen_addr("TCP: listening on ");
    let http = log.listen_addr("HTTP: listening on ");
    Daemon {
        child,
        log,
        http,
        tcp,
        data: Some(data),
    }
}

pub fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request_with(addr, "GET", path, "", b"")
}

pub fn post(addr: SocketAddr, path: &str, body: &[u8]) -> HttpResponse {
    http_request_with(addr, "POST", path, "", body)
}

/// Publishes each body with `/pub`.
pub fn publish(nsqd: &Daemon, topic: &str, bodies: &[&[u8]]) {
    for b in bodies {
        let r = post(nsqd.http, &format!("/pub?topic={topic}"), b);
        assert_eq!(r.status, 200, "pub: {}", r.text());
    }
}

/// Creates a topic (and a channel, when given) so consumers and stats see it before any message.
pub fn create(nsqd: &Daemon, topic: &str, channel: Option<&str>) {
    let r = post(nsqd.http, &format!("/topic/create?topic={topic}"), b"");
    assert_eq!(r.status, 200, "topic/create: {}", r.text());
    if let Some(c) = channel {
        let r = post(
            nsqd.http,
            &format!("/channel/create?topic={topic}&channel={c}"),
            b"",
        );
        assert_eq!(r.status, 200, "channel/create: {}", r.text());
    }
}

/// nsqd's `/stats?format=json` for one topic.
pub fn topic_stats(nsqd: &Daemon, topic: &str) -> Option<serde_json::Value> {
    let r = get(nsqd.http, &format!("/stats?format=json&topic={topic}"));
    assert_eq!(r.status, 200, "stats: {}", r.text());
    let v = r.json();
    v["topics"]
        .as_array()?
        .iter()
        .find(|t| t["topic_name"] == topic)
        .cloned()
}

/// One channel's stats, if it exists.
pub fn channel_stats(nsqd: &Daemon, topic: &str, channel: &str) -> Option<serde_json::Value> {
    topic_stats(nsqd, topic)?["channels"]
        .as_array()?
        .iter()
        .find(|c| c["channel_name"] == channel)
        .cloned()
}

/// Waits until the channel exists with this depth and nothing in flight or deferred.
pub fn wait_channel_settled(nsqd: &Daemon, topic: &str, channel: &str, depth: u64) {
    eventually(|| {
        let c = channel_stats(nsqd, topic, channel)?;
        (c["depth"] == depth && c["in_flight_count"] == 0 && c["deferred_count"] == 0).then_some(())
    });
}

/// The output of a finished utility run.
pub struct Output {
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs a utility to completion with `stdin` as its input.
pub fn run_util(name: &str, args: &[String], stdin: &[u8]) -> Output {
    let mut child = Command::new(util_bin(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn utility");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait utility");
    let _ = writer.join();
    Output {
        status: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts a utility in the background; stderr lines can be waited on through the log.
pub fn spawn_util(name: &'static str, args: &[String]) -> (Child, ProcessLog) {
    nsq_testkit::spawn_logged(&util_bin(name), args, name, "UTILS_TEST_ECHO")
}

/// Starts a utility with stdin and stdout piped (for `to_nsq` fed over time and `nsq_tail`
/// read line by line); stderr goes to the log.
pub fn spawn_util_piped(name: &'static str, args: &[String]) -> (Child, ProcessLog) {
    let mut child = Command::new(util_bin(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn utility");
    let stderr = child.stderr.take().expect("stderr");
    let log = ProcessLog::collect(name, stderr, "UTILS_TEST_ECHO");
    (child, log)
}

/// A smoke test of the helpers themselves, so this module compiles in every test binary.
#[test]
fn helpers_find_binaries() {
    assert!(util_bin("nsq_tail").is_file());
}
