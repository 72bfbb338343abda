//! The `to_nsq` binary; see `nsq_utils::to_nsq`.
#![forbid(unsafe_code)]
fn main() -> std::process::ExitCode {
    nsq_utils::to_nsq::main(std::env::args().skip(1).collect())
}
