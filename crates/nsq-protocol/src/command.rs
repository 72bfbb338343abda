//! Parsing one client command (line plus optional length-prefixed body) from a read buffer,
//! applying NSQ's checks in NSQ's order so every error text and its precedence match.
//!
//! The parser works on a borrowed byte slice and reports how many bytes the command used, with
//! every variable-length field as a range into those bytes; the caller then cuts the bytes out
//! once (`split_to(..).freeze()`) and slices bodies from them without copying.
use std::ops::Range;

use crate::error::{CommandError, ErrorCode, WireError};
use crate::message::MessageId;
use crate::names::{is_valid_channel_name, is_valid_topic_name};
use crate::quote::go_quote;

/// NSQ reads command lines through a 16 KiB buffer; a longer line is an I/O error.
pub const MAX_LINE_LEN: usize = 16384;

/// Client connection states, numbered as `/stats` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Init = 0,
    Subscribed = 3,
    Closing = 4,
}

/// Server limits the parser enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_msg_size: i64,
    pub max_body_size: i64,
    pub max_rdy_count: i64,
    pub max_req_timeout_ms: i64,
}

/// The connection facts that decide whether a command is allowed.
#[derive(Debug, Clone, Copy)]
pub struct ParseCtx {
    pub state: ConnState,
    /// TLS is required and this connection has not upgraded: everything but IDENTIFY is refused.
    pub tls_gate: bool,
    pub heartbeats_disabled: bool,
    /// IDENTIFY already accepted (a second one is refused).
    pub identified: bool,
    /// The peer closed its side: a command still missing bytes fails with NSQ's "failed to
    /// read" errors instead of waiting.
    pub eof: bool,
}

/// A parsed command. `B` is `Range<usize>` straight out of the parser and becomes `Bytes` (or
/// anything else) through [`Command::map`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<B> {
    Identify {
        body: B,
    },
    Auth {
        body: B,
    },
    Sub {
        topic: B,
        channel: B,
    },
    Rdy {
        count: i64,
    },
    /// RDY while closing: ignored without a reply.
    RdyIgnored,
    Fin {
        id: MessageId,
    },
    /// `delay_ms` is already clamped to `0..=max-req-timeout`; `requested_ms` is what was asked.
    Req {
        id: MessageId,
        delay_ms: i64,
        requested_ms: u64,
    },
    Touch {
        id: MessageId,
    },
    Cls,
    Nop,
    Pub {
        topic: B,
        body: B,
    },
    Mpub {
        topic: B,
        bodies: Vec<B>,
    },
    Dpub {
        topic: B,
        defer_ms: i64,
        body: B,
    },
}

impl<B> Command<B> {
    pub fn map<C>(self, mut f: impl FnMut(B) -> C) -> Command<C> {
        match self {
            Command::Identify { body } => Command::Identify { body: f(body) },
            Command::Auth { body } => Command::Auth { body: f(body) },
            Command::Sub { topic, channel } => Command::Sub {
                topic: f(topic),
                channel: f(channel),
            },
            Command::Rdy { count } => Command::Rdy { count },
            Command::RdyIgnored => Command::RdyIgnored,
            Command::Fin { id } => Command::Fin { id },
            Command::Req {
                id,
                delay_ms,
                requested_ms,
            } => Command::Req {
                id,
                delay_ms,
                requested_ms,
            },
            Command::Touch { id } => Command::Touch { id },
            Command::Cls => Command::Cls,
            Command::Nop => Command::Nop,
            Command::Pub { topic, body } => Command::Pub {
                topic: f(topic),
                body: f(body),
            },
            Command::Mpub { topic, bodies } => Command::Mpub {
                topic: f(topic),
                bodies: bodies.into_iter().map(f).collect(),
            },
            Command::Dpub {
                topic,
                defer_ms,
                body,
            } => Command::Dpub {
                topic: f(topic),
                defer_ms,
                body: f(body),
            },
        }
    }
}

/// Outcome of one parse attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed; nothing was consumed.
    Incomplete,
    /// A command that used the first `consumed` bytes of the buffer.
    Complete {
        cmd: Command<Range<usize>>,
        consumed: usize,
    },
}

/// NSQ's unsigned decimal parser: ASCII digits only, empty is 0, overflow wraps.
pub fn parse_base10(b: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    for &d in b {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.wrapping_mul(10).wrapping_add((d - b'0') as u64);
    }
    Some(n)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn invalid(desc: impl Into<String>) -> CommandError {
    CommandError::Wire(WireError::invalid(desc))
}

fn err(code: ErrorCode, desc: impl Into<String>) -> CommandError {
    CommandError::Wire(WireError::new(code, desc))
}

/// Splits the command line (without its `\n` and optional `\r`) into parameters on every single
/// space, keeping the ranges relative to the buffer start.
/// A command line's space-separated fields as ranges: the first few kept on the stack (no
/// command reads past its third), plus the total count, which some checks compare exactly.
/// Parsing thousands of FINs a second must not allocate per line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Params {
    kept: [Range<usize>; Params::KEPT],
    len: usize,
}

