//! Topic and channel queue state machines, free of I/O and clocks (time is passed in), so the
//! delivery rules can be unit-tested and fuzzed.
//!
//! A topic keeps one log of its messages; each channel is a cursor into that log plus its own
//! sets of requeued, in-flight and deferred messages. Fanning a message out to N channels costs N
//! cursor moves, not N copies. The log sits behind [`MessageLog`], which the durable store plugs
//! into.
#![forbid(unsafe_code)]

pub mod channel;
pub mod log;
pub mod topic;

pub use channel::{ChannelState, ClientId, InFlight, MsgError, ScanOutcome};
pub use log::{MemoryLog, MessageLog, QueueError};
pub use topic::{ChannelKey, TopicState};
