//! Go `time.Duration` text: parsing (`1m30s`, `1.5h`, `300ms`) and Go's `String()` rendering
//! (`1h0m0s`, `1.5µs`), since operators' flags and `/config` readers use exactly these forms.

use std::time::Duration;

use crate::scalar::go_quote;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {}", go_quote(.0))]
    Invalid(String),
    #[error("missing unit in duration {}", go_quote(.0))]
    MissingUnit(String),
    #[error("unknown unit {} in duration {}", go_quote(.unit), go_quote(.input))]
    UnknownUnit { unit: String, input: String },
    /// Go accepts negative durations; every duration option here is a length of time, so a
    /// negative one is refused rather than silently clamped.
    #[error("negative duration {}", go_quote(.0))]
    Negative(String),
}

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
const I64_LIMIT: u64 = 1 << 63;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // Both the micro sign (U+00B5) and the Greek mu (U+03BC) are accepted, as in Go.
        "us" | "µs" | "μs" => NANOS_PER_MICRO,
        "ms" => NANOS_PER_MILLI,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3600 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// Parses Go duration syntax into signed nanoseconds: `[-+]?([0-9]*(\.[0-9]*)?unit)+`, or a bare
/// `0`. The range is that of Go's int64 nanoseconds.
pub fn parse_go_duration_nanos(input: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(input.to_string());
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let whole = leading_int(&s[..int_len]).ok_or_else(invalid)?;
        s = &s[int_len..];
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            (fraction, scale) = leading_fraction(&rest[..frac_len]);
            s = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .bytes()
            .take_while(|c| *c != b'.' && !c.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(input.to_string()));
        }
        // The unit ends before an ASCII byte, so this is always a char boundary.
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let per_unit = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_string(),
            input: input.to_string(),
        })?;
        if whole > I64_LIMIT / per_unit {
            return Err(invalid());
        }
        let mut v = whole * per_unit;
        if fraction > 0 {
            // f64 keeps fractions of an hour nanosecond-accurate, which is all Go promises.
            v += (fraction as f64 * (per_unit as f64 / scale)) as u64;
            if v > I64_LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > I64_LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        Ok((total as i128).wrapping_neg() as i64)
    } else if total > I64_LIMIT - 1 {
        Err(invalid())
    } else {
        Ok(total as i64)
    }
}

/// Parses a non-negative Go duration (`-0s` is fine, `-1s` is not).
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let nanos = parse_go_duration_nanos(input)?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| DurationError::Negative(input.to_string()))
}

fn leading_int(digits: &str) -> Option<u64> {
    let mut x: u64 = 0;
    for b in digits.bytes() {
        if x > I64_LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(b - b'0');
        if x > I64_LIMIT {
            return None;
        }
    }
    Some(x)
}

/// Digits after the point as (value, 10^count); digits past what fits are ignored, as in Go.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let mut x: u64 = 0;
    let mut scale = 1.0;
    for b in digits.bytes() {
        if x > (I64_LIMIT - 1) / 10 {
            break;
        }
        let y = x * 10 + u64::from(b - b'0');
        if y > I64_LIMIT {
            break;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale)
}

/// Renders a duration as Go's `Duration.String()`: `0s`, `250ms`, `1.5µs`, `1m30s`, `1h0m0s`.
pub fn format_go_duration(d: Duration) -> String {
    format_nanos(d.as_nanos(), false)
}

/// Signed variant of [`format_go_duration`], for values kept as Go-style int64 nanoseconds.
pub fn format_go_duration_nanos(nanos: i64) -> String {
    format_nanos(u128::from(nanos.unsigned_abs()), nanos < 0)
}

fn format_nanos(u: u128, negative: bool) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if u < u128::from(NANOS_PER_SECOND) {
        // Below a second Go switches to the largest unit that keeps an integer part.
        let (unit, prec) = if u == 0 {
            return "0s".to_string();
        } else if u < u128::from(NANOS_PER_MICRO) {
            ("ns", 0)
        } else if u < u128::from(NANOS_PER_MILLI) {
            ("µs", 3)
        } else {
            ("ms", 6)
        };
        let (whole, frac) = split_fraction(u, prec);
        out.push_str(&whole.to_string());
        out.push_str(&frac);
        out.push_str(unit);
        return out;
    }
    let (secs, frac) = split_fraction(u, 9);
    let hours = secs / 3600;
    let minutes = (secs / 60) % 60;
    let seconds = secs % 60;
    if hours > 0 {
        out.push_str(&format!("{hours}h{minutes}m"));
    } else if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds.to_string());
    out.push_str(&frac);
    out.push('s');
    out
}

