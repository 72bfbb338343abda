//! The `nsqd_rollback` program: flags, the data-path lock, exit codes and its summary.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use nsq_migrate::{import_legacy, metadata, ImportOptions};

fn run(args: &[&str], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nsqd_rollback"));
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A data directory of the native store with topic `t` (channels `a`, `b`) and 4 messages.
fn native_dir(d: &Path) {
    write_nsqd_dat(d, &[("t", &["a", "b"])]);
    let msgs: Vec<_> = (0..4).map(|i| msg(i, 0, "m")).collect();
    write_legacy(d, "t", &msgs, 1 << 20);
    write_legacy(d, "t:a", &[msg(77, 3, "owed")], 1 << 20);
    let specs = metadata::load(d).unwrap().unwrap().topic_specs();
    import_legacy(d, &specs, &ImportOptions::default()).unwrap();
}

#[test]
fn flag_errors_exit_2_and_help_and_version_exit_0() {
    let out = run(&["--no-such-flag"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("flag provided but not defined: -no-such-flag\n"),
        "{err}"
    );
    assert!(err.contains("Usage of nsqd_rollback:"), "{err}");

    let out = run(&["--max-msg-size", "lots"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = run(&["--max-bytes-per-file=0"], None);
    assert_eq!(out.status.code(), Some(2));

    let out = run(&["-h"], None);
    assert_eq!(out.status.code(), Some(0));
    let usage = text(&out.stderr);
    for flag in [
        "-data-path",
        "-keep-store",
        "-max-bytes-per-file",
        "-max-msg-size",
        "-version",
    ] {
        assert!(usage.contains(flag), "{usage}");
    }
    assert!(usage.contains("(default 104857600)"), "{usage}");

    let out = run(&["--version"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("nsqd_rollback v1.3.0 (built w/rustc"));
}

#[test]
fn refuses_while_the_data_path_is_locked() {
    let d = tempfile::tempdir().unwrap();
    native_dir(d.path());
    let lock = nsq_daemon::process::lock_dir(d.path()).unwrap();
    let out = run(&["--data-path", d.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("failed to lock data-path: cannot flock directory"),
        "{err}"
    );
    assert!(
        err.contains("possibly in use by another instance of nsqd"),
        "{err}"
    );
    assert!(nsq_diskqueue::list_queues(d.path()).unwrap().is_empty());
    drop(lock);

    let missing = d.path().join("missing");
    let out = run(&["--data-path", missing.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn converts_the_working_directory_and_prints_a_summary() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    native_dir(d);
    let out = run(&[], Some(d));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("topic t: 9 messages (t:a 5, t:b 4)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("total: 9 messages in 2 queues of 1 topics written to "),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("native store removed"),
        "{stdout}"
    );
    assert_eq!(nsq_diskqueue::list_queues(d).unwrap(), ["t:a", "t:b"]);
    assert_eq!(legacy_view(d, "t:a").len(), 5);
    assert!(!d.join("store").exists());

    // A second run finds the Go queues it would write and refuses.
    native_dir_again(d);
    let out = run(&["--data-path", d.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("already has files"), "{err}");
}

/// Recreates a native topic next to the Go queues the first conversion wrote.
fn native_dir_again(d: &Path) {
    let other = tempfile::tempdir().unwrap();
    native_dir(other.path());
    copy_dir(&other.path().join("store"), &d.join("store"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
