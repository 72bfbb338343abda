//! `GET/PUT /config/:opt`: value encodings, unknown options, runtime-changeable options.

mod common;

use common::httpx::{self, assert_err, assert_ok_json};
use common::Nsqd;
use serde_json::{json, Value};

fn get_json(n: &Nsqd, opt: &str) -> Value {
    let r = httpx::get(n, &format!("/config/{opt}"));
    assert_eq!(r.status, 200, "GET /config/{opt}: {}", r.text());
    assert_ok_json(&r)
}

fn put(n: &Nsqd, opt: &str, body: &[u8]) -> common::HttpResponse {
    httpx::method(n, "PUT", &format!("/config/{opt}"), body)
}

#[test]
fn get_default_numeric_bool_and_duration_values() {
    let n = Nsqd::start(&[]);
    let cases: &[(&str, Value)] = &[
        // durations are integer nanoseconds
        ("msg_timeout", json!(60_000_000_000i64)),
        ("max_msg_timeout", json!(900_000_000_000i64)),
        ("max_req_timeout", json!(3_600_000_000_000i64)),
        ("output_buffer_timeout", json!(250_000_000i64)),
        ("min_output_buffer_timeout", json!(25_000_000i64)),
        ("max_output_buffer_timeout", json!(30_000_000_000i64)),
        ("max_heartbeat_interval", json!(60_000_000_000i64)),
        ("sync_timeout", json!(2_000_000_000i64)),
        ("http_client_connect_timeout", json!(2_000_000_000i64)),
        ("http_client_request_timeout", json!(5_000_000_000i64)),
        ("statsd_interval", json!(60_000_000_000i64)),
        (
            "e2e_processing_latency_window_time",
            json!(600_000_000_000i64),
        ),
        // integers
        ("mem_queue_size", json!(10000)),
        ("max_bytes_per_file", json!(104857600)),
        ("sync_every", json!(2500)),
        ("queue_scan_worker_pool_max", json!(4)),
        ("queue_scan_selection_count", json!(20)),
        ("max_msg_size", json!(1048576)),
        ("max_body_size", json!(5242880)),
        ("max_rdy_count", json!(2500)),
        ("max_output_buffer_size", json!(65536)),
        ("max_channel_consumers", json!(0)),
        ("statsd_udp_packet_size", json!(508)),
        ("max_deflate_level", json!(6)),
        ("log_level", json!(2)),
        ("tls_required", json!(0)),
        ("tls_min_version", json!(769)),
        // booleans
        ("deflate", json!(true)),
        ("snappy", json!(true)),
        ("statsd_mem_stats", json!(true)),
        ("statsd_exclude_ephemeral", json!(false)),
        // lists are arrays, [] when empty
        ("nsqlookupd_tcp_addresses", json!([])),
        ("auth_http_addresses", json!([])),
        ("e2e_processing_latency_percentiles", json!([])),
        ("enable_experiment", json!([])),
    ];
    for (opt, want) in cases {
        assert_eq!(&get_json(&n, opt), want, "/config/{opt}");
    }
    let id = get_json(&n, "id");
    let id = id
        .as_i64()
        .unwrap_or_else(|| panic!("id not an integer: {id}"));
    assert!((0..1024).contains(&id), "id {id}");
}

#[test]
fn get_broadcast_ports_rewritten_to_real_ports() {
    let n = Nsqd::start(&[]);
    assert_eq!(get_json(&n, "broadcast_tcp_port"), json!(n.tcp.port()));
    assert_eq!(get_json(&n, "broadcast_http_port"), json!(n.http.port()));
    let n2 = Nsqd::start(&["--broadcast-tcp-port=5150", "--broadcast-http-port=5151"]);
    assert_eq!(get_json(&n2, "broadcast_tcp_port"), json!(5150));
    assert_eq!(get_json(&n2, "broadcast_http_port"), json!(5151));
}

