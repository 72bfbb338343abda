//! `/topic/create|delete|empty|pause|unpause`: errors in order and their effects.

mod common;

use common::httpx::{self, assert_err, assert_ok_empty, assert_ok_text, int};
use common::{eventually, Conn, Nsqd};
use std::time::Duration;

fn consumer(n: &Nsqd, topic: &str, channel: &str, rdy: u32) -> Conn {
    let mut c = n.connect();
    c.subscribe(topic, channel);
    c.cmd(&format!("RDY {rdy}"));
    c
}

#[test]
fn create_errors_and_success() {
    let n = Nsqd::start(&[]);
    assert_err(
        &httpx::post(&n, "/topic/create?topic=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/topic/create", b""),
        400,
        "MISSING_ARG_TOPIC",
    );
    assert_err(
        &httpx::post(&n, "/topic/create?channel=c", b""),
        400,
        "MISSING_ARG_TOPIC",
    );
    assert_err(
        &httpx::post(&n, "/topic/create?topic=", b""),
        400,
        "INVALID_TOPIC",
    );
    assert_err(
        &httpx::post(&n, "/topic/create?topic=a*b", b""),
        400,
        "INVALID_TOPIC",
    );
    assert_err(
        &httpx::post(&n, &format!("/topic/create?topic={}", "t".repeat(65)), b""),
        400,
        "INVALID_TOPIC",
    );
    assert!(httpx::topic_names(&n).is_empty());

    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=orders", b""));
    // idempotent
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=orders", b""));
    assert_eq!(httpx::topic_names(&n), vec!["orders".to_string()]);
    let t = httpx::topic(&n, "orders").unwrap();
    assert_eq!(t["channels"], serde_json::json!([]));
    assert_eq!(int(&t, "depth"), 0);
    assert_eq!(t["paused"], false);
}

#[test]
fn create_topic_persists_metadata() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=persisted_topic", b""));
    let dat = n.data_path.join("nsqd.dat");
    eventually(|| {
        let s = std::fs::read_to_string(&dat).ok()?;
        s.contains("\"persisted_topic\"").then_some(())
    });
}

#[test]
fn delete_errors_do_not_validate_name() {
    let n = Nsqd::start(&[]);
    assert_err(
        &httpx::post(&n, "/topic/delete?topic=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/topic/delete", b""),
        400,
        "MISSING_ARG_TOPIC",
    );
    // no name validation: an invalid name is simply not found
    assert_err(
        &httpx::post(&n, "/topic/delete?topic=bad!", b""),
        404,
        "TOPIC_NOT_FOUND",
    );
    assert_err(
        &httpx::post(&n, "/topic/delete?topic=", b""),
        404,
        "TOPIC_NOT_FOUND",
    );
    assert_err(
        &httpx::post(&n, "/topic/delete?topic=missing", b""),
        404,
        "TOPIC_NOT_FOUND",
    );
}

#[test]
fn delete_removes_topic_and_closes_subscribers() {
    let n = Nsqd::start(&[]);
    let mut c1 = consumer(&n, "doomed", "c1", 1);
    let mut c2 = consumer(&n, "doomed", "c2", 1);
    let mut other = consumer(&n, "kept", "c", 1);
    assert_ok_text(&httpx::post(&n, "/pub?topic=doomed", b"m"), "OK");
    c1.read_message();
    c2.read_message();
    assert_ok_empty(&httpx::post(&n, "/topic/delete?topic=doomed", b""));
    c1.expect_closed();
    c2.expect_closed();
    assert_eq!(httpx::topic_names(&n), vec!["kept".to_string()]);
    assert_err(
        &httpx::post(&n, "/topic/delete?topic=doomed", b""),
        404,
        "TOPIC_NOT_FOUND",
    );
    // other topics' consumers are unaffected
    assert_ok_text(&httpx::post(&n, "/pub?topic=kept", b"still here"), "OK");
    assert_eq!(other.read_message().body, b"still here");
    // recreating starts from scratch
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=doomed", b""));
    let t = httpx::topic(&n, "doomed").unwrap();
    assert_eq!(int(&t, "message_count"), 0);
    assert_eq!(t["channels"], serde_json::json!([]));
}

