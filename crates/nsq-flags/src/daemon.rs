//! The command-line steps every NSQ daemon shares: `-h`, `--version` (answered before the config
//! file is read, so it works with a broken file), then `--config` and the flag/config/default
//! precedence.
use crate::flagset::{FlagError, FlagSet, Parsed};
use crate::resolve::{load_config_file, ConfigError, Values};

/// What a daemon's command line asks for.
#[derive(Debug, Clone)]
pub enum DaemonArgs {
    /// Print this usage text and exit 0.
    Help(String),
    /// Print the version line and exit 0.
    Version,
    /// Run with these resolved values.
    Run(Values),
}

/// A bad command line (exit 2) or a bad config file (exit 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl FlagSet {
    /// Parses a daemon's arguments (without the program name). The set must define the
    /// `version` (bool) and `config` (string) flags.
    pub fn parse_daemon<I, S>(&self, args: I) -> Result<DaemonArgs, ArgsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let cli = match self.parse(args)? {
            Parsed::Help(text) => return Ok(DaemonArgs::Help(text)),
            Parsed::Args(cli) => cli,
        };
        if cli.values().bool("version") {
            return Ok(DaemonArgs::Version);
        }
        let path = cli.values().string("config");
        let config = if path.is_empty() {
            None
        } else {
            Some(load_config_file(path)?)
        };
        Ok(DaemonArgs::Run(self.resolve(&cli, config.as_ref())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flagset::Flag;

    fn set() -> FlagSet {
        FlagSet::new("d")
            .flag(Flag::bool("version", false, "v").no_config())
            .flag(Flag::string("config", "", "c").no_config())
            .flag(Flag::int("n", 1, "n"))
    }

    #[test]
    fn version_wins_over_a_broken_config_file() {
        let r = set().parse_daemon(["--version", "--config=/nonexistent.toml"]);
        assert!(matches!(r, Ok(DaemonArgs::Version)));
        let r = set().parse_daemon(["--config=/nonexistent.toml"]);
        assert!(matches!(r, Err(ArgsError::Config(_))));
        assert!(matches!(
            set().parse_daemon(["-h"]),
            Ok(DaemonArgs::Help(_))
        ));
        assert!(matches!(
            set().parse_daemon(["--nope"]),
            Err(ArgsError::Flag(_))
        ));
        match set().parse_daemon(["-n", "5"]) {
            Ok(DaemonArgs::Run(v)) => assert_eq!(v.int("n"), 5),
            other => panic!("{other:?}"),
        }
    }
}
