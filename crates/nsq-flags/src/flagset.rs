//! Flag definitions and command-line parsing with the Go `flag` package's rules: `-x`/`--x`,
//! `=value` or a separate value, bare booleans, `--` and the first positional argument ending the
//! flags, `-h`/`-help`, Go-worded one-line errors and Go-shaped usage text.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use crate::duration::{format_go_duration, parse_go_duration};
use crate::resolve::Values;
use crate::scalar::{format_go_float, go_quote, parse_go_bool, parse_go_float, parse_go_int};

/// What a flag holds and how its command-line text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `-x` means true; a value only via `-x=v`.
    Bool,
    Str,
    Int,
    Float,
    /// Go duration syntax.
    Duration,
    /// Repeatable; one value per occurrence, commas kept.
    StrList,
    /// Repeatable; each occurrence may hold several comma-separated numbers.
    FloatList,
    /// A string that, like a boolean, needs no value: bare `-x` stores `bare`, `-x=v` stores `v`.
    OptionalValue {
        bare: &'static str,
    },
}

/// A flag's value; the variant always matches the flag's [`Kind`] (`OptionalValue` holds `Str`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Str(String),
    Int(i64),
    Float(f64),
    Duration(Duration),
    StrList(Vec<String>),
    FloatList(Vec<f64>),
}

/// Checks and canonicalises the text of a string-valued flag, wherever it comes from (command
/// line or config file). `Ok(Some(v))` stores `v`; `Ok(None)` keeps the value already in force
/// (Go options whose setter ignores some inputs, e.g. an empty TLS version); `Err(reason)` rejects
/// it.
pub type Normalizer = fn(&str) -> Result<Option<String>, String>;

/// One flag definition. Build with the typed constructors so that kind and default always agree.
#[derive(Debug, Clone)]
pub struct Flag {
    name: &'static str,
    config_name: Option<String>,
    kind: Kind,
    default: Value,
    usage: String,
    value_name: Option<&'static str>,
    normalizer: Option<Normalizer>,
}

impl Flag {
    fn new(name: &'static str, kind: Kind, default: Value, usage: impl Into<String>) -> Flag {
        Flag {
            name,
            config_name: Some(name.replace('-', "_")),
            kind,
            default,
            usage: usage.into(),
            value_name: None,
            normalizer: None,
        }
    }

    pub fn bool(name: &'static str, default: bool, usage: impl Into<String>) -> Flag {
        Flag::new(name, Kind::Bool, Value::Bool(default), usage)
    }

    pub fn string(
        name: &'static str,
        default: impl Into<String>,
        usage: impl Into<String>,
    ) -> Flag {
        Flag::new(name, Kind::Str, Value::Str(default.into()), usage)
    }

    pub fn int(name: &'static str, default: i64, usage: impl Into<String>) -> Flag {
        Flag::new(name, Kind::Int, Value::Int(default), usage)
    }

    pub fn float(name: &'static str, default: f64, usage: impl Into<String>) -> Flag {
        Flag::new(name, Kind::Float, Value::Float(default), usage)
    }

    pub fn duration(name: &'static str, default: Duration, usage: impl Into<String>) -> Flag {
        Flag::new(name, Kind::Duration, Value::Duration(default), usage)
    }

    /// A repeatable string flag, empty by default.
    pub fn str_list(name: &'static str, usage: impl Into<String>) -> Flag {
        Flag::new(name, Kind::StrList, Value::StrList(Vec::new()), usage)
    }

    /// A repeatable, comma-splitting float flag, empty by default.
    pub fn float_list(name: &'static str, usage: impl Into<String>) -> Flag {
        Flag::new(name, Kind::FloatList, Value::FloatList(Vec::new()), usage)
    }

