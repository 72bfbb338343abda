//! TCP protocol V2 over TLS: the in-band upgrade after IDENTIFY, `/stats` session details, and
//! `--tls-required` refusing commands before the upgrade.

mod common;
#[path = "common/tls.rs"]
mod tls_pki;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use common::*;
use rustls::pki_types::ServerName;
use tls_pki::TestPki;

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn read_frame(s: &mut impl Read) -> (i32, Vec<u8>) {
    let mut hdr = [0u8; 8];
    s.read_exact(&mut hdr).unwrap();
    let size = i32::from_be_bytes(hdr[0..4].try_into().unwrap()) as usize;
    let kind = i32::from_be_bytes(hdr[4..8].try_into().unwrap());
    let mut data = vec![0u8; size - 4];
    s.read_exact(&mut data).unwrap();
    (kind, data)
}

fn with_body(line: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("{line}\n").into_bytes();
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Connects, negotiates TLS in IDENTIFY and returns the encrypted stream after its `OK`.
fn upgrade(n: &Nsqd, config: Arc<rustls::ClientConfig>) -> (TlsStream, serde_json::Value) {
    let mut tcp = TcpStream::connect(n.tcp).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(b"  V2").unwrap();
    tcp.write_all(&with_body(
        "IDENTIFY",
        br#"{"feature_negotiation":true,"tls_v1":true}"#,
    ))
    .unwrap();
    let (kind, json) = read_frame(&mut tcp);
    assert_eq!(kind, FRAME_RESPONSE);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let conn =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    assert_eq!(read_frame(&mut tls), (FRAME_RESPONSE, b"OK".to_vec()));
    (tls, v)
}

#[test]
fn identify_upgrades_to_tls_and_stats_report_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let mut args = pki.server_args();
    args.push("--https-address=127.0.0.1:0".to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let n = Nsqd::start(&args);
    let (mut tls, v) = upgrade(&n, pki.client_config(None));
    assert_eq!(v["tls_v1"], true);
    tls.write_all(&with_body("PUB secure", b"over tls"))
        .unwrap();
    assert_eq!(read_frame(&mut tls), (FRAME_RESPONSE, b"OK".to_vec()));
    tls.write_all(b"SUB secure c\nRDY 1\n").unwrap();
    assert_eq!(read_frame(&mut tls), (FRAME_RESPONSE, b"OK".to_vec()));
    let (kind, data) = read_frame(&mut tls);
    assert_eq!((kind, &data[26..]), (FRAME_MESSAGE, &b"over tls"[..]));
    let s = n.http_get("/stats?format=json").json();
    let client = &s["topics"][0]["channels"][0]["clients"][0];
    assert_eq!(client["tls"], true);
    assert!(
        client["tls_version"].as_str().unwrap().starts_with("TLS1."),
        "{client}"
    );
    assert!(
        !client["tls_cipher_suite"].as_str().unwrap().is_empty(),
        "{client}"
    );
}

#[test]
fn tls_required_refuses_commands_before_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let mut args = pki.server_args();
    args.push("--https-address=127.0.0.1:0".to_string());
    args.push("--tls-required=tcp-https".to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let n = Nsqd::start(&args);
    let mut plain = n.connect();
    plain.cmd_body("PUB t", b"x");
    plain.expect_fatal("E_INVALID cannot PUB in current state (TLS required)");
    // After upgrading, the same command works; plain HTTP is still served at tcp-https.
    let (mut tls, _) = upgrade(&n, pki.client_config(None));
    tls.write_all(&with_body("PUB t", b"x")).unwrap();
    assert_eq!(read_frame(&mut tls), (FRAME_RESPONSE, b"OK".to_vec()));
    assert_eq!(n.http_get("/ping").text(), "OK");
}

#[test]
fn require_verify_checks_the_client_certificate_on_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let mut args = pki.server_args();
    args.push("--https-address=127.0.0.1:0".to_string());
    args.push(format!("--tls-root-ca-file={}", pki.ca.display()));
    args.push("--tls-client-auth-policy=require-verify".to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let n = Nsqd::start(&args);
    let (mut tls, _) = upgrade(&n, pki.client_config(Some(&pki.client)));
    tls.write_all(&with_body("PUB t", b"x")).unwrap();
    assert_eq!(read_frame(&mut tls), (FRAME_RESPONSE, b"OK".to_vec()));
    // A certificate from another CA: the handshake fails and the connection ends.
    let mut tcp = TcpStream::connect(n.tcp).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(b"  V2").unwrap();
    tcp.write_all(&with_body(
        "IDENTIFY",
        br#"{"feature_negotiation":true,"tls_v1":true}"#,
    ))
    .unwrap();
    read_frame(&mut tcp);
    let conn = rustls::ClientConnection::new(
        pki.client_config(Some(&pki.other_client)),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut bad = rustls::StreamOwned::new(conn, tcp);
    let mut buf = [0u8; 16];
    let res = bad.read(&mut buf);
    assert!(matches!(res, Err(_) | Ok(0)), "{res:?}");
}
