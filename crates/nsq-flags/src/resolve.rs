//! Config files and final option values: loading the TOML file, coercing its values with NSQ's
//! rules, and merging command line → config file → default.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::duration::parse_go_duration;
use crate::flagset::{normalized, CommandLine, Flag, FlagSet, Kind, Value};
use crate::scalar::{format_go_float, parse_decimal_int, parse_go_bool, parse_go_float};

/// A config-file problem. Callers log it as fatal and exit 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to load config file {path} - {reason}")]
    Load { path: String, reason: String },
    /// A key with a restricted set of values (see [`Flag::normalizer`]) holds something else.
    #[error("failed parsing {key} {value}")]
    Special { key: String, value: String },
    #[error("failed to coerce config value {value} for {key} - {reason}")]
    Coerce {
        key: String,
        value: String,
        reason: String,
    },
}

/// Reads and parses a TOML config file into its top-level table.
pub fn load_config_file(path: impl AsRef<Path>) -> Result<toml::Table, ConfigError> {
    let path = path.as_ref();
    let load_err = |reason: String| ConfigError::Load {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| load_err(e.to_string()))?;
    parse_config(&text).map_err(load_err)
}

/// Parses config-file text; the error is a single line (`line L, column C: message`) because it
/// ends up inside a one-line fatal log message.
pub fn parse_config(text: &str) -> Result<toml::Table, String> {
    text.parse::<toml::Table>().map_err(|e| {
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!("toml: line {line}, column {column}: {message}")
            }
            None => format!("toml: {message}"),
        }
    })
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A config value as Go's `%v` prints it; used both to coerce scalars into strings and in error
/// messages.
pub fn format_config_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => format_go_float(*f),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(a) => {
            let items: Vec<String> = a.iter().map(format_config_value).collect();
            format!("[{}]", items.join(" "))
        }
        toml::Value::Table(t) => {
            let items: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{k}:{}", format_config_value(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Final option values: command line, else config file, else default.
#[derive(Debug, Clone)]
pub struct Values {
    values: BTreeMap<&'static str, Value>,
    cli: BTreeSet<&'static str>,
    config: toml::Table,
}

impl Values {
    pub(crate) fn new(
        values: BTreeMap<&'static str, Value>,
        cli: BTreeSet<&'static str>,
        config: toml::Table,
    ) -> Values {
        Values {
            values,
            cli,
            config,
        }
    }

    pub(crate) fn into_map(self) -> BTreeMap<&'static str, Value> {
        self.values
    }

    /// The value of a flag, `None` for an unknown name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// Whether the flag was given on the command line.
    pub fn is_set_on_cli(&self, name: &str) -> bool {
        self.cli.contains(name)
    }

    /// The config file's raw value for `key`, including keys no flag maps.
    pub fn config_value(&self, key: &str) -> Option<&toml::Value> {
        self.config.get(key)
    }

    fn expect(&self, name: &str) -> &Value {
        match self.values.get(name) {
            Some(v) => v,
            None => panic!("no flag named {name:?}"),
        }
    }

    /// # Panics
    /// The typed getters panic when the name is not a flag or the flag has another type; both
    /// are programming errors.
    pub fn bool(&self, name: &str) -> bool {
        match self.expect(name) {
            Value::Bool(b) => *b,
            other => panic!("flag {name:?} is not a bool: {other:?}"),
        }
    }

    /// Value of a `Str` or `OptionalValue` flag.
    pub fn string(&self, name: &str) -> &str {
        match self.expect(name) {
            Value::Str(s) => s,
            other => panic!("flag {name:?} is not a string: {other:?}"),
        }
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.expect(name) {
            Value::Int(i) => *i,
            other => panic!("flag {name:?} is not an int: {other:?}"),
        }
    }

    pub fn float(&self, name: &str) -> f64 {
        match self.expect(name) {
            Value::Float(f) => *f,
            other => panic!("flag {name:?} is not a float: {other:?}"),
        }
    }

    pub fn duration(&self, name: &str) -> Duration {
        match self.expect(name) {
            Value::Duration(d) => *d,
            other => panic!("flag {name:?} is not a duration: {other:?}"),
        }
    }

    pub fn str_list(&self, name: &str) -> &[String] {
        match self.expect(name) {
            Value::StrList(v) => v,
            other => panic!("flag {name:?} is not a string list: {other:?}"),
        }
    }

    pub fn float_list(&self, name: &str) -> &[f64] {
        match self.expect(name) {
            Value::FloatList(v) => v,
            other => panic!("flag {name:?} is not a float list: {other:?}"),
        }
    }
}

