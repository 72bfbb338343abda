//! `nsq_to_file`: not written yet.
use std::process::ExitCode;

/// Runs `nsq_to_file` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let _ = args;
    eprintln!("nsq_to_file: not implemented yet");
    ExitCode::from(1)
}
