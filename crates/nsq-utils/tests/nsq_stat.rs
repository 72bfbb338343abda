//! nsq_stat against real nsqd and nsqlookupd: the table, its sums over nodes, and every flag and
//! error path with Go's texts and exit codes.
mod common;

use std::io::{BufRead, BufReader};
use std::process::Command;

use common::*;

const HEADER1: &str =
    "------rate------+----------------depth----------------+--------------metadata---------------";
const HEADER2: &str =
    "ingress  egress |   total     mem    disk inflt   def |     req     t-o         msgs clients";

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn stat(v: &[String]) -> Output {
    run_util("nsq_stat", v, b"")
}

/// The stderr text after Go's `log` timestamp.
fn log_text(stderr: &str) -> String {
    stderr
        .lines()
        .map(|l| match l.get(..20) {
            Some(ts) if ts.as_bytes().get(4) == Some(&b'/') => l.get(20..).unwrap_or(""),
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn fatal(v: &[&str], expected: &str) {
    let out = stat(&args(v));
    assert_eq!(out.status, Some(1), "{v:?}: {}", out.stderr);
    assert_eq!(log_text(&out.stderr), expected, "{v:?}");
    assert!(out.stdout.is_empty());
}

fn usage_error(v: &[&str], first_line: &str) {
    let out = stat(&args(v));
    assert_eq!(out.status, Some(2), "{v:?}: {}", out.stderr);
    let mut lines = out.stderr.lines();
    assert_eq!(lines.next(), Some(first_line), "{v:?}");
    assert!(
        lines.next().unwrap_or("").starts_with("Usage of "),
        "{}",
        out.stderr
    );
}

#[test]
fn version_and_help() {
    let out = stat(&args(&["--version"]));
    assert_eq!(out.status, Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "nsq_stat v1.3.0\n");

    let out = stat(&args(&["-h"]));
    assert_eq!(out.status, Some(0));
    assert!(out.stdout.is_empty());
    for needle in [
        "  -count value\n    \tnumber of reports\n",
        "  -interval duration\n    \tduration of time between polling/printing output (default 2s)\n",
        "  -http-client-connect-timeout duration\n    \ttimeout for HTTP connect (default 2s)\n",
        "  -http-client-request-timeout duration\n    \ttimeout for HTTP request (default 5s)\n",
        "  -nsqd-http-address value\n",
        "  -lookupd-http-address value\n",
        "  -version\n    \tprint version\n",
    ] {
        assert!(out.stderr.contains(needle), "{needle:?} in {}", out.stderr);
    }
}

#[test]
fn required_and_invalid_flags() {
    fatal(&[], "--topic and --channel are required");
    fatal(&["--topic=t"], "--topic and --channel are required");
    fatal(&["--channel=c"], "--topic and --channel are required");
    fatal(
        &["--topic=t", "--channel=c"],
        "--nsqd-http-address or --lookupd-http-address required",
    );
    fatal(
        &["--topic=t", "--channel=c", "--interval=0"],
        "--interval should be positive",
    );
    fatal(
        &["--topic=t", "--channel=c", "--interval=-1s"],
        "--interval should be positive",
    );
    fatal(
        &[
            "--topic=t",
            "--channel=c",
            "--http-client-connect-timeout=0s",
        ],
        "--http-client-connect-timeout should be positive",
    );
    fatal(
        &[
            "--topic=t",
            "--channel=c",
            "--http-client-request-timeout=-5s",
        ],
        "--http-client-request-timeout should be positive",
    );
    fatal(
        &["--topic=t", "--channel=c", "--count=0"],
        "--count should be positive",
    );
    fatal(
        &["--topic=t", "--channel=c", "--count=-2"],
        "--count should be positive",
    );
    fatal(
        &[
            "--topic=t",
            "--channel=c",
            "--nsqd-http-address=127.0.0.1:1",
            "--lookupd-http-address=127.0.0.1:2",
        ],
        "use --nsqd-http-address or --lookupd-http-address not both",
    );
    fatal(
        &[
            "--topic=t",
            "--channel=c",
            "--nsqd-http-address=http://127.0.0.1:1",
        ],
        "--nsqd-http-address error - address should not contain scheme",
    );
    fatal(
        &[
            "--topic=t",
            "--channel=c",
            "--lookupd-http-address=https://x:1",
        ],
        "--lookupd-http-address error - address should not contain scheme",
    );
    usage_error(
        &["--count=x"],
        "invalid value \"x\" for flag -count: strconv.ParseInt: parsing \"x\": invalid syntax",
    );
    usage_error(
        &["--count=4294967296"],
        "invalid value \"4294967296\" for flag -count: strconv.ParseInt: parsing \"4294967296\": value out of range",
    );
    usage_error(
        &["--interval=3x"],
        "invalid value \"3x\" for flag -interval: parse error",
    );
    usage_error(&["--bogus"], "flag provided but not defined: -bogus");
    usage_error(&["--topic"], "flag needs an argument: -topic");
}

#[test]
fn unreachable_hosts_are_fatal() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    fatal(
        &["--topic=t", "--channel=c", &format!("--nsqd-http-address={addr}")],
        &format!(
            "ERROR: failed to get topic producers - failed to query any nsqd: Get \"http://{addr}/stats?format=json&topic=t&include_clients=false\": dial tcp {addr}: connect: connection refused"
        ),
    );
    fatal(
        &["--topic=t", "--channel=c", &format!("--lookupd-http-address={addr}")],
        &format!(
            "ERROR: failed to get topic producers - failed to query any nsqlookupd: Get \"http://{addr}/lookup?topic=t\": dial tcp {addr}: connect: connection refused"
        ),
    );
}

#[test]
fn one_unreachable_nsqd_among_several_is_fatal_too() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "t", Some("c"));
    let out = stat(&args(&[
        "--topic=t",
        "--channel=c",
        &format!("--nsqd-http-address={}", nsqd.http),
        "--nsqd-http-address=127.0.0.1:1",
        "--count=1",
        "--interval=50ms",
    ]));
    assert_eq!(out.status, Some(1));
    assert_eq!(
        log_text(&out.stderr),
        "ERROR: failed to get topic producers - Get \"http://127.0.0.1:1/stats?format=json&topic=t&include_clients=false\": dial tcp 127.0.0.1:1: connect: connection refused"
    );
}

