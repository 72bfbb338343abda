//! nsqlookupd: the discovery daemon. nsqd instances register their topics and channels over
//! TCP protocol V1; consumers and nsqadmin find them over the HTTP API.
#![forbid(unsafe_code)]

pub mod http_api;
pub mod lookupd;
pub mod metrics;
pub mod options;
pub mod protocol;
pub mod registry;
pub mod server;
pub mod tcp;
