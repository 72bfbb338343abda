//! nsqd listening on unix sockets (`--tcp-address` and `--http-address` given as paths).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn frame(s: &mut UnixStream) -> (i32, Vec<u8>) {
    let mut hdr = [0u8; 8];
    s.read_exact(&mut hdr).unwrap();
    let size = i32::from_be_bytes(hdr[0..4].try_into().unwrap()) as usize;
    let kind = i32::from_be_bytes(hdr[4..8].try_into().unwrap());
    let mut data = vec![0u8; size - 4];
    s.read_exact(&mut data).unwrap();
    (kind, data)
}

fn http_get(path: &std::path::Path, uri: &str) -> HttpResponse {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {uri} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_http_response(&raw)
}

#[test]
fn tcp_protocol_and_http_over_unix_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = dir.path().join("nsqd.sock");
    let http = dir.path().join("nsqd-http.sock");
    let mut child = Command::new(bin())
        .arg(format!("--tcp-address={}", tcp.display()))
        .arg(format!("--http-address={}", http.display()))
        .arg(format!("--data-path={}", dir.path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains(&format!("TCP: listening on {}", tcp.display()))
            || line.contains(&format!("HTTP: listening on {}", http.display()))
        {
            seen += 1;
            if seen == 2 {
                break;
            }
        }
    }
    std::thread::spawn(move || for _ in lines {});

    let mut s = UnixStream::connect(&tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"  V2SUB t c\nRDY 1\nPUB t\n\x00\x00\x00\x02hi")
        .unwrap();
    assert_eq!(frame(&mut s), (0, b"OK".to_vec()));
    let (kind, first) = frame(&mut s);
    let (kind2, second) = frame(&mut s);
    // The PUB's OK and the message may come in either order.
    let mut got = [(kind, first), (kind2, second)];
    got.sort_by_key(|f| f.0);
    assert_eq!(got[0], (0, b"OK".to_vec()));
    assert_eq!(&got[1].1[26..], b"hi");

    let info = http_get(&http, "/info").json();
    assert_eq!(
        (info["tcp_port"].clone(), info["http_port"].clone()),
        ((-1).into(), (-1).into())
    );
    let stats = http_get(&http, "/stats?format=json").json();
    let client = &stats["topics"][0]["channels"][0]["clients"][0];
    assert_eq!(client["client_id"], "", "no IP on a unix socket");

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
