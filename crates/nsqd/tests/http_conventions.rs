//! HTTP API conventions shared by every nsqd endpoint: V1 headers and error bodies, router
//! behaviour (404, 405 + Allow, OPTIONS, HEAD, redirects), removed pre-1.0 endpoints, query
//! parsing; plus `/ping` and `/info`.

mod common;

use common::httpx::{self, assert_err, assert_ok_empty, assert_ok_json, assert_ok_text};
use common::Nsqd;

fn allow_set(r: &common::HttpResponse) -> Vec<String> {
    let a = r
        .header("Allow")
        .unwrap_or_else(|| panic!("no Allow header: {:?}", r.headers));
    a.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn unknown_path_is_404_not_found_v1() {
    let n = Nsqd::start(&[]);
    for (m, p) in [
        ("GET", "/nope"),
        ("POST", "/nope"),
        ("GET", "/topic"),
        ("PUT", "/a/b/c"),
        ("GET", "/stats/x"),
    ] {
        let r = httpx::method(&n, m, p, b"");
        assert_err(&r, 404, "NOT_FOUND");
    }
}

#[test]
fn removed_pre_1_0_endpoints_are_404() {
    let n = Nsqd::start(&[]);
    for p in [
        "/put?topic=t",
        "/mput?topic=t",
        "/create_topic?topic=t",
        "/delete_topic?topic=t",
        "/empty_topic?topic=t",
        "/pause_topic?topic=t",
        "/unpause_topic?topic=t",
        "/create_channel?topic=t&channel=c",
        "/delete_channel?topic=t&channel=c",
        "/empty_channel?topic=t&channel=c",
        "/pause_channel?topic=t&channel=c",
        "/unpause_channel?topic=t&channel=c",
        "/dpub?topic=t",
    ] {
        for m in ["GET", "POST"] {
            let r = httpx::method(&n, m, p, b"x");
            assert_err(&r, 404, "NOT_FOUND");
        }
    }
    // none of them created anything
    assert!(httpx::topic_names(&n).is_empty());
}

#[test]
fn wrong_method_is_405_with_allow_header() {
    let n = Nsqd::start(&[]);
    let cases: &[(&str, &str, &[&str])] = &[
        ("GET", "/pub?topic=t", &["POST"]),
        ("GET", "/mpub?topic=t", &["POST"]),
        ("POST", "/ping", &["GET"]),
        ("POST", "/info", &["GET"]),
        ("POST", "/stats", &["GET"]),
        ("DELETE", "/stats", &["GET"]),
        ("GET", "/topic/create?topic=t", &["POST"]),
        ("PUT", "/topic/delete?topic=t", &["POST"]),
        ("GET", "/topic/empty?topic=t", &["POST"]),
        ("GET", "/topic/pause?topic=t", &["POST"]),
        ("GET", "/topic/unpause?topic=t", &["POST"]),
        ("GET", "/channel/create?topic=t&channel=c", &["POST"]),
        ("GET", "/channel/delete?topic=t&channel=c", &["POST"]),
        ("GET", "/channel/empty?topic=t&channel=c", &["POST"]),
        ("GET", "/channel/pause?topic=t&channel=c", &["POST"]),
        ("GET", "/channel/unpause?topic=t&channel=c", &["POST"]),
        ("POST", "/config/log_level", &["GET", "PUT"]),
        ("DELETE", "/config/msg_timeout", &["GET", "PUT"]),
    ];
    for (m, p, allowed) in cases {
        let r = httpx::method(&n, m, p, b"");
        assert_err(&r, 405, "METHOD_NOT_ALLOWED");
        let allow = allow_set(&r);
        for a in *allowed {
            assert!(
                allow.iter().any(|x| x == a),
                "{m} {p}: Allow {allow:?} lacks {a}"
            );
        }
        assert!(
            !allow.iter().any(|x| x == m),
            "{m} {p}: Allow {allow:?} lists the refused method"
        );
    }
    // nothing was created by the refused requests
    assert!(httpx::topic_names(&n).is_empty());
}

#[test]
fn head_is_not_mapped_to_get() {
    let n = Nsqd::start(&[]);
    for p in ["/ping", "/info", "/stats", "/config/log_level"] {
        let r = httpx::method(&n, "HEAD", p, b"");
        assert_eq!(r.status, 405, "HEAD {p}");
    }
}

#[test]
fn options_on_existing_path_lists_methods() {
    let n = Nsqd::start(&[]);
    for (p, allowed) in [
        ("/pub", &["POST"][..]),
        ("/ping", &["GET"][..]),
        ("/stats", &["GET"][..]),
        ("/channel/create", &["POST"][..]),
        ("/config/log_level", &["GET", "PUT"][..]),
    ] {
        let r = httpx::method(&n, "OPTIONS", p, b"");
        assert_eq!(r.status, 200, "OPTIONS {p}: {:?}", r.text());
        assert!(r.body.is_empty(), "OPTIONS {p} body {:?}", r.text());
        let allow = allow_set(&r);
        for a in allowed {
            assert!(
                allow.iter().any(|x| x == a),
                "OPTIONS {p}: Allow {allow:?} lacks {a}"
            );
        }
    }
    let r = httpx::method(&n, "OPTIONS", "/nope", b"");
    assert_err(&r, 404, "NOT_FOUND");
}

#[test]
fn trailing_slash_redirects_301_for_get_307_otherwise() {
    let n = Nsqd::start(&[]);
    let r = httpx::get(&n, "/ping/");
    assert_eq!(r.status, 301, "{:?}", r.headers);
    assert_eq!(r.header("Location"), Some("/ping"));

    let r = httpx::get(&n, "/stats/");
    assert_eq!(r.status, 301);
    assert!(
        r.header("Location").unwrap_or("").starts_with("/stats"),
        "{:?}",
        r.headers
    );

    let r = httpx::post(&n, "/topic/create/?topic=t", b"");
    assert_eq!(r.status, 307, "{:?}", r.headers);
    assert!(
        r.header("Location")
            .unwrap_or("")
            .starts_with("/topic/create"),
        "{:?}",
        r.headers
    );
    // the redirect itself did not run the handler
    assert!(httpx::topic_names(&n).is_empty());

    let r = httpx::post(&n, "/pub/?topic=t", b"hello");
    assert_eq!(r.status, 307);
    assert!(r.header("Location").unwrap_or("").starts_with("/pub"));

    let r = httpx::method(&n, "PUT", "/config/log_level/", b"debug");
    assert_eq!(r.status, 307);
}

#[test]
fn case_and_unclean_paths_redirect_to_canonical() {
    let n = Nsqd::start(&[]);
    let r = httpx::get(&n, "/PING");
    assert_eq!(r.status, 301, "{:?}", r.headers);
    assert_eq!(r.header("Location"), Some("/ping"));

    let r = httpx::get(&n, "/x/../ping");
    assert_eq!(r.status, 301, "{:?}", r.headers);
    assert_eq!(r.header("Location"), Some("/ping"));

    let r = httpx::post(&n, "/Topic/Create?topic=t", b"");
    assert_eq!(r.status, 307, "{:?}", r.headers);
    assert!(r
        .header("Location")
        .unwrap_or("")
        .starts_with("/topic/create"));
}

#[test]
fn ping_is_plain_ok() {
    let n = Nsqd::start(&[]);
    let r = httpx::get(&n, "/ping");
    assert_eq!((r.status, r.text()), (200, "OK".to_string()));
    assert_ne!(r.header("Content-Type"), Some(httpx::JSON_CT));
}

#[test]
fn info_has_every_key_with_types_and_defaults() {
    let n = Nsqd::start(&[]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let v = assert_ok_json(&httpx::get(&n, "/info"));
    let o = v.as_object().expect("object");
    let keys = [
        "version",
        "broadcast_address",
        "hostname",
        "http_port",
        "tcp_port",
        "start_time",
        "max_heartbeat_interval",
        "max_output_buffer_size",
        "max_output_buffer_timeout",
        "max_deflate_level",
        "topology_zone",
        "topology_region",
    ];
    for k in keys {
        assert!(o.contains_key(k), "/info lacks {k}: {v}");
    }
    assert_eq!(o.len(), keys.len(), "unexpected keys in /info: {v}");
    assert_eq!(v["version"], "1.3.0");
    assert_eq!(v["http_port"].as_i64(), Some(n.http.port() as i64));
    assert_eq!(v["tcp_port"].as_i64(), Some(n.tcp.port() as i64));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(v["hostname"], host.as_str());
    assert_eq!(
        v["broadcast_address"],
        host.as_str(),
        "broadcast_address defaults to hostname"
    );
    let st = v["start_time"].as_i64().expect("start_time int");
    assert!(
        (before - 60..=before + 5).contains(&st),
        "start_time {st} vs now {before}"
    );
    assert_eq!(v["max_heartbeat_interval"].as_i64(), Some(60_000_000_000));
    assert_eq!(v["max_output_buffer_size"].as_i64(), Some(65536));
    assert_eq!(
        v["max_output_buffer_timeout"].as_i64(),
        Some(30_000_000_000)
    );
    assert_eq!(v["max_deflate_level"].as_i64(), Some(6));
    assert_eq!(v["topology_zone"], "");
    assert_eq!(v["topology_region"], "");
}

#[test]
fn info_reflects_flags_durations_in_nanoseconds() {
    let n = Nsqd::start(&[
        "--broadcast-address=bcast.example.com",
        "--max-heartbeat-interval=45s",
        "--max-output-buffer-size=32768",
        "--max-output-buffer-timeout=1500ms",
        "--max-deflate-level=4",
        "--topology-zone=zone-a",
        "--topology-region=region-1",
    ]);
    let v = assert_ok_json(&httpx::get(&n, "/info"));
    assert_eq!(v["broadcast_address"], "bcast.example.com");
    assert_eq!(v["max_heartbeat_interval"].as_i64(), Some(45_000_000_000));
    assert_eq!(v["max_output_buffer_size"].as_i64(), Some(32768));
    assert_eq!(v["max_output_buffer_timeout"].as_i64(), Some(1_500_000_000));
    assert_eq!(v["max_deflate_level"].as_i64(), Some(4));
    assert_eq!(v["topology_zone"], "zone-a");
    assert_eq!(v["topology_region"], "region-1");
}

#[test]
fn v1_header_on_every_v1_success() {
    let n = Nsqd::start(&[]);
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"m"), "OK");
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t", b"a\nb"), "OK");
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t2", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t2&channel=c", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/pause?topic=t2&channel=c", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/unpause?topic=t2&channel=c", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/empty?topic=t2&channel=c", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/delete?topic=t2&channel=c", b""));
    assert_ok_empty(&httpx::post(&n, "/topic/pause?topic=t2", b""));
    assert_ok_empty(&httpx::post(&n, "/topic/unpause?topic=t2", b""));
    assert_ok_empty(&httpx::post(&n, "/topic/empty?topic=t2", b""));
    assert_ok_empty(&httpx::post(&n, "/topic/delete?topic=t2", b""));
    assert_ok_json(&httpx::get(&n, "/info"));
    assert_ok_json(&httpx::get(&n, "/stats?format=json"));
    assert_ok_json(&httpx::get(&n, "/config/msg_timeout"));
    let text = httpx::get(&n, "/stats");
    assert_eq!(text.status, 200);
    assert_eq!(text.header("X-NSQ-Content-Type"), Some(httpx::V1_HEADER));
    assert_ne!(
        text.header("Content-Type"),
        Some(httpx::JSON_CT),
        "text stats is not JSON"
    );
}