#[test]
fn get_reflects_flags() {
    let n = Nsqd::start(&[
        "--msg-timeout=1m30s",
        "--max-req-timeout=1.5h",
        "--max-msg-size=2048",
        "--node-id=7",
        "--log-level=debug",
        "--e2e-processing-latency-percentile=0.5",
        "--e2e-processing-latency-percentile=0.99,1.0",
        "--enable-experiment=topology-aware-consumption",
        "--lookupd-tcp-address=127.0.0.1:1",
        "--lookupd-tcp-address=127.0.0.1:2",
        "--tls-min-version=tls1.2",
        "--deflate=false",
        "--mem-queue-size=0",
    ]);
    assert_eq!(get_json(&n, "msg_timeout"), json!(90_000_000_000i64));
    assert_eq!(get_json(&n, "max_req_timeout"), json!(5_400_000_000_000i64));
    assert_eq!(get_json(&n, "max_msg_size"), json!(2048));
    assert_eq!(get_json(&n, "id"), json!(7));
    assert_eq!(get_json(&n, "log_level"), json!(1));
    let p = get_json(&n, "e2e_processing_latency_percentiles");
    let p: Vec<f64> = p
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(p, vec![1.0, 0.99, 0.5], "percentiles sorted descending");
    assert_eq!(
        get_json(&n, "enable_experiment"),
        json!(["topology-aware-consumption"])
    );
    assert_eq!(
        get_json(&n, "nsqlookupd_tcp_addresses"),
        json!(["127.0.0.1:1", "127.0.0.1:2"])
    );
    assert_eq!(get_json(&n, "tls_min_version"), json!(771));
    assert_eq!(get_json(&n, "deflate"), json!(false));
    assert_eq!(get_json(&n, "mem_queue_size"), json!(0));
}

#[test]
fn get_log_level_integers() {
    // levels above info would hide the startup "listening" lines this harness waits for;
    // warn/error/fatal are covered through PUT
    for (flag, want) in [("debug", 1), ("DEBUG", 1), ("INFO", 2), ("Info", 2)] {
        let n = Nsqd::start(&[&format!("--log-level={flag}")]);
        assert_eq!(get_json(&n, "log_level"), json!(want), "--log-level={flag}");
    }
}

/// The reference answers string-typed options as raw text (the V1 responder writes Go strings
/// verbatim, without JSON quoting or a JSON content type).
#[test]
fn get_string_values() {
    let dir = tempfile::tempdir().unwrap();
    let n = Nsqd::start_in(
        dir.path(),
        &["--broadcast-address=my.host", "--statsd-prefix=pfx.%s"],
    );
    let port = n.http.port();
    let cases: Vec<(&str, String)> = vec![
        ("log_prefix", "[nsqd] ".to_string()),
        ("tcp_address", "127.0.0.1:0".to_string()),
        ("http_address", "127.0.0.1:0".to_string()),
        ("broadcast_address", "my.host".to_string()),
        ("data_path", dir.path().display().to_string()),
        ("auth_http_request_method", "get".to_string()),
        ("statsd_address", String::new()),
        ("topology_zone", String::new()),
        // rewritten at startup: %s -> <broadcast-address>_<broadcast-http-port> with . and : as _
        ("statsd_prefix", format!("pfx.my_host_{port}.")),
    ];
    for (opt, want) in cases {
        let r = httpx::get(&n, &format!("/config/{opt}"));
        assert_eq!(r.status, 200, "{opt}: {}", r.text());
        assert_eq!(
            r.header("X-NSQ-Content-Type"),
            Some(httpx::V1_HEADER),
            "{opt}"
        );
        assert_eq!(r.text(), want, "/config/{opt}");
    }
}

#[test]
fn statsd_prefix_default_is_expanded() {
    let n = Nsqd::start(&["--broadcast-address=a.b.c"]);
    let r = httpx::get(&n, "/config/statsd_prefix");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("nsq.a_b_c_{}.", n.http.port()));
}

#[test]
fn unknown_option_is_invalid_option() {
    let n = Nsqd::start(&[]);
    for opt in [
        "bogus",
        "max-msg-size",
        "MSG_TIMEOUT",
        "node_id",
        "lookupd_tcp_address",
        "e2e_processing_latency_percentile",
        "auth_http_address",
        "queue_scan_interval",
        "client_timeout",
        "config",
        "version",
    ] {
        assert_err(
            &httpx::get(&n, &format!("/config/{opt}")),
            400,
            "INVALID_OPTION",
        );
    }
}

