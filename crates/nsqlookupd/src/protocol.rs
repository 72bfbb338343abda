//! nsqlookupd's TCP protocol V1 as pure functions: command lines, the IDENTIFY body, response
//! framing and the exact text of every wire error. No I/O happens here; `tcp.rs` feeds bytes in
//! and writes what comes out.
use std::fmt;

use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};
use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde::Serialize;

/// The four bytes a V1 client sends first.
pub const MAGIC_V1: &[u8; 4] = b"  V1";

/// Largest IDENTIFY body accepted. NSQ has no bound at all; nsqd's real bodies are ~200 bytes.
pub const MAX_IDENTIFY_BODY: usize = 1024 * 1024;

/// Longest command line accepted (newline included). Valid lines are under 200 bytes (two names
/// of at most 64 bytes); the bound only keeps a peer that never sends `\n` from growing memory.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// The two commands that take `<topic> [<channel>]`; their names appear in error texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Register,
    Unregister,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Register => "REGISTER",
            Verb::Unregister => "UNREGISTER",
        }
    }
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ping,
    /// The caller must now read the body: a 4-byte size (see [`identify_body_size`]) and the JSON.
    Identify,
    Register {
        topic: String,
        channel: Option<String>,
    },
    Unregister {
        topic: String,
        channel: Option<String>,
    },
}

/// Every error nsqlookupd sends. All of them are fatal: the server writes the error as an
/// ordinary response and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V1Error {
    #[error("E_BAD_PROTOCOL")]
    BadProtocol,
    #[error("E_INVALID invalid command {}", Lossy(.0))]
    InvalidCommand(Vec<u8>),
    #[error("E_INVALID cannot IDENTIFY again")]
    IdentifyAgain,
    #[error("E_INVALID client must IDENTIFY")]
    MustIdentify,
    #[error("E_INVALID {} insufficient number of params", .0.as_str())]
    InsufficientParams(Verb),
    #[error("E_BAD_TOPIC {} topic name '{}' is not valid", .0.as_str(), Lossy(.1))]
    BadTopic(Verb, Vec<u8>),
    #[error("E_BAD_CHANNEL {} channel name '{}' is not valid", .0.as_str(), Lossy(.1))]
    BadChannel(Verb, Vec<u8>),
    #[error("E_BAD_BODY IDENTIFY failed to read body size")]
    BodySize,
    #[error("E_BAD_BODY IDENTIFY failed to read body")]
    BodyRead,
    #[error("E_BAD_BODY IDENTIFY failed to decode JSON body")]
    BadJson,
    #[error("E_BAD_BODY IDENTIFY missing fields")]
    MissingFields,
}

/// Displays bytes that may not be UTF-8 (log lines only; the wire gets [`V1Error::data`]).
struct Lossy<'a>(&'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.0))
    }
}

impl V1Error {
    /// The error code, the first word of the response.
    pub fn code(&self) -> &'static str {
        match self {
            V1Error::BadProtocol => "E_BAD_PROTOCOL",
            V1Error::InvalidCommand(_)
            | V1Error::IdentifyAgain
            | V1Error::MustIdentify
            | V1Error::InsufficientParams(_) => "E_INVALID",
            V1Error::BadTopic(..) => "E_BAD_TOPIC",
            V1Error::BadChannel(..) => "E_BAD_CHANNEL",
            V1Error::BodySize | V1Error::BodyRead | V1Error::BadJson | V1Error::MissingFields => {
                "E_BAD_BODY"
            }
        }
    }

    /// The exact response data. Client-supplied bytes are echoed unchanged, as NSQ does, even
    /// when they are not UTF-8.
    pub fn data(&self) -> Vec<u8> {
        let echo = |prefix: String, raw: &[u8], suffix: &str| {
            let mut v = prefix.into_bytes();
            v.extend_from_slice(raw);
            v.extend_from_slice(suffix.as_bytes());
            v
        };
        match self {
            V1Error::InvalidCommand(name) => echo("E_INVALID invalid command ".into(), name, ""),
            V1Error::BadTopic(verb, name) => echo(
                format!("E_BAD_TOPIC {} topic name '", verb.as_str()),
                name,
                "' is not valid",
            ),
            V1Error::BadChannel(verb, name) => echo(
                format!("E_BAD_CHANNEL {} channel name '", verb.as_str()),
                name,
                "' is not valid",
            ),
            other => other.to_string().into_bytes(),
        }
    }
}

