//! `nsq_stat`: not written yet.
use std::process::ExitCode;

/// Runs `nsq_stat` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let _ = args;
    eprintln!("nsq_stat: not implemented yet");
    ExitCode::from(1)
}
