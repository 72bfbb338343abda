//! Shared harness for nsqd integration tests: starts the real binary on ephemeral loopback ports
//! with a temporary data directory, and speaks raw TCP/HTTP to it.
//!
//! The V2 side stays hand-written rather than using `nsq-client` on purpose: these tests check
//! nsqd's exact bytes, and a client shared with other crates could carry the same mistake as the
//! server and hide it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

pub const FRAME_RESPONSE: i32 = 0;
pub const FRAME_ERROR: i32 = 1;
pub const FRAME_MESSAGE: i32 = 2;

pub struct Nsqd {
    child: Option<Child>,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    pub data_path: PathBuf,
    _dir: Option<tempfile::TempDir>,
    log: ProcessLog,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nsqd")
}

impl Nsqd {
    /// Starts nsqd on 127.0.0.1:0 (TCP and HTTP) in a fresh temporary data directory.
    pub fn start(extra: &[&str]) -> Nsqd {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let mut n = Nsqd::start_in(&path, extra);
        n._dir = Some(dir);
        n
    }

    /// Starts nsqd with an explicit data directory (kept after the process stops).
    pub fn start_in(data_path: &Path, extra: &[&str]) -> Nsqd {
        let mut args: Vec<String> = vec![
            "--tcp-address=127.0.0.1:0".into(),
            "--http-address=127.0.0.1:0".into(),
            format!("--data-path={}", data_path.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let (child, log) = spawn_logged(Path::new(bin()), &args, "nsqd", "NSQD_TEST_LOG");
        let mut n = Nsqd {
            child: Some(child),
            tcp: "0.0.0.0:0".parse().unwrap(),
            http: "0.0.0.0:0".parse().unwrap(),
            data_path: data_path.to_path_buf(),
            _dir: None,
            log,
        };
        n.tcp = n.log.listen_addr("TCP: listening on ");
        n.http = n.log.listen_addr("HTTP: listening on ");
        n
    }

    /// Waits until a stderr line contains `needle` and returns it; panics after [`WAIT`].
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.log.wait_for(needle)
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Opens a TCP connection and sends the V2 magic.
    pub fn connect(&self) -> Conn {
        let mut c = Conn::raw(self.tcp);
        c.send(b"  V2");
        c
    }

    pub fn http_get(&self, path: &str) -> HttpResponse {
        http_request(self.http, "GET", path, &[])
    }

    pub fn http_post(&self, path: &str, body: &[u8]) -> HttpResponse {
        http_request(self.http, "POST", path, body)
    }

    pub fn http(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        http_request(self.http, method, path, body)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) to the process.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// SIGTERM, then waits for exit.
    pub fn stop(mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit()
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("nsqd did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Nsqd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A raw protocol connection with helpers for frames.
pub struct Conn {
    pub stream: TcpStream,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: i32,
    pub data: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub timestamp: i64,
    pub attempts: u16,
    pub id: [u8; 16],
    pub body: Vec<u8>,
}

impl Msg {
    pub fn id_str(&self) -> &str {
        std::str::from_utf8(&self.id).unwrap()
    }
}

impl Conn {
    pub fn raw(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { stream }
    }

    pub fn send(&mut self, b: &[u8]) {
        self.stream.write_all(b).expect("write");
    }

    /// Sends `line` + `\n`.
    pub fn cmd(&mut self, line: &str) {
        let mut v = line.as_bytes().to_vec();
        v.push(b'\n');
        self.send(&v);
    }

    /// Sends `line\n` + size-prefixed body.
    pub fn cmd_body(&mut self, line: &str, body: &[u8]) {
        let mut v = line.as_bytes().to_vec();
        v.push(b'\n');
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        self.send(&v);
    }

    pub fn publish(&mut self, topic: &str, body: &[u8]) {
        self.cmd_body(&format!("PUB {topic}"), body);
        self.expect_ok();
    }

    pub fn mpub_body(bodies: &[&[u8]]) -> Vec<u8> {
        let mut inner = (bodies.len() as u32).to_be_bytes().to_vec();
        for b in bodies {
            inner.extend_from_slice(&(b.len() as u32).to_be_bytes());
            inner.extend_from_slice(b);
        }
        inner
    }

    pub fn identify(&mut self, json: &str) -> Frame {
        self.cmd_body("IDENTIFY", json.as_bytes());
        self.read_frame()
    }

    pub fn subscribe(&mut self, topic: &str, channel: &str) {
        self.cmd(&format!("SUB {topic} {channel}"));
        self.expect_ok();
    }

    /// Reads one frame, skipping heartbeats is NOT done here.
    pub fn read_frame(&mut self) -> Frame {
        let mut hdr = [0u8; 8];
        self.stream.read_exact(&mut hdr).expect("read frame header");
        let size = i32::from_be_bytes(hdr[0..4].try_into().unwrap());
        let kind = i32::from_be_bytes(hdr[4..8].try_into().unwrap());
        let mut data = vec![0u8; (size - 4) as usize];
        self.stream.read_exact(&mut data).expect("read frame body");
        Frame { kind, data }
    }

    /// Reads frames until one that is not `_heartbeat_`.
    pub fn read_non_heartbeat(&mut self) -> Frame {
        loop {
            let f = self.read_frame();
            if !(f.kind == FRAME_RESPONSE && f.data == b"_heartbeat_") {
                return f;
            }
        }
    }

    pub fn expect_ok(&mut self) {
        let f = self.read_non_heartbeat();
        assert_eq!((f.kind, f.text()), (FRAME_RESPONSE, "OK".to_string()));
    }

    pub fn expect_error(&mut self, text: &str) {
        let f = self.read_non_heartbeat();
        assert_eq!((f.kind, f.text()), (FRAME_ERROR, text.to_string()));
    }

    /// Expects an error frame with `text` and then the server closing the connection.
    pub fn expect_fatal(&mut self, text: &str) {
        self.expect_error(text);
        self.expect_closed();
    }

    pub fn read_message(&mut self) -> Msg {
        let f = self.read_non_heartbeat();
        assert_eq!(
            f.kind,
            FRAME_MESSAGE,
            "expected message, got {:?}",
            f.text()
        );
        parse_message(&f.data)
    }

    /// Asserts the server closes the connection (EOF or reset) within [`WAIT`].
    pub fn expect_closed(&mut self) {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => continue, // heartbeats may still be in flight
                Err(e)
                    if e.kind() == std::io::ErrorKind::ConnectionReset
                        || e.kind() == std::io::ErrorKind::ConnectionAborted =>
                {
                    return
                }
                Err(e) => panic!("connection not closed: {e}"),
            }
        }
    }

    /// Asserts nothing but heartbeats arrives for `d` (used sparingly: it waits the full time).
    pub fn expect_silence(&mut self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let mut hdr = [0u8; 1];
        let r = self.stream.peek(&mut hdr);
        self.stream.set_read_timeout(Some(WAIT)).unwrap();
        match r {
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            other => {
                let f = self.read_frame();
                if !(f.kind == FRAME_RESPONSE && f.data == b"_heartbeat_") {
                    panic!(
                        "expected silence, got {other:?} {:?} {:?}",
                        f.kind,
                        f.text()
                    );
                }
            }
        }
    }
}

pub fn parse_message(d: &[u8]) -> Msg {
    Msg {
        timestamp: i64::from_be_bytes(d[0..8].try_into().unwrap()),
        attempts: u16::from_be_bytes(d[8..10].try_into().unwrap()),
        id: d[10..26].try_into().unwrap(),
        body: d[26..].to_vec(),
    }
}

// Not every test file uses every helper.
#[allow(unused_imports)]
pub use nsq_testkit::{
    eventually, now_ns, parse_http_response, spawn_logged, HttpResponse, ProcessLog, WAIT,
};

/// A minimal HTTP/1.1 client (one request per connection) so tests see exact status, headers and body.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> HttpResponse {
    nsq_testkit::http_request_with(addr, method, path, "", body)
}

// ---------------------------------------------------------------------------------------------
// Additional helpers for byte-level TCP protocol tests.
// ---------------------------------------------------------------------------------------------

/// Encodes a frame exactly as the server must put it on the wire.
pub fn encode_frame(kind: i32, data: &[u8]) -> Vec<u8> {
    let mut v = ((data.len() + 4) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// Builds `line\n` + size-prefixed body as raw bytes (for pipelining several commands in one write).
pub fn cmd_bytes(line: &str, body: Option<&[u8]>) -> Vec<u8> {
    let mut v = line.as_bytes().to_vec();
    v.push(b'\n');
    if let Some(b) = body {
        v.extend_from_slice(&(b.len() as u32).to_be_bytes());
        v.extend_from_slice(b);
    }
    v
}

/// True if `s` is 16 lowercase hex ASCII characters.
pub fn is_lower_hex16(s: &[u8]) -> bool {
    s.len() == 16 && s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

impl Conn {
    /// Connects without sending anything.
    pub fn connect_raw(n: &Nsqd) -> Conn {
        Conn::raw(n.tcp)
    }

    /// Reads exactly `n` raw bytes.
    pub fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.stream.read_exact(&mut v).expect("read raw bytes");
        v
    }

    /// Half-closes the connection (no more data from the client).
    pub fn shutdown_write(&mut self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown write");
    }

    /// Reads every byte until the server closes (EOF or reset); panics if it stays open past [`WAIT`].
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::ConnectionReset
                        || e.kind() == std::io::ErrorKind::ConnectionAborted =>
                {
                    return out
                }
                Err(e) => panic!("connection not closed by server: {e}; read so far {out:?}"),
            }
        }
    }

    /// Asserts the server closes the connection and that everything it sent before closing was
    /// heartbeats only (in particular: no error frame). Returns the number of heartbeats seen.
    pub fn expect_closed_without_error(&mut self) -> usize {
        let raw = self.read_to_close();
        let frames = split_frames(&raw);
        let mut hb = 0;
        for f in &frames {
            if f.kind == FRAME_RESPONSE && f.data == b"_heartbeat_" {
                hb += 1;
            } else {
                panic!(
                    "expected close without error frame, got frame {} {:?}",
                    f.kind,
                    f.text()
                );
            }
        }
        hb
    }

    /// Reads one frame, or `None` if nothing arrives within `d`.
    pub fn try_read_frame(&mut self, d: Duration) -> Option<Frame> {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let mut b = [0u8; 1];
        let r = self.stream.peek(&mut b);
        self.stream.set_read_timeout(Some(WAIT)).unwrap();
        match r {
            Ok(n) if n > 0 => Some(self.read_frame()),
            Ok(_) => panic!("connection closed unexpectedly"),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                None
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Asserts no frame at all (not even a heartbeat) arrives within `d`.
    pub fn expect_no_frame(&mut self, d: Duration) {
        if let Some(f) = self.try_read_frame(d) {
            panic!("expected no frame, got {} {:?}", f.kind, f.text());
        }
    }

    /// Reads frames, collecting message frames aside, until a non-message, non-heartbeat frame
    /// arrives; returns it.
    pub fn read_response_collecting(&mut self, msgs: &mut Vec<Msg>) -> Frame {
        loop {
            let f = self.read_non_heartbeat();
            if f.kind == FRAME_MESSAGE {
                msgs.push(parse_message(&f.data));
            } else {
                return f;
            }
        }
    }

    /// A liveness probe: publishes to `topic` and expects the next non-heartbeat frame to be `OK`.
    pub fn probe(&mut self, topic: &str) {
        self.cmd_body(&format!("PUB {topic}"), b"probe");
        self.expect_ok();
    }

    pub fn fin(&mut self, id: &str) {
        self.cmd(&format!("FIN {id}"));
    }

    pub fn rdy(&mut self, n: u64) {
        self.cmd(&format!("RDY {n}"));
    }
}

/// Splits raw bytes into complete frames (a trailing partial frame is ignored).
pub fn split_frames(raw: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut i = 0;
    while raw.len() >= i + 8 {
        let size = i32::from_be_bytes(raw[i..i + 4].try_into().unwrap()) as usize;
        let kind = i32::from_be_bytes(raw[i + 4..i + 8].try_into().unwrap());
        if size < 4 || raw.len() < i + 4 + size {
            break;
        }
        out.push(Frame {
            kind,
            data: raw[i + 8..i + 4 + size].to_vec(),
        });
        i += 4 + size;
    }
    out
}

impl Nsqd {
    /// `GET /stats?format=json` parsed.
    pub fn stats_json(&self) -> serde_json::Value {
        self.http_get("/stats?format=json").json()
    }

    /// The stats object of one channel, if the topic and channel exist.
    pub fn channel_stats(&self, topic: &str, channel: &str) -> Option<serde_json::Value> {
        let s = self.stats_json();
        let topics = s["topics"].as_array()?.clone();
        let t = topics.into_iter().find(|t| t["topic_name"] == topic)?;
        let chans = t["channels"].as_array()?.clone();
        chans.into_iter().find(|c| c["channel_name"] == channel)
    }

    /// The stats object of one topic, if it exists.
    pub fn topic_stats(&self, topic: &str) -> Option<serde_json::Value> {
        let s = self.stats_json();
        let topics = s["topics"].as_array()?.clone();
        topics.into_iter().find(|t| t["topic_name"] == topic)
    }
}

/// Extra HTTP helpers for the HTTP API tests: raw requests with custom headers or chunked bodies,
/// V1 response assertions and `/stats` lookups.
pub mod httpx {
    use super::{parse_http_response, HttpResponse, Nsqd, WAIT};
    use serde_json::Value;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};

    pub const V1_HEADER: &str = "nsq; version=1.0";
    pub const JSON_CT: &str = "application/json; charset=utf-8";

    /// Writes `raw` as-is and reads the response until the server closes. A reset after some
    /// response bytes arrived is treated as the end (the server may close with an unread body).
    pub fn raw(addr: SocketAddr, raw: &[u8]) -> HttpResponse {
        let mut s = TcpStream::connect(addr).expect("http connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        // The server may answer (and close) before reading everything we send.
        let _ = s.write_all(raw);
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e)
                    if (e.kind() == std::io::ErrorKind::ConnectionReset
                        || e.kind() == std::io::ErrorKind::ConnectionAborted)
                        && !out.is_empty() =>
                {
                    break
                }
                Err(e) => panic!("http read: {e}"),
            }
        }
        parse_http_response(&out)
    }

