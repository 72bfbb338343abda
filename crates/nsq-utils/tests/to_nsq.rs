//! to_nsq against real nsqd: records split as Go splits them, every address published to,
//! `--rate`, signals, and every flag and error path with Go's texts and exit codes.
mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn log_text(stderr: &str) -> String {
    stderr
        .lines()
        .map(|l| match l.get(..20) {
            Some(ts) if ts.as_bytes().get(4) == Some(&b'/') => l.get(20..).unwrap_or(""),
            _ => l,
        })
        // The client library's own INF/ERR lines are not part of to_nsq's contract.
        .filter(|l| !l.starts_with("INF ") && !l.starts_with("ERR ") && !l.starts_with("WRN "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn fatal(v: &[String], stdin: &[u8], expected: &str) {
    let out = run_util("to_nsq", v, stdin);
    assert_eq!(out.status, Some(1), "{v:?}: {}", out.stderr);
    assert_eq!(log_text(&out.stderr), expected, "{v:?}");
}

fn usage_error(v: &[&str], first_line: &str) {
    let out = run_util("to_nsq", &args(v), b"");
    assert_eq!(out.status, Some(2), "{v:?}: {}", out.stderr);
    let mut lines = out.stderr.lines();
    assert_eq!(lines.next(), Some(first_line), "{v:?}");
    assert!(lines.next().unwrap_or("").starts_with("Usage of "));
}

/// Reads every message of `topic` on `nsqd` through a fresh channel created beforehand.
fn bodies(nsqd: &Daemon, topic: &str, channel: &str) -> Vec<Vec<u8>> {
    let depth = channel_stats(nsqd, topic, channel)
        .map(|c| c["depth"].as_u64().unwrap())
        .unwrap_or(0);
    if depth == 0 {
        return Vec::new();
    }
    // nsq_tail is exercised elsewhere; here a raw TCP reader keeps this test independent of it.
    let mut s = std::net::TcpStream::connect(nsqd.tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"  V2").unwrap();
    s.write_all(format!("SUB {topic} {channel}\nRDY 1000\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < depth {
        let (kind, data) = read_frame(&mut s);
        if kind == 2 {
            let id = &data[10..26];
            out.push(data[26..].to_vec());
            s.write_all(&[b"FIN ", id, b"\n"].concat()).unwrap();
        } else if kind == 0 && data == b"_heartbeat_" {
            s.write_all(b"NOP\n").unwrap();
        } else if kind == 1 {
            panic!("error frame {}", String::from_utf8_lossy(&data));
        }
    }
    out
}

fn read_frame(s: &mut std::net::TcpStream) -> (i32, Vec<u8>) {
    use std::io::Read;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    let kind = i32::from_be_bytes(buf[..4].try_into().unwrap());
    (kind, buf[4..].to_vec())
}

fn publish_through(nsqd: &Daemon, topic: &str, extra: &[&str], stdin: &[u8]) -> Output {
    create(nsqd, topic, Some("check"));
    let mut a = vec![
        format!("--topic={topic}"),
        format!("--nsqd-tcp-address={}", nsqd.tcp),
    ];
    a.extend(args(extra));
    run_util("to_nsq", &a, stdin)
}

fn strs(v: &[Vec<u8>]) -> Vec<String> {
    v.iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

#[test]
fn help_has_gos_flags_and_no_version() {
    let out = run_util("to_nsq", &args(&["-h"]), b"");
    assert_eq!(out.status, Some(0));
    for needle in [
        "  -delimiter string\n    \tcharacter to split input from stdin (default \"\\n\")\n",
        "  -nsqd-tcp-address value\n    \tdestination nsqd TCP address (may be given multiple times)\n",
        "  -producer-opt value\n",
        "  -rate int\n    \tThrottle messages to n/second. 0 to disable\n",
        "  -topic string\n    \tNSQ topic to publish to\n",
    ] {
        assert!(out.stderr.contains(needle), "{needle:?} in {}", out.stderr);
    }
    assert!(!out.stderr.contains("-version"));
    usage_error(&["--version"], "flag provided but not defined: -version");
}

#[test]
fn flag_errors() {
    fatal(&[], b"", "--topic required");
    fatal(
        &args(&["--nsqd-tcp-address=127.0.0.1:1"]),
        b"",
        "--topic required",
    );
    fatal(&args(&["--topic=t"]), b"a\n", "--nsqd-tcp-address required");
    for d in ["--delimiter=ab", "--delimiter=", "--delimiter=é"] {
        fatal(
            &args(&["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", d]),
            b"",
            "--delimiter must be a single byte",
        );
    }
    usage_error(
        &["--rate=x"],
        "invalid value \"x\" for flag -rate: parse error",
    );
    usage_error(&["--bogus"], "flag provided but not defined: -bogus");
    usage_error(
        &["--producer-opt=bogus,1"],
        "invalid value \"bogus,1\" for flag -producer-opt: invalid option bogus",
    );
    let out = run_util("to_nsq", &args(&["--producer-opt=max_attempts"]), b"");
    assert_eq!(out.status, Some(2));
    assert!(
        out.stderr
            .starts_with("invalid value \"max_attempts\" for flag -producer-opt: "),
        "{}",
        out.stderr
    );
}

#[test]
fn records_split_like_go() {
    let nsqd = start_nsqd(None, &[]);
    let out = publish_through(&nsqd, "lines", &[], b"one\ntwo\n\n\nthree\r\nfour");
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    // Empty records are skipped; the final record without a delimiter loses its last byte.
    assert_eq!(
        strs(&bodies(&nsqd, "lines", "check")),
        ["one", "two", "three\r", "fou"]
    );

    let out = publish_through(&nsqd, "commas", &["--delimiter=,"], b"a,b\nc,,d,");
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(strs(&bodies(&nsqd, "commas", "check")), ["a", "b\nc", "d"]);

    let out = publish_through(&nsqd, "nothing", &[], b"");
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(bodies(&nsqd, "nothing", "check").is_empty());
}

#[test]
fn every_address_gets_every_record_once() {
    let a = start_nsqd(None, &[]);
    let b = start_nsqd(None, &[]);
    create(&a, "t", Some("check"));
    create(&b, "t", Some("check"));
    let out = run_util(
        "to_nsq",
        &args(&[
            "--topic=t",
            &format!("--nsqd-tcp-address={}", a.tcp),
            &format!("--nsqd-tcp-address={}", b.tcp),
            &format!("--nsqd-tcp-address={}", a.tcp),
        ]),
        b"x\ny\n",
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    // The repeated address is one producer, as in Go.
    assert_eq!(strs(&bodies(&a, "t", "check")), ["x", "y"]);
    assert_eq!(strs(&bodies(&b, "t", "check")), ["x", "y"]);
}

#[test]
fn rate_throttles() {
    let nsqd = start_nsqd(None, &[]);
    let start = Instant::now();
    let out = publish_through(&nsqd, "slow", &["--rate=10"], b"1\n2\n3\n4\n5\n6\n");
    let took = start.elapsed();
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(
        log_text(&out.stderr).contains("Throttling messages rate to max:10/second"),
        "{}",
        out.stderr
    );
    // One free read, then six more (five records and the end) at 100 ms each.
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert_eq!(bodies(&nsqd, "slow", "check").len(), 6);
}

#[test]
fn failures_are_fatal_with_gos_texts() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    fatal(
        &args(&["--topic=t", &format!("--nsqd-tcp-address={addr}")]),
        b"a\n",
        &format!("dial tcp {addr}: connect: connection refused"),
    );
    // Nothing to publish: nothing connects, so nothing fails.
    let out = run_util(
        "to_nsq",
        &args(&["--topic=t", &format!("--nsqd-tcp-address={addr}")]),
        b"",
    );
    assert_eq!(out.status, Some(0));

    let nsqd = start_nsqd(None, &["--max-msg-size=10"]);
    let out = publish_through(&nsqd, "big", &[], b"ok\n0123456789abc\nafter\n");
    assert_eq!(out.status, Some(1));
    assert_eq!(
        log_text(&out.stderr),
        "E_BAD_MESSAGE PUB message too big 13 > 10"
    );
    assert_eq!(strs(&bodies(&nsqd, "big", "check")), ["ok"]);

    let out = run_util(
        "to_nsq",
        &args(&["--topic=bad!", &format!("--nsqd-tcp-address={}", nsqd.tcp)]),
        b"a\n",
    );
    assert_eq!(out.status, Some(1));
    assert_eq!(
        log_text(&out.stderr),
        "E_BAD_TOPIC PUB topic name \"bad!\" is not valid"
    );

    let out = publish_through(
        &nsqd,
        "t",
        &["--producer-opt=snappy", "--producer-opt=deflate"],
        b"a\n",
    );
    assert_eq!(out.status, Some(1));
    assert_eq!(
        log_text(&out.stderr),
        "failed to IDENTIFY - E_IDENTIFY_FAILED cannot enable both deflate and snappy compression"
    );
}

/// Feeds records one at a time and waits until each is on nsqd.
fn feed_and_wait(
    child: &mut std::process::Child,
    nsqd: &Daemon,
    topic: &str,
    from: usize,
    to: usize,
) {
    let stdin = child.stdin.as_mut().unwrap();
    for i in from..to {
        stdin.write_all(format!("m{i}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        eventually(|| {
            let c = channel_stats(nsqd, topic, "check")?;
            (c["message_count"] == (i + 1) as u64).then_some(())
        });
    }
}

#[test]
fn signals_stop_it_with_stdin_still_open() {
    let nsqd = start_nsqd(None, &[]);
    for (sig, topic) in [("-TERM", "term"), ("-INT", "int")] {
        create(&nsqd, topic, Some("check"));
        let (mut child, _log) = spawn_util_piped(
            "to_nsq",
            &args(&[
                &format!("--topic={topic}"),
                &format!("--nsqd-tcp-address={}", nsqd.tcp),
            ]),
        );
        feed_and_wait(&mut child, &nsqd, topic, 0, 3);
        let st = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(child.wait().unwrap().code(), Some(0), "{sig}");
        assert_eq!(strs(&bodies(&nsqd, topic, "check")), ["m0", "m1", "m2"]);
    }
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    let nsqd = start_nsqd(None, &[]);
    create(&nsqd, "k", Some("check"));
    let (mut child, _log) = spawn_util_piped(
        "to_nsq",
        &args(&["--topic=k", &format!("--nsqd-tcp-address={}", nsqd.tcp)]),
    );
    feed_and_wait(&mut child, &nsqd, "k", 0, 20);
    // Write more without waiting, then kill: what reached nsqd is a prefix of the input, once.
    {
        let stdin = child.stdin.as_mut().unwrap();
        for i in 20..200 {
            stdin.write_all(format!("m{i}\n").as_bytes()).unwrap();
        }
        stdin.flush().unwrap();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let got = strs(&bodies(&nsqd, "k", "check"));
    assert!(got.len() >= 20, "{}", got.len());
    let expected: Vec<String> = (0..got.len()).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected);
}
