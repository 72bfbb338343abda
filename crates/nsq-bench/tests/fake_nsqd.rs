//! The writer and reader against a scripted stand-in for nsqd on a loopback port: batches,
//! pipelining, `--count` limits, FIN for every message, heartbeat answers and error reporting.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use nsq_bench::reader::{Reader, ReaderOpts};
use nsq_bench::writer::{Writer, WriterOpts};

/// What the stand-in saw from its one client.
#[derive(Debug, Default)]
struct Seen {
    published: u64,
    batches: u64,
    fins: u64,
    nops: u64,
    rdy: u64,
}

/// How the stand-in behaves once a consumer sends RDY.
#[derive(Clone, Copy)]
enum Script {
    /// Sends this many messages, never more than RDY unfinished, then waits for the client to
    /// hang up.
    Deliver(u64),
    /// Sends a heartbeat first, then delivers.
    HeartbeatThen(u64),
    /// Answers RDY with an error frame.
    Error,
    /// Delivers like `Deliver`; once the client sends RDY 0, sends a heartbeat and hangs up
    /// when the NOP comes back.
    DeliverThenHangUp(u64),
}

fn frame(kind: u32, data: &[u8]) -> Vec<u8> {
    let mut out = ((data.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(data);
    out
}

fn message(n: u64) -> Vec<u8> {
    let mut data = vec![0u8; 10];
    data.extend_from_slice(format!("{n:016x}").as_bytes());
    data.extend_from_slice(b"body");
    frame(2, &data)
}

fn read_u32(r: &mut impl Read) -> u32 {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).unwrap();
    u32::from_be_bytes(b)
}

/// Starts the stand-in; returns its address and a handle yielding what it saw.
fn fake_nsqd(script: Script) -> (String, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        serve(stream, script)
    });
    (addr, handle)
}

fn serve(stream: TcpStream, script: Script) -> Seen {
    let mut out = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut seen = Seen::default();
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).unwrap();
    assert_eq!(&magic, b"  V2");
    let ok = frame(0, b"OK");
    let (mut sent, mut total) = (0u64, 0u64);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return seen;
        }
        let words: Vec<&str> = line.trim_end().split(' ').collect();
        match words[0] {
            "IDENTIFY" => {
                let len = read_u32(&mut r);
                let mut body = vec![0u8; len as usize];
                r.read_exact(&mut body).unwrap();
                serde_json::from_slice::<serde_json::Value>(&body).unwrap();
                out.write_all(&ok).unwrap();
            }
            "SUB" => out.write_all(&ok).unwrap(),
            "MPUB" => {
                let len = read_u32(&mut r);
                let mut body = vec![0u8; len as usize];
                r.read_exact(&mut body).unwrap();
                seen.published += u64::from(u32::from_be_bytes(body[..4].try_into().unwrap()));
                seen.batches += 1;
                out.write_all(&ok).unwrap();
            }
            "RDY" => {
                seen.rdy = words[1].parse().unwrap();
                match script {
                    Script::Error => {
                        out.write_all(&frame(1, b"E_INVALID nope")).unwrap();
                        return seen;
                    }
                    Script::HeartbeatThen(n) => {
                        out.write_all(&frame(0, b"_heartbeat_")).unwrap();
                        total = n;
                    }
                    Script::Deliver(n) => total = n,
                    Script::DeliverThenHangUp(_) if seen.rdy == 0 => {
                        out.write_all(&frame(0, b"_heartbeat_")).unwrap();
                    }
                    Script::DeliverThenHangUp(n) => total = n,
                }
                while sent < total.min(seen.rdy) {
                    out.write_all(&message(sent)).unwrap();
                    sent += 1;
                }
            }
            "FIN" => {
                assert_eq!(words[1].len(), 16, "{line:?}");
                seen.fins += 1;
                if sent < total {
                    out.write_all(&message(sent)).unwrap();
                    sent += 1;
                }
            }
            "NOP" => {
                seen.nops += 1;
                if matches!(script, Script::DeliverThenHangUp(_)) && seen.rdy == 0 {
                    return seen;
                }
            }
            other => panic!("unexpected command {other:?}"),
        }
    }
}

