//! Running out of space: a failed store write fails the publish (`E_PUB_FAILED` on TCP, which is
//! fatal; `503 EXITING` on HTTP), makes `/ping` answer `500 NOK - <reason>` and is logged; what
//! was stored before stays intact; publishing resumes by itself once space returns; the
//! messages stored before the failure are delivered after a restart, and the failed ones never.
//!
//! Two ways to run out of space:
//! - a 4 MiB tmpfs filled with a ballast file (`ENOSPC`, the real thing; mounting needs root or
//!   CAP_SYS_ADMIN, and the test fails, rather than skips, when it cannot mount);
//! - `prlimit --fsize` (`EFBIG`, works without privileges): the kernel also sends SIGXFSZ, which
//!   nsqd must ignore so that the write simply fails.

mod common;

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;

/// Size of every test message body.
const BODY: usize = 1000;

/// nsqd started through an optional wrapper command (`prlimit ...`), with its log captured.
struct Daemon {
    child: Child,
    tcp: SocketAddr,
    http: SocketAddr,
    log: ProcessLog,
}

impl Daemon {
    fn start(wrapper: &[String], data: &Path) -> Daemon {
        let mut args: Vec<String> = Vec::new();
        let program = match wrapper.split_first() {
            Some((prog, rest)) => {
                args.extend(rest.iter().cloned());
                args.push("--".into());
                args.push(bin().into());
                Path::new(prog)
            }
            None => Path::new(bin()),
        };
        args.extend([
            "--tcp-address=127.0.0.1:0".to_string(),
            "--http-address=127.0.0.1:0".to_string(),
            format!("--data-path={}", data.display()),
            "--durability=write".to_string(),
        ]);
        let (child, log) = spawn_logged(program, &args, "nsqd", "NSQD_TEST_LOG");
        let mut d = Daemon {
            child,
            tcp: "0.0.0.0:0".parse().unwrap(),
            http: "0.0.0.0:0".parse().unwrap(),
            log,
        };
        d.tcp = d.log.listen_addr("TCP: listening on ");
        d.http = d.log.listen_addr("HTTP: listening on ");
        d
    }

    /// Waits for a log line containing every one of `needles`.
    fn wait_for_log(&self, needles: &[&str]) -> String {
        self.log.wait_for_all(needles)
    }

    fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    fn connect(&self) -> Conn {
        let mut c = Conn::raw(self.tcp);
        c.send(b"  V2");
        c
    }

    fn post(&self, path: &str, body: &[u8]) -> HttpResponse {
        http_request(self.http, "POST", path, body)
    }

    fn get(&self, path: &str) -> HttpResponse {
        http_request(self.http, "GET", path, b"")
    }

