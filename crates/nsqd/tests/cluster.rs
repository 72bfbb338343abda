//! Discovery across a small cluster: two nsqlookupd and two nsqd, each nsqd registered with both
//! lookupds (`--lookupd-tcp-address` twice, `--broadcast-address=127.0.0.1`), all on loopback
//! ephemeral ports. Registration is asynchronous, so every check on a lookupd polls with a bound.
//!
//! Needs the `nsqlookupd` binary next to `nsqd` (`cargo build --bins`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{string_set, wait_until, Lookupd, Nsqd, WAIT};
use serde_json::{json, Value};

/// nsqd PINGs every 15 s; after a lookupd restart the first PING on the dead connection may fail
/// and only the next one reconnects and re-registers (spec: nsqlookupd.md §4.1, §4.3).
const REPOPULATE_WAIT: Duration = Duration::from_secs(40);

struct Cluster {
    l1: Lookupd,
    l2: Lookupd,
    a: Nsqd,
    b: Nsqd,
}

impl Cluster {
    /// Two lookupds (with `lookupd_extra` flags) and two nsqds registered with both; returns once
    /// both nsqds are listed in `/nodes` of both lookupds.
    fn start(lookupd_extra: &[&str]) -> Cluster {
        let l1 = Lookupd::start(lookupd_extra);
        let l2 = Lookupd::start(lookupd_extra);
        let a = Nsqd::start_with_lookupds(&[&l1, &l2], &[]);
        let b = Nsqd::start_with_lookupds(&[&l1, &l2], &[]);
        let c = Cluster { l1, l2, a, b };
        for (name, l) in c.lookupds() {
            wait_nodes(name, l, &[&c.a, &c.b], WAIT);
        }
        c
    }

