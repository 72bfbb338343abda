//! Producer and consumer against a real nsqd: publish and consume, FIN, REQ, TOUCH, max
//! attempts, graceful stop and reconnects.
mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use nsq_client::{Consumer, Error, Producer};

async fn consumer_on(nsqd: &Daemon, topic: &str, config: nsq_client::Config) -> Consumer {
    let c = Consumer::new(topic, "ch", config).unwrap();
    c.connect_to_nsqd(&nsqd.tcp_addr()).await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_consume() {
    let nsqd = start_nsqd(&[]);
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    p.ping().await.unwrap();
    p.publish("t", "one").await.unwrap();
    p.multi_publish("t", vec![Bytes::from("two"), Bytes::from("three")])
        .await
        .unwrap();
    p.deferred_publish("t", Duration::from_millis(50), "four")
        .await
        .unwrap();

    let mut cfg = config();
    cfg.max_in_flight = 10;
    let c = consumer_on(&nsqd, "t", cfg).await;
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let m = within("a message", c.recv()).await.unwrap();
        assert_eq!(m.attempts, 1);
        assert_eq!(&*m.nsqd_address, nsqd.tcp_addr());
        bodies.push(String::from_utf8(m.body.to_vec()).unwrap());
        m.finish();
    }
    assert_eq!(bodies, ["one", "two", "three", "four"]);
    let stats = c.stats();
    assert_eq!(stats.messages_received, 4);
    assert_eq!(stats.messages_finished, 4);
    assert_eq!(stats.connections, 1);
    c.stop();
    within("stop", c.stopped()).await;
    assert!(c.recv().await.is_none());
    eventually(|| {
        let ch = nsqd.channel_stats("t", "ch")?;
        (ch["depth"] == 0 && ch["in_flight_count"] == 0 && ch["message_count"] == 4).then_some(())
    });
    p.stop().await;
    assert!(matches!(p.publish("t", "late").await, Err(Error::Stopped)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_are_pipelined() {
    let nsqd = start_nsqd(&[]);
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            p.publish("many", format!("m{i}")).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // A bad topic fails only its own command; the next call reconnects.
    let e = p.publish("bad!topic", "x").await.unwrap_err();
    match e {
        Error::Server { code, text, .. } => {
            assert_eq!(code, "E_BAD_TOPIC", "{text}");
        }
        other => panic!("unexpected {other:?}"),
    }
    within("publish after error", p.publish("many", "after"))
        .await
        .unwrap();
    let v = nsqd.get_json("/stats?format=json&topic=many");
    assert_eq!(v["topics"][0]["message_count"], 201);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_reports_unreachable_nsqd() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = Producer::new(&addr.to_string(), config()).unwrap();
    let e = within("a refused publish", p.publish("t", "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_redelivers() {
    let nsqd = start_nsqd(&[]);
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    p.publish("rq", "again").await.unwrap();
    let c = consumer_on(&nsqd, "rq", config()).await;
    let m = within("first delivery", c.recv()).await.unwrap();
    assert_eq!(m.attempts, 1);
    m.requeue_without_backoff(Some(Duration::ZERO));
    assert!(m.has_responded());
    // A second response is ignored.
    m.finish();
    let m2 = within("redelivery", c.recv()).await.unwrap();
    assert_eq!(m2.id, m.id);
    assert_eq!(m2.attempts, 2);
    m2.finish();
    let s = c.stats();
    assert_eq!((s.messages_requeued, s.messages_finished), (1, 1));
    let ch = nsqd.channel_stats("rq", "ch").unwrap();
    assert_eq!(ch["requeue_count"], 1);
    c.stop();
    within("stop", c.stopped()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_keeps_a_message() {
    let nsqd = start_nsqd(&[]);
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    p.publish("touch", "slow").await.unwrap();
    let mut cfg = config();
    cfg.msg_timeout = Duration::from_millis(1000);
    let c = consumer_on(&nsqd, "touch", cfg).await;
    let m = within("delivery", c.recv()).await.unwrap();
    // Held for twice the message timeout; without TOUCH nsqd would time it out.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    for _ in 0..8 {
        tick.tick().await;
        m.touch();
    }
    m.finish();
    p.publish("touch", "marker").await.unwrap();
    let next = within("marker", c.recv()).await.unwrap();
    assert_eq!(&next.body[..], b"marker");
    next.finish();
    let ch = nsqd.channel_stats("touch", "ch").unwrap();
    assert_eq!(ch["timeout_count"], 0);
    c.stop();
    within("stop", c.stopped()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_past_max_attempts_are_finished() {
    let nsqd = start_nsqd(&[]);
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    p.publish("ma", "poison").await.unwrap();
    let mut cfg = config();
    cfg.max_attempts = 2;
    let c = consumer_on(&nsqd, "ma", cfg).await;
    for attempt in 1..=2 {
        let m = within("delivery", c.recv()).await.unwrap();
        assert_eq!(m.attempts, attempt);
        m.requeue_without_backoff(Some(Duration::ZERO));
    }
    p.publish("ma", "marker").await.unwrap();
    let m = within("marker", c.recv()).await.unwrap();
    assert_eq!(&m.body[..], b"marker");
    m.finish();
    // The poison message's third delivery may come after the marker.
    eventually(|| (c.stats().messages_finished == 2).then_some(()));
    eventually(|| {
        let ch = nsqd.channel_stats("ma", "ch")?;
        (ch["depth"] == 0 && ch["in_flight_count"] == 0 && ch["message_count"] == 2).then_some(())
    });
    c.stop();
    within("stop", c.stopped()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_waits_for_messages_in_flight() {
    let nsqd = start_nsqd(&[]);
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    p.multi_publish("st", vec![Bytes::from("a"), Bytes::from("b")])
        .await
        .unwrap();
    let mut cfg = config();
    cfg.max_in_flight = 2;
    let c = consumer_on(&nsqd, "st", cfg).await;
    let a = within("a", c.recv()).await.unwrap();
    let b = within("b", c.recv()).await.unwrap();
    c.stop();
    // Still answerable; the consumer does not finish stopping while they are in flight.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.stopped())
            .await
            .is_err(),
        "stopped with messages in flight"
    );
    a.finish();
    b.finish();
    within("stop", c.stopped()).await;
    assert!(c.recv().await.is_none());
    // nsqd notices the closed connection on its own time.
    eventually(|| {
        let ch = nsqd.channel_stats("st", "ch")?;
        (ch["depth"] == 0
            && ch["in_flight_count"] == 0
            && ch["message_count"] == 2
            && ch["clients"].as_array().map(Vec::len) == Some(0))
        .then_some(())
    });
    // A stopped consumer refuses new connections.
    assert!(matches!(
        c.connect_to_nsqd(&nsqd.tcp_addr()).await,
        Err(Error::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_gives_back_messages_never_handed_over() {
    let nsqd = start_nsqd(&[]);
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    let bodies: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("m{i}"))).collect();
    p.multi_publish("gb", bodies).await.unwrap();
    let mut cfg = config();
    cfg.max_in_flight = 10;
    let c = consumer_on(&nsqd, "gb", cfg).await;
    let first = within("a message", c.recv()).await.unwrap();
    // Everything else has reached the client before the caller stops reading.
    eventually(|| (c.stats().messages_received == 10).then_some(()));
    first.finish();
    c.stop();
    // Without the requeue this would wait for the nine messages until the stop timeout.
    within("stop", c.stopped()).await;
    let s = c.stats();
    assert_eq!((s.messages_finished, s.messages_requeued), (1, 9));
    eventually(|| {
        let ch = nsqd.channel_stats("gb", "ch")?;
        (ch["depth"] == 9 && ch["in_flight_count"] == 0 && ch["requeue_count"] == 9).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_finish_and_requeue() {
    let nsqd = start_nsqd(&[]);
    let p = Producer::new(&nsqd.tcp_addr(), config()).unwrap();
    for i in 0..10 {
        p.publish("h", format!("{i}")).await.unwrap();
    }
    let mut cfg = config();
    cfg.max_in_flight = 5;
    cfg.backoff_multiplier = Duration::from_millis(10);
    let c = Arc::new(Consumer::new("h", "ch", cfg).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    c.add_concurrent_handlers(3, move |m| {
        let tx = tx.clone();
        async move {
            let first_odd = m.attempts == 1 && m.body[0] % 2 == 1;
            tx.send(m.body.clone()).unwrap();
            if first_odd {
                Err("odd".into())
            } else {
                Ok(())
            }
        }
    });
    c.connect_to_nsqd(&nsqd.tcp_addr()).await.unwrap();
    // Requeued odd messages come back only after the default requeue delay (90 s and more),
    // so the first ten deliveries are all there is to see.
    for _ in 0..10 {
        within("handled", rx.recv()).await.unwrap();
    }
    eventually(|| {
        let s = c.stats();
        (s.messages_finished == 5 && s.messages_requeued == 5).then_some(())
    });
    eventually(|| {
        let ch = nsqd.channel_stats("h", "ch")?;
        (ch["requeue_count"] == 5 && ch["deferred_count"] == 5).then_some(())
    });
    c.stop();
    within("stop", c.stopped()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_reconnects_to_a_restarted_nsqd() {
    let mut nsqd = start_nsqd(&[]);
    let addr = nsqd.tcp_addr();
    let p = Producer::new(&addr, config()).unwrap();
    p.publish("rc", "before").await.unwrap();
    let c = consumer_on(&nsqd, "rc", config()).await;
    let m = within("before", c.recv()).await.unwrap();
    m.finish();
    nsqd.kill();
    let _nsqd2 = start_nsqd_at(&addr, &[]);
    // The producer reconnects on the next call after the failure.
    let mut published = false;
    for _ in 0..3 {
        if p.publish("rc", "after").await.is_ok() {
            published = true;
            break;
        }
    }
    assert!(published, "producer did not reconnect");
    let m = within("after", c.recv()).await.unwrap();
    assert_eq!(&m.body[..], b"after");
    m.finish();
    c.stop();
    within("stop", c.stopped()).await;
}
