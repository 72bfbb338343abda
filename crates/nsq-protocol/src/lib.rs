//! NSQ's client wire protocol (V2) as pure data transformations: frames, command parsing and
//! validation, message encoding, topic/channel names, IDENTIFY negotiation and message IDs.
//!
//! Nothing here does I/O, so every rule can be unit-tested and fuzzed; the daemon feeds bytes in
//! and writes the bytes that come out.
#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]
// Tests index and unwrap their own fixtures freely; the wall is for code that sees outside bytes.
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable
    )
)]

pub mod command;
pub mod compress;
pub mod error;
pub mod frame;
pub mod guid;
pub mod identify;
pub mod message;
pub mod names;
pub mod quote;

pub use command::{parse_command, Command, ConnState, Limits, ParseCtx, Parsed};
pub use error::{CommandError, ErrorCode, WireError};
pub use message::{Message, MessageId};

/// The 4 bytes a V2 client sends first.
pub const MAGIC_V2: &[u8; 4] = b"  V2";
