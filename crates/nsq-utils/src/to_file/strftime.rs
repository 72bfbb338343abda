//! `--datetime-format`: NSQ's strftime subset, which rewrites `%` codes into a Go time layout and
//! then formats that layout, so literal text that looks like a Go layout element (`1`, `Jan`,
//! `PM`, ...) is formatted too. Both steps are reproduced so file names match NSQ's.
use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike};

/// The calendar fields a layout can print, taken once from a timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    pub day: u32,
    /// 1..=366
    pub yday: u32,
    /// 0 = Sunday
    pub weekday: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanosecond: u32,
    /// Seconds east of UTC.
    pub offset: i32,
    /// The zone's abbreviation when known; UTC is always known.
    pub zone_name: Option<String>,
}

impl Stamp {
    pub fn from_datetime<Tz: TimeZone>(t: &DateTime<Tz>) -> Stamp {
        let offset = t.offset().fix().local_minus_utc();
        Stamp {
            year: t.year(),
            month: t.month(),
            day: t.day(),
            yday: t.ordinal(),
            weekday: t.weekday().num_days_from_sunday(),
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
            // A leap second shows as 60 in Go; chrono folds it into the nanoseconds.
            nanosecond: t.nanosecond() % 1_000_000_000,
            offset,
            zone_name: (offset == 0).then(|| "UTC".to_string()),
        }
    }

    /// The local wall clock now.
    pub fn now() -> Stamp {
        Stamp::from_datetime(&chrono::Local::now())
    }
}

/// Formats `t` with NSQ's strftime subset: `%B %b %m %A %a %d %H %I %M %S %Y %y %p %Z %z %%`;
/// any other `%x` stays as written.
pub fn strftime(format: &str, t: &Stamp) -> String {
    format_layout(&to_layout(format), t)
}

/// Rewrites the `%` codes into Go layout elements, byte by byte as NSQ does.
pub fn to_layout(format: &str) -> String {
    let bytes = format.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len() * 2);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or_default();
        if b == b'%' {
            if let Some(code) = bytes.get(i + 1).and_then(|c| conversion(*c)) {
                out.extend_from_slice(code.as_bytes());
                i += 2;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    // Only ASCII was inserted or removed, so the bytes stay valid UTF-8.
    String::from_utf8_lossy(&out).into_owned()
}

fn conversion(code: u8) -> Option<&'static str> {
    Some(match code {
        b'B' => "January",
        b'b' => "Jan",
        b'm' => "01",
        b'A' => "Monday",
        b'a' => "Mon",
        b'd' => "02",
        b'H' => "15",
        b'I' => "03",
        b'M' => "04",
        b'S' => "05",
        b'Y' => "2006",
        b'y' => "06",
        b'p' => "PM",
        b'Z' => "MST",
        b'z' => "-0700",
        b'%' => "%",
        _ => return None,
    })
}

/// One element of a Go layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PmUpper,
    PmLower,
    Tz,
    Iso8601Tz,
    Iso8601SecondsTz,
    Iso8601ShortTz,
    Iso8601ColonTz,
    Iso8601ColonSecondsTz,
    NumTz,
    NumSecondsTz,
    NumShortTz,
    NumColonTz,
    NumColonSecondsTz,
    /// Separator, digit count, and whether trailing zeros are dropped (`.999`).
    Frac(u8, usize, bool),
}

fn starts_with_lower(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_lowercase)
}

