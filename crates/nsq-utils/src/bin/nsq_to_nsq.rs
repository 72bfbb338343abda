//! The `nsq_to_nsq` binary; see `nsq_utils::relay`.
#![forbid(unsafe_code)]
fn main() -> std::process::ExitCode {
    nsq_utils::relay::main(std::env::args().skip(1).collect())
}