#[test]
fn accept_header_does_not_change_the_response() {
    let n = Nsqd::start(&[]);
    let r = httpx::request(
        n.http,
        "GET",
        "/info",
        &[("Accept", "application/vnd.nsq; version=1.0")],
        b"",
    );
    let v = assert_ok_json(&r);
    assert!(
        v.get("status_code").is_none() && v.get("data").is_none(),
        "legacy envelope: {v}"
    );
    assert_eq!(v["version"], "1.3.0");
    let r = httpx::request(
        n.http,
        "POST",
        "/topic/create",
        &[("Accept", "application/vnd.nsq; version=1.0")],
        b"",
    );
    assert_err(&r, 400, "MISSING_ARG_TOPIC");
}

#[test]
fn bad_query_escape_is_invalid_request() {
    let n = Nsqd::start(&[]);
    assert_err(
        &httpx::get(&n, "/stats?format=json&topic=%zz"),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/topic/create?topic=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/topic/delete?topic=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/topic/empty?topic=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/topic/pause?topic=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/topic/unpause?topic=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/channel/create?topic=t&channel=%g1", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/channel/delete?topic=t&channel=%", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/channel/empty?x=%zz&topic=t&channel=c", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/channel/pause?topic=t&channel=c&x=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/channel/unpause?topic=t&channel=c&x=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/pub?topic=t&x=%zz", b"m"),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/mpub?topic=t&x=%zz", b"m"),
        400,
        "INVALID_REQUEST",
    );
    // a bad escape anywhere in the query invalidates the whole request: nothing was created
    assert!(httpx::topic_names(&n).is_empty());
}