/// Frames one response (success or error): `[int32 BE size][data]`, without the frame type nsqd's
/// V2 protocol has.
pub fn encode_response(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + data.len());
    // Responses are small (the largest is the IDENTIFY reply), so the length always fits.
    let size = i32::try_from(data.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Decodes one UTF-8 character starting at `at`, if there is a valid one.
fn char_at(b: &[u8], at: usize) -> Option<(char, usize)> {
    (1..=4).find_map(|n| {
        let s = std::str::from_utf8(b.get(at..at + n)?).ok()?;
        s.chars().next().map(|c| (c, n))
    })
}

/// Decodes the UTF-8 character that ends at `end`, if there is a valid one.
fn char_before(b: &[u8], end: usize) -> Option<(char, usize)> {
    (1..=4.min(end)).find_map(|n| {
        let s = std::str::from_utf8(&b[end - n..end]).ok()?;
        let mut chars = s.chars();
        let c = chars.next()?;
        chars.next().is_none().then_some((c, n))
    })
}

/// Trims leading and trailing Unicode white space the way Go's `strings.TrimSpace` does: bytes
/// that are not valid UTF-8 are never space, so trimming stops at them.
pub fn trim_space(line: &[u8]) -> &[u8] {
    let mut start = 0;
    while let Some((c, n)) = char_at(line, start) {
        if !c.is_whitespace() {
            break;
        }
        start += n;
    }
    let mut end = line.len();
    while end > start {
        match char_before(line, end) {
            Some((c, n)) if c.is_whitespace() => end -= n,
            _ => break,
        }
    }
    &line[start..end]
}

/// Parses one command line (with or without its `\n`). `identified` says whether this connection
/// has completed IDENTIFY: the state checks come before any parameter is looked at, as in NSQ.
///
/// The line is trimmed and split on single spaces, so `REGISTER t  c` has an empty second
/// parameter (treated as "no channel") and `REGISTER\tt` is an unknown command.
pub fn parse_line(line: &[u8], identified: bool) -> Result<Command, V1Error> {
    let line = trim_space(line);
    let mut params = line.split(|&b| b == b' ');
    let name = params.next().unwrap_or_default();
    let verb = match name {
        b"PING" => return Ok(Command::Ping),
        b"IDENTIFY" if identified => return Err(V1Error::IdentifyAgain),
        b"IDENTIFY" => return Ok(Command::Identify),
        b"REGISTER" => Verb::Register,
        b"UNREGISTER" => Verb::Unregister,
        other => return Err(V1Error::InvalidCommand(other.to_vec())),
    };
    if !identified {
        return Err(V1Error::MustIdentify);
    }
    let topic = params.next().ok_or(V1Error::InsufficientParams(verb))?;
    let channel = params.next().unwrap_or_default();
    if !is_valid_topic_name(topic) {
        return Err(V1Error::BadTopic(verb, topic.to_vec()));
    }
    if !channel.is_empty() && !is_valid_channel_name(channel) {
        return Err(V1Error::BadChannel(verb, channel.to_vec()));
    }
    // Valid names are ASCII, so these conversions never lose anything.
    let topic = String::from_utf8_lossy(topic).into_owned();
    let channel = (!channel.is_empty()).then(|| String::from_utf8_lossy(channel).into_owned());
    Ok(match verb {
        Verb::Register => Command::Register { topic, channel },
        Verb::Unregister => Command::Unregister { topic, channel },
    })
}

/// Checks the IDENTIFY body size that follows the command line. NSQ crashes on a negative size
/// and accepts any positive one; here anything outside 1..=[`MAX_IDENTIFY_BODY`] is refused.
pub fn identify_body_size(raw: [u8; 4]) -> Result<usize, V1Error> {
    let size = i32::from_be_bytes(raw);
    match usize::try_from(size) {
        Ok(n) if n > 0 && n <= MAX_IDENTIFY_BODY => Ok(n),
        _ => Err(V1Error::BodySize),
    }
}

/// What an nsqd says about itself in IDENTIFY.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentifyRequest {
    pub broadcast_address: String,
    pub hostname: String,
    pub tcp_port: i64,
    pub http_port: i64,
    pub version: String,
    pub topology_zone: String,
    pub topology_region: String,
}