#[test]
fn delete_drops_queued_messages() {
    let n = Nsqd::start(&[]);
    for _ in 0..3 {
        assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"m"), "OK");
    }
    assert_eq!(int(&httpx::topic(&n, "t").unwrap(), "depth"), 3);
    assert_ok_empty(&httpx::post(&n, "/topic/delete?topic=t", b""));
    assert!(httpx::topic(&n, "t").is_none());
    // a new consumer on the recreated topic gets nothing of the old messages
    let mut c = consumer(&n, "t", "c", 5);
    c.expect_silence(Duration::from_millis(200));
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(int(&t, "depth"), 0);
}

#[test]
fn empty_errors_in_order() {
    let n = Nsqd::start(&[]);
    assert_err(
        &httpx::post(&n, "/topic/empty?topic=%zz", b""),
        400,
        "INVALID_REQUEST",
    );
    assert_err(
        &httpx::post(&n, "/topic/empty", b""),
        400,
        "MISSING_ARG_TOPIC",
    );
    assert_err(
        &httpx::post(&n, "/topic/empty?topic=", b""),
        400,
        "INVALID_TOPIC",
    );
    assert_err(
        &httpx::post(&n, "/topic/empty?topic=bad!", b""),
        400,
        "INVALID_TOPIC",
    );
    assert_err(
        &httpx::post(&n, "/topic/empty?topic=missing", b""),
        404,
        "TOPIC_NOT_FOUND",
    );
    assert!(httpx::topic_names(&n).is_empty());
}

#[test]
fn empty_drops_topic_messages_only() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/channel/create?topic=t&channel=c", b""));
    // two messages reach the channel
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t", b"a\nb"), "OK");
    eventually(|| (int(&httpx::channel(&n, "t", "c")?, "depth") == 2).then_some(()));
    // pause the topic so the next three stay in the topic
    assert_ok_empty(&httpx::post(&n, "/topic/pause?topic=t", b""));
    assert_ok_text(&httpx::post(&n, "/mpub?topic=t", b"c\nd\ne"), "OK");
    eventually(|| (int(&httpx::topic(&n, "t")?, "depth") == 3).then_some(()));

    assert_ok_empty(&httpx::post(&n, "/topic/empty?topic=t", b""));
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(int(&t, "depth"), 0);
    assert_eq!(int(&t, "backend_depth"), 0);
    let c = httpx::channel(&n, "t", "c").unwrap();
    assert_eq!(int(&c, "depth"), 2, "channels untouched");
    // after unpausing, only the channel's own messages are delivered
    assert_ok_empty(&httpx::post(&n, "/topic/unpause?topic=t", b""));
    let mut cons = consumer(&n, "t", "c", 10);
    let mut got = vec![cons.read_message().body, cons.read_message().body];
    got.sort();
    assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
    cons.expect_silence(Duration::from_millis(200));
}

#[test]
fn pause_unpause_errors_do_not_validate_name() {
    let n = Nsqd::start(&[]);
    for ep in ["pause", "unpause"] {
        assert_err(
            &httpx::post(&n, &format!("/topic/{ep}?topic=%zz"), b""),
            400,
            "INVALID_REQUEST",
        );
        assert_err(
            &httpx::post(&n, &format!("/topic/{ep}"), b""),
            400,
            "MISSING_ARG_TOPIC",
        );
        assert_err(
            &httpx::post(&n, &format!("/topic/{ep}?topic="), b""),
            404,
            "TOPIC_NOT_FOUND",
        );
        assert_err(
            &httpx::post(&n, &format!("/topic/{ep}?topic=bad!"), b""),
            404,
            "TOPIC_NOT_FOUND",
        );
        assert_err(
            &httpx::post(&n, &format!("/topic/{ep}?topic=missing"), b""),
            404,
            "TOPIC_NOT_FOUND",
        );
    }
    assert!(httpx::topic_names(&n).is_empty());
}