impl Params {
    const KEPT: usize = 4;

    fn len(&self) -> usize {
        self.len
    }

    /// Field `i`; past the kept ones (no command asks for those) it is empty.
    fn at(&self, i: usize) -> Range<usize> {
        self.kept.get(i).cloned().unwrap_or(0..0)
    }
}

/// The bytes of a field range. Ranges come from [`split_params`] or length checks over the same
/// buffer, so they are always in it; an empty slice stands in rather than a panic.
fn field<'a>(buf: &'a [u8], r: &Range<usize>) -> &'a [u8] {
    buf.get(r.clone()).unwrap_or_default()
}

fn split_params(line: &[u8]) -> Params {
    let mut p = Params {
        kept: [0..0, 0..0, 0..0, 0..0],
        len: 0,
    };
    let mut start = 0;
    for i in memchr::memchr_iter(b' ', line) {
        if let Some(slot) = p.kept.get_mut(p.len) {
            *slot = start..i;
        }
        p.len += 1;
        start = i + 1;
    }
    if let Some(slot) = p.kept.get_mut(p.len) {
        *slot = start..line.len();
    }
    p.len += 1;
    p
}

/// Reads a 4-byte big-endian length at `at`, as NSQ does: unsigned on the wire, then treated
/// as a signed 32-bit value.
fn read_len(buf: &[u8], at: usize) -> Option<i32> {
    let b = buf.get(at..)?.first_chunk::<4>()?;
    Some(i32::from_be_bytes(*b))
}

fn message_id(buf: &[u8], r: &Range<usize>) -> Result<MessageId, CommandError> {
    MessageId::from_slice(field(buf, r)).ok_or_else(|| invalid("invalid message ID"))
}

/// The common form of a consumer's most frequent command, `FIN <16-byte id>\n`, in a state
/// where it is valid, answered without the general line scan. Anything else (other spacing,
/// `\r\n`, a state or TLS error) is left to the general parser, so results are identical.
///
/// Public so the fuzz targets can check that agreement; [`parse_command`] is the entry point.
pub fn parse_plain_fin(buf: &[u8], ctx: &ParseCtx) -> Option<Parsed> {
    const LEN: usize = 4 + 16 + 1;
    let (verb, rest) = buf.split_first_chunk::<4>()?;
    let (id, rest) = rest.split_first_chunk::<16>()?;
    if verb != b"FIN "
        || rest.first() != Some(&b'\n')
        || ctx.tls_gate
        || !matches!(ctx.state, ConnState::Subscribed | ConnState::Closing)
    {
        return None;
    }
    // A space splits the line differently, and a '\r' before the '\n' is not part of the ID.
    if id.iter().any(|&b| b == b' ' || b == b'\n') || id.last() == Some(&b'\r') {
        return None;
    }
    Some(Parsed::Complete {
        cmd: Command::Fin { id: MessageId(*id) },
        consumed: LEN,
    })
}

/// Parses the command at the start of `buf`.
pub fn parse_command(buf: &[u8], ctx: &ParseCtx, limits: &Limits) -> Result<Parsed, CommandError> {
    match parse_plain_fin(buf, ctx) {
        Some(fin) => Ok(fin),
        None => parse_general(buf, ctx, limits),
    }
}