/// Splits `v` into `v / 10^prec` and the fractional digits as `.ddd` without trailing zeros
/// (empty when the fraction is zero).
fn split_fraction(v: u128, prec: u32) -> (u128, String) {
    let pow = 10u128.pow(prec);
    let whole = v / pow;
    let frac = v % pow;
    if frac == 0 {
        return (whole, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (whole, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse_go_duration("300ms"), Ok(ms(300)));
        assert_eq!(parse_go_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_go_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_go_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_go_duration("1.5h"), Ok(ms(5_400_000)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("+0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("-0s"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("10ns"), Ok(Duration::from_nanos(10)));
        assert_eq!(parse_go_duration("7us"), Ok(Duration::from_micros(7)));
        assert_eq!(parse_go_duration("7µs"), Ok(Duration::from_micros(7)));
        assert_eq!(parse_go_duration("7μs"), Ok(Duration::from_micros(7)));
        assert_eq!(parse_go_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_go_duration("1.s"), Ok(ms(1000)));
        assert_eq!(
            parse_go_duration("1h2m3.456789s").map(|d| d.as_nanos()),
            Ok(3_723_456_789_000)
        );
        assert_eq!(parse_go_duration("+5s"), Ok(ms(5000)));
    }

    #[test]
    fn signed_parse_keeps_sign() {
        assert_eq!(parse_go_duration_nanos("-1s"), Ok(-1_000_000_000));
        assert_eq!(parse_go_duration_nanos("-1.5h"), Ok(-5_400_000_000_000));
        assert_eq!(
            parse_go_duration_nanos("2562047h47m16.854775807s"),
            Ok(i64::MAX)
        );
        assert_eq!(
            parse_go_duration_nanos("-2562047h47m16.854775808s"),
            Ok(i64::MIN)
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            parse_go_duration(""),
            Err(DurationError::Invalid(String::new()))
        );
        assert_eq!(
            parse_go_duration("abc"),
            Err(DurationError::Invalid("abc".into()))
        );
        assert_eq!(
            parse_go_duration("10"),
            Err(DurationError::MissingUnit("10".into()))
        );
        assert_eq!(
            parse_go_duration("5x").unwrap_err().to_string(),
            "unknown unit \"x\" in duration \"5x\""
        );
        assert_eq!(
            parse_go_duration(".s"),
            Err(DurationError::Invalid(".s".into()))
        );
        assert_eq!(
            parse_go_duration("-1s"),
            Err(DurationError::Negative("-1s".into()))
        );
        assert!(parse_go_duration("2562047h47m16.854775808s").is_err());
        assert!(parse_go_duration("99999999999999999999h").is_err());
        assert!(parse_go_duration("1s ").is_err());
        assert!(parse_go_duration("5é").is_err());
    }

    #[test]
    fn formats_like_go_string() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (1_500, "1.5µs"),
            (2_200_000, "2.2ms"),
            (250_000_000, "250ms"),
            (1_000_000_000, "1s"),
            (3_500_000_000, "3.5s"),
            (60_000_000_000, "1m0s"),
            (90_000_000_000, "1m30s"),
            (123_000_000_000, "2m3s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_456_789_000, "1h2m3.456789s"),
            (5_400_000_000_000, "1h30m0s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format_go_duration(Duration::from_nanos(*nanos)), *text);
        }
        assert_eq!(format_go_duration_nanos(-1_500), "-1.5µs");
        assert_eq!(
            format_go_duration_nanos(i64::MAX),
            "2562047h47m16.854775807s"
        );
    }

    #[test]
    fn format_then_parse_round_trips() {
        for nanos in [1u64, 999, 1_234_567, 61_000_000_001, 86_400_000_000_000] {
            let d = Duration::from_nanos(nanos);
            assert_eq!(parse_go_duration(&format_go_duration(d)), Ok(d));
        }
    }
}