fn writer_opts(addr: String) -> WriterOpts {
    WriterOpts {
        addr,
        topic: "t".into(),
        size: 10,
        batch_size: 200,
        pipeline: 4,
        runfor: Duration::from_secs(10),
        count: 1050,
        transport: Default::default(),
    }
}

fn reader_opts(addr: String) -> ReaderOpts {
    ReaderOpts {
        addr,
        topic: "t".into(),
        channel: "c".into(),
        size: 4,
        rdy: 100,
        runfor: Duration::from_secs(10),
        count: 500,
        transport: Default::default(),
        no_fin: false,
    }
}

#[test]
fn writer_publishes_exactly_count_in_pipelined_batches() {
    let (addr, server) = fake_nsqd(Script::Deliver(0));
    let summary = Writer::connect(writer_opts(addr), "test")
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(summary.msgs, 1050);
    let seen = server.join().unwrap();
    assert_eq!(seen.published, 1050);
    // Five full batches and the remainder of 50.
    assert_eq!(seen.batches, 6);
}

#[test]
fn writer_stops_at_runfor() {
    let (addr, server) = fake_nsqd(Script::Deliver(0));
    let opts = WriterOpts {
        count: 0,
        runfor: Duration::from_millis(200),
        ..writer_opts(addr)
    };
    let summary = Writer::connect(opts, "test").unwrap().run().unwrap();
    assert!(summary.msgs > 0, "{summary:?}");
    assert!(summary.duration >= Duration::from_millis(200));
    assert!(summary.duration < Duration::from_secs(5));
    let seen = server.join().unwrap();
    assert_eq!(seen.published, summary.msgs);
    // Only whole batches without --count.
    assert_eq!(seen.batches * 200, summary.msgs);
}

#[test]
fn reader_finishes_every_message_up_to_count() {
    let (addr, server) = fake_nsqd(Script::Deliver(500));
    let summary = Reader::connect(reader_opts(addr), "test")
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(summary.msgs, 500);
    let seen = server.join().unwrap();
    assert_eq!((seen.rdy, seen.fins), (100, 500));
}

#[test]
fn reader_answers_heartbeats_and_stops_at_runfor_when_messages_run_out() {
    let (addr, server) = fake_nsqd(Script::HeartbeatThen(30));
    let opts = ReaderOpts {
        count: 0,
        runfor: Duration::from_millis(300),
        ..reader_opts(addr)
    };
    let summary = Reader::connect(opts, "test").unwrap().run().unwrap();
    assert_eq!(summary.msgs, 30);
    assert!(summary.duration >= Duration::from_millis(300));
    let seen = server.join().unwrap();
    assert_eq!((seen.fins, seen.nops), (30, 1));
}

#[test]
fn reader_without_fin_holds_messages_until_nsqd_hangs_up() {
    let (addr, server) = fake_nsqd(Script::DeliverThenHangUp(500));
    let opts = ReaderOpts {
        count: 50,
        no_fin: true,
        ..reader_opts(addr)
    };
    // Returns only because the stand-in hung up: the hold has no time limit of its own.
    let summary = Reader::connect(opts, "test").unwrap().run().unwrap();
    assert_eq!(summary.msgs, 50);
    let seen = server.join().unwrap();
    // RDY 100 let 100 out, none was finished, RDY 0 stopped the flow and the heartbeat was
    // answered during the hold.
    assert_eq!((seen.fins, seen.rdy, seen.nops), (0, 0, 1));
}

#[test]
fn reader_reports_error_frames() {
    let (addr, server) = fake_nsqd(Script::Error);
    let err = Reader::connect(reader_opts(addr), "test")
        .unwrap()
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("E_INVALID nope"), "{err:#}");
    server.join().unwrap();
}

#[test]
fn connection_refused_is_a_clear_error() {
    // Bind then drop to get a loopback port that nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Writer::connect(writer_opts(format!("127.0.0.1:{port}")), "test")
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
}
