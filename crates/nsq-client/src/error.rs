//! The errors the client returns: I/O and TLS failures keep their source, nsqd's error frames
//! keep their code and text.
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Connecting, reading or writing failed.
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("{addr}: TLS: {reason}")]
    Tls { addr: String, reason: String },
    /// nsqd answered with an error frame, e.g. `E_BAD_TOPIC PUB topic name "a b" is not valid`.
    #[error("{addr}: {text}")]
    Server {
        addr: String,
        /// The code (`E_BAD_TOPIC`, ...), the first word of the frame.
        code: String,
        /// The whole frame text.
        text: String,
    },
    /// The peer broke the protocol (garbage, oversize frame, unexpected frame type).
    #[error("{addr}: protocol error: {reason}")]
    Protocol { addr: String, reason: String },
    /// Nothing arrived within `read_timeout` (or a dial within `dial_timeout`).
    #[error("{addr}: {what} timed out")]
    Timeout { addr: String, what: &'static str },
    /// The connection closed before the command was answered.
    #[error("{addr}: connection closed")]
    Closed { addr: String },
    /// The producer or consumer was stopped.
    #[error("stopped")]
    Stopped,
    /// A lookupd query failed.
    #[error("{0}")]
    Lookup(String),
    /// A name is not a valid topic or channel name.
    #[error("{0}")]
    InvalidName(String),
}

impl Error {
    /// A copy for every waiter that a single failure affects (I/O errors keep kind and text).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Config(e) => Error::Config(e.clone()),
            Error::Io { addr, source } => Error::Io {
                addr: addr.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Tls { addr, reason } => Error::Tls {
                addr: addr.clone(),
                reason: reason.clone(),
            },
            Error::Server { addr, code, text } => Error::Server {
                addr: addr.clone(),
                code: code.clone(),
                text: text.clone(),
            },
            Error::Protocol { addr, reason } => Error::Protocol {
                addr: addr.clone(),
                reason: reason.clone(),
            },
            Error::Timeout { addr, what } => Error::Timeout {
                addr: addr.clone(),
                what,
            },
            Error::Closed { addr } => Error::Closed { addr: addr.clone() },
            Error::Stopped => Error::Stopped,
            Error::Lookup(s) => Error::Lookup(s.clone()),
            Error::InvalidName(s) => Error::InvalidName(s.clone()),
        }
    }
}
