//! The `nsq_to_http` binary; see `nsq_utils::to_http`.
#![forbid(unsafe_code)]
fn main() -> std::process::ExitCode {
    nsq_utils::to_http::main(std::env::args().skip(1).collect())
}
