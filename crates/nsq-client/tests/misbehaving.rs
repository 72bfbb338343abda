//! Servers that break the protocol: each must give a clear error, never a panic or a hang.
mod common;

use std::time::Duration;

use common::*;
use nsq_client::{Consumer, Error, Producer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Starts a server that reads the client's first bytes, then does `act` with the socket.
async fn fake<F, Fut>(act: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 64];
            // The magic and the start of IDENTIFY.
            let _ = s.read(&mut buf).await;
            act(s).await;
        }
    });
    addr
}

fn frame(kind: i32, data: &[u8]) -> Vec<u8> {
    let mut v = ((data.len() + 4) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn quick() -> nsq_client::Config {
    let mut c = config();
    c.read_timeout = Duration::from_millis(500);
    c.heartbeat_interval = Some(Duration::from_millis(250));
    c
}

async fn publish_err(addr: &str) -> Error {
    let p = Producer::new(addr, quick()).unwrap();
    within("an error", p.publish("t", "x")).await.unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_reply() {
    let addr = fake(|mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let e = publish_err(&addr).await;
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    assert!(e.to_string().contains("frame size"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_server_times_out() {
    let addr = fake(|s| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(s);
    })
    .await;
    let e = publish_err(&addr).await;
    assert!(matches!(e, Error::Timeout { what: "read", .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_mid_frame() {
    let addr = fake(|mut s| async move {
        let f = frame(0, b"{\"max_rdy_count\":2500}");
        let _ = s.write_all(&f[..10]).await;
        // FIN rather than a reset: unread client bytes would turn a close into RST.
        let _ = s.shutdown().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let e = publish_err(&addr).await;
    assert!(e.to_string().contains("middle of a frame"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_before_answering() {
    let addr = fake(|s| async move { drop(s) }).await;
    let e = publish_err(&addr).await;
    assert!(
        matches!(e, Error::Closed { .. } | Error::Io { .. }),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_identify_json_and_frame_types() {
    let addr = fake(|mut s| async move {
        let _ = s.write_all(&frame(0, b"{not json")).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let e = publish_err(&addr).await;
    assert!(e.to_string().contains("bad IDENTIFY answer"), "{e}");

    let addr = fake(|mut s| async move {
        let _ = s.write_all(&frame(7, b"??")).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let e = publish_err(&addr).await;
    assert!(e.to_string().contains("unknown frame type 7"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_refused() {
    let addr = fake(|mut s| async move {
        let _ = s.write_all(&frame(1, b"E_BAD_BODY IDENTIFY invalid")).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    match publish_err(&addr).await {
        Error::Server { code, .. } => assert_eq!(code, "E_BAD_BODY"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_gets_garbage_after_subscribing() {
    // IDENTIFY and SUB are answered; then a message frame too short to be a message.
    let addr = fake(|mut s| async move {
        let _ = s.write_all(&frame(0, b"OK")).await;
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(&frame(0, b"OK")).await;
        let _ = s.write_all(&frame(2, b"short")).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let mut cfg = quick();
    cfg.lookupd_poll_interval = Duration::from_secs(60);
    let c = Consumer::new("t", "c", cfg).unwrap();
    within("connect", c.connect_to_nsqd(&addr)).await.unwrap();
    // The connection is dropped, no message comes out, and stopping still completes.
    let s = eventually_async(|| c.stats().connections == 0).await;
    assert!(s);
    assert_eq!(c.stats().messages_received, 0);
    c.stop();
    within("stop", c.stopped()).await;
    assert!(c.recv().await.is_none());
}

async fn eventually_async(f: impl Fn() -> bool) -> bool {
    within("condition", async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_and_unroutable_addresses() {
    let p = Producer::new("no-such-host.invalid:4150", quick()).unwrap();
    assert!(within("resolve", p.publish("t", "x")).await.is_err());
    let p = Producer::new("not an address", quick()).unwrap();
    assert!(within("parse", p.publish("t", "x")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_answered_with_something_other_than_ok() {
    let addr = fake(|mut s| async move {
        // IDENTIFY's answer, then a response to PUB that is not `OK`.
        let _ = s.write_all(&frame(0, b"{\"max_rdy_count\":2500}")).await;
        // Answer only once PUB has arrived, so the answer cannot come before the command.
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !seen.windows(4).any(|w| w == b"PUB ") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(&frame(0, b"NOT OK")).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let e = publish_err(&addr).await;
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    assert!(e.to_string().contains("NOT OK"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_counts_error_frames_and_stays_connected() {
    // IDENTIFY and SUB are answered; then two non-fatal error frames.
    let addr = fake(|mut s| async move {
        let _ = s.write_all(&frame(0, b"OK")).await;
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(&frame(0, b"OK")).await;
        let _ = s.write_all(&frame(1, b"E_FIN_FAILED FIN x failed")).await;
        let _ = s.write_all(&frame(1, b"E_REQ_FAILED REQ x failed")).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let mut cfg = quick();
    cfg.heartbeat_interval = None;
    cfg.read_timeout = Duration::from_secs(10);
    cfg.lookupd_poll_interval = Duration::from_secs(60);
    let c = Consumer::new("t", "c", cfg).unwrap();
    within("connect", c.connect_to_nsqd(&addr)).await.unwrap();
    assert!(eventually_async(|| c.stats().errors_received == 2).await);
    assert_eq!(c.stats().connections, 1);
    c.stop();
}
