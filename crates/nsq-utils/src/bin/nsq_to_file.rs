//! The `nsq_to_file` binary; see `nsq_utils::to_file`.
#![forbid(unsafe_code)]
fn main() -> std::process::ExitCode {
    nsq_utils::to_file::main(std::env::args().skip(1).collect())
}
