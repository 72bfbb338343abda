//! Go-compatible command-line flags, Go duration text and TOML config files with NSQ's
//! precedence (command line → config file → default), shared by nsqd, nsqlookupd and nsqadmin.
//!
//! Typical use:
//! 1. build a [`FlagSet`] of [`Flag`]s;
//! 2. [`FlagSet::parse`] the arguments ([`Parsed::Help`] → print and exit 0, [`FlagError`] →
//!    print with [`FlagSet::usage`] and exit 2);
//! 3. [`load_config_file`] if `--config` was given ([`ConfigError`] → exit 1);
//! 4. [`FlagSet::resolve`] into [`Values`] and read them with the typed getters.
#![forbid(unsafe_code)]

pub mod daemon;
pub mod duration;
mod flagset;
mod resolve;
mod scalar;

pub use daemon::{ArgsError, DaemonArgs};
pub use duration::{
    format_go_duration, format_go_duration_nanos, parse_go_duration, parse_go_duration_nanos,
    DurationError,
};
pub use flagset::{CommandLine, Flag, FlagError, FlagSet, Kind, Normalizer, Parsed, Value};
pub use resolve::{format_config_value, load_config_file, parse_config, ConfigError, Values};
pub use scalar::{
    format_go_float, go_quote, parse_decimal_int, parse_go_bool, parse_go_float, parse_go_int,
    NumError,
};
