//! The `nsq_stat` binary; see `nsq_utils::stat`.
#![forbid(unsafe_code)]
fn main() -> std::process::ExitCode {
    nsq_utils::stat::main(std::env::args().skip(1).collect())
}
