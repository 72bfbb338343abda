//! The `nsqd` binary: parses NSQ's flags, then runs the daemon until SIGINT/SIGTERM.
use std::process::ExitCode;

use nsqd::options::{self, Outcome};

const PREFIX: &str = "[nsqd] ";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match options::parse(args) {
        Ok(Outcome::Run(opts)) => opts,
        Ok(Outcome::Version) => {
            println!("{}", nsq_daemon::version_line("nsqd"));
            return ExitCode::SUCCESS;
        }
        Ok(Outcome::Help(usage)) => {
            eprint!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let code = e.exit_code();
            match &e {
                options::OptionsError::Flag(_) => {
                    eprintln!("{e}");
                    eprint!("{}", options::usage());
                }
                options::OptionsError::Invalid(msg) => nsq_daemon::logging::fatal(
                    PREFIX,
                    &format!("failed to instantiate nsqd - {msg}"),
                ),
                options::OptionsError::Config(_) => {
                    nsq_daemon::logging::fatal(PREFIX, &e.to_string())
                }
            }
            return ExitCode::from(code as u8);
        }
    };
    nsq_daemon::logging::init(&opts.log_prefix, opts.log_level);
    for w in &opts.warnings {
        log::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            nsq_daemon::logging::fatal(&opts.log_prefix, &format!("failed to start runtime - {e}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(nsqd::server::run(*opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            nsq_daemon::logging::fatal(PREFIX, &format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}
