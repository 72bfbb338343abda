//! Process-level behaviour: flags, version line, config file, data-path lock, signals, exit
//! codes, and topic/channel metadata surviving a restart.

mod common;

use std::process::{Command, Stdio};

use common::{bin, Nsqd};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nsqd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_line_is_semver_and_go_shaped() {
    for flag in ["--version", "-version"] {
        let (code, out, _) = run(&[flag]);
        assert_eq!(code, 0);
        assert!(out.starts_with("nsqd v1.3.0 (built w/"), "{out:?}");
        assert!(out.ends_with(")\n"), "{out:?}");
    }
}

#[test]
fn help_exits_zero_with_usage() {
    let (code, _, err) = run(&["-h"]);
    assert_eq!(code, 0);
    assert!(err.contains("Usage of nsqd:"), "{err}");
    assert!(err.contains("-mem-queue-size"), "{err}");
}

#[test]
fn unknown_flag_and_bad_value_exit_two_naming_the_flag() {
    let (code, _, err) = run(&["--no-such-flag"]);
    assert_eq!(code, 2);
    assert_eq!(
        err.lines().next(),
        Some("flag provided but not defined: -no-such-flag")
    );
    let (code, _, err) = run(&["-mem-queue-size", "lots"]);
    assert_eq!(code, 2);
    assert!(
        err.lines().next().unwrap().contains("-mem-queue-size"),
        "{err}"
    );
    let (code, _, err) = run(&["--msg-timeout=5parsecs"]);
    assert_eq!(code, 2);
    assert!(
        err.lines().next().unwrap().contains("-msg-timeout"),
        "{err}"
    );
}

#[test]
fn invalid_option_values_are_fatal_with_exit_one() {
    let dir = tempfile::tempdir().unwrap();
    let dp = format!("--data-path={}", dir.path().display());
    let (code, _, err) = run(&[&dp, "--node-id=1024"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("FATAL: failed to instantiate nsqd - --node-id must be [0,1024)"),
        "{err}"
    );
    let (code, _, err) = run(&[&dp, "--max-deflate-level=10"]);
    assert_eq!(code, 1);
    assert!(err.contains("--max-deflate-level must be [1,9]"), "{err}");
}

#[test]
fn missing_data_path_is_fatal() {
    let (code, _, err) = run(&[
        "--data-path=/nonexistent/nsqd-data",
        "--tcp-address=127.0.0.1:0",
        "--http-address=127.0.0.1:0",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("failed to lock data-path"), "{err}");
}

#[test]
fn second_instance_on_same_data_path_refuses_to_start() {
    let first = Nsqd::start(&[]);
    let dp = format!("--data-path={}", first.data_path.display());
    let (code, _, err) = run(&[
        &dp,
        "--tcp-address=127.0.0.1:0",
        "--http-address=127.0.0.1:0",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("failed to lock data-path: cannot flock directory"),
        "{err}"
    );
    assert!(
        err.contains("possibly in use by another instance of nsqd"),
        "{err}"
    );
    // The first one is unaffected.
    assert_eq!(first.http_get("/ping").text(), "OK");
}

#[test]
fn listen_failure_is_fatal() {
    let first = Nsqd::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let dp = format!("--data-path={}", dir.path().display());
    let taken = format!("--tcp-address={}", first.tcp);
    let (code, _, err) = run(&[&dp, &taken, "--http-address=127.0.0.1:0"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("listen ({}) failed", first.tcp)),
        "{err}"
    );
}

#[test]
fn start_up_logs_the_version_line_and_node_id_first() {
    let n = Nsqd::start(&["--node-id=42"]);
    let lines = n.log_lines();
    let version = lines
        .iter()
        .position(|l| l.contains("INFO: nsqd v1.3.0 (built w/rustc"))
        .unwrap_or_else(|| panic!("no version line in {lines:#?}"));
    let id = lines
        .iter()
        .position(|l| l.ends_with("INFO: ID: 42"))
        .unwrap_or_else(|| panic!("no ID line in {lines:#?}"));
    let listen = lines
        .iter()
        .position(|l| l.contains("TCP: listening on"))
        .unwrap_or_else(|| panic!("no listen line in {lines:#?}"));
    assert!(version < id && id < listen, "{lines:#?}");
}

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    for sig in ["TERM", "INT"] {
        let mut n = Nsqd::start(&[]);
        n.signal(sig);
        let st = n.wait_exit();
        assert_eq!(st.code(), Some(0), "SIG{sig}");
        assert!(n.log_lines().iter().any(|l| l.contains("NSQ: bye")));
    }
}

#[test]
fn ports_can_be_rebound_right_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Nsqd::start_in(dir.path(), &[]);
    let (tcp, http) = (n.tcp, n.http);
    // Leave a connection in the kernel's tables so the port is busy without SO_REUSEADDR.
    let mut c = n.connect();
    c.publish("t", b"x");
    n.signal("KILL");
    n.wait_exit();
    let again = Nsqd::start_in(
        dir.path(),
        &[
            &format!("--tcp-address={tcp}"),
            &format!("--http-address={http}"),
        ],
    );
    assert_eq!(again.tcp, tcp);
    assert_eq!(again.http_get("/ping").text(), "OK");
}

#[test]
fn topics_channels_and_pauses_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let n = Nsqd::start_in(dir.path(), &[]);
    for path in [
        "/topic/create?topic=a",
        "/topic/create?topic=b",
        "/channel/create?topic=a&channel=c1",
        "/channel/create?topic=a&channel=c2",
        "/channel/create?topic=a&channel=e%23ephemeral",
        "/topic/create?topic=x%23ephemeral",
        "/topic/pause?topic=b",
        "/channel/pause?topic=a&channel=c2",
    ] {
        assert_eq!(n.http_post(path, b"").status, 200, "{path}");
    }
    assert_eq!(n.stop().code(), Some(0));
    let md: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("nsqd.dat")).unwrap()).unwrap();
    let raw = md.to_string();
    assert!(!raw.contains("ephemeral"), "{raw}");

    let n = Nsqd::start_in(dir.path(), &[]);
    let s = n.http_get("/stats?format=json").json();
    let topics = s["topics"].as_array().unwrap();
    let names: Vec<&str> = topics
        .iter()
        .map(|t| t["topic_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(topics[1]["paused"], true);
    let chans: Vec<(&str, bool)> = topics[0]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel_name"].as_str().unwrap(),
                c["paused"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(chans, vec![("c1", false), ("c2", true)]);
}

#[test]
fn legacy_and_invalid_metadata() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nsqd.dat"),
        r#"{"topics":[{"name":"ok","channels":[{"name":"bad name"},{"name":"good"}]},{"name":"bad/topic"}],"version":"1.2.1"}"#,
    )
    .unwrap();
    let n = Nsqd::start_in(dir.path(), &[]);
    n.wait_for_log("skipping creation of invalid topic bad/topic");
    let s = n.http_get("/stats?format=json").json();
    assert_eq!(s["topics"].as_array().unwrap().len(), 1);
    assert_eq!(s["topics"][0]["channels"][0]["channel_name"], "good");
    drop(n);

    // Unlike Go nsqd, a damaged nsqd.dat does not stop start-up: it is kept aside and the
    // store's topics are used (see tests/store_damage.rs).
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("nsqd.dat"), "{not json").unwrap();
    let n = Nsqd::start_in(bad.path(), &[]);
    n.wait_for_log("failed to parse metadata in");
    assert_eq!(n.http_get("/ping").text(), "OK");
}

