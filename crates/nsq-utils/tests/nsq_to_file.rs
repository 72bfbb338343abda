//! nsq_to_file against our nsqd (and nsqlookupd): real files in temporary directories, signals,
//! and a SIGKILL in the middle of a run.
mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command};

use common::*;

/// A running utility, killed if the test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn start(args: &[String]) -> (Running, ProcessLog) {
    let (child, log) = spawn_util("nsq_to_file", args);
    (Running(child), log)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits for the child to exit and returns its exit code.
fn wait_exit(child: &mut Child) -> Option<i32> {
    eventually(|| child.try_wait().expect("try_wait")).code()
}

/// Every file under `dir` (relative path) with its decoded text, sorted by path.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let raw = std::fs::read(&p).unwrap();
            let text = if p.extension().is_some_and(|x| x == "gz") {
                // A file still being written ends in an unfinished gzip member: keep what
                // decodes.
                let mut plain = Vec::new();
                let _ = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut plain);
                String::from_utf8_lossy(&plain).into_owned()
            } else if p.extension().is_some_and(|x| x == "zst") {
                // Likewise a zstd file ends in an unfinished frame until its next sync.
                let mut plain = Vec::new();
                if let Ok(mut d) = zstd::stream::read::Decoder::new(&raw[..]) {
                    let _ = d.read_to_end(&mut plain);
                }
                String::from_utf8_lossy(&plain).into_owned()
            } else {
                String::from_utf8_lossy(&raw).into_owned()
            };
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            out.push((rel, text));
        }
    }
    out.sort();
    out
}

/// The complete (newline-terminated) lines of every file under `dir`.
fn all_lines(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .flat_map(|(_, t)| {
            let mut parts: Vec<String> = t.split('\n').map(str::to_string).collect();
            parts.pop();
            parts
        })
        .collect()
}

fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
}

fn publish_all(nsqd: &Daemon, topic: &str, bodies: &[String]) {
    // MPUB in chunks keeps large runs quick.
    for chunk in bodies.chunks(500) {
        let r = post(
            nsqd.http,
            &format!("/mpub?topic={topic}"),
            chunk.join("\n").as_bytes(),
        );
        assert_eq!(r.status, 200, "mpub: {}", r.text());
    }
}

fn base_args(nsqd: &Daemon, topic: &str, out: &Path) -> Vec<String> {
    vec![
        format!("--topic={topic}"),
        format!("--nsqd-tcp-address={}", nsqd.tcp),
        format!("--output-dir={}", out.display()),
        "--host-identifier=H".into(),
        "--datetime-format=D".into(),
    ]
}

#[test]
fn bad_flags_fail_like_nsq() {
    let out = run_util("nsq_to_file", &s(&["--bogus"]), b"");
    assert_eq!(out.status, Some(2));
    assert!(out
        .stderr
        .starts_with("flag provided but not defined: -bogus\nUsage of nsqd:\n"));

    let cases: &[(&[&str], &str)] = &[
        (
            &[],
            "--nsqd-tcp-address or --lookupd-http-address required.",
        ),
        (
            &["--topic=t", "--nsqd-tcp-address=a", "extra"],
            "unknown arguments: [extra]",
        ),
        (
            &["--topic=t", "--nsqd-tcp-address=a", "--gzip-level=0"],
            "invalid --gzip-level value (0), should be 1-9",
        ),
        (
            &["--topic=t", "--nsqd-tcp-address=a", "--zstd-level=20"],
            "invalid --zstd-level value (20), should be 1-19",
        ),
        (
            &["--topic=t", "--nsqd-tcp-address=a", "--zstd", "--gzip"],
            "--gzip and --zstd are mutually exclusive",
        ),
        (
            &["--nsqd-tcp-address=a"],
            "--topic or --topic-pattern required",
        ),
        (
            &["--nsqd-tcp-address=a", "--topic-pattern=x"],
            "--lookupd-http-address must be specified when no --topic specified",
        ),
    ];
    for (args, want) in cases {
        let out = run_util("nsq_to_file", &s(args), b"");
        assert_eq!(out.status, Some(1), "{args:?}: {}", out.stderr);
        let line = out.stderr.lines().next().unwrap_or_default();
        // `2024/01/02 15:04:05 <message>`
        assert_eq!(line.get(20..), Some(*want), "{args:?}: {}", out.stderr);
    }

    let out = run_util("nsq_to_file", &s(&["--version"]), b"");
    assert_eq!(out.status, Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "nsq_to_file v1.3.0\n");
    let out = run_util("nsq_to_file", &s(&["-h"]), b"");
    assert_eq!(out.status, Some(0));
    assert!(out.stderr.contains("  -work-dir string\n"));
}

