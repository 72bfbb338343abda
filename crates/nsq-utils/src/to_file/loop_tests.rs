//! The topic loop and output files against a scripted message source, on paused time.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::output::{Clock, Compression, FileSettings, OutputFile};
use super::router::{run, Control, Delivery, RouterSettings, Source};
use super::strftime::Stamp;

/// Every file under `dir` with its decoded lines, sorted by path.
fn files(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let raw = std::fs::read(&p).unwrap();
            let text = if p.extension().is_some_and(|x| x == "gz") {
                let mut s = String::new();
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_string(&mut s)
                    .unwrap();
                s
            } else if p.extension().is_some_and(|x| x == "zst") {
                // The streaming decoder reads every frame, as `zstd -d` does.
                let mut s = String::new();
                zstd::stream::read::Decoder::new(&raw[..])
                    .unwrap()
                    .read_to_string(&mut s)
                    .unwrap();
                s
            } else {
                String::from_utf8(raw).unwrap()
            };
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            out.push((rel, text.lines().map(str::to_string).collect()));
        }
    }
    out.sort();
    out
}

struct FakeMsg {
    body: Vec<u8>,
    addr: String,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    finished: Mutex<Vec<String>>,
    /// Directories one of whose files must hold a message before it may be FINed.
    watch: Mutex<Vec<PathBuf>>,
    stop_called: AtomicBool,
}

impl Delivery for FakeMsg {
    fn body(&self) -> &[u8] {
        &self.body
    }
    fn nsqd_address(&self) -> &str {
        &self.addr
    }
    fn finish(&self) {
        let body = String::from_utf8(self.body.clone()).unwrap();
        let dirs = self.shared.watch.lock().unwrap().clone();
        let on_disk = dirs
            .iter()
            .flat_map(|d| files(d))
            .any(|(_, lines)| lines.contains(&body));
        assert!(on_disk, "{body} FINed before it could be read back");
        self.shared.finished.lock().unwrap().push(body);
    }
}

struct Fake {
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<FakeMsg>>,
    shared: Arc<Shared>,
    connections: usize,
}

impl Source for Fake {
    type Msg = FakeMsg;
    async fn recv(&self) -> Option<FakeMsg> {
        self.rx.lock().await.recv().await
    }
    fn stop(&self) {
        self.shared.stop_called.store(true, Ordering::SeqCst);
    }
    fn connections(&self) -> usize {
        self.connections
    }
}

struct Harness {
    tx: Option<mpsc::UnboundedSender<FakeMsg>>,
    ctl: mpsc::UnboundedSender<Control>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    out: tempfile::TempDir,
    work: tempfile::TempDir,
    hour: Arc<AtomicU32>,
}

struct Setup {
    compression: Compression,
    rotate_size: i64,
    rotate_interval: Option<Duration>,
    skip_empty_files: bool,
    separate_work_dir: bool,
    sync_interval: Duration,
    max_in_flight: usize,
    connections: usize,
    template: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            compression: Compression::None,
            rotate_size: 0,
            rotate_interval: None,
            skip_empty_files: false,
            separate_work_dir: false,
            sync_interval: Duration::from_secs(30),
            max_in_flight: 200,
            connections: 0,
            template: "t.<DATETIME>.log",
        }
    }
}

fn start(setup: Setup) -> Harness {
    start_with(setup, |_, _| {})
}