#[test]
fn missing_topic_or_channel() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "t", Some("c"));
    let addr = format!("--nsqd-http-address={}", nsqd.http);
    fatal(
        &["--topic=t", "--channel=nope", &addr, "--interval=50ms"],
        "ERROR: failed to find channel(nope) in stats metadata for topic(t)",
    );
    fatal(
        &["--topic=nope", "--channel=c", &addr, "--interval=50ms"],
        "ERROR: failed to get nsqd stats - failed to query any nsqd: ",
    );
}

/// Checks the table shape: header, then `rows` rows with these counters.
fn check_table(stdout: &[u8], rows: usize, depth: u64, msgs: u64) {
    let text = String::from_utf8_lossy(stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + rows, "{text}");
    assert_eq!(lines[0], HEADER1);
    assert_eq!(lines[1], HEADER2);
    let expected = format!(
        "{:>7} {:>7} | {:>7} {:>7} {:>7} {:>5} {:>5} | {:>7} {:>7} {:>12} {:>7}",
        0, 0, depth, depth, 0, 0, 0, 0, 0, msgs, 0
    );
    for row in &lines[2..] {
        assert_eq!(*row, expected, "{text}");
    }
}

#[test]
fn count_rows_from_one_nsqd() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "t", Some("c"));
    publish(&nsqd, "t", &[b"a", b"b", b"c"]);
    let out = stat(&args(&[
        "--topic=t",
        "--channel=c",
        &format!("--nsqd-http-address={}", nsqd.http),
        "--count=3",
        "--interval=50ms",
    ]));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    check_table(&out.stdout, 3, 3, 3);
    assert_eq!(out.stderr, "");
}

#[test]
fn sums_over_nsqds_found_directly_and_through_lookupd() {
    let lookupd = start_lookupd();
    let a = start_nsqd(Some(&lookupd), &[]);
    let b = start_nsqd(Some(&lookupd), &[]);
    for n in [&a, &b] {
        create(n, "t", Some("c"));
    }
    publish(&a, "t", &[b"1", b"2"]);
    publish(&b, "t", &[b"3", b"4", b"5"]);
    let out = stat(&args(&[
        "--topic=t",
        "--channel=c",
        &format!("--nsqd-http-address={}", a.http),
        &format!("--nsqd-http-address={}", b.http),
        "--count=1",
        "--interval=50ms",
    ]));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    check_table(&out.stdout, 1, 5, 5);

    eventually(|| {
        let r = get(lookupd.http, "/lookup?topic=t");
        (r.status == 200 && r.json()["producers"].as_array()?.len() == 2).then_some(())
    });
    let out = stat(&args(&[
        "--topic=t",
        "--channel=c",
        &format!("--lookupd-http-address={}", lookupd.http),
        "--count=2",
        "--interval=50ms",
    ]));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    check_table(&out.stdout, 2, 5, 5);
}

#[test]
fn rates_follow_new_messages() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "t", Some("c"));
    let (mut child, _log) = spawn_util_piped(
        "nsq_stat",
        &args(&[
            "--topic=t",
            "--channel=c",
            &format!("--nsqd-http-address={}", nsqd.http),
            "--count=2",
            "--interval=1s",
        ]),
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), HEADER1);
    assert_eq!(lines.next().unwrap().unwrap(), HEADER2);
    // The baseline poll is done once the header is out; publish before the next one.
    let bodies: Vec<Vec<u8>> = (0..10).map(|i| format!("m{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    publish(&nsqd, "t", &refs);
    let row = lines.next().unwrap().unwrap();
    // Ten in, none out during one second.
    assert!(
        row.starts_with("     10       0 |      10      10       0"),
        "{row}"
    );
    assert!(row.ends_with("          10       0"), "{row}");
    let row = lines.next().unwrap().unwrap();
    assert!(row.starts_with("      0       0 |      10"), "{row}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn sigterm_ends_an_endless_run_cleanly() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "t", Some("c"));
    for sig in ["-TERM", "-INT", "-HUP"] {
        let (mut child, _log) = spawn_util_piped(
            "nsq_stat",
            &args(&[
                "--topic=t",
                "--channel=c",
                &format!("--nsqd-http-address={}", nsqd.http),
                "--interval=20ms",
            ]),
        );
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait for a few rows: the loop is running.
        for _ in 0..5 {
            lines.next().unwrap().unwrap();
        }
        let st = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(child.wait().unwrap().code(), Some(0), "{sig}");
    }
}
