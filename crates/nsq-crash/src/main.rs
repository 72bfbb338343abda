//! `crash_harness`: kills nsqd with SIGKILL while it is publishing and delivering, restarts it
//! on the same data directory, and checks that no acknowledged message was lost.
//!
//! Exit status: 0 nothing acknowledged was lost (and, with `--strict`, no anomaly), 1 loss (or
//! a strict anomaly), 2 the run could not be carried out.
#![forbid(unsafe_code)]

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use nsq_crash::Config;

const USAGE: &str = "\
usage: crash_harness --nsqd-bin PATH [options]

  --nsqd-bin PATH          nsqd binary to run (required)
  --durability LEVEL       memory | write | fsync (default write; 'default' passes nothing)
  --cycles N               kill/restart cycles (default 20)
  --seconds-per-cycle S    length of a cycle; the kill lands at a random moment in it (default 1.0)
  --publishers N           publisher connections (default 2)
  --consumers N            consumer connections, spread over the channels (default 2)
  --channels N             channels of the topic (default 2)
  --topic NAME             topic (default crash)
  --max-batch N            messages per PUB/MPUB drawn from 1..=N (default 20)
  --dpub-share F           share (0 to 1) of publish commands sent as a one-message DPUB
                           (default 0: none); an acknowledged DPUB must be FINed on every channel
  --defer-ms MIN..MAX      DPUB delay in milliseconds, drawn from MIN..MAX inclusive
                           (default 1000..5000; a single N means exactly N)
  --req-share F            share (0 to 1) of deliveries answered with REQ instead of FIN
                           (default 0: consumers FIN everything); never during the final drain
  --req-delay-ms MIN..MAX  REQ delay in milliseconds, drawn from MIN..MAX inclusive
                           (default 0..3000)
  --rdy N                  RDY of each consumer (default 200)
  --seed N                 random seed (default: from the clock; printed in the report)
  --drain-timeout S        how long the final drain may take beyond the longest DPUB/REQ
                           delay in use (default 60)
  --data-path DIR          keep the data directory here (default: a temporary directory)
  --sync-timeout DUR       passes --sync-timeout=DUR to nsqd (e.g. 10ms: nsqd checkpoints its
                           channels on every sync tick, so this makes checkpoints frequent)
  --nsqd-arg ARG           extra argument for nsqd (repeatable)
  --strict                 also fail on anomalies (phantom bodies, same-run duplicates,
                           incomplete drain, unclean final shutdown)
  --verbose                echo nsqd's log and per-cycle progress to stderr
";

fn parse(args: Vec<String>) -> Result<(Config, bool), String> {
    let mut bin: Option<PathBuf> = None;
    let mut cfg = Config::new("");
    let mut strict = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match name.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--strict" => {
                strict = true;
                continue;
            }
            "--verbose" => {
                cfg.verbose = true;
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        let num = |v: &str| -> Result<u64, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        let share = |v: &str| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(|| format!("{name}: not a share between 0 and 1: {v}"))
        };
        let secs = |v: &str| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| format!("{name}: not a positive number of seconds: {v}"))
        };
        match name.as_str() {
            "--nsqd-bin" => bin = Some(PathBuf::from(value)),
            "--durability" => {
                cfg.durability = match value.as_str() {
                    "default" => None,
                    "memory" | "write" | "fsync" => Some(value),
                    _ => return Err(format!("--durability: unknown level {value}")),
                }
            }
            "--cycles" => cfg.cycles = num(&value)? as u32,
            "--seconds-per-cycle" => cfg.seconds_per_cycle = secs(&value)?,
            "--publishers" => cfg.publishers = num(&value)? as usize,
            "--consumers" => cfg.consumers = num(&value)? as usize,
            "--channels" => cfg.channels = num(&value)? as usize,
            "--topic" => cfg.topic = value,
            "--max-batch" => cfg.max_batch = num(&value)? as usize,
            "--dpub-share" => cfg.dpub_share = share(&value)?,
            "--defer-ms" => cfg.defer_ms = ms_range(&value).map_err(|e| format!("{name}: {e}"))?,
            "--req-share" => cfg.req_share = share(&value)?,
            "--req-delay-ms" => {
                cfg.req_delay_ms = ms_range(&value).map_err(|e| format!("{name}: {e}"))?
            }
            "--sync-timeout" => cfg.extra_args.push(format!("--sync-timeout={value}")),
            "--rdy" => cfg.rdy = num(&value)? as u32,
            "--seed" => cfg.seed = num(&value)?,
            "--drain-timeout" => cfg.drain_timeout = Duration::from_secs_f64(secs(&value)?),
            "--data-path" => cfg.data_path = Some(PathBuf::from(value)),
            "--nsqd-arg" => cfg.extra_args.push(value),
            _ => return Err(format!("unknown flag {name}")),
        }
    }
    cfg.nsqd_bin = bin.ok_or("--nsqd-bin is required")?;
    Ok((cfg, strict))
}

/// `MIN..MAX` (or `MIN..=MAX`), both inclusive, or a single `N`.
fn ms_range(v: &str) -> Result<RangeInclusive<u32>, String> {
    let bound = |s: &str| -> Result<u32, String> {
        s.trim()
            .parse()
            .map_err(|_| format!("not a number of milliseconds: {s}"))
    };
    let r = match v.split_once("..") {
        Some((lo, hi)) => bound(lo)?..=bound(hi.strip_prefix('=').unwrap_or(hi))?,
        None => bound(v)?..=bound(v)?,
    };
    if r.is_empty() {
        return Err(format!("empty range {v}"));
    }
    Ok(r)
}

fn main() -> ExitCode {
    let (cfg, strict) = match parse(std::env::args().skip(1).collect()) {
        Ok(v) => v,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("crash_harness: {e}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let report = match nsq_crash::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crash_harness: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{report}");
    let lost = report.lost();
    if lost > 0 {
        let note = if cfg.expects_no_loss() {
            "acknowledged messages were lost"
        } else {
            "acknowledged messages were lost (this level does not promise otherwise)"
        };
        println!("FAIL: {lost} {note}");
        return ExitCode::from(1);
    }
    if strict && !report.anomalies().is_empty() {
        println!("FAIL: anomalies (--strict)");
        return ExitCode::from(1);
    }
    println!("PASS: nothing acknowledged was lost");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_in_every_spelling() {
        assert_eq!(ms_range("1000..5000"), Ok(1000..=5000));
        assert_eq!(ms_range("0..=3000"), Ok(0..=3000));
        assert_eq!(ms_range("250"), Ok(250..=250));
        assert!(ms_range("5..1").is_err());
        assert!(ms_range("a..1").is_err());
    }

    #[test]
    fn delay_flags_reach_the_config() {
        let args = "--nsqd-bin n --dpub-share 0.3 --defer-ms=200..1500 --req-share 0.2 \
                    --req-delay-ms 0..1000 --sync-timeout 10ms";
        let (cfg, _) = parse(args.split_whitespace().map(String::from).collect()).unwrap();
        assert_eq!((cfg.dpub_share, cfg.defer_ms), (0.3, 200..=1500));
        assert_eq!((cfg.req_share, cfg.req_delay_ms), (0.2, 0..=1000));
        assert_eq!(cfg.extra_args, vec!["--sync-timeout=10ms".to_string()]);
        assert!(parse(vec![
            "--nsqd-bin".into(),
            "n".into(),
            "--req-share".into(),
            "2".into()
        ])
        .is_err());
    }
}
