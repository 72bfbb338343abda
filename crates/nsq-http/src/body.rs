//! Request bodies: the boxed body type handlers receive and bounded reading of it.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Body;

/// Error type carried by [`RequestBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body a handler receives. Boxed so handlers can be exercised without a socket.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body with no bytes.
pub fn empty_body() -> RequestBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body holding exactly `bytes`.
pub fn full_body(bytes: impl Into<Bytes>) -> RequestBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Why [`read_body_limited`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than `limit` bytes were sent; reading stopped at the first byte past it.
    #[error("body exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    /// The connection failed or the framing was invalid while reading.
    #[error("failed to read request body: {0}")]
    Read(#[source] BoxError),
}

/// Reads the whole body if it is at most `limit` bytes. Like NSQ's read of `limit + 1` bytes, it
/// stops as soon as one byte more than `limit` has arrived, so an oversized or endless body costs
/// at most one frame beyond the limit and is never buffered whole.
pub async fn read_body_limited<B>(body: B, limit: u64) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.into()))?;
        let Ok(data) = frame.into_data() else {
            // Trailers carry no payload.
            continue;
        };
        let total = buf.len() as u64 + data.len() as u64;
        if total > limit {
            return Err(BodyError::TooLarge { limit });
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// The request's declared `Content-Length`, if present and a valid decimal number. Lets handlers
/// reject oversized uploads before reading (nsqd checks this first).
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Frame;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body yielding the given chunks (or errors) one frame at a time.
    struct Chunks(VecDeque<Result<&'static [u8], &'static str>>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|chunk| {
                chunk
                    .map(|b| Frame::data(Bytes::from_static(b)))
                    .map_err(BoxError::from)
            }))
        }
    }

    fn chunked(chunks: Vec<Result<&'static [u8], &'static str>>) -> RequestBody {
        Chunks(chunks.into()).boxed_unsync()
    }

    #[tokio::test]
    async fn reads_up_to_and_including_the_limit() {
        let body = read_body_limited(full_body("hello"), 5).await.unwrap();
        assert_eq!(&body[..], b"hello");
        let body = read_body_limited(chunked(vec![Ok(b"he"), Ok(b"llo")]), 5)
            .await
            .unwrap();
        assert_eq!(&body[..], b"hello");
        assert!(read_body_limited(empty_body(), 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_byte_over_is_too_large() {
        assert!(matches!(
            read_body_limited(full_body("hello!"), 5).await,
            Err(BodyError::TooLarge { limit: 5 })
        ));
        assert!(matches!(
            read_body_limited(chunked(vec![Ok(b"abc"), Ok(b"def")]), 5).await,
            Err(BodyError::TooLarge { limit: 5 })
        ));
    }

    #[tokio::test]
    async fn stops_before_a_later_error_once_over_the_limit() {
        let body = chunked(vec![Ok(b"abcdef"), Err("boom")]);
        assert!(matches!(
            read_body_limited(body, 5).await,
            Err(BodyError::TooLarge { .. })
        ));
        let body = chunked(vec![Ok(b"ab"), Err("boom")]);
        assert!(matches!(
            read_body_limited(body, 5).await,
            Err(BodyError::Read(_))
        ));
    }

    #[test]
    fn content_length_header() {
        let mut h = HeaderMap::new();
        assert_eq!(content_length(&h), None);
        h.insert(http::header::CONTENT_LENGTH, "42".parse().unwrap());
        assert_eq!(content_length(&h), Some(42));
        h.insert(http::header::CONTENT_LENGTH, "x".parse().unwrap());
        assert_eq!(content_length(&h), None);
    }
}
