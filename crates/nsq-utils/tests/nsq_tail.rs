//! nsq_tail against real nsqd and nsqlookupd: output lines, `-n` per topic, `--print-topic`,
//! the default ephemeral channel, signals, and every flag and error path with Go's texts.
mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Command;

use common::*;

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn tail(v: &[String]) -> Output {
    run_util("nsq_tail", v, b"")
}

/// Go `log` lines without timestamps and without the client library's INF/WRN/ERR chatter.
fn log_text(stderr: &str) -> String {
    stderr
        .lines()
        .map(|l| match l.get(..20) {
            Some(ts) if ts.as_bytes().get(4) == Some(&b'/') => l.get(20..).unwrap_or(""),
            _ => l,
        })
        .filter(|l| !l.starts_with("INF ") && !l.starts_with("ERR ") && !l.starts_with("WRN "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn fatal(v: &[&str], expected: &str) {
    let out = tail(&args(v));
    assert_eq!(out.status, Some(1), "{v:?}: {}", out.stderr);
    assert_eq!(log_text(&out.stderr), expected, "{v:?}");
}

fn usage_error(v: &[&str], first_line: &str) {
    let out = tail(&args(v));
    assert_eq!(out.status, Some(2), "{v:?}: {}", out.stderr);
    let mut lines = out.stderr.lines();
    assert_eq!(lines.next(), Some(first_line), "{v:?}");
    assert!(lines.next().unwrap_or("").starts_with("Usage of "));
}

fn kill(child: &std::process::Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn version_and_help() {
    let out = tail(&args(&["--version"]));
    assert_eq!(out.status, Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "nsq_tail v1.3.0\n");
    let out = tail(&args(&["-h"]));
    assert_eq!(out.status, Some(0));
    for needle in [
        "  -channel string\n    \tNSQ channel\n",
        "  -max-in-flight int\n    \tmax number of messages to allow in flight (default 200)\n",
        "  -n int\n    \ttotal messages to show (will wait if starved)\n",
        "  -print-topic\n    \tprint topic name where message was received\n",
        "  -topic value\n    \tNSQ topic (may be given multiple times)\n",
        "  -consumer-opt value\n",
        "  -version\n    \tprint version string\n",
    ] {
        assert!(out.stderr.contains(needle), "{needle:?} in {}", out.stderr);
    }
}

#[test]
fn flag_errors() {
    fatal(&[], "--nsqd-tcp-address or --lookupd-http-address required");
    fatal(
        &["--topic=t"],
        "--nsqd-tcp-address or --lookupd-http-address required",
    );
    fatal(
        &[
            "--topic=t",
            "--nsqd-tcp-address=127.0.0.1:1",
            "--lookupd-http-address=127.0.0.1:2",
        ],
        "use --nsqd-tcp-address or --lookupd-http-address not both",
    );
    fatal(&["--nsqd-tcp-address=127.0.0.1:1"], "--topic required");
    fatal(&["--lookupd-http-address=127.0.0.1:1"], "--topic required");
    fatal(
        &["--topic=a b", "--nsqd-tcp-address=127.0.0.1:1"],
        "Adding consumer for topic: a b\ninvalid topic name",
    );
    fatal(
        &[
            "--topic=t",
            "--channel=x y",
            "--nsqd-tcp-address=127.0.0.1:1",
        ],
        "Adding consumer for topic: t\ninvalid channel name",
    );
    fatal(
        &[
            "--topic=t",
            "--max-in-flight=-1",
            "--nsqd-tcp-address=127.0.0.1:1",
        ],
        "Adding consumer for topic: t\ninvalid MaxInFlight ! -1 < 0",
    );
    usage_error(&["-n=x"], "invalid value \"x\" for flag -n: parse error");
    usage_error(&["--bogus"], "flag provided but not defined: -bogus");
    usage_error(
        &["--consumer-opt=nope"],
        "invalid value \"nope\" for flag -consumer-opt: invalid option nope",
    );
    // Flags are parsed (and options applied) before --version is looked at.
    usage_error(
        &["--version", "--consumer-opt=nope,1"],
        "invalid value \"nope,1\" for flag -consumer-opt: invalid option nope",
    );
}

#[test]
fn unreachable_nsqd_is_fatal() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    fatal(
        &["--topic=t", &format!("--nsqd-tcp-address={addr}")],
        &format!("Adding consumer for topic: t\ndial tcp {addr}: connect: connection refused"),
    );
}

#[test]
fn n_counts_and_exits_before_finishing_the_last() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "t", Some("c"));
    publish(&nsqd, "t", &[b"m0", b"m1", b"m2", b"m3", b"m4"]);
    let out = tail(&args(&[
        "--topic=t",
        "--channel=c",
        &format!("--nsqd-tcp-address={}", nsqd.tcp),
        "-n=3",
    ]));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "m0\nm1\nm2\n");
    // m0 and m1 were finished; m2 (the third) was not, and -n 3 capped max-in-flight at 3.
    eventually(|| {
        let c = channel_stats(&nsqd, "t", "c")?;
        (c["client_count"] == 0).then_some(())
    });
    let c = channel_stats(&nsqd, "t", "c").unwrap();
    let left = c["depth"].as_u64().unwrap() + c["in_flight_count"].as_u64().unwrap();
    assert_eq!(left, 3, "{c}");
    assert!(c["in_flight_count"].as_u64().unwrap() <= 3, "{c}");
}