impl FlagSet {
    /// Merges the command line with an optional config table.
    ///
    /// Keys of flags with a normalizer are checked first, even when the command line overrides
    /// them, so a bad value in the file is always reported (as NSQ does).
    pub fn resolve(
        &self,
        cli: &CommandLine,
        config: Option<&toml::Table>,
    ) -> Result<Values, ConfigError> {
        let empty = toml::Table::new();
        let table = config.unwrap_or(&empty);
        for flag in self.flags() {
            if let (Some(key), Some(_)) = (flag.config_key(), flag.normalize()) {
                if let Some(raw) = table.get(key) {
                    let text = format_config_value(raw);
                    if normalized(flag, &text).is_err() {
                        return Err(ConfigError::Special {
                            key: key.to_string(),
                            value: text,
                        });
                    }
                }
            }
        }
        let mut values = BTreeMap::new();
        let mut set = BTreeSet::new();
        for flag in self.flags() {
            let name = flag.name();
            let from_cli = cli.values().get(name).filter(|_| cli.is_set(name));
            let value = if let Some(v) = from_cli {
                set.insert(name);
                v.clone()
            } else if let Some((key, raw)) = flag
                .config_key()
                .and_then(|k| table.get(k).map(|raw| (k, raw)))
            {
                coerce(flag, key, raw)?
            } else {
                flag.default_value().clone()
            };
            values.insert(name, value);
        }
        Ok(Values::new(values, set, table.clone()))
    }
}

