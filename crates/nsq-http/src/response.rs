//! Response construction in NSQ's two styles (V1 and PlainText), the TLS-required answer, and the
//! typed error handlers return.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use http_body_util::Full;
use serde::Serialize;

use crate::query::InvalidQuery;

/// Every response this crate produces.
pub type Response = http::Response<Full<Bytes>>;

/// What handlers return; the error side renders as a V1 (or PlainText) error response.
pub type HandlerResult = Result<Response, ApiError>;

/// Marks a body as un-enveloped V1. go-nsq's lookupd client keys on this exact header value.
pub const X_NSQ_CONTENT_TYPE: HeaderName = HeaderName::from_static("x-nsq-content-type");
/// Value of [`X_NSQ_CONTENT_TYPE`].
pub const NSQ_V1: &str = "nsq; version=1.0";
/// Content type of every JSON body, success or error.
pub const APPLICATION_JSON: &str = "application/json; charset=utf-8";
/// Content type Go's sniffer assigns to text bodies.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const OCTET_STREAM: &str = "application/octet-stream";

fn build(
    status: StatusCode,
    content_type: Option<&'static str>,
    v1: bool,
    body: Bytes,
) -> Response {
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(ct) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if v1 {
        headers.insert(X_NSQ_CONTENT_TYPE, HeaderValue::from_static(NSQ_V1));
    }
    response
}

/// The content type Go's server would sniff for a body written without one: none when empty, text
/// unless the leading bytes contain control characters Go classes as binary. Go also recognises
/// HTML, images and the like; NSQ never sends those through this path.
fn sniff(body: &[u8]) -> Option<&'static str> {
    if body.is_empty() {
        return None;
    }
    let binary = body
        .iter()
        .take(512)
        .any(|&b| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F));
    Some(if binary { OCTET_STREAM } else { TEXT_PLAIN })
}

