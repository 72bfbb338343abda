//! Response compression as NSQ's nsqadmin applies it: the first of `gzip` or `deflate` named
//! in `Accept-Encoding` (exact tokens, no q-values) compresses the whole body, whatever the
//! status.
use std::io::Write as _;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, VARY};
use http::HeaderMap;
use http_body_util::Full;

use crate::response::Response;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Deflate,
}

/// The encoding to use for a request with these headers, if any.
pub fn negotiate(headers: &HeaderMap) -> Option<Encoding> {
    let value = headers.get(ACCEPT_ENCODING)?.to_str().ok()?;
    value.split(',').find_map(|token| match token.trim() {
        "gzip" => Some(Encoding::Gzip),
        "deflate" => Some(Encoding::Deflate),
        _ => None,
    })
}

/// Compresses `response`'s body; on the (memory-only, so unexpected) failure of the encoder
/// the response goes out uncompressed.
pub fn compress(response: Response, encoding: Encoding) -> Response {
    let (mut parts, body) = response.into_parts();
    let Some(bytes) = full_bytes(body) else {
        return http::Response::from_parts(parts, Full::new(Bytes::new()));
    };
    let encoded = match encoding {
        Encoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&bytes).and_then(|_| e.finish())
        }
        Encoding::Deflate => {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&bytes).and_then(|_| e.finish())
        }
    };
    let Ok(encoded) = encoded else {
        return http::Response::from_parts(parts, Full::new(bytes));
    };
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(
        CONTENT_ENCODING,
        HeaderValue::from_static(match encoding {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }),
    );
    parts
        .headers
        .append(VARY, HeaderValue::from_static("Accept-Encoding"));
    http::Response::from_parts(parts, Full::new(Bytes::from(encoded)))
}

/// The bytes of a `Full` body, which is always ready.
fn full_bytes(body: Full<Bytes>) -> Option<Bytes> {
    use http_body_util::BodyExt as _;
    use std::future::Future as _;
    let mut collect = std::pin::pin!(body.collect());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match collect.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(c)) => Some(c.to_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn first_known_token_wins() {
        assert_eq!(
            negotiate(&headers("br, deflate, gzip")),
            Some(Encoding::Deflate)
        );
        assert_eq!(negotiate(&headers("gzip;q=1.0")), None);
        assert_eq!(negotiate(&HeaderMap::new()), None);
    }

    #[test]
    fn gzip_round_trip() {
        let r = crate::response::plain(http::StatusCode::NOT_FOUND, "NOT_FOUND");
        let r = compress(r, Encoding::Gzip);
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(r.headers()[VARY], "Accept-Encoding");
        let body = full_bytes(r.into_body()).unwrap();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "NOT_FOUND");
    }
}
