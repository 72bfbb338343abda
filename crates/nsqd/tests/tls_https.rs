//! The HTTPS listener and `--tls-required` on plain HTTP: what clients see with each TLS mode and
//! client-certificate policy, and start-up failures from bad TLS files. Certificates are
//! generated per test.

mod common;
#[path = "common/tls.rs"]
mod tls_pki;

use std::io::Write;
use std::process::{Command, Stdio};

use common::httpx::{JSON_CT, V1_HEADER};
use common::{bin, Nsqd};
use tls_pki::{https_addr, TestPki};

struct Setup {
    _dir: tempfile::TempDir,
    pki: TestPki,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new(dir.path());
    Setup { _dir: dir, pki }
}

/// nsqd with the server certificate, HTTPS on an ephemeral port, and `extra` flags.
fn start_tls(pki: &TestPki, extra: &[&str]) -> Nsqd {
    let mut args = pki.server_args();
    args.push("--https-address=127.0.0.1:0".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Nsqd::start(&args)
}

#[test]
fn https_serves_the_same_api() {
    let s = setup();
    let n = start_tls(&s.pki, &[]);
    let https = https_addr(&n);
    assert_ne!(https.port(), 0);

    let r = s
        .pki
        .https_request(https, None, "GET", "/ping", b"")
        .expect("https /ping");
    assert_eq!((r.status, r.text()), (200, "OK".to_string()));

    let r = s
        .pki
        .https_request(https, None, "POST", "/pub?topic=secure", b"hello")
        .expect("https /pub");
    assert_eq!((r.status, r.text()), (200, "OK".to_string()));

    let r = s
        .pki
        .https_request(https, None, "GET", "/stats?format=json", b"")
        .expect("https /stats");
    assert_eq!(r.status, 200);
    let stats = r.json();
    assert_eq!(stats["version"], "1.3.0");
    assert_eq!(stats["topics"][0]["topic_name"], "secure");
    assert_eq!(stats["topics"][0]["message_count"], 1);

    // Without --tls-required the plain listener serves as usual.
    assert_eq!(n.http_get("/ping").text(), "OK");
}

#[test]
fn plain_http_on_the_https_port_gets_a_400() {
    let s = setup();
    let n = start_tls(&s.pki, &[]);
    let https = https_addr(&n);
    let r = common::httpx::raw(https, b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "Client sent an HTTP request to an HTTPS server.\n"
    );
}

#[test]
fn tls_required_true_refuses_plain_http_with_the_https_port() {
    let s = setup();
    let n = start_tls(&s.pki, &["--tls-required=true"]);
    let https = https_addr(&n);
    for (method, path) in [("GET", "/ping"), ("POST", "/pub?topic=t"), ("GET", "/nope")] {
        let r = n.http(method, path, b"body");
        assert_eq!(r.status, 403, "{method} {path}");
        assert_eq!(r.header("X-NSQ-Content-Type"), Some(V1_HEADER));
        assert_eq!(r.header("Content-Type"), Some(JSON_CT));
        assert_eq!(
            r.text(),
            format!(
                r#"{{"message": "TLS_REQUIRED", "https_port": {}}}"#,
                https.port()
            )
        );
    }
    // Nothing got through the plain listener; HTTPS works.
    let r = s
        .pki
        .https_request(https, None, "GET", "/stats?format=json", b"")
        .expect("https /stats");
    assert_eq!(r.json()["topics"], serde_json::json!([]));
}

#[test]
fn tls_required_true_without_https_listener_reports_port_zero() {
    let s = setup();
    let mut args = s.pki.server_args();
    args.push("--https-address=".into());
    args.push("--tls-required=true".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let n = Nsqd::start(&args);
    let r = n.http_get("/ping");
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), r#"{"message": "TLS_REQUIRED", "https_port": 0}"#);
    assert!(
        !n.log_lines()
            .iter()
            .any(|l| l.contains("HTTPS: listening on")),
        "{:?}",
        n.log_lines()
    );
}

#[test]
fn tls_required_tcp_https_still_serves_plain_http() {
    let s = setup();
    let n = start_tls(&s.pki, &["--tls-required=tcp-https"]);
    let r = n.http_get("/ping");
    assert_eq!((r.status, r.text()), (200, "OK".to_string()));
    let https = https_addr(&n);
    let r = s
        .pki
        .https_request(https, None, "GET", "/ping", b"")
        .expect("https");
    assert_eq!(r.status, 200);
}

#[test]
fn require_verify_wants_a_certificate_from_the_ca() {
    let s = setup();
    let ca = format!("--tls-root-ca-file={}", s.pki.ca.display());
    let n = start_tls(&s.pki, &["--tls-client-auth-policy=require-verify", &ca]);
    let https = https_addr(&n);

    let err = s
        .pki
        .https_request(https, None, "GET", "/ping", b"")
        .expect_err("no client certificate");
    assert!(!err.is_empty());
    let err = s
        .pki
        .https_request(https, Some(&s.pki.other_client), "GET", "/ping", b"")
        .expect_err("certificate from another CA");
    assert!(!err.is_empty());

    let r = s
        .pki
        .https_request(https, Some(&s.pki.client), "GET", "/ping", b"")
        .expect("trusted client certificate");
    assert_eq!((r.status, r.text()), (200, "OK".to_string()));

    // A client auth policy forces --tls-required=true: plain HTTP is refused.
    assert_eq!(n.http_get("/ping").status, 403);
}

#[test]
fn require_accepts_any_certificate_but_not_none() {
    let s = setup();
    let n = start_tls(&s.pki, &["--tls-client-auth-policy=require"]);
    let https = https_addr(&n);
    assert!(s
        .pki
        .https_request(https, None, "GET", "/ping", b"")
        .is_err());
    for client in [&s.pki.client, &s.pki.other_client] {
        let r = s
            .pki
            .https_request(https, Some(client), "GET", "/ping", b"")
            .expect("any certificate");
        assert_eq!(r.status, 200);
    }
}

#[test]
fn min_version_tls13_still_serves_https() {
    let s = setup();
    let n = start_tls(&s.pki, &["--tls-min-version=tls1.3"]);
    let https = https_addr(&n);
    let r = s
        .pki
        .https_request(https, None, "GET", "/ping", b"")
        .expect("https");
    assert_eq!(r.status, 200);
}

fn run_nsqd(args: &[String]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .arg(format!("--data-path={}", dir.path().display()))
        .args(["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"])
        .arg("--https-address=127.0.0.1:0")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nsqd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_tls_files_fail_startup() {
    let s = setup();
    let missing = s.pki.dir.join("missing.pem");
    let (code, err) = run_nsqd(&[
        format!("--tls-cert={}", missing.display()),
        format!("--tls-key={}", s.pki.server.key.display()),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "FATAL: failed to instantiate nsqd - failed to build TLS config - open {}: no such file or directory",
            missing.display()
        )),
        "{err}"
    );

    // A key that does not belong to the certificate.
    let (code, err) = run_nsqd(&[
        format!("--tls-cert={}", s.pki.server.cert.display()),
        format!("--tls-key={}", s.pki.client.key.display()),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("failed to build TLS config - tls: private key does not match public key"),
        "{err}"
    );

    // A CA file without certificates.
    let mut args = s.pki.server_args();
    args.push(format!("--tls-root-ca-file={}", s.pki.server.key.display()));
    let (code, err) = run_nsqd(&args);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("failed to build TLS config - failed to append certificate to pool"),
        "{err}"
    );

    // Only one of cert and key.
    let (code, err) = run_nsqd(&[format!("--tls-cert={}", s.pki.server.cert.display())]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("failed to build TLS config - open : no such file or directory"),
        "{err}"
    );
}

/// A stock TLS client: `openssl s_client` (skipped when `openssl` is not installed).
#[test]
fn openssl_s_client_gets_ping() {
    let have_openssl = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    if !have_openssl {
        eprintln!("openssl not installed; skipping");
        return;
    }
    let s = setup();
    let n = start_tls(&s.pki, &[]);
    let https = https_addr(&n);
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", https.port()))
        .args(["-servername", "localhost", "-CAfile"])
        .arg(&s.pki.ca)
        .args(["-verify_return_error", "-ign_eof", "-quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl");
    // HTTP/1.0: the server closes after answering, which ends s_client.
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("write request");
    let out = child.wait_with_output().expect("openssl output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("HTTP/1.0 200 OK\r\n") || stdout.starts_with("HTTP/1.1 200 OK\r\n"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.ends_with("\r\n\r\nOK"), "{stdout}");
}
