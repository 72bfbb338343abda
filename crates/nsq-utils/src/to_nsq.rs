//! `to_nsq`: splits stdin into records at a one-byte delimiter and publishes each record to
//! every given nsqd, optionally throttled, like NSQ's `to_nsq` (quirks included).
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nsq_client::{Config, Producer};
use nsq_flags::{Flag, FlagSet};
use tokio::sync::mpsc;

use crate::common::{self, Cli};

const APP: &str = "to_nsq";

fn flag_set(program: &str) -> FlagSet {
    FlagSet::new(program)
        .flag(Flag::string("topic", "", "NSQ topic to publish to"))
        .flag(Flag::string(
            "delimiter",
            "\n",
            "character to split input from stdin",
        ))
        .flag(Flag::str_list(
            "nsqd-tcp-address",
            "destination nsqd TCP address (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "producer-opt",
            "option to passthrough to nsq.Producer (may be given multiple times, http://godoc.org/github.com/nsqio/go-nsq#Config)",
        ))
        .flag(Flag::int(
            "rate",
            0,
            "Throttle messages to n/second. 0 to disable",
        ))
}

/// What one read of stdin produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A record with its last byte removed. Empty ones are not published but still count
    /// against `--rate`, as in Go.
    Record(Bytes),
    /// A last record (if any) was returned before; nothing more will come.
    End,
    /// Reading failed; Go logs the error and exits 1.
    Failed(String),
}

/// Splits input into records as Go's `to_nsq` does with `bufio.Reader.ReadBytes`: each record
/// loses its last byte, which is the delimiter except for a final record without one (that
/// record loses a real byte, a quirk kept on purpose).
pub struct Records<R> {
    input: R,
    delim: u8,
    done: bool,
    pending_end: Option<Read>,
}

impl<R: BufRead> Records<R> {
    pub fn new(input: R, delim: u8) -> Records<R> {
        Records {
            input,
            delim,
            done: false,
            pending_end: None,
        }
    }

    /// The next read; after `End` or `Failed`, always `End`.
    pub fn next_read(&mut self) -> Read {
        if let Some(end) = self.pending_end.take() {
            self.done = true;
            return end;
        }
        if self.done {
            return Read::End;
        }
        let mut buf = Vec::new();
        let result = self.input.read_until(self.delim, &mut buf);
        let ended = match &result {
            Ok(_) => buf.last() != Some(&self.delim),
            Err(_) => true,
        };
        buf.pop();
        if ended {
            let end = match result {
                Ok(_) => Read::End,
                Err(e) => Read::Failed(e.to_string()),
            };
            // Go publishes what it read before reporting EOF or the error.
            if buf.is_empty() {
                self.done = true;
                return end;
            }
            self.pending_end = Some(end);
        }
        Read::Record(Bytes::from(buf))
    }
}

/// Runs `to_nsq` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let flags = flag_set(&common::program_name(APP));
    let cl = match common::parse_flags(&flags, args) {
        Cli::Run(cl) => cl,
        Cli::Exit(code) => return code,
    };
    let v = cl.values();
    let mut config = Config::new();
    if let Err(e) =
        common::apply_config_opts(&mut config, "producer-opt", v.str_list("producer-opt"))
    {
        return common::usage_error(&flags, &e.to_string());
    }
    let topic = v.string("topic").to_string();
    if topic.is_empty() {
        return common::fatal("--topic required");
    }
    let delimiter = v.string("delimiter");
    let delim = match delimiter.as_bytes() {
        [b] => *b,
        _ => return common::fatal("--delimiter must be a single byte"),
    };
    // Set last, as Go does, so `--producer-opt user_agent,...` has no effect.
    config.user_agent = common::user_agent(APP);

    common::init_logging();
    let rt = match common::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = rt.block_on(async {
        let mut producers: Vec<Producer> = Vec::new();
        for addr in v.str_list("nsqd-tcp-address") {
            // Go keys its producers by address, so a repeated address publishes once.
            if producers.iter().any(|p| p.addr() == addr) {
                continue;
            }
            match Producer::new(addr, config.clone()) {
                Ok(p) => producers.push(p),
                Err(e) => {
                    return common::fatal(&format!("failed to create nsq.Producer - {e}"));
                }
            }
        }
        if producers.is_empty() {
            return common::fatal("--nsqd-tcp-address required");
        }
        let rate = v.int("rate");
        let reads = spawn_stdin_reader(delim);
        let outcome = tokio::select! {
            r = publish_all(&topic, &producers, reads, rate) => r,
            _ = common::shutdown_signal(false) => Ok(()),
        };
        match outcome {
            Ok(()) => {
                for p in &producers {
                    p.stop().await;
                }
                ExitCode::SUCCESS
            }
            Err(msg) => common::fatal(&msg),
        }
    });
    // The stdin thread may still be blocked in a read; leave without waiting for it.
    rt.shutdown_background();
    code
}

/// Reads stdin on its own thread (a blocked read must not hold up exit), one read ahead.
fn spawn_stdin_reader(delim: u8) -> mpsc::Receiver<Read> {
    let (tx, rx) = mpsc::channel(1);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut records = Records::new(stdin.lock(), delim);
        loop {
            let read = records.next_read();
            let last = !matches!(read, Read::Record(_));
            if tx.blocking_send(read).is_err() || last {
                break;
            }
        }
    });
    rx
}

