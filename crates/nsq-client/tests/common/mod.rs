//! Real daemons for the client's tests: nsqd and nsqlookupd binaries from the same target
//! directory, on ephemeral loopback ports with temporary data directories.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

pub use nsq_testkit::{eventually, http_request_with, ProcessLog};

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// A daemon binary next to this test's directory (`cargo build --bins` builds them).
pub fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{name} not found at {} (run `cargo build --bins` first)",
        path.display()
    );
    path
}

pub struct Daemon {
    pub child: Child,
    pub log: ProcessLog,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    _data: Option<tempfile::TempDir>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub fn tcp_addr(&self) -> String {
        self.tcp.to_string()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `GET path` on the HTTP port, as JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        http_request_with(self.http, "GET", path, "", b"").json()
    }

    /// The channel's stats object from nsqd's `/stats`.
    pub fn channel_stats(&self, topic: &str, channel: &str) -> Option<serde_json::Value> {
        let v = self.get_json(&format!("/stats?format=json&topic={topic}"));
        let topics = v["topics"].as_array()?.clone();
        let t = topics.iter().find(|t| t["topic_name"] == topic)?;
        t["channels"]
            .as_array()?
            .iter()
            .find(|c| c["channel_name"] == channel)
            .cloned()
    }
}

pub fn start_nsqd(extra: &[String]) -> Daemon {
    start_nsqd_at("127.0.0.1:0", extra)
}

pub fn start_nsqd_at(tcp: &str, extra: &[String]) -> Daemon {
    let data = tempfile::tempdir().expect("tempdir");
    let mut args = vec![
        format!("--data-path={}", data.path().display()),
        format!("--tcp-address={tcp}"),
        "--http-address=127.0.0.1:0".to_string(),
        "--broadcast-address=127.0.0.1".to_string(),
    ];
    args.extend_from_slice(extra);
    let (child, log) =
        nsq_testkit::spawn_logged(&sibling("nsqd"), &args, "nsqd", "NSQ_CLIENT_TEST_ECHO");
    let tcp = log.listen_addr("TCP: listening on ");
    let http = log.listen_addr("HTTP: listening on ");
    Daemon {
        child,
        log,
        tcp,
        http,
        _data: Some(data),
    }
}

pub fn start_lookupd() -> Daemon {
    let args = vec![
        "--tcp-address=127.0.0.1:0".to_string(),
        "--http-address=127.0.0.1:0".to_string(),
        "--broadcast-address=127.0.0.1".to_string(),
    ];
    let (child, log) = nsq_testkit::spawn_logged(
        &sibling("nsqlookupd"),
        &args,
        "nsqlookupd",
        "NSQ_CLIENT_TEST_ECHO",
    );
    let tcp = log.listen_addr("TCP: listening on ");
    let http = log.listen_addr("HTTP: listening on ");
    Daemon {
        child,
        log,
        tcp,
        http,
        _data: None,
    }
}

/// A config for tests: quick reconnects and short timeouts.
pub fn config() -> nsq_client::Config {
    let mut c = nsq_client::Config::new();
    c.lookupd_poll_interval = Duration::from_millis(200);
    c.read_timeout = Duration::from_secs(10);
    c.dial_timeout = Duration::from_secs(2);
    c
}

/// Waits at most [`WAIT`] for `f`, failing the test otherwise.
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}
