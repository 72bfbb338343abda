//! `nsq_to_http`: not written yet.
use std::process::ExitCode;

/// Runs `nsq_to_http` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let _ = args;
    eprintln!("nsq_to_http: not implemented yet");
    ExitCode::from(1)
}
