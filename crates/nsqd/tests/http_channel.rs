//! `/channel/create|delete|empty|pause|unpause`: common check order, per-endpoint errors and
//! effects on consumers, in-flight and queued messages; ephemeral channel lifecycle.

mod common;

use common::httpx::{self, assert_err, assert_ok_empty, assert_ok_text, int};
use common::{eventually, Conn, Nsqd, FRAME_ERROR};
use std::time::Duration;

const ENDPOINTS: [&str; 5] = ["create", "delete", "empty", "pause", "unpause"];

fn consumer(n: &Nsqd, topic: &str, channel: &str, rdy: u32) -> Conn {
    let mut c = n.connect();
    c.subscribe(topic, channel);
    c.cmd(&format!("RDY {rdy}"));
    c
}

#[test]
fn common_checks_in_order_for_every_endpoint() {
    let n = Nsqd::start(&[]);
    for ep in ENDPOINTS {
        let p = |q: &str| format!("/channel/{ep}{q}");
        // bad query beats everything
        assert_err(
            &httpx::post(&n, &p("?topic=%zz"), b""),
            400,
            "INVALID_REQUEST",
        );
        assert_err(&httpx::post(&n, &p("?x=%zz"), b""), 400, "INVALID_REQUEST");
        assert_err(&httpx::post(&n, &p(""), b""), 400, "MISSING_ARG_TOPIC");
        assert_err(
            &httpx::post(&n, &p("?channel=c"), b""),
            400,
            "MISSING_ARG_TOPIC",
        );
        // channel endpoints say INVALID_ARG_TOPIC (topic endpoints say INVALID_TOPIC)
        assert_err(
            &httpx::post(&n, &p("?topic="), b""),
            400,
            "INVALID_ARG_TOPIC",
        );
        assert_err(
            &httpx::post(&n, &p("?topic=bad!&channel=c"), b""),
            400,
            "INVALID_ARG_TOPIC",
        );
        assert_err(
            &httpx::post(&n, &p("?topic=bad!"), b""),
            400,
            "INVALID_ARG_TOPIC",
        );
        assert_err(
            &httpx::post(&n, &p("?topic=missing"), b""),
            400,
            "MISSING_ARG_CHANNEL",
        );
        assert_err(
            &httpx::post(&n, &p("?topic=missing&channel="), b""),
            400,
            "INVALID_ARG_CHANNEL",
        );
        assert_err(
            &httpx::post(&n, &p("?topic=missing&channel=c!"), b""),
            400,
            "INVALID_ARG_CHANNEL",
        );
        let long = "c".repeat(65);
        assert_err(
            &httpx::post(&n, &p(&format!("?topic=missing&channel={long}")), b""),
            400,
            "INVALID_ARG_CHANNEL",
        );
        // names are valid: the topic must exist, even for create
        assert_err(
            &httpx::post(&n, &p("?topic=missing&channel=c"), b""),
            404,
            "TOPIC_NOT_FOUND",
        );
        assert_err(
            &httpx::post(&n, &p("?topic=missing&channel=c%23ephemeral"), b""),
            404,
            "TOPIC_NOT_FOUND",
        );
    }
    assert!(
        httpx::topic_names(&n).is_empty(),
        "no topic may be created by a failing channel call"
    );
}

#[test]
fn channel_not_found_for_delete_empty_pause_unpause() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    for ep in ["delete", "empty", "pause", "unpause"] {
        let r = httpx::post(&n, &format!("/channel/{ep}?topic=t&channel=nope"), b"");
        assert_err(&r, 404, "CHANNEL_NOT_FOUND");
    }
    // none of them created the channel
    assert_eq!(
        httpx::topic(&n, "t").unwrap()["channels"],
        serde_json::json!([])
    );
}

#[test]
fn create_channel_creates_and_is_idempotent() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c", b""));
    let max = "m".repeat(64);
    assert_ok_empty(&httpx::post(
        &n,
        &format!("/channel/create?topic=t&channel={max}"),
        b"",
    ));
    let t = httpx::topic(&n, "t").unwrap();
    let names: Vec<&str> = t["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["c", max.as_str()]);
    let c = httpx::channel(&n, "t", "c").unwrap();
    assert_eq!((int(&c, "depth"), int(&c, "client_count")), (0, 0));
    assert_eq!(c["paused"], false);
    // a created channel receives copies of new messages
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"m"), "OK");
    eventually(|| (int(&httpx::channel(&n, "t", "c")?, "depth") == 1).then_some(()));
}