/// [`parse_command`] without the FIN fast path: every command, checked in NSQ's order.
///
/// Public so the fuzz targets can compare it with [`parse_plain_fin`].
pub fn parse_general(buf: &[u8], ctx: &ParseCtx, limits: &Limits) -> Result<Parsed, CommandError> {
    let Some(nl) = memchr::memchr(b'\n', buf.get(..MAX_LINE_LEN).unwrap_or(buf)) else {
        if buf.len() >= MAX_LINE_LEN {
            return Err(CommandError::LineTooLong);
        }
        return Ok(Parsed::Incomplete);
    };
    let line = buf.get(..nl).unwrap_or_default();
    let params = split_params(line.strip_suffix(b"\r").unwrap_or(line));
    let name = field(buf, &params.at(0));
    let body_at = nl + 1;

    if name == b"IDENTIFY" {
        return parse_identify(buf, ctx, limits, body_at);
    }
    if ctx.tls_gate {
        return Err(invalid(format!(
            "cannot {} in current state (TLS required)",
            lossy(name)
        )));
    }

    let complete = |cmd| {
        Ok(Parsed::Complete {
            cmd,
            consumed: body_at,
        })
    };
    let subscribed_or_closing = matches!(ctx.state, ConnState::Subscribed | ConnState::Closing);
    match name {
        b"FIN" => {
            if !subscribed_or_closing {
                return Err(invalid("cannot FIN in current state"));
            }
            if params.len() < 2 {
                return Err(invalid("FIN insufficient number of params"));
            }
            complete(Command::Fin {
                id: message_id(buf, &params.at(1))?,
            })
        }
        b"RDY" => {
            if ctx.state == ConnState::Closing {
                return complete(Command::RdyIgnored);
            }
            if ctx.state != ConnState::Subscribed {
                return Err(invalid("cannot RDY in current state"));
            }
            let mut count: i64 = 1;
            if params.len() > 1 {
                let raw = field(buf, &params.at(1));
                count = parse_base10(raw)
                    .ok_or_else(|| invalid(format!("RDY could not parse count {}", lossy(raw))))?
                    as i64;
            }
            if count < 0 || count > limits.max_rdy_count {
                return Err(invalid(format!(
                    "RDY count {count} out of range 0-{}",
                    limits.max_rdy_count
                )));
            }
            complete(Command::Rdy { count })
        }
        b"REQ" => {
            if !subscribed_or_closing {
                return Err(invalid("cannot REQ in current state"));
            }
            if params.len() < 3 {
                return Err(invalid("REQ insufficient number of params"));
            }
            let id = message_id(buf, &params.at(1))?;
            let raw = field(buf, &params.at(2));
            let requested_ms = parse_base10(raw)
                .ok_or_else(|| invalid(format!("REQ could not parse timeout {}", lossy(raw))))?;
            // NSQ multiplies into signed nanoseconds, then clamps to 0..=max.
            let nanos = (requested_ms as i64).wrapping_mul(1_000_000);
            let delay_ms = if nanos < 0 {
                0
            } else {
                (nanos / 1_000_000).min(limits.max_req_timeout_ms)
            };
            complete(Command::Req {
                id,
                delay_ms,
                requested_ms,
            })
        }
        b"PUB" => parse_pub(buf, ctx, limits, &params, body_at),
        b"MPUB" => parse_mpub(buf, ctx, limits, &params, body_at),
        b"DPUB" => parse_dpub(buf, ctx, limits, &params, body_at),
        b"NOP" => complete(Command::Nop),
        b"TOUCH" => {
            if !subscribed_or_closing {
                return Err(invalid("cannot TOUCH in current state"));
            }
            if params.len() < 2 {
                return Err(invalid("TOUCH insufficient number of params"));
            }
            complete(Command::Touch {
                id: message_id(buf, &params.at(1))?,
            })
        }
        b"SUB" => {
            if ctx.state != ConnState::Init {
                return Err(invalid("cannot SUB in current state"));
            }
            if ctx.heartbeats_disabled {
                return Err(invalid("cannot SUB with heartbeats disabled"));
            }
            if params.len() < 3 {
                return Err(invalid("SUB insufficient number of parameters"));
            }
            let (topic, channel) = (params.at(1), params.at(2));
            let topic_name = field(buf, &topic);
            if !is_valid_topic_name(topic_name) {
                return Err(err(
                    ErrorCode::BadTopic,
                    format!("SUB topic name {} is not valid", go_quote(topic_name)),
                ));
            }
            let channel_name = field(buf, &channel);
            if !is_valid_channel_name(channel_name) {
                return Err(err(
                    ErrorCode::BadChannel,
                    format!("SUB channel name {} is not valid", go_quote(channel_name)),
                ));
            }
            complete(Command::Sub { topic, channel })
        }
        b"CLS" => {
            if ctx.state != ConnState::Subscribed {
                return Err(invalid("cannot CLS in current state"));
            }
            complete(Command::Cls)
        }
        b"AUTH" => parse_auth(buf, ctx, limits, &params, body_at),
        _ => Err(invalid(format!("invalid command {}", lossy(name)))),
    }
}

/// What the errors say when a body's size or bytes never arrive:
/// `<cmd> failed to read <part> size` and `<cmd> failed to read <part>`.
struct ReadErrors {
    code: ErrorCode,
    cmd: &'static str,
    part: &'static str,
}

/// A length-prefixed body at `at`: `Ok(None)` if incomplete (or an error if the peer has
/// closed), else (body range, end offset). `check` validates the declared size before waiting
/// for the bytes.
fn sized_body(
    buf: &[u8],
    at: usize,
    ctx: &ParseCtx,
    errors: ReadErrors,
    check: impl FnOnce(i32) -> Result<(), CommandError>,
) -> Result<Option<(Range<usize>, usize)>, CommandError> {
    let Some(size) = read_len(buf, at) else {
        if ctx.eof {
            let text = format!("{} failed to read {} size", errors.cmd, errors.part);
            return Err(err(errors.code, text));
        }
        return Ok(None);
    };
    check(size)?;
    let start = at + 4;
    let end = start + size as usize;
    if buf.len() < end {
        if ctx.eof {
            let text = format!("{} failed to read {}", errors.cmd, errors.part);
            return Err(err(errors.code, text));
        }
        return Ok(None);
    }
    Ok(Some((start..end, end)))
}

fn parse_identify(
    buf: &[u8],
    ctx: &ParseCtx,
    limits: &Limits,
    at: usize,
) -> Result<Parsed, CommandError> {
    if ctx.state != ConnState::Init || ctx.identified {
        return Err(invalid("cannot IDENTIFY in current state"));
    }
    control_body(buf, ctx, limits, at, "IDENTIFY", |body| Command::Identify {
        body,
    })
}

