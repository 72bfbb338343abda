//! Shared harness for nsqlookupd integration tests: starts the real binary on ephemeral loopback
//! ports, speaks raw protocol V1 and HTTP/1.1 to it, and waits on its log lines.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The broadcast address every test daemon is started with.
pub const BCAST: &str = "lookupd-test";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nsqlookupd")
}

pub struct Lookupd {
    child: Option<Child>,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    log: ProcessLog,
}

impl Lookupd {
    /// Starts nsqlookupd on 127.0.0.1:0 (TCP and HTTP) with `--broadcast-address=lookupd-test`.
    pub fn start(extra: &[&str]) -> Lookupd {
        let mut args: Vec<String> = vec![
            "--tcp-address=127.0.0.1:0".into(),
            "--http-address=127.0.0.1:0".into(),
            format!("--broadcast-address={BCAST}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Lookupd::start_with(&args)
    }

    /// Starts nsqlookupd with exactly `args` (which must make it listen on known-free ports).
    pub fn start_with(args: &[String]) -> Lookupd {
        let (child, log) = spawn_logged(
            std::path::Path::new(bin()),
            args,
            "nsqlookupd",
            "NSQLOOKUPD_TEST_LOG",
        );
        let mut l = Lookupd {
            child: Some(child),
            tcp: "0.0.0.0:0".parse().unwrap(),
            http: "0.0.0.0:0".parse().unwrap(),
            log,
        };
        l.tcp = l.log.listen_addr("TCP: listening on ");
        l.http = l.log.listen_addr("HTTP: listening on ");
        l
    }

    /// Waits until a stderr line contains `needle` and returns it; panics after [`WAIT`].
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.log.wait_for(needle)
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Opens a TCP connection and sends the V1 magic.
    pub fn connect(&self) -> V1 {
        let mut c = V1::raw(self.tcp);
        c.send(b"  V1");
        c
    }

    /// Connects, IDENTIFYs as an nsqd with this broadcast address and HTTP port, and checks the
    /// reply.
    pub fn nsqd(&self, bcast: &str, http_port: u16) -> V1 {
        let mut c = self.connect();
        let body = identify_json(bcast, http_port);
        let reply = c.identify(body.as_bytes());
        let v: serde_json::Value = serde_json::from_slice(&reply)
            .unwrap_or_else(|e| panic!("IDENTIFY reply not JSON ({e}): {reply:?}"));
        assert_eq!(v["tcp_port"], self.tcp.port());
        c
    }

    /// Closes `c` and waits until the daemon has removed that peer's registrations.
    pub fn disconnect(&self, c: V1) {
        let addr = c.local();
        drop(c);
        self.wait_for_log(&format!("DB: client({addr}) UNREGISTER category:client "));
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http_request(self.http, "GET", path)
    }

    pub fn post(&self, path: &str) -> HttpResponse {
        http_request(self.http, "POST", path)
    }

    pub fn request(&self, method: &str, path: &str) -> HttpResponse {
        http_request(self.http, method, path)
    }

    /// Producer `remote_address`es of `/lookup?topic=`, or `None` on 404.
    pub fn lookup_producers(&self, topic: &str) -> Option<Vec<String>> {
        let r = self.get(&format!("/lookup?topic={}", escape(topic)));
        if r.status == 404 {
            return None;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        let mut out: Vec<String> = r.json()["producers"]
            .as_array()
            .expect("producers array")
            .iter()
            .map(|p| p["remote_address"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        Some(out)
    }

    /// `channels` of `/lookup?topic=`, sorted.
    pub fn lookup_channels(&self, topic: &str) -> Vec<String> {
        let r = self.get(&format!("/lookup?topic={}", escape(topic)));
        assert_eq!(r.status, 200, "{}", r.text());
        sorted_strings(&r.json()["channels"])
    }

    pub fn topics(&self) -> Vec<String> {
        sorted_strings(&self.get("/topics").json()["topics"])
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(st.success());
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let st = wait_child(child);
        self.child = None;
        st
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

pub fn wait_child(child: &mut Child) -> ExitStatus {
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

/// Runs the binary to completion with `args`; returns (exit code, stdout, stderr).
pub fn run_to_exit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nsqlookupd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Escapes `#` (ephemeral names) for a query string.
pub fn escape(name: &str) -> String {
    name.replace('#', "%23")
}

/// The IDENTIFY body nsqd sends (keys alphabetical, as Go marshals its map).
pub fn identify_json(bcast: &str, http_port: u16) -> String {
    format!(
        r#"{{"broadcast_address":"{bcast}","hostname":"host-{bcast}","http_port":{http_port},"tcp_port":4150,"topology_region":"region-1","topology_zone":"zone-a","version":"1.3.0"}}"#
    )
}

pub fn sorted_strings(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect();
    out.sort();
    out
}

/// A raw protocol V1 connection.
pub struct V1 {
    pub stream: TcpStream,
}

impl V1 {
    pub fn raw(addr: SocketAddr) -> V1 {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        V1 { stream }
    }

    /// This connection's address as the server sees it (the peer id and `remote_address`).
    pub fn local(&self) -> String {
        self.stream.local_addr().unwrap().to_string()
    }

    pub fn send(&mut self, b: &[u8]) {
        self.stream.write_all(b).expect("write");
    }

    /// Sends `line` + `\n`.
    pub fn cmd(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
    }

    /// Reads one `[int32 size][data]` response.
    pub fn read_response(&mut self) -> Vec<u8> {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .expect("read response size");
        let size = i32::from_be_bytes(size);
        assert!(size >= 0, "negative response size {size}");
        let mut data = vec![0u8; size as usize];
        self.stream
            .read_exact(&mut data)
            .expect("read response data");
        data
    }

    /// Sends a command line and returns its response.
    pub fn call(&mut self, line: &str) -> Vec<u8> {
        self.cmd(line);
        self.read_response()
    }

    pub fn expect_ok(&mut self, line: &str) {
        let r = self.call(line);
        assert_eq!(String::from_utf8_lossy(&r), "OK", "response to {line:?}");
    }

    /// Sends `IDENTIFY\n` + size + body and returns the response.
    pub fn identify(&mut self, body: &[u8]) -> Vec<u8> {
        let mut v = b"IDENTIFY\n".to_vec();
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        self.send(&v);
        self.read_response()
    }

    /// Expects the error response `text` and then the server closing the connection.
    pub fn expect_fatal(&mut self, text: &[u8]) {
        let r = self.read_response();
        assert_eq!(
            String::from_utf8_lossy(&r),
            String::from_utf8_lossy(text),
            "expected error"
        );
        self.expect_closed();
    }

    /// Asserts the server closes the connection (EOF or reset) within [`WAIT`], sending nothing.
    pub fn expect_closed(&mut self) {
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("expected close, got {:?}", &buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionReset
                    || e.kind() == std::io::ErrorKind::ConnectionAborted => {}
            Err(e) => panic!("connection not closed: {e}"),
        }
    }
}

// Not every test file uses every helper.
#[allow(unused_imports)]
pub use nsq_testkit::{eventually, now_ns, spawn_logged, HttpResponse, ProcessLog, WAIT};

/// A minimal HTTP/1.1 client (one request per connection), asking for NSQ's V1 responses, so
/// tests see exact status, headers and body.
pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    nsq_testkit::http_request_with(
        addr,
        method,
        path,
        "Accept: application/vnd.nsq; version=1.0\r\n",
        b"",
    )
}
