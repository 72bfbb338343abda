//! The `nsq_tail` binary; see `nsq_utils::tail`.
#![forbid(unsafe_code)]
fn main() -> std::process::ExitCode {
    nsq_utils::tail::main(std::env::args().skip(1).collect())
}
