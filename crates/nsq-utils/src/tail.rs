//! `nsq_tail`: not written yet.
use std::process::ExitCode;

/// Runs `nsq_tail` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let _ = args;
    eprintln!("nsq_tail: not implemented yet");
    ExitCode::from(1)
}
