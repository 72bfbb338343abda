//! End-to-end checks over real sockets: exact status lines, header names and bodies as a client
//! sees them, keep-alive, panic isolation, access logging and shutdown.

mod common;

use common::{log_lines_containing, logger};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use nsq_http::{
    plain, serve, tls_required, v1_empty, v1_json, ApiError, BoxFuture, HandlerResult, RequestCtx,
    Router,
};
use tokio::sync::watch;

struct State {
    tls_required: bool,
}

async fn pub_handler(_: Arc<State>, mut ctx: RequestCtx) -> HandlerResult {
    if ctx.content_length().is_some_and(|n| n > 10) {
        return Err(ApiError::new(413, "MSG_TOO_BIG"));
    }
    let body = ctx
        .read_body(10)
        .await
        .map_err(|_| ApiError::new(413, "MSG_TOO_BIG"))?;
    if body.is_empty() {
        return Err(ApiError::new(400, "MSG_EMPTY"));
    }
    Ok(nsq_http::v1_text("OK"))
}

struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: std::sync::mpsc::Receiver<()>,
    runtime: tokio::runtime::Runtime,
}

fn start(tls_required_mode: bool) -> Server {
    logger();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut router = Router::new();
    router
        .get("/ping", |_, _| async { Ok(plain(StatusCode::OK, "OK")) })
        .get("/info", |_, _| async {
            Ok(v1_json(&serde_json::json!({"version": "1.3.0"})))
        })
        .post("/pub", pub_handler)
        .post("/topic/create", |_, ctx: RequestCtx| async move {
            ctx.query()?
                .get("topic")
                .ok_or_else(|| ApiError::new(400, "MISSING_ARG_TOPIC"))?;
            Ok(v1_empty())
        })
        .get("/config/:opt", |_, ctx: RequestCtx| async move {
            Ok(v1_json(&ctx.param("opt").unwrap_or_default()))
        })
        .get("/panic", |_, _| -> BoxFuture<HandlerResult> {
            Box::pin(async { panic!("handler exploded") })
        })
        .get("/slow", |_, _| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(nsq_http::v1_text("slow done"))
        })
        .get("/whoami", |_, ctx: RequestCtx| async move {
            Ok(nsq_http::v1_text(ctx.remote_addr.to_string()))
        })
        .skip_access_log(["/pub"])
        .pre_dispatch(|state: &State, _| state.tls_required.then(|| tls_required(4152)));

    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = watch::channel(false);
    let (done_tx, done) = std::sync::mpsc::channel();
    let state = Arc::new(State {
        tls_required: tls_required_mode,
    });
    runtime.spawn(async move {
        serve(listener, Arc::new(router), state, stopped).await;
        let _ = done_tx.send(());
    });
    Server {
        addr,
        stop,
        done,
        runtime,
    }
}

struct Reply {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_raw_header_line(&self, name: &str, value: &str) -> bool {
        self.headers.iter().any(|(k, v)| k == name && v == value)
    }
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    BufReader::new(stream)
}

fn read_reply(conn: &mut BufReader<TcpStream>) -> Reply {
    read_reply_for(conn, false)
}

fn read_reply_for(conn: &mut BufReader<TcpStream>, head: bool) -> Reply {
    let mut status_line = String::new();
    conn.read_line(&mut status_line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        let line = line.trim_end_matches("\r\n");
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(": ").unwrap();
        headers.push((k.to_string(), v.to_string()));
    }
    let mut reply = Reply {
        status_line: status_line.trim_end().to_string(),
        headers,
        body: Vec::new(),
    };
    let length: usize = if head {
        0
    } else {
        reply
            .header("content-length")
            .map_or(0, |v| v.parse().unwrap())
    };
    reply.body = vec![0; length];
    conn.read_exact(&mut reply.body).unwrap();
    reply
}

fn request(conn: &mut BufReader<TcpStream>, raw: &str) -> Reply {
    conn.get_mut().write_all(raw.as_bytes()).unwrap();
    read_reply_for(conn, raw.starts_with("HEAD "))
}