/// Decodes and validates an IDENTIFY body.
///
/// Decoding follows Go's `encoding/json` into NSQ's struct: keys match field names
/// case-insensitively, unknown keys are ignored, `null` leaves a field unset, a value of the
/// wrong type (a fraction or out-of-range number for a port, a non-string for a string field,
/// including `remote_address`) fails the whole body, and a top-level `null` is an empty object.
pub fn decode_identify(body: &[u8]) -> Result<IdentifyRequest, V1Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let req = de
        .deserialize_any(IdentifyVisitor)
        .map_err(|_| V1Error::BadJson)?;
    de.end().map_err(|_| V1Error::BadJson)?;
    if req.broadcast_address.is_empty()
        || req.tcp_port == 0
        || req.http_port == 0
        || req.version.is_empty()
    {
        return Err(V1Error::MissingFields);
    }
    Ok(req)
}

enum Field {
    Str(fn(&mut IdentifyRequest) -> &mut String),
    /// `remote_address` is a field of NSQ's struct (so its type is checked) but the server
    /// overwrites it with the connection's address.
    Ignored,
    Int(fn(&mut IdentifyRequest) -> &mut i64),
}

const FIELDS: [(&str, Field); 8] = [
    ("remote_address", Field::Ignored),
    ("hostname", Field::Str(|r| &mut r.hostname)),
    (
        "broadcast_address",
        Field::Str(|r| &mut r.broadcast_address),
    ),
    ("tcp_port", Field::Int(|r| &mut r.tcp_port)),
    ("http_port", Field::Int(|r| &mut r.http_port)),
    ("version", Field::Str(|r| &mut r.version)),
    ("topology_zone", Field::Str(|r| &mut r.topology_zone)),
    ("topology_region", Field::Str(|r| &mut r.topology_region)),
];

/// Go's case-insensitive key match (Unicode simple folding). The field names are lowercase
/// ASCII, and the only non-ASCII characters that fold onto their letters are `ſ` (s) and the
/// Kelvin sign (k).
fn key_matches(key: &str, field: &str) -> bool {
    let mut chars = key.chars();
    for f in field.chars() {
        match chars.next() {
            Some(c)
                if c.to_ascii_lowercase() == f
                    || (f == 's' && c == '\u{17F}')
                    || (f == 'k' && c == '\u{212A}') => {}
            _ => return false,
        }
    }
    chars.next().is_none()
}

struct IdentifyVisitor;

