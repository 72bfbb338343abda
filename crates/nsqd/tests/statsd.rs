//! statsd pushes seen from a UDP listener: names, types, values and deltas over several pushes,
//! the packet size bound, the prefix, `--statsd-exclude-ephemeral`, `--statsd-mem-stats=false`,
//! bad addresses, and the warning for accepted flags that have no effect.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::UdpSocket;
use std::time::Duration;

use common::{eventually, Conn, Nsqd};

/// A generous bound for one push to arrive at a 1 s interval (never a timing assertion: only a
/// limit on how long a broken build makes a test hang).
const PACKET_WAIT: Duration = Duration::from_secs(10);

/// Pushes looked at before a test gives up waiting for a state.
const MAX_PUSHES: usize = 20;

#[derive(Debug, Clone, PartialEq)]
struct Line {
    name: String,
    value: i64,
    kind: String,
}

#[derive(Debug, Default)]
struct Push {
    packets: Vec<Vec<u8>>,
    lines: Vec<Line>,
}

impl Push {
    fn get(&self, name: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.name == name)
    }

    fn value(&self, name: &str) -> i64 {
        self.get(name)
            .unwrap_or_else(|| panic!("no {name} in push: {:?}", self.lines))
            .value
    }

    fn names(&self) -> BTreeSet<String> {
        self.lines.iter().map(|l| l.name.clone()).collect()
    }

    fn typed_names(&self) -> BTreeMap<String, String> {
        self.lines
            .iter()
            .map(|l| (l.name.clone(), l.kind.clone()))
            .collect()
    }
}

/// A statsd stand-in: a UDP socket on an ephemeral loopback port.
struct Statsd {
    sock: UdpSocket,
    prefix: String,
}

impl Statsd {
    fn bind() -> Statsd {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        sock.set_read_timeout(Some(PACKET_WAIT)).expect("timeout");
        Statsd {
            sock,
            prefix: String::new(),
        }
    }

    fn addr(&self) -> String {
        self.sock.local_addr().expect("local addr").to_string()
    }

    fn packet(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 65536];
        let n = self.sock.recv(&mut buf).expect("a statsd packet in time");
        buf.truncate(n);
        buf
    }

    /// Reads packets until one ends with the line named `last` (the name after the prefix).
    fn push(&self, last: &str) -> Push {
        let mut push = Push::default();
        let deadline = std::time::Instant::now() + PACKET_WAIT;
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no line named {last:?} in time; got {:?}",
                push.lines.iter().map(|l| &l.name).collect::<Vec<_>>()
            );
            let p = self.packet();
            let text = String::from_utf8(p.clone()).expect("utf-8 packet");
            assert!(text.ends_with('\n'), "packet cut mid-line: {text:?}");
            let mut done = false;
            for raw in text.lines() {
                let line = self.parse(raw);
                done = line.name == last;
                push.lines.push(line);
            }
            push.packets.push(p);
            if done {
                return push;
            }
        }
    }

    fn parse(&self, raw: &str) -> Line {
        let rest = raw
            .strip_prefix(&self.prefix)
            .unwrap_or_else(|| panic!("line without prefix {:?}: {raw:?}", self.prefix));
        let (name, tail) = rest.rsplit_once(':').expect("name:value|type");
        let (value, kind) = tail.split_once('|').expect("value|type");
        Line {
            name: name.to_string(),
            value: value.parse().expect("integer value"),
            kind: kind.to_string(),
        }
    }
}

fn start(statsd: &Statsd, extra: &[&str]) -> Nsqd {
    let addr = format!("--statsd-address={}", statsd.addr());
    let mut args = vec![
        addr.as_str(),
        "--statsd-interval=1s",
        "--broadcast-address=127.0.0.1",
    ];
    args.extend_from_slice(extra);
    Nsqd::start(&args)
}

fn host_key(n: &Nsqd) -> String {
    format!("127_0_0_1_{}", n.http.port())
}

