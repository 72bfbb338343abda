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