#[test]
fn print_topic_and_n_per_topic() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "a", Some("c"));
    create(&nsqd, "b", Some("c"));
    publish(&nsqd, "a", &[b"a0", b"a1", b"a2"]);
    let out = tail(&args(&[
        "--topic=a",
        "--topic=b",
        "--channel=c",
        &format!("--nsqd-tcp-address={}", nsqd.tcp),
        "-n=2",
        "--print-topic",
    ]));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    // Topic b shows nothing, so only topic a's count can reach 2.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a | a0\na | a1\n");
    let text = log_text(&out.stderr);
    assert!(
        text.starts_with("Adding consumer for topic: a\nAdding consumer for topic: b"),
        "{text}"
    );
}

#[test]
fn default_channel_is_ephemeral_and_lookupd_discovery_works() {
    let lookupd = start_lookupd();
    let nsqd = start_nsqd(Some(&lookupd), &[]);
    create(&nsqd, "t", None);
    eventually(|| {
        let r = get(lookupd.http, "/lookup?topic=t");
        (r.status == 200 && !r.json()["producers"].as_array()?.is_empty()).then_some(())
    });
    let (mut child, log) = spawn_util_piped(
        "nsq_tail",
        &args(&[
            "--topic=t",
            &format!("--lookupd-http-address={}", lookupd.http),
        ]),
    );
    // The ephemeral channel appears once nsq_tail subscribes.
    let channel = eventually(|| {
        let t = topic_stats(&nsqd, "t")?;
        let c = t["channels"].as_array()?.first()?.clone();
        (c["client_count"] == 1).then(|| c["channel_name"].as_str().unwrap().to_string())
    });
    assert!(
        channel.starts_with("tail") && channel.ends_with("#ephemeral") && channel.len() == 20,
        "{channel}"
    );
    publish(&nsqd, "t", &[b"hello", b"world"]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "hello");
    assert_eq!(lines.next().unwrap().unwrap(), "world");
    wait_channel_settled(&nsqd, "t", &channel, 0);
    kill(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    log.wait_for("Adding consumer for topic: t");
    // The ephemeral channel goes away with its last client.
    eventually(|| channel_stats(&nsqd, "t", &channel).is_none().then_some(()));
}

#[test]
fn sigint_stops_every_consumer_and_nothing_printed_is_left() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "a", Some("c"));
    create(&nsqd, "b", Some("c"));
    let (mut child, _log) = spawn_util_piped(
        "nsq_tail",
        &args(&[
            "--topic=a",
            "--topic=b",
            "--channel=c",
            &format!("--nsqd-tcp-address={}", nsqd.tcp),
        ]),
    );
    for t in ["a", "b"] {
        eventually(|| (channel_stats(&nsqd, t, "c")?["client_count"] == 1).then_some(()));
    }
    publish(&nsqd, "a", &[b"a0", b"a1"]);
    publish(&nsqd, "b", &[b"b0"]);
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 64];
    while seen.iter().filter(|&&b| b == b'\n').count() < 3 {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    let mut lines: Vec<String> = String::from_utf8(seen)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["a0", "a1", "b0"]);
    wait_channel_settled(&nsqd, "a", "c", 0);
    wait_channel_settled(&nsqd, "b", "c", 0);
    kill(&child, "-INT");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    for t in ["a", "b"] {
        eventually(|| (channel_stats(&nsqd, t, "c")?["client_count"] == 0).then_some(()));
    }
}

#[test]
fn sigkill_loses_nothing() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "k", Some("c"));
    let bodies: Vec<Vec<u8>> = (0..200).map(|i| format!("m{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    publish(&nsqd, "k", &refs);
    let (mut child, _log) = spawn_util_piped(
        "nsq_tail",
        &args(&[
            "--topic=k",
            "--channel=c",
            "--max-in-flight=5",
            &format!("--nsqd-tcp-address={}", nsqd.tcp),
        ]),
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = 0u64;
    for _ in 0..50 {
        lines.next().unwrap().unwrap();
        printed += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Whatever was read from the pipe was printed; anything finished must have been printed.
    let rest: u64 = lines.map_while(Result::ok).count() as u64;
    printed += rest;
    eventually(|| (channel_stats(&nsqd, "k", "c")?["client_count"] == 0).then_some(()));
    let c = channel_stats(&nsqd, "k", "c").unwrap();
    let on_nsqd = c["depth"].as_u64().unwrap() + c["in_flight_count"].as_u64().unwrap();
    assert!(
        printed + on_nsqd >= 200,
        "printed {printed}, left {on_nsqd}"
    );
}
