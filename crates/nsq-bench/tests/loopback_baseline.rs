//! The loopback baseline tool runs, counts every frame it sent, and reports its rate.
use std::process::Command;

#[test]
fn reports_a_rate_for_a_short_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_loopback_baseline"))
        .args(["--runfor=200ms", "--size=100", "--batch=16"])
        .output()
        .expect("run loopback_baseline");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rate: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("frames/s: "))
        .expect("frames/s line")
        .parse()
        .expect("a number");
    assert!(rate > 0.0);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("duration: "));
}

#[test]
fn rejects_a_zero_size() {
    let out = Command::new(env!("CARGO_BIN_EXE_loopback_baseline"))
        .arg("--size=0")
        .output()
        .expect("run loopback_baseline");
    assert!(!out.status.success());
}

#[test]
fn round_trip_mode_reports_ordered_percentiles() {
    let out = Command::new(env!("CARGO_BIN_EXE_loopback_baseline"))
        .args(["--mode=rtt", "--runfor=200ms", "--size=100"])
        .output()
        .expect("run loopback_baseline");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
            .parse()
            .expect("a number")
    };
    assert!(value("round_trips: ") > 0.0);
    let (p50, p99, p999, max) = (
        value("p50_us: "),
        value("p99_us: "),
        value("p999_us: "),
        value("max_us: "),
    );
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= p999 && p999 <= max);
}

#[test]
fn rejects_an_unknown_mode() {
    let out = Command::new(env!("CARGO_BIN_EXE_loopback_baseline"))
        .arg("--mode=sideways")
        .output()
        .expect("run loopback_baseline");
    assert!(!out.status.success());
}