    /// A request with extra headers. `Content-Length` is added unless a `Content-Length` or
    /// `Transfer-Encoding` header is given explicitly (then `body` is sent verbatim).
    pub fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        let explicit = headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        });
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !explicit {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        raw(addr, &bytes)
    }

    /// Sends `body` with `Transfer-Encoding: chunked` (no Content-Length), in one chunk.
    pub fn chunked(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        let mut b = Vec::new();
        if !body.is_empty() {
            b.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            b.extend_from_slice(body);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"0\r\n\r\n");
        request(addr, method, path, &[("Transfer-Encoding", "chunked")], &b)
    }

    pub fn get(n: &Nsqd, path: &str) -> HttpResponse {
        request(n.http, "GET", path, &[], b"")
    }

    pub fn post(n: &Nsqd, path: &str, body: &[u8]) -> HttpResponse {
        request(n.http, "POST", path, &[], body)
    }

    pub fn method(n: &Nsqd, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        request(n.http, method, path, &[], body)
    }

    /// Asserts a V1 error response: status, X-NSQ header, JSON content type, exact body.
    #[track_caller]
    pub fn assert_err(r: &HttpResponse, status: u16, message: &str) {
        assert_eq!(
            (r.status, r.text()),
            (status, format!("{{\"message\":\"{message}\"}}")),
            "headers: {:?}",
            r.headers
        );
        assert_eq!(
            r.header("X-NSQ-Content-Type"),
            Some(V1_HEADER),
            "X-NSQ-Content-Type on error"
        );
        assert_eq!(
            r.header("Content-Type"),
            Some(JSON_CT),
            "Content-Type on error"
        );
    }

    /// Asserts a V1 200 response with an empty body.
    #[track_caller]
    pub fn assert_ok_empty(r: &HttpResponse) {
        assert_eq!(
            (r.status, r.text()),
            (200, String::new()),
            "headers: {:?}",
            r.headers
        );
        assert_eq!(r.header("X-NSQ-Content-Type"), Some(V1_HEADER));
    }

    /// Asserts a V1 200 response whose body is exactly `text`.
    #[track_caller]
    pub fn assert_ok_text(r: &HttpResponse, text: &str) {
        assert_eq!(
            (r.status, r.text()),
            (200, text.to_string()),
            "headers: {:?}",
            r.headers
        );
        assert_eq!(r.header("X-NSQ-Content-Type"), Some(V1_HEADER));
    }

    /// Asserts a V1 200 JSON response and returns the parsed body.
    #[track_caller]
    pub fn assert_ok_json(r: &HttpResponse) -> Value {
        assert_eq!(r.status, 200, "body: {:?}", r.text());
        assert_eq!(r.header("X-NSQ-Content-Type"), Some(V1_HEADER));
        assert_eq!(r.header("Content-Type"), Some(JSON_CT));
        r.json()
    }

    /// `GET /stats?format=json&<query>`, asserting a V1 JSON answer.
    #[track_caller]
    pub fn stats(n: &Nsqd, query: &str) -> Value {
        let path = if query.is_empty() {
            "/stats?format=json".to_string()
        } else {
            format!("/stats?format=json&{query}")
        };
        assert_ok_json(&get(n, &path))
    }

    /// The TopicStats object of `topic`, if listed.
    pub fn topic(n: &Nsqd, topic: &str) -> Option<Value> {
        let s = stats(n, &format!("topic={}", enc(topic)));
        s["topics"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["topic_name"] == topic).cloned())
    }

    /// The ChannelStats object of `topic`/`channel`, if listed.
    pub fn channel(n: &Nsqd, topic: &str, channel: &str) -> Option<Value> {
        let t = self::topic(n, topic)?;
        t["channels"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["channel_name"] == channel).cloned())
    }

    /// Names of all topics in `/stats`.
    pub fn topic_names(n: &Nsqd) -> Vec<String> {
        stats(n, "")["topics"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| t["topic_name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Percent-encodes the characters that matter in our names (`#`).
    pub fn enc(s: &str) -> String {
        s.replace('#', "%23")
    }

    /// Integer field accessor that fails with context.
    #[track_caller]
    pub fn int(v: &Value, key: &str) -> i64 {
        v.get(key)
            .and_then(|x| x.as_i64())
            .unwrap_or_else(|| panic!("{key} is not an integer in {v}"))
    }
}

// ---------------------------------------------------------------------------------------------
// nsqlookupd and small clusters, for discovery tests.
// ---------------------------------------------------------------------------------------------

/// The `nsqlookupd` binary: `$NSQLOOKUPD_BIN`, else the one built next to `nsqd`
/// (`cargo build --bins` builds both). Panics with a clear message if it is missing.
pub fn lookupd_bin() -> PathBuf {
    let path = match std::env::var_os("NSQLOOKUPD_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(bin()).with_file_name("nsqlookupd"),
    };
    if !path.is_file() {
        panic!(
            "nsqlookupd binary not found at {} (build every binary first with \
             `cargo build --bins`, or set NSQLOOKUPD_BIN)",
            path.display()
        );
    }
    path
}

/// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`) to a process id.
pub fn send_signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success(), "kill -{sig} {pid} failed");
}