#[test]
fn put_log_level_text_case_insensitive() {
    let n = Nsqd::start(&[]);
    for (body, want) in [
        ("debug", 1),
        ("WARN", 3),
        ("Error", 4),
        ("fatal", 5),
        ("info", 2),
    ] {
        let r = put(&n, "log_level", body.as_bytes());
        assert_eq!(assert_ok_json(&r), json!(want), "PUT log_level {body}");
        assert_eq!(get_json(&n, "log_level"), json!(want));
    }
}

#[test]
fn put_log_level_invalid_values() {
    let n = Nsqd::start(&["--max-msg-size=100"]);
    for body in ["verbose", "debug\n", " info", "3", "warning", "\"warn\""] {
        assert_err(&put(&n, "log_level", body.as_bytes()), 400, "INVALID_VALUE");
    }
    assert_err(&put(&n, "log_level", b""), 413, "INVALID_VALUE");
    assert_err(&put(&n, "log_level", &[b'a'; 101]), 413, "INVALID_VALUE");
    assert_err(&put(&n, "log_level", &[b'a'; 100]), 400, "INVALID_VALUE");
    // unchanged
    assert_eq!(get_json(&n, "log_level"), json!(2));
}

#[test]
fn put_log_level_changes_logging() {
    let n = Nsqd::start(&[]);
    assert_eq!(assert_ok_json(&put(&n, "log_level", b"error")), json!(4));
    assert_eq!(
        httpx::get(&n, "/ping?marker=hidden_while_error").status,
        200
    );
    assert_eq!(assert_ok_json(&put(&n, "log_level", b"info")), json!(2));
    assert_eq!(
        httpx::get(&n, "/ping?marker=visible_after_info").status,
        200
    );
    n.wait_for_log("marker=visible_after_info");
    assert!(
        !n.log_lines()
            .iter()
            .any(|l| l.contains("hidden_while_error")),
        "INFO access line logged while log_level=error"
    );
}

#[test]
fn put_nsqlookupd_tcp_addresses() {
    let n = Nsqd::start(&[]);
    let r = put(
        &n,
        "nsqlookupd_tcp_addresses",
        br#"["127.0.0.1:1","127.0.0.1:2"]"#,
    );
    assert_eq!(assert_ok_json(&r), json!(["127.0.0.1:1", "127.0.0.1:2"]));
    assert_eq!(
        get_json(&n, "nsqlookupd_tcp_addresses"),
        json!(["127.0.0.1:1", "127.0.0.1:2"])
    );
    let r = put(&n, "nsqlookupd_tcp_addresses", b"[]");
    assert_eq!(assert_ok_json(&r), json!([]));
    assert_eq!(get_json(&n, "nsqlookupd_tcp_addresses"), json!([]));
}

#[test]
fn put_nsqlookupd_tcp_addresses_bad_json() {
    let n = Nsqd::start(&[]);
    put(&n, "nsqlookupd_tcp_addresses", br#"["127.0.0.1:3"]"#);
    for body in [
        &b"not json"[..],
        b"[\"a\"",
        b"\"127.0.0.1:4\"",
        b"[1,2]",
        b"{}",
    ] {
        let r = put(&n, "nsqlookupd_tcp_addresses", body);
        assert_err(&r, 400, "INVALID_VALUE");
    }
    assert_err(
        &put(&n, "nsqlookupd_tcp_addresses", b""),
        413,
        "INVALID_VALUE",
    );
    assert_eq!(
        get_json(&n, "nsqlookupd_tcp_addresses"),
        json!(["127.0.0.1:3"]),
        "unchanged"
    );
}

#[test]
fn put_other_options_is_invalid_option() {
    let n = Nsqd::start(&[]);
    for opt in [
        "msg_timeout",
        "max_msg_size",
        "log_prefix",
        "bogus",
        "enable_experiment",
    ] {
        assert_err(&put(&n, opt, b"1"), 400, "INVALID_OPTION");
    }
    // the body is checked first
    assert_err(&put(&n, "bogus", b""), 413, "INVALID_VALUE");
    assert_eq!(get_json(&n, "msg_timeout"), json!(60_000_000_000i64));
}
