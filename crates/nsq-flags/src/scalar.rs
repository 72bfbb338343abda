//! Scalar parsing and formatting with Go's `strconv`/`fmt` rules (booleans, integers, floats,
//! quoting), so flag values and messages read the same as the daemons they replace.

/// Why a number did not parse; the Display strings are the ones Go's flag package prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumError {
    #[error("parse error")]
    Syntax,
    #[error("value out of range")]
    Range,
}

/// Go `strconv.ParseBool`: exactly these spellings, nothing else (so `tRUE` and `yes` fail).
pub fn parse_go_bool(s: &str) -> Result<bool, NumError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(NumError::Syntax),
    }
}

/// Go `strconv.ParseInt(s, 0, 64)`, which is what integer flags use: an optional sign, then
/// `0x`/`0o`/`0b` prefixes or a leading `0` for octal, with `_` allowed between digits.
pub fn parse_go_int(s: &str) -> Result<i64, NumError> {
    let (negative, body) = split_sign(s);
    if body.is_empty() {
        return Err(NumError::Syntax);
    }
    let bytes = body.as_bytes();
    let (radix, digits) = if bytes[0] == b'0' && bytes.len() > 1 {
        match bytes.get(1).map(u8::to_ascii_lowercase) {
            Some(b'x') if bytes.len() >= 3 => (16, &body[2..]),
            Some(b'o') if bytes.len() >= 3 => (8, &body[2..]),
            Some(b'b') if bytes.len() >= 3 => (2, &body[2..]),
            _ => (8, &body[1..]),
        }
    } else {
        (10, body)
    };
    if body.contains('_') && !underscores_ok(body) {
        return Err(NumError::Syntax);
    }
    let magnitude = accumulate(digits, radix, true)?;
    apply_sign(negative, magnitude)
}

/// Go `strconv.ParseInt(s, 10, 64)`, used for integers given as strings in config files.
pub fn parse_decimal_int(s: &str) -> Result<i64, NumError> {
    let (negative, body) = split_sign(s);
    if body.is_empty() {
        return Err(NumError::Syntax);
    }
    let magnitude = accumulate(body, 10, false)?;
    apply_sign(negative, magnitude)
}

/// Go `strconv.ParseFloat(s, 64)` for the forms people actually write (decimal, exponent,
/// `inf`, `nan`).
pub fn parse_go_float(s: &str) -> Result<f64, NumError> {
    // Rust also accepts a few spellings Go does not ("infinity" is accepted by both); the
    // differences are in corners nobody configures.
    s.parse::<f64>().map_err(|_| NumError::Syntax)
}

fn split_sign(s: &str) -> (bool, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = s.strip_prefix('+') {
        (false, rest)
    } else {
        (false, s)
    }
}

fn accumulate(digits: &str, radix: u32, allow_underscore: bool) -> Result<u128, NumError> {
    let mut value: u128 = 0;
    let mut saw_digit = false;
    for c in digits.chars() {
        if c == '_' && allow_underscore {
            continue;
        }
        let d = c.to_digit(radix).ok_or(NumError::Syntax)?;
        saw_digit = true;
        // Keep consuming after overflow so a later bad character still reports a syntax error,
        // as Go does.
        value = value
            .saturating_mul(u128::from(radix))
            .saturating_add(u128::from(d));
    }
    // A bare radix prefix ("0x") has no digits; a lone "0" reaches here with digits == "".
    if !saw_digit && !digits.is_empty() {
        return Err(NumError::Syntax);
    }
    Ok(value)
}

