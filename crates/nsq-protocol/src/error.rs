//! Every error a V2 client can see, mapped to its wire code and fatality in one place.
use std::fmt;

/// The error codes of the V2 protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadProtocol,
    Invalid,
    BadBody,
    BadTopic,
    BadChannel,
    BadMessage,
    PubFailed,
    MpubFailed,
    DpubFailed,
    SubFailed,
    IdentifyFailed,
    AuthDisabled,
    AuthFirst,
    AuthFailed,
    Unauthorized,
    AuthError,
    FinFailed,
    ReqFailed,
    TouchFailed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadProtocol => "E_BAD_PROTOCOL",
            ErrorCode::Invalid => "E_INVALID",
            ErrorCode::BadBody => "E_BAD_BODY",
            ErrorCode::BadTopic => "E_BAD_TOPIC",
            ErrorCode::BadChannel => "E_BAD_CHANNEL",
            ErrorCode::BadMessage => "E_BAD_MESSAGE",
            ErrorCode::PubFailed => "E_PUB_FAILED",
            ErrorCode::MpubFailed => "E_MPUB_FAILED",
            ErrorCode::DpubFailed => "E_DPUB_FAILED",
            ErrorCode::SubFailed => "E_SUB_FAILED",
            ErrorCode::IdentifyFailed => "E_IDENTIFY_FAILED",
            ErrorCode::AuthDisabled => "E_AUTH_DISABLED",
            ErrorCode::AuthFirst => "E_AUTH_FIRST",
            ErrorCode::AuthFailed => "E_AUTH_FAILED",
            ErrorCode::Unauthorized => "E_UNAUTHORIZED",
            ErrorCode::AuthError => "E_AUTH_ERROR",
            ErrorCode::FinFailed => "E_FIN_FAILED",
            ErrorCode::ReqFailed => "E_REQ_FAILED",
            ErrorCode::TouchFailed => "E_TOUCH_FAILED",
        }
    }

    /// Only the three per-message failures leave the connection open.
    pub fn is_fatal(self) -> bool {
        !matches!(
            self,
            ErrorCode::FinFailed | ErrorCode::ReqFailed | ErrorCode::TouchFailed
        )
    }
}

/// An error frame: `<CODE> <description>`, or the bare code when there is no description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub code: ErrorCode,
    pub desc: String,
}

impl WireError {
    pub fn new(code: ErrorCode, desc: impl Into<String>) -> WireError {
        WireError {
            code,
            desc: desc.into(),
        }
    }

    pub fn invalid(desc: impl Into<String>) -> WireError {
        WireError::new(ErrorCode::Invalid, desc)
    }

    pub fn bad_protocol() -> WireError {
        WireError::new(ErrorCode::BadProtocol, "")
    }

    pub fn is_fatal(&self) -> bool {
        self.code.is_fatal()
    }

    /// The exact bytes carried in the error frame.
    pub fn frame_text(&self) -> String {
        if self.desc.is_empty() {
            self.code.as_str().to_string()
        } else {
            format!("{} {}", self.code.as_str(), self.desc)
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.frame_text())
    }
}

impl std::error::Error for WireError {}

/// Why parsing a command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Reply with this error frame (then close, when fatal).
    #[error("{0}")]
    Wire(WireError),
    /// MPUB whose line was valid but whose body was not: NSQ creates the topic before reading the
    /// body, so the caller must create `topic` before sending the error.
    #[error("{error}")]
    MpubBody { topic: String, error: WireError },
    /// A command line longer than the 16 KiB line buffer: the connection is dropped without an
    /// error frame, as NSQ does.
    #[error("command line too long")]
    LineTooLong,
}

impl From<WireError> for CommandError {
    fn from(e: WireError) -> Self {
        CommandError::Wire(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_text_shapes() {
        assert_eq!(WireError::bad_protocol().frame_text(), "E_BAD_PROTOCOL");
        assert_eq!(
            WireError::invalid("invalid command FOO").frame_text(),
            "E_INVALID invalid command FOO"
        );
        assert!(!ErrorCode::FinFailed.is_fatal());
        assert!(ErrorCode::PubFailed.is_fatal());
    }
}