    fn channel(&self, topic: &str, channel: &str) -> serde_json::Value {
        let s = self
            .get(&format!("/stats?format=json&topic={topic}"))
            .json();
        s["topics"][0]["channels"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["channel_name"] == channel).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Explains why nsqd is gone, if it is.
    fn death(&mut self) -> Option<String> {
        let st = self.child.try_wait().unwrap()?;
        Some(match st.signal() {
            Some(25) => "nsqd was killed by SIGXFSZ (signal 25) when a write went past \
                         RLIMIT_FSIZE; it must ignore SIGXFSZ so that the write fails with EFBIG"
                .to_string(),
            Some(sig) => format!("nsqd was killed by signal {sig}"),
            None => format!("nsqd exited with {st}"),
        })
    }

    /// Gives a process that dropped a connection time to die, and says how it went.
    fn wait_death(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Some(why) = self.death() {
                return why;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        "nsqd is still running".to_string()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one frame, `None` when the server closed the connection.
fn read_frame_or_eof(c: &mut Conn) -> Option<Frame> {
    let mut hdr = [0u8; 8];
    c.stream.read_exact(&mut hdr).ok()?;
    let size = u32::from_be_bytes(hdr[0..4].try_into().unwrap()) as usize;
    let kind = i32::from_be_bytes(hdr[4..8].try_into().unwrap());
    let mut data = vec![0u8; size - 4];
    c.stream.read_exact(&mut data).ok()?;
    Some(Frame { kind, data })
}

fn body(tag: &str, i: usize) -> Vec<u8> {
    let mut b = format!("{tag}-{i:06}-").into_bytes();
    b.resize(BODY, b'x');
    b
}

/// How the test runs out of space and gets it back.
trait Space {
    /// Wrapper command nsqd runs under.
    fn wrapper(&self) -> Vec<String>;
    /// Takes the space away (nsqd is running).
    fn exhaust(&mut self, nsqd: &Daemon);
    /// Gives it back.
    fn restore(&mut self, nsqd: &Daemon);
    /// What the OS error looks like.
    fn reason(&self) -> &'static str;
}

/// The scenario shared by both ways of running out of space.
fn run_out_of_space(data: &Path, space: &mut dyn Space) {
    let mut n = Daemon::start(&space.wrapper(), data);
    for path in ["/topic/create?topic=t", "/channel/create?topic=t&channel=c"] {
        assert_eq!(n.post(path, b"").status, 200, "{path}");
    }
    // A few messages stored while there is room.
    let mut p = n.connect();
    let mut stored: HashSet<Vec<u8>> = HashSet::new();
    for i in 0..20 {
        let b = body("early", i);
        p.publish("t", &b);
        stored.insert(b);
    }

    space.exhaust(&n);
    let reason = space.reason();

    // Publish until the store refuses; everything acknowledged until then counts as stored.
    let mut failed: HashSet<Vec<u8>> = HashSet::new();
    let error = 'fill: {
        for i in 0..20_000 {
            let b = body("fill", i);
            p.cmd_body("PUB t", &b);
            match read_frame_or_eof(&mut p) {
                Some(f) if f.kind == FRAME_RESPONSE && f.data == b"OK" => {
                    stored.insert(b);
                }
                Some(f) => {
                    failed.insert(b);
                    break 'fill f;
                }
                None => {
                    let why = n.wait_death();
                    panic!(
                        "the connection closed without an error frame after {i} publishes. {why}"
                    );
                }
            }
        }
        panic!("20000 publishes of {BODY} bytes all succeeded: the space never ran out");
    };
    assert_eq!(error.kind, FRAME_ERROR, "{:?}", error.text());
    let text = error.text();
    assert!(
        text.starts_with("E_PUB_FAILED PUB failed ") && text.contains(reason),
        "error frame: {text:?}"
    );
    p.expect_closed();

    n.wait_for_log(&["ERROR: TOPIC(t): failed to store message - ", reason]);
    let ping = n.get("/ping");
    assert_eq!(ping.status, 500, "{:?}", ping.text());
    assert!(
        ping.text().starts_with("NOK - ") && ping.text().contains(reason),
        "{:?}",
        ping.text()
    );
    let http_body = body("http", 0);
    let r = n.post("/pub?topic=t", &http_body);
    assert_eq!(
        (r.status, r.text()),
        (503, r#"{"message":"EXITING"}"#.to_string())
    );
    failed.insert(http_body);
    // Still refused on a fresh connection while there is no room.
    let mut p2 = n.connect();
    let b = body("still", 0);
    p2.cmd_body("PUB t", &b);
    let f = read_frame_or_eof(&mut p2).expect("an answer while the disk is full");
    assert!(
        f.kind == FRAME_ERROR && f.text().starts_with("E_PUB_FAILED PUB failed "),
        "{:?}",
        f.text()
    );
    failed.insert(b);
    assert!(n.death().is_none(), "{:?}", n.death());

    // Room again: the very next publish succeeds and health comes back, with no restart.
    space.restore(&n);
    let mut p3 = n.connect();
    let after = body("after", 0);
    p3.publish("t", &after);
    stored.insert(after);
    let ping = n.get("/ping");
    assert_eq!((ping.status, ping.text()), (200, "OK".to_string()));

    // A crash now; everything acknowledged is delivered after the restart, undamaged.
    n.kill9();
    let n = Daemon::start(&[], data);
    let mut c = n.connect();
    c.subscribe("t", "c");
    c.cmd("RDY 1000");
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        while let Some(f) = c.try_read_frame(Duration::from_millis(50)) {
            if f.kind == FRAME_MESSAGE {
                let m = parse_message(&f.data);
                c.fin(m.id_str());
                got.push(m.body);
            }
        }
        let have: HashSet<&Vec<u8>> = got.iter().collect();
        if stored.iter().all(|b| have.contains(b)) {
            let s = n.channel("t", "c");
            if s["depth"] == 0 && s["in_flight_count"] == 0 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "after the restart {} of {} stored messages arrived",
            stored.iter().filter(|b| have.contains(b)).count(),
            stored.len()
        );
    }
    let unique: HashSet<&Vec<u8>> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a message was delivered twice");
    for b in &got {
        // A publish answered with an error is never delivered: the client's retry would
        // otherwise make a duplicate.
        assert!(
            !failed.contains(b),
            "delivered a body whose publish failed: {:?}",
            String::from_utf8_lossy(&b[..20])
        );
        assert!(
            stored.contains(b),
            "delivered a body nobody published: {:?}",
            String::from_utf8_lossy(&b[..20])
        );
    }
    let damage: Vec<String> = n
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("damaged") || l.contains("interrupted write"))
        .collect();
    assert!(damage.is_empty(), "recovery found damage: {damage:#?}");
}

// ---------------------------------------------------------------------------------------------
// A full tmpfs
// ---------------------------------------------------------------------------------------------

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .output();
        match out {
            Ok(o) if o.status.success() => Tmpfs { _dir: dir, mnt },
            Ok(o) => panic!(
                "cannot mount a {size} tmpfs ({}): this test needs root or CAP_SYS_ADMIN to \
                 simulate a full disk; run it where mounting is allowed",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("cannot run mount(8): {e}; this test needs it to fill a disk"),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

/// Fills the file system with a ballast file, then gives back `slack` bytes.
struct Ballast {
    path: PathBuf,
    slack: u64,
}

impl Space for Ballast {
    fn wrapper(&self) -> Vec<String> {
        Vec::new()
    }

    fn exhaust(&mut self, _: &Daemon) {
        let mut f = File::create(&self.path).unwrap();
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut len = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => len += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("writing the ballast: {e}"),
            }
        }
        f.set_len(len.saturating_sub(self.slack)).unwrap();
        f.sync_all().unwrap();
    }

    fn restore(&mut self, _: &Daemon) {
        std::fs::remove_file(&self.path).unwrap();
    }

    fn reason(&self) -> &'static str {
        "No space left on device"
    }
}

#[test]
fn full_disk_fails_publishes_and_service_resumes_when_space_returns() {
    let fs = Tmpfs::mount("4m");
    let data = fs.mnt.join("data");
    std::fs::create_dir(&data).unwrap();
    let mut space = Ballast {
        path: fs.mnt.join("ballast"),
        slack: 128 * 1024,
    };
    run_out_of_space(&data, &mut space);
}

// ---------------------------------------------------------------------------------------------
// A file size limit
// ---------------------------------------------------------------------------------------------

/// `RLIMIT_FSIZE` through prlimit(1): a soft limit nsqd starts with, raised at runtime.
struct FileSizeLimit {
    soft: u64,
}

impl Space for FileSizeLimit {
    fn wrapper(&self) -> Vec<String> {
        // Only the soft limit is low, so it can be raised again without privileges.
        vec!["prlimit".into(), format!("--fsize={}:unlimited", self.soft)]
    }