#[test]
fn pause_holds_messages_in_topic_and_unpause_releases_them() {
    let n = Nsqd::start(&[]);
    let mut c = consumer(&n, "t", "c", 10);
    assert_ok_empty(&httpx::post(&n, "/topic/pause?topic=t", b""));
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(t["paused"], true);
    assert_eq!(
        t["channels"][0]["paused"], false,
        "topic pause does not pause channels"
    );

    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"held1"), "OK");
    assert_ok_text(&httpx::post(&n, "/pub?topic=t", b"held2"), "OK");
    eventually(|| (int(&httpx::topic(&n, "t")?, "depth") == 2).then_some(()));
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(int(&t, "message_count"), 2);
    let ch = &t["channels"][0];
    assert_eq!(
        (
            int(ch, "depth"),
            int(ch, "message_count"),
            int(ch, "in_flight_count")
        ),
        (0, 0, 0)
    );
    c.expect_silence(Duration::from_millis(300));

    // pausing twice is fine
    assert_ok_empty(&httpx::post(&n, "/topic/pause?topic=t", b""));
    assert_ok_empty(&httpx::post(&n, "/topic/unpause?topic=t", b""));
    let mut got = vec![c.read_message().body, c.read_message().body];
    got.sort();
    assert_eq!(got, vec![b"held1".to_vec(), b"held2".to_vec()]);
    let t = httpx::topic(&n, "t").unwrap();
    assert_eq!(t["paused"], false);
    assert_eq!(int(&t, "depth"), 0);
    assert_eq!(int(&t["channels"][0], "message_count"), 2);
}

#[test]
fn pause_flag_persisted_in_metadata() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=pt", b""));
    assert_ok_empty(&httpx::post(&n, "/topic/pause?topic=pt", b""));
    // written immediately after the pause request
    let s = std::fs::read_to_string(n.data_path.join("nsqd.dat")).expect("nsqd.dat after pause");
    let v: serde_json::Value = serde_json::from_str(&s).expect("nsqd.dat is JSON");
    let t = v["topics"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == "pt"))
        .unwrap_or_else(|| panic!("pt not in {s}"));
    assert_eq!(t["paused"], true, "{s}");
    assert_ok_empty(&httpx::post(&n, "/topic/unpause?topic=pt", b""));
    let s = std::fs::read_to_string(n.data_path.join("nsqd.dat")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let t = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "pt")
        .unwrap()
        .clone();
    assert!(t["paused"] == false || t.get("paused").is_none(), "{s}");
}

#[test]
fn ephemeral_topic_disappears_when_last_channel_deleted() {
    let n = Nsqd::start(&[]);
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=e%23ephemeral", b""));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/create?topic=e%23ephemeral&channel=c1",
        b"",
    ));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/create?topic=e%23ephemeral&channel=c2",
        b"",
    ));
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/delete?topic=e%23ephemeral&channel=c1",
        b"",
    ));
    // one channel left: the topic stays
    assert!(httpx::topic(&n, "e#ephemeral").is_some());
    assert_ok_empty(&httpx::post(
        &n,
        "/channel/delete?topic=e%23ephemeral&channel=c2",
        b"",
    ));
    eventually(|| httpx::topic(&n, "e#ephemeral").is_none().then_some(()));
    assert_err(
        &httpx::post(&n, "/topic/delete?topic=e%23ephemeral", b""),
        404,
        "TOPIC_NOT_FOUND",
    );
}

#[test]
fn ephemeral_topic_without_channels_is_kept() {
    let n = Nsqd::start(&[]);
    assert_ok_text(&httpx::post(&n, "/pub?topic=e%23ephemeral", b"m"), "OK");
    assert_ok_empty(&httpx::post(&n, "/topic/create?topic=normal", b""));
    let names = httpx::topic_names(&n);
    assert_eq!(names, vec!["e#ephemeral".to_string(), "normal".to_string()]);
}
