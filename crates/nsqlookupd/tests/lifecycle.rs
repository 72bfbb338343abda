//! The process: version, help, flag and config errors with their exit codes, listen failures,
//! the listen lines, and clean shutdown on SIGTERM/SIGINT with every connection closed.
mod common;

use std::io::Write as _;

use common::*;

#[test]
fn version_line() {
    let (code, out, _) = run_to_exit(&["--version"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("nsqlookupd v1.3.0 (built w/rustc"),
        "{out:?}"
    );
    assert!(out.ends_with(")\n"));
}

#[test]
fn help_exits_0_and_lists_every_flag() {
    let (code, out, err) = run_to_exit(&["-h"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.starts_with("Usage of nsqlookupd:\n"));
    for flag in [
        "-broadcast-address",
        "-config",
        "-http-address",
        "-inactive-producer-timeout",
        "-log-level",
        "-log-prefix",
        "-tcp-address",
        "-tombstone-lifetime",
        "-verbose",
        "-version",
    ] {
        assert!(
            err.contains(&format!("  {flag} ")) || err.contains(&format!("  {flag}\n")),
            "{flag}"
        );
    }
}

#[test]
fn flag_errors_exit_2() {
    let (code, _, err) = run_to_exit(&["--mem-queue-size=1"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("flag provided but not defined: -mem-queue-size\nUsage of nsqlookupd:"));
    let (code, _, err) = run_to_exit(&["--tombstone-lifetime=soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value \"soon\" for flag -tombstone-lifetime"));
}

#[test]
fn config_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookupd.cfg");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"log_level = \"loud\"\n")
        .unwrap();
    let (code, _, err) = run_to_exit(&[&format!("--config={}", path.display())]);
    assert_eq!(code, 1);
    assert!(err.starts_with("[nsqlookupd] "), "{err}");
    assert!(
        err.contains(" FATAL: failed parsing log_level loud"),
        "{err}"
    );
    let (code, _, err) = run_to_exit(&["--config=/nonexistent/lookupd.cfg"]);
    assert_eq!(code, 1);
    assert!(err.contains("FATAL: failed to load config file /nonexistent/lookupd.cfg - "));
}

#[test]
fn config_file_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookupd.cfg");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"broadcast_address = \"from-config\"\nlog_prefix = \"[cfg] \"\n")
        .unwrap();
    let l = Lookupd::start(&[&format!("--config={}", path.display())]);
    // The command line (--broadcast-address from the harness) beats the file.
    let mut c = l.connect();
    let reply = c.identify(identify_json("a", 1).as_bytes());
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(v["broadcast_address"], BCAST);
    assert!(l.wait_for_log("HTTP: listening on").starts_with("[cfg] "));
    // Without the flag the file's value is used.
    let l = Lookupd::start_with(&[
        "--tcp-address=127.0.0.1:0".into(),
        "--http-address=127.0.0.1:0".into(),
        format!("--config={}", path.display()),
    ]);
    let mut c = l.connect();
    let reply = c.identify(identify_json("a", 1).as_bytes());
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(v["broadcast_address"], "from-config");
}

#[test]
fn listen_failure_is_fatal() {
    let l = Lookupd::start(&[]);
    let taken = l.tcp.to_string();
    let (code, _, err) = run_to_exit(&[
        &format!("--tcp-address={taken}"),
        "--http-address=127.0.0.1:0",
    ]);
    // SO_REUSEADDR does not allow two listeners on one port.
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "FATAL: failed to instantiate nsqlookupd - listen ({taken}) failed - "
        )),
        "{err}"
    );
    let (code, _, err) = run_to_exit(&["--tcp-address=127.0.0.1:0", "--http-address=nonsense"]);
    assert_eq!(code, 1);
    assert!(err.contains("listen (nonsense) failed"), "{err}");
}

#[test]
fn listen_lines_show_real_ports_even_at_log_level_error() {
    let l = Lookupd::start(&["--log-level=error", "--verbose"]);
    assert_ne!(l.tcp.port(), 0);
    assert_ne!(l.http.port(), 0);
    l.connect().expect_ok("PING");
    assert_eq!(l.get("/ping").text(), "OK");
    let lines = l.log_lines();
    // INFO is off except for the listen lines; the deprecation warning is below ERROR too.
    assert!(lines.iter().all(|x| !x.contains("TCP: new client")));
    assert!(lines.iter().all(|x| !x.contains("--verbose")));
}

#[test]
fn sigterm_closes_connections_and_exits_0() {
    for sig in ["TERM", "INT"] {
        let mut l = Lookupd::start(&[]);
        let mut idle = l.connect();
        let mut nsqd = l.nsqd("a", 1);
        nsqd.expect_ok("REGISTER t");
        l.signal(sig);
        idle.expect_closed();
        nsqd.expect_closed();
        assert_eq!(l.wait_exit().code(), Some(0), "SIG{sig}");
        assert!(std::net::TcpStream::connect(l.tcp).is_err());
    }
}

#[test]
fn deprecated_verbose_warns() {
    let l = Lookupd::start(&["--verbose"]);
    let line = l.wait_for_log("--verbose");
    assert!(line.contains(" WARNING: "), "{line}");
    let line = l.wait_for_log("nsqlookupd v1.3.0");
    assert!(line.starts_with("[nsqlookupd] "), "{line}");
}