    fn exhaust(&mut self, _: &Daemon) {
        // The limit is in force from the start; the early messages fit under it.
    }

    fn restore(&mut self, nsqd: &Daemon) {
        let st = Command::new("prlimit")
            .arg("--pid")
            .arg(nsqd.child.id().to_string())
            .arg("--fsize=unlimited:unlimited")
            .status()
            .expect("run prlimit");
        assert!(st.success(), "prlimit could not raise the limit");
    }

    fn reason(&self) -> &'static str {
        "File too large"
    }
}

#[test]
fn file_size_limit_fails_publishes_and_service_resumes_when_raised() {
    let prlimit = Command::new("prlimit").arg("--version").output();
    assert!(
        prlimit.is_ok_and(|o| o.status.success()),
        "prlimit(1) from util-linux is needed for this test"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut space = FileSizeLimit { soft: 256 * 1024 };
    run_out_of_space(dir.path(), &mut space);
}

// ---------------------------------------------------------------------------------------------
// Deferred publishes live in channel journals: a journal write cut short by a full disk must
// not hide the events written after it.
// ---------------------------------------------------------------------------------------------

#[test]
fn deferred_publish_acknowledged_after_a_full_disk_survives_a_crash() {
    let fs = Tmpfs::mount("4m");
    let data = fs.mnt.join("data");
    std::fs::create_dir(&data).unwrap();
    let mut n = Daemon::start(&[], &data);
    for path in ["/topic/create?topic=d", "/channel/create?topic=d&channel=c"] {
        assert_eq!(n.post(path, b"").status, 200, "{path}");
    }
    let mut space = Ballast {
        path: fs.mnt.join("ballast"),
        slack: 128 * 1024,
    };
    space.exhaust(&n);

    // Bodies larger than the room left: the journal write that fails is cut short.
    let big = |tag: &str, i: usize| {
        let mut b = format!("{tag}-{i}-").into_bytes();
        b.resize(200 * 1024, b'y');
        b
    };
    let mut p = n.connect();
    let mut failed = HashSet::new();
    let mut stored = HashSet::new();
    for i in 0..40 {
        let b = big("fill", i);
        p.cmd_body("DPUB d 500", &b);
        let f = read_frame_or_eof(&mut p).expect("an answer to DPUB");
        if f.kind == FRAME_RESPONSE && f.data == b"OK" {
            stored.insert(b);
            continue;
        }
        assert!(
            f.kind == FRAME_ERROR && f.text().starts_with("E_DPUB_FAILED DPUB failed "),
            "{:?}",
            f.text()
        );
        failed.insert(b);
        break;
    }
    assert_eq!(failed.len(), 1, "the disk never filled");

    space.restore(&n);
    let mut p = n.connect();
    let after = big("after", 0);
    p.cmd_body("DPUB d 500", &after);
    p.expect_ok();
    stored.insert(after);

    n.kill9();
    let n = Daemon::start(&[], &data);
    let mut c = n.connect();
    c.subscribe("d", "c");
    c.cmd("RDY 100");
    let mut got = HashSet::new();
    let deadline = Instant::now() + WAIT;
    while !stored.iter().all(|b| got.contains(b)) {
        assert!(
            Instant::now() < deadline,
            "after the restart {} of {} acknowledged deferred messages arrived; log:\n{}",
            stored.iter().filter(|b| got.contains(*b)).count(),
            stored.len(),
            n.log_lines().join("\n")
        );
        if let Some(f) = c.try_read_frame(Duration::from_millis(100)) {
            if f.kind == FRAME_MESSAGE {
                let m = parse_message(&f.data);
                c.fin(m.id_str());
                assert!(
                    !failed.contains(&m.body),
                    "a DPUB that failed was delivered"
                );
                assert!(stored.contains(&m.body), "a body nobody published");
                got.insert(m.body);
            }
        }
    }
    // Nothing else is left to come: the failed DPUB was taken back, not merely delayed (it
    // would show as deferred, or in flight once delivered, since nothing reads any more).
    eventually(|| {
        let s = n.channel("d", "c");
        let zero = |k: &str| s[k] == 0;
        (zero("depth") && zero("deferred_count") && zero("in_flight_count")).then_some(())
    });
}