/// Polls `f` every 20 ms until it returns `Ok`, failing after `timeout` with `what` and the last
/// `Err` (which should describe what was observed instead).
#[track_caller]
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => {
                if Instant::now() > deadline {
                    panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running nsqlookupd on loopback ephemeral ports (unless a TCP address is forced, for restarts).
pub struct Lookupd {
    child: Option<Child>,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    extra: Vec<String>,
    log: ProcessLog,
}

impl Lookupd {
    /// Starts nsqlookupd on 127.0.0.1:0 (TCP and HTTP) with `--broadcast-address=127.0.0.1`.
    pub fn start(extra: &[&str]) -> Lookupd {
        Lookupd::start_on("127.0.0.1:0", extra)
    }

    /// Starts nsqlookupd with an explicit TCP address (HTTP stays ephemeral).
    pub fn start_on(tcp_address: &str, extra: &[&str]) -> Lookupd {
        let mut args: Vec<String> = vec![
            format!("--tcp-address={tcp_address}"),
            "--http-address=127.0.0.1:0".into(),
            "--broadcast-address=127.0.0.1".into(),
        ];
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().cloned());
        let (child, log) = spawn_logged(&lookupd_bin(), &args, "nsqlookupd", "NSQD_TEST_LOG");
        let tcp = log.listen_addr("TCP: listening on ");
        let http = log.listen_addr("HTTP: listening on ");
        Lookupd {
            child: Some(child),
            tcp,
            http,
            extra,
            log,
        }
    }

    /// SIGKILLs this lookupd and starts a fresh one on the same TCP port with the same flags.
    pub fn restart_killed(mut self) -> Lookupd {
        self.signal("KILL");
        self.wait_exit();
        let extra: Vec<&str> = self.extra.iter().map(|s| s.as_str()).collect();
        Lookupd::start_on(&self.tcp.to_string(), &extra)
    }

    /// The value nsqd needs in `--lookupd-tcp-address`.
    pub fn tcp_address(&self) -> String {
        self.tcp.to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, sig: &str) {
        send_signal(self.pid(), sig);
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("nsqlookupd did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http_request(self.http, "GET", path, &[])
    }

    pub fn post(&self, path: &str) -> HttpResponse {
        http_request(self.http, "POST", path, &[])
    }

    /// GET `path`, asserting a 200 JSON answer, parsed.
    #[track_caller]
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// `/lookup?topic=T`: `None` on 404 (topic unknown), else the parsed body.
    #[track_caller]
    pub fn lookup(&self, topic: &str) -> Option<serde_json::Value> {
        let r = self.get(&format!("/lookup?topic={}", topic.replace('#', "%23")));
        match r.status {
            404 => None,
            200 => Some(r.json()),
            s => panic!("GET /lookup?topic={topic}: unexpected {s} {}", r.text()),
        }
    }

    /// `(tcp_port, http_port)` of every producer `/lookup?topic=T` lists (empty if 404).
    #[track_caller]
    pub fn lookup_ports(&self, topic: &str) -> std::collections::BTreeSet<(u16, u16)> {
        match self.lookup(topic) {
            None => Default::default(),
            Some(v) => producer_ports(&v["producers"]),
        }
    }

    /// Channel names `/lookup?topic=T` lists (empty if 404).
    #[track_caller]
    pub fn lookup_channels(&self, topic: &str) -> std::collections::BTreeSet<String> {
        match self.lookup(topic) {
            None => Default::default(),
            Some(v) => string_set(&v["channels"]),
        }
    }

    #[track_caller]
    pub fn topics(&self) -> std::collections::BTreeSet<String> {
        string_set(&self.get_json("/topics")["topics"])
    }

    #[track_caller]
    pub fn channels(&self, topic: &str) -> std::collections::BTreeSet<String> {
        string_set(
            &self.get_json(&format!("/channels?topic={}", topic.replace('#', "%23")))["channels"],
        )
    }

    /// The `/nodes` producers array.
    #[track_caller]
    pub fn nodes(&self) -> Vec<serde_json::Value> {
        self.get_json("/nodes")["producers"]
            .as_array()
            .unwrap_or_else(|| panic!("/nodes producers is not an array"))
            .clone()
    }

    /// The `/nodes` entry of `n`, if listed.
    #[track_caller]
    pub fn node_of(&self, n: &Nsqd) -> Option<serde_json::Value> {
        self.nodes().into_iter().find(|p| n.is_producer(p))
    }

    /// `(tcp_port, http_port)` of every `/nodes` entry.
    #[track_caller]
    pub fn node_ports(&self) -> std::collections::BTreeSet<(u16, u16)> {
        producer_ports(&serde_json::Value::Array(self.nodes()))
    }

    /// `/debug` parsed.
    #[track_caller]
    pub fn debug(&self) -> serde_json::Value {
        self.get_json("/debug")
    }

    /// `(tcp_port, http_port)` of every entry of `/debug` under `key` (e.g. `"topic:t:"`).
    #[track_caller]
    pub fn debug_ports(&self, key: &str) -> std::collections::BTreeSet<(u16, u16)> {
        match self.debug().get(key) {
            None => Default::default(),
            Some(v) => producer_ports(v),
        }
    }
}

impl Drop for Lookupd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `(tcp_port, http_port)` of each element of a JSON array of PeerInfo-like objects.
#[track_caller]
pub fn producer_ports(v: &serde_json::Value) -> std::collections::BTreeSet<(u16, u16)> {
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("expected an array of producers, got {v}"));
    arr.iter()
        .map(|p| {
            let port = |k: &str| {
                p[k].as_u64()
                    .and_then(|x| u16::try_from(x).ok())
                    .unwrap_or_else(|| panic!("{k} is not a port number in {p}"))
            };
            (port("tcp_port"), port("http_port"))
        })
        .collect()
}

/// The strings of a JSON array of strings, as a set.
#[track_caller]
pub fn string_set(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of strings, got {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("expected a string, got {s} in {v}"))
                .to_string()
        })
        .collect()
}

