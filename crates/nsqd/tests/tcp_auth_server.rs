//! TCP protocol V2 with an auth server (`--auth-http-address`): the AUTH exchange, the
//! per-command checks of SUB/PUB/MPUB/DPUB, the request nsqd sends (GET and POST), caching and
//! TTL expiry, and failing closed when the auth server is down, slow or confused.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// A tiny auth server: answers with whatever the test's policy says and records every request.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct AuthRequest {
    method: String,
    /// Path and query as sent.
    target: String,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl AuthRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn raw_query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The query decoded; GET requests carry the four fields here.
    fn query(&self) -> BTreeMap<String, String> {
        form_urlencoded::parse(self.raw_query().as_bytes())
            .into_owned()
            .collect()
    }

    fn secret(&self) -> String {
        if self.method == "POST" {
            let v: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
            v["secret"][0].as_str().unwrap_or("").to_string()
        } else {
            self.query().get("secret").cloned().unwrap_or_default()
        }
    }
}

#[derive(Debug, Clone)]
enum Reply {
    Status(u16, String),
    /// Accept and read the request, then say nothing.
    Silent,
}

fn ok(body: Value) -> Reply {
    Reply::Status(200, body.to_string())
}

type Policy = Box<dyn Fn(&AuthRequest) -> Reply + Send>;

struct AuthServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<AuthRequest>>>,
    policy: Arc<Mutex<Policy>>,
}

impl AuthServer {
    fn start(policy: impl Fn(&AuthRequest) -> Reply + Send + 'static) -> AuthServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind auth server");
        let addr = l.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<AuthRequest>>> = Arc::default();
        let policy: Arc<Mutex<Policy>> = Arc::new(Mutex::new(Box::new(policy)));
        let (rec, pol) = (requests.clone(), policy.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let (rec, pol) = (rec.clone(), pol.clone());
                std::thread::spawn(move || serve_one(s, &rec, &pol));
            }
        });
        AuthServer {
            addr,
            requests,
            policy,
        }
    }

    /// Grants everything to every secret for `ttl` seconds.
    fn grant_all(ttl: i64) -> AuthServer {
        AuthServer::start(move |_| ok(state(ttl, &[(".*", &[".*"], &["subscribe", "publish"])])))
    }

    fn set(&self, policy: impl Fn(&AuthRequest) -> Reply + Send + 'static) {
        *self.policy.lock().unwrap() = Box::new(policy);
    }

    fn flag(&self) -> String {
        format!("--auth-http-address={}", self.addr)
    }

    fn requests(&self) -> Vec<AuthRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve_one(mut s: TcpStream, rec: &Mutex<Vec<AuthRequest>>, policy: &Mutex<Policy>) {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let (head_end, len) = loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if raw.len() >= end + 4 + len {
                break (end, len);
            }
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let req = AuthRequest {
        method: first.next().unwrap_or("").to_string(),
        target: first.next().unwrap_or("").to_string(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
        body: raw[head_end + 4..head_end + 4 + len].to_vec(),
    };
    let reply = (policy.lock().unwrap())(&req);
    rec.lock().unwrap().push(req);
    match reply {
        Reply::Silent => std::thread::sleep(Duration::from_secs(20)),
        Reply::Status(code, body) => {
            let resp = format!(
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    }
}

type GrantSpec<'a> = (&'a str, &'a [&'a str], &'a [&'a str]);

fn state(ttl: i64, grants: &[GrantSpec]) -> Value {
    json!({
        "ttl": ttl,
        "identity": "alice",
        "identity_url": "https://id.example/alice",
        "authorizations": grants
            .iter()
            .map(|(t, c, p)| json!({"topic": t, "channels": c, "permissions": p}))
            .collect::<Vec<_>>(),
    })
}

/// A port nothing listens on.
fn closed_port_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

