//! The upgrades IDENTIFY negotiates against a real nsqd: TLS (with and without a client
//! certificate), snappy, deflate and their combinations, and AUTH.
mod common;
#[path = "common/pki.rs"]
mod pki;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;
use nsq_client::{Config, Consumer, Error, Producer};

/// Publishes and consumes one message with `config`, proving the connection works both ways.
async fn round_trip(nsqd: &Daemon, config: Config, topic: &str) {
    let p = Producer::new(&nsqd.tcp_addr(), config.clone()).unwrap();
    let body = "x".repeat(100_000);
    within("publish", p.publish(topic, body.clone()))
        .await
        .unwrap();
    let c = Consumer::new(topic, "ch", config).unwrap();
    within("connect", c.connect_to_nsqd(&nsqd.tcp_addr()))
        .await
        .unwrap();
    let m = within("message", c.recv()).await.unwrap();
    assert_eq!(m.body.len(), body.len());
    m.finish();
    c.stop();
    within("stop", c.stopped()).await;
    p.stop().await;
}

fn tls_config(pki: &pki::Pki) -> Config {
    let mut c = config();
    c.tls_v1 = true;
    c.tls.root_ca_file = Some(pki.ca.clone());
    c
}

/// The connection line nsqd logs for its clients' features is not relied on; the `/stats`
/// client entry shows what was negotiated.
fn client_flags(nsqd: &Daemon, topic: &str) -> serde_json::Value {
    let ch = nsqd.channel_stats(topic, "ch").unwrap();
    ch["clients"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls() {
    let pki = pki::Pki::new();
    let nsqd = start_nsqd(&pki.nsqd_args());
    round_trip(&nsqd, tls_config(&pki), "tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified() {
    let pki = pki::Pki::new();
    let other = pki::Pki::new();
    let nsqd = start_nsqd(&pki.nsqd_args());
    let p = Producer::new(&nsqd.tcp_addr(), tls_config(&other)).unwrap();
    let e = within("publish", p.publish("t", "x")).await.unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    // Skipping verification connects anyway.
    let mut c = tls_config(&other);
    c.tls.insecure_skip_verify = true;
    let p = Producer::new(&nsqd.tcp_addr(), c).unwrap();
    within("publish", p.publish("t", "x")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificate_required() {
    let pki = pki::Pki::new();
    let mut args = pki.nsqd_args();
    args.push(format!("--tls-root-ca-file={}", pki.ca.display()));
    args.push("--tls-client-auth-policy=require-verify".into());
    let nsqd = start_nsqd(&args);
    // Without a client certificate nsqd refuses the handshake.
    let p = Producer::new(&nsqd.tcp_addr(), tls_config(&pki)).unwrap();
    assert!(within("publish", p.publish("t", "x")).await.is_err());
    let mut c = tls_config(&pki);
    c.tls.cert_file = Some(pki.client_cert.clone());
    c.tls.key_file = Some(pki.client_key.clone());
    round_trip(&nsqd, c, "mtls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snappy() {
    let nsqd = start_nsqd(&[]);
    let mut c = config();
    c.snappy = true;
    round_trip(&nsqd, c.clone(), "snappy").await;
    // A held connection shows the feature in nsqd's stats.
    let consumer = Consumer::new("snappy", "ch", c).unwrap();
    consumer.connect_to_nsqd(&nsqd.tcp_addr()).await.unwrap();
    assert_eq!(client_flags(&nsqd, "snappy")["snappy"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deflate() {
    let nsqd = start_nsqd(&[]);
    let mut c = config();
    c.deflate = true;
    c.deflate_level = 3;
    round_trip(&nsqd, c.clone(), "deflate").await;
    let consumer = Consumer::new("deflate", "ch", c).unwrap();
    consumer.connect_to_nsqd(&nsqd.tcp_addr()).await.unwrap();
    let flags = client_flags(&nsqd, "deflate");
    assert_eq!(flags["deflate"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_snappy_and_with_deflate() {
    let pki = pki::Pki::new();
    let nsqd = start_nsqd(&pki.nsqd_args());
    let mut c = tls_config(&pki);
    c.snappy = true;
    round_trip(&nsqd, c, "tls_snappy").await;
    let mut c = tls_config(&pki);
    c.deflate = true;
    round_trip(&nsqd, c, "tls_deflate").await;
}

/// An auth server granting everything to the secret `good` and nothing to others; records the
/// secrets it was asked about.
fn auth_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let rec = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = vec![0u8; 8192];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&got).to_string();
            let secret = head
                .split_whitespace()
                .nth(1)
                .and_then(|t| t.split_once('?'))
                .and_then(|(_, q)| {
                    q.split('&')
                        .find_map(|kv| kv.strip_prefix("secret=").map(str::to_string))
                })
                .unwrap_or_default();
            rec.lock().unwrap().push(secret.clone());
            let grants = if secret == "good" {
                serde_json::json!([{"topic": ".*", "channels": [".*"], "permissions": ["subscribe", "publish"]}])
            } else {
                serde_json::json!([])
            };
            let body = serde_json::json!({"ttl": 3600, "identity": "tester", "identity_url": "", "authorizations": grants}).to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth() {
    let (auth_addr, seen) = auth_server();
    let nsqd = start_nsqd(&[format!("--auth-http-address={auth_addr}")]);

    // No secret: a clear error before anything is sent.
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    let e = within("publish", p.publish("a", "x")).await.unwrap_err();
    assert!(e.to_string().contains("auth_secret"), "{e}");

    // A secret without authorizations: nsqd's refusal comes back.
    let mut bad = config();
    bad.auth_secret = "bad".into();
    let p = Producer::new(&nsqd.tcp_addr(), bad).unwrap();
    match within("publish", p.publish("a", "x")).await.unwrap_err() {
        Error::Server { code, .. } => assert_eq!(code, "E_UNAUTHORIZED"),
        other => panic!("unexpected {other:?}"),
    }

    let mut good = config();
    good.auth_secret = "good".into();
    round_trip(&nsqd, good, "authed").await;
    assert!(seen.lock().unwrap().iter().any(|s| s == "good"));
}