impl<'de> Visitor<'de> for IdentifyVisitor {
    type Value = IdentifyRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<IdentifyRequest, E> {
        Ok(IdentifyRequest::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdentifyRequest, A::Error> {
        let mut req = IdentifyRequest::default();
        // Entries are applied in document order, so a repeated key keeps its last value.
        while let Some(key) = map.next_key::<String>()? {
            let field = FIELDS
                .iter()
                .find(|(name, _)| key_matches(&key, name))
                .map(|(_, field)| field);
            let Some(field) = field else {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            };
            let value: serde_json::Value = map.next_value()?;
            match (field, value) {
                (_, serde_json::Value::Null) => {}
                (Field::Str(slot), serde_json::Value::String(s)) => *slot(&mut req) = s,
                (Field::Ignored, serde_json::Value::String(_)) => {}
                (Field::Int(slot), serde_json::Value::Number(n)) => {
                    *slot(&mut req) = n
                        .as_i64()
                        .ok_or_else(|| de::Error::custom(format!("{key}: not an int")))?;
                }
                _ => return Err(de::Error::custom(format!("{key}: wrong type"))),
            }
        }
        Ok(req)
    }
}

/// The IDENTIFY reply. Fields are declared alphabetically because NSQ marshals a map.
#[derive(Debug, Clone, Serialize)]
pub struct IdentifyResponse<'a> {
    pub broadcast_address: &'a str,
    pub hostname: &'a str,
    pub http_port: u16,
    pub tcp_port: u16,
    pub version: &'a str,
}

impl IdentifyResponse<'_> {
    /// The response data (JSON with Go's escaping).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding strings and integers cannot fail; NSQ answers `OK` if it ever did.
        nsq_http::json::to_vec(self).unwrap_or_else(|_| b"OK".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str, identified: bool) -> Command {
        parse_line(line.as_bytes(), identified).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn err(line: &[u8], identified: bool) -> Vec<u8> {
        match parse_line(line, identified) {
            Err(e) => e.data(),
            Ok(c) => panic!("{line:?}: expected an error, got {c:?}"),
        }
    }

    fn reg(topic: &str, channel: Option<&str>) -> Command {
        Command::Register {
            topic: topic.into(),
            channel: channel.map(Into::into),
        }
    }

    fn unreg(topic: &str, channel: Option<&str>) -> Command {
        Command::Unregister {
            topic: topic.into(),
            channel: channel.map(Into::into),
        }
    }

    #[test]
    fn ping_in_any_state_and_with_extra_params() {
        assert_eq!(ok("PING\n", false), Command::Ping);
        assert_eq!(ok("PING\n", true), Command::Ping);
        assert_eq!(ok("PING", true), Command::Ping);
        assert_eq!(ok("  PING \r\n", false), Command::Ping);
        assert_eq!(ok("PING extra words\n", false), Command::Ping);
    }

    #[test]
    fn identify_once() {
        assert_eq!(ok("IDENTIFY\n", false), Command::Identify);
        assert_eq!(ok("IDENTIFY ignored\n", false), Command::Identify);
        assert_eq!(err(b"IDENTIFY\n", true), b"E_INVALID cannot IDENTIFY again");
    }

    #[test]
    fn register_and_unregister_forms() {
        assert_eq!(ok("REGISTER t\n", true), reg("t", None));
        assert_eq!(ok("REGISTER t c\n", true), reg("t", Some("c")));
        assert_eq!(ok("REGISTER t c extra\n", true), reg("t", Some("c")));
        assert_eq!(ok("UNREGISTER t\n", true), unreg("t", None));
        assert_eq!(
            ok("UNREGISTER t c#ephemeral\n", true),
            unreg("t", Some("c#ephemeral"))
        );
        assert_eq!(ok("\tREGISTER t c \r\n", true), reg("t", Some("c")));
        // An empty second parameter means "no channel".
        assert_eq!(ok("REGISTER t  c\n", true), reg("t", None));
    }

    #[test]
    fn register_errors_in_nsq_order() {
        for verb in ["REGISTER", "UNREGISTER"] {
            let line = |rest: &str| format!("{verb}{rest}\n").into_bytes();
            // State is checked before parameters.
            assert_eq!(
                err(&line(" bad!topic"), false),
                b"E_INVALID client must IDENTIFY"
            );
            assert_eq!(err(&line(""), false), b"E_INVALID client must IDENTIFY");
            assert_eq!(
                err(&line(""), true),
                format!("E_INVALID {verb} insufficient number of params").into_bytes()
            );
            assert_eq!(
                err(&line(" "), true),
                format!("E_INVALID {verb} insufficient number of params").into_bytes()
            );
            assert_eq!(
                err(&line(" bad!topic c"), true),
                format!("E_BAD_TOPIC {verb} topic name 'bad!topic' is not valid").into_bytes()
            );
            // A double space makes the topic the empty string.
            assert_eq!(
                err(&line("  t"), true),
                format!("E_BAD_TOPIC {verb} topic name '' is not valid").into_bytes()
            );
            assert_eq!(
                err(&line(" t bad!chan"), true),
                format!("E_BAD_CHANNEL {verb} channel name 'bad!chan' is not valid").into_bytes()
            );
            let long = "c".repeat(65);
            assert_eq!(
                err(&line(&format!(" t {long}")), true),
                format!("E_BAD_CHANNEL {verb} channel name '{long}' is not valid").into_bytes()
            );
        }
    }

    #[test]
    fn unknown_commands_echo_the_name() {
        assert_eq!(err(b"NOPE\n", true), b"E_INVALID invalid command NOPE");
        assert_eq!(err(b"ping\n", true), b"E_INVALID invalid command ping");
        assert_eq!(err(b"\n", false), b"E_INVALID invalid command ");
        assert_eq!(err(b"   \r\n", false), b"E_INVALID invalid command ");
        assert_eq!(
            err(b"REGISTER\tt\n", true),
            b"E_INVALID invalid command REGISTER\tt"
        );
        assert_eq!(
            err(b"\xff\xfeX a\n", true),
            b"E_INVALID invalid command \xff\xfeX"
        );
    }

    #[test]
    fn non_utf8_names_are_echoed_raw() {
        assert_eq!(
            err(b"REGISTER t\xff\n", true),
            b"E_BAD_TOPIC REGISTER topic name 't\xff' is not valid"
        );
        assert_eq!(
            err(b"UNREGISTER t \xc3\xa9\n", true),
            b"E_BAD_CHANNEL UNREGISTER channel name '\xc3\xa9' is not valid"
        );
    }

    #[test]
    fn trim_space_matches_go() {
        assert_eq!(trim_space(b" \t\r\n\x0b\x0cA B\n"), b"A B");
        // U+0085 (NEL), U+00A0 and U+3000 are spaces in Go too.
        assert_eq!(trim_space("\u{85}\u{a0}PING\u{3000}".as_bytes()), b"PING");
        // Invalid UTF-8 stops trimming.
        assert_eq!(trim_space(b"\xff PING \xff"), b"\xff PING \xff");
        assert_eq!(trim_space(b" \xc3"), b"\xc3");
        assert_eq!(trim_space(b""), b"");
        assert_eq!(trim_space(b"   "), b"");
    }

    #[test]
    fn every_error_text_and_code() {
        use V1Error::*;
        let rows: Vec<(V1Error, &str, &[u8])> = vec![
            (BadProtocol, "E_BAD_PROTOCOL", b"E_BAD_PROTOCOL"),
            (
                InvalidCommand(b"X".to_vec()),
                "E_INVALID",
                b"E_INVALID invalid command X",
            ),
            (
                IdentifyAgain,
                "E_INVALID",
                b"E_INVALID cannot IDENTIFY again",
            ),
            (MustIdentify, "E_INVALID", b"E_INVALID client must IDENTIFY"),
            (
                InsufficientParams(Verb::Register),
                "E_INVALID",
                b"E_INVALID REGISTER insufficient number of params",
            ),
            (
                InsufficientParams(Verb::Unregister),
                "E_INVALID",
                b"E_INVALID UNREGISTER insufficient number of params",
            ),
            (
                BadTopic(Verb::Register, b"a b".to_vec()),
                "E_BAD_TOPIC",
                b"E_BAD_TOPIC REGISTER topic name 'a b' is not valid",
            ),
            (
                BadChannel(Verb::Unregister, b"x!".to_vec()),
                "E_BAD_CHANNEL",
                b"E_BAD_CHANNEL UNREGISTER channel name 'x!' is not valid",
            ),
            (
                BodySize,
                "E_BAD_BODY",
                b"E_BAD_BODY IDENTIFY failed to read body size",
            ),
            (
                BodyRead,
                "E_BAD_BODY",
                b"E_BAD_BODY IDENTIFY failed to read body",
            ),
            (
                BadJson,
                "E_BAD_BODY",
                b"E_BAD_BODY IDENTIFY failed to decode JSON body",
            ),
            (
                MissingFields,
                "E_BAD_BODY",
                b"E_BAD_BODY IDENTIFY missing fields",
            ),
        ];
        for (e, code, data) in rows {
            assert_eq!(e.code(), code);
            assert_eq!(e.data(), data);
            assert_eq!(e.to_string().as_bytes(), data);
            assert!(e.data().starts_with(code.as_bytes()));
        }
    }

    #[test]
    fn response_framing_has_no_frame_type() {
        assert_eq!(encode_response(b"OK"), b"\x00\x00\x00\x02OK");
        assert_eq!(encode_response(b""), b"\x00\x00\x00\x00");
        assert_eq!(
            encode_response(&V1Error::BadProtocol.data()),
            b"\x00\x00\x00\x0eE_BAD_PROTOCOL"
        );
    }

    #[test]
    fn body_size_bounds() {
        let size = |n: i32| identify_body_size(n.to_be_bytes());
        assert_eq!(size(1), Ok(1));
        assert_eq!(size(200), Ok(200));
        assert_eq!(size(1024 * 1024), Ok(MAX_IDENTIFY_BODY));
        assert_eq!(size(1024 * 1024 + 1), Err(V1Error::BodySize));
        assert_eq!(size(0), Err(V1Error::BodySize));
        assert_eq!(size(-1), Err(V1Error::BodySize));
        assert_eq!(size(i32::MIN), Err(V1Error::BodySize));
        assert_eq!(size(i32::MAX), Err(V1Error::BodySize));
    }

    const NSQD_BODY: &str = r#"{"broadcast_address":"nsqd-1","hostname":"h","http_port":4151,"tcp_port":4150,"topology_region":"r","topology_zone":"z","version":"1.3.0"}"#;

    #[test]
    fn identify_as_nsqd_sends_it() {
        assert_eq!(
            decode_identify(NSQD_BODY.as_bytes()),
            Ok(IdentifyRequest {
                broadcast_address: "nsqd-1".into(),
                hostname: "h".into(),
                tcp_port: 4150,
                http_port: 4151,
                version: "1.3.0".into(),
                topology_zone: "z".into(),
                topology_region: "r".into(),
            })
        );
        // Minimal body, unknown keys of any type ignored, surrounding white space allowed.
        let r = decode_identify(
            br#" {"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v","x":[1,{"y":null}],"remote_address":"spoofed"} "#,
        );
        let r = r.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.hostname.as_str(), r.tcp_port, r.http_port), ("", 1, 2));
    }

    #[test]
    fn identify_keys_fold_case_like_go() {
        let r = decode_identify(
            "{\"BROADCAST_ADDRESS\":\"a\",\"Tcp_Port\":1,\"http_port\":2,\"ver\u{17F}ion\":\"v\"}"
                .as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (r.broadcast_address.as_str(), r.version.as_str()),
            ("a", "v")
        );
        assert!(key_matches("tcp_port", "tcp_port"));
        assert!(!key_matches("tcp_port_", "tcp_port"));
        assert!(!key_matches("tcp_por", "tcp_port"));
    }

    #[test]
    fn identify_null_and_repeated_keys() {
        let r = decode_identify(
            br#"{"broadcast_address":"a","tcp_port":1,"tcp_port":7,"tcp_port":null,"http_port":2,"version":"v","hostname":null}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.tcp_port, r.hostname.as_str()), (7, ""));
        assert_eq!(decode_identify(b"null"), Err(V1Error::MissingFields));
        assert_eq!(decode_identify(b"{}"), Err(V1Error::MissingFields));
    }

    #[test]
    fn identify_decode_failures() {
        for body in [
            &b"not json"[..],
            b"",
            b"{",
            b"[]",
            b"\"str\"",
            b"42",
            br#"{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v"} x"#,
            br#"{"broadcast_address":1,"tcp_port":1,"http_port":2,"version":"v"}"#,
            br#"{"broadcast_address":"a","tcp_port":"1","http_port":2,"version":"v"}"#,
            br#"{"broadcast_address":"a","tcp_port":1.5,"http_port":2,"version":"v"}"#,
            br#"{"broadcast_address":"a","tcp_port":1.0,"http_port":2,"version":"v"}"#,
            br#"{"broadcast_address":"a","tcp_port":1e3,"http_port":2,"version":"v"}"#,
            br#"{"broadcast_address":"a","tcp_port":9223372036854775808,"http_port":2,"version":"v"}"#,
            br#"{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":true}"#,
            br#"{"remote_address":5,"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v"}"#,
        ] {
            assert_eq!(
                decode_identify(body),
                Err(V1Error::BadJson),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn identify_missing_fields() {
        for body in [
            r#"{"tcp_port":1,"http_port":2,"version":"v"}"#,
            r#"{"broadcast_address":"","tcp_port":1,"http_port":2,"version":"v"}"#,
            r#"{"broadcast_address":"a","tcp_port":0,"http_port":2,"version":"v"}"#,
            r#"{"broadcast_address":"a","tcp_port":1,"version":"v"}"#,
            r#"{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":""}"#,
            r#"{"broadcast_address":"a","tcp_port":1,"http_port":2}"#,
        ] {
            assert_eq!(
                decode_identify(body.as_bytes()),
                Err(V1Error::MissingFields),
                "{body}"
            );
        }
        // Negative ports are not zero, so NSQ accepts them.
        assert!(decode_identify(
            br#"{"broadcast_address":"a","tcp_port":-1,"http_port":2,"version":"v"}"#
        )
        .is_ok());
    }

    #[test]
    fn identify_response_keys_are_alphabetical() {
        let r = IdentifyResponse {
            broadcast_address: "lookupd<1>",
            hostname: "host",
            http_port: 4161,
            tcp_port: 4160,
            version: "1.3.0",
        };
        assert_eq!(
            String::from_utf8_lossy(&r.to_bytes()),
            r#"{"broadcast_address":"lookupd\u003c1\u003e","hostname":"host","http_port":4161,"tcp_port":4160,"version":"1.3.0"}"#
        );
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics(line in proptest::collection::vec(any::<u8>(), 0..200), identified: bool) {
                let _ = parse_line(&line, identified);
            }

            #[test]
            fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = decode_identify(&body);
            }

            #[test]
            fn valid_registrations_round_trip(
                topic in "[a-zA-Z0-9._-]{1,54}(#ephemeral)?",
                channel in proptest::option::of("[a-zA-Z0-9._-]{1,54}(#ephemeral)?"),
            ) {
                let line = match &channel {
                    Some(c) => format!("REGISTER {topic} {c}\n"),
                    None => format!("REGISTER {topic}\n"),
                };
                prop_assert_eq!(
                    parse_line(line.as_bytes(), true),
                    Ok(Command::Register { topic: topic.clone(), channel: channel.clone() })
                );
            }

            #[test]
            fn trim_matches_str_trim(s in "[ \\t\\r\\n\\x0Ba-z\\x{85}\\x{a0}\\x{3000}é]{0,20}") {
                let t = trim_space(s.as_bytes());
                let ts = std::str::from_utf8(t).unwrap_or_default();
                prop_assert_eq!(ts, s.trim());
            }
        }
    }
}
