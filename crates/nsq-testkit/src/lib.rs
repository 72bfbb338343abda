//! What the daemons' integration tests share: a minimal HTTP/1.1 client that shows exactly what
//! a client sees (status, headers, body), child processes whose stderr lines tests wait on, and
//! polling for conditions with no event to wait on.
//!
//! Test code: it panics on anything unexpected, which is how a test fails.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// Asserts a V1 error response: status, headers and `{"message":...}` exactly.
    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(
            (self.status, self.text()),
            (status, format!(r#"{{"message":"{message}"}}"#))
        );
        assert_eq!(self.header("X-NSQ-Content-Type"), Some("nsq; version=1.0"));
        assert_eq!(
            self.header("Content-Type"),
            Some("application/json; charset=utf-8")
        );
    }

    /// Asserts a V1 success with an empty body.
    pub fn assert_empty_ok(&self) {
        assert_eq!((self.status, self.text()), (200, String::new()));
        assert_eq!(self.header("X-NSQ-Content-Type"), Some("nsq; version=1.0"));
    }

    /// Asserts a V1 JSON success and returns the raw body as text.
    pub fn json_ok(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.text());
        assert_eq!(self.header("X-NSQ-Content-Type"), Some("nsq; version=1.0"));
        assert_eq!(
            self.header("Content-Type"),
            Some("application/json; charset=utf-8")
        );
        self.text()
    }
}

/// One request on its own connection (`Connection: close`), with `extra_headers` (each line
/// ending in `\r\n`) after `Host`, and the whole response read to its end.
pub fn http_request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &str,
    body: &[u8],
) -> HttpResponse {
    let mut s = TcpStream::connect(addr).expect("http connect");
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra_headers}Connection: close\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).expect("http write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("http read");
    parse_http_response(&raw)
}

/// Splits a raw response into status, headers and body (a chunked body is reassembled).
pub fn parse_http_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let e = rest[i..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size line")
                + i;
            let size = std::str::from_utf8(&rest[i..e]).expect("chunk size");
            let n = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[e + 2..e + 2 + n]);
            i = e + 2 + n + 2;
        }
        rest = out;
    }
    HttpResponse {
        status,
        headers,
        body: rest,
    }
}

/// Polls `f` until it returns `Some`, failing the test after [`WAIT`]. For conditions that have
/// no event to wait on (for example a counter in `/stats`).
pub fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("condition not reached in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Now, in Unix nanoseconds (message timestamps' unit).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The stderr lines of a child process, collected by a thread, for tests to wait on.
#[derive(Clone, Default)]
pub struct ProcessLog {
    name: &'static str,
    state: std::sync::Arc<(std::sync::Mutex<LogState>, std::sync::Condvar)>,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// The process closed its stderr (it exited).
    closed: bool,
}

/// Spawns `program` with stdin and stdout closed and stderr captured line by line into a
/// [`ProcessLog`]. When the environment variable `echo_env` is set, each line is also printed,
/// prefixed with `name`, for debugging a test.
pub fn spawn_logged(
    program: &std::path::Path,
    args: &[String],
    name: &'static str,
    echo_env: &'static str,
) -> (std::process::Child, ProcessLog) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name} ({}): {e}", program.display()));
    let stderr = child.stderr.take().expect("stderr");
    let log = ProcessLog::collect(name, stderr, echo_env);
    (child, log)
}

impl ProcessLog {
    /// Collects the lines of `reader` (a child's stderr, say) on a thread. When the environment
    /// variable `echo_env` is set, each line is also printed, prefixed with `name`.
    pub fn collect(
        name: &'static str,
        reader: impl std::io::Read + Send + 'static,
        echo_env: &'static str,
    ) -> ProcessLog {
        use std::io::BufRead;
        let log = ProcessLog {
            name,
            state: Default::default(),
        };
        let state = log.state.clone();
        std::thread::spawn(move || {
            let echo = std::env::var_os(echo_env).is_some();
            let (m, c) = &*state;
            for line in std::io::BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("{name}: {line}");
                }
                m.lock().unwrap_or_else(|e| e.into_inner()).lines.push(line);
                c.notify_all();
            }
            m.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
            c.notify_all();
        });
        log
    }

    /// Waits until a line contains `needle` and returns it; panics (with the log so far) if the
    /// process exits first or after [`WAIT`].
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_all(&[needle])
    }

    /// Waits until one line contains every one of `needles`.
    pub fn wait_for_all(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        let (m, c) = &*self.state;
        let mut st = m.lock().unwrap_or_else(|e| e.into_inner());
        let needle = needles.join("\" and \"");
        loop {
            if let Some(l) = st
                .lines
                .iter()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return l.clone();
            }
            if st.closed {
                panic!(
                    "{} exited before logging {needle:?}; log:\n{}",
                    self.name,
                    st.lines.join("\n")
                );
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "timed out waiting for {} to log {needle:?}; log:\n{}",
                    self.name,
                    st.lines.join("\n")
                );
            }
            st = c
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The address in the first line containing `marker` (`TCP: listening on `, ...).
    pub fn listen_addr(&self, marker: &str) -> SocketAddr {
        let line = self.wait_for(marker);
        let (_, addr) = line.split_once(marker).expect("marker in line");
        addr.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: bad listen address in {line:?}: {e}", self.name))
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.state
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines
            .clone()
    }
}

/// Runs `promtool check metrics` on a `/metrics` page and fails the test with promtool's
/// complaints unless it passes. promtool comes from Debian's `prometheus` package, which
/// `scripts/test.sh` installs when missing; set `PROMTOOL` to use another binary.
pub fn promtool_check(page: &str) {
    use std::process::{Command, Stdio};
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string());
    let mut child = Command::new(&bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {bin} ({e}): install Debian's 'prometheus' package or set PROMTOOL")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- page ---\n{page}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}