/// Go's throttle: a balance that starts at 1, gains 1 every `1s / rate` (capped at `rate`), and
/// loses 1 per read; when it is not positive the reader sleeps one tick first.
struct Throttle {
    balance: Arc<AtomicI64>,
    interval: Duration,
    ticker: tokio::task::JoinHandle<()>,
}

impl Throttle {
    fn start(rate: i64) -> Throttle {
        let balance = Arc::new(AtomicI64::new(1));
        let nanos = 1_000_000_000u64 / rate.unsigned_abs().max(1);
        let interval = Duration::from_nanos(nanos);
        let b = balance.clone();
        let ticker = tokio::spawn(async move {
            // Beyond 1e9/s the tick is zero, which never fires in Go; the balance then only
            // goes down and the zero-length sleeps throttle nothing.
            if interval.is_zero() {
                return;
            }
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let n = b.fetch_add(1, Ordering::SeqCst) + 1;
                if n > rate {
                    b.store(rate, Ordering::SeqCst);
                }
            }
        });
        Throttle {
            balance,
            interval,
            ticker,
        }
    }

    async fn before_read(&self) {
        if self.balance.load(Ordering::SeqCst) <= 0 {
            tokio::time::sleep(self.interval).await;
        }
    }

    fn after_read(&self) {
        self.balance.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

/// Publishes every non-empty record to each producer in turn, waiting for each answer before
/// reading on. `Err` is the text Go's `log.Fatal` would print.
async fn publish_all(
    topic: &str,
    producers: &[Producer],
    mut reads: mpsc::Receiver<Read>,
    rate: i64,
) -> Result<(), String> {
    let throttle = (rate >= 1).then(|| {
        common::log_line(&format!("Throttling messages rate to max:{rate}/second"));
        Throttle::start(rate)
    });
    loop {
        if let Some(t) = &throttle {
            t.before_read().await;
        }
        let read = reads.recv().await.unwrap_or(Read::End);
        if let Some(t) = &throttle {
            t.after_read();
        }
        match read {
            Read::Record(body) if body.is_empty() => {}
            Read::Record(body) => {
                for p in producers {
                    p.publish(topic, body.clone())
                        .await
                        .map_err(|e| common::client_error_text(&e))?;
                }
            }
            Read::End => return Ok(()),
            Read::Failed(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(input: &[u8], delim: u8) -> Vec<Read> {
        let mut r = Records::new(input, delim);
        let mut out = Vec::new();
        loop {
            let x = r.next_read();
            let end = !matches!(x, Read::Record(_));
            out.push(x);
            if end {
                break;
            }
        }
        assert_eq!(r.next_read(), Read::End);
        out
    }

    fn rec(s: &str) -> Read {
        Read::Record(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn records_lose_their_last_byte() {
        assert_eq!(
            reads(b"a\nbc\n", b'\n'),
            vec![rec("a"), rec("bc"), Read::End]
        );
        // The final record without a delimiter loses a real byte.
        assert_eq!(
            reads(b"a\nbcd", b'\n'),
            vec![rec("a"), rec("bc"), Read::End]
        );
        assert_eq!(reads(b"a\nb", b'\n'), vec![rec("a"), Read::End]);
        assert_eq!(reads(b"", b'\n'), vec![Read::End]);
        assert_eq!(reads(b"\r\n", b'\n'), vec![rec("\r"), Read::End]);
    }

    #[test]
    fn empty_records_are_reported_so_they_cost_a_token() {
        assert_eq!(
            reads(b"a\n\n\nb\n", b'\n'),
            vec![rec("a"), rec(""), rec(""), rec("b"), Read::End]
        );
    }

    #[test]
    fn other_delimiters() {
        assert_eq!(
            reads(b"x,y,z\n,", b','),
            vec![rec("x"), rec("y"), rec("z\n"), Read::End]
        );
        assert_eq!(reads(b"a\0b\0", 0), vec![rec("a"), rec("b"), Read::End]);
    }

    struct FailAfter(Vec<u8>);
    impl std::io::Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_comes_after_the_partial_record() {
        let input = std::io::BufReader::new(FailAfter(b"a\nxyz".to_vec()));
        let mut r = Records::new(input, b'\n');
        assert_eq!(r.next_read(), rec("a"));
        assert_eq!(r.next_read(), rec("xy"));
        assert_eq!(r.next_read(), Read::Failed("disk on fire".into()));
        assert_eq!(r.next_read(), Read::End);
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_allows_a_burst_of_one_then_the_rate() {
        let t = Throttle::start(10);
        let start = tokio::time::Instant::now();
        for _ in 0..21 {
            t.before_read().await;
            t.after_read();
        }
        // The first read is free, the other 20 wait roughly 100ms each.
        let e = start.elapsed();
        assert!(
            e >= Duration::from_millis(1900) && e <= Duration::from_millis(2100),
            "{e:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_balance_is_capped_at_one_second() {
        let t = Throttle::start(5);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(t.balance.load(Ordering::SeqCst), 5);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            t.before_read().await;
            t.after_read();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        t.before_read().await;
        assert!(start.elapsed() >= Duration::from_millis(200));
    }
}