fn digit_at(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// Finds the next layout element: (literal prefix length, element, length of the element).
fn next_elem(layout: &[u8]) -> Option<(usize, Elem, usize)> {
    let at = |i: usize, s: &str| layout.get(i..i + s.len()) == Some(s.as_bytes());
    for (i, &c) in layout.iter().enumerate() {
        let rest_from = |n: usize| layout.get(i + n..).unwrap_or_default();
        let found = match c {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    Some((Elem::LongMonth, 7))
                } else if !starts_with_lower(rest_from(3)) {
                    Some((Elem::Month, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "Mon") => {
                if at(i, "Monday") {
                    Some((Elem::LongWeekDay, 6))
                } else if !starts_with_lower(rest_from(3)) {
                    Some((Elem::WeekDay, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "MST") => Some((Elem::Tz, 3)),
            b'0' => match layout.get(i + 1) {
                Some(b'1') => Some((Elem::ZeroMonth, 2)),
                Some(b'2') => Some((Elem::ZeroDay, 2)),
                Some(b'3') => Some((Elem::ZeroHour12, 2)),
                Some(b'4') => Some((Elem::ZeroMinute, 2)),
                Some(b'5') => Some((Elem::ZeroSecond, 2)),
                Some(b'6') => Some((Elem::Year, 2)),
                _ if at(i, "002") => Some((Elem::ZeroYearDay, 3)),
                _ => None,
            },
            b'1' => {
                if at(i, "15") {
                    Some((Elem::Hour, 2))
                } else {
                    Some((Elem::NumMonth, 1))
                }
            }
            b'2' => {
                if at(i, "2006") {
                    Some((Elem::LongYear, 4))
                } else {
                    Some((Elem::Day, 1))
                }
            }
            b'_' => {
                if at(i, "_2") {
                    if at(i, "_2006") {
                        // A literal underscore, then the year.
                        return Some((i + 1, Elem::LongYear, 4));
                    }
                    Some((Elem::UnderDay, 2))
                } else if at(i, "__2") {
                    Some((Elem::UnderYearDay, 3))
                } else {
                    None
                }
            }
            b'3' => Some((Elem::Hour12, 1)),
            b'4' => Some((Elem::Minute, 1)),
            b'5' => Some((Elem::Second, 1)),
            b'P' if at(i, "PM") => Some((Elem::PmUpper, 2)),
            b'p' if at(i, "pm") => Some((Elem::PmLower, 2)),
            b'-' => {
                if at(i, "-070000") {
                    Some((Elem::NumSecondsTz, 7))
                } else if at(i, "-07:00:00") {
                    Some((Elem::NumColonSecondsTz, 9))
                } else if at(i, "-0700") {
                    Some((Elem::NumTz, 5))
                } else if at(i, "-07:00") {
                    Some((Elem::NumColonTz, 6))
                } else if at(i, "-07") {
                    Some((Elem::NumShortTz, 3))
                } else {
                    None
                }
            }
            b'Z' => {
                if at(i, "Z070000") {
                    Some((Elem::Iso8601SecondsTz, 7))
                } else if at(i, "Z07:00:00") {
                    Some((Elem::Iso8601ColonSecondsTz, 9))
                } else if at(i, "Z0700") {
                    Some((Elem::Iso8601Tz, 5))
                } else if at(i, "Z07:00") {
                    Some((Elem::Iso8601ColonTz, 6))
                } else if at(i, "Z07") {
                    Some((Elem::Iso8601ShortTz, 3))
                } else {
                    None
                }
            }
            b'.' | b',' => match layout.get(i + 1) {
                Some(&ch @ (b'0' | b'9')) => {
                    let mut j = i + 1;
                    while layout.get(j) == Some(&ch) {
                        j += 1;
                    }
                    // Only a run of digits that ends the number is a fraction.
                    if digit_at(layout, j) {
                        None
                    } else {
                        Some((Elem::Frac(c, j - (i + 1), ch == b'9'), j - i))
                    }
                }
                _ => None,
            },
            _ => None,
        };
        if let Some((elem, len)) = found {
            return Some((i, elem, len));
        }
    }
    None
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    let digits = v.unsigned_abs().to_string();
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

/// Formats a Go time layout.
pub fn format_layout(layout: &str, t: &Stamp) -> String {
    let month_name = MONTHS
        .get((t.month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("%!Month");
    let day_name = DAYS.get(t.weekday as usize).copied().unwrap_or("%!Weekday");
    let hour12 = match t.hour % 12 {
        0 => 12,
        h => h,
    };
    let mut out = String::new();
    let mut rest = layout.as_bytes();
    while !rest.is_empty() {
        let Some((prefix, elem, len)) = next_elem(rest) else {
            out.push_str(&String::from_utf8_lossy(rest));
            break;
        };
        out.push_str(&String::from_utf8_lossy(
            rest.get(..prefix).unwrap_or_default(),
        ));
        rest = rest.get(prefix + len..).unwrap_or_default();
        match elem {
            Elem::Year => pad(&mut out, i64::from(t.year.abs() % 100), 2),
            Elem::LongYear => pad(&mut out, i64::from(t.year), 4),
            Elem::Month => out.push_str(month_name.get(..3).unwrap_or(month_name)),
            Elem::LongMonth => out.push_str(month_name),
            Elem::NumMonth => pad(&mut out, i64::from(t.month), 0),
            Elem::ZeroMonth => pad(&mut out, i64::from(t.month), 2),
            Elem::WeekDay => out.push_str(day_name.get(..3).unwrap_or(day_name)),
            Elem::LongWeekDay => out.push_str(day_name),
            Elem::Day => pad(&mut out, i64::from(t.day), 0),
            Elem::UnderDay => {
                if t.day < 10 {
                    out.push(' ');
                }
                pad(&mut out, i64::from(t.day), 0);
            }
            Elem::ZeroDay => pad(&mut out, i64::from(t.day), 2),
            Elem::UnderYearDay => {
                if t.yday < 100 {
                    out.push(' ');
                    if t.yday < 10 {
                        out.push(' ');
                    }
                }
                pad(&mut out, i64::from(t.yday), 0);
            }
            Elem::ZeroYearDay => pad(&mut out, i64::from(t.yday), 3),
            Elem::Hour => pad(&mut out, i64::from(t.hour), 2),
            Elem::Hour12 => pad(&mut out, i64::from(hour12), 0),
            Elem::ZeroHour12 => pad(&mut out, i64::from(hour12), 2),
            Elem::Minute => pad(&mut out, i64::from(t.minute), 0),
            Elem::ZeroMinute => pad(&mut out, i64::from(t.minute), 2),
            Elem::Second => pad(&mut out, i64::from(t.second), 0),
            Elem::ZeroSecond => pad(&mut out, i64::from(t.second), 2),
            Elem::PmUpper => out.push_str(if t.hour >= 12 { "PM" } else { "AM" }),
            Elem::PmLower => out.push_str(if t.hour >= 12 { "pm" } else { "am" }),
            Elem::Tz => match &t.zone_name {
                Some(name) => out.push_str(name),
                None => {
                    let zone = t.offset / 60;
                    out.push(if zone < 0 { '-' } else { '+' });
                    pad(&mut out, i64::from(zone.abs() / 60), 2);
                    pad(&mut out, i64::from(zone.abs() % 60), 2);
                }
            },
            Elem::Frac(sep, digits, trim) => {
                let all = format!("{:09}", t.nanosecond);
                let mut n = digits.min(9);
                if trim {
                    while n > 0 && all.as_bytes().get(n - 1) == Some(&b'0') {
                        n -= 1;
                    }
                    if n == 0 {
                        continue;
                    }
                }
                out.push(sep as char);
                out.push_str(all.get(..n).unwrap_or_default());
            }
            zone_elem => format_offset(&mut out, zone_elem, t.offset),
        }
    }
    out
}

fn format_offset(out: &mut String, elem: Elem, offset: i32) {
    use Elem::*;
    let iso = matches!(
        elem,
        Iso8601Tz | Iso8601ColonTz | Iso8601SecondsTz | Iso8601ShortTz | Iso8601ColonSecondsTz
    );
    if offset == 0 && iso {
        out.push('Z');
        return;
    }
    let zone = offset / 60;
    out.push(if zone < 0 { '-' } else { '+' });
    let (zone, abs_offset) = (zone.abs(), offset.abs());
    pad(out, i64::from(zone / 60), 2);
    if matches!(
        elem,
        Iso8601ColonTz | NumColonTz | Iso8601ColonSecondsTz | NumColonSecondsTz
    ) {
        out.push(':');
    }
    if !matches!(elem, NumShortTz | Iso8601ShortTz) {
        pad(out, i64::from(zone % 60), 2);
    }
    if matches!(
        elem,
        Iso8601SecondsTz | NumSecondsTz | NumColonSecondsTz | Iso8601ColonSecondsTz
    ) {
        if matches!(elem, NumColonSecondsTz | Iso8601ColonSecondsTz) {
            out.push(':');
        }
        pad(out, i64::from(abs_offset % 60), 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        let t = chrono::NaiveDate::from_ymd_opt(2024, 3, 7)
            .and_then(|d| d.and_hms_milli_opt(15, 9, 8, 120))
            .unwrap()
            .and_utc();
        Stamp::from_datetime(&t)
    }

    // Expected texts come from NSQ 1.3.0's own strftime run on the same instant.
    #[test]
    fn default_format() {
        assert_eq!(strftime("%Y-%m-%d_%H", &stamp()), "2024-03-07_15");
    }

    #[test]
    fn every_code() {
        let s = strftime(
            "%B %b %m %A %a %d %H %I %M %S %Y %y %p %Z %z %% %q",
            &stamp(),
        );
        assert_eq!(
            s,
            "March Mar 03 Thursday Thu 07 15 03 09 08 2024 24 PM UTC +0000 % %q"
        );
    }

    #[test]
    fn literal_text_is_a_go_layout_too() {
        let cases = [
            ("v1-%Y", "v3-2024"),
            ("v2", "v7"),
            ("x3", "x3"),
            ("x4 x5", "x9 x8"),
            ("Jan-Janet", "Mar-Janet"),
            ("_2006", "_2024"),
            ("__2|002", " 67|067"),
            ("%S.000|.999|.99x", "08.120|.12|.12x"),
            ("pm PM", "pm PM"),
            ("Z07:00 -07", "Z +00"),
            ("", ""),
            ("%", "%"),
            ("é%Y", "é2024"),
            ("Mon Monday Monx January MST", "Thu Thursday Monx March UTC"),
            (",000", ",120"),
        ];
        for (format, want) in cases {
            assert_eq!(strftime(format, &stamp()), want, "{format}");
        }
    }

    #[test]
    fn zones_and_twelve_hour_clock() {
        let zone = chrono::FixedOffset::west_opt(7 * 3600 + 30 * 60).unwrap();
        let t = Stamp::from_datetime(&zone.with_ymd_and_hms(2024, 3, 7, 0, 9, 8).unwrap());
        assert_eq!(strftime("%Z %z %I %p", &t), "-0730 -0730 12 AM");
        assert_eq!(format_layout("Z07:00:00 -07", &t), "-07:30:00 -07");
    }
}