    /// A string flag usable bare (`-x` stores `bare`) or with `-x=value`.
    pub fn optional_value(
        name: &'static str,
        default: impl Into<String>,
        bare: &'static str,
        usage: impl Into<String>,
    ) -> Flag {
        Flag::new(
            name,
            Kind::OptionalValue { bare },
            Value::Str(default.into()),
            usage,
        )
    }

    /// Uses `key` instead of the derived `snake_case` name in config files.
    pub fn config_name(mut self, key: &'static str) -> Flag {
        self.config_name = Some(key.to_string());
        self
    }

    /// The flag cannot be set from a config file (deprecated flags, `--config`, `--version`).
    pub fn no_config(mut self) -> Flag {
        self.config_name = None;
        self
    }

    /// Placeholder shown after the flag name in usage text, replacing the one derived from the
    /// kind (Go shows `value` for flags with custom parsers).
    pub fn value_name(mut self, placeholder: &'static str) -> Flag {
        self.value_name = Some(placeholder);
        self
    }

    /// Validates/canonicalises a `Str` or `OptionalValue` flag. Ignored for other kinds.
    pub fn normalizer(mut self, normalize: Normalizer) -> Flag {
        self.normalizer = Some(normalize);
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Key in config files, `None` when the flag has no mapping.
    pub fn config_key(&self) -> Option<&str> {
        self.config_name.as_deref()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn default_value(&self) -> &Value {
        &self.default
    }

    pub fn usage(&self) -> &str {
        &self.usage
    }

    pub(crate) fn normalize(&self) -> Option<Normalizer> {
        match self.kind {
            Kind::Str | Kind::OptionalValue { .. } => self.normalizer,
            _ => None,
        }
    }

    fn is_boolean_like(&self) -> bool {
        matches!(self.kind, Kind::Bool | Kind::OptionalValue { .. })
    }

    /// The placeholder name and usage sentence, honouring Go's convention that a back-quoted word
    /// in the usage names the placeholder.
    fn usage_parts(&self) -> (String, String) {
        let mut parts = self.usage.splitn(3, '`');
        if let (Some(before), Some(name), Some(after)) = (parts.next(), parts.next(), parts.next())
        {
            return (name.to_string(), format!("{before}{name}{after}"));
        }
        let name = match (self.value_name, self.kind) {
            (Some(n), _) => n,
            (None, Kind::Bool | Kind::OptionalValue { .. }) => "",
            (None, Kind::Str) => "string",
            (None, Kind::Int) => "int",
            (None, Kind::Float) => "float",
            (None, Kind::Duration) => "duration",
            (None, Kind::StrList | Kind::FloatList) => "value",
        };
        (name.to_string(), self.usage.clone())
    }

    /// ` (default X)` when the default differs from the type's zero value, as Go prints it.
    fn default_suffix(&self) -> String {
        let text = match &self.default {
            Value::Bool(false) | Value::Int(0) | Value::Duration(Duration::ZERO) => {
                return String::new()
            }
            Value::Float(f) if *f == 0.0 => return String::new(),
            Value::Str(s) if s.is_empty() => return String::new(),
            Value::StrList(v) if v.is_empty() => return String::new(),
            Value::FloatList(v) if v.is_empty() => return String::new(),
            Value::Str(s) if matches!(self.kind, Kind::OptionalValue { .. }) => {
                if parse_go_bool(s) == Ok(false) {
                    return String::new();
                }
                s.clone()
            }
            Value::Str(s) if self.value_name.is_none() => go_quote(s),
            Value::Str(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_go_float(*f),
            Value::Duration(d) => format_go_duration(*d),
            Value::StrList(v) => v.join(","),
            Value::FloatList(v) => v
                .iter()
                .map(|f| format!("{f:.6}"))
                .collect::<Vec<_>>()
                .join(","),
        };
        format!(" (default {text})")
    }
}

/// A command-line error. Display is one line in the Go `flag` package's words; callers print it
/// with the usage text and exit 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("flag provided but not defined: -{0}")]
    NotDefined(String),
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    #[error("flag needs an argument: -{0}")]
    NeedsArgument(String),
    #[error("invalid value {} for flag -{name}: {reason}", go_quote(.value))]
    InvalidValue {
        name: String,
        value: String,
        reason: String,
    },
    #[error("invalid boolean value {} for -{name}: {reason}", go_quote(.value))]
    InvalidBool {
        name: String,
        value: String,
        reason: String,
    },
}

/// What the command line asked for.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// `-h`, `-help` or `--help`: print this usage text and exit 0.
    Help(String),
    Args(CommandLine),
}

/// Flags from the command line (defaults where not given) and the positional arguments that
/// followed them.
#[derive(Debug, Clone)]
pub struct CommandLine {
    values: Values,
    positional: Vec<String>,
}

impl CommandLine {
    /// Command-line values with defaults filled in; the config file is not consulted.
    pub fn values(&self) -> &Values {
        &self.values
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.values.is_set_on_cli(name)
    }

