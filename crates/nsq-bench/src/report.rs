//! Result lines: NSQ's bench summary (`duration: … - …mb/s - …ops/s - …us/op`, logged to
//! stderr with Go's log prefix and timestamp) and the machine-readable `msgs: N` and
//! `msgs/s: N` on stdout.

use std::time::Duration;

/// What one side of a run achieved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Messages acknowledged (writer) or received and finished (reader).
    pub msgs: u64,
    /// From the start signal to the last counted message.
    pub duration: Duration,
    /// Message size used for the mb/s figure (the reader takes it from `--size`, as in NSQ).
    pub size: usize,
}

impl Summary {
    pub fn msgs_per_sec(&self) -> f64 {
        self.msgs as f64 / self.duration.as_secs_f64()
    }

    /// The figures in the layout of NSQ's bench tools. us/op uses whole microseconds divided by
    /// the count, as Go's integer `duration/time.Microsecond` does.
    pub fn go_line(&self) -> String {
        let secs = self.duration.as_secs_f64();
        let mbps = (self.msgs as f64 * self.size as f64) / secs / 1024.0 / 1024.0;
        let us_per_op = self.duration.as_micros() as f64 / self.msgs as f64;
        format!(
            "duration: {} - {:.3}mb/s - {:.3}ops/s - {}us/op",
            nsq_flags::format_go_duration(self.duration),
            mbps,
            self.msgs_per_sec(),
            go_float3(us_per_op),
        )
    }

    /// `msgs: N` then `msgs/s: N` (rounded to a whole number), each on its own line, with an
    /// optional label in front of both.
    pub fn machine_lines(&self, label: &str) -> String {
        format!(
            "{label}msgs: {}\n{label}msgs/s: {:.0}",
            self.msgs,
            self.msgs_per_sec()
        )
    }
}

/// `%.03f` as Go prints it, including `+Inf`/`NaN` for a run that counted nothing.
fn go_float3(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{f:.3}")
    }
}

/// A line in the shape of Go's `log` output with a prefix: `[tool] 2006/01/02 15:04:05 text`.
pub fn log(prefix: &str, text: &str) {
    let now = chrono::Local::now().format("%Y/%m/%d %H:%M:%S");
    eprintln!("[{prefix}] {now} {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_summary_shape() {
        let s = Summary {
            msgs: 1_000_000,
            duration: Duration::from_millis(2500),
            size: 100,
        };
        assert_eq!(
            s.go_line(),
            "duration: 2.5s - 38.147mb/s - 400000.000ops/s - 2.500us/op"
        );
        assert_eq!(s.machine_lines(""), "msgs: 1000000\nmsgs/s: 400000");
        assert_eq!(
            s.machine_lines("pub "),
            "pub msgs: 1000000\npub msgs/s: 400000"
        );
    }

    #[test]
    fn nothing_counted_prints_like_go() {
        let s = Summary {
            msgs: 0,
            duration: Duration::from_secs(1),
            size: 200,
        };
        assert_eq!(
            s.go_line(),
            "duration: 1s - 0.000mb/s - 0.000ops/s - +Infus/op"
        );
    }
}
