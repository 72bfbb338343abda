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