    /// Arguments from the first non-flag argument (or after `--`) onwards.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }
}

/// An application's set of flags.
#[derive(Debug, Clone)]
pub struct FlagSet {
    app: String,
    flags: Vec<Flag>,
}

impl FlagSet {
    pub fn new(app: impl Into<String>) -> FlagSet {
        FlagSet {
            app: app.into(),
            flags: Vec::new(),
        }
    }

    /// Adds a flag.
    ///
    /// # Panics
    /// When a flag of that name already exists: that is a programming error.
    pub fn flag(mut self, flag: Flag) -> FlagSet {
        self.add(flag);
        self
    }

    /// Adds a flag; see [`FlagSet::flag`].
    pub fn add(&mut self, flag: Flag) {
        assert!(
            self.lookup(flag.name).is_none(),
            "flag redefined: {}",
            flag.name
        );
        self.flags.push(flag);
    }

    pub fn lookup(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    pub fn flags(&self) -> &[Flag] {
        &self.flags
    }

    pub fn app(&self) -> &str {
        &self.app
    }

    /// Go's usage text: `Usage of <app>:` then every flag, sorted by name.
    pub fn usage(&self) -> String {
        let mut out = format!("Usage of {}:\n", self.app);
        let mut sorted: Vec<&Flag> = self.flags.iter().collect();
        sorted.sort_by_key(|f| f.name);
        for flag in sorted {
            let mut line = format!("  -{}", flag.name);
            let (placeholder, usage) = flag.usage_parts();
            if !placeholder.is_empty() {
                line.push(' ');
                line.push_str(&placeholder);
            }
            // One-letter boolean flags keep their usage on the same line, as in Go.
            if line.len() <= 4 {
                line.push('\t');
            } else {
                line.push_str("\n    \t");
            }
            line.push_str(&usage.replace('\n', "\n    \t"));
            line.push_str(&flag.default_suffix());
            let _ = writeln!(out, "{line}");
        }
        out
    }

    /// Every flag at its default, as if nothing were given anywhere.
    pub fn defaults(&self) -> Values {
        let values = self
            .flags
            .iter()
            .map(|f| (f.name, f.default.clone()))
            .collect();
        Values::new(values, BTreeSet::new(), toml::Table::new())
    }

    /// Parses the arguments that follow the program name.
    pub fn parse<I, S>(&self, args: I) -> Result<Parsed, FlagError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let mut values = self.defaults().into_map();
        let mut set: BTreeSet<&'static str> = BTreeSet::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            if arg.len() < 2 || !arg.starts_with('-') {
                break;
            }
            let body = if let Some(rest) = arg.strip_prefix("--") {
                if rest.is_empty() {
                    i += 1;
                    break;
                }
                rest
            } else {
                &arg[1..]
            };
            if body.starts_with('-') || body.starts_with('=') {
                return Err(FlagError::BadSyntax(arg.clone()));
            }
            i += 1;
            // '=' cannot be the first character (checked above), so split at the first one.
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(flag) = self.lookup(name) else {
                if name == "help" || name == "h" {
                    return Ok(Parsed::Help(self.usage()));
                }
                return Err(FlagError::NotDefined(name.to_string()));
            };
            let text = if flag.is_boolean_like() {
                inline.map(str::to_string)
            } else {
                match inline {
                    Some(v) => Some(v.to_string()),
                    None if i < args.len() => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => return Err(FlagError::NeedsArgument(name.to_string())),
                }
            };
            let slot = values
                .get_mut(flag.name)
                .ok_or_else(|| FlagError::NotDefined(name.to_string()))?;
            apply_cli_value(flag, slot, text.as_deref())?;
            set.insert(flag.name);
        }
        Ok(Parsed::Args(CommandLine {
            values: Values::new(values, set, toml::Table::new()),
            positional: args[i..].to_vec(),
        }))
    }
}

