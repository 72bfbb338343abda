//! Another process's resident memory, CPU time and open-files limit, read from Linux's `/proc`:
//! pure parsers over the file text (unit-tested on samples) and thin wrappers that read the files.

use std::fs;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// What `sysconf(_SC_CLK_TCK)` returns on every mainstream Linux; used only when `getconf` is
/// unavailable, since calling sysconf directly would need libc and unsafe code.
pub const DEFAULT_CLK_TCK: u64 = 100;

/// `VmRSS` from the text of `/proc/<pid>/status`, in KiB.
pub fn parse_rss_kib(status: &str) -> Result<u64> {
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let mut words = rest.split_whitespace();
            let (Some(n), Some("kB"), None) = (words.next(), words.next(), words.next()) else {
                bail!("unexpected VmRSS line {line:?}");
            };
            return n
                .parse()
                .with_context(|| format!("VmRSS value in {line:?} is not a number"));
        }
    }
    // Zombies and kernel threads have no VmRSS line.
    bail!("no VmRSS line (has the process exited?)")
}

/// `utime + stime` from the text of `/proc/<pid>/stat`, in clock ticks: the CPU time of all the
/// process's threads so far.
pub fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    // Field 2, the command name, is in parentheses and may itself contain spaces and ')', so
    // the numbered fields are counted from the last ')'.
    let Some(close) = stat.rfind(')') else {
        bail!("no command name in parentheses in /proc stat line");
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let (Some(utime), Some(stime)) = (fields.get(14 - 3), fields.get(15 - 3)) else {
        bail!("/proc stat line has only {} fields", fields.len() + 2);
    };
    let utime: u64 = utime
        .parse()
        .with_context(|| format!("utime {utime:?} is not a number"))?;
    let stime: u64 = stime
        .parse()
        .with_context(|| format!("stime {stime:?} is not a number"))?;
    Ok(utime + stime)
}

/// The soft "Max open files" limit from the text of `/proc/<pid>/limits`; `None` means
/// unlimited.
pub fn parse_nofile_soft(limits: &str) -> Result<Option<u64>> {
    for line in limits.lines() {
        if let Some(rest) = line.strip_prefix("Max open files") {
            let Some(soft) = rest.split_whitespace().next() else {
                bail!("unexpected open-files line {line:?}");
            };
            if soft == "unlimited" {
                return Ok(None);
            }
            return soft
                .parse()
                .map(Some)
                .with_context(|| format!("open-files limit in {line:?} is not a number"));
        }
    }
    bail!("no \"Max open files\" line")
}

fn read_proc(pid: &str, file: &str) -> Result<String> {
    let path = format!("/proc/{pid}/{file}");
    fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))
}

/// Resident memory of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    parse_rss_kib(&read_proc(&pid.to_string(), "status")?)
        .with_context(|| format!("/proc/{pid}/status"))
}

/// CPU time (user + system) process `pid` has used so far, in clock ticks ([`clk_tck`]).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    parse_cpu_ticks(&read_proc(&pid.to_string(), "stat")?)
        .with_context(|| format!("/proc/{pid}/stat"))
}

/// The soft open-files limit of process `pid` (`None`: unlimited).
pub fn nofile_soft(pid: u32) -> Result<Option<u64>> {
    parse_nofile_soft(&read_proc(&pid.to_string(), "limits")?)
        .with_context(|| format!("/proc/{pid}/limits"))
}

/// The soft open-files limit of this process (`None`: unlimited).
pub fn own_nofile_soft() -> Result<Option<u64>> {
    parse_nofile_soft(&read_proc("self", "limits")?).context("/proc/self/limits")
}

/// Clock ticks per second, the unit of [`cpu_ticks`], from `getconf CLK_TCK`; falls back to
/// [`DEFAULT_CLK_TCK`] when getconf is missing or says something odd.
pub fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(DEFAULT_CLK_TCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tnsqd\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
        VmPeak:\t  123456 kB\nVmSize:\t  120000 kB\nVmHWM:\t   70000 kB\nVmRSS:\t   67890 kB\n\
        RssAnon:\t   60000 kB\nThreads:\t5\n";

    #[test]
    fn rss_is_the_vmrss_line_not_hwm_or_anon() {
        assert_eq!(parse_rss_kib(STATUS).unwrap(), 67890);
    }

    #[test]
    fn rss_missing_or_garbled_is_an_error() {
        assert!(parse_rss_kib("Name:\tkthreadd\nState:\tS\n").is_err());
        assert!(parse_rss_kib("VmRSS:\t  12 MB\n").is_err());
        assert!(parse_rss_kib("VmRSS:\t  x kB\n").is_err());
        assert!(parse_rss_kib("").is_err());
    }

    #[test]
    fn cpu_is_utime_plus_stime() {
        let stat = "4242 (nsqd) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 37 0 0 20 0 5 0 \
                    123456 120000000 16972 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 \
                    0 0 0 0 0\n";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 187);
    }

    #[test]
    fn cpu_survives_spaces_and_parens_in_the_command_name() {
        let stat = "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 11);
    }

    #[test]
    fn cpu_short_or_garbled_is_an_error() {
        assert!(parse_cpu_ticks("7 (a) R 1 2 3").is_err());
        assert!(parse_cpu_ticks("no parens here").is_err());
        assert!(parse_cpu_ticks("7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 6 0").is_err());
    }

    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max processes             96365                96365                processes \n\
        Max open files            20000                524288               files     \n\
        Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn nofile_soft_limit() {
        assert_eq!(parse_nofile_soft(LIMITS).unwrap(), Some(20000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_nofile_soft(unlimited).unwrap(), None);
        assert!(parse_nofile_soft("Max processes 1 1 processes\n").is_err());
    }

    #[test]
    fn own_process_is_readable() {
        // Linux-only, like the tool: the wrappers must agree with the parsers on real files.
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        cpu_ticks(me).unwrap();
        assert_eq!(nofile_soft(me).unwrap(), own_nofile_soft().unwrap());
        assert!(clk_tck() > 0);
    }
}
