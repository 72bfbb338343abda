//! TCP protocol V2: snappy and deflate negotiated in IDENTIFY, both directions, byte-level, with
//! a client that compresses with the same stream formats.

mod common;

use std::io::{Read, Write};

use bytes::BytesMut;
use common::*;
use nsq_protocol::compress::{Deflate, Snappy, StreamCodec};

/// A compressed connection after IDENTIFY: frames are decoded through the codec.
struct Compressed {
    conn: Conn,
    tx: Box<dyn StreamCodec>,
    rx: Box<dyn StreamCodec>,
    plain: BytesMut,
}

impl Compressed {
    fn open(
        n: &Nsqd,
        identify: &str,
        codec: fn() -> Box<dyn StreamCodec>,
    ) -> (Compressed, serde_json::Value) {
        let mut conn = n.connect();
        let f = conn.identify(identify);
        let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
        let mut c = Compressed {
            conn,
            tx: codec(),
            rx: codec(),
            plain: BytesMut::new(),
        };
        // The upgrade is confirmed by an OK sent through the new layer.
        assert_eq!(
            c.frame(),
            Frame {
                kind: FRAME_RESPONSE,
                data: b"OK".to_vec()
            }
        );
        (c, v)
    }

    fn send(&mut self, plain: &[u8]) {
        let mut out = Vec::new();
        self.tx.encode(plain, &mut out).unwrap();
        self.conn.stream.write_all(&out).unwrap();
    }

    fn frame(&mut self) -> Frame {
        loop {
            if self.plain.len() >= 8 {
                let size = i32::from_be_bytes(self.plain[0..4].try_into().unwrap()) as usize;
                if self.plain.len() >= 4 + size {
                    let f = self.plain.split_to(4 + size);
                    let kind = i32::from_be_bytes(f[4..8].try_into().unwrap());
                    let data = f[8..].to_vec();
                    if kind == FRAME_RESPONSE && data == b"_heartbeat_" {
                        continue;
                    }
                    return Frame { kind, data };
                }
            }
            let mut buf = [0u8; 65536];
            let n = self.conn.stream.read(&mut buf).expect("read");
            assert!(n > 0, "connection closed");
            self.rx.decode(&buf[..n], &mut self.plain).unwrap();
        }
    }
}

fn pub_cmd(topic: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("PUB {topic}\n").into_bytes();
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Publishes and consumes through compressed connections; returns the IDENTIFY response and
/// `/stats` taken while both connections are open.
fn exercise(
    n: &Nsqd,
    identify: &str,
    codec: fn() -> Box<dyn StreamCodec>,
) -> (serde_json::Value, serde_json::Value) {
    let (mut p, v) = Compressed::open(n, identify, codec);
    let big = vec![b'x'; 300_000];
    p.send(&pub_cmd("z", b"hello"));
    assert_eq!(p.frame().data, b"OK");
    p.send(&pub_cmd("z", &big));
    assert_eq!(p.frame().data, b"OK");
    let (mut c, _) = Compressed::open(n, identify, codec);
    c.send(b"SUB z ch\nRDY 5\n");
    assert_eq!(c.frame().data, b"OK");
    let m1 = parse_message(&c.frame().data);
    let m2 = parse_message(&c.frame().data);
    assert_eq!(m1.body, b"hello");
    assert_eq!(m2.body, big);
    c.send(format!("FIN {}\nFIN {}\n", m1.id_str(), m2.id_str()).as_bytes());
    eventually(|| {
        (n.http_get("/stats?format=json&topic=z").json()["topics"][0]["channels"][0]["clients"][0]
            ["finish_count"]
            == 2)
            .then_some(())
    });
    (v, n.http_get("/stats?format=json").json())
}

#[test]
fn snappy_both_directions() {
    let n = Nsqd::start(&[]);
    let (v, s) = exercise(&n, r#"{"feature_negotiation":true,"snappy":true}"#, || {
        Box::new(Snappy::default())
    });
    assert_eq!(
        (v["snappy"].clone(), v["deflate"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(s["producers"][0]["snappy"], true);
}

#[test]
fn deflate_both_directions_and_level_capped_at_the_maximum() {
    let n = Nsqd::start(&["--max-deflate-level=3"]);
    let (v, s) = exercise(
        &n,
        r#"{"feature_negotiation":true,"deflate":true,"deflate_level":9}"#,
        || Box::new(Deflate::new(3)),
    );
    assert_eq!(
        (v["deflate"].clone(), v["deflate_level"].clone()),
        (true.into(), 3.into())
    );
    assert_eq!(s["producers"][0]["deflate"], true);
}

#[test]
fn switches_off_mean_not_negotiated() {
    let n = Nsqd::start(&["--snappy=false", "--deflate=false"]);
    let mut c = n.connect();
    let f = c.identify(r#"{"feature_negotiation":true,"snappy":true}"#);
    let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
    assert_eq!(v["snappy"], false);
    c.publish("t", b"plain");
}

#[test]
fn corrupt_compressed_input_closes_only_that_connection() {
    let n = Nsqd::start(&[]);
    for identify in [
        r#"{"feature_negotiation":true,"snappy":true}"#,
        r#"{"feature_negotiation":true,"deflate":true}"#,
    ] {
        let (mut c, _) = if identify.contains("snappy") {
            Compressed::open(&n, identify, || Box::new(Snappy::default()))
        } else {
            Compressed::open(&n, identify, || Box::new(Deflate::new(6)))
        };
        c.conn
            .stream
            .write_all(b"\x00\x10\x00\x00garbage-garbage-garbage")
            .unwrap();
        c.conn.expect_closed();
    }
    // The server is still fine for everyone else.
    let mut ok = n.connect();
    ok.publish("t", b"still here");
}
