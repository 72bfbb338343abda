//! Go's `time.Duration` string form (`1.234ms`, `2m3.5s`), used by the access log and by text
//! outputs that operators and scripts already parse.

use std::time::Duration;

/// Formats like Go's `Duration.String` for non-negative durations: `0s`, `850ns`, `1.5µs`,
/// `12.345ms`, `1m2.5s`, `3h0m0s`. Durations beyond Go's `int64` nanosecond range are clamped.
pub fn go_duration(d: Duration) -> String {
    let nanos = u64::try_from(d.as_nanos())
        .unwrap_or(u64::MAX)
        .min(i64::MAX as u64);
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (unit, precision) = if nanos < 1_000 {
            ("ns", 0)
        } else if nanos < 1_000_000 {
            ("µs", 3)
        } else {
            ("ms", 6)
        };
        let (whole, frac) = split_fraction(nanos, precision);
        return format!("{whole}{frac}{unit}");
    }

    let (total_secs, frac) = split_fraction(nanos, 9);
    let secs = total_secs % 60;
    let total_mins = total_secs / 60;
    if total_mins == 0 {
        return format!("{secs}{frac}s");
    }
    let mins = total_mins % 60;
    let hours = total_mins / 60;
    if hours == 0 {
        format!("{mins}m{secs}{frac}s")
    } else {
        format!("{hours}h{mins}m{secs}{frac}s")
    }
}

/// Splits `value` into its integer part and a `.ddd` fraction of `precision` digits with trailing
/// zeros dropped (empty when the fraction is zero).
fn split_fraction(value: u64, precision: u32) -> (u64, String) {
    let scale = 10u64.pow(precision);
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return (whole, String::new());
    }
    let digits = format!("{frac:0width$}", width = precision as usize);
    (whole, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: u64) -> String {
        go_duration(Duration::from_nanos(n))
    }

    #[test]
    fn matches_go_formatting() {
        assert_eq!(ns(0), "0s");
        assert_eq!(ns(1), "1ns");
        assert_eq!(ns(999), "999ns");
        assert_eq!(ns(1_000), "1µs");
        assert_eq!(ns(1_500), "1.5µs");
        assert_eq!(ns(1_234_000), "1.234ms");
        assert_eq!(ns(1_234_567), "1.234567ms");
        assert_eq!(ns(100_000_000), "100ms");
        assert_eq!(ns(1_000_000_000), "1s");
        assert_eq!(ns(1_500_000_000), "1.5s");
        assert_eq!(ns(61_500_000_000), "1m1.5s");
        assert_eq!(ns(120_000_000_000), "2m0s");
        assert_eq!(ns(3_600_000_000_000), "1h0m0s");
        assert_eq!(ns(3_723_456_789_000), "1h2m3.456789s");
        assert_eq!(go_duration(Duration::MAX), "2562047h47m16.854775807s");
    }
}