#[test]
fn config_file_sets_options_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("nsqd.toml");
    std::fs::write(
        &cfg,
        "mem_queue_size = 1234\nmsg_timeout = \"30s\"\nmax_rdy_count = 50\nnsqlookupd_tcp_addresses = [\"127.0.0.1:1\"]\n",
    )
    .unwrap();
    let n = Nsqd::start(&[&format!("--config={}", cfg.display()), "--max-rdy-count=60"]);
    assert_eq!(
        n.http_get("/config/mem_queue_size").json(),
        serde_json::json!(1234)
    );
    assert_eq!(
        n.http_get("/config/msg_timeout").json(),
        serde_json::json!(30_000_000_000i64)
    );
    assert_eq!(
        n.http_get("/config/max_rdy_count").json(),
        serde_json::json!(60)
    );
    assert_eq!(
        n.http_get("/config/nsqlookupd_tcp_addresses").json(),
        serde_json::json!(["127.0.0.1:1"])
    );
    std::fs::write(&cfg, "mem_queue_size = [\n").unwrap();
    let (code, _, err) = run(&[&format!("--config={}", cfg.display())]);
    assert_eq!(code, 1);
    assert!(err.contains("failed to load config file"), "{err}");
}

#[test]
fn deprecated_flags_are_accepted_with_a_warning() {
    let n = Nsqd::start(&["--verbose", "--worker-id"]);
    n.wait_for_log("WARNING");
    assert_eq!(n.http_get("/ping").text(), "OK");
}

#[test]
fn go_style_flag_forms() {
    let n = Nsqd::start(&[
        "-max-rdy-count",
        "7",
        "--msg-timeout=1m30s",
        "-snappy=false",
    ]);
    assert_eq!(
        n.http_get("/config/max_rdy_count").json(),
        serde_json::json!(7)
    );
    assert_eq!(
        n.http_get("/config/msg_timeout").json(),
        serde_json::json!(90_000_000_000i64)
    );
    assert_eq!(
        n.http_get("/config/snappy").json(),
        serde_json::json!(false)
    );
}

#[test]
fn data_lives_in_working_directory_without_data_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let path = dir.path().join("nsqd.dat");
    common::eventually(|| path.exists().then_some(()));
    let _ = child.kill();
    let _ = child.wait();
}