/// Converts a config value to the flag's type with go-options' coercion rules.
fn coerce(flag: &Flag, key: &str, raw: &toml::Value) -> Result<Value, ConfigError> {
    use toml::Value as T;
    let fail = |reason: &str| ConfigError::Coerce {
        key: key.to_string(),
        value: format_config_value(raw),
        reason: reason.to_string(),
    };
    Ok(match flag.kind() {
        Kind::Bool => Value::Bool(match raw {
            T::Boolean(b) => *b,
            T::String(s) => parse_go_bool(s).map_err(|_| fail("not a boolean"))?,
            // NSQ's options library reads an integer N as `N == 0`; kept because existing
            // config files may depend on it.
            T::Integer(n) => *n == 0,
            _ => return Err(fail("expected a boolean")),
        }),
        Kind::Str | Kind::OptionalValue { .. } => match raw {
            T::Array(_) | T::Table(_) => return Err(fail("expected a string")),
            scalar => {
                let text = format_config_value(scalar);
                match normalized(flag, &text) {
                    Ok(Some(v)) => Value::Str(v),
                    Ok(None) => flag.default_value().clone(),
                    Err(reason) => return Err(fail(&reason)),
                }
            }
        },
        Kind::Int => Value::Int(match raw {
            T::Integer(n) => *n,
            T::String(s) => parse_decimal_int(s).map_err(|e| fail(&e.to_string()))?,
            _ => return Err(fail("expected an integer")),
        }),
        Kind::Float => Value::Float(match raw {
            T::Float(f) => *f,
            T::Integer(n) => *n as f64,
            T::String(s) => parse_go_float(s).map_err(|e| fail(&e.to_string()))?,
            _ => return Err(fail("expected a number")),
        }),
        Kind::Duration => Value::Duration(match raw {
            T::String(s) => parse_go_duration(s).map_err(|e| fail(&e.to_string()))?,
            // A bare integer is milliseconds (`msg_timeout = 60000`).
            T::Integer(n) => {
                Duration::from_millis(u64::try_from(*n).map_err(|_| fail("negative duration"))?)
            }
            _ => return Err(fail("expected a duration string or integer milliseconds")),
        }),
        Kind::StrList => Value::StrList(match raw {
            T::String(s) => split_list(s).map(str::to_string).collect(),
            T::Array(items) => items
                .iter()
                .map(|item| match item {
                    T::String(s) => Ok(s.clone()),
                    _ => Err(fail("expected an array of strings")),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(fail(
                    "expected an array of strings or a comma-separated string",
                ))
            }
        }),
        Kind::FloatList => Value::FloatList(match raw {
            T::String(s) => split_list(s)
                .map(|part| parse_go_float(part.trim()).map_err(|e| fail(&e.to_string())))
                .collect::<Result<_, _>>()?,
            T::Array(items) => items
                .iter()
                .map(|item| match item {
                    T::Float(f) => Ok(*f),
                    T::Integer(n) => Ok(*n as f64),
                    _ => Err(fail("expected an array of numbers")),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(fail(
                    "expected an array of numbers or a comma-separated string",
                ))
            }
        }),
    })
}

/// Comma-separated items of a list given as one string. An empty string is an empty list
/// (rather than one empty item).
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(move |_| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flagset::Parsed;

    fn tls_version(s: &str) -> Result<Option<String>, String> {
        match s.to_ascii_lowercase().as_str() {
            "" => Ok(None),
            v @ ("tls1.0" | "tls1.2") => Ok(Some(v.to_string())),
            _ => Err(format!("unknown version {s}")),
        }
    }

    fn fs() -> FlagSet {
        FlagSet::new("app")
            .flag(Flag::bool("enable", false, ""))
            .flag(Flag::bool("mem-stats", true, ""))
            .flag(Flag::string("addr", "0.0.0.0:1", ""))
            .flag(Flag::int("size", 10, ""))
            .flag(Flag::float("ratio", 1.0, ""))
            .flag(Flag::duration("timeout", Duration::from_secs(60), ""))
            .flag(Flag::str_list("lookupd", "").config_name("lookupd_addresses"))
            .flag(Flag::float_list("pct", "").config_name("pcts"))
            .flag(Flag::bool("verbose", false, "").no_config())
            .flag(Flag::string("tls-min", "tls1.0", "").normalizer(tls_version))
            .flag(Flag::optional_value("req", "false", "true", ""))
    }

    fn table(text: &str) -> toml::Table {
        match parse_config(text) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    fn resolve(argv: &[&str], config: &str) -> Result<Values, ConfigError> {
        let fs = fs();
        let Ok(Parsed::Args(cl)) = fs.parse(argv.iter().copied()) else {
            panic!("parse failed");
        };
        fs.resolve(&cl, Some(&table(config)))
    }

    fn ok(argv: &[&str], config: &str) -> Values {
        match resolve(argv, config) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    fn coerce_err(config: &str) -> String {
        match resolve(&[], config) {
            Err(e) => e.to_string(),
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
    }

    #[test]
    fn precedence_cli_then_config_then_default() {
        let v = ok(&["--size=1"], "size = 2\naddr = \"cfg:1\"");
        assert_eq!(v.int("size"), 1);
        assert_eq!(v.string("addr"), "cfg:1");
        assert_eq!(v.duration("timeout"), Duration::from_secs(60));
        assert!(v.is_set_on_cli("size"));
        assert!(!v.is_set_on_cli("addr"));
        // A command-line list replaces the file's list instead of merging with it.
        let v = ok(&["--lookupd=a"], "lookupd_addresses = [\"b\", \"c\"]");
        assert_eq!(v.str_list("lookupd"), ["a"]);
        let fs = fs();
        let Ok(Parsed::Args(cl)) = fs.parse(["--size=3"]) else {
            panic!()
        };
        let v = fs.resolve(&cl, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.int("size"), 3);
        assert_eq!(v.int("size"), cl.values().int("size"));
    }

    #[test]
    fn config_names_aliases_and_unmapped_flags() {
        let v = ok(
            &[],
            "lookupd = [\"ignored\"]\nlookupd_addresses = [\"x\"]\nverbose = true\nunknown = 1\n\
             pcts = [1.0, 0.99]",
        );
        assert_eq!(v.str_list("lookupd"), ["x"]);
        assert_eq!(v.float_list("pct"), [1.0, 0.99]);
        assert!(!v.bool("verbose"));
        assert_eq!(v.config_value("unknown"), Some(&toml::Value::Integer(1)));
        assert_eq!(v.config_value("absent"), None);
    }

    #[test]
    fn derived_config_name_replaces_dashes() {
        assert!(!ok(&[], "mem_stats = false").bool("mem-stats"));
        assert!(ok(&[], "mem-stats = false").bool("mem-stats"));
    }

    #[test]
    fn bool_coercion_including_integer_quirk() {
        assert!(ok(&[], "enable = true").bool("enable"));
        assert!(ok(&[], "enable = \"t\"").bool("enable"));
        assert!(ok(&[], "enable = \"1\"").bool("enable"));
        assert!(!ok(&[], "mem_stats = \"FALSE\"").bool("mem-stats"));
        assert!(ok(&[], "enable = 0").bool("enable"));
        assert!(!ok(&[], "mem_stats = 1").bool("mem-stats"));
        assert!(!ok(&[], "mem_stats = 5").bool("mem-stats"));
        assert_eq!(
            coerce_err("enable = \"yes\""),
            "failed to coerce config value yes for enable - not a boolean"
        );
        assert_eq!(
            coerce_err("enable = 1.5"),
            "failed to coerce config value 1.5 for enable - expected a boolean"
        );
    }

    #[test]
    fn string_coercion_formats_scalars() {
        assert_eq!(ok(&[], "addr = 5").string("addr"), "5");
        assert_eq!(ok(&[], "addr = 0.5").string("addr"), "0.5");
        assert_eq!(ok(&[], "addr = true").string("addr"), "true");
        assert_eq!(ok(&[], "req = true").string("req"), "true");
        assert!(coerce_err("addr = [\"a\"]").contains("for addr - expected a string"));
    }

    #[test]
    fn int_and_float_coercion() {
        assert_eq!(ok(&[], "size = 42").int("size"), 42);
        assert_eq!(ok(&[], "size = \"-42\"").int("size"), -42);
        assert!(coerce_err("size = \"0x10\"").contains("for size - parse error"));
        assert!(coerce_err("size = 1.5").contains("for size - expected an integer"));
        assert_eq!(ok(&[], "ratio = 0.25").float("ratio"), 0.25);
        assert_eq!(ok(&[], "ratio = 2").float("ratio"), 2.0);
        assert_eq!(ok(&[], "ratio = \"0.75\"").float("ratio"), 0.75);
        assert!(coerce_err("ratio = \"x\"").contains("for ratio - parse error"));
        assert!(coerce_err("ratio = false").contains("for ratio - expected a number"));
    }

    #[test]
    fn duration_coercion_strings_and_integer_milliseconds() {
        assert_eq!(
            ok(&[], "timeout = \"1m30s\"").duration("timeout"),
            Duration::from_secs(90)
        );
        assert_eq!(
            ok(&[], "timeout = 60000").duration("timeout"),
            Duration::from_secs(60)
        );
        assert_eq!(ok(&[], "timeout = 0").duration("timeout"), Duration::ZERO);
        assert_eq!(
            coerce_err("timeout = \"5x\""),
            "failed to coerce config value 5x for timeout - unknown unit \"x\" in duration \"5x\""
        );
        assert!(coerce_err("timeout = -5").contains("negative duration"));
        assert!(coerce_err("timeout = 1.5").contains("for timeout - expected a duration"));
    }

    #[test]
    fn list_coercion() {
        assert_eq!(
            ok(&[], "lookupd_addresses = \"a:1,b:2\"").str_list("lookupd"),
            ["a:1", "b:2"]
        );
        assert!(ok(&[], "lookupd_addresses = \"\"")
            .str_list("lookupd")
            .is_empty());
        assert!(ok(&[], "lookupd_addresses = []")
            .str_list("lookupd")
            .is_empty());
        assert!(coerce_err("lookupd_addresses = [1]").contains("expected an array of strings"));
        assert!(coerce_err("lookupd_addresses = 1").contains("comma-separated"));
        assert_eq!(
            ok(&[], "pcts = \"1.0, 0.99,0.95\"").float_list("pct"),
            [1.0, 0.99, 0.95]
        );
        assert_eq!(ok(&[], "pcts = [1, 0.5]").float_list("pct"), [1.0, 0.5]);
        assert!(coerce_err("pcts = \"0.9,x\"").contains("for pcts - parse error"));
        assert!(coerce_err("pcts = [\"0.9\"]").contains("expected an array of numbers"));
    }

    #[test]
    fn normalized_keys_are_checked_before_resolution() {
        assert_eq!(ok(&[], "tls_min = \"TLS1.2\"").string("tls-min"), "tls1.2");
        // An empty value keeps the default.
        assert_eq!(ok(&[], "tls_min = \"\"").string("tls-min"), "tls1.0");
        assert_eq!(
            coerce_err("tls_min = \"ssl3.0\""),
            "failed parsing tls_min ssl3.0"
        );
        // Checked even though the command line wins.
        match resolve(&["--tls-min=tls1.2"], "tls_min = 7") {
            Err(e) => assert_eq!(e.to_string(), "failed parsing tls_min 7"),
            Ok(v) => panic!("{v:?}"),
        }
    }

    #[test]
    fn config_file_loading() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let good = dir.path().join("good.cfg");
        std::fs::write(&good, "size = 5\n").unwrap_or_else(|e| panic!("{e}"));
        let t = load_config_file(&good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.get("size"), Some(&toml::Value::Integer(5)));

        let bad = dir.path().join("bad.cfg");
        std::fs::write(&bad, "size = 5\naddr = \n").unwrap_or_else(|e| panic!("{e}"));
        let e = load_config_file(&bad).unwrap_err().to_string();
        let prefix = format!(
            "failed to load config file {} - toml: line 2,",
            bad.display()
        );
        assert!(e.starts_with(&prefix), "{e}");
        assert!(!e.contains('\n'), "{e}");

        let missing = dir.path().join("missing.cfg");
        let e = load_config_file(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "failed to load config file {} - ",
                missing.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn duplicate_keys_are_syntax_errors() {
        assert!(parse_config("a = 1\na = 2").is_err());
    }

    #[test]
    fn formats_values_like_go() {
        assert_eq!(format_config_value(&toml::Value::Float(1.0)), "1");
        let arr = toml::Value::Array(vec![toml::Value::String("a".into()), 2.into()]);
        assert_eq!(format_config_value(&arr), "[a 2]");
    }
}
