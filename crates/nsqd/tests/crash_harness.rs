//! A short run of the crash harness: publishers and consumers keep going while nsqd is killed
//! with SIGKILL at a random moment of every cycle and restarted on the same data directory. At
//! `--durability=write` no acknowledged message may be lost.

use std::time::Duration;

#[test]
fn kill_9_cycles_at_write_lose_no_acknowledged_message() {
    let mut cfg = nsq_crash::Config::new(env!("CARGO_BIN_EXE_nsqd"));
    cfg.durability = Some("write".into());
    cfg.cycles = 5;
    cfg.seconds_per_cycle = 0.5;
    cfg.drain_timeout = Duration::from_secs(20);
    let report = nsq_crash::run(&cfg).expect("the harness could not run");
    println!("{report}");
    assert_eq!(report.kills.len(), 5, "{report}");
    assert!(
        report.acknowledged > 0,
        "nothing was acknowledged, the run proves nothing:\n{report}"
    );
    assert!(report.drained, "{report}");
    assert_eq!(
        report.lost(),
        0,
        "acknowledged messages were lost:\n{report}"
    );
    assert!(report.anomalies().is_empty(), "{report}");
    for c in &report.channels {
        assert_eq!(
            c.repeated_attempts, 0,
            "attempt counts went back:\n{report}"
        );
    }
}

/// Deferred publishes and delayed requeues across kills, with a channel checkpoint on every
/// 10ms sync tick: an acknowledged DPUB, or a message requeued with a delay, must still be
/// delivered and FINed on every channel once nsqd is back.
#[test]
fn kill_9_cycles_with_dpub_and_delayed_req_lose_no_acknowledged_message() {
    let mut cfg = nsq_crash::Config::new(env!("CARGO_BIN_EXE_nsqd"));
    cfg.durability = Some("write".into());
    cfg.cycles = 50;
    cfg.seconds_per_cycle = 0.4;
    cfg.publishers = 4;
    cfg.consumers = 4;
    cfg.channels = 2;
    // Small batches and a high DPUB share: every deferred publish in flight at a checkpoint is
    // a chance for the loss this test guards against.
    cfg.max_batch = 4;
    cfg.dpub_share = 0.5;
    cfg.defer_ms = 200..=1500;
    cfg.req_share = 0.2;
    cfg.req_delay_ms = 0..=1000;
    cfg.extra_args.push("--sync-timeout=10ms".into());
    cfg.drain_timeout = Duration::from_secs(20);
    let report = nsq_crash::run(&cfg).expect("the harness could not run");
    println!("{report}");
    assert_eq!(report.rounds(), 50, "{report}");
    let total = report.total();
    assert!(
        report.acknowledged_deferred > 0
            && report.acknowledged > report.acknowledged_deferred
            && total.requeued > 0,
        "the run did not exercise DPUB, PUB and REQ:\n{report}"
    );
    assert!(report.drained, "{report}");
    assert_eq!(
        report.lost(),
        0,
        "acknowledged messages were lost:\n{report}"
    );
    assert!(report.anomalies().is_empty(), "{report}");
}
