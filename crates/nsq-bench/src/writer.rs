//! The publishing side: one connection sending the same MPUB batch over and over, with up to
//! `--pipeline` batches awaiting their `OK`.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::conn::{Conn, Event};
use crate::proto;
use crate::report::Summary;
use crate::transport::Transport;

/// How long a single MPUB may go unanswered before the run is abandoned. Generous because an
/// fsync on a busy disk can take seconds; still bounded so the tool always ends.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct WriterOpts {
    pub addr: String,
    pub topic: String,
    pub size: usize,
    pub batch_size: usize,
    /// MPUBs in flight at once; 1 is NSQ's bench_writer (write a batch, read its response).
    pub pipeline: usize,
    pub runfor: Duration,
    /// Stop after this many messages (0: no limit, only `runfor`).
    pub count: u64,
    /// TLS and compression negotiated in IDENTIFY (default: none).
    pub transport: Transport,
}

/// A connected, identified publisher waiting for the start signal.
pub struct Writer {
    conn: Conn,
    opts: WriterOpts,
    batch: Vec<u8>,
}

impl Writer {
    pub fn connect(opts: WriterOpts, user_agent: &str) -> Result<Writer> {
        let mut conn = Conn::connect(&opts.addr)?;
        conn.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
        conn.identify("writer", user_agent, &opts.transport)?;
        // Every message has the same body, as in NSQ's tool; its content does not matter.
        let body = vec![b'a'; opts.size];
        let batch = proto::mpub(&opts.topic, &body, opts.batch_size)?;
        Ok(Writer { conn, opts, batch })
    }

    /// Publishes until `runfor` has passed (checked after each response, as NSQ does) or `count`
    /// messages are acknowledged, then waits for the batches still in flight.
    pub fn run(mut self) -> Result<Summary> {
        let o = &self.opts;
        let start = Instant::now();
        let end = start + o.runfor;
        let body = vec![b'a'; o.size];
        // Sizes of the batches sent and not yet answered, oldest first.
        let mut in_flight = std::collections::VecDeque::with_capacity(o.pipeline);
        let mut sent: u64 = 0;
        let mut acked: u64 = 0;
        let mut stop = false;
        loop {
            while !stop && in_flight.len() < o.pipeline {
                let left = if o.count == 0 {
                    u64::MAX
                } else {
                    o.count - sent
                };
                let n = (o.batch_size as u64).min(left) as usize;
                if n == o.batch_size {
                    self.conn.send(&self.batch)?;
                } else {
                    // The last, partial batch of a --count run.
                    self.conn.send(&proto::mpub(&o.topic, &body, n)?)?;
                }
                in_flight.push_back(n as u64);
                sent += n as u64;
                stop = (o.count != 0 && sent >= o.count) || Instant::now() >= end;
            }
            let Some(&oldest) = in_flight.front() else {
                break;
            };
            match self.conn.read_event()? {
                Event::Ok => {
                    in_flight.pop_front();
                    acked += oldest;
                    stop = stop || Instant::now() >= end;
                }
                // An idle connection gets heartbeats; a long fsync could make us look idle.
                Event::Heartbeat => self.conn.send(proto::NOP)?,
                Event::Error(e) => bail!("nsqd refused MPUB: {e}"),
                Event::Response(r) => bail!("unexpected response to MPUB: {r:?}"),
                Event::Message(_) => bail!("a publisher received a message"),
            }
        }
        Ok(Summary {
            msgs: acked,
            duration: start.elapsed(),
            size: o.size,
        })
    }
}