fn be(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

fn auth(c: &mut Conn, secret: &[u8]) -> Frame {
    c.cmd_body("AUTH", secret);
    c.read_non_heartbeat()
}

fn auth_ok(c: &mut Conn, secret: &[u8]) -> Value {
    let f = auth(c, secret);
    assert_eq!(f.kind, FRAME_RESPONSE, "AUTH answered {:?}", f.text());
    serde_json::from_slice(&f.data).expect("AUTH reply is JSON")
}

// ---------------------------------------------------------------------------------------------
// AUTH itself
// ---------------------------------------------------------------------------------------------

#[test]
fn auth_success_reply_and_get_request() {
    let srv = AuthServer::start(|_| {
        ok(state(
            3600,
            &[
                ("^a$", &[".*"], &["subscribe"]),
                ("^b$", &[".*"], &["publish"]),
            ],
        ))
    });
    let n = Nsqd::start(&[&srv.flag()]);
    let mut c = n.connect();
    let f = c.identify(r#"{"feature_negotiation":true}"#);
    let v: Value = serde_json::from_slice(&f.data).unwrap();
    assert_eq!(v["auth_required"], true);

    let f = auth(&mut c, b"s3cret k&y");
    assert_eq!(
        (f.kind, f.text()),
        (
            FRAME_RESPONSE,
            r#"{"identity":"alice","identity_url":"https://id.example/alice","permission_count":2}"#
                .to_string()
        )
    );
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path()), ("GET", "/auth"));
    // Keys sorted, values form-encoded.
    assert_eq!(
        r.raw_query(),
        "common_name=&remote_ip=127.0.0.1&secret=s3cret+k%26y&tls=false"
    );
    assert_eq!(r.header("accept"), Some("application/vnd.nsq; version=1.0"));
    assert_eq!(r.header("host"), Some(srv.addr.to_string().as_str()));
    assert!(r.body.is_empty());

    c.publish("b", b"m");
    c.subscribe("a", "c");
}

#[test]
fn auth_post_method_sends_json_arrays() {
    let srv = AuthServer::grant_all(3600);
    let n = Nsqd::start(&[&srv.flag(), "--auth-http-request-method=post"]);
    let mut c = n.connect();
    auth_ok(&mut c, b"abc");
    let r = &srv.requests()[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/auth"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("accept"), Some("application/vnd.nsq; version=1.0"));
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        r#"{"common_name":[""],"remote_ip":["127.0.0.1"],"secret":["abc"],"tls":["false"]}"#
    );
}

#[test]
fn auth_full_url_is_used_verbatim() {
    let srv = AuthServer::grant_all(3600);
    let flag = format!("--auth-http-address=http://{}/v2/nsq-auth", srv.addr);
    let n = Nsqd::start(&[&flag]);
    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    let r = &srv.requests()[0];
    assert_eq!(r.path(), "/v2/nsq-auth");
    assert_eq!(r.query().get("secret").map(String::as_str), Some("x"));
}

#[test]
fn auth_twice_is_refused() {
    let srv = AuthServer::grant_all(3600);
    let n = Nsqd::start(&[&srv.flag()]);
    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    c.cmd_body("AUTH", b"x");
    c.expect_fatal("E_INVALID AUTH already set");
    assert_eq!(srv.requests().len(), 1);
}