fn parse_auth(
    buf: &[u8],
    ctx: &ParseCtx,
    limits: &Limits,
    params: &Params,
    at: usize,
) -> Result<Parsed, CommandError> {
    if ctx.state != ConnState::Init {
        return Err(invalid("cannot AUTH in current state"));
    }
    if params.len() != 1 {
        return Err(invalid("AUTH invalid number of parameters"));
    }
    control_body(buf, ctx, limits, at, "AUTH", |body| Command::Auth { body })
}

/// The body of IDENTIFY or AUTH, bounded by `--max-body-size`. Unlike message bodies, "too big"
/// is checked before "invalid size", as NSQ does.
fn control_body(
    buf: &[u8],
    ctx: &ParseCtx,
    limits: &Limits,
    at: usize,
    cmd: &'static str,
    build: fn(Range<usize>) -> Command<Range<usize>>,
) -> Result<Parsed, CommandError> {
    let errors = ReadErrors {
        code: ErrorCode::BadBody,
        cmd,
        part: "body",
    };
    let body = sized_body(buf, at, ctx, errors, |size| {
        if size as i64 > limits.max_body_size {
            return Err(err(
                ErrorCode::BadBody,
                format!("{cmd} body too big {size} > {}", limits.max_body_size),
            ));
        }
        if size <= 0 {
            return Err(err(
                ErrorCode::BadBody,
                format!("{cmd} invalid body size {size}"),
            ));
        }
        Ok(())
    })?;
    Ok(match body {
        None => Parsed::Incomplete,
        Some((body, end)) => Parsed::Complete {
            cmd: build(body),
            consumed: end,
        },
    })
}

fn check_topic(
    buf: &[u8],
    r: &Range<usize>,
    cmd: &str,
    code_prefix: &str,
) -> Result<(), CommandError> {
    let name = field(buf, r);
    if is_valid_topic_name(name) {
        return Ok(());
    }
    Err(err(
        ErrorCode::BadTopic,
        format!(
            "{code_prefix}{cmd} topic name {} is not valid",
            go_quote(name)
        ),
    ))
}

/// The message body of PUB and DPUB, with their shared error texts.
fn message_body(
    buf: &[u8],
    ctx: &ParseCtx,
    limits: &Limits,
    cmd: &'static str,
    at: usize,
) -> Result<Option<(Range<usize>, usize)>, CommandError> {
    let errors = ReadErrors {
        code: ErrorCode::BadMessage,
        cmd,
        part: "message body",
    };
    sized_body(buf, at, ctx, errors, |size| {
        if size <= 0 {
            return Err(err(
                ErrorCode::BadMessage,
                format!("{cmd} invalid message body size {size}"),
            ));
        }
        if size as i64 > limits.max_msg_size {
            return Err(err(
                ErrorCode::BadMessage,
                format!("{cmd} message too big {size} > {}", limits.max_msg_size),
            ));
        }
        Ok(())
    })
}

fn parse_pub(
    buf: &[u8],
    ctx: &ParseCtx,
    limits: &Limits,
    params: &Params,
    at: usize,
) -> Result<Parsed, CommandError> {
    if params.len() < 2 {
        return Err(invalid("PUB insufficient number of parameters"));
    }
    let topic = params.at(1);
    check_topic(buf, &topic, "PUB", "")?;
    Ok(match message_body(buf, ctx, limits, "PUB", at)? {
        None => Parsed::Incomplete,
        Some((body, end)) => Parsed::Complete {
            cmd: Command::Pub { topic, body },
            consumed: end,
        },
    })
}

fn parse_dpub(
    buf: &[u8],
    ctx: &ParseCtx,
    limits: &Limits,
    params: &Params,
    at: usize,
) -> Result<Parsed, CommandError> {
    if params.len() < 3 {
        return Err(invalid("DPUB insufficient number of parameters"));
    }
    let topic = params.at(1);
    check_topic(buf, &topic, "DPUB", "")?;
    let raw = field(buf, &params.at(2));
    let ms = parse_base10(raw)
        .ok_or_else(|| invalid(format!("DPUB could not parse timeout {}", lossy(raw))))?;
    let nanos = (ms as i64).wrapping_mul(1_000_000);
    if nanos < 0 || ms > limits.max_req_timeout_ms as u64 {
        return Err(invalid(format!(
            "DPUB timeout {ms} out of range 0-{}",
            limits.max_req_timeout_ms
        )));
    }
    Ok(match message_body(buf, ctx, limits, "DPUB", at)? {
        None => Parsed::Incomplete,
        Some((body, end)) => Parsed::Complete {
            cmd: Command::Dpub {
                topic,
                defer_ms: ms as i64,
                body,
            },
            consumed: end,
        },
    })
}

