//! `nsq_to_http` against our nsqd and small recording HTTP servers: request shape, modes,
//! requeues on failure, max_attempts, sampling, status logs, bad flags and kill -9.
mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// One request as the server saw it. Header names are lower-cased.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

type Responder = dyn Fn(usize, &Request) -> u16 + Send + Sync;

/// A threaded HTTP/1.1 server that records every request and answers with the status its
/// responder picks (given the request's sequence number).
struct Recorder {
    addr: SocketAddr,
    state: Arc<(Mutex<Vec<Request>>, Condvar)>,
}

impl Recorder {
    fn start(responder: impl Fn(usize, &Request) -> u16 + Send + Sync + 'static) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Arc<(Mutex<Vec<Request>>, Condvar)> = Arc::default();
        let responder: Arc<Responder> = Arc::new(responder);
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let st = st.clone();
                let responder = responder.clone();
                std::thread::spawn(move || serve(stream, st, responder));
            }
        });
        Recorder { addr, state }
    }

    fn ok() -> Recorder {
        Recorder::start(|_, _| 200)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.state.0.lock().unwrap().clone()
    }

    /// Waits (on the server's own notifications) until `n` requests arrived.
    fn wait_for(&self, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let (m, c) = &*self.state;
        let mut reqs = m.lock().unwrap();
        while reqs.len() < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "only {} of {n} requests arrived",
                reqs.len()
            );
            reqs = c.wait_timeout(reqs, deadline - now).unwrap().0;
        }
        reqs.clone()
    }

    fn bodies(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect()
    }
}

fn serve(stream: TcpStream, state: Arc<(Mutex<Vec<Request>>, Condvar)>, responder: Arc<Responder>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req = Request {
            method,
            target,
            headers,
            body,
        };
        let status = {
            let (m, c) = &*state;
            let mut reqs = m.lock().unwrap();
            let status = responder(reqs.len(), &req);
            reqs.push(req);
            c.notify_all();
            status
        };
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A port with nothing listening.
fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/dead")
}

struct Tool {
    child: Child,
    log: ProcessLog,
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tool {
    fn start(nsqd: &Daemon, topic: &str, extra: &[String]) -> Tool {
        let mut args = vec![
            format!("--topic={topic}"),
            format!("--nsqd-tcp-address={}", nsqd.tcp),
            // Retry failures at once and back off briefly, so requeues show up quickly.
            "--consumer-opt=default_requeue_delay,0".to_string(),
            "--consumer-opt=backoff_multiplier,10ms".to_string(),
        ];
        args.extend(extra.iter().cloned());
        let (child, log) = spawn_util("nsq_to_http", &args);
        log.wait_for("connecting to nsqd");
        Tool { child, log }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let st = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(Instant::now() < deadline, "nsq_to_http did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn post_carries_body_and_headers_and_fins_after_success() {
    let nsqd = start_nsqd(None, &[]);
    let server = Recorder::ok();
    publish(&nsqd, "post", &[b"one", b"two", b" "]);
    let tool = Tool::start(
        &nsqd,
        "post",
        &[
            format!("--post={}", server.url("/in?x=1")),
            "--content-type=application/json".into(),
            "--header=x-custom: yes".into(),
        ],
    );
    let reqs = server.wait_for(3);
    wait_channel_settled(&nsqd, "post", "nsq_to_http", 0);
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/in?x=1");
        assert_eq!(r.headers["user-agent"], "nsq_to_http v1.3.0");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["x-custom"], "yes");
        assert_eq!(r.headers["host"], server.addr.to_string());
        assert_eq!(r.headers["content-length"], r.body.len().to_string());
    }
    let bodies: BTreeSet<String> = server.bodies().into_iter().collect();
    assert_eq!(bodies, s(&[" ", "one", "two"]).into_iter().collect());
    assert_eq!(tool.terminate(), Some(0));
}

#[test]
fn get_puts_the_escaped_body_in_the_url() {
    let nsqd = start_nsqd(None, &[]);
    let server = Recorder::ok();
    publish(&nsqd, "get", &[b"a b&c=d/\xc3\xa9"]);
    let tool = Tool::start(
        &nsqd,
        "get",
        &[format!("--get={}", server.url("/q?data=%s&k=v"))],
    );
    let reqs = server.wait_for(1);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].target, "/q?data=a+b%26c%3Dd%2F%C3%A9&k=v");
    assert!(!reqs[0].headers.contains_key("content-type"));
    assert!(reqs[0].body.is_empty());
    wait_channel_settled(&nsqd, "get", "nsq_to_http", 0);
    drop(tool);
}