const TOPIC_COUNTERS: &[&str] = &["message_count", "message_bytes"];
const TOPIC_GAUGES: &[&str] = &["depth", "backend_depth"];
const CHANNEL_COUNTERS: &[&str] = &["message_count", "requeue_count", "timeout_count"];
const CHANNEL_GAUGES: &[&str] = &[
    "depth",
    "backend_depth",
    "in_flight_count",
    "deferred_count",
    "clients",
];
const MEM_GAUGES: &[&str] = &[
    "heap_objects",
    "heap_idle_bytes",
    "heap_in_use_bytes",
    "heap_released_bytes",
    "gc_pause_usec_100",
    "gc_pause_usec_99",
    "gc_pause_usec_95",
    "next_gc_bytes",
];

fn expected_types(topic: &str, channel: &str, percentiles: &[&str]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut add = |name: String, kind: &str| {
        m.insert(name, kind.to_string());
    };
    let t = format!("topic.{topic}");
    let c = format!("{t}.channel.{channel}");
    for n in TOPIC_COUNTERS {
        add(format!("{t}.{n}"), "c");
    }
    for n in TOPIC_GAUGES {
        add(format!("{t}.{n}"), "g");
    }
    for n in CHANNEL_COUNTERS {
        add(format!("{c}.{n}"), "c");
    }
    for n in CHANNEL_GAUGES {
        add(format!("{c}.{n}"), "g");
    }
    for p in percentiles {
        add(format!("{t}.e2e_processing_latency_{p}"), "g");
        add(format!("{c}.e2e_processing_latency_{p}"), "g");
    }
    for n in MEM_GAUGES {
        add(format!("mem.{n}"), "g");
    }
    add("mem.gc_runs".into(), "c");
    m
}

/// Running sums of every counter over the pushes seen so far.
#[derive(Default)]
struct Sums(BTreeMap<String, i64>);

impl Sums {
    fn add(&mut self, p: &Push) {
        for l in p.lines.iter().filter(|l| l.kind == "c") {
            assert!(l.value >= 0, "negative counter {l:?}");
            *self.0.entry(l.name.clone()).or_default() += l.value;
        }
    }

    fn get(&self, name: &str) -> i64 {
        self.0.get(name).copied().unwrap_or(0)
    }
}