fn parse_mpub(
    buf: &[u8],
    ctx: &ParseCtx,
    limits: &Limits,
    params: &Params,
    at: usize,
) -> Result<Parsed, CommandError> {
    if params.len() < 2 {
        return Err(invalid("MPUB insufficient number of parameters"));
    }
    let topic = params.at(1);
    // NSQ repeats the code inside the description here; clients may match on it.
    check_topic(buf, &topic, "MPUB", "E_BAD_TOPIC ")?;
    let body_err = |error: WireError| CommandError::MpubBody {
        topic: lossy(field(buf, &topic)),
        error,
    };
    let Some(total) = read_len(buf, at) else {
        if ctx.eof {
            return Err(body_err(WireError::new(
                ErrorCode::BadBody,
                "MPUB failed to read body size",
            )));
        }
        return Ok(Parsed::Incomplete);
    };
    if total <= 0 {
        return Err(body_err(WireError::new(
            ErrorCode::BadBody,
            format!("MPUB invalid body size {total}"),
        )));
    }
    if total as i64 > limits.max_body_size {
        return Err(body_err(WireError::new(
            ErrorCode::BadBody,
            format!("MPUB body too big {total} > {}", limits.max_body_size),
        )));
    }
    // NSQ walks the inner structure straight off the stream and never compares what it read
    // with the declared total, so neither do we: errors surface as soon as the field that
    // causes them arrives, and the command ends where its last message ends.
    match parse_mpub_messages(buf, at + 4, limits, ctx.eof).map_err(body_err)? {
        None => Ok(Parsed::Incomplete),
        Some((bodies, end)) => Ok(Parsed::Complete {
            cmd: Command::Mpub { topic, bodies },
            consumed: end,
        }),
    }
}

/// Each message's range within the buffer, and where the last one ends.
pub type MpubMessages = (Vec<Range<usize>>, usize);

