//! The ceiling of this machine for the broker's job: one writer sends length-prefixed frames
//! of `--size` bytes over one loopback TCP connection as fast as it can, one reader parses them.
//! No broker in between, so broker figures can be given as a fraction of it, measured the same
//! day on the same machine.
//!
//! `--mode=rtt` measures the other floor: one frame of `--size` bytes out, a 10-byte frame (the
//! size of nsqd's `OK`) back, one at a time, as a single PUB waits for its OK. Broker round
//! trips can then be read against what the machine's loopback and scheduler allow.
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nsq_flags::{Flag, FlagSet, Parsed};

fn main() -> Result<()> {
    let flags = FlagSet::new("loopback_baseline")
        .flag(Flag::int("size", 100, "frame body size in bytes"))
        .flag(Flag::duration(
            "runfor",
            Duration::from_secs(5),
            "how long to send",
        ))
        .flag(Flag::int("batch", 256, "frames per write"))
        .flag(Flag::string(
            "mode",
            "throughput",
            "throughput (frames one way) or rtt (one frame out, a reply back, one at a time)",
        ));
    let args = match flags.parse(std::env::args().skip(1))? {
        Parsed::Help(usage) => {
            eprint!("{usage}");
            return Ok(());
        }
        Parsed::Args(a) => a,
    };
    let v = flags.resolve(&args, None)?;
    let size = usize::try_from(v.int("size")).context("--size must be positive")?;
    let batch = usize::try_from(v.int("batch")).context("--batch must be positive")?;
    if size == 0 || batch == 0 {
        bail!("--size and --batch must be positive");
    }
    let runfor = v.duration("runfor");
    match v.string("mode") {
        "throughput" => {}
        "rtt" => return round_trips(size, runfor),
        other => bail!("--mode must be throughput or rtt (got {other:?})"),
    }

    // Only loopback: this measures the machine, not a network.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> Result<(u64, Duration)> {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut r = BufReader::with_capacity(1 << 20, s);
        let mut hdr = [0u8; 4];
        let mut body = vec![0u8; size];
        let mut frames = 0u64;
        let start = Instant::now();
        loop {
            match r.read_exact(&mut hdr) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.into()),
            }
            let n = u32::from_be_bytes(hdr) as usize;
            if n != size {
                bail!("bad frame length {n}");
            }
            r.read_exact(&mut body)?;
            frames += 1;
        }
        Ok((frames, start.elapsed()))
    });

    let mut w = TcpStream::connect(addr)?;
    w.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(batch * (4 + size));
    for _ in 0..batch {
        buf.extend_from_slice(&(size as u32).to_be_bytes());
        buf.extend(std::iter::repeat_n(b'x', size));
    }
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < runfor {
        w.write_all(&buf)?;
        sent += batch as u64;
    }
    drop(w);
    let (frames, elapsed) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    if frames != sent {
        bail!("sent {sent} frames but {frames} arrived");
    }
    let secs = elapsed.as_secs_f64().max(f64::EPSILON);
    let rate = frames as f64 / secs;
    eprintln!(
        "duration: {elapsed:?} - {:.3}mb/s - {rate:.3}ops/s - {:.3}us/op",
        rate * (4 + size) as f64 / (1024.0 * 1024.0),
        1e6 / rate
    );
    println!("frames: {frames}");
    println!("frames/s: {rate:.0}");
    Ok(())
}

/// Ping-pong over one loopback connection for `runfor`; prints round-trip percentiles in the
/// keys `bench_latency --mode=rtt` uses.
fn round_trips(size: usize, runfor: Duration) -> Result<()> {
    const REPLY: [u8; 10] = [0, 0, 0, 6, 0, 0, 0, 0, b'O', b'K'];
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut frame = vec![0u8; 4 + size];
        loop {
            match s.read_exact(&mut frame) {
                Ok(()) => s.write_all(&REPLY)?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut frame = (size as u32).to_be_bytes().to_vec();
    frame.extend(std::iter::repeat_n(b'x', size));
    let mut reply = [0u8; REPLY.len()];
    let mut hist = hdrhistogram::Histogram::<u64>::new(3)?;
    let start = Instant::now();
    while start.elapsed() < runfor {
        let t = Instant::now();
        c.write_all(&frame)?;
        c.read_exact(&mut reply)?;
        hist.record(t.elapsed().as_nanos() as u64)?;
    }
    drop(c);
    server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    eprintln!(
        "{} round trips in {:?}: p50 {:.1}us p99 {:.1}us p99.9 {:.1}us max {:.1}us",
        hist.len(),
        start.elapsed(),
        us(0.5),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0
    );
    println!("round_trips: {}", hist.len());
    println!("p50_us: {:.1}", us(0.5));
    println!("p99_us: {:.1}", us(0.99));
    println!("p999_us: {:.1}", us(0.999));
    println!("max_us: {:.1}", hist.max() as f64 / 1000.0);
    Ok(())
}
