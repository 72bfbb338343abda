//! URL query-string parameters with the rules of Go's `url.ParseQuery` as NSQ uses them: the first
//! value of a repeated key wins, and any malformed piece fails the whole query.

use crate::path::{percent_decode, InvalidEscape};

/// Why a query string was rejected. Callers answer these with 400 `INVALID_REQUEST`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidQuery {
    /// Go (since 1.17) refuses `;` as a separator rather than guessing what was meant.
    #[error("invalid semicolon separator in query")]
    Semicolon,
    #[error(transparent)]
    Escape(#[from] InvalidEscape),
}

/// Decoded query parameters in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses the raw query (the part after `?`, still percent-encoded). `+` decodes to a space.
    /// Decoded bytes that are not UTF-8 are replaced with U+FFFD, which no NSQ name accepts.
    pub fn parse(raw: Option<&str>) -> Result<Self, InvalidQuery> {
        let mut pairs = Vec::new();
        let mut first_error = None;
        for piece in raw.unwrap_or("").split('&') {
            if piece.contains(';') {
                first_error.get_or_insert(InvalidQuery::Semicolon);
                continue;
            }
            if piece.is_empty() {
                continue;
            }
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            // Go keeps scanning after a bad piece and reports the error at the end; the outcome for
            // callers is the same either way, but the first error is the most useful to log.
            match (decode_component(key), decode_component(value)) {
                (Ok(key), Ok(value)) => pairs.push((key, value)),
                (Err(e), _) | (_, Err(e)) => {
                    first_error.get_or_insert(InvalidQuery::Escape(e));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(Query { pairs }),
        }
    }

    /// First value of `key`; `Some("")` for `?key` or `?key=`, which NSQ treats differently from an
    /// absent key (e.g. `INVALID_TOPIC` vs `MISSING_ARG_TOPIC`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in request order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Boolean parameter: `true`/`1` and `false`/`0` are recognised, anything else (or absence)
    /// yields `default`.
    pub fn get_bool(&self, key: &str, default: bool) -> bool {
        self.get(key).and_then(parse_bool).unwrap_or(default)
    }

    /// All pairs in request order, repeats included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// The boolean spellings NSQ accepts in query parameters (case-sensitive).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn decode_component(raw: &str) -> Result<String, InvalidEscape> {
    let bytes = percent_decode(raw, true)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_empty_values_are_present() {
        let q = Query::parse(Some("topic=a&topic=b&channel=&flag")).unwrap();
        assert_eq!(q.get("topic"), Some("a"));
        assert_eq!(q.get_all("topic").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(q.get("channel"), Some(""));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("missing"), None);
        assert!(q.contains("flag"));
    }

    #[test]
    fn decoding_rules() {
        let q = Query::parse(Some("a=x+y&b=%41%2b&c%3D=1=2&&")).unwrap();
        assert_eq!(q.get("a"), Some("x y"));
        assert_eq!(q.get("b"), Some("A+"));
        assert_eq!(q.get("c="), Some("1=2"));
        assert_eq!(q.iter().count(), 3);
    }

    #[test]
    fn absent_and_empty_queries_are_fine() {
        assert!(Query::parse(None).unwrap().is_empty());
        assert!(Query::parse(Some("")).unwrap().is_empty());
        assert!(Query::parse(Some("&&")).unwrap().is_empty());
    }

    #[test]
    fn malformed_queries_are_rejected() {
        assert_eq!(
            Query::parse(Some("topic=a;channel=b")),
            Err(InvalidQuery::Semicolon)
        );
        assert_eq!(Query::parse(Some("a=1&b;")), Err(InvalidQuery::Semicolon));
        assert!(matches!(
            Query::parse(Some("topic=%zz")),
            Err(InvalidQuery::Escape(_))
        ));
        assert!(matches!(
            Query::parse(Some("to%2pic=a")),
            Err(InvalidQuery::Escape(_))
        ));
        assert!(matches!(
            Query::parse(Some("topic=abc%")),
            Err(InvalidQuery::Escape(_))
        ));
    }

    #[test]
    fn non_utf8_values_are_replaced() {
        let q = Query::parse(Some("topic=%ff")).unwrap();
        assert_eq!(q.get("topic"), Some("\u{fffd}"));
    }

    #[test]
    fn booleans() {
        let q = Query::parse(Some("a=true&b=1&c=false&d=0&e=TRUE&f=yes&g=")).unwrap();
        assert!(q.get_bool("a", false));
        assert!(q.get_bool("b", false));
        assert!(!q.get_bool("c", true));
        assert!(!q.get_bool("d", true));
        assert!(q.get_bool("e", true));
        assert!(!q.get_bool("e", false));
        assert!(q.get_bool("f", true));
        assert!(!q.get_bool("g", false));
        assert!(q.get_bool("absent", true));
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("True"), None);
    }
}