#[test]
fn auth_server_decides_about_the_secret() {
    let srv = AuthServer::start(|r| match r.secret().as_str() {
        "good" => ok(state(60, &[(".*", &[".*"], &["publish"])])),
        "nobody" => ok(state(60, &[])),
        _ => Reply::Status(403, r#"{"message":"FORBIDDEN"}"#.into()),
    });
    let n = Nsqd::start(&[&srv.flag()]);

    let mut c = n.connect();
    assert_eq!(auth_ok(&mut c, b"good")["permission_count"], 1);

    let mut c = n.connect();
    c.cmd_body("AUTH", b"nobody");
    c.expect_fatal("E_UNAUTHORIZED AUTH no authorizations found");

    let mut c = n.connect();
    c.cmd_body("AUTH", b"bad");
    c.expect_fatal("E_AUTH_FAILED AUTH failed");
    // The reason stays in the server log; the client learns nothing more.
    n.wait_for_log("AUTH failed");
}

#[test]
fn invalid_auth_responses_fail() {
    let answers = [
        Reply::Status(200, "not json".into()),
        ok(
            json!({"ttl": 0, "authorizations": [{"topic": ".*", "channels": [".*"], "permissions": ["publish"]}]}),
        ),
        ok(
            json!({"ttl": -1, "authorizations": [{"topic": ".*", "channels": [".*"], "permissions": ["publish"]}]}),
        ),
        ok(
            json!({"authorizations": [{"topic": ".*", "channels": [".*"], "permissions": ["publish"]}]}),
        ),
        ok(state(60, &[(".*", &[".*"], &["publish", "admin"])])),
        ok(state(60, &[("(", &[".*"], &["publish"])])),
        ok(state(60, &[(".*", &["[z-a]"], &["publish"])])),
        Reply::Status(500, "{}".into()),
        Reply::Status(404, "".into()),
    ];
    let srv = AuthServer::grant_all(60);
    let n = Nsqd::start(&[&srv.flag()]);
    for a in answers {
        let shown = format!("{a:?}");
        srv.set(move |_| a.clone());
        let mut c = n.connect();
        let f = auth(&mut c, b"x");
        assert_eq!(
            (f.kind, f.text()),
            (FRAME_ERROR, "E_AUTH_FAILED AUTH failed".to_string()),
            "{shown}"
        );
        c.expect_closed();
    }
}

#[test]
fn auth_server_down_fails_closed_quickly() {
    let down = closed_port_addr();
    let n = Nsqd::start(&[&format!("--auth-http-address={down}")]);
    let mut c = n.connect();
    let t0 = Instant::now();
    c.cmd_body("AUTH", b"x");
    c.expect_fatal("E_AUTH_FAILED AUTH failed");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let line = n.wait_for_log("AUTH failed");
    assert!(line.contains(&down.to_string()), "{line}");
    // Nothing gets through without AUTH either.
    let mut c = n.connect();
    c.cmd_body("PUB t", b"m");
    c.expect_fatal("E_AUTH_FIRST AUTH required before PUB");
}

#[test]
fn slow_auth_server_times_out() {
    let srv = AuthServer::start(|_| Reply::Silent);
    let n = Nsqd::start(&[&srv.flag(), "--http-client-request-timeout=300ms"]);
    let mut c = n.connect();
    let t0 = Instant::now();
    c.cmd_body("AUTH", b"x");
    c.expect_fatal("E_AUTH_FAILED AUTH failed");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[test]
fn every_auth_server_is_tried() {
    let srv = AuthServer::grant_all(3600);
    let down = closed_port_addr();
    let n = Nsqd::start(&[&format!("--auth-http-address={down}"), &srv.flag()]);
    // The starting server is random; whichever it is, the working one must answer.
    for _ in 0..8 {
        let mut c = n.connect();
        auth_ok(&mut c, b"x");
    }
}

// ---------------------------------------------------------------------------------------------
// Per-command checks
// ---------------------------------------------------------------------------------------------

#[test]
fn commands_before_auth_fail_with_auth_first() {
    let srv = AuthServer::grant_all(3600);
    let n = Nsqd::start(&[&srv.flag()]);

    let mut c = n.connect();
    c.cmd("SUB t c");
    c.expect_fatal("E_AUTH_FIRST AUTH required before SUB");

    let mut c = n.connect();
    c.cmd_body("PUB t", b"m");
    c.expect_fatal("E_AUTH_FIRST AUTH required before PUB");

    let mut c = n.connect();
    c.cmd_body("MPUB t", &Conn::mpub_body(&[b"a", b"b"]));
    c.expect_fatal("E_AUTH_FIRST AUTH required before MPUB");

    let mut c = n.connect();
    c.cmd_body("DPUB t 100", b"m");
    c.expect_fatal("E_AUTH_FIRST AUTH required before DPUB");

    // Refused commands create nothing and never reach the auth server.
    assert!(n.topic_stats("t").is_none());
    assert!(srv.requests().is_empty());
}

#[test]
fn name_and_body_checks_come_before_auth() {
    let srv = AuthServer::grant_all(3600);
    let n = Nsqd::start(&[&srv.flag()]);

    let mut c = n.connect();
    c.cmd("SUB bad! c");
    c.expect_fatal(r#"E_BAD_TOPIC SUB topic name "bad!" is not valid"#);

    let mut c = n.connect();
    c.cmd("SUB t bad!");
    c.expect_fatal(r#"E_BAD_CHANNEL SUB channel name "bad!" is not valid"#);

    // PUB and DPUB read their body before the auth check.
    let mut c = n.connect();
    let mut raw = b"PUB t\n".to_vec();
    raw.extend_from_slice(&be(0));
    c.send(&raw);
    c.expect_fatal("E_BAD_MESSAGE PUB invalid message body size 0");

    let mut c = n.connect();
    c.cmd_body("DPUB t x", b"m");
    c.expect_fatal("E_INVALID DPUB could not parse timeout x");
}

#[test]
fn mpub_checks_auth_before_the_body() {
    let srv = AuthServer::grant_all(3600);
    let n = Nsqd::start(&[&srv.flag()]);
    // NSQ checks MPUB's authorization before reading the body, so a broken body is not reported.
    let mut c = n.connect();
    let mut raw = b"MPUB t\n".to_vec();
    raw.extend_from_slice(&be(0));
    c.send(&raw);
    c.expect_fatal("E_AUTH_FIRST AUTH required before MPUB");
    assert!(n.topic_stats("t").is_none());

    // Unauthorized: refused before the topic is created.
    srv.set(|_| ok(state(3600, &[("^other$", &[".*"], &["publish"])])));
    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    c.cmd_body("MPUB t", &Conn::mpub_body(&[b"a"]));
    c.expect_fatal(r#"E_UNAUTHORIZED AUTH failed for MPUB on "t" """#);
    assert!(n.topic_stats("t").is_none());
}

#[test]
fn permissions_decide_subscribe_and_publish() {
    let srv = AuthServer::start(|r| match r.secret().as_str() {
        "sub" => ok(state(3600, &[("^t$", &[".*"], &["subscribe"])])),
        _ => ok(state(3600, &[("^t$", &[".*"], &["publish"])])),
    });
    let n = Nsqd::start(&[&srv.flag()]);

    let mut c = n.connect();
    auth_ok(&mut c, b"sub");
    c.cmd_body("PUB t", b"m");
    c.expect_fatal(r#"E_UNAUTHORIZED AUTH failed for PUB on "t" """#);

    let mut c = n.connect();
    auth_ok(&mut c, b"sub");
    c.subscribe("t", "c");

    let mut c = n.connect();
    auth_ok(&mut c, b"pub");
    c.publish("t", b"m");
    c.cmd_body("DPUB t 10", b"m");
    c.expect_ok();
    c.cmd_body("MPUB t", &Conn::mpub_body(&[b"a", b"b"]));
    c.expect_ok();
    c.cmd("SUB t c");
    c.expect_fatal(r#"E_UNAUTHORIZED AUTH failed for SUB on "t" "c""#);
}

#[test]
fn patterns_are_unanchored() {
    let srv = AuthServer::start(|_| {
        ok(state(
            3600,
            &[
                ("orders", &["arch"], &["subscribe"]),
                ("^exact$", &["^c$"], &["subscribe", "publish"]),
            ],
        ))
    });
    let n = Nsqd::start(&[&srv.flag()]);

    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    c.subscribe("old_orders_2", "archive");

    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    c.cmd("SUB order archive");
    c.expect_fatal(r#"E_UNAUTHORIZED AUTH failed for SUB on "order" "archive""#);

    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    c.cmd("SUB exact2 c");
    c.expect_fatal(r#"E_UNAUTHORIZED AUTH failed for SUB on "exact2" "c""#);

    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    c.cmd("SUB exact cc");
    c.expect_fatal(r#"E_UNAUTHORIZED AUTH failed for SUB on "exact" "cc""#);

    // Publishing matches the channel patterns against "": `^c$` does not grant it.
    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    c.cmd_body("PUB exact", b"m");
    c.expect_fatal(r#"E_UNAUTHORIZED AUTH failed for PUB on "exact" """#);
}

#[test]
fn publish_needs_a_channel_pattern_matching_empty() {
    let srv = AuthServer::start(|r| match r.secret().as_str() {
        "empty-list" => ok(state(3600, &[("t", &[], &["publish", "subscribe"])])),
        _ => ok(state(3600, &[("t", &[""], &["publish"])])),
    });
    let n = Nsqd::start(&[&srv.flag()]);

    let mut c = n.connect();
    auth_ok(&mut c, b"empty-list");
    c.cmd_body("PUB t", b"m");
    c.expect_fatal(r#"E_UNAUTHORIZED AUTH failed for PUB on "t" """#);

    let mut c = n.connect();
    auth_ok(&mut c, b"empty-pattern");
    c.publish("t", b"m");
}

// ---------------------------------------------------------------------------------------------
// Caching and expiry
// ---------------------------------------------------------------------------------------------

#[test]
fn fresh_answers_are_cached_per_connection() {
    let srv = AuthServer::grant_all(3600);
    let n = Nsqd::start(&[&srv.flag()]);
    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    for _ in 0..5 {
        c.publish("t", b"m");
    }
    assert_eq!(srv.requests().len(), 1);
    // Another connection asks on its own.
    let mut c2 = n.connect();
    auth_ok(&mut c2, b"x");
    assert_eq!(srv.requests().len(), 2);
}

#[test]
fn expired_answer_is_requeried_with_the_same_secret() {
    let srv = AuthServer::grant_all(1);
    let n = Nsqd::start(&[&srv.flag()]);
    let mut c = n.connect();
    auth_ok(&mut c, b"keep-me");
    c.publish("t", b"m");
    assert_eq!(srv.requests().len(), 1);

    std::thread::sleep(Duration::from_millis(1200));
    c.publish("t", b"m");
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2, "expiry is noticed at the next check");
    assert_eq!(reqs[1].secret(), "keep-me");

    // The new answer narrows the grant: it applies from now on.
    srv.set(|_| ok(state(1, &[("^u$", &[".*"], &["publish"])])));
    std::thread::sleep(Duration::from_millis(1200));
    c.cmd_body("PUB t", b"m");
    c.expect_fatal(r#"E_UNAUTHORIZED AUTH failed for PUB on "t" """#);
}

#[test]
fn expired_answer_with_auth_server_down_fails_closed() {
    let srv = AuthServer::grant_all(1);
    let n = Nsqd::start(&[&srv.flag()]);
    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    c.publish("t", b"m");
    srv.set(|_| Reply::Status(503, "down".into()));
    std::thread::sleep(Duration::from_millis(1200));
    c.cmd_body("PUB t", b"m");
    c.expect_fatal("E_AUTH_FAILED AUTH failed");
}

#[test]
fn subscription_keeps_flowing_after_expiry() {
    // There is no background re-validation: only the next SUB/PUB check re-queries.
    let srv = AuthServer::grant_all(1);
    let n = Nsqd::start(&[&srv.flag()]);
    let mut c = n.connect();
    auth_ok(&mut c, b"x");
    c.subscribe("t", "c");
    c.rdy(10);
    srv.set(|_| Reply::Status(503, "down".into()));
    std::thread::sleep(Duration::from_millis(1200));
    let r = n.http_post("/pub?topic=t", b"after-expiry");
    assert_eq!(r.status, 200);
    let m = c.read_message();
    assert_eq!(m.body, b"after-expiry");
    assert_eq!(srv.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// /stats
// ---------------------------------------------------------------------------------------------

#[test]
fn stats_show_the_auth_identity() {
    let srv = AuthServer::grant_all(3600);
    let n = Nsqd::start(&[&srv.flag()]);
    let mut c = n.connect();
    c.identify(r#"{"client_id":"authed-one"}"#);
    auth_ok(&mut c, b"x");
    c.subscribe("t", "c");
    let ch = n.channel_stats("t", "c").expect("channel");
    let cl = &ch["clients"][0];
    assert_eq!(cl["client_id"], "authed-one");
    assert_eq!(cl["authed"], true);
    assert_eq!(cl["auth_identity"], "alice");
    assert_eq!(cl["auth_identity_url"], "https://id.example/alice");
}
