//! The `nsqadmin` binary: parses NSQ's flags, then serves until SIGINT/SIGTERM.
#![forbid(unsafe_code)]
use std::process::ExitCode;

use nsqadmin::options::{self, Outcome};

const PREFIX: &str = "[nsqadmin] ";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match options::parse(args) {
        Ok(Outcome::Run(opts)) => opts,
        Ok(Outcome::Version) => {
            println!("{}", nsq_daemon::version_line("nsqadmin"));
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
                options::OptionsError::Config(_) => {
                    nsq_daemon::logging::fatal(PREFIX, &e.to_string())
                }
            }
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
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
            nsq_daemon::logging::fatal(PREFIX, &format!("failed to start runtime - {e}"));
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(nsqadmin::server::run(*opts));
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            nsq_daemon::logging::fatal(PREFIX, &e.to_string());
            ExitCode::from(1)
        }
    }
}