fn apply_sign(negative: bool, magnitude: u128) -> Result<i64, NumError> {
    if negative {
        if magnitude > i64::MAX as u128 + 1 {
            return Err(NumError::Range);
        }
        Ok((magnitude as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(magnitude).map_err(|_| NumError::Range)
    }
}

/// Go's rule for `_` in number literals: each underscore must sit between two digits, or between
/// a radix prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    // '^' start, '0' digit or prefix, '_' underscore, '!' anything else.
    let mut saw = b'^';
    let mut hex = false;
    if bytes.len() >= 2 && bytes[0] == b'0' {
        let p = bytes[1].to_ascii_lowercase();
        if p == b'b' || p == b'o' || p == b'x' {
            i = 2;
            saw = b'0';
            hex = p == b'x';
        }
    }
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `%v` for a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): shortest digits, exponent
/// form when the exponent is below -4 or at least 6 (`1e+06`, `1e-05`, `0.99`, `2`).
pub fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` yields the shortest round-tripping digits, e.g. "-1.5e-7".
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{f}")
    }
}

/// Go's `%q` for a string: double-quoted with backslash escapes for quotes, backslashes and
/// non-printable characters.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_follow_parse_bool() {
        for s in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(s), Ok(true), "{s}");
        }
        for s in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(s), Ok(false), "{s}");
        }
        for s in ["", "tRUE", "yes", "2", " true"] {
            assert_eq!(parse_go_bool(s), Err(NumError::Syntax), "{s}");
        }
    }

    #[test]
    fn ints_accept_go_literals() {
        assert_eq!(parse_go_int("10"), Ok(10));
        assert_eq!(parse_go_int("-10"), Ok(-10));
        assert_eq!(parse_go_int("+7"), Ok(7));
        assert_eq!(parse_go_int("0"), Ok(0));
        assert_eq!(parse_go_int("0x1F"), Ok(31));
        assert_eq!(parse_go_int("0o17"), Ok(15));
        assert_eq!(parse_go_int("017"), Ok(15));
        assert_eq!(parse_go_int("0b101"), Ok(5));
        assert_eq!(parse_go_int("1_000"), Ok(1000));
        assert_eq!(parse_go_int("0x_1f"), Ok(31));
        assert_eq!(parse_go_int("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_go_int("-9223372036854775808"), Ok(i64::MIN));
    }

    #[test]
    fn ints_reject_bad_literals() {
        for s in [
            "", "-", "abc", "1.5", "08", "0x", "1__0", "_1", "1_", " 1", "1e3",
        ] {
            assert_eq!(parse_go_int(s), Err(NumError::Syntax), "{s}");
        }
        assert_eq!(parse_go_int("9223372036854775808"), Err(NumError::Range));
        assert_eq!(
            parse_go_int("99999999999999999999999999999999999999999999"),
            Err(NumError::Range)
        );
    }

    #[test]
    fn decimal_ints_for_config_strings() {
        assert_eq!(parse_decimal_int("42"), Ok(42));
        assert_eq!(parse_decimal_int("-42"), Ok(-42));
        assert_eq!(parse_decimal_int("0x10"), Err(NumError::Syntax));
        assert_eq!(parse_decimal_int("1_0"), Err(NumError::Syntax));
        assert_eq!(parse_decimal_int(""), Err(NumError::Syntax));
    }

    #[test]
    fn floats_format_like_go_v() {
        assert_eq!(format_go_float(0.0), "0");
        assert_eq!(format_go_float(1.0), "1");
        assert_eq!(format_go_float(0.99), "0.99");
        assert_eq!(format_go_float(-1.5), "-1.5");
        assert_eq!(format_go_float(100000.0), "100000");
        assert_eq!(format_go_float(1_000_000.0), "1e+06");
        assert_eq!(format_go_float(0.0001), "0.0001");
        assert_eq!(format_go_float(0.00001), "1e-05");
        assert_eq!(format_go_float(1.25e-7), "1.25e-07");
        assert_eq!(format_go_float(1e100), "1e+100");
        assert_eq!(format_go_float(f64::INFINITY), "+Inf");
        assert_eq!(format_go_float(f64::NAN), "NaN");
    }

    #[test]
    fn floats_parse() {
        assert_eq!(parse_go_float("0.99"), Ok(0.99));
        assert_eq!(parse_go_float("1e3"), Ok(1000.0));
        assert_eq!(parse_go_float("x"), Err(NumError::Syntax));
        assert_eq!(parse_go_float(""), Err(NumError::Syntax));
    }

    #[test]
    fn quoting_matches_go_q() {
        assert_eq!(go_quote("abc"), "\"abc\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("\n\t\u{1}"), "\"\\n\\t\\x01\"");
        assert_eq!(go_quote("µs"), "\"µs\"");
    }
}