fn get(addr: SocketAddr, target: &str) -> Reply {
    request(
        &mut connect(addr),
        &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn v1_and_plain_responses_on_the_wire() {
    let server = start(false);

    let r = get(server.addr, "/ping");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, b"OK");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("x-nsq-content-type"), None);

    let r = get(server.addr, "/info");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert!(r.has_raw_header_line("X-Nsq-Content-Type", "nsq; version=1.0"));
    assert!(r.has_raw_header_line("Content-Type", "application/json; charset=utf-8"));
    assert_eq!(r.body, br#"{"version":"1.3.0"}"#);

    let r = get(server.addr, "/config/max_msg_size");
    assert_eq!(r.body, br#""max_msg_size""#);

    let r = request(
        &mut connect(server.addr),
        "POST /topic/create HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status_line, "HTTP/1.1 400 Bad Request");
    assert!(r.has_raw_header_line("X-Nsq-Content-Type", "nsq; version=1.0"));
    assert_eq!(r.body, br#"{"message":"MISSING_ARG_TOPIC"}"#);

    let r = request(
        &mut connect(server.addr),
        "POST /topic/create?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("content-type"), None);
    assert!(r.has_raw_header_line("X-Nsq-Content-Type", "nsq; version=1.0"));
}

#[test]
fn router_outcomes_on_the_wire() {
    let server = start(false);

    let r = get(server.addr, "/nope");
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
    assert_eq!(r.body, br#"{"message":"NOT_FOUND"}"#);
    assert!(r.has_raw_header_line("X-Nsq-Content-Type", "nsq; version=1.0"));

    let r = request(
        &mut connect(server.addr),
        "HEAD /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status_line, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(r.header("allow"), Some("GET, OPTIONS"));

    let r = request(
        &mut connect(server.addr),
        "DELETE /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status_line, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(r.header("allow"), Some("GET, OPTIONS"));
    assert_eq!(r.body, br#"{"message":"METHOD_NOT_ALLOWED"}"#);

    let r = request(
        &mut connect(server.addr),
        "OPTIONS /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("allow"), Some("GET, OPTIONS"));
    assert!(r.body.is_empty());

    let r = get(server.addr, "/Ping/?x=1");
    assert_eq!(r.status_line, "HTTP/1.1 301 Moved Permanently");
    assert_eq!(r.header("location"), Some("/ping?x=1"));

    let r = get(server.addr, "//ping");
    assert_eq!(r.status_line, "HTTP/1.1 301 Moved Permanently");
    assert_eq!(r.header("location"), Some("/ping"));

    let r = request(
        &mut connect(server.addr),
        "POST /topic/create/?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status_line, "HTTP/1.1 307 Temporary Redirect");
    assert_eq!(r.header("location"), Some("/topic/create?topic=t"));
}

#[test]
fn body_limits_on_the_wire() {
    let server = start(false);
    let mut conn = connect(server.addr);
    let r = request(
        &mut conn,
        "POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, b"OK");

    let r = request(
        &mut conn,
        "POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
    );
    assert_eq!(r.status_line, "HTTP/1.1 413 Payload Too Large");
    assert_eq!(r.body, br#"{"message":"MSG_TOO_BIG"}"#);

    // Chunked, so the declared length cannot short-cut the limit check.
    let r = request(
        &mut connect(server.addr),
        "POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
    );
    assert_eq!(r.status_line, "HTTP/1.1 413 Payload Too Large");

    let r = request(
        &mut connect(server.addr),
        "POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.body, br#"{"message":"MSG_EMPTY"}"#);
}

#[test]
fn keep_alive_and_panic_isolation() {
    let server = start(false);
    let mut conn = connect(server.addr);
    for _ in 0..3 {
        let r = request(&mut conn, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    }

    let r = request(&mut conn, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 500 Internal Server Error");
    assert!(r.has_raw_header_line("X-Nsq-Content-Type", "nsq; version=1.0"));
    assert_eq!(r.body, br#"{"message":"INTERNAL_ERROR"}"#);

    // Same connection and a fresh one both keep working.
    let r = request(&mut conn, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(get(server.addr, "/ping").status_line, "HTTP/1.1 200 OK");

    assert!(
        log_lines_containing("panic in HTTP handler - handler exploded")
            .iter()
            .any(|l| l.starts_with("ERROR "))
    );
}

#[test]
fn access_log_format_and_exemptions() {
    let server = start(false);
    let mut conn = connect(server.addr);
    let local = conn.get_ref().local_addr().unwrap();
    let r = request(
        &mut conn,
        "GET /whoami?marker=access-log-test HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(r.body, local.to_string().as_bytes());
    request(
        &mut conn,
        "POST /pub?marker=access-log-test HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
    );
    request(
        &mut conn,
        "GET /pub?marker=access-log-test HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    request(
        &mut conn,
        "GET /missing?marker=access-log-test HTTP/1.1\r\nHost: x\r\n\r\n",
    );

    let lines = log_lines_containing("marker=access-log-test");
    let prefix = |status: &str, target: &str| format!("INFO {status} {target} ({local}) ");
    let find = |status: &str, target: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&prefix(status, target)))
            .cloned()
    };
    let whoami = find("200", "GET /whoami?marker=access-log-test").expect("whoami logged");
    let elapsed = whoami.rsplit(' ').next().unwrap();
    assert!(
        elapsed.ends_with("ns") || elapsed.ends_with("µs") || elapsed.ends_with("ms"),
        "{whoami}"
    );
    assert!(
        find("405", "GET /pub?marker=access-log-test").is_some(),
        "{lines:?}"
    );
    assert!(find("404", "GET /missing?marker=access-log-test").is_some());
    assert!(
        !lines.iter().any(|l| l.contains("POST /pub")),
        "successful /pub must not be logged: {lines:?}"
    );
}

#[test]
fn tls_required_hook_answers_every_request() {
    let server = start(true);
    for target in ["/ping", "/nope", "/Ping/"] {
        let r = get(server.addr, target);
        assert_eq!(r.status_line, "HTTP/1.1 403 Forbidden");
        assert!(r.has_raw_header_line("X-Nsq-Content-Type", "nsq; version=1.0"));
        assert!(r.has_raw_header_line("Content-Type", "application/json; charset=utf-8"));
        assert_eq!(
            r.body,
            br#"{"message": "TLS_REQUIRED", "https_port": 4152}"#
        );
    }
}

#[test]
fn shutdown_stops_accepting_and_finishes_in_flight_requests() {
    let server = start(false);
    let mut idle = connect(server.addr);
    assert_eq!(
        request(&mut idle, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n").status_line,
        "HTTP/1.1 200 OK"
    );

    let mut busy = connect(server.addr);
    busy.get_mut()
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));

    server.stop.send(true).unwrap();
    server
        .done
        .recv_timeout(Duration::from_secs(5))
        .expect("serve returns after shutdown");

    let r = read_reply(&mut busy);
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, b"slow done");

    // The idle keep-alive connection is closed rather than left hanging.
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);

    assert!(TcpStream::connect(server.addr).is_err());
    drop(server.runtime);
}

#[test]
fn dropped_shutdown_sender_also_stops() {
    let server = start(false);
    drop(server.stop);
    server
        .done
        .recv_timeout(Duration::from_secs(5))
        .expect("serve returns when the sender is gone");
}
