//! Router behaviour checked against httprouter v1.3.0 as NSQ configures it.

use super::*;
use crate::body::full_body;
use crate::response::{v1_empty, v1_json, v1_text, ApiError};
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Default)]
struct State {
    hits: AtomicUsize,
}

fn router() -> Router<State> {
    let mut r = Router::new();
    r.get("/ping", |s: Arc<State>, _| async move {
        s.hits.fetch_add(1, Ordering::SeqCst);
        Ok(crate::response::plain(StatusCode::OK, "OK"))
    })
    .get("/info", |_, _| async {
        Ok(v1_json(&serde_json::json!({"v": 1})))
    })
    .post("/topic/create", |_, ctx: RequestCtx| async move {
        let q = ctx.query()?;
        match q.get("topic") {
            None => Err(ApiError::new(400, "MISSING_ARG_TOPIC")),
            Some(_) => Ok(v1_empty()),
        }
    })
    .get("/config/:opt", |_, ctx: RequestCtx| async move {
        Ok(v1_text(format!("get {}", ctx.param("opt").unwrap_or("?"))))
    })
    .put("/config/:opt", |_, mut ctx: RequestCtx| async move {
        let body = ctx
            .read_body(16)
            .await
            .map_err(|_| ApiError::new(413, "INVALID_VALUE"))?;
        Ok(v1_text(format!(
            "put {}={}",
            ctx.param("opt").unwrap_or("?"),
            String::from_utf8_lossy(&body)
        )))
    })
    .get("/topics/:topic/:channel", |_, ctx: RequestCtx| async move {
        Ok(v1_text(format!(
            "{}/{}",
            ctx.param("topic").unwrap_or("?"),
            ctx.param("channel").unwrap_or("?")
        )))
    })
    .get("/debug/pprof/", |_, _| async { Ok(v1_text("index")) })
    .get("/panic", |_, _| async { panic!("boom") })
    .get("/panic-sync", |_, _| -> BoxFuture<HandlerResult> {
        panic!("before the future")
    })
    .get("/remote", |_, ctx: RequestCtx| async move {
        Ok(v1_text(ctx.remote_addr.to_string()))
    });
    r
}

fn remote() -> RemoteAddr {
    RemoteAddr::Tcp("10.0.0.1:5555".parse().unwrap())
}

async fn send(r: &Router<State>, method: &str, uri: &str) -> (Response, Vec<u8>) {
    send_body(r, method, uri, "").await
}

async fn send_body(
    r: &Router<State>,
    method: &str,
    uri: &str,
    body: &'static str,
) -> (Response, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(full_body(body))
        .unwrap();
    let response = r
        .dispatch(Arc::new(State::default()), request, remote())
        .await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (
        http::Response::from_parts(parts, Full::new(Bytes::new())),
        bytes,
    )
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn exact_match_runs_handler() {
    let r = router();
    let (resp, body) = send(&r, "GET", "/ping").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body, b"OK");
    assert_eq!(header(&resp, "x-nsq-content-type"), None);

    let (resp, body) = send(&r, "GET", "/info").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-nsq-content-type"),
        Some("nsq; version=1.0")
    );
    assert_eq!(body, br#"{"v":1}"#);
}

