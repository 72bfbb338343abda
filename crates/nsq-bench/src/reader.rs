//! The consuming side: one subscribed connection with a fixed RDY, finishing every message (or,
//! with `no_fin`, holding them all in flight). All
//! FINs for what one read returned go out in a single write, so the cost per message is a few
//! bytes of buffer, not a system call.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::conn::{Conn, Event};
use crate::proto;
use crate::report::Summary;
use crate::transport::Transport;

#[derive(Debug, Clone)]
pub struct ReaderOpts {
    pub addr: String,
    pub topic: String,
    pub channel: String,
    /// Only for the mb/s figure, as in NSQ's bench_reader.
    pub size: usize,
    pub rdy: u64,
    pub runfor: Duration,
    /// Stop after this many messages (0: no limit, only `runfor`).
    pub count: u64,
    /// TLS and compression negotiated in IDENTIFY (default: none).
    pub transport: Transport,
    /// Finish nothing, and once the run ends keep the connection (see [`Reader::run`]).
    pub no_fin: bool,
}

/// A connected, subscribed consumer (RDY 0, so nothing flows yet) waiting for the start signal.
pub struct Reader {
    conn: Conn,
    opts: ReaderOpts,
}

impl Reader {
    /// Identifies and subscribes. The channel exists once this returns, so messages published
    /// after it are kept for this reader.
    pub fn connect(opts: ReaderOpts, user_agent: &str) -> Result<Reader> {
        let mut conn = Conn::connect(&opts.addr)?;
        // Handshake answers are immediate; a silent nsqd must not hang the tool.
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        conn.identify("reader", user_agent, &opts.transport)?;
        conn.command_ok(&proto::sub(&opts.topic, &opts.channel), "SUB")?;
        Ok(Reader { conn, opts })
    }

    /// Sets RDY, then receives and finishes messages until `runfor` has passed or `count`
    /// messages arrived. The duration ends at the last counted message for a `count` run and at
    /// `runfor` otherwise.
    ///
    /// With `no_fin`, nothing is finished and the run is followed by a hold: RDY 0, then
    /// heartbeats are answered until nsqd closes the connection. Closing it ourselves would make
    /// nsqd requeue the messages, and the point is to have them in flight when nsqd dies.
    pub fn run(mut self) -> Result<Summary> {
        let o = &self.opts;
        self.conn.send(&proto::rdy(o.rdy))?;
        let start = Instant::now();
        let end = start + o.runfor;
        // Big enough for one read's worth of FINs (about 21 bytes per message).
        let mut out = Vec::with_capacity(64 << 10);
        let mut msgs: u64 = 0;
        let mut done = false;
        let mut last = start;
        loop {
            while let Some(ev) = self.conn.next_event()? {
                match ev {
                    Event::Message(id) => {
                        if !o.no_fin {
                            proto::put_fin(&mut out, &id);
                        }
                        msgs += 1;
                        if o.count != 0 && msgs >= o.count {
                            done = true;
                            break;
                        }
                    }
                    Event::Heartbeat => out.extend_from_slice(proto::NOP),
                    Event::Ok | Event::Response(_) => {}
                    Event::Error(e) => bail!("nsqd sent an error: {e}"),
                }
            }
            if !out.is_empty() {
                self.conn.send(&out)?;
                out.clear();
                last = Instant::now();
            }
            let now = Instant::now();
            if done || now >= end {
                break;
            }
            self.conn.set_read_timeout(Some(end - now))?;
            self.conn.fill()?;
        }
        let stop = if o.count != 0 && done {
            last
        } else {
            Instant::now()
        };
        let summary = Summary {
            msgs,
            duration: stop - start,
            size: o.size,
        };
        if o.no_fin {
            self.hold()?;
        }
        Ok(summary)
    }

    fn hold(&mut self) -> Result<()> {
        // Whatever RDY allowed beyond --count may still arrive; it stays in flight too.
        self.conn.send(&proto::rdy(0))?;
        self.conn.set_read_timeout(None)?;
        loop {
            while let Some(ev) = self.conn.next_event()? {
                match ev {
                    Event::Heartbeat => {
                        if self.conn.send(proto::NOP).is_err() {
                            return Ok(());
                        }
                    }
                    Event::Error(e) => bail!("nsqd sent an error: {e}"),
                    Event::Message(_) | Event::Ok | Event::Response(_) => {}
                }
            }
            // A close or a reset: either way nsqd is gone, which is how a hold ends.
            if self.conn.fill().is_err() {
                return Ok(());
            }
        }
    }
}