#[test]
fn names_types_values_and_deltas_over_several_pushes() {
    let mut statsd = Statsd::bind();
    let n = start(
        &statsd,
        &[
            "--statsd-prefix=test.%s.x",
            "--e2e-processing-latency-percentile=1.0,0.99",
        ],
    );
    statsd.prefix = format!("test.{}.x.", host_key(&n));

    // Three messages: one finished, one requeued, one left to time out.
    let mut c = n.connect();
    c.identify(r#"{"msg_timeout":1000}"#);
    c.subscribe("t", "c");
    let mut p = n.connect();
    p.cmd_body("MPUB t", &Conn::mpub_body(&[b"aaaa", b"bb", b"c"]));
    p.expect_ok();
    c.rdy(3);
    let msgs: Vec<_> = (0..3).map(|_| c.read_message()).collect();
    c.rdy(0);
    c.fin(msgs[0].id_str());
    c.cmd(&format!("REQ {} 0", msgs[1].id_str()));

    let mut sums = Sums::default();
    let mut settled = None;
    for _ in 0..MAX_PUSHES {
        let push = statsd.push("mem.gc_runs");
        sums.add(&push);
        let quiet = sums.get("topic.t.channel.c.timeout_count") == 1
            && push
                .get("topic.t.channel.c.in_flight_count")
                .map(|l| l.value)
                == Some(0)
            && push.get("topic.t.message_count").map(|l| l.value) == Some(0);
        if quiet {
            settled = Some(push);
            break;
        }
    }
    let push = settled.expect("nsqd settled within the pushes looked at");

    assert_eq!(push.typed_names(), expected_types("t", "c", &["100", "99"]));
    assert_eq!(push.lines.len(), push.names().len(), "a name sent twice");
    assert_eq!(sums.get("topic.t.message_count"), 3);
    assert_eq!(sums.get("topic.t.message_bytes"), 7);
    assert_eq!(sums.get("topic.t.channel.c.message_count"), 3);
    assert_eq!(sums.get("topic.t.channel.c.requeue_count"), 1);
    assert_eq!(sums.get("topic.t.channel.c.timeout_count"), 1);
    assert_eq!(push.value("topic.t.depth"), 0);
    assert_eq!(push.value("topic.t.channel.c.depth"), 2);
    assert_eq!(push.value("topic.t.channel.c.backend_depth"), 0);
    assert_eq!(push.value("topic.t.channel.c.deferred_count"), 0);
    assert_eq!(push.value("topic.t.channel.c.clients"), 1);
    assert!(push.value("topic.t.channel.c.e2e_processing_latency_100") > 0);
    assert!(push.value("topic.t.e2e_processing_latency_100") > 0);
    assert!(push.value("mem.heap_in_use_bytes") > 0);

    // A counter carries only what happened since the previous push: one MPUB of two shows up
    // as a single delta of 2, and the pushes around it say 0.
    p.cmd_body("MPUB t", &Conn::mpub_body(&[b"dd", b"e"]));
    p.expect_ok();
    let mut deltas = Vec::new();
    for _ in 0..MAX_PUSHES {
        let push = statsd.push("mem.gc_runs");
        sums.add(&push);
        deltas.push(push.value("topic.t.message_count"));
        if sums.get("topic.t.message_count") == 5 {
            break;
        }
    }
    assert_eq!(deltas.iter().filter(|&&d| d != 0).collect::<Vec<_>>(), [&2]);
    assert_eq!(sums.get("topic.t.message_bytes"), 10);
    let next = statsd.push("mem.gc_runs");
    assert_eq!(next.value("topic.t.message_count"), 0);
    assert_eq!(next.value("topic.t.depth"), 0);
    assert_eq!(next.value("topic.t.channel.c.depth"), 4);

    drop(c);
    let st = n.stop();
    assert!(st.success(), "{st:?}");
}

#[test]
fn packets_stay_within_the_size_bound_and_carry_whole_lines() {
    let statsd = Statsd::bind();
    let n = start(
        &statsd,
        &["--statsd-udp-packet-size=120", "--statsd-prefix="],
    );
    for i in 0..6 {
        let r = n.http_post(&format!("/topic/create?topic=topic{i}"), b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let r = n.http_post(
            &format!("/channel/create?topic=topic{i}&channel=ch{i}"),
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The first push may have been built before every topic existed.
    let push = (0..MAX_PUSHES)
        .map(|_| statsd.push("mem.gc_runs"))
        .find(|p| p.get("topic.topic5.channel.ch5.clients").is_some())
        .expect("a push with every topic");
    assert!(push.packets.len() > 1, "{:?}", push.packets);
    for p in &push.packets {
        assert!(p.len() <= 120, "packet of {} bytes", p.len());
    }
    // Packed tightly: no packet could also have taken the next packet's first line.
    for w in push.packets.windows(2) {
        let first_line = w[1].iter().position(|&b| b == b'\n').expect("a line") + 1;
        assert!(w[0].len() + first_line > 120);
    }
    assert!(push.names().contains("topic.topic0.message_count"));
}

#[test]
fn exclude_ephemeral_and_mem_stats_off() {
    for exclude in [true, false] {
        let mut statsd = Statsd::bind();
        let flag = format!("--statsd-exclude-ephemeral={exclude}");
        let n = start(&statsd, &[flag.as_str(), "--statsd-mem-stats=false"]);
        statsd.prefix = format!("nsq.{}.", host_key(&n));
        let mut eph_topic = n.connect();
        eph_topic.subscribe("e#ephemeral", "c");
        let mut eph_channel = n.connect();
        eph_channel.subscribe("t", "c#ephemeral");
        let mut durable = n.connect();
        durable.subscribe("t", "d");
        // Sorted last, so its final gauge ends every push.
        let r = n.http_post("/topic/create?topic=zzz", b"");
        assert_eq!(r.status, 200);
        let push = (0..MAX_PUSHES)
            .map(|_| statsd.push("topic.zzz.backend_depth"))
            .find(|p| p.get("topic.t.channel.d.clients").map(|l| l.value) == Some(1))
            .expect("a push after the subscriptions");
        let names = push.names();
        assert!(names.iter().all(|n| !n.starts_with("mem.")), "{names:?}");
        let ephemeral: Vec<_> = names.iter().filter(|n| n.contains("#ephemeral")).collect();
        if exclude {
            assert!(ephemeral.is_empty(), "{ephemeral:?}");
        } else {
            assert!(names.contains("topic.e#ephemeral.channel.c.clients"));
            assert!(names.contains("topic.t.channel.c#ephemeral.clients"));
        }
    }
}

#[test]
fn empty_prefix_sends_bare_names() {
    let statsd = Statsd::bind();
    let _n = start(&statsd, &["--statsd-prefix="]);
    let push = statsd.push("mem.gc_runs");
    assert!(push.names().contains("mem.heap_objects"), "{push:?}");
}

#[test]
fn deleted_topics_stop_and_recreated_ones_never_go_negative() {
    let mut statsd = Statsd::bind();
    let n = start(&statsd, &[]);
    statsd.prefix = format!("nsq.{}.", host_key(&n));
    let r = n.http_post("/mpub?topic=gone", b"1\n2\n3\n4\n5");
    assert_eq!(r.status, 200);
    let mut sums = Sums::default();
    for _ in 0..MAX_PUSHES {
        let p = statsd.push("mem.gc_runs");
        sums.add(&p);
        if sums.get("topic.gone.message_count") == 5 {
            break;
        }
    }
    assert_eq!(sums.get("topic.gone.message_count"), 5);

    // Deleted and created again with fewer messages, likely within one interval.
    assert_eq!(n.http_post("/topic/delete?topic=gone", b"").status, 200);
    assert_eq!(n.http_post("/pub?topic=gone", b"x").status, 200);
    let mut after = Sums::default();
    for _ in 0..MAX_PUSHES {
        let p = statsd.push("mem.gc_runs");
        after.add(&p);
        if after.get("topic.gone.message_count") >= 1 {
            break;
        }
    }
    assert_eq!(after.get("topic.gone.message_count"), 1);
    assert_eq!(after.get("topic.gone.message_bytes"), 1);

    // Deleted for good: it leaves the pushes.
    assert_eq!(n.http_post("/topic/delete?topic=gone", b"").status, 200);
    let gone = (0..MAX_PUSHES)
        .map(|_| statsd.push("mem.gc_runs"))
        .find(|p| p.names().iter().all(|n| !n.contains("gone")));
    assert!(gone.is_some(), "deleted topic still sent");
}

#[test]
fn unresolvable_address_is_logged_and_nsqd_keeps_running() {
    let n = Nsqd::start(&[
        "--statsd-address=no-such-host.invalid:9",
        "--statsd-interval=1s",
    ]);
    let failures = || {
        n.log_lines()
            .iter()
            .filter(|l| l.contains("failed to create UDP socket to statsd(no-such-host.invalid:9)"))
            .count()
    };
    eventually(|| (failures() >= 2).then_some(()));
    assert!(n.log_lines().iter().any(|l| l.contains("ERROR")));
    assert_eq!(n.http_get("/ping").text(), "OK");
    let st = n.stop();
    assert!(st.success(), "{st:?}");
}

#[test]
fn unreachable_statsd_keeps_nsqd_running() {
    // A port nobody listens on: sends are refused.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let addr = format!("--statsd-address=127.0.0.1:{port}");
    let n = Nsqd::start(&[addr.as_str(), "--statsd-interval=1s"]);
    let pushes = || {
        n.log_lines()
            .iter()
            .filter(|l| l.contains("STATSD: pushing stats to 127.0.0.1:"))
            .count()
    };
    eventually(|| (pushes() >= 3).then_some(()));
    assert_eq!(n.http_get("/ping").text(), "OK");
    let mut c = n.connect();
    c.probe("still_up");
    let st = n.stop();
    assert!(st.success(), "{st:?}");
}

#[test]
fn pushing_stops_at_exit() {
    let mut statsd = Statsd::bind();
    let n = start(&statsd, &[]);
    statsd.prefix = format!("nsq.{}.", host_key(&n));
    statsd.push("mem.gc_runs");
    n.signal("TERM");
    n.wait_for_log("STATSD: closing");
}

#[test]
fn accepted_flags_without_effect_warn_at_start_up() {
    let n = Nsqd::start(&["--queue-scan-selection-count=7"]);
    let line = n.wait_for_log("--queue-scan-selection-count is accepted but not implemented yet");
    assert!(line.contains("it has no effect"), "{line}");
    assert!(line.contains("WARN"), "{line}");
    let quiet = Nsqd::start(&["--queue-scan-selection-count=20"]);
    quiet.wait_for_log("HTTP: listening on");
    assert!(quiet
        .log_lines()
        .iter()
        .all(|l| !l.contains("not implemented yet")));
}
