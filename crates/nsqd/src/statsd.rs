//! Pushing topic, channel and memory figures to a statsd daemon over UDP (`--statsd-*`), with
//! NSQ 1.3.0's metric names, types, packing and pacing.
//!
//! The push runs in its own task and reads the same snapshot `/stats` serves
//! ([`stats::collect`]); nothing on the message path knows statsd exists.
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::futures::Notified;

use crate::daemon::Nsqd;
use crate::stats::{self, Latency, MemStats, Stats, StatsFilter};

/// How long resolving the statsd address may take before the push is skipped.
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// NSQ spreads a push's packets over the interval minus this much, leaving the rest of the
/// interval quiet before the next push.
const SPREAD_MARGIN: Duration = Duration::from_secs(1);

/// The packet size NSQ falls back to when `--statsd-udp-packet-size` is not positive.
const FALLBACK_PACKET_SIZE: usize = 4096;

const EPHEMERAL_SUFFIX: &str = "#ephemeral";

#[derive(Debug, Default, Clone, Copy)]
struct ChannelCounters {
    message_count: u64,
    requeue_count: u64,
    timeout_count: u64,
}

#[derive(Debug, Default)]
struct TopicCounters {
    message_count: u64,
    message_bytes: u64,
    channels: HashMap<String, ChannelCounters>,
}

/// The counters sent by the previous push, which the next push's counters are deltas from.
/// Topics and channels that have gone (deleted) are forgotten at each push.
#[derive(Debug, Default)]
pub struct Previous {
    topics: HashMap<String, TopicCounters>,
    gc_runs: u64,
}

/// A counter's change since the previous push.
fn delta(now: u64, before: u64) -> i64 {
    // A counter can only go backwards when its topic or channel was deleted and created again
    // since the previous push: everything it holds was counted by the new object.
    let d = now.checked_sub(before).unwrap_or(now);
    i64::try_from(d).unwrap_or(i64::MAX)
}

/// The metric-name suffix of a quantile: `quantile × 100` printed with no decimals, rounding
/// half to even as Go's `%.0f` does (`0.99` → `99`, `0.999` → `100`, `0.125` → `12`).
pub fn percentile_name(quantile: f64) -> String {
    format!("{:.0}", quantile * 100.0)
}

/// Builds the lines of one push, each `<prefix><name>:<value>|<type>\n`.
pub struct Lines<'a> {
    prefix: &'a str,
    lines: Vec<String>,
}

