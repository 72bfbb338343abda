//! `to_nsq`: not written yet.
use std::process::ExitCode;

/// Runs `to_nsq` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let _ = args;
    eprintln!("to_nsq: not implemented yet");
    ExitCode::from(1)
}
