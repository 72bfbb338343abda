//! The one request the harness makes outside the V2 protocol: plain HTTP to nsqd's API.
//!
//! Publishing and consuming go through `nsq-client`. The supervising thread still needs
//! nsqd's HTTP API (creating the topic and channels, reading `/stats` to see the drain end),
//! which the client crate does not offer, and it runs outside any async runtime; a blocking
//! HTTP/1.0 request is all it takes.
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One HTTP/1.0 request (no chunked answers); returns the status and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(
        format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, raw[split + 4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves one canned answer and returns the request it read.
    fn serve_once(answer: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request cut short");
                req.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer).unwrap();
            String::from_utf8(req).unwrap()
        });
        (addr, h)
    }

    #[test]
    fn status_and_body_come_back() {
        let (addr, h) =
            serve_once(b"HTTP/1.1 404 Not Found\r\nX: y\r\n\r\n{\"message\":\"NOT_FOUND\"}");
        let (status, body) = http(addr, "POST", "/topic/create?topic=t").unwrap();
        assert_eq!(status, 404);
        assert_eq!(body, b"{\"message\":\"NOT_FOUND\"}");
        assert!(h
            .join()
            .unwrap()
            .starts_with("POST /topic/create?topic=t HTTP/1.0\r\n"));
    }

    #[test]
    fn an_answer_without_a_head_is_an_error() {
        let (addr, h) = serve_once(b"garbage");
        let e = http(addr, "GET", "/stats").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        h.join().unwrap();
    }
}