impl<'a> Lines<'a> {
    pub fn new(prefix: &'a str) -> Lines<'a> {
        Lines {
            prefix,
            lines: Vec::new(),
        }
    }

    pub fn counter(&mut self, name: fmt::Arguments<'_>, value: i64) {
        self.lines
            .push(format!("{}{name}:{value}|c\n", self.prefix));
    }

    pub fn gauge(&mut self, name: fmt::Arguments<'_>, value: i64) {
        self.lines
            .push(format!("{}{name}:{value}|g\n", self.prefix));
    }

    pub fn into_lines(self) -> Vec<String> {
        self.lines
    }
}

fn gauge_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn latency_gauges(out: &mut Lines<'_>, stem: &str, l: &Latency) {
    for p in l.percentiles.as_deref().unwrap_or_default() {
        // Nanoseconds are the finest resolution there is: nothing is lost by truncating.
        out.gauge(
            format_args!(
                "{stem}.e2e_processing_latency_{}",
                percentile_name(p.quantile)
            ),
            p.value as i64,
        );
    }
}

/// Renders one push: every topic and channel in `stats` (less ephemeral ones when
/// `exclude_ephemeral`), then the memory figures when `mem` is given. Counters are deltas from
/// `prev`, which is then replaced by this push's counters.
pub fn render(
    stats: &Stats,
    mem: Option<&MemStats>,
    prefix: &str,
    exclude_ephemeral: bool,
    prev: &mut Previous,
) -> Vec<String> {
    let mut out = Lines::new(prefix);
    let mut next = HashMap::new();
    for t in stats.topics.as_deref().unwrap_or_default() {
        let last = prev.topics.remove(&t.topic_name).unwrap_or_default();
        let mut seen = TopicCounters {
            message_count: t.message_count,
            message_bytes: t.message_bytes,
            channels: HashMap::with_capacity(t.channels.len()),
        };
        for c in &t.channels {
            seen.channels.insert(
                c.channel_name.clone(),
                ChannelCounters {
                    message_count: c.message_count,
                    requeue_count: c.requeue_count,
                    timeout_count: c.timeout_count,
                },
            );
        }
        let name = t.topic_name.as_str();
        if !(exclude_ephemeral && name.ends_with(EPHEMERAL_SUFFIX)) {
            let tn = format!("topic.{name}");
            out.counter(
                format_args!("{tn}.message_count"),
                delta(t.message_count, last.message_count),
            );
            out.counter(
                format_args!("{tn}.message_bytes"),
                delta(t.message_bytes, last.message_bytes),
            );
            out.gauge(format_args!("{tn}.depth"), gauge_u64(t.depth));
            out.gauge(
                format_args!("{tn}.backend_depth"),
                gauge_u64(t.backend_depth),
            );
            latency_gauges(&mut out, &tn, &t.e2e_processing_latency);
            for c in &t.channels {
                let cname = c.channel_name.as_str();
                if exclude_ephemeral && cname.ends_with(EPHEMERAL_SUFFIX) {
                    continue;
                }
                let lc = last.channels.get(cname).copied().unwrap_or_default();
                let cn = format!("topic.{name}.channel.{cname}");
                out.counter(
                    format_args!("{cn}.message_count"),
                    delta(c.message_count, lc.message_count),
                );
                out.gauge(format_args!("{cn}.depth"), gauge_u64(c.depth));
                out.gauge(
                    format_args!("{cn}.backend_depth"),
                    gauge_u64(c.backend_depth),
                );
                out.gauge(
                    format_args!("{cn}.in_flight_count"),
                    gauge_u64(c.in_flight_count),
                );
                out.gauge(
                    format_args!("{cn}.deferred_count"),
                    gauge_u64(c.deferred_count),
                );
                out.counter(
                    format_args!("{cn}.requeue_count"),
                    delta(c.requeue_count, lc.requeue_count),
                );
                out.counter(
                    format_args!("{cn}.timeout_count"),
                    delta(c.timeout_count, lc.timeout_count),
                );
                out.gauge(format_args!("{cn}.clients"), gauge_u64(c.client_count));
                latency_gauges(&mut out, &cn, &c.e2e_processing_latency);
            }
        }
        next.insert(t.topic_name.clone(), seen);
    }
    prev.topics = next;
    if let Some(m) = mem {
        for (name, v) in m.gauges() {
            out.gauge(format_args!("mem.{name}"), gauge_u64(v));
        }
        out.counter(
            format_args!("mem.gc_runs"),
            delta(m.gc_total_runs, prev.gc_runs),
        );
        prev.gc_runs = m.gc_total_runs;
    }
    out.into_lines()
}

/// The largest packet to send for `--statsd-udp-packet-size`.
pub fn packet_size(flag: i64) -> usize {
    usize::try_from(flag)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(FALLBACK_PACKET_SIZE)
}

/// Packs lines into packets of at most `max` bytes, in order, never splitting a line. A single
/// line longer than `max` travels alone in a packet of its own size.
pub fn pack(lines: &[String], max: usize) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut current: Vec<u8> = Vec::with_capacity(max);
    for line in lines {
        if line.len() > max - current.len() && !current.is_empty() {
            packets.push(std::mem::replace(&mut current, Vec::with_capacity(max)));
        }
        if line.len() > max {
            packets.push(line.as_bytes().to_vec());
            continue;
        }
        current.extend_from_slice(line.as_bytes());
    }
    if !current.is_empty() {
        packets.push(current);
    }
    packets
}

/// The pause after each packet of a push, spreading `packets` over the interval minus
/// [`SPREAD_MARGIN`]. Zero for intervals of a second or less: those packets go back to back
/// (where NSQ would panic).
pub fn spread_gap(interval: Duration, packets: usize) -> Duration {
    let window = interval.saturating_sub(SPREAD_MARGIN);
    match u32::try_from(packets) {
        Ok(0) => Duration::ZERO,
        Ok(n) => window / n,
        Err(_) => Duration::ZERO,
    }
}

/// Resolves `addr` (an empty host means this host, as in Go) and opens a connected UDP socket.
async fn dial(addr: &str) -> io::Result<UdpSocket> {
    let target = if addr.starts_with(':') {
        format!("localhost{addr}")
    } else {
        addr.to_string()
    };
    let resolve = async {
        tokio::net::lookup_host(target)
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
    };
    let remote = tokio::time::timeout(DIAL_TIMEOUT, resolve)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "resolving timed out"))??;
    let local: SocketAddr = if remote.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(remote).await?;
    Ok(socket)
}