#[test]
fn failures_requeue_until_the_endpoint_succeeds() {
    let nsqd = start_nsqd(None, &[]);
    // POST: anything outside 2xx fails; GET: anything but 200 fails.
    let post = Recorder::start(|i, _| if i < 2 { 500 } else { 201 });
    publish(&nsqd, "retry", &[b"payload"]);
    let tool = Tool::start(&nsqd, "retry", &[format!("--post={}", post.url("/"))]);
    post.wait_for(3);
    wait_channel_settled(&nsqd, "retry", "nsq_to_http", 0);
    assert_eq!(post.bodies(), ["payload"; 3]);
    let c = channel_stats(&nsqd, "retry", "nsq_to_http").unwrap();
    assert_eq!(c["requeue_count"], 2);
    tool.log.wait_for("got status code 500");
    drop(tool);

    let get = Recorder::start(|i, _| if i < 1 { 204 } else { 200 });
    publish(&nsqd, "retry_get", &[b"g"]);
    let tool = Tool::start(
        &nsqd,
        "retry_get",
        &[format!("--get={}", get.url("/?d=%s"))],
    );
    get.wait_for(2);
    wait_channel_settled(&nsqd, "retry_get", "nsq_to_http", 0);
    assert_eq!(
        channel_stats(&nsqd, "retry_get", "nsq_to_http").unwrap()["requeue_count"],
        1
    );
    drop(tool);
}

#[test]
fn max_attempts_gives_up_on_a_message() {
    let nsqd = start_nsqd(None, &[]);
    let server = Recorder::start(|_, _| 503);
    publish(&nsqd, "give_up", &[b"doomed"]);
    let tool = Tool::start(
        &nsqd,
        "give_up",
        &[
            format!("--post={}", server.url("/")),
            "--consumer-opt=max_attempts,2".into(),
        ],
    );
    wait_channel_settled(&nsqd, "give_up", "nsq_to_http", 0);
    // Settled with nothing in flight: the third delivery was finished without a request.
    assert_eq!(server.requests().len(), 2);
    drop(tool);
}

#[test]
fn round_robin_alternates_and_starts_at_the_second_address() {
    let nsqd = start_nsqd(None, &[]);
    let (a, b) = (Recorder::ok(), Recorder::ok());
    let tool = Tool::start(
        &nsqd,
        "rr",
        &[
            format!("--post={}", a.url("/")),
            format!("--post={}", b.url("/")),
            "--mode=round-robin".into(),
            "-n=1".into(),
            "--max-in-flight=1".into(),
        ],
    );
    publish(&nsqd, "rr", &[b"1", b"2", b"3", b"4"]);
    wait_channel_settled(&nsqd, "rr", "nsq_to_http", 0);
    assert_eq!(a.bodies(), ["2", "4"]);
    assert_eq!(b.bodies(), ["1", "3"]);
    drop(tool);
}

#[test]
fn hostpool_avoids_a_dead_endpoint() {
    let nsqd = start_nsqd(None, &[]);
    let live = Recorder::ok();
    let tool = Tool::start(
        &nsqd,
        "pool",
        &[
            format!("--post={}", dead_url()),
            format!("--post={}", live.url("/")),
            "-n=1".into(),
        ],
    );
    let bodies: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
    publish(&nsqd, "pool", &refs);
    live.wait_for(6);
    wait_channel_settled(&nsqd, "pool", "nsq_to_http", 0);
    // Only the first pick went to the dead host; its message was requeued and delivered later.
    assert_eq!(
        channel_stats(&nsqd, "pool", "nsq_to_http").unwrap()["requeue_count"],
        1
    );
    let got: BTreeSet<String> = live.bodies().into_iter().collect();
    assert_eq!(got, bodies.into_iter().collect());
    drop(tool);
}

#[test]
fn unknown_mode_sends_to_every_address() {
    let nsqd = start_nsqd(None, &[]);
    let (a, b) = (Recorder::ok(), Recorder::ok());
    publish(&nsqd, "all", &[b"x", b"y"]);
    let tool = Tool::start(
        &nsqd,
        "all",
        &[
            format!("--post={}", a.url("/a")),
            format!("--post={}", b.url("/b")),
            "--mode=broadcast".into(),
        ],
    );
    a.wait_for(2);
    b.wait_for(2);
    wait_channel_settled(&nsqd, "all", "nsq_to_http", 0);
    let mut got = a.bodies();
    got.sort();
    assert_eq!(got, ["x", "y"]);
    drop(tool);
}