/// Stores one command-line occurrence. `text` is `None` only for a bare boolean-like flag.
fn apply_cli_value(flag: &Flag, slot: &mut Value, text: Option<&str>) -> Result<(), FlagError> {
    let name = flag.name;
    let invalid = |value: &str, reason: String| FlagError::InvalidValue {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    match (flag.kind, slot) {
        (Kind::Bool, Value::Bool(b)) => {
            *b = match text {
                None => true,
                Some(t) => parse_go_bool(t).map_err(|e| FlagError::InvalidBool {
                    name: name.to_string(),
                    value: t.to_string(),
                    reason: e.to_string(),
                })?,
            };
        }
        (Kind::OptionalValue { bare }, Value::Str(s)) => {
            let t = text.unwrap_or(bare);
            if let Some(v) = normalized(flag, t).map_err(|reason| FlagError::InvalidBool {
                name: name.to_string(),
                value: t.to_string(),
                reason,
            })? {
                *s = v;
            }
        }
        (Kind::Str, Value::Str(s)) => {
            let t = text.unwrap_or_default();
            if let Some(v) = normalized(flag, t).map_err(|reason| invalid(t, reason))? {
                *s = v;
            }
        }
        (Kind::Int, Value::Int(n)) => {
            let t = text.unwrap_or_default();
            *n = parse_go_int(t).map_err(|e| invalid(t, e.to_string()))?;
        }
        (Kind::Float, Value::Float(f)) => {
            let t = text.unwrap_or_default();
            *f = parse_go_float(t).map_err(|e| invalid(t, e.to_string()))?;
        }
        (Kind::Duration, Value::Duration(d)) => {
            let t = text.unwrap_or_default();
            *d = parse_go_duration(t).map_err(|_| invalid(t, "parse error".to_string()))?;
        }
        (Kind::StrList, Value::StrList(list)) => list.push(text.unwrap_or_default().to_string()),
        (Kind::FloatList, Value::FloatList(list)) => {
            let t = text.unwrap_or_default();
            for part in t.split(',') {
                list.push(parse_go_float(part).map_err(|e| invalid(t, e.to_string()))?);
            }
        }
        // Constructors keep kind and default in step, so this is unreachable in practice; an
        // error is still better than a panic.
        _ => return Err(invalid(text.unwrap_or_default(), "parse error".to_string())),
    }
    Ok(())
}

/// Runs the flag's normalizer, or accepts the text unchanged when it has none.
pub(crate) fn normalized(flag: &Flag, text: &str) -> Result<Option<String>, String> {
    match flag.normalize() {
        Some(f) => f(text),
        None => Ok(Some(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(s: &str) -> Result<Option<String>, String> {
        match s.to_ascii_lowercase().as_str() {
            l @ ("debug" | "info" | "warn") => Ok(Some(l.to_string())),
            _ => Err(format!("invalid log level '{s}'")),
        }
    }

    fn required(s: &str) -> Result<Option<String>, String> {
        let l = s.to_ascii_lowercase();
        if l == "tcp-https" {
            return Ok(Some(l));
        }
        parse_go_bool(&l)
            .map(|b| Some(b.to_string()))
            .map_err(|e| e.to_string())
    }

    fn keep_on_empty(s: &str) -> Result<Option<String>, String> {
        Ok((!s.is_empty()).then(|| s.to_string()))
    }

    fn set() -> FlagSet {
        FlagSet::new("app")
            .flag(Flag::bool("b", false, "a bool"))
            .flag(Flag::bool("on", true, "defaults to true"))
            .flag(Flag::string("s", "dflt", "a string"))
            .flag(Flag::int("n", 7, "an int"))
            .flag(Flag::float("f", 0.5, "a float"))
            .flag(Flag::duration("d", Duration::from_secs(2), "a duration"))
            .flag(Flag::str_list("topic", "a list"))
            .flag(Flag::float_list("pct", "floats"))
            .flag(Flag::optional_value("req", "false", "true", "tri-state").normalizer(required))
            .flag(
                Flag::string("level", "info", "log level")
                    .normalizer(level)
                    .value_name("value"),
            )
            .flag(Flag::string("keep", "x", "keeps on empty").normalizer(keep_on_empty))
    }

    fn args(fs: &FlagSet, argv: &[&str]) -> CommandLine {
        match fs.parse(argv.iter().copied()) {
            Ok(Parsed::Args(cl)) => cl,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn err(fs: &FlagSet, argv: &[&str]) -> String {
        match fs.parse(argv.iter().copied()) {
            Err(e) => e.to_string(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_when_nothing_given() {
        assert_eq!(set().defaults().int("n"), 7);
        let cl = args(&set(), &[]);
        let v = cl.values();
        assert!(!v.bool("b"));
        assert!(v.bool("on"));
        assert_eq!(v.string("s"), "dflt");
        assert_eq!(v.int("n"), 7);
        assert_eq!(v.float("f"), 0.5);
        assert_eq!(v.duration("d"), Duration::from_secs(2));
        assert!(v.str_list("topic").is_empty());
        assert!(v.float_list("pct").is_empty());
        assert_eq!(v.string("req"), "false");
        assert!(!cl.is_set("s"));
        assert!(cl.positional().is_empty());
    }

    #[test]
    fn single_and_double_dash_with_both_value_forms() {
        let fs = set();
        for argv in [
            &["-s=x", "-n=3"][..],
            &["--s=x", "--n=3"],
            &["-s", "x", "-n", "3"],
            &["--s", "x", "--n", "3"],
        ] {
            let cl = args(&fs, argv);
            assert_eq!(cl.values().string("s"), "x", "{argv:?}");
            assert_eq!(cl.values().int("n"), 3, "{argv:?}");
            assert!(cl.is_set("s") && cl.is_set("n"));
        }
    }

    #[test]
    fn values_may_look_like_flags_or_contain_equals() {
        let cl = args(&set(), &["-s", "-n", "--topic", "a=b", "-s=="]);
        assert_eq!(cl.values().string("s"), "=");
        assert_eq!(cl.values().str_list("topic"), ["a=b"]);
        assert_eq!(cl.values().int("n"), 7);
        let cl = args(&set(), &["-s", "--"]);
        assert_eq!(cl.values().string("s"), "--");
        let cl = args(&set(), &["-s="]);
        assert_eq!(cl.values().string("s"), "");
        assert!(cl.is_set("s"));
    }

    #[test]
    fn bool_forms() {
        let fs = set();
        assert!(args(&fs, &["-b"]).values().bool("b"));
        assert!(args(&fs, &["--b"]).values().bool("b"));
        for t in ["true", "1", "t", "T", "TRUE", "True"] {
            assert!(args(&fs, &[&format!("-b={t}")]).values().bool("b"), "{t}");
        }
        for f in ["false", "0", "f", "F", "FALSE", "False"] {
            assert!(
                !args(&fs, &[&format!("--on={f}")]).values().bool("on"),
                "{f}"
            );
        }
    }

    #[test]
    fn bool_does_not_consume_next_argument() {
        let cl = args(&set(), &["-on", "false", "-n", "3"]);
        assert!(cl.values().bool("on"));
        assert_eq!(cl.values().int("n"), 7);
        assert_eq!(cl.positional(), ["false", "-n", "3"]);
    }

    #[test]
    fn optional_value_flag() {
        let fs = set();
        assert_eq!(args(&fs, &["--req"]).values().string("req"), "true");
        assert_eq!(
            args(&fs, &["--req=tcp-https"]).values().string("req"),
            "tcp-https"
        );
        assert_eq!(args(&fs, &["--req=FALSE"]).values().string("req"), "false");
        let cl = args(&fs, &["--req", "tcp-https"]);
        assert_eq!(cl.values().string("req"), "true");
        assert_eq!(cl.positional(), ["tcp-https"]);
        assert_eq!(
            err(&fs, &["--req=maybe"]),
            "invalid boolean value \"maybe\" for -req: parse error"
        );
    }

    #[test]
    fn normalizer_on_command_line() {
        let fs = set();
        assert_eq!(
            args(&fs, &["--level=WARN"]).values().string("level"),
            "warn"
        );
        assert_eq!(
            err(&fs, &["--level", "loud"]),
            "invalid value \"loud\" for flag -level: invalid log level 'loud'"
        );
        assert_eq!(args(&fs, &["--keep="]).values().string("keep"), "x");
        assert_eq!(
            args(&fs, &["--keep=y", "--keep="]).values().string("keep"),
            "y"
        );
    }

    #[test]
    fn lists_append_and_float_lists_split() {
        let cl = args(
            &set(),
            &[
                "--topic=a,b",
                "-topic",
                "c",
                "--pct=0.99,0.95",
                "--pct",
                "0.5",
            ],
        );
        assert_eq!(cl.values().str_list("topic"), ["a,b", "c"]);
        assert_eq!(cl.values().float_list("pct"), [0.99, 0.95, 0.5]);
    }

    #[test]
    fn repeated_scalars_last_wins() {
        let cl = args(
            &set(),
            &["-n=1", "-n", "2", "--s=a", "--s=b", "-b", "-b=false"],
        );
        assert_eq!(cl.values().int("n"), 2);
        assert_eq!(cl.values().string("s"), "b");
        assert!(!cl.values().bool("b"));
        assert!(cl.is_set("b"));
    }

    #[test]
    fn double_dash_and_positionals_stop_parsing() {
        let cl = args(&set(), &["-n=1", "--", "-n=2", "x"]);
        assert_eq!(cl.values().int("n"), 1);
        assert_eq!(cl.positional(), ["-n=2", "x"]);
        let cl = args(&set(), &["-n=1", "pos", "-n=2"]);
        assert_eq!(cl.values().int("n"), 1);
        assert_eq!(cl.positional(), ["pos", "-n=2"]);
        let cl = args(&set(), &["-", "-n=2"]);
        assert_eq!(cl.positional(), ["-", "-n=2"]);
        let cl = args(&set(), &["", "-n=2"]);
        assert_eq!(cl.values().int("n"), 7);
    }

    #[test]
    fn durations_and_numbers() {
        let cl = args(&set(), &["-d=1m30s", "-n=0x10", "-f=1e-3"]);
        assert_eq!(cl.values().duration("d"), Duration::from_secs(90));
        assert_eq!(cl.values().int("n"), 16);
        assert_eq!(cl.values().float("f"), 0.001);
        let cl = args(&set(), &["-d", "0"]);
        assert_eq!(cl.values().duration("d"), Duration::ZERO);
    }

    #[test]
    fn help_forms() {
        let fs = set();
        for h in ["-h", "-help", "--help", "--h", "-help=1"] {
            match fs.parse([h]) {
                Ok(Parsed::Help(text)) => assert!(text.starts_with("Usage of app:\n"), "{h}"),
                other => panic!("{h}: {other:?}"),
            }
        }
        // Help is only noticed when parsing reaches it.
        let cl = args(&fs, &["pos", "-h"]);
        assert_eq!(cl.positional(), ["pos", "-h"]);
    }

    #[test]
    fn error_messages() {
        let fs = set();
        assert_eq!(err(&fs, &["-foo"]), "flag provided but not defined: -foo");
        assert_eq!(
            err(&fs, &["--foo=1"]),
            "flag provided but not defined: -foo"
        );
        assert_eq!(
            err(&fs, &["-n=abc"]),
            "invalid value \"abc\" for flag -n: parse error"
        );
        assert_eq!(
            err(&fs, &["-n", "99999999999999999999"]),
            "invalid value \"99999999999999999999\" for flag -n: value out of range"
        );
        assert_eq!(
            err(&fs, &["-d=5"]),
            "invalid value \"5\" for flag -d: parse error"
        );
        assert_eq!(
            err(&fs, &["-d=-1s"]),
            "invalid value \"-1s\" for flag -d: parse error"
        );
        assert_eq!(
            err(&fs, &["-f=x"]),
            "invalid value \"x\" for flag -f: parse error"
        );
        assert_eq!(
            err(&fs, &["-pct=0.9,x"]),
            "invalid value \"0.9,x\" for flag -pct: parse error"
        );
        assert_eq!(err(&fs, &["-topic"]), "flag needs an argument: -topic");
        assert_eq!(err(&fs, &["-n", "1", "--s"]), "flag needs an argument: -s");
        assert_eq!(
            err(&fs, &["-b=yes"]),
            "invalid boolean value \"yes\" for -b: parse error"
        );
        assert_eq!(
            err(&fs, &["-b="]),
            "invalid boolean value \"\" for -b: parse error"
        );
        assert_eq!(err(&fs, &["---b"]), "bad flag syntax: ---b");
        assert_eq!(err(&fs, &["-=x"]), "bad flag syntax: -=x");
        assert_eq!(err(&fs, &["--=x"]), "bad flag syntax: --=x");
        for e in [err(&fs, &["-n=\n"]), err(&fs, &["-é=1"])] {
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn usage_text_is_go_shaped() {
        let fs = FlagSet::new("app")
            .flag(Flag::string("name", "x", "a name"))
            .flag(Flag::bool("b", false, "short bool"))
            .flag(Flag::bool("verbose", true, "long bool"))
            .flag(Flag::int("count", 0, "how many"))
            .flag(Flag::duration(
                "wait",
                Duration::from_millis(250),
                "how long",
            ))
            .flag(Flag::str_list("addr", "an `address` to use"))
            .flag(Flag::float_list("pct", "percentiles"))
            .flag(Flag::optional_value("req", "false", "true", "tri"))
            .flag(Flag::string("lvl", "info", "level").value_name("value"));
        let expected = "Usage of app:\n\
            \x20 -addr address\n    \tan address to use\n\
            \x20 -b\tshort bool\n\
            \x20 -count int\n    \thow many\n\
            \x20 -lvl value\n    \tlevel (default info)\n\
            \x20 -name string\n    \ta name (default \"x\")\n\
            \x20 -pct value\n    \tpercentiles\n\
            \x20 -req\n    \ttri\n\
            \x20 -verbose\n    \tlong bool (default true)\n\
            \x20 -wait duration\n    \thow long (default 250ms)\n";
        assert_eq!(fs.usage(), expected);
    }

    #[test]
    #[should_panic(expected = "flag redefined: b")]
    fn duplicate_definition_is_a_programming_error() {
        let _ = FlagSet::new("app")
            .flag(Flag::bool("b", false, ""))
            .flag(Flag::int("b", 0, ""));
    }
}