/// 200 with `value` as JSON.
///
/// A value that fails to serialize becomes a 500 whose message is the serializer's error text, as
/// in the reference.
pub fn v1_json<T: Serialize + ?Sized>(value: &T) -> Response {
    match crate::json::to_vec(value) {
        Ok(body) => v1_json_bytes(body),
        Err(e) => v1_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// 200 with an already-encoded JSON body.
pub fn v1_json_bytes(body: impl Into<Bytes>) -> Response {
    build(StatusCode::OK, Some(APPLICATION_JSON), true, body.into())
}

/// 200 with a text body (`OK`, the text stats format).
pub fn v1_text(text: impl Into<Bytes>) -> Response {
    let body = text.into();
    let content_type = if body.is_empty() {
        None
    } else {
        Some(TEXT_PLAIN)
    };
    build(StatusCode::OK, content_type, true, body)
}

/// 200 with raw bytes, typed the way Go's content sniffing would type them.
pub fn v1_bytes(body: impl Into<Bytes>) -> Response {
    let body = body.into();
    build(StatusCode::OK, sniff(&body), true, body)
}

/// 200 with no body: the answer to every successful admin action.
pub fn v1_empty() -> Response {
    build(StatusCode::OK, None, true, Bytes::new())
}

/// `status` with body exactly `{"message":"<message>"}`.
pub fn v1_error(status: StatusCode, message: &str) -> Response {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        message: &'a str,
    }
    // Serializing a lone string field cannot fail; the fallback only keeps this total.
    let body = crate::json::to_vec(&ErrorBody { message })
        .unwrap_or_else(|_| br#"{"message":"INTERNAL_ERROR"}"#.to_vec());
    build(status, Some(APPLICATION_JSON), true, Bytes::from(body))
}

/// PlainText style (`/ping`): `status` and the raw text, without the V1 header.
pub fn plain(status: StatusCode, text: impl Into<Bytes>) -> Response {
    let body = text.into();
    build(status, sniff(&body), false, body)
}

/// The 403 every request on the plain listener gets when TLS is required. The body's spacing
/// differs from other V1 errors (`{"message": "TLS_REQUIRED", "https_port": 4152}`) because the
/// reference formats it by hand; clients match on it.
pub fn tls_required(https_port: u16) -> Response {
    let body = format!(r#"{{"message": "TLS_REQUIRED", "https_port": {https_port}}}"#);
    build(
        StatusCode::FORBIDDEN,
        Some(APPLICATION_JSON),
        true,
        Bytes::from(body),
    )
}

/// How an [`ApiError`] is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"message":"TEXT"}` with the V1 headers.
    V1,
    /// The text itself, for PlainText endpoints.
    PlainText,
}

/// An error a handler returns with `?`; becomes the matching error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
    style: ErrorStyle,
}

impl ApiError {
    /// V1 error, e.g. `ApiError::new(400, "MISSING_ARG_TOPIC")`. A code outside 100..=999 becomes
    /// 500 rather than producing an unsendable response.
    pub fn new(status: u16, message: impl Into<Cow<'static, str>>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::with_status(status, message)
    }

    /// V1 error with a typed status.
    pub fn with_status(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            message: message.into(),
            style: ErrorStyle::V1,
        }
    }

    /// PlainText error: the status and the raw text (e.g. 500 `NOK - <err>` from `/ping`).
    pub fn plain(status: u16, text: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            style: ErrorStyle::PlainText,
            ..Self::new(status, text)
        }
    }

    /// 500 `INTERNAL_ERROR`.
    pub fn internal() -> Self {
        Self::with_status(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR")
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn style(&self) -> ErrorStyle {
        self.style
    }

    pub fn into_response(self) -> Response {
        match self.style {
            ErrorStyle::V1 => v1_error(self.status, &self.message),
            ErrorStyle::PlainText => plain(
                self.status,
                match self.message {
                    Cow::Borrowed(s) => Bytes::from_static(s.as_bytes()),
                    Cow::Owned(s) => Bytes::from(s),
                },
            ),
        }
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Self {
        e.into_response()
    }
}

/// Every endpoint answers an unparseable query with 400 `INVALID_REQUEST`.
impl From<InvalidQuery> for ApiError {
    fn from(_: InvalidQuery) -> Self {
        ApiError::with_status(StatusCode::BAD_REQUEST, "INVALID_REQUEST")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    pub(crate) async fn body_of(r: Response) -> Vec<u8> {
        r.into_body().collect().await.unwrap().to_bytes().to_vec()
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn v1_json_success() {
        let r = v1_json(&serde_json::json!({"version": "1.3.0", "http_port": 4151}));
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-nsq-content-type"), Some("nsq; version=1.0"));
        assert_eq!(header(&r, "content-type"), Some(APPLICATION_JSON));
        assert_eq!(body_of(r).await, br#"{"http_port":4151,"version":"1.3.0"}"#);
    }

    #[tokio::test]
    async fn v1_error_shape() {
        let r = v1_error(StatusCode::NOT_FOUND, "TOPIC_NOT_FOUND");
        assert_eq!(r.status(), 404);
        assert_eq!(header(&r, "x-nsq-content-type"), Some(NSQ_V1));
        assert_eq!(header(&r, "content-type"), Some(APPLICATION_JSON));
        assert_eq!(r.headers().len(), 2);
        assert_eq!(body_of(r).await, br#"{"message":"TOPIC_NOT_FOUND"}"#);

        let r = v1_error(StatusCode::INTERNAL_SERVER_ERROR, "NOK - <disk> \"full\"");
        assert_eq!(
            body_of(r).await,
            br#"{"message":"NOK - \u003cdisk\u003e \"full\""}"#
        );
    }

    #[tokio::test]
    async fn v1_text_and_empty() {
        let r = v1_text("OK");
        assert_eq!(header(&r, "content-type"), Some(TEXT_PLAIN));
        assert_eq!(header(&r, "x-nsq-content-type"), Some(NSQ_V1));
        assert_eq!(body_of(r).await, b"OK");

        let r = v1_empty();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), None);
        assert_eq!(header(&r, "x-nsq-content-type"), Some(NSQ_V1));
        assert!(body_of(r).await.is_empty());

        let r = v1_bytes(Bytes::from_static(b"\x00\x01binary"));
        assert_eq!(header(&r, "content-type"), Some("application/octet-stream"));
        assert_eq!(header(&v1_bytes("text"), "content-type"), Some(TEXT_PLAIN));
    }

    #[tokio::test]
    async fn plain_text_style() {
        let r = plain(StatusCode::OK, "OK");
        assert_eq!(header(&r, "x-nsq-content-type"), None);
        assert_eq!(header(&r, "content-type"), Some(TEXT_PLAIN));
        assert_eq!(body_of(r).await, b"OK");

        let r: Response = ApiError::plain(500, "NOK - disk full").into();
        assert_eq!(r.status(), 500);
        assert_eq!(header(&r, "x-nsq-content-type"), None);
        assert_eq!(body_of(r).await, b"NOK - disk full");
    }

    #[tokio::test]
    async fn tls_required_exact_body() {
        let r = tls_required(4152);
        assert_eq!(r.status(), 403);
        assert_eq!(header(&r, "x-nsq-content-type"), Some(NSQ_V1));
        assert_eq!(header(&r, "content-type"), Some(APPLICATION_JSON));
        assert_eq!(
            body_of(r).await,
            br#"{"message": "TLS_REQUIRED", "https_port": 4152}"#
        );
        assert_eq!(
            body_of(tls_required(0)).await,
            br#"{"message": "TLS_REQUIRED", "https_port": 0}"#
        );
    }

    #[tokio::test]
    async fn api_error_conversions() {
        let e = ApiError::new(400, "MISSING_ARG_TOPIC");
        assert_eq!(e.status(), 400);
        assert_eq!(e.to_string(), "MISSING_ARG_TOPIC");
        let r = e.into_response();
        assert_eq!(r.status(), 400);
        assert_eq!(body_of(r).await, br#"{"message":"MISSING_ARG_TOPIC"}"#);

        assert_eq!(ApiError::new(42, "X").status(), 500);

        let e: ApiError = InvalidQuery::Semicolon.into();
        assert_eq!((e.status().as_u16(), e.message()), (400, "INVALID_REQUEST"));
        assert_eq!(ApiError::internal().message(), "INTERNAL_ERROR");
    }
}
