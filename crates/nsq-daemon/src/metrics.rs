//! Prometheus exposition shared by the daemons: the registry every `/metrics` starts from, the
//! standard `process_*` figures read from `/proc`, and rendering to the text format.
//!
//! Each daemon adds its own [`Collector`]s that read live state at scrape time, so nothing is
//! counted twice, nothing sits on the message path, and a deleted topic simply stops appearing.
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

pub use prometheus_client;

/// `Content-Type` of the Prometheus text format (0.0.4) that [`render`] produces.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A registry with `nsq_build_info{app,version}` and the process collector. Daemons register
/// their own collectors on it once at start-up.
pub fn registry(app: &'static str) -> Registry {
    let mut r = Registry::default();
    r.register(
        "nsq_build",
        "Which NSQ daemon and release this is",
        Info::new(vec![("app", app), ("version", crate::VERSION)]),
    );
    r.register_collector(Box::new(ProcessCollector::new()));
    r
}

/// Renders every metric of `registry` in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail; an encoder error would only come from a collector, and a
    // partial page is still better for an operator than none.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}

/// The standard `process_*` metrics (as Prometheus client libraries name them), read from
/// `/proc/self` at scrape time. Figures that cannot be read are left out rather than reported as
/// zero.
#[derive(Debug)]
pub struct ProcessCollector {
    start_time: f64,
}

impl ProcessCollector {
    pub fn new() -> ProcessCollector {
        let start_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        ProcessCollector { start_time }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        ProcessCollector::new()
    }
}

/// The fields of `/proc/self/stat` this collector uses.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProcStat {
    cpu_ticks: u64,
    threads: u64,
    virtual_bytes: u64,
    resident_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and parentheses, so
/// fields are counted from the last `)`.
fn parse_proc_stat(s: &str) -> Option<ProcStat> {
    let rest = &s[s.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0, so field N is index N - 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        cpu_ticks: num(14)? + num(15)?,
        threads: num(20)?,
        virtual_bytes: num(23)?,
        resident_pages: num(24)?,
    })
}

fn gauge<V>(enc: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: V)
where
    V: prometheus_client::encoding::EncodeGaugeValue + Send + Sync + std::fmt::Debug + 'static,
{
    let g = ConstGauge::new(v);
    if let Ok(m) = enc.encode_descriptor(name, help, unit, g.metric_type()) {
        let _ = g.encode(m);
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_proc_stat(&s));
        if let Some(st) = stat {
            let ticks = rustix::param::clock_ticks_per_second() as f64;
            let cpu = ConstCounter::new(st.cpu_ticks as f64 / ticks.max(1.0));
            let m = enc.encode_descriptor(
                "process_cpu",
                "User and system CPU time spent.",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?;
            cpu.encode(m)?;
            let page = rustix::param::page_size() as f64;
            gauge(
                &mut enc,
                "process_resident_memory",
                "Resident memory size.",
                Some(&Unit::Bytes),
                (st.resident_pages as f64 * page) as i64,
            );
            gauge(
                &mut enc,
                "process_virtual_memory",
                "Virtual memory size.",
                Some(&Unit::Bytes),
                st.virtual_bytes as i64,
            );
            gauge(
                &mut enc,
                "process_threads",
                "Operating system threads.",
                None,
                st.threads as i64,
            );
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                &mut enc,
                "process_open_fds",
                "Open file descriptors.",
                None,
                fds.count() as i64,
            );
        }
        if let Some(max) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            gauge(
                &mut enc,
                "process_max_fds",
                "Most file descriptors the process may open.",
                None,
                max as i64,
            );
        }
        gauge(
            &mut enc,
            "process_start_time",
            "Start time of the process since the Unix epoch.",
            Some(&Unit::Seconds),
            self.start_time,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 7 0 100 \
                    123456789 321 18446744073709551615";
        let st = parse_proc_stat(line).expect("parses");
        assert_eq!(
            st,
            ProcStat {
                cpu_ticks: 300,
                threads: 7,
                virtual_bytes: 123456789,
                resident_pages: 321,
            }
        );
    }

    #[test]
    fn truncated_proc_stat_is_rejected() {
        assert_eq!(parse_proc_stat("1 (x) S 1 2"), None);
        assert_eq!(parse_proc_stat("no parenthesis"), None);
    }

    #[test]
    fn rendered_page_has_build_info_and_process_figures() {
        let page = render(&registry("nsqd"));
        assert!(page.contains("# TYPE nsq_build_info gauge\n"), "{page}");
        assert!(
            page.contains("nsq_build_info{app=\"nsqd\",version=\"1.3.0\"} 1\n"),
            "{page}"
        );
        assert!(
            page.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{page}"
        );
        assert!(page.contains("\nprocess_resident_memory_bytes "), "{page}");
        assert!(page.contains("\nprocess_open_fds "), "{page}");
        assert!(page.contains("\nprocess_start_time_seconds "), "{page}");
    }
}
