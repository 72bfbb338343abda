//! JSON encoding with the output details of Go's `encoding/json`: `<`, `>`, `&`, U+2028 and U+2029
//! escaped as `\uXXXX`, and floats printed the Go way (`1` rather than `1.0`, `1e-7`, `1e+21`).
//! Parsers do not care, but byte-identical bodies keep diff-based comparisons with the reference
//! quiet.

use std::fmt::{Display, LowerExp};
use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// Serializes `value` as compact JSON with Go's escaping and float formatting.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            let escaped = match ch {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(go_float(value, value.abs()).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        writer.write_all(go_float(value, f64::from(value.abs())).as_bytes())
    }
}

/// Go picks plain decimal notation inside [1e-6, 1e21) and exponent notation outside it, always
/// with the shortest digits that round-trip; Rust's `Display`/`LowerExp` give the same digits.
fn go_float<F: Display + LowerExp>(value: F, abs: f64) -> String {
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let repr = format!("{value:e}");
        let Some((mantissa, exponent)) = repr.split_once('e') else {
            return repr;
        };
        match exponent.strip_prefix('-') {
            Some(digits) => format!("{mantissa}e-{digits}"),
            None => format!("{mantissa}e+{exponent:0>2}"),
        }
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: &serde_json::Value) -> String {
        String::from_utf8(to_vec(v).unwrap()).unwrap()
    }

    #[test]
    fn escapes_html_characters_like_go() {
        assert_eq!(
            enc(&json!({"m": "<a href=\"x\">&</a>\u{2028}"})),
            r#"{"m":"\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e\u2028"}"#
        );
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(enc(&json!(1.0)), "1");
        assert_eq!(enc(&json!(0.5)), "0.5");
        assert_eq!(enc(&json!(-0.0)), "-0");
        assert_eq!(enc(&json!(1234567.0)), "1234567");
        assert_eq!(enc(&json!(1e20)), "100000000000000000000");
        assert_eq!(enc(&json!(1e21)), "1e+21");
        assert_eq!(enc(&json!(1.5e300)), "1.5e+300");
        assert_eq!(enc(&json!(1e-7)), "1e-7");
        assert_eq!(enc(&json!(0.000001)), "0.000001");
        assert_eq!(enc(&json!(0.99)), "0.99");
        assert_eq!(
            String::from_utf8(to_vec(&0.25f32).unwrap()).unwrap(),
            "0.25"
        );
    }

    #[test]
    fn integers_and_structure_untouched() {
        assert_eq!(
            enc(&json!({"a": [1, -2, null, true], "b": "x"})),
            r#"{"a":[1,-2,null,true],"b":"x"}"#
        );
    }
}