/// Starts the loop; `before` runs once the directories exist, before any file is opened.
fn start_with(setup: Setup, before: impl FnOnce(&Path, &Path)) -> Harness {
    let out = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    before(out.path(), work.path());
    let output_dir = out.path().to_string_lossy().into_owned();
    let work_dir = if setup.separate_work_dir {
        work.path().to_string_lossy().into_owned()
    } else {
        output_dir.clone()
    };
    let settings = Arc::new(FileSettings {
        channel: "c".into(),
        output_dir,
        work_dir,
        datetime_format: "%H".into(),
        compression: setup.compression,
        skip_empty_files: setup.skip_empty_files,
        rotate_size: setup.rotate_size,
        rotate_interval: setup.rotate_interval,
    });
    let hour = Arc::new(AtomicU32::new(10));
    let h = hour.clone();
    let clock: Clock = Arc::new(move || Stamp {
        year: 2024,
        month: 3,
        day: 7,
        yday: 67,
        weekday: 4,
        hour: h.load(Ordering::SeqCst),
        minute: 0,
        second: 0,
        nanosecond: 0,
        offset: 0,
        zone_name: Some("UTC".into()),
    });
    let mut file = OutputFile::new(settings, "t", setup.template.to_string(), clock);
    let shared = Arc::new(Shared::default());
    shared.watch.lock().unwrap().push(out.path().to_path_buf());
    if setup.separate_work_dir {
        shared.watch.lock().unwrap().push(work.path().to_path_buf());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (ctl, ctl_rx) = mpsc::unbounded_channel();
    let fake = Fake {
        rx: tokio::sync::Mutex::new(rx),
        shared: shared.clone(),
        connections: setup.connections,
    };
    let router_settings = RouterSettings {
        sync_interval: setup.sync_interval,
        max_in_flight: setup.max_in_flight,
        skip_empty_files: setup.skip_empty_files,
    };
    let task = tokio::spawn(async move {
        run(&fake, &mut file, router_settings, ctl_rx)
            .await
            .unwrap();
    });
    Harness {
        tx: Some(tx),
        ctl,
        shared,
        task,
        out,
        work,
        hour,
    }
}

impl Harness {
    fn send(&self, body: &str) {
        self.tx
            .as_ref()
            .unwrap()
            .send(FakeMsg {
                body: body.as_bytes().to_vec(),
                addr: "n1:4150".into(),
                shared: self.shared.clone(),
            })
            .unwrap();
    }

    /// Lets the loop handle everything queued (time is paused, so this takes no real time).
    async fn settle(&self) {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn finished(&self) -> Vec<String> {
        self.shared.finished.lock().unwrap().clone()
    }

    fn out_files(&self) -> Vec<(String, Vec<String>)> {
        files(self.out.path())
    }

    /// SIGTERM's path: stop, then the source ends.
    async fn stop(mut self) -> Self {
        self.ctl.send(Control::Stop).unwrap();
        self.settle().await;
        assert!(self.shared.stop_called.load(Ordering::SeqCst));
        self.tx = None;
        (&mut self.task).await.unwrap();
        self
    }
}

/// A template for modes that need `<REV>`.
const REV: &str = "t<REV>.<DATETIME>.log";

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(start_paused = true)]
async fn first_message_of_a_file_is_fined_at_once_later_ones_at_the_sync_interval() {
    let h = start(Setup::default());
    h.send("a");
    h.settle().await;
    assert_eq!(h.finished(), lines(&["a"]));
    h.send("b");
    h.send("c");
    h.settle().await;
    assert_eq!(h.finished(), lines(&["a"]));
    tokio::time::sleep(Duration::from_secs(30)).await;
    h.settle().await;
    assert_eq!(h.finished(), lines(&["a", "b", "c"]));
    let h = h.stop().await;
    assert_eq!(
        h.out_files(),
        vec![("t.10.log".to_string(), lines(&["a", "b", "c"]))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_or_a_starving_connection_syncs_early() {
    let h = start(Setup {
        max_in_flight: 3,
        ..Setup::default()
    });
    for b in ["a", "b", "c", "d"] {
        h.send(b);
    }
    h.settle().await;
    // "a" opened the file; "b", "c", "d" filled the batch of three.
    assert_eq!(h.finished(), lines(&["a", "b", "c", "d"]));

    // One connection with RDY 10 is starving at 8 unsynced messages.
    let h = start(Setup {
        max_in_flight: 10,
        connections: 1,
        ..Setup::default()
    });
    h.send("first");
    for i in 0..7 {
        h.send(&i.to_string());
    }
    h.settle().await;
    assert_eq!(h.finished().len(), 1);
    h.send("7");
    h.settle().await;
    assert_eq!(h.finished().len(), 9);
}

#[tokio::test(start_paused = true)]
async fn rotates_by_size_with_increasing_revisions() {
    let h = start(Setup {
        rotate_size: 5,
        template: REV,
        ..Setup::default()
    });
    for b in ["aaa", "bbb", "ccc", "ddd"] {
        h.send(b);
    }
    h.settle().await;
    let h = h.stop().await;
    // A file is rotated once it has grown past 5 bytes: two lines of 4 bytes each.
    assert_eq!(
        h.out_files(),
        vec![
            ("t-000000.10.log".to_string(), lines(&["aaa", "bbb"])),
            ("t-000001.10.log".to_string(), lines(&["ccc", "ddd"])),
        ]
    );
    assert_eq!(h.finished().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn rotates_by_age_and_by_the_datetime_in_the_name() {
    let h = start(Setup {
        rotate_interval: Some(Duration::from_secs(60)),
        template: REV,
        sync_interval: Duration::from_secs(3600),
        ..Setup::default()
    });
    h.send("a");
    h.settle().await;
    tokio::time::sleep(Duration::from_secs(61)).await;
    h.send("b");
    h.settle().await;
    h.hour.store(11, Ordering::SeqCst);
    h.send("c");
    h.settle().await;
    assert_eq!(h.finished(), lines(&["a", "b", "c"]));
    let h = h.stop().await;
    assert_eq!(
        h.out_files(),
        vec![
            ("t-000000.10.log".to_string(), lines(&["a"])),
            ("t-000000.11.log".to_string(), lines(&["c"])),
            ("t-000001.10.log".to_string(), lines(&["b"])),
        ]
    );
}

/// Seven messages, two in flight at a time, into one compressed file: the checks in `finish`
/// decode the file each time a batch is FINed, so every sync must end a complete member or
/// frame; the closed file decodes to all seven.
async fn compressed_files_decode_after_every_sync(
    compression: Compression,
    template: &'static str,
    file: &str,
) {
    let h = start(Setup {
        compression,
        max_in_flight: 2,
        template,
        ..Setup::default()
    });
    for i in 0..7 {
        h.send(&format!("line {i}"));
    }
    h.settle().await;
    assert_eq!(h.finished().len(), 7);
    let h = h.stop().await;
    let want: Vec<String> = (0..7).map(|i| format!("line {i}")).collect();
    assert_eq!(h.out_files(), vec![(file.to_string(), want)]);
}

#[tokio::test(start_paused = true)]
async fn gzip_files_decode_to_the_messages_after_every_sync() {
    compressed_files_decode_after_every_sync(
        Compression::Gzip(6),
        "t<REV>.<DATETIME>.log.gz",
        "t-000000.10.log.gz",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn zstd_files_decode_to_the_messages_after_every_sync() {
    compressed_files_decode_after_every_sync(
        Compression::Zstd(3),
        "t<REV>.<DATETIME>.log.zst",
        "t-000000.10.log.zst",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn work_dir_files_move_on_close_without_overwriting() {
    // rev 0 is taken in the output directory before start: the file opens as rev 1.
    let h = start_with(
        Setup {
            separate_work_dir: true,
            template: REV,
            ..Setup::default()
        },
        |out, _| std::fs::write(out.join("t-000000.10.log"), "old\n").unwrap(),
    );
    h.send("a");
    h.settle().await;
    assert_eq!(
        files(h.work.path()),
        vec![("t-000001.10.log".to_string(), lines(&["a"]))]
    );
    // Someone takes rev 1 in the output directory while the file is being written.
    std::fs::write(h.out.path().join("t-000001.10.log"), "other\n").unwrap();
    let h = h.stop().await;
    assert!(files(h.work.path()).is_empty());
    assert_eq!(
        h.out_files(),
        vec![
            ("t-000000.10.log".to_string(), lines(&["old"])),
            ("t-000001.10.log".to_string(), lines(&["other"])),
            ("t-000002.10.log".to_string(), lines(&["a"])),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn reopen_closes_the_file_and_the_next_message_opens_one() {
    // Plain files without rotation append to the same name, as after log rotation by a tool.
    let h = start(Setup::default());
    h.send("a");
    h.settle().await;
    std::fs::rename(h.out.path().join("t.10.log"), h.out.path().join("moved")).unwrap();
    h.send("b");
    h.settle().await;
    assert_eq!(h.finished(), lines(&["a"]));
    // The file's own handle is synced and closed, wherever the file now is.
    h.ctl.send(Control::Reopen).unwrap();
    h.settle().await;
    assert_eq!(h.finished(), lines(&["a", "b"]));
    h.send("c");
    h.settle().await;
    let h = h.stop().await;
    assert_eq!(
        h.out_files(),
        vec![
            ("moved".to_string(), lines(&["a", "b"])),
            ("t.10.log".to_string(), lines(&["c"])),
        ]
    );

    // With a work directory the closed file is moved and the next one takes the next rev.
    let h = start(Setup {
        separate_work_dir: true,
        template: REV,
        ..Setup::default()
    });
    h.send("a");
    h.settle().await;
    h.ctl.send(Control::Reopen).unwrap();
    h.settle().await;
    h.send("b");
    h.settle().await;
    let h = h.stop().await;
    assert_eq!(
        h.out_files(),
        vec![
            ("t-000000.10.log".to_string(), lines(&["a"])),
            ("t-000001.10.log".to_string(), lines(&["b"])),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn empty_files_appear_at_the_sync_tick_unless_skipped() {
    let h = start(Setup::default());
    tokio::time::sleep(Duration::from_secs(31)).await;
    h.settle().await;
    let h = h.stop().await;
    assert_eq!(h.out_files(), vec![("t.10.log".to_string(), vec![])]);

    let h = start(Setup {
        skip_empty_files: true,
        ..Setup::default()
    });
    tokio::time::sleep(Duration::from_secs(31)).await;
    h.settle().await;
    let h = h.stop().await;
    assert!(h.out_files().is_empty());
}

#[tokio::test(start_paused = true)]
async fn stopping_syncs_everything_pending_and_later_arrivals_at_once() {
    let h = start(Setup::default());
    h.send("a");
    h.send("b");
    h.settle().await;
    assert_eq!(h.finished(), lines(&["a"]));
    h.ctl.send(Control::Stop).unwrap();
    h.settle().await;
    assert_eq!(h.finished(), lines(&["a", "b"]));
    // Messages already on their way when the consumer was told to stop.
    h.send("c");
    h.settle().await;
    assert_eq!(h.finished(), lines(&["a", "b", "c"]));
    let h = h.stop().await;
    assert_eq!(
        h.out_files(),
        vec![("t.10.log".to_string(), lines(&["a", "b", "c"]))]
    );
}