#[test]
fn archives_a_topic_and_stops_cleanly_on_sigterm() {
    let nsqd = start_nsqd(None, &[]);
    let out = tempfile::tempdir().unwrap();
    let want = bodies("m", 300);
    publish_all(&nsqd, "arch", &want);
    let mut args = base_args(&nsqd, "arch", out.path());
    args.push("--sync-interval=200ms".into());
    let (mut child, log) = start(&args);
    log.wait_for("opening");
    eventually(|| (all_lines(out.path()).len() == 300).then_some(()));
    wait_channel_settled(&nsqd, "arch", "nsq_to_file", 0);
    signal(&child, "TERM");
    assert_eq!(wait_exit(&mut child), Some(0));
    assert_eq!(
        files(out.path()),
        vec![("arch.H.D.log".to_string(), want.join("\n") + "\n")]
    );
    wait_channel_settled(&nsqd, "arch", "nsq_to_file", 0);
}

#[test]
fn gzip_with_rotation_by_size_decodes_to_every_message_in_order() {
    let nsqd = start_nsqd(None, &[]);
    let out = tempfile::tempdir().unwrap();
    let want = bodies("g", 400);
    publish_all(&nsqd, "gz", &want);
    let mut args = base_args(&nsqd, "gz", out.path());
    args.extend(s(&["--gzip", "--rotate-size=1000", "--max-in-flight=1"]));
    let (mut child, _log) = start(&args);
    eventually(|| (all_lines(out.path()).len() == 400).then_some(()));
    signal(&child, "INT");
    assert_eq!(wait_exit(&mut child), Some(0));
    let got = files(out.path());
    // 8-byte lines, rotated once past 1000 bytes: 126 lines a file.
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "gz.H-000000.D.log.gz",
            "gz.H-000001.D.log.gz",
            "gz.H-000002.D.log.gz",
            "gz.H-000003.D.log.gz"
        ]
    );
    assert_eq!(got[0].1.lines().count(), 126);
    assert_eq!(all_lines(out.path()), want);
    wait_channel_settled(&nsqd, "gz", "nsq_to_file", 0);
}

#[test]
fn zstd_with_rotation_by_size_decodes_to_every_message_in_order() {
    let nsqd = start_nsqd(None, &[]);
    let out = tempfile::tempdir().unwrap();
    let want = bodies("z", 400);
    publish_all(&nsqd, "zs", &want);
    let mut args = base_args(&nsqd, "zs", out.path());
    args.extend(s(&[
        "--zstd",
        "--zstd-level=19",
        "--rotate-size=1000",
        "--max-in-flight=1",
    ]));
    let (mut child, _log) = start(&args);
    eventually(|| (all_lines(out.path()).len() == 400).then_some(()));
    signal(&child, "INT");
    assert_eq!(wait_exit(&mut child), Some(0));
    let got = files(out.path());
    // Rotation counts uncompressed bytes, as for gzip: 126 8-byte lines a file.
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "zs.H-000000.D.log.zst",
            "zs.H-000001.D.log.zst",
            "zs.H-000002.D.log.zst",
            "zs.H-000003.D.log.zst"
        ]
    );
    assert_eq!(got[0].1.lines().count(), 126);
    // Closed files decode in full, with no cut-off frame at the end.
    for (name, _) in &got {
        let raw = std::fs::read(out.path().join(name)).unwrap();
        let text = zstd::stream::decode_all(&raw[..]).unwrap();
        assert!(text.ends_with(b"\n"), "{name}");
    }
    assert_eq!(all_lines(out.path()), want);
    wait_channel_settled(&nsqd, "zs", "nsq_to_file", 0);
}

#[test]
fn zstd_names_need_rev_as_gzip_names_do() {
    let nsqd = start_nsqd(None, &[]);
    let out = tempfile::tempdir().unwrap();
    let mut args = base_args(&nsqd, "norev", out.path());
    args.extend(s(&["--zstd", "--filename-format=<TOPIC>.log"]));
    // As with gzip, the topic is refused and the process keeps running.
    let (_child, log) = start(&args);
    log.wait_for(
        "couldn't create logger for new topic norev: missing <REV> in --filename-format when zstd, rotation, or work dir enabled",
    );
}

#[test]
fn work_dir_files_are_moved_to_the_output_dir_when_closed() {
    let nsqd = start_nsqd(None, &[]);
    let out = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // rev 0 is already taken in the output directory.
    std::fs::write(out.path().join("w.H-000000.D.log"), "old\n").unwrap();
    publish_all(&nsqd, "w", &bodies("w", 10));
    let mut args = base_args(&nsqd, "w", out.path());
    args.push(format!("--work-dir={}", work.path().display()));
    args.push("--sync-interval=100ms".into());
    let (mut child, log) = start(&args);
    log.wait_for("output file already exists");
    eventually(|| (all_lines(work.path()).len() == 10).then_some(()));
    assert_eq!(files(out.path()).len(), 1);

    // SIGHUP closes (and so moves) the file; the next message opens the next revision.
    signal(&child, "HUP");
    log.wait_for("moving finished file");
    publish_all(&nsqd, "w", &bodies("x", 1));
    eventually(|| (all_lines(work.path()).len() == 1).then_some(()));
    signal(&child, "TERM");
    assert_eq!(wait_exit(&mut child), Some(0));
    assert!(files(work.path()).is_empty());
    let got = files(out.path());
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec!["w.H-000000.D.log", "w.H-000001.D.log", "w.H-000002.D.log"]
    );
    assert_eq!(got[1].1, bodies("w", 10).join("\n") + "\n");
    assert_eq!(got[2].1, "x-00000\n");
}

