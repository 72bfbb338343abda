//! A real cluster for nsqadmin's tests: nsqlookupd, nsqd and nsqadmin binaries on ephemeral
//! loopback ports with temporary data directories, plus small fake upstreams (dead, silent,
//! garbage) and a recorder for notifications.
#![allow(dead_code, unused_imports)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};

pub use nsq_testkit::{eventually, http_request_with, HttpResponse, ProcessLog};

pub fn admin_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nsqadmin"))
}

/// A sibling binary (`nsqd`, `nsqlookupd`); `cargo build --bins` builds them all.
pub fn sibling(name: &str) -> PathBuf {
    let path = admin_bin().with_file_name(name);
    assert!(
        path.is_file(),
        "{name} not found at {} (run `cargo build --bins` first)",
        path.display()
    );
    path
}

pub struct Proc {
    pub child: Child,
    pub log: ProcessLog,
    pub http: SocketAddr,
    pub tcp: Option<SocketAddr>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn args(list: &[String]) -> Vec<String> {
    list.to_vec()
}

pub fn start_lookupd() -> Proc {
    let (child, log) = nsq_testkit::spawn_logged(
        &sibling("nsqlookupd"),
        &args(&[
            "--tcp-address=127.0.0.1:0".into(),
            "--http-address=127.0.0.1:0".into(),
            "--broadcast-address=127.0.0.1".into(),
        ]),
        "nsqlookupd",
        "NSQADMIN_TEST_ECHO",
    );
    let tcp = log.listen_addr("TCP: listening on ");
    let http = log.listen_addr("HTTP: listening on ");
    Proc {
        child,
        log,
        http,
        tcp: Some(tcp),
    }
}

pub fn start_nsqd(data: &Path, lookupd: Option<SocketAddr>, extra: &[&str]) -> Proc {
    let mut a = vec![
        format!("--data-path={}", data.display()),
        "--tcp-address=127.0.0.1:0".into(),
        "--http-address=127.0.0.1:0".into(),
        "--https-address=".into(),
        "--broadcast-address=127.0.0.1".into(),
    ];
    if let Some(l) = lookupd {
        a.push(format!("--lookupd-tcp-address={l}"));
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    let (child, log) =
        nsq_testkit::spawn_logged(&sibling("nsqd"), &a, "nsqd", "NSQADMIN_TEST_ECHO");
    let tcp = log.listen_addr("TCP: listening on ");
    let http = log.listen_addr("HTTP: listening on ");
    Proc {
        child,
        log,
        http,
        tcp: Some(tcp),
    }
}

pub fn start_admin(extra: &[String]) -> Proc {
    let mut a = vec!["--http-address=127.0.0.1:0".to_string()];
    a.extend(extra.iter().cloned());
    let (child, log) =
        nsq_testkit::spawn_logged(&admin_bin(), &a, "nsqadmin", "NSQADMIN_TEST_ECHO");
    let http = log.listen_addr("HTTP: listening on ");
    Proc {
        child,
        log,
        http,
        tcp: None,
    }
}

pub fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request_with(addr, "GET", path, "", b"")
}

pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let r = get(addr, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

pub fn post(addr: SocketAddr, path: &str, body: &str) -> HttpResponse {
    http_request_with(
        addr,
        "POST",
        path,
        "Content-Type: application/json\r\n",
        body.as_bytes(),
    )
}

pub fn delete(addr: SocketAddr, path: &str, body: &str) -> HttpResponse {
    http_request_with(addr, "DELETE", path, "", body.as_bytes())
}

pub fn nsqd_post(nsqd: SocketAddr, path: &str, body: &str) {
    let r = http_request_with(nsqd, "POST", path, "", body.as_bytes());
    assert_eq!(r.status, 200, "POST {path}: {}", r.text());
}

/// A connected consumer that never finishes its messages, so they stay in flight.
pub struct Consumer {
    pub stream: TcpStream,
}

impl Consumer {
    pub fn subscribe(tcp: SocketAddr, topic: &str, channel: &str, rdy: u32) -> Consumer {
        let mut s = TcpStream::connect(tcp).expect("connect nsqd");
        s.write_all(b"  V2").expect("magic");
        s.write_all(format!("SUB {topic} {channel}\nRDY {rdy}\n").as_bytes())
            .expect("sub");
        s.set_read_timeout(Some(nsq_testkit::WAIT))
            .expect("timeout");
        // The SUB's OK frame: size, frame type, "OK".
        let mut frame = [0u8; 10];
        s.read_exact(&mut frame).expect("SUB answer");
        assert_eq!(&frame[8..], b"OK", "SUB {topic} {channel}: {frame:?}");
        Consumer { stream: s }
    }
}

/// An upstream that accepts connections and never answers.
pub fn silent_upstream() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

/// An address nothing listens on.
pub fn dead_address() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// An HTTP server that answers every request with `status` and `body`, and records requests
/// (request line, headers and body) for the test to read.
pub struct FakeHttp {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeHttp {
    pub fn start(status: u16, body: &'static str) -> FakeHttp {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { break };
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || serve_one(conn, status, body, &seen));
            }
        });
        FakeHttp { addr, requests }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn serve_one(conn: TcpStream, status: u16, body: &str, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut writer = conn;
    loop {
        let mut head = String::new();
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut b = vec![0u8; content_length];
        if reader.read_exact(&mut b).is_err() {
            return;
        }
        head.push_str("\r\n");
        head.push_str(&String::from_utf8_lossy(&b));
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(head);
        let answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