#[test]
fn create_channel_persists_metadata() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/create?topic=t&channel=persisted_chan",
        b"",
    ));
    let dat = n.data_path.join("nsqd.dat");
    eventually(|| {
        let s = std::fs::read_to_string(&dat).ok()?;
        s.contains("\"persisted_chan\"").then_some(())
    });
}

#[test]
fn delete_channel_closes_its_consumers_only() {
    let n = Nsqd::start(&[]);
    let mut gone = consumer(&n, "t", "gone", 1);
    let mut gone2 = consumer(&n, "t", "gone", 1);
    let mut kept = consumer(&n, "t", "kept", 1);
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/delete?topic=t&channel=gone",
        b"",
    ));
    gone.expect_closed();
    gone2.expect_closed();
    let t = httpx::topic(&n, "t").unwrap();
    let names: Vec<&str> = t["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["kept"]);
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"after"), "OK");
    assert_eq!(kept.read_message().body, b"after");
    assert_err(
        &httpx::post(&n, "/channel/delete?topic=t&channel=gone", b""),
        404,
        "CHANNEL_NOT_FOUND",
    );
}

#[test]
fn delete_channel_drops_its_messages() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c", b""));
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t", b"1\n2\n3"), "OK");
    eventually(|| (int(&httpx::channel(&n, "t", "c")?, "depth") == 3).then_some(()));
    assert_ok_empty(&httpx::post(&n, "/channel/delete?topic=t&channel=c", b""));
    assert!(httpx::channel(&n, "t", "c").is_none());
    let mut c = consumer(&n, "t", "c", 10);
    c.expect_silence(Duration::from_millis(200));
    assert_eq!(int(&httpx::channel(&n, "t", "c").unwrap(), "depth"), 0);
}

#[test]
fn empty_channel_drops_queue_and_forgets_in_flight() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 1);
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t", b"1\n2\n3"), "OK");
    let m = c.read_message();
    let ch = eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (int(&ch, "in_flight_count") == 1 && int(&ch, "depth") == 2).then_some(ch)
    });
    assert_eq!(int(&ch["clients"][0], "in_flight_count"), 1);

    assert_ok_empty(&httpx::post(&n, "/channel/empty?topic=t&channel=c", b""));
    let ch = httpx::channel(&n, "t", "c").unwrap();
    assert_eq!(int(&ch, "depth"), 0);
    assert_eq!(int(&ch, "backend_depth"), 0);
    assert_eq!(int(&ch, "in_flight_count"), 0);
    assert_eq!(int(&ch, "deferred_count"), 0);
    assert_eq!(
        int(&ch["clients"][0], "in_flight_count"),
        0,
        "consumer in-flight reset"
    );
    // the consumer is still connected but the message is forgotten
    c.cmd(&format!("FIN {}", m.id_str()));
    let f = c.read_non_heartbeat();
    assert_eq!(
        (f.kind, f.text()),
        (
            FRAME_ERROR,
            format!("E_FIN_FAILED FIN {} failed ID not in flight", m.id_str())
        )
    );
    // nothing else left to deliver; new messages still flow
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"fresh"), "OK");
    assert_eq!(c.read_message().body, b"fresh");
}

#[test]
fn pause_channel_stops_delivery_but_keeps_receiving() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 10);
    let mut other = consumer(&n, "t", "other", 10);
    assert_ok_empty(&httpx::post(&n, "/channel/pause?topic=t&channel=c", b""));
    let ch = httpx::channel(&n, "t", "c").unwrap();
    assert_eq!(ch["paused"], true);
    assert_eq!(httpx::channel(&n, "t", "other").unwrap()["paused"], false);
    assert_eq!(httpx::topic(&n, "t").unwrap()["paused"], false);

    assert_ok_text(&httpx::post(&n, "/mpub?topic=t", b"x\ny"), "OK");
    // the unpaused sibling gets its copies
    let mut got = vec![other.read_message().body, other.read_message().body];
    got.sort();
    assert_eq!(got, vec![b"x".to_vec(), b"y".to_vec()]);
    // the paused channel accumulates without delivering
    eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (int(&ch, "depth") == 2 && int(&ch, "message_count") == 2).then_some(())
    });
    c.expect_silence(Duration::from_millis(300));
    let ch = httpx::channel(&n, "t", "c").unwrap();
    assert_eq!(int(&ch, "in_flight_count"), 0);

    assert_ok_empty(&httpx::post(&n, "/channel/unpause?topic=t&channel=c", b""));
    let mut got = vec![c.read_message().body, c.read_message().body];
    got.sort();
    assert_eq!(got, vec![b"x".to_vec(), b"y".to_vec()]);
    let ch = httpx::channel(&n, "t", "c").unwrap();
    assert_eq!(ch["paused"], false);
    assert_eq!(int(&ch, "depth"), 0);
}

