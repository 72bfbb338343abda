//! `nsq_to_nsq` between our nsqd: destination topics, modes, dead destinations, JSON filters,
//! bad flags and kill -9.
mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;

struct Tool {
    child: Child,
    log: ProcessLog,
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tool {
    fn start(src: &Daemon, dests: &[String], extra: &[&str]) -> Tool {
        let mut args = vec![
            format!("--nsqd-tcp-address={}", src.tcp),
            // Retry failures at once and back off briefly, so requeues show up quickly.
            "--consumer-opt=default_requeue_delay,0".to_string(),
            "--consumer-opt=backoff_multiplier,10ms".to_string(),
        ];
        args.extend(
            dests
                .iter()
                .map(|d| format!("--destination-nsqd-tcp-address={d}")),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        let (child, log) = spawn_util("nsq_to_nsq", &args);
        log.wait_for("connecting to nsqd");
        Tool { child, log }
    }

    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let st = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(Instant::now() < deadline, "nsq_to_nsq did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn addr(d: &Daemon) -> String {
    d.tcp.to_string()
}

fn dead_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

fn message_count(nsqd: &Daemon, topic: &str) -> u64 {
    topic_stats(nsqd, topic).map_or(0, |t| t["message_count"].as_u64().unwrap_or(0))
}

fn wait_count(nsqd: &Daemon, topic: &str, n: u64) {
    eventually(|| (message_count(nsqd, topic) >= n).then_some(()));
}

/// Reads messages off `topic` through a fresh channel until `done` says the bodies suffice.
fn read_until(nsqd: &Daemon, topic: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut cfg = nsq_client::Config::new();
        cfg.max_in_flight = 1000;
        let c = nsq_client::Consumer::new(topic, "check", cfg).unwrap();
        c.connect_to_nsqd(&nsqd.tcp.to_string()).await.unwrap();
        let mut out = Vec::new();
        while !done(&out) {
            let m = tokio::time::timeout(Duration::from_secs(20), c.recv())
                .await
                .expect("destination messages did not arrive")
                .expect("consumer stopped");
            out.push(String::from_utf8_lossy(&m.body).into_owned());
            m.finish();
        }
        c.stop();
        out
    })
}

fn read_n(nsqd: &Daemon, topic: &str, n: usize) -> Vec<String> {
    let mut v = read_until(nsqd, topic, |b| b.len() >= n);
    v.sort();
    v
}

#[test]
fn relays_to_the_destination_topic_then_fins() {
    let (src, dst) = (start_nsqd(None, &[]), start_nsqd(None, &[]));
    publish(&src, "in", &[b"a", b"b", b"c"]);
    let tool = Tool::start(
        &src,
        &[addr(&dst)],
        &["--topic=in", "--destination-topic=out"],
    );
    wait_count(&dst, "out", 3);
    wait_channel_settled(&src, "in", "nsq_to_nsq", 0);
    assert_eq!(read_n(&dst, "out", 3), ["a", "b", "c"]);
    assert_eq!(message_count(&dst, "out"), 3);
    assert!(topic_stats(&dst, "in").is_none());
    assert_eq!(tool.terminate(), Some(0));
}

#[test]
fn each_topic_keeps_its_name_by_default() {
    let (src, dst) = (start_nsqd(None, &[]), start_nsqd(None, &[]));
    publish(&src, "t1", &[b"one"]);
    publish(&src, "t2", &[b"two", b"deux"]);
    let tool = Tool::start(&src, &[addr(&dst)], &["--topic=t1", "--topic=t2"]);
    wait_count(&dst, "t1", 1);
    wait_count(&dst, "t2", 2);
    assert_eq!(read_n(&dst, "t2", 2), ["deux", "two"]);
    drop(tool);
}

#[test]
fn round_robin_alternates_destinations() {
    let (src, d0, d1) = (
        start_nsqd(None, &[]),
        start_nsqd(None, &[]),
        start_nsqd(None, &[]),
    );
    publish(&src, "rr", &[b"1", b"2", b"3", b"4"]);
    let tool = Tool::start(
        &src,
        &[addr(&d0), addr(&d1)],
        &["--topic=rr", "--mode=round-robin", "--max-in-flight=1"],
    );
    wait_channel_settled(&src, "rr", "nsq_to_nsq", 0);
    assert_eq!(read_n(&d0, "rr", 2), ["2", "4"]);
    assert_eq!(read_n(&d1, "rr", 2), ["1", "3"]);
    drop(tool);
}

#[test]
fn unknown_mode_is_round_robin() {
    let (src, d0, d1) = (
        start_nsqd(None, &[]),
        start_nsqd(None, &[]),
        start_nsqd(None, &[]),
    );
    publish(&src, "um", &[b"1", b"2"]);
    let tool = Tool::start(
        &src,
        &[addr(&d0), addr(&d1)],
        &["--topic=um", "--mode=whatever", "--max-in-flight=1"],
    );
    wait_channel_settled(&src, "um", "nsq_to_nsq", 0);
    assert_eq!((message_count(&d0, "um"), message_count(&d1, "um")), (1, 1));
    drop(tool);
}

#[test]
fn hostpool_routes_around_a_dead_destination() {
    let (src, live) = (start_nsqd(None, &[]), start_nsqd(None, &[]));
    let bodies: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
    publish(&src, "hp", &refs);
    let tool = Tool::start(
        &src,
        &[dead_addr(), addr(&live)],
        &["--topic=hp", "--max-in-flight=1"],
    );
    wait_channel_settled(&src, "hp", "nsq_to_nsq", 0);
    assert_eq!(read_n(&live, "hp", 5), bodies);
    assert_eq!(message_count(&live, "hp"), 5);
    // Only the first pick went to the dead destination, and that message was requeued.
    assert_eq!(
        channel_stats(&src, "hp", "nsq_to_nsq").unwrap()["requeue_count"],
        1
    );
    drop(tool);
}

#[test]
fn dead_destinations_requeue_and_keep_every_message() {
    let src = start_nsqd(None, &[]);
    publish(&src, "dd", &[b"x", b"y"]);
    let tool = Tool::start(&src, &[dead_addr()], &["--topic=dd"]);
    eventually(|| {
        let c = channel_stats(&src, "dd", "nsq_to_nsq")?;
        (c["requeue_count"].as_u64()? >= 2).then_some(())
    });
    assert_eq!(tool.terminate(), Some(0));
    wait_channel_settled(&src, "dd", "nsq_to_nsq", 2);
    assert_eq!(
        channel_stats(&src, "dd", "nsq_to_nsq").unwrap()["message_count"],
        2
    );
}

#[test]
fn json_filters_pass_trim_and_drop() {
    let (src, dst) = (start_nsqd(None, &[]), start_nsqd(None, &[]));
    publish(
        &src,
        "js",
        &[
            br#"{"kind":"a","x":1.0,"y":2}"#,
            br#"{"kind":"b","x":1}"#,
            b"not json",
            br#"{"kind":"a","x":1.5,"z":"<&>","w":[1.0,2e21]}"#,
            br#"{"kind":7,"x":3}"#,
        ],
    );
    let tool = Tool::start(
        &src,
        &[addr(&dst)],
        &[
            "--topic=js",
            "--require-json-field=kind",
            "--require-json-value=a",
            "--whitelist-json-field=x",
            "--whitelist-json-field=z",
            "--whitelist-json-field=w",
        ],
    );
    wait_channel_settled(&src, "js", "nsq_to_nsq", 0);
    tool.log.wait_for("ERROR: Unable to decode json: not json");
    assert_eq!(
        read_n(&dst, "js", 2),
        [
            r#"{"w":[1,2e+21],"x":1.5,"z":"\u003c\u0026\u003e"}"#,
            r#"{"x":1}"#
        ]
    );
    assert_eq!(message_count(&dst, "js"), 2);
    drop(tool);

    // A number as the required value matches JSON numbers of that value.
    publish(
        &src,
        "jn",
        &[br#"{"n":42.0}"#, br#"{"n":43}"#, br#"{"n":"42"}"#],
    );
    let tool = Tool::start(
        &src,
        &[addr(&dst)],
        &[
            "--topic=jn",
            "--require-json-field=n",
            "--require-json-value=42",
        ],
    );
    wait_channel_settled(&src, "jn", "nsq_to_nsq", 0);
    assert_eq!(read_n(&dst, "jn", 2), [r#"{"n":"42"}"#, r#"{"n":42.0}"#]);
    assert_eq!(message_count(&dst, "jn"), 2);
    drop(tool);
}

#[test]
fn missing_required_field_backs_off_until_max_attempts() {
    let (src, dst) = (start_nsqd(None, &[]), start_nsqd(None, &[]));
    publish(&src, "mf", &[br#"{"other":1}"#]);
    let tool = Tool::start(
        &src,
        &[addr(&dst)],
        &[
            "--topic=mf",
            "--require-json-field=kind",
            "--require-json-value=a",
            "--consumer-opt=max_attempts,3",
        ],
    );
    tool.log
        .wait_for("ERROR: missing field to check required value");
    wait_channel_settled(&src, "mf", "nsq_to_nsq", 0);
    assert_eq!(
        channel_stats(&src, "mf", "nsq_to_nsq").unwrap()["requeue_count"],
        3
    );
    assert_eq!(message_count(&dst, "mf"), 0);
    drop(tool);
}

#[test]
fn status_every_logs_per_destination_and_aggregate() {
    let (src, d0, d1) = (
        start_nsqd(None, &[]),
        start_nsqd(None, &[]),
        start_nsqd(None, &[]),
    );
    let tool = Tool::start(
        &src,
        &[addr(&d0), addr(&d1)],
        &["--topic=st", "--status-every=1", "--mode=round-robin"],
    );
    publish(&src, "st", &[b"1", b"2", b"3", b"4"]);
    tool.log.wait_for("[aggregate]: finished 1 - 99th: ");
    tool.log
        .wait_for(&format!("[{}]: finished 1 - 99th: ", addr(&d0)));
    drop(tool);
}

#[test]
fn bad_command_lines_exit_like_go() {
    let cases: &[(&[&str], i32, &str)] = &[
        (&[], 1, " --topic and --channel are required\n"),
        (&["--topic=a/b"], 1, " --topic is invalid\n"),
        (
            &["--topic=t", "--channel=x y"],
            1,
            " --channel is invalid\n",
        ),
        (
            &["--topic=t", "--nsqd-tcp-address=127.0.0.1:1"],
            1,
            " --destination-nsqd-tcp-address required\n",
        ),
    ];
    for (args, code, tail) in cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run_util("nsq_to_nsq", &args, b"");
        assert_eq!(out.status, Some(*code), "{args:?}");
        assert!(out.stderr.ends_with(tail), "{args:?}: {}", out.stderr);
    }
    let out = run_util("nsq_to_nsq", &["--producer-opt=nope".to_string()], b"");
    assert_eq!(out.status, Some(2));
    assert!(out.stderr.starts_with(
        "invalid value \"nope\" for flag -producer-opt: invalid option nope\nUsage of "
    ));
    let out = run_util("nsq_to_nsq", &["--version".to_string()], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "nsq_to_nsq v1.3.0\n");

    let dead = dead_addr();
    let out = run_util(
        "nsq_to_nsq",
        &[
            "--topic=t".into(),
            format!("--nsqd-tcp-address={dead}"),
            format!("--destination-nsqd-tcp-address={dead}"),
        ],
        b"",
    );
    assert_eq!(out.status, Some(1));
    assert!(
        out.stderr
            .contains(&format!("dial tcp {dead}: connect: connection refused")),
        "{}",
        out.stderr
    );
}

#[test]
fn kill_9_mid_run_loses_nothing() {
    // A dead client's in-flight messages come back when their timeout passes.
    let src = start_nsqd(None, &["--msg-timeout=1s"]);
    let dst = start_nsqd(None, &[]);
    let total = 2000;
    let bodies: Vec<String> = (0..total).map(|i| format!("msg-{i}")).collect();
    for chunk in bodies.chunks(500) {
        let r = post(src.http, "/mpub?topic=k9", chunk.join("\n").as_bytes());
        assert_eq!(r.status, 200);
    }
    let mut tool = Tool::start(&src, &[addr(&dst)], &["--topic=k9", "--max-in-flight=50"]);
    wait_count(&dst, "k9", 100);
    tool.child.kill().unwrap();
    tool.child.wait().unwrap();
    assert!(
        message_count(&dst, "k9") < total as u64,
        "the kill came too late to prove anything"
    );
    let tool = Tool::start(&src, &[addr(&dst)], &["--topic=k9"]);
    wait_channel_settled(&src, "k9", "nsq_to_nsq", 0);
    let want: BTreeSet<String> = bodies.into_iter().collect();
    let got = read_until(&dst, "k9", |b| {
        b.len() >= want.len() && want.iter().all(|w| b.contains(w))
    });
    let got: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(got, want);
    drop(tool);
}