    fn lookupds(&self) -> [(&'static str, &Lookupd); 2] {
        [("lookupd 1", &self.l1), ("lookupd 2", &self.l2)]
    }
}

fn ports(ns: &[&Nsqd]) -> BTreeSet<(u16, u16)> {
    ns.iter().map(|n| n.ports()).collect()
}

fn strs(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

#[track_caller]
fn post_ok(n: &Nsqd, path: &str) {
    let r = n.http_post(path, b"");
    assert_eq!(r.status, 200, "nsqd POST {path}: {}", r.text());
}

/// Waits until `/lookup?topic=T` lists exactly the producers `want`.
#[track_caller]
fn wait_lookup(name: &str, l: &Lookupd, topic: &str, want: &[&Nsqd], timeout: Duration) {
    let want = ports(want);
    wait_until(
        timeout,
        &format!("{name}: /lookup?topic={topic} producers (tcp, http ports) == {want:?}"),
        || {
            let got = l.lookup_ports(topic);
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    );
}

/// Waits until `/nodes` lists exactly `want`.
#[track_caller]
fn wait_nodes(name: &str, l: &Lookupd, want: &[&Nsqd], timeout: Duration) {
    let want = ports(want);
    wait_until(
        timeout,
        &format!("{name}: /nodes producers (tcp, http ports) == {want:?}"),
        || {
            let got = l.node_ports();
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    );
}

/// Waits until `/channels?topic=T` contains every channel of `want` (and, if `absent` is given,
/// none of those).
#[track_caller]
fn wait_channels(name: &str, l: &Lookupd, topic: &str, want: &[&str], absent: &[&str]) {
    wait_until(
        WAIT,
        &format!("{name}: /channels?topic={topic} to contain {want:?} and not {absent:?}"),
        || {
            let got = l.channels(topic);
            if want.iter().all(|c| got.contains(*c)) && !absent.iter().any(|c| got.contains(*c)) {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    );
}

/// Waits until the `/debug` entry `key` lists exactly the producers `want` (none: key absent).
#[track_caller]
fn wait_debug(name: &str, l: &Lookupd, key: &str, want: &[&Nsqd]) {
    let want = ports(want);
    wait_until(
        WAIT,
        &format!("{name}: /debug {key:?} producers == {want:?}"),
        || {
            let got = l.debug_ports(key);
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    );
}

/// The `topics` of a `/nodes` entry mapped to its `tombstones` flags.
#[track_caller]
fn node_topics(node: &Value) -> BTreeMap<String, bool> {
    let topics = node["topics"]
        .as_array()
        .unwrap_or_else(|| panic!("node topics not an array: {node}"));
    let tombs = node["tombstones"]
        .as_array()
        .unwrap_or_else(|| panic!("node tombstones not an array: {node}"));
    assert_eq!(
        topics.len(),
        tombs.len(),
        "topics and tombstones differ in length: {node}"
    );
    topics
        .iter()
        .zip(tombs)
        .map(|(t, b)| {
            (
                t.as_str()
                    .unwrap_or_else(|| panic!("topic not a string: {node}"))
                    .to_string(),
                b.as_bool()
                    .unwrap_or_else(|| panic!("tombstone not a bool: {node}")),
            )
        })
        .collect()
}

/// Topic names of `n`'s `/nodes` entry on `l` (panics if `n` is not listed).
#[track_caller]
fn node_topic_names(l: &Lookupd, n: &Nsqd) -> BTreeSet<String> {
    let node = l
        .node_of(n)
        .unwrap_or_else(|| panic!("nsqd {:?} not in /nodes {:?}", n.ports(), l.nodes()));
    node_topics(&node).into_keys().collect()
}

#[test]
fn registrations_of_both_nodes_reach_both_lookupds() {
    let c = Cluster::start(&[]);
    let (a, b) = (&c.a, &c.b);

    // A: a shared topic with a channel (HTTP), and a topic of its own.
    post_ok(a, "/topic/create?topic=orders");
    post_ok(a, "/channel/create?topic=orders&channel=archive");
    post_ok(a, "/topic/create?topic=a_only");
    // B: the shared topic with a channel created by a TCP SUB, and a topic created by a publish.
    let mut sub = b.connect();
    sub.subscribe("orders", "billing");
    let r = b.http_post("/pub?topic=b_only", b"x");
    assert_eq!((r.status, r.text()), (200, "OK".to_string()));

    for (name, l) in c.lookupds() {
        wait_lookup(name, l, "orders", &[a, b], WAIT);
        wait_lookup(name, l, "a_only", &[a], WAIT);
        wait_lookup(name, l, "b_only", &[b], WAIT);
        wait_channels(name, l, "orders", &["archive", "billing"], &[]);

        let lk = l.lookup("orders").expect("orders known");
        assert!(
            lk["producers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["broadcast_address"] == "127.0.0.1" && p["version"] == "1.3.0"),
            "{name}: producers must carry broadcast_address 127.0.0.1 and version 1.3.0: {lk}"
        );
        // Nothing but what the nodes created (channel pre-creation may copy A's channel to B,
        // which is still one of these names).
        assert_eq!(
            string_set(&lk["channels"]),
            strs(&["archive", "billing"]),
            "{name}: /lookup channels"
        );
        assert_eq!(
            l.channels("orders"),
            strs(&["archive", "billing"]),
            "{name}: /channels"
        );
        assert!(
            l.channels("a_only").is_empty(),
            "{name}: a_only has no channels"
        );
        assert_eq!(
            l.topics(),
            strs(&["orders", "a_only", "b_only"]),
            "{name}: /topics"
        );

        wait_nodes(name, l, &[a, b], WAIT);
        assert_eq!(
            node_topic_names(l, a),
            strs(&["orders", "a_only"]),
            "{name}: /nodes topics of node A"
        );
        assert_eq!(
            node_topic_names(l, b),
            strs(&["orders", "b_only"]),
            "{name}: /nodes topics of node B"
        );
        for node in l.nodes() {
            assert!(
                node_topics(&node).values().all(|t| !t),
                "{name}: nothing is tombstoned: {node}"
            );
        }
    }
    drop(sub);
}

#[test]
fn killed_nsqd_disappears_from_lookup_and_nodes() {
    let c = Cluster::start(&[]);
    post_ok(&c.a, "/topic/create?topic=shared");
    post_ok(&c.a, "/topic/create?topic=a_only");
    post_ok(&c.b, "/topic/create?topic=shared");
    for (name, l) in c.lookupds() {
        wait_lookup(name, l, "shared", &[&c.a, &c.b], WAIT);
        wait_lookup(name, l, "a_only", &[&c.a], WAIT);
    }

    let Cluster { l1, l2, mut a, b } = c;
    a.signal("KILL");
    a.wait_exit();

    for (name, l) in [("lookupd 1", &l1), ("lookupd 2", &l2)] {
        wait_lookup(name, l, "shared", &[&b], WAIT);
        wait_nodes(name, l, &[&b], WAIT);
        // The topic key stays (keys never expire), with no producer left.
        wait_until(
            WAIT,
            &format!("{name}: /lookup?topic=a_only to answer 200 with no producers"),
            || match l.lookup("a_only") {
                Some(v) if v["producers"] == json!([]) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        assert!(l.topics().contains("a_only"), "{name}: a_only key kept");
        // The connection is gone, so the registrations are gone, not just hidden.
        wait_debug(name, l, "client::", &[&b]);
        wait_debug(name, l, "topic:a_only:", &[]);
    }
}

#[test]
fn stopped_nsqd_is_hidden_after_inactive_producer_timeout() {
    // The connection of a SIGSTOPped process stays open, so only the inactivity timeout can hide
    // it. IDENTIFY and PING are the only liveness signals and nsqd PINGs every 15 s, so the node
    // is visible for the first 4 s after it connects.
    let timeout = Duration::from_secs(4);
    let l = Lookupd::start(&["--inactive-producer-timeout=4s"]);
    let mut n = Nsqd::start_with_lookupds(&[&l], &[]);
    post_ok(&n, "/topic/create?topic=idle");
    wait_lookup("lookupd", &l, "idle", &[&n], timeout);
    assert_eq!(l.node_ports(), ports(&[&n]), "/nodes lists the fresh node");

    n.signal("STOP");
    wait_lookup("lookupd", &l, "idle", &[], timeout + WAIT);
    wait_nodes("lookupd", &l, &[], WAIT);
    // Hidden, not removed: the registrations are still held for the open connection.
    assert_eq!(
        l.debug_ports("topic:idle:"),
        ports(&[&n]),
        "/debug must still hold the stopped node's topic registration"
    );
    assert_eq!(
        l.debug_ports("client::"),
        ports(&[&n]),
        "/debug must still hold the stopped node's client registration"
    );
    // The key itself is still known.
    assert_eq!(
        l.lookup("idle").map(|v| v["producers"].clone()),
        Some(json!([])),
        "/lookup?topic=idle of an inactive producer"
    );

    n.signal("CONT");
    n.signal("KILL");
    n.wait_exit();
    wait_debug("lookupd", &l, "topic:idle:", &[]);
    wait_debug("lookupd", &l, "client::", &[]);
}

#[test]
fn restarted_lookupd_is_repopulated_by_the_nsqds() {
    let c = Cluster::start(&[]);
    let (a, b) = (&c.a, &c.b);
    post_ok(a, "/topic/create?topic=orders");
    post_ok(a, "/channel/create?topic=orders&channel=archive");
    post_ok(b, "/topic/create?topic=orders");
    post_ok(b, "/channel/create?topic=orders&channel=billing");
    post_ok(b, "/topic/create?topic=b_only");
    for (name, l) in c.lookupds() {
        wait_lookup(name, l, "orders", &[a, b], WAIT);
        wait_lookup(name, l, "b_only", &[b], WAIT);
        wait_channels(name, l, "orders", &["archive", "billing"], &[]);
    }

    let Cluster { l1, l2, a, b } = c;
    let restarted_at = Instant::now();
    let l2 = l2.restart_killed();
    // Fresh, state-less lookupd on the same TCP port; the nsqds find it again through their PING.
    wait_nodes("restarted lookupd", &l2, &[&a, &b], REPOPULATE_WAIT);
    wait_lookup("restarted lookupd", &l2, "orders", &[&a, &b], WAIT);
    wait_lookup("restarted lookupd", &l2, "b_only", &[&b], WAIT);
    wait_channels(
        "restarted lookupd",
        &l2,
        "orders",
        &["archive", "billing"],
        &[],
    );
    assert_eq!(
        l2.topics(),
        strs(&["orders", "b_only"]),
        "restarted lookupd /topics"
    );
    eprintln!(
        "restarted lookupd repopulated after {:?}",
        restarted_at.elapsed()
    );

    // The other lookupd was never disturbed.
    wait_lookup("lookupd 1", &l1, "orders", &[&a, &b], WAIT);
    wait_nodes("lookupd 1", &l1, &[&a, &b], WAIT);
}

#[test]
fn tombstone_hides_node_for_one_topic_for_the_lifetime() {
    let lifetime = Duration::from_secs(2);
    let c = Cluster::start(&["--tombstone-lifetime=2s"]);
    let (a, b) = (&c.a, &c.b);
    post_ok(a, "/topic/create?topic=orders");
    post_ok(a, "/channel/create?topic=orders&channel=archive");
    post_ok(a, "/topic/create?topic=a_only");
    post_ok(b, "/topic/create?topic=orders");
    for (name, l) in c.lookupds() {
        wait_lookup(name, l, "orders", &[a, b], WAIT);
        wait_lookup(name, l, "a_only", &[a], WAIT);
    }

    // A node address that matches nobody changes nothing (and is still 200).
    let r = c.l1.post("/topic/tombstone?topic=orders&node=127.0.0.1:1");
    assert_eq!((r.status, r.text()), (200, String::new()));
    assert_eq!(c.l1.lookup_ports("orders"), ports(&[a, b]));

    let before = Instant::now();
    let r = c.l1.post(&format!(
        "/topic/tombstone?topic=orders&node={}",
        a.lookupd_node_id()
    ));
    assert_eq!(
        (r.status, r.text()),
        (200, String::new()),
        "POST /topic/tombstone"
    );

    // Hidden from /lookup of that topic on that lookupd, at once.
    let lk = c.l1.lookup("orders").expect("orders known");
    assert_eq!(
        common::producer_ports(&lk["producers"]),
        ports(&[b]),
        "tombstoned node must be hidden from /lookup?topic=orders: {lk}"
    );
    assert_eq!(
        string_set(&lk["channels"]),
        strs(&["archive"]),
        "channels unaffected by a tombstone"
    );
    // Its other topics, and the other lookupd, are unaffected.
    assert_eq!(
        c.l1.lookup_ports("a_only"),
        ports(&[a]),
        "a_only on lookupd 1"
    );
    assert_eq!(
        c.l2.lookup_ports("orders"),
        ports(&[a, b]),
        "orders on lookupd 2"
    );
    // /nodes keeps the node and flags the tombstoned topic.
    assert_eq!(
        c.l1.node_ports(),
        ports(&[a, b]),
        "/nodes keeps a tombstoned node"
    );
    let na = c.l1.node_of(a).expect("A in /nodes");
    let want: BTreeMap<String, bool> =
        [("orders".to_string(), true), ("a_only".to_string(), false)]
            .into_iter()
            .collect();
    assert_eq!(node_topics(&na), want, "/nodes of A: {na}");
    let nb = c.l1.node_of(b).expect("B in /nodes");
    assert_eq!(
        node_topics(&nb),
        [("orders".to_string(), false)].into_iter().collect(),
        "/nodes of B: {nb}"
    );
    let debug_a = c.l1.debug()["topic:orders:"]
        .as_array()
        .expect("topic:orders: in /debug")
        .iter()
        .find(|p| a.is_producer(p))
        .cloned()
        .expect("A under topic:orders: in /debug");
    assert_eq!(debug_a["tombstoned"], true, "/debug entry: {debug_a}");

    // After the lifetime the flag is ignored: A is back (it is still registered).
    wait_lookup("lookupd 1", &c.l1, "orders", &[a, b], lifetime + WAIT);
    let hidden_for = before.elapsed();
    assert!(
        hidden_for >= lifetime - Duration::from_millis(50),
        "tombstone lifted after only {hidden_for:?} (lifetime {lifetime:?})"
    );
    let na = c.l1.node_of(a).expect("A in /nodes");
    assert!(
        node_topics(&na).values().all(|t| !t),
        "tombstones after the lifetime: {na}"
    );
}

#[test]
fn deleting_topic_or_channel_on_nsqd_unregisters_it() {
    let c = Cluster::start(&[]);
    let (a, b) = (&c.a, &c.b);
    post_ok(a, "/topic/create?topic=orders");
    post_ok(a, "/channel/create?topic=orders&channel=archive");
    post_ok(a, "/topic/create?topic=keep");
    post_ok(b, "/topic/create?topic=orders");
    post_ok(b, "/channel/create?topic=orders&channel=archive");
    post_ok(b, "/channel/create?topic=orders&channel=billing");
    for (name, l) in c.lookupds() {
        wait_lookup(name, l, "orders", &[a, b], WAIT);
        wait_debug(name, l, "channel:orders:archive", &[a, b]);
        wait_debug(name, l, "channel:orders:billing", &[b]);
    }

    post_ok(a, "/topic/delete?topic=orders");
    for (name, l) in c.lookupds() {
        wait_lookup(name, l, "orders", &[b], WAIT);
        wait_debug(name, l, "topic:orders:", &[b]);
        wait_debug(name, l, "channel:orders:archive", &[b]);
        assert_eq!(
            node_topic_names(l, a),
            strs(&["keep"]),
            "{name}: /nodes topics of A after the delete"
        );
        assert_eq!(
            l.lookup_ports("keep"),
            ports(&[a]),
            "{name}: keep untouched"
        );
    }

    // Channel deletion unregisters the channel only; the non-ephemeral key stays listed.
    post_ok(b, "/channel/delete?topic=orders&channel=billing");
    for (name, l) in c.lookupds() {
        wait_debug(name, l, "channel:orders:billing", &[]);
        assert_eq!(
            l.lookup_ports("orders"),
            ports(&[b]),
            "{name}: topic registration untouched"
        );
        assert!(
            l.channels("orders").contains("billing"),
            "{name}: a non-ephemeral channel key stays after the last UNREGISTER"
        );
    }
}

#[test]
fn ephemeral_registrations_vanish_with_their_last_producer() {
    let c = Cluster::start(&[]);
    let a = &c.a;
    let mut chan_sub = a.connect();
    chan_sub.subscribe("eph", "live#ephemeral");
    let mut topic_sub = a.connect();
    topic_sub.subscribe("gone#ephemeral", "c#ephemeral");
    for (name, l) in c.lookupds() {
        wait_channels(name, l, "eph", &["live#ephemeral"], &[]);
        wait_lookup(name, l, "gone#ephemeral", &[a], WAIT);
    }

    // Last consumer gone: nsqd deletes the ephemeral channel (and with its last channel the
    // ephemeral topic) and UNREGISTERs; lookupd drops keys of ephemeral names with no producers.
    drop(chan_sub);
    drop(topic_sub);
    for (name, l) in c.lookupds() {
        wait_channels(name, l, "eph", &[], &["live#ephemeral"]);
        wait_until(
            WAIT,
            &format!("{name}: /topics without gone#ephemeral"),
            || {
                let t = l.topics();
                if t.contains("gone#ephemeral") {
                    Err(format!("{t:?}"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(
            l.lookup("gone#ephemeral").is_none(),
            "{name}: /lookup of a dropped key is 404"
        );
        assert_eq!(
            l.lookup_ports("eph"),
            ports(&[a]),
            "{name}: eph topic stays"
        );
    }
}

#[test]
fn new_topic_precreates_channels_known_to_lookupd() {
    let c = Cluster::start(&[]);
    let (a, b) = (&c.a, &c.b);
    post_ok(a, "/topic/create?topic=pc");
    post_ok(a, "/channel/create?topic=pc&channel=c");
    let mut sub = a.connect();
    sub.subscribe("pc", "e#ephemeral");
    for (name, l) in c.lookupds() {
        wait_channels(name, l, "pc", &["c", "e#ephemeral"], &[]);
    }
    assert!(b.topic_stats("pc").is_none(), "node B must not know pc yet");

    let r = b.http_post("/pub?topic=pc", b"first");
    assert_eq!(
        (r.status, r.text()),
        (200, "OK".to_string()),
        "publish to B"
    );

    // Right after the publish returns: the channel exists and holds the message.
    let t = b.topic_stats("pc").expect("pc on node B after the publish");
    let names: BTreeSet<String> = t["channels"]
        .as_array()
        .expect("channels array")
        .iter()
        .map(|ch| ch["channel_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        strs(&["c"]),
        "node B's channels of the new topic (ephemeral names are not pre-created): {t}"
    );
    let ch = b.channel_stats("pc", "c").unwrap();
    assert_eq!(
        ch["depth"].as_i64(),
        Some(1),
        "the first message must have reached the pre-created channel: {ch}"
    );

    // B announces both the topic and the pre-created channel.
    for (name, l) in c.lookupds() {
        wait_lookup(name, l, "pc", &[a, b], WAIT);
        wait_debug(name, l, "channel:pc:c", &[a, b]);
    }
    drop(sub);
}

#[test]
fn runtime_config_connects_and_drops_lookupds() {
    let l1 = Lookupd::start(&[]);
    let l2 = Lookupd::start(&[]);
    let n = Nsqd::start_with_lookupds(&[&l1], &[]);
    post_ok(&n, "/topic/create?topic=rt");
    wait_lookup("lookupd 1", &l1, "rt", &[&n], WAIT);
    assert!(l2.nodes().is_empty(), "lookupd 2 knows nobody yet");
    assert!(l2.lookup("rt").is_none(), "lookupd 2 does not know rt yet");

    let both = json!([l1.tcp_address(), l2.tcp_address()]);
    let r = n.http(
        "PUT",
        "/config/nsqlookupd_tcp_addresses",
        both.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "PUT /config: {}", r.text());
    assert_eq!(r.json(), both, "PUT /config answers the new value");
    assert_eq!(
        n.http_get("/config/nsqlookupd_tcp_addresses").json(),
        both,
        "GET /config after PUT"
    );

    wait_nodes("lookupd 2", &l2, &[&n], WAIT);
    wait_lookup("lookupd 2", &l2, "rt", &[&n], WAIT);
    assert_eq!(
        l1.lookup_ports("rt"),
        ports(&[&n]),
        "lookupd 1 keeps the node"
    );

    // Dropping a lookupd from the list closes its connection: it forgets the node.
    let only2 = json!([l2.tcp_address()]);
    let r = n.http(
        "PUT",
        "/config/nsqlookupd_tcp_addresses",
        only2.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "PUT /config: {}", r.text());
    assert_eq!(r.json(), only2);
    wait_debug("lookupd 1", &l1, "client::", &[]);
    wait_lookup("lookupd 1", &l1, "rt", &[], WAIT);
    wait_nodes("lookupd 1", &l1, &[], WAIT);
    assert_eq!(
        l2.lookup_ports("rt"),
        ports(&[&n]),
        "lookupd 2 keeps the node"
    );

    // Topics created afterwards go to the remaining lookupd only.
    post_ok(&n, "/topic/create?topic=later");
    wait_lookup("lookupd 2", &l2, "later", &[&n], WAIT);
    assert!(
        l1.lookup("later").is_none(),
        "dropped lookupd must not hear of new topics"
    );
}
