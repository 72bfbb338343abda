//! `nsq_to_nsq`: not written yet.
use std::process::ExitCode;

/// Runs `nsq_to_nsq` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let _ = args;
    eprintln!("nsq_to_nsq: not implemented yet");
    ExitCode::from(1)
}