#[test]
fn topic_pattern_discovers_topics_on_two_nsqd_through_lookupd() {
    let lookupd = start_lookupd();
    let nsqd1 = start_nsqd(Some(&lookupd), &[]);
    let nsqd2 = start_nsqd(Some(&lookupd), &[]);
    publish(&nsqd1, "app_one", &[b"one"]);
    publish(&nsqd2, "app_two", &[b"two"]);
    publish(&nsqd1, "other", &[b"nope"]);
    // Both nsqd have registered their topics with lookupd.
    eventually(|| {
        let r = get(lookupd.http, "/topics");
        let t = r.json()["topics"].as_array()?.len();
        (t == 3).then_some(())
    });
    let out = tempfile::tempdir().unwrap();
    let args = vec![
        format!("--lookupd-http-address={}", lookupd.http),
        "--topic-pattern=^app_".into(),
        "--topic-refresh=100ms".into(),
        format!("--output-dir={}", out.path().display()),
        "--host-identifier=H".into(),
        "--datetime-format=D".into(),
    ];
    let (mut child, log) = start(&args);
    log.wait_for("skipping topic other (doesn't match pattern ^app_)");
    eventually(|| (files(out.path()).len() == 2).then_some(()));
    // A topic created later is picked up at the next refresh.
    publish(&nsqd2, "app_three", &[b"three"]);
    eventually(|| (files(out.path()).len() == 3).then_some(()));
    eventually(|| (all_lines(out.path()).len() == 3).then_some(()));
    signal(&child, "TERM");
    assert_eq!(wait_exit(&mut child), Some(0));
    assert_eq!(
        files(out.path()),
        vec![
            ("app_one.H.D.log".to_string(), "one\n".to_string()),
            ("app_three.H.D.log".to_string(), "three\n".to_string()),
            ("app_two.H.D.log".to_string(), "two\n".to_string()),
        ]
    );
    wait_channel_settled(&nsqd1, "app_one", "nsq_to_file", 0);
    wait_channel_settled(&nsqd2, "app_two", "nsq_to_file", 0);
    assert!(channel_stats(&nsqd1, "other", "nsq_to_file").is_none());
}

#[test]
fn sigkill_mid_run_loses_nothing() {
    // Messages in flight to the killed process come back after the message timeout.
    let nsqd = start_nsqd(None, &["--msg-timeout=1s"]);
    let first = tempfile::tempdir().unwrap();
    let want = bodies("k", 5000);
    publish_all(&nsqd, "kill", &want);
    let mut args = base_args(&nsqd, "kill", first.path());
    args.push("--max-in-flight=20".into());
    let (mut child, _log) = start(&args);
    eventually(|| (all_lines(first.path()).len() > 50).then_some(()));
    child.kill().unwrap();
    let _ = child.wait();
    let written = all_lines(first.path()).len();
    assert!(written < 5000, "the run finished before it was killed");

    // Whatever was not FINed is still on nsqd: drain it into a second directory.
    let second = tempfile::tempdir().unwrap();
    let mut args = base_args(&nsqd, "kill", second.path());
    args.push("--sync-interval=200ms".into());
    let (mut child, _log) = start(&args);
    wait_channel_settled(&nsqd, "kill", "nsq_to_file", 0);
    signal(&child, "TERM");
    assert_eq!(wait_exit(&mut child), Some(0));

    let mut got: std::collections::HashSet<String> = all_lines(first.path()).into_iter().collect();
    got.extend(all_lines(second.path()));
    let missing: Vec<&String> = want.iter().filter(|b| !got.contains(*b)).collect();
    assert!(
        missing.is_empty(),
        "lost {} messages: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

#[test]
fn unreachable_nsqd_is_logged_and_the_process_keeps_running() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = tempfile::tempdir().unwrap();
    let args = vec![
        "--topic=t".to_string(),
        format!("--nsqd-tcp-address={addr}"),
        format!("--output-dir={}", out.path().display()),
        "--consumer-opt=lookupd_poll_interval,100ms".into(),
    ];
    let (mut child, log) = start(&args);
    log.wait_for("ERROR: couldn't create logger for new topic t:");
    // It tries again rather than giving up.
    eventually(|| {
        let n = log
            .lines()
            .iter()
            .filter(|l| l.contains("couldn't create logger"))
            .count();
        (n >= 2).then_some(())
    });
    assert!(child.try_wait().unwrap().is_none());
    signal(&child, "TERM");
    assert_eq!(wait_exit(&mut child), Some(0));
    assert!(files(out.path()).is_empty());
}