impl Nsqd {
    /// Starts nsqd registered with `lookupds` (`--lookupd-tcp-address` each) and announcing
    /// `--broadcast-address=127.0.0.1`.
    pub fn start_with_lookupds(lookupds: &[&Lookupd], extra: &[&str]) -> Nsqd {
        let mut args: Vec<String> = vec!["--broadcast-address=127.0.0.1".into()];
        for l in lookupds {
            args.push(format!("--lookupd-tcp-address={}", l.tcp_address()));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        Nsqd::start(&refs)
    }

    /// `(tcp_port, http_port)` as lookupd reports them for this node.
    pub fn ports(&self) -> (u16, u16) {
        (self.tcp.port(), self.http.port())
    }

    /// `<broadcast_address>:<http_port>`: the `node` parameter of lookupd's `/topic/tombstone`.
    pub fn lookupd_node_id(&self) -> String {
        format!("127.0.0.1:{}", self.http.port())
    }

    /// True if a lookupd PeerInfo/Node object describes this nsqd.
    pub fn is_producer(&self, p: &serde_json::Value) -> bool {
        p["broadcast_address"] == "127.0.0.1"
            && p["tcp_port"].as_u64() == Some(self.tcp.port() as u64)
            && p["http_port"].as_u64() == Some(self.http.port() as u64)
    }
}
