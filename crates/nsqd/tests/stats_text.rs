//! `GET /stats` text format (the default): headers, sections, topic/channel/client/producer lines.

mod common;

use common::httpx::{self, assert_ok_empty, assert_ok_text};
use common::{eventually, Nsqd};

fn text(n: &Nsqd, query: &str) -> String {
    let path = if query.is_empty() {
        "/stats".to_string()
    } else {
        format!("/stats?{query}")
    };
    let r = httpx::get(n, &path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-NSQ-Content-Type"), Some(httpx::V1_HEADER));
    r.text()
}

fn line_starting<'a>(t: &'a str, prefix: &str) -> &'a str {
    t.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{t}"))
}

#[test]
fn empty_nsqd_sections() {
    let n = Nsqd::start(&[]);
    let t = text(&n, "");
    let lines: Vec<&str> = t.lines().collect();
    assert!(
        lines[0].starts_with("nsqd v1.3.0"),
        "first line {:?}",
        lines[0]
    );
    assert!(lines[1].starts_with("start_time "), "{t}");
    assert!(lines[2].starts_with("uptime "), "{t}");
    assert!(t.contains("\nHealth: OK\n"), "{t}");
    assert!(t.contains("\nMemory:\n"), "{t}");
    assert!(t.contains("\nTopics: None\n"), "{t}");
    assert!(t.contains("\nProducers: None\n"), "{t}");
    let h = t.find("Health:").unwrap();
    let m = t.find("Memory:").unwrap();
    let tp = t.find("Topics:").unwrap();
    let p = t.find("Producers:").unwrap();
    assert!(h < m && m < tp && tp < p, "section order: {t}");
    // nine memory lines: 3 spaces, name padded to 25, TAB, integer
    for name in [
        "heap_objects",
        "heap_idle_bytes",
        "heap_in_use_bytes",
        "heap_released_bytes",
        "gc_pause_usec_100",
        "gc_pause_usec_99",
        "gc_pause_usec_95",
        "next_gc_bytes",
        "gc_total_runs",
    ] {
        let l = line_starting(&t, &format!("   {name:<25}\t"));
        let v = &l[3 + 25 + 1..];
        assert!(v.parse::<u64>().is_ok(), "memory value {v:?} in {l:?}");
    }
}

#[test]
fn start_time_is_rfc3339() {
    let n = Nsqd::start(&[]);
    let t = text(&n, "");
    let st = line_starting(&t, "start_time ")["start_time ".len()..].trim();
    // e.g. 2024-01-27T09:09:04-07:00 or 2024-01-27T16:09:04Z
    let b = st.as_bytes();
    assert!(st.len() >= 20, "{st:?}");
    assert!(
        b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':',
        "{st:?}"
    );
    assert!(
        st.ends_with('Z') || st[19..].starts_with('+') || st[19..].starts_with('-'),
        "{st:?}"
    );
}

#[test]
fn include_mem_false_omits_memory_section() {
    let n = Nsqd::start(&[]);
    let t = text(&n, "include_mem=false");
    assert!(!t.contains("Memory:"), "{t}");
    assert!(!t.contains("heap_objects"), "{t}");
    assert!(t.contains("Health: OK"));
    assert!(text(&n, "include_mem=true").contains("\nMemory:\n"));
}

#[test]
fn any_format_other_than_json_is_text() {
    let n = Nsqd::start(&[]);
    for q in [
        "format=text",
        "format=JSON",
        "format=xml",
        "format=",
        "format=json2",
    ] {
        let t = text(&n, q);
        assert!(t.starts_with("nsqd v1.3.0"), "{q}: {t}");
    }
    let r = httpx::get(&n, "/stats?format=json");
    assert!(r.json().is_object());
}

#[test]
fn topic_and_channel_lines() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=orders", b""));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/create?topic=orders&channel=archive",
        b"",
    ));
    assert_ok_text(&httpx::post(&n, "/mpub?topic=orders", b"a\nb"), "OK");
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=zzz", b""));
    eventually(|| {
        (httpx::int(&httpx::channel(&n, "orders", "archive")?, "depth") == 2).then_some(())
    });
    let t = text(&n, "");
    assert!(
        t.contains("\nTopics:\n   [orders"),
        "first topic follows Topics: directly:\n{t}"
    );
    let want_topic = format!(
        "   [{:<15}] depth: {:<5} be-depth: {:<5} msgs: {:<8} e2e%: ",
        "orders", 0, 0, 2
    );
    assert_eq!(
        line_starting(&t, "   [orders").trim_end(),
        want_topic.trim_end()
    );
    let want_chan = format!(
        "      [{:<25}] depth: {:<5} be-depth: {:<5} inflt: {:<4} def: {:<4} re-q: {:<5} timeout: {:<5} msgs: {:<8} e2e%: ",
        "archive", 2, 0, 0, 0, 0, 0, 2
    );
    assert_eq!(
        line_starting(&t, "      [archive").trim_end(),
        want_chan.trim_end()
    );
    // consecutive topic blocks are separated by one blank line
    assert!(t.contains("\n\n   [zzz"), "{t}");
    assert!(
        t.find("[orders").unwrap() < t.find("[zzz").unwrap(),
        "sorted"
    );
    assert!(t.contains("\nProducers: None"), "{t}");
}