#[tokio::test]
async fn state_is_shared_with_handlers() {
    let r = router();
    let state = Arc::new(State::default());
    for _ in 0..3 {
        let request = Request::get("/ping").body(full_body("")).unwrap();
        r.dispatch(Arc::clone(&state), request, remote()).await;
    }
    assert_eq!(state.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn handler_errors_render_as_v1() {
    let r = router();
    let (resp, body) = send(&r, "POST", "/topic/create").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(header(&resp, "content-type"), Some(crate::APPLICATION_JSON));
    assert_eq!(body, br#"{"message":"MISSING_ARG_TOPIC"}"#);

    let (resp, body) = send(&r, "POST", "/topic/create?topic=a;b").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(body, br#"{"message":"INVALID_REQUEST"}"#);

    let (resp, body) = send(&r, "POST", "/topic/create?topic=t").await;
    assert_eq!(resp.status(), 200);
    assert!(body.is_empty());
}

#[tokio::test]
async fn path_params() {
    let r = router();
    let (_, body) = send(&r, "GET", "/config/log_level").await;
    assert_eq!(body, b"get log_level");
    let (_, body) = send(&r, "GET", "/config/a%20b").await;
    assert_eq!(body, b"get a b");
    let (_, body) = send(&r, "GET", "/topics/t1/c1").await;
    assert_eq!(body, b"t1/c1");
    let (_, body) = send_body(&r, "PUT", "/config/log_level", "debug").await;
    assert_eq!(body, b"put log_level=debug");
    let (resp, body) = send_body(&r, "PUT", "/config/x", "0123456789abcdefg").await;
    assert_eq!(resp.status(), 413);
    assert_eq!(body, br#"{"message":"INVALID_VALUE"}"#);

    // An empty final parameter does not match; an encoded slash splits segments as in Go.
    let (resp, _) = send(&r, "GET", "/config/").await;
    assert_eq!(resp.status(), 404);
    let (resp, _) = send(&r, "GET", "/config/a%2Fb").await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let r = router();
    let (resp, body) = send(&r, "POST", "/ping").await;
    assert_eq!(resp.status(), 405);
    assert_eq!(header(&resp, "allow"), Some("GET, OPTIONS"));
    assert_eq!(
        header(&resp, "x-nsq-content-type"),
        Some("nsq; version=1.0")
    );
    assert_eq!(header(&resp, "content-type"), Some(crate::APPLICATION_JSON));
    assert_eq!(body, br#"{"message":"METHOD_NOT_ALLOWED"}"#);

    let (resp, _) = send(&r, "DELETE", "/config/x").await;
    assert_eq!(resp.status(), 405);
    assert_eq!(header(&resp, "allow"), Some("GET, OPTIONS, PUT"));
}

#[tokio::test]
async fn head_is_not_get() {
    let r = router();
    let (resp, body) = send(&r, "HEAD", "/ping").await;
    assert_eq!(resp.status(), 405);
    assert_eq!(header(&resp, "allow"), Some("GET, OPTIONS"));
    assert_eq!(body, br#"{"message":"METHOD_NOT_ALLOWED"}"#);
}

#[tokio::test]
async fn options_lists_methods() {
    let r = router();
    let (resp, body) = send(&r, "OPTIONS", "/config/x").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "allow"), Some("GET, OPTIONS, PUT"));
    assert_eq!(header(&resp, "x-nsq-content-type"), None);
    assert!(body.is_empty());

    let (resp, _) = send(&r, "OPTIONS", "*").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "allow"), Some("GET, OPTIONS, POST, PUT"));

    let (resp, body) = send(&r, "OPTIONS", "/nope").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(body, br#"{"message":"NOT_FOUND"}"#);
}

#[tokio::test]
async fn unknown_path_is_404() {
    let r = router();
    for (method, uri) in [
        ("GET", "/nope"),
        ("POST", "/put"),
        ("GET", "/topic/create/x"),
    ] {
        let (resp, body) = send(&r, method, uri).await;
        assert_eq!(resp.status(), 404, "{method} {uri}");
        assert_eq!(
            header(&resp, "x-nsq-content-type"),
            Some("nsq; version=1.0")
        );
        assert_eq!(header(&resp, "content-type"), Some(crate::APPLICATION_JSON));
        assert_eq!(body, br#"{"message":"NOT_FOUND"}"#);
    }
    // No route at all for the method: no redirect attempt, straight to 405/404.
    let (resp, _) = send(&r, "PATCH", "/Ping").await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn trailing_slash_redirects() {
    let r = router();
    let (resp, body) = send(&r, "GET", "/ping/?a=1&b=%20").await;
    assert_eq!(resp.status(), 301);
    assert_eq!(header(&resp, "location"), Some("/ping?a=1&b=%20"));
    assert_eq!(
        header(&resp, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        body,
        b"<a href=\"/ping?a=1&amp;b=%20\">Moved Permanently</a>.\n\n"
    );

    let (resp, body) = send(&r, "POST", "/topic/create/?topic=x").await;
    assert_eq!(resp.status(), 307);
    assert_eq!(header(&resp, "location"), Some("/topic/create?topic=x"));
    assert_eq!(header(&resp, "content-type"), None);
    assert!(body.is_empty());

    let (resp, _) = send(&r, "GET", "/debug/pprof").await;
    assert_eq!(resp.status(), 301);
    assert_eq!(header(&resp, "location"), Some("/debug/pprof/"));

    let (resp, _) = send(&r, "GET", "/config/x/").await;
    assert_eq!(resp.status(), 301);
    assert_eq!(header(&resp, "location"), Some("/config/x"));
}

#[tokio::test]
async fn case_and_cleaning_redirects() {
    let r = router();
    let cases = [
        ("GET", "/PING", 301, "/ping"),
        ("GET", "/Ping/", 301, "/ping"),
        (
            "POST",
            "/Topic/Create?topic=t",
            307,
            "/topic/create?topic=t",
        ),
        ("POST", "/topic//create", 307, "/topic/create"),
        ("GET", "//ping", 301, "/ping"),
        ("GET", "/./ping", 301, "/ping"),
        ("GET", "/x/../ping", 301, "/ping"),
        ("GET", "/CONFIG/Log_Level", 301, "/config/Log_Level"),
        ("GET", "/DEBUG/pprof", 301, "/debug/pprof/"),
        ("GET", "/config/a%20b/", 301, "/config/a%20b"),
    ];
    for (method, uri, status, location) in cases {
        let (resp, _) = send(&r, method, uri).await;
        assert_eq!(resp.status(), status, "{method} {uri}");
        assert_eq!(header(&resp, "location"), Some(location), "{method} {uri}");
    }
}

#[tokio::test]
async fn root_is_never_redirected() {
    let r = router();
    let (resp, _) = send(&r, "GET", "/").await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn bad_path_escape_is_400() {
    let r = router();
    let (resp, body) = send(&r, "GET", "/pi%zzng").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(header(&resp, "connection"), Some("close"));
    assert_eq!(body, b"400 Bad Request");
}

#[tokio::test]
async fn percent_encoded_path_matches_decoded_route() {
    let r = router();
    let (resp, body) = send(&r, "GET", "/p%69ng").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body, b"OK");
}

#[tokio::test]
async fn panics_become_500() {
    let r = router();
    for uri in ["/panic", "/panic-sync"] {
        let (resp, body) = send(&r, "GET", uri).await;
        assert_eq!(resp.status(), 500, "{uri}");
        assert_eq!(
            header(&resp, "x-nsq-content-type"),
            Some("nsq; version=1.0")
        );
        assert_eq!(body, br#"{"message":"INTERNAL_ERROR"}"#);
    }
    let (resp, _) = send(&r, "GET", "/ping").await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn remote_addr_reaches_handler() {
    let r = router();
    let (_, body) = send(&r, "GET", "/remote").await;
    assert_eq!(body, b"10.0.0.1:5555");
    assert_eq!(RemoteAddr::Unix.to_string(), "@");
}

#[tokio::test]
async fn pre_dispatch_short_circuits_everything() {
    let mut r = router();
    r.pre_dispatch(|_state, parts| {
        (parts.uri.path() != "/info").then(|| crate::response::tls_required(4152))
    });
    for (method, uri) in [("GET", "/ping"), ("DELETE", "/nope"), ("GET", "/PING/")] {
        let (resp, body) = send(&r, method, uri).await;
        assert_eq!(resp.status(), 403);
        assert_eq!(body, br#"{"message": "TLS_REQUIRED", "https_port": 4152}"#);
    }
    let (resp, _) = send(&r, "GET", "/info").await;
    assert_eq!(resp.status(), 200);
}

#[test]
fn registration_rejects_conflicts_and_bad_patterns() {
    let noop = || -> Handler<State> { Arc::new(|_, _| Box::pin(async { Ok(v1_empty()) })) };
    let mut r: Router<State> = Router::new();
    r.try_handle(Method::GET, "/topics/:topic", noop()).unwrap();
    r.try_handle(Method::GET, "/topics/:topic/:channel", noop())
        .unwrap();
    r.try_handle(Method::GET, "/topics", noop()).unwrap();
    r.try_handle(Method::POST, "/topics/new", noop()).unwrap();
    r.try_handle(Method::GET, "/src/", noop()).unwrap();
    r.try_handle(Method::GET, "/src/:file", noop()).unwrap();

    assert!(matches!(
        r.try_handle(Method::GET, "/topics/new", noop()),
        Err(RouteError::Conflict { .. })
    ));
    assert!(matches!(
        r.try_handle(Method::GET, "/topics/:name", noop()),
        Err(RouteError::Conflict { .. })
    ));
    assert!(matches!(
        r.try_handle(Method::GET, "/topics/:topic", noop()),
        Err(RouteError::Duplicate { .. })
    ));
    assert!(matches!(
        r.try_handle(Method::GET, "nope", noop()),
        Err(RouteError::NotRooted(_))
    ));
    for bad in ["/a/:", "/a/*rest", "/a/x:y", "/a/:b:c"] {
        assert!(
            matches!(
                r.try_handle(Method::GET, bad, noop()),
                Err(RouteError::BadWildcard(_))
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn trailing_slash_route_beside_param() {
    let mut r: Router<State> = Router::new();
    r.get("/src/", |_, _| async { Ok(v1_text("dir")) })
        .get("/src/:file", |_, ctx: RequestCtx| async move {
            Ok(v1_text(ctx.param("file").unwrap_or("?").to_string()))
        });
    assert_eq!(send(&r, "GET", "/src/").await.1, b"dir");
    assert_eq!(send(&r, "GET", "/src/a").await.1, b"a");
    let (resp, _) = send(&r, "GET", "/src").await;
    assert_eq!(header(&resp, "location"), Some("/src/"));
}