/// Pushes to `--statsd-address` every `--statsd-interval` (the first push one interval after
/// start) until nsqd exits.
pub async fn statsd_loop(nsqd: Arc<Nsqd>) {
    // Options reject a zero interval when an address is set; the floor only keeps the timer
    // valid if that ever changes.
    let interval = nsqd.opts.statsd_interval.max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prev = Previous::default();
    loop {
        let exit = nsqd.shutdown.notified();
        tokio::pin!(exit);
        // Registered before the flag is read, so an exit between the two still wakes us.
        exit.as_mut().enable();
        if nsqd.is_exiting() {
            break;
        }
        tokio::select! {
            _ = ticker.tick() => {}
            _ = exit.as_mut() => break,
        }
        push(&nsqd, interval, &mut prev, exit.as_mut()).await;
    }
    log::info!("STATSD: closing");
}

async fn push(
    nsqd: &Nsqd,
    interval: Duration,
    prev: &mut Previous,
    mut exit: Pin<&mut Notified<'_>>,
) {
    let opts = &nsqd.opts;
    let addr = opts.statsd_address.as_str();
    let socket = match dial(addr).await {
        Ok(s) => s,
        Err(_) => {
            log::error!("failed to create UDP socket to statsd({addr})");
            return;
        }
    };
    log::info!("STATSD: pushing stats to {addr}");
    let filter = StatsFilter {
        topic: None,
        channel: None,
        include_clients: false,
        include_mem: false,
    };
    let snapshot = stats::collect(nsqd, &filter);
    let mem = opts.statsd_mem_stats.then(MemStats::read);
    let lines = render(
        &snapshot,
        mem.as_ref(),
        &opts.statsd_prefix,
        opts.statsd_exclude_ephemeral,
        prev,
    );
    let packets = pack(&lines, packet_size(opts.statsd_udp_packet_size));
    let gap = spread_gap(interval, packets.len());
    // A fixed-rate timer rather than a sleep per packet, so the pauses do not drift.
    let mut pace = (!gap.is_zero()).then(|| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + gap, gap);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut exiting = false;
    let mut send_failed = false;
    for (i, packet) in packets.iter().enumerate() {
        if let Err(e) = socket.send(packet).await {
            // Once per push: a statsd that is down refuses every packet.
            if !send_failed {
                log::error!("failed to send stats to statsd({addr}) - {e}");
                send_failed = true;
            }
        }
        // At exit the remaining packets still go, without the pauses.
        let Some(pace) = pace.as_mut().filter(|_| !exiting && i + 1 < packets.len()) else {
            continue;
        };
        tokio::select! {
            _ = pace.tick() => {}
            _ = exit.as_mut() => exiting = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ChannelStats, Percentile, TopicStats};

    fn latency(ps: &[(f64, f64)]) -> Latency {
        Latency {
            count: 0,
            percentiles: (!ps.is_empty()).then(|| {
                ps.iter()
                    .map(|&(quantile, value)| Percentile { quantile, value })
                    .collect()
            }),
        }
    }

    fn channel(name: &str, msgs: u64, requeued: u64, timed_out: u64) -> ChannelStats {
        ChannelStats {
            channel_name: name.into(),
            depth: 3,
            backend_depth: 0,
            in_flight_count: 2,
            deferred_count: 1,
            message_count: msgs,
            zone_local_msg_count: 0,
            region_local_msg_count: 0,
            global_msg_count: 0,
            requeue_count: requeued,
            timeout_count: timed_out,
            client_count: 4,
            clients: None,
            paused: false,
            e2e_processing_latency: latency(&[]),
            store_health: None,
        }
    }

    fn topic(name: &str, msgs: u64, bytes: u64, channels: Vec<ChannelStats>) -> TopicStats {
        TopicStats {
            topic_name: name.into(),
            channels,
            depth: 7,
            backend_depth: 0,
            message_count: msgs,
            message_bytes: bytes,
            paused: false,
            e2e_processing_latency: latency(&[]),
            store_health: None,
        }
    }

    fn stats(topics: Vec<TopicStats>) -> Stats {
        Stats {
            version: "1.3.0",
            health: "OK".into(),
            start_time: 0,
            topics: Some(topics),
            memory: None,
            producers: None,
        }
    }

    fn joined(lines: &[String]) -> String {
        lines.concat()
    }

    #[test]
    fn lines_have_prefix_name_value_and_type() {
        let mut l = Lines::new("nsq.host_4151.");
        l.counter(format_args!("topic.{}.message_count", "t"), 5);
        l.gauge(format_args!("mem.heap_objects"), -1);
        assert_eq!(
            l.into_lines(),
            [
                "nsq.host_4151.topic.t.message_count:5|c\n",
                "nsq.host_4151.mem.heap_objects:-1|g\n"
            ]
        );
        let mut bare = Lines::new("");
        bare.gauge(format_args!("x"), 0);
        assert_eq!(bare.into_lines(), ["x:0|g\n"]);
    }

    #[test]
    fn percentile_names_round_like_go() {
        for (q, want) in [
            (1.0, "100"),
            (0.99, "99"),
            (0.999, "100"),
            (0.95, "95"),
            (0.5, "50"),
            (0.945, "94"),
            (0.125, "12"),
            (0.015, "2"),
            (0.005, "0"),
        ] {
            assert_eq!(percentile_name(q), want, "quantile {q}");
        }
    }

    #[test]
    fn first_push_is_cumulative_then_deltas() {
        let mut prev = Previous::default();
        let s1 = stats(vec![topic("t", 10, 100, vec![channel("c", 8, 2, 1)])]);
        let first = joined(&render(&s1, None, "p.", false, &mut prev));
        assert_eq!(
            first,
            "p.topic.t.message_count:10|c\n\
             p.topic.t.message_bytes:100|c\n\
             p.topic.t.depth:7|g\n\
             p.topic.t.backend_depth:0|g\n\
             p.topic.t.channel.c.message_count:8|c\n\
             p.topic.t.channel.c.depth:3|g\n\
             p.topic.t.channel.c.backend_depth:0|g\n\
             p.topic.t.channel.c.in_flight_count:2|g\n\
             p.topic.t.channel.c.deferred_count:1|g\n\
             p.topic.t.channel.c.requeue_count:2|c\n\
             p.topic.t.channel.c.timeout_count:1|c\n\
             p.topic.t.channel.c.clients:4|g\n"
        );
        let s2 = stats(vec![topic("t", 15, 160, vec![channel("c", 12, 2, 4)])]);
        let second = render(&s2, None, "p.", false, &mut prev);
        assert!(second.contains(&"p.topic.t.message_count:5|c\n".to_string()));
        assert!(second.contains(&"p.topic.t.message_bytes:60|c\n".to_string()));
        assert!(second.contains(&"p.topic.t.channel.c.message_count:4|c\n".to_string()));
        assert!(second.contains(&"p.topic.t.channel.c.requeue_count:0|c\n".to_string()));
        assert!(second.contains(&"p.topic.t.channel.c.timeout_count:3|c\n".to_string()));
    }

    #[test]
    fn recreated_topic_counts_from_zero_and_deleted_ones_are_dropped() {
        let mut prev = Previous::default();
        render(
            &stats(vec![
                topic("t", 50, 500, vec![channel("c", 50, 9, 9)]),
                topic("gone", 1, 1, vec![]),
            ]),
            None,
            "",
            false,
            &mut prev,
        );
        let after = render(
            &stats(vec![topic("t", 3, 30, vec![channel("c", 2, 1, 0)])]),
            None,
            "",
            false,
            &mut prev,
        );
        assert!(after.iter().all(|l| !l.contains("gone")), "{after:?}");
        assert!(after.iter().all(|l| !l.contains(":-")), "{after:?}");
        assert!(after.contains(&"topic.t.message_count:3|c\n".to_string()));
        assert!(after.contains(&"topic.t.channel.c.requeue_count:1|c\n".to_string()));
        // A topic that comes back after a push without it starts from zero as well.
        let back = render(
            &stats(vec![topic("gone", 2, 2, vec![])]),
            None,
            "",
            false,
            &mut prev,
        );
        assert!(back.contains(&"topic.gone.message_count:2|c\n".to_string()));
    }

    #[test]
    fn exclude_ephemeral_skips_topics_and_channels() {
        let s = stats(vec![
            topic("e#ephemeral", 1, 1, vec![channel("c", 1, 0, 0)]),
            topic(
                "t",
                1,
                1,
                vec![channel("c#ephemeral", 1, 0, 0), channel("d", 1, 0, 0)],
            ),
        ]);
        let excluded = render(&s, None, "", true, &mut Previous::default());
        assert!(excluded.iter().all(|l| !l.contains("#ephemeral")));
        assert!(excluded.contains(&"topic.t.channel.d.clients:4|g\n".to_string()));
        let all = render(&s, None, "", false, &mut Previous::default());
        assert!(all.contains(&"topic.e#ephemeral.depth:7|g\n".to_string()));
        assert!(all.contains(&"topic.t.channel.c#ephemeral.depth:3|g\n".to_string()));
    }

    #[test]
    fn e2e_percentiles_become_gauges_in_nanoseconds() {
        let mut t = topic("t", 1, 1, vec![channel("c", 1, 0, 0)]);
        t.e2e_processing_latency = latency(&[(1.0, 2_500_000.9), (0.99, 0.0)]);
        t.channels[0].e2e_processing_latency = latency(&[(0.999, 7.0)]);
        let out = render(&stats(vec![t]), None, "", false, &mut Previous::default());
        assert!(out.contains(&"topic.t.e2e_processing_latency_100:2500000|g\n".to_string()));
        assert!(out.contains(&"topic.t.e2e_processing_latency_99:0|g\n".to_string()));
        assert!(out.contains(&"topic.t.channel.c.e2e_processing_latency_100:7|g\n".to_string()));
    }

    #[test]
    fn mem_stats_are_gauges_plus_a_gc_runs_counter() {
        let mut prev = Previous::default();
        let mem = MemStats {
            heap_in_use_bytes: 4096,
            gc_total_runs: 10,
            ..MemStats::default()
        };
        let out = render(&stats(vec![]), Some(&mem), "n.", false, &mut prev);
        assert_eq!(
            joined(&out),
            "n.mem.heap_objects:0|g\n\
             n.mem.heap_idle_bytes:0|g\n\
             n.mem.heap_in_use_bytes:4096|g\n\
             n.mem.heap_released_bytes:0|g\n\
             n.mem.gc_pause_usec_100:0|g\n\
             n.mem.gc_pause_usec_99:0|g\n\
             n.mem.gc_pause_usec_95:0|g\n\
             n.mem.next_gc_bytes:0|g\n\
             n.mem.gc_runs:10|c\n"
        );
        let again = MemStats {
            gc_total_runs: 13,
            ..MemStats::default()
        };
        let out = render(&stats(vec![]), Some(&again), "n.", false, &mut prev);
        assert_eq!(out.last().map(String::as_str), Some("n.mem.gc_runs:3|c\n"));
        assert!(render(&stats(vec![]), None, "n.", false, &mut prev).is_empty());
    }

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn packing_never_splits_a_line_or_exceeds_the_bound() {
        let ls = lines(&["aaaa\n", "bbb\n", "cc\n", "dddddd\n", "e\n"]);
        let packets = pack(&ls, 10);
        assert_eq!(
            packets,
            [
                b"aaaa\nbbb\n".to_vec(),
                b"cc\ndddddd\n".to_vec(),
                b"e\n".to_vec()
            ]
        );
        assert_eq!(packets.concat(), ls.concat().into_bytes());
    }

    #[test]
    fn a_line_filling_a_packet_exactly_stays_in_it() {
        let packets = pack(&lines(&["12345\n", "x\n"]), 6);
        assert_eq!(packets, [b"12345\n".to_vec(), b"x\n".to_vec()]);
    }

    #[test]
    fn an_oversized_line_goes_alone() {
        let packets = pack(&lines(&["a\n", "0123456789\n", "b\n"]), 4);
        assert_eq!(
            packets,
            [b"a\n".to_vec(), b"0123456789\n".to_vec(), b"b\n".to_vec()]
        );
        assert!(pack(&[], 508).is_empty());
    }

    #[test]
    fn packet_size_falls_back_like_go() {
        assert_eq!(packet_size(508), 508);
        assert_eq!(packet_size(0), 4096);
        assert_eq!(packet_size(-3), 4096);
    }

    #[test]
    fn packets_are_spread_over_the_interval_less_a_second() {
        let s = Duration::from_secs;
        assert_eq!(spread_gap(s(60), 59), s(1));
        assert_eq!(spread_gap(s(2), 4), Duration::from_millis(250));
        assert_eq!(spread_gap(s(1), 10), Duration::ZERO);
        assert_eq!(spread_gap(Duration::from_millis(200), 3), Duration::ZERO);
        assert_eq!(spread_gap(s(60), 0), Duration::ZERO);
    }
}