#[test]
fn pause_channel_lets_in_flight_finish() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 5);
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"m"), "OK");
    let m = c.read_message();
    assert_ok_empty(&httpx::post(&n, "/channel/pause?topic=t&channel=c", b""));
    c.cmd(&format!("FIN {}", m.id_str()));
    eventually(|| {
        let ch = httpx::channel(&n, "t", "c")?;
        (int(&ch, "in_flight_count") == 0 && int(&ch["clients"][0], "finish_count") == 1)
            .then_some(())
    });
}

#[test]
fn pause_flags_persisted_in_metadata() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=pc", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/pause?topic=t&channel=pc", b""));
    let s = std::fs::read_to_string(n.data_path.join("nsqd.dat")).expect("nsqd.dat after pause");
    let v: serde_json::Value = serde_json::from_str(&s).expect("JSON");
    let t = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "t")
        .cloned()
        .expect("topic t");
    let c = t["channels"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "pc").cloned())
        .unwrap_or_else(|| panic!("pc missing: {s}"));
    assert_eq!(c["paused"], true, "{s}");
}

#[test]
fn ephemeral_channel_removed_when_last_consumer_disconnects() {
    let n = Nsqd::start(&[]);
    let c1 = consumer(&n, "t", "c#ephemeral", 1);
    let c2 = consumer(&n, "t", "c#ephemeral", 1);
    let ch = httpx::channel(&n, "t", "c#ephemeral").expect("listed while subscribed");
    assert_eq!(int(&ch, "client_count"), 2);
    drop(c1);
    eventually(|| {
        (int(&httpx::channel(&n, "t", "c#ephemeral")?, "client_count") == 1).then_some(())
    });
    assert!(
        httpx::channel(&n, "t", "c#ephemeral").is_some(),
        "one consumer left"
    );
    drop(c2);
    eventually(|| {
        httpx::channel(&n, "t", "c#ephemeral")
            .is_none()
            .then_some(())
    });
    // the (non-ephemeral) topic stays
    assert!(httpx::topic(&n, "t").is_some());
    assert_err(
        &httpx::post(&n, "/channel/delete?topic=t&channel=c%23ephemeral", b""),
        404,
        "CHANNEL_NOT_FOUND",
    );
}

#[test]
fn ephemeral_channel_and_topic_both_go_with_last_consumer() {
    let n = Nsqd::start(&[]);
    let c = consumer(&n, "t#ephemeral", "c#ephemeral", 1);
    assert!(httpx::channel(&n, "t#ephemeral", "c#ephemeral").is_some());
    drop(c);
    eventually(|| httpx::topic(&n, "t#ephemeral").is_none().then_some(()));
}

#[test]
fn ephemeral_channel_created_over_http_survives_without_consumer() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/create?topic=t&channel=h%23ephemeral",
        b"",
    ));
    // a consumer of another channel coming and going does not affect it
    let c = consumer(&n, "t", "x#ephemeral", 1);
    drop(c);
    eventually(|| {
        httpx::channel(&n, "t", "x#ephemeral")
            .is_none()
            .then_some(())
    });
    assert!(
        httpx::channel(&n, "t", "h#ephemeral").is_some(),
        "never had a consumer: kept"
    );
}

#[test]
fn ephemeral_names_never_written_to_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let n = Nsqd::start_in(dir.path(), &[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=eph%23ephemeral", b""));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/create?topic=eph%23ephemeral&channel=c",
        b"",
    ));
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=durable", b""));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/create?topic=durable&channel=ch%23ephemeral",
        b"",
    ));
    let _sub = consumer(&n, "durable", "sub#ephemeral", 1);
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/create?topic=durable&channel=keep",
        b"",
    ));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/pause?topic=durable&channel=ch%23ephemeral",
        b"",
    ));
    let dat = dir.path().join("nsqd.dat");
    let s = eventually(|| {
        let s = std::fs::read_to_string(&dat).ok()?;
        s.contains("\"keep\"").then_some(s)
    });
    assert!(!s.contains("ephemeral"), "ephemeral name persisted: {s}");
    assert!(s.contains("\"durable\""), "{s}");
    drop(_sub);
    let st = n.stop();
    assert!(st.success(), "clean stop: {st:?}");
    let s = std::fs::read_to_string(&dat).unwrap();
    assert!(
        !s.contains("ephemeral"),
        "ephemeral name persisted at shutdown: {s}"
    );
    assert!(s.contains("\"durable\"") && s.contains("\"keep\""), "{s}");
}