#[test]
fn semicolon_separator_is_invalid_request() {
    let n = Nsqd::start(&[]);
    assert_err(
        &httpx::post(&n, "/topic/create?topic=a;b=c", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/pub?topic=a;x=y", b"m"),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::get(&n, "/stats?format=json;topic=a"),
        400,
        "INVALID_REQUEST",
    );
    assert!(httpx::topic_names(&n).is_empty());
}

#[test]
fn repeated_query_key_first_value_wins() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(
        &n,
        "/topic/create?topic=first&topic=second",
        b"",
    ));
    assert_eq!(httpx::topic_names(&n), vec!["first".to_string()]);
    // the first (invalid) value is the one validated
    assert_err(
        &httpx::post(&n, "/topic/create?topic=bad!&topic=good", b""),
        400,
        "INVALID_TOPIC",
    );
    assert_ok_text(&httpx::post(&n, "/pub?topic=first&topic=bad!", b"m"), "OK");
    assert_eq!(httpx::topic_names(&n), vec!["first".to_string()]);
    // first value wins for /stats filters too
    let s = httpx::stats(&n, "topic=first&topic=nope");
    assert_eq!(s["topics"].as_array().map(|a| a.len()), Some(1));
}

#[test]
fn percent_encoded_query_values_are_decoded() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=%61bc", b""));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/create?topic=abc&channel=c%23ephemeral",
        b"",
    ));
    assert!(httpx::channel(&n, "abc", "c#ephemeral").is_some());
}

#[test]
fn query_params_ignored_in_body() {
    let n = Nsqd::start(&[]);
    // parameters come only from the URL even for POST with a form body
    let r = httpx::request(
        n.http,
        "POST",
        "/topic/create",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"topic=formtopic",
    );
    assert_err(&r, 400, "MISSING_ARG_TOPIC");
    assert!(httpx::topic_names(&n).is_empty());
}
