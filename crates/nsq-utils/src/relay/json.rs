//! `nsq_to_nsq`'s JSON filters: `--require-json-field`/`--require-json-value` decide whether a
//! message passes, `--whitelist-json-field` re-encodes it with only the listed fields. The
//! re-encoding follows Go's `encoding/json` (sorted keys, HTML-safe escapes, Go's float
//! formatting), since that is what the destination has always received.
use serde_json::{Map, Value};

/// The filter flags, with the required value pre-parsed as a number when it is one.
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonFilter {
    require_field: String,
    require_value: String,
    require_number: Option<f64>,
    whitelist: Vec<String>,
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Publish this body.
    Pass(Vec<u8>),
    /// Finish it without publishing.
    Drop,
    /// Not JSON: log it and finish it without publishing.
    NotJson,
    /// The required field is missing while a value is required: requeue with backoff.
    Backoff,
}

impl JsonFilter {
    pub(crate) fn new(
        require_field: &str,
        require_value: &str,
        whitelist: &[String],
    ) -> JsonFilter {
        JsonFilter {
            require_field: require_field.to_string(),
            require_value: require_value.to_string(),
            require_number: nsq_flags::parse_go_float(require_value).ok(),
            whitelist: whitelist.to_vec(),
        }
    }

    /// Whether messages need to be decoded at all.
    pub(crate) fn is_active(&self) -> bool {
        !self.require_field.is_empty() || !self.whitelist.is_empty()
    }

    pub(crate) fn apply(&self, body: &[u8]) -> Verdict {
        if !self.is_active() {
            return Verdict::Pass(body.to_vec());
        }
        // Go decodes invalid UTF-8 inside strings as U+FFFD rather than failing.
        let text = String::from_utf8_lossy(body);
        let Ok(Value::Object(js)) = serde_json::from_str::<Value>(&text) else {
            return Verdict::NotJson;
        };
        match self.should_pass(&js) {
            (true, _) => {}
            (false, true) => return Verdict::Backoff,
            (false, false) => return Verdict::Drop,
        }
        if self.whitelist.is_empty() {
            return Verdict::Pass(body.to_vec());
        }
        let mut kept = Map::new();
        for key in &self.whitelist {
            if let Some(v) = js.get(key) {
                kept.insert(key.clone(), v.clone());
            }
        }
        let mut out = Vec::with_capacity(body.len());
        encode_top_level(&kept, &mut out);
        Verdict::Pass(out)
    }

    /// `(pass, backoff)`.
    fn should_pass(&self, js: &Map<String, Value>) -> (bool, bool) {
        if self.require_field.is_empty() {
            return (true, false);
        }
        let Some(v) = js.get(&self.require_field) else {
            if self.require_value.is_empty() {
                return (false, false);
            }
            super::golog::print("ERROR: missing field to check required value");
            return (false, true);
        };
        if self.require_value.is_empty() {
            return (true, false);
        }
        let pass = match (v, self.require_number) {
            (Value::String(s), _) => *s == self.require_value,
            (Value::Number(n), Some(want)) => n.as_f64() == Some(want),
            _ => false,
        };
        (pass, false)
    }
}

/// The whitelisted object: top-level integral numbers print as integers (the Go tool converts
/// them to int64 first); everything nested prints as Go prints a float64.
/// 2^63, exactly representable as f64.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

fn encode_top_level(map: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push(b'{');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        encode_string(k, out);
        out.push(b':');
        match map.get(*k) {
            Some(Value::Number(n)) => {
                let f = n.as_f64().unwrap_or(0.0);
                // int64(f) is exact only inside [-2^63, 2^63).
                if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) {
                    out.extend_from_slice((f as i64).to_string().as_bytes());
                } else {
                    encode_float(f, out);
                }
            }
            Some(v) => encode_value(v, out),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}

fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => encode_float(n.as_f64().unwrap_or(0.0), out),
        Value::String(s) => encode_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode_string(k, out);
                out.push(b':');
                if let Some(v) = map.get(*k) {
                    encode_value(v, out);
                }
            }
            out.push(b'}');
        }
    }
}