/// Walks MPUB's `[count:u32]{[size:u32][body]}` structure starting at `start` in `buf` (also
/// the body of HTTP `/mpub?binary=true`). Returns each message's range and the end offset, or
/// `None` while more bytes are needed; with `eof` a missing field is an error instead.
pub fn parse_mpub_messages(
    buf: &[u8],
    start: usize,
    limits: &Limits,
    eof: bool,
) -> Result<Option<MpubMessages>, WireError> {
    let missing = |code, text: String| {
        if eof {
            Err(WireError::new(code, text))
        } else {
            Ok(None)
        }
    };
    let Some(count) = read_len(buf, start) else {
        return missing(
            ErrorCode::BadBody,
            "MPUB failed to read message count".into(),
        );
    };
    let max_messages = (limits.max_body_size - 4) / 5;
    if count <= 0 || count as i64 > max_messages {
        return Err(WireError::new(
            ErrorCode::BadBody,
            format!("MPUB invalid message count {count}"),
        ));
    }
    let mut bodies = Vec::with_capacity((count as usize).min(1024));
    let mut pos = start + 4;
    for i in 0..count {
        let Some(size) = read_len(buf, pos) else {
            return missing(
                ErrorCode::BadMessage,
                format!("MPUB failed to read message({i}) body size"),
            );
        };
        if size <= 0 {
            return Err(WireError::new(
                ErrorCode::BadMessage,
                format!("MPUB invalid message({i}) body size {size}"),
            ));
        }
        if size as i64 > limits.max_msg_size {
            return Err(WireError::new(
                ErrorCode::BadMessage,
                format!("MPUB message too big {size} > {}", limits.max_msg_size),
            ));
        }
        let msg_start = pos + 4;
        let msg_end = msg_start + size as usize;
        if msg_end > buf.len() {
            return missing(
                ErrorCode::BadMessage,
                "MPUB failed to read message body".into(),
            );
        }
        bodies.push(msg_start..msg_end);
        pos = msg_end;
    }
    Ok(Some((bodies, pos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_msg_size: 1024,
            max_body_size: 4096,
            max_rdy_count: 2500,
            max_req_timeout_ms: 3_600_000,
        }
    }

    fn ctx(state: ConnState) -> ParseCtx {
        ParseCtx {
            state,
            tls_gate: false,
            heartbeats_disabled: false,
            identified: false,
            eof: false,
        }
    }

    fn parse(buf: &[u8], state: ConnState) -> Result<Parsed, CommandError> {
        parse_command(buf, &ctx(state), &limits())
    }

    fn error_text(buf: &[u8], state: ConnState) -> String {
        match parse(buf, state) {
            Err(CommandError::Wire(e)) => e.frame_text(),
            Err(CommandError::MpubBody { error, .. }) => error.frame_text(),
            other => panic!("expected error, got {other:?}"),
        }
    }

    fn with_body(line: &str, body: &[u8]) -> Vec<u8> {
        let mut v = line.as_bytes().to_vec();
        v.push(b'\n');
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn base10() {
        assert_eq!(parse_base10(b""), Some(0));
        assert_eq!(parse_base10(b"123"), Some(123));
        assert_eq!(parse_base10(b"-1"), None);
        assert_eq!(parse_base10(b"+1"), None);
        assert_eq!(parse_base10(b" 1"), None);
        assert_eq!(parse_base10(b"18446744073709551616"), Some(0));
    }

    #[test]
    fn incomplete_until_newline() {
        assert_eq!(parse(b"NO", ConnState::Init), Ok(Parsed::Incomplete));
        assert_eq!(
            parse(b"NOP\r\nxx", ConnState::Init),
            Ok(Parsed::Complete {
                cmd: Command::Nop,
                consumed: 5
            })
        );
    }

    #[test]
    fn line_limit() {
        let mut long = vec![b'A'; MAX_LINE_LEN];
        assert_eq!(
            parse(&long, ConnState::Init),
            Err(CommandError::LineTooLong)
        );
        long[MAX_LINE_LEN - 1] = b'\n';
        assert!(matches!(
            parse(&long, ConnState::Init),
            Err(CommandError::Wire(_))
        ));
    }

    #[test]
    fn unknown_and_empty() {
        assert_eq!(
            error_text(b"\n", ConnState::Init),
            "E_INVALID invalid command "
        );
        assert_eq!(
            error_text(b"nop\n", ConnState::Init),
            "E_INVALID invalid command nop"
        );
    }

    #[test]
    fn tls_gate_precedes_everything_but_identify() {
        let mut c = ctx(ConnState::Init);
        c.tls_gate = true;
        let r = parse_command(b"FOO\n", &c, &limits());
        assert_eq!(
            r,
            Err(invalid("cannot FOO in current state (TLS required)"))
        );
        let r = parse_command(&with_body("IDENTIFY", b"{}"), &c, &limits());
        assert!(matches!(r, Ok(Parsed::Complete { .. })));
    }

    #[test]
    fn pub_checks_in_order() {
        assert_eq!(
            error_text(b"PUB\n", ConnState::Init),
            "E_INVALID PUB insufficient number of parameters"
        );
        assert_eq!(
            error_text(b"PUB a!b\n", ConnState::Init),
            "E_BAD_TOPIC PUB topic name \"a!b\" is not valid"
        );
        assert_eq!(
            parse(b"PUB t\n\0\0", ConnState::Init),
            Ok(Parsed::Incomplete)
        );
        assert_eq!(
            error_text(&with_body("PUB t", b""), ConnState::Init),
            "E_BAD_MESSAGE PUB invalid message body size 0"
        );
        let mut big = b"PUB t\n".to_vec();
        big.extend_from_slice(&0xffff_ffffu32.to_be_bytes());
        assert_eq!(
            error_text(&big, ConnState::Init),
            "E_BAD_MESSAGE PUB invalid message body size -1"
        );
        let mut big = b"PUB t\n".to_vec();
        big.extend_from_slice(&1025u32.to_be_bytes());
        assert_eq!(
            error_text(&big, ConnState::Init),
            "E_BAD_MESSAGE PUB message too big 1025 > 1024"
        );
        let buf = with_body("PUB t", b"hello");
        let Ok(Parsed::Complete {
            cmd: Command::Pub { topic, body },
            consumed,
        }) = parse(&buf, ConnState::Subscribed)
        else {
            panic!()
        };
        assert_eq!(
            (&buf[topic], &buf[body], consumed),
            (&b"t"[..], &b"hello"[..], buf.len())
        );
    }

    #[test]
    fn dpub_range_error() {
        assert_eq!(
            error_text(b"DPUB t\n", ConnState::Init),
            "E_INVALID DPUB insufficient number of parameters"
        );
        assert_eq!(
            error_text(b"DPUB t x\n", ConnState::Init),
            "E_INVALID DPUB could not parse timeout x"
        );
        assert_eq!(
            error_text(b"DPUB t 3600001\n", ConnState::Init),
            "E_INVALID DPUB timeout 3600001 out of range 0-3600000"
        );
        let buf = with_body("DPUB t 3600000", b"x");
        assert!(matches!(
            parse(&buf, ConnState::Init),
            Ok(Parsed::Complete {
                cmd: Command::Dpub {
                    defer_ms: 3_600_000,
                    ..
                },
                ..
            })
        ));
    }

    #[test]
    fn mpub_checks() {
        assert_eq!(
            error_text(b"MPUB a$\n", ConnState::Init),
            "E_BAD_TOPIC E_BAD_TOPIC MPUB topic name \"a$\" is not valid"
        );
        let mut b = b"MPUB t\n".to_vec();
        b.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            error_text(&b, ConnState::Init),
            "E_BAD_BODY MPUB invalid body size 0"
        );
        assert!(
            matches!(parse(&b, ConnState::Init), Err(CommandError::MpubBody { ref topic, .. }) if topic == "t")
        );
        let mut b = b"MPUB t\n".to_vec();
        b.extend_from_slice(&4097u32.to_be_bytes());
        assert_eq!(
            error_text(&b, ConnState::Init),
            "E_BAD_BODY MPUB body too big 4097 > 4096"
        );
        let inner = |count: u32, msgs: &[&[u8]]| {
            let mut v = count.to_be_bytes().to_vec();
            for m in msgs {
                v.extend_from_slice(&(m.len() as u32).to_be_bytes());
                v.extend_from_slice(m);
            }
            with_body("MPUB t", &v)
        };
        assert_eq!(
            error_text(&inner(0, &[]), ConnState::Init),
            "E_BAD_BODY MPUB invalid message count 0"
        );
        assert_eq!(
            error_text(&inner(819, &[]), ConnState::Init),
            "E_BAD_BODY MPUB invalid message count 819"
        );
        assert_eq!(
            parse(&inner(2, &[b"a"]), ConnState::Init),
            Ok(Parsed::Incomplete)
        );
        assert_eq!(
            error_text(&inner(1, &[b""]), ConnState::Init),
            "E_BAD_MESSAGE MPUB invalid message(0) body size 0"
        );
        assert_eq!(
            error_text(&inner(1, &[&[0u8; 1025]]), ConnState::Init),
            "E_BAD_MESSAGE MPUB message too big 1025 > 1024"
        );
        let buf = inner(2, &[b"a", b"bc"]);
        let Ok(Parsed::Complete {
            cmd: Command::Mpub { bodies, .. },
            consumed,
        }) = parse(&buf, ConnState::Init)
        else {
            panic!()
        };
        assert_eq!(consumed, buf.len());
        assert_eq!(
            bodies.iter().map(|r| &buf[r.clone()]).collect::<Vec<_>>(),
            vec![&b"a"[..], &b"bc"[..]]
        );
    }

    #[test]
    fn state_checks_come_first() {
        assert_eq!(
            error_text(b"FIN\n", ConnState::Init),
            "E_INVALID cannot FIN in current state"
        );
        assert_eq!(
            error_text(b"FIN\n", ConnState::Subscribed),
            "E_INVALID FIN insufficient number of params"
        );
        assert_eq!(
            error_text(b"FIN 123\n", ConnState::Closing),
            "E_INVALID invalid message ID"
        );
        assert_eq!(
            error_text(b"REQ x\n", ConnState::Subscribed),
            "E_INVALID REQ insufficient number of params"
        );
        assert_eq!(
            error_text(b"REQ 0123456789abcdef -1\n", ConnState::Subscribed),
            "E_INVALID REQ could not parse timeout -1"
        );
        assert_eq!(
            error_text(b"TOUCH\n", ConnState::Subscribed),
            "E_INVALID TOUCH insufficient number of params"
        );
        assert_eq!(
            error_text(b"TOUCH x\n", ConnState::Init),
            "E_INVALID cannot TOUCH in current state"
        );
        assert_eq!(
            error_text(b"CLS\n", ConnState::Closing),
            "E_INVALID cannot CLS in current state"
        );
        assert_eq!(
            error_text(b"SUB t c\n", ConnState::Subscribed),
            "E_INVALID cannot SUB in current state"
        );
        assert_eq!(
            error_text(b"SUB t\n", ConnState::Init),
            "E_INVALID SUB insufficient number of parameters"
        );
        assert_eq!(
            error_text(b"SUB t c!\n", ConnState::Init),
            "E_BAD_CHANNEL SUB channel name \"c!\" is not valid"
        );
        assert_eq!(
            error_text(b"RDY 1\n", ConnState::Init),
            "E_INVALID cannot RDY in current state"
        );
        assert_eq!(
            error_text(b"RDY 2501\n", ConnState::Subscribed),
            "E_INVALID RDY count 2501 out of range 0-2500"
        );
        assert_eq!(
            error_text(b"RDY 18446744073709551615\n", ConnState::Subscribed),
            "E_INVALID RDY count -1 out of range 0-2500"
        );
        assert_eq!(
            error_text(b"RDY x\n", ConnState::Subscribed),
            "E_INVALID RDY could not parse count x"
        );
    }

    #[test]
    fn rdy_forms() {
        let rdy = |b: &[u8], s| match parse(b, s) {
            Ok(Parsed::Complete { cmd, .. }) => cmd,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            rdy(b"RDY\n", ConnState::Subscribed),
            Command::Rdy { count: 1 }
        );
        assert_eq!(
            rdy(b"RDY \n", ConnState::Subscribed),
            Command::Rdy { count: 0 }
        );
        assert_eq!(
            rdy(b"RDY 7 extra\n", ConnState::Subscribed),
            Command::Rdy { count: 7 }
        );
        assert_eq!(rdy(b"RDY 9999\n", ConnState::Closing), Command::RdyIgnored);
    }

    #[test]
    fn req_clamps() {
        let b = b"REQ 0123456789abcdef 99999999\n";
        let Ok(Parsed::Complete {
            cmd:
                Command::Req {
                    delay_ms,
                    requested_ms,
                    ..
                },
            ..
        }) = parse(b, ConnState::Subscribed)
        else {
            panic!()
        };
        assert_eq!((delay_ms, requested_ms), (3_600_000, 99_999_999));
    }

    #[test]
    fn identify_body_checks() {
        let mut c = ctx(ConnState::Init);
        c.identified = true;
        assert_eq!(
            parse_command(&with_body("IDENTIFY", b"{}"), &c, &limits()),
            Err(invalid("cannot IDENTIFY in current state"))
        );
        let mut b = b"IDENTIFY\n".to_vec();
        b.extend_from_slice(&5000u32.to_be_bytes());
        assert_eq!(
            error_text(&b, ConnState::Init),
            "E_BAD_BODY IDENTIFY body too big 5000 > 4096"
        );
        assert_eq!(
            error_text(&with_body("IDENTIFY", b""), ConnState::Init),
            "E_BAD_BODY IDENTIFY invalid body size 0"
        );
    }

    #[test]
    fn truncated_bodies_fail_at_eof() {
        let mut c = ctx(ConnState::Init);
        c.eof = true;
        let text = |b: &[u8]| match parse_command(b, &c, &limits()) {
            Err(CommandError::Wire(e)) => e.frame_text(),
            Err(CommandError::MpubBody { error, .. }) => error.frame_text(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            text(b"PUB t\n\0\0"),
            "E_BAD_MESSAGE PUB failed to read message body size"
        );
        assert_eq!(
            text(b"PUB t\n\0\0\0\x05ab"),
            "E_BAD_MESSAGE PUB failed to read message body"
        );
        assert_eq!(
            text(b"DPUB t 1\n"),
            "E_BAD_MESSAGE DPUB failed to read message body size"
        );
        assert_eq!(
            text(b"IDENTIFY\n\0"),
            "E_BAD_BODY IDENTIFY failed to read body size"
        );
        assert_eq!(
            text(b"IDENTIFY\n\0\0\0\x05{"),
            "E_BAD_BODY IDENTIFY failed to read body"
        );
        assert_eq!(
            text(b"MPUB t\n"),
            "E_BAD_BODY MPUB failed to read body size"
        );
        assert_eq!(
            text(b"MPUB t\n\0\0\0\x09\0\0\0\x02\0\0\0\x01a"),
            "E_BAD_MESSAGE MPUB failed to read message(1) body size"
        );
        assert_eq!(
            text(b"MPUB t\n\0\0\0\x09\0\0"),
            "E_BAD_BODY MPUB failed to read message count"
        );
        assert_eq!(
            text(b"MPUB t\n\0\0\0\x09\0\0\0\x01\0\0\0\x03a"),
            "E_BAD_MESSAGE MPUB failed to read message body"
        );
    }

    #[test]
    fn fin_with_crlf_and_a_15_byte_id_is_invalid() {
        assert_eq!(
            error_text(b"FIN 000000000000000\r\n", ConnState::Subscribed),
            "E_INVALID invalid message ID"
        );
    }

    #[test]
    fn split_keeps_empty_params() {
        let p = split_params(b"SUB  c");
        assert_eq!((p.len(), p.at(0), p.at(1), p.at(2)), (3, 0..3, 4..4, 5..6));
        let p = split_params(b"A b c d e f");
        assert_eq!((p.len(), p.at(3), p.at(4)), (6, 6..7, 0..0));
        assert_eq!(split_params(b"NOP").len(), 1);
    }

    /// Wherever the FIN shortcut answers, the general parser gives the same answer.
    fn fin_shortcut_agrees(
        buf: &[u8],
        tls_gate: bool,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        for state in [ConnState::Init, ConnState::Subscribed, ConnState::Closing] {
            let ctx = ParseCtx {
                tls_gate,
                ..ctx(state)
            };
            if let Some(fast) = parse_plain_fin(buf, &ctx) {
                proptest::prop_assert_eq!(Ok(fast), parse_general(buf, &ctx, &limits()));
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            for state in [ConnState::Init, ConnState::Subscribed, ConnState::Closing] {
                let _ = parse(&data, state);
            }
        }

        #[test]
        fn plain_fin_shortcut_agrees_with_the_general_parser_on_ids_of_few_kinds(
            id in proptest::collection::vec(proptest::sample::select(&b"0a\r\x00"[..]), 15),
            last in proptest::sample::select(&b"0a \r\n\x00"[..]),
            tls_gate in proptest::prelude::any::<bool>(),
        ) {
            let mut buf = b"FIN ".to_vec();
            buf.extend_from_slice(&id);
            buf.push(last);
            buf.push(b'\n');
            fin_shortcut_agrees(&buf, tls_gate)?;
        }

        #[test]
        fn plain_fin_shortcut_agrees_with_the_general_parser(
            id in proptest::collection::vec(proptest::prelude::any::<u8>(), 16),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
            tls_gate in proptest::prelude::any::<bool>(),
        ) {
            let mut buf = b"FIN ".to_vec();
            buf.extend_from_slice(&id);
            buf.push(b'\n');
            buf.extend_from_slice(&tail);
            fin_shortcut_agrees(&buf, tls_gate)?;
        }

        #[test]
        fn consumed_within_buffer(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..200)) {
            let buf = with_body("PUB topic", &body);
            for cut in 0..buf.len() {
                proptest::prop_assert_eq!(parse(&buf[..cut], ConnState::Init), Ok(Parsed::Incomplete));
            }
            let parsed = parse(&buf, ConnState::Init);
            let ok = matches!(parsed, Ok(Parsed::Complete { consumed, .. }) if consumed == buf.len());
            proptest::prop_assert!(ok);
        }
    }
}
