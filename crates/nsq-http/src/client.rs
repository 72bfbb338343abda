//! Outbound HTTP requests in NSQ's conventions: `Accept: application/vnd.nsq; version=1.0`, a
//! connect timeout and an overall request timeout, plain (un-enveloped) bodies.
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Connect(String),
    #[error("request timed out")]
    Timeout,
    #[error("{0}")]
    Http(String),
    /// A non-200 answer, in NSQ's wording.
    #[error("got response {status} {body:?}")]
    Status { status: u16, body: String },
}

/// Timeouts for outbound requests (`--http-client-connect-timeout`,
/// `--http-client-request-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    pub connect: Duration,
    pub request: Duration,
}

/// `GET http://<addr><path_and_query>`; returns the body of a 200 answer.
pub async fn get(
    addr: &str,
    path_and_query: &str,
    timeouts: ClientTimeouts,
) -> Result<Bytes, ClientError> {
    let request = async {
        let stream = tokio::time::timeout(timeouts.connect, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Connect(format!("dial tcp {addr}: i/o timeout")))?
            .map_err(|e| ClientError::Connect(format!("dial tcp {addr}: {e}")))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = http::Request::get(path_and_query)
            .header(http::header::HOST, addr)
            .header(http::header::ACCEPT, "application/vnd.nsq; version=1.0")
            .body(Empty::<Bytes>::new())
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        driver.abort();
        if status != http::StatusCode::OK {
            return Err(ClientError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(body)
    };
    tokio::time::timeout(timeouts.request, request)
        .await
        .map_err(|_| ClientError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn timeouts() -> ClientTimeouts {
        ClientTimeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(2),
        }
    }

    async fn one_shot_server(answer: &'static [u8]) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = vec![0u8; 4096];
            let n = s.read(&mut req).await.unwrap();
            s.write_all(answer).await.unwrap();
            req.truncate(n);
            req
        });
        (addr, h)
    }

    #[tokio::test]
    async fn sends_nsq_accept_header_and_returns_body() {
        let (addr, h) = one_shot_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await;
        let body = get(&addr, "/channels?topic=t", timeouts()).await.unwrap();
        assert_eq!(&body[..], b"{}");
        let req = String::from_utf8(h.await.unwrap()).unwrap();
        assert!(
            req.starts_with("GET /channels?topic=t HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(
            req.to_ascii_lowercase()
                .contains("accept: application/vnd.nsq; version=1.0"),
            "{req}"
        );
    }

    #[tokio::test]
    async fn non_200_is_an_error_with_the_body() {
        let (addr, _h) =
            one_shot_server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!").await;
        let e = get(&addr, "/x", timeouts()).await.unwrap_err();
        assert_eq!(e.to_string(), "got response 404 \"nope!\"");
    }

    #[tokio::test]
    async fn refused_and_silent_servers_fail_in_time() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        assert!(matches!(
            get(&addr, "/", timeouts()).await,
            Err(ClientError::Connect(_))
        ));
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let t = ClientTimeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_millis(200),
        };
        assert!(matches!(
            get(&addr, "/", t).await,
            Err(ClientError::Timeout)
        ));
    }
}
