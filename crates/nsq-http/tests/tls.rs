//! `serve_tls` over real sockets: requests over TLS, Go's answer to plain HTTP on the TLS port,
//! failed handshakes that are logged and harm nobody else, and shutdown.

mod common;

use common::{log_lines_containing, logger};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use nsq_http::{plain, serve_tls, Router};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

struct Server {
    addr: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    ca: CertificateDer<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn start() -> Server {
    logger();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");

    let mut router: Router<()> = Router::new();
    router.get("/ping", |_, _| async { Ok(plain(StatusCode::OK, "OK")) });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve_tls(
        listener,
        TlsAcceptor::from(Arc::new(config)),
        Arc::new(router),
        Arc::new(()),
        stopped,
    ));
    Server {
        addr,
        stop,
        task,
        ca: cert,
    }
}

impl Server {
    async fn connect_tls(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).expect("root");
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake")
    }
}

/// Reads one `Content-Length` response (headers and body) from `io`.
async fn read_response<I: tokio::io::AsyncRead + Unpin>(io: &mut I) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), io.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().expect("length"))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_requests_over_tls_with_keep_alive() {
    let server = start().await;
    let mut tls = server.connect_tls().await;
    for _ in 0..2 {
        tls.write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let response = read_response(&mut tls).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nOK"), "{response}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_tls_port_gets_gos_400() {
    let server = start().await;
    for request in [
        &b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"POST /pub HTTP/1.1\r\nHost: x\r\n\r\n"[..],
    ] {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        tcp.write_all(request).await.expect("write");
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got))
            .await
            .expect("closed in time")
            .expect("read");
        assert_eq!(
            String::from_utf8_lossy(&got),
            "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshake_is_logged_and_harms_nobody() {
    let server = start().await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    let local = tcp.local_addr().expect("local");
    tcp.write_all(b"\x16\x03\x01\x00\x05hello-not-tls")
        .await
        .expect("write");
    let mut got = Vec::new();
    // The server answers with an alert (or nothing) and closes.
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got))
        .await
        .expect("closed in time");

    // A peer that connects and goes away without a byte is a failed handshake too.
    drop(TcpStream::connect(server.addr).await.expect("connect"));

    let needle = format!("http: TLS handshake error from {local}: ");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while log_lines_containing(&needle).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(log_lines_containing(&needle)[0].starts_with("WARN "));

    let mut tls = server.connect_tls().await;
    tls.write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    assert!(read_response(&mut tls)
        .await
        .starts_with("HTTP/1.1 200 OK\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_abandons_pending_handshakes() {
    let server = start().await;
    // A connection stuck before its handshake must not hold up shutdown.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve_tls returned")
        .expect("no panic");
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut got)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert!(TcpStream::connect(server.addr).await.is_err());
}