/// Go's float64 encoding: shortest round-trip digits, plain notation from 1e-6 up to 1e21,
/// exponent notation (`1e+21`, `1e-7`) outside.
fn encode_float(f: f64, out: &mut Vec<u8>) {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => {
                out.extend_from_slice(format!("{mantissa}e+{exp}").as_bytes());
            }
            _ => out.extend_from_slice(s.as_bytes()),
        }
    } else {
        out.extend_from_slice(format!("{f}").as_bytes());
    }
}

/// Go's string encoding with HTML escaping on (as of the Go release NSQ 1.3.0 was built
/// with, which spells backspace and form feed as `\u0008` and `\u000c`).
fn encode_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
                out.push(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
            }
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wl(fields: &[&str]) -> JsonFilter {
        let f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        JsonFilter::new("", "", &f)
    }

    fn pass(v: Verdict) -> String {
        match v {
            Verdict::Pass(b) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inactive_filter_passes_anything() {
        let f = JsonFilter::new("", "", &[]);
        assert!(!f.is_active());
        assert_eq!(f.apply(b"not json"), Verdict::Pass(b"not json".to_vec()));
    }

    #[test]
    fn require_field_and_value() {
        let f = JsonFilter::new("kind", "", &[]);
        assert_eq!(
            pass(f.apply(br#"{"kind": 1, "x": 2}"#)),
            r#"{"kind": 1, "x": 2}"#
        );
        assert_eq!(f.apply(br#"{"x": 2}"#), Verdict::Drop);
        assert_eq!(f.apply(b"[1]"), Verdict::NotJson);
        assert_eq!(f.apply(b"{"), Verdict::NotJson);

        let f = JsonFilter::new("kind", "click", &[]);
        assert!(matches!(f.apply(br#"{"kind":"click"}"#), Verdict::Pass(_)));
        assert_eq!(f.apply(br#"{"kind":"view"}"#), Verdict::Drop);
        assert_eq!(f.apply(br#"{"kind":true}"#), Verdict::Drop);
        assert_eq!(f.apply(br#"{"other":1}"#), Verdict::Backoff);

        let f = JsonFilter::new("n", "42", &[]);
        assert!(matches!(f.apply(br#"{"n":42}"#), Verdict::Pass(_)));
        assert!(matches!(f.apply(br#"{"n":42.0}"#), Verdict::Pass(_)));
        assert!(matches!(f.apply(br#"{"n":4.2e1}"#), Verdict::Pass(_)));
        assert!(matches!(f.apply(br#"{"n":"42"}"#), Verdict::Pass(_)));
        assert_eq!(f.apply(br#"{"n":"42.0"}"#), Verdict::Drop);
        assert_eq!(f.apply(br#"{"n":43}"#), Verdict::Drop);
        assert_eq!(f.apply(br#"{"n":[42]}"#), Verdict::Drop);
    }

    #[test]
    fn whitelist_reencodes_like_go() {
        let f = wl(&["b", "a", "missing", "n", "f", "big", "nested", "s"]);
        let out = pass(f.apply(
            br#"{"z":1,"a":1.0,"b":-2.5,"n":null,"f":1e21,"big":12345678901234567890,
                "nested":{"y":[1.0,2.5e-7,3e21,true],"x":"<&>"},"s":"caf\u00e9\n\u2028"}"#,
        ));
        assert_eq!(
            out,
            r#"{"a":1,"b":-2.5,"big":12345678901234567000,"f":1e+21,"n":null,"nested":{"x":"\u003c\u0026\u003e","y":[1,2.5e-7,3e+21,true]},"s":"café\n\u2028"}"#
        );
        assert_eq!(pass(wl(&["x"]).apply(b"{}")), "{}");
    }

    #[test]
    fn top_level_integers_outside_int64_stay_floats() {
        let out = pass(
            wl(&["a", "b", "c"])
                .apply(br#"{"a":9223372036854775808,"b":-9223372036854775808,"c":1e300}"#),
        );
        assert_eq!(
            out,
            r#"{"a":9223372036854776000,"b":-9223372036854775808,"c":1e+300}"#
        );
    }

    #[test]
    fn control_characters_escape_like_go() {
        let out = pass(wl(&["s"]).apply(b"{\"s\":\"\\u0001\\b\\f\\\"\\\\\"}"));
        assert_eq!(out, r#"{"s":"\u0001\u0008\u000c\"\\"}"#);
    }
}