#[test]
fn paused_markers() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c", b""));
    assert_ok_empty(&httpx::post(&n, "/topic/pause?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/pause?topic=t&channel=c", b""));
    let t = text(&n, "");
    assert!(t.lines().any(|l| l.starts_with("*P [t ")), "{t}");
    assert!(t.lines().any(|l| l.starts_with("   *P [c ")), "{t}");
    assert_ok_empty(&httpx::post(&n, "/topic/unpause?topic=t", b""));
    let t = text(&n, "");
    assert!(t.lines().any(|l| l.starts_with("   [t ")), "{t}");
    assert!(t.lines().any(|l| l.starts_with("   *P [c ")), "{t}");
}

#[test]
fn client_and_producer_lines() {
    let n = Nsqd::start(&[]);
    let mut c = n.connect();
    c.identify(r#"{"client_id":"cid","hostname":"chost","user_agent":"ua/1"}"#);
    c.subscribe("t", "c");
    c.cmd("RDY 1");
    let mut p = n.connect();
    p.publish("t", b"x");
    p.publish("t", b"y");
    c.read_message();
    eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (ch["clients"][0]["in_flight_count"] == 1).then_some(())
    });
    let t = text(&n, "");
    let cport = c.stream.local_addr().unwrap().port();
    let id = format!("chost:{cport} ua/1");
    let want = format!(
        "        [V2 {id:<21}] state: 3 inflt: {:<4} rdy: {:<4} fin: {:<8} re-q: {:<8} msgs: {:<8} connected: ",
        1, 1, 0, 0, 1
    );
    let l = line_starting(&t, "        [V2 chost:");
    assert!(
        l.starts_with(&want),
        "client line\n got: {l:?}\nwant: {want:?}..."
    );
    assert!(l.ends_with('s'), "connected duration: {l:?}");

    assert!(!t.contains("Producers: None"), "{t}");
    assert!(t.contains("\nProducers:\n"), "{t}");
    let pport = p.stream.local_addr().unwrap().port();
    let pid = format!("127.0.0.1:{pport} ");
    let want = format!("   [V2 {pid:<21}] msgs: {:<8} topics: t=2 connected: ", 2);
    let l = line_starting(&t, "   [V2 127.0.0.1:");
    assert!(
        l.starts_with(&want),
        "producer line\n got: {l:?}\nwant: {want:?}..."
    );
}

#[test]
fn include_clients_false_hides_client_and_producer_lines() {
    let n = Nsqd::start(&[]);
    let _c = {
        let mut c = n.connect();
        c.subscribe("t", "c");
        c
    };
    let mut p = n.connect();
    p.publish("t", b"x");
    let t = text(&n, "include_clients=false");
    assert!(!t.contains("[V2 "), "{t}");
    assert!(t.contains("Producers: None"), "{t}");
    let t = text(&n, "");
    assert!(t.contains("[V2 "), "{t}");
}

#[test]
fn filters_apply_to_text() {
    let n = Nsqd::start(&[]);
    for tp in ["a", "b"] {
        assert_ok_empty(&httpx::post(&n, &format!("/topic/create?topic={tp}"), b""));
    }
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=b&channel=c", b""));
    let t = text(&n, "topic=a");
    assert!(t.contains("   [a "), "{t}");
    assert!(!t.contains("   [b "), "{t}");
    let t = text(&n, "topic=nope");
    assert!(t.contains("Topics: None"), "{t}");
    let t = text(&n, "channel=c");
    assert!(!t.contains("   [a "), "{t}");
    assert!(t.contains("   [b "), "{t}");
}

#[test]
fn e2e_percentiles_humanised_in_text() {
    let n = Nsqd::start(&["--e2e-processing-latency-percentile=1.0,0.5"]);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("RDY 1");
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"m"), "OK");
    let m = c.read_message();
    c.cmd(&format!("FIN {}", m.id_str()));
    eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (ch["e2e_processing_latency"]["count"] == 1).then_some(())
    });
    let t = text(&n, "");
    let l = line_starting(&t, "      [c ");
    let e2e = l.split("e2e%: ").nth(1).unwrap_or("").trim_end();
    let parts: Vec<&str> = e2e.split(", ").collect();
    assert_eq!(parts.len(), 2, "two humanised values: {l:?}");
    for p in parts {
        let unit_ok = ["ns", "us", "ms", "s"].iter().any(|u| {
            p.strip_suffix(u)
                .map(|num| num.contains('.') && num.parse::<f64>().is_ok())
                .unwrap_or(false)
        });
        assert!(unit_ok, "humanised value {p:?} in {l:?}");
    }
}