#[test]
fn sample_zero_finishes_without_sending() {
    let nsqd = start_nsqd(None, &[]);
    let server = Recorder::ok();
    publish(&nsqd, "sample", &[b"a", b"b", b"c"]);
    let tool = Tool::start(
        &nsqd,
        "sample",
        &[format!("--post={}", server.url("/")), "--sample=0".into()],
    );
    wait_channel_settled(&nsqd, "sample", "nsq_to_http", 0);
    let c = channel_stats(&nsqd, "sample", "nsq_to_http").unwrap();
    assert_eq!(c["message_count"], 3);
    assert!(server.requests().is_empty());
    drop(tool);
}

#[test]
fn status_every_logs_timings() {
    let nsqd = start_nsqd(None, &[]);
    let (a, b) = (Recorder::ok(), Recorder::ok());
    let tool = Tool::start(
        &nsqd,
        "status",
        &[
            format!("--post={}", a.url("/")),
            format!("--post={}", b.url("/")),
            "--status-every=2".into(),
            "--mode=round-robin".into(),
        ],
    );
    tool.log.wait_for(
        "Warning: use more than 100 status values for accurate percentiles (configured with 2)",
    );
    publish(&nsqd, "status", &[b"1", b"2", b"3", b"4", b"5"]);
    let line = tool.log.wait_for("[aggregate]: finished 2 - 99th: ");
    assert!(
        line.contains("ms - 95th: ") && line.ends_with("ms"),
        "{line}"
    );
    drop(tool);
}

#[test]
fn bad_command_lines_exit_like_go() {
    let out = run_util("nsq_to_http", &[], b"");
    assert_eq!(out.status, Some(1));
    assert!(
        out.stderr
            .ends_with(" --topic and --channel are required\n"),
        "{}",
        out.stderr
    );

    let out = run_util("nsq_to_http", &s(&["--bogus"]), b"");
    assert_eq!(out.status, Some(2));
    assert!(out
        .stderr
        .starts_with("flag provided but not defined: -bogus\nUsage of "));
    assert!(out.stderr.contains(
        "  -http-client-request-timeout duration\n    \ttimeout for HTTP request (default 20s)\n"
    ));

    let out = run_util("nsq_to_http", &s(&["--consumer-opt=nope,1"]), b"");
    assert_eq!(out.status, Some(2));
    assert!(out
        .stderr
        .starts_with("invalid value \"nope,1\" for flag -consumer-opt: invalid option nope\n"));

    let out = run_util("nsq_to_http", &s(&["--version"]), b"");
    assert_eq!(out.status, Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "nsq_to_http v1.3.0\n");

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let out = run_util(
        "nsq_to_http",
        &[
            "--topic=t".into(),
            format!("--nsqd-tcp-address={addr}"),
            "--post=http://127.0.0.1:1/".into(),
        ],
        b"",
    );
    assert_eq!(out.status, Some(1));
    assert!(
        out.stderr
            .contains(&format!("dial tcp {addr}: connect: connection refused")),
        "{}",
        out.stderr
    );
}

#[test]
fn kill_9_mid_run_loses_nothing() {
    // A dead client's in-flight messages come back when their timeout passes.
    let nsqd = start_nsqd(None, &["--msg-timeout=1s"]);
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    // Slow enough that the kill lands while requests are in flight.
    let server = Recorder::start(move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
        200
    });
    let total = 300;
    let bodies: Vec<String> = (0..total).map(|i| format!("msg-{i}")).collect();
    for chunk in bodies.chunks(100) {
        let joined = chunk.join("\n");
        let r = post(nsqd.http, "/mpub?topic=kill", joined.as_bytes());
        assert_eq!(r.status, 200);
    }
    let mut tool = Tool::start(
        &nsqd,
        "kill",
        &[format!("--post={}", server.url("/")), "-n=10".into()],
    );
    server.wait_for(50);
    tool.child.kill().unwrap();
    tool.child.wait().unwrap();
    assert!(
        server.requests().len() < total,
        "the kill came too late to prove anything"
    );

    // Whatever was not acknowledged by the server is still on nsqd: a second run delivers it.
    let tool = Tool::start(&nsqd, "kill", &[format!("--post={}", server.url("/"))]);
    wait_channel_settled(&nsqd, "kill", "nsq_to_http", 0);
    let got: BTreeSet<String> = server.bodies().into_iter().collect();
    assert_eq!(got, bodies.into_iter().collect());
    drop(tool);
}
