//! What every bench shares: statistics over timings (median, percentile), the result table
//! with its goal verdicts and ratios against a peer, and process measurements from /proc
//! (RSS, peak RSS, CPU time). The test harness (tests/common: simulator wiring, TLS
//! fixtures, network namespaces) is reachable as `common::harness`.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

#[path = "../../tests/common/mod.rs"]
pub mod harness;

/// One line of a bench's result table.
pub struct Row {
    pub what: String,
    pub value: String,
    pub goal: String,
}

impl Row {
    pub fn new(what: impl Into<String>, value: impl Into<String>, goal: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            value: value.into(),
            goal: goal.into(),
        }
    }
}

/// Print `rows` under the command that produced them.
pub fn print_table(bench: &str, rows: &[Row]) {
    let w0 = rows.iter().map(|r| r.what.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.value.len()).max().unwrap_or(0);
    println!();
    println!(
        "command: cargo bench --bench {bench}   (release, {} cores)",
        cores()
    );
    println!("{:<w0$}  {:<w1$}  goal", "measurement", "result");
    println!("{}", "-".repeat(w0 + w1 + 30));
    for r in rows {
        println!("{:<w0$}  {:<w1$}  {}", r.what, r.value, r.goal);
    }
}

/// `goal: met` or `goal: NOT met`.
pub fn verdict(met: bool, goal: impl std::fmt::Display) -> String {
    format!("{goal}: {}", if met { "met" } else { "NOT met" })
}

/// A row comparing `num / den` (ours against a peer, measured in the same run) to a goal.
pub fn ratio_row(
    what: &str,
    num: Option<Duration>,
    den: Option<Duration>,
    met: impl Fn(f64) -> bool,
    goal: String,
) -> Row {
    match (num, den) {
        (Some(n), Some(d)) if !d.is_zero() => {
            let r = n.as_secs_f64() / d.as_secs_f64();
            Row::new(what, format!("{r:.2}x"), verdict(met(r), goal))
        }
        _ => Row::new(what, "n/a", format!("{goal}: not measured")),
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of `times` (sorts them).
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The `q` quantile (0..=1, nearest rank) of already sorted values; the default when empty.
pub fn percentile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A `kB` field of /proc/PID/status (`VmRSS:`, `VmHWM:`); `pid` may be `self`.
pub fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(&pid.to_string(), "VmRSS:")
}

pub fn hwm_kib(pid: u32) -> Option<u64> {
    proc_status_kib(&pid.to_string(), "VmHWM:")
}

/// Peak RSS of this process in MB (NaN when /proc is not readable).
pub fn self_hwm_mb() -> f64 {
    proc_status_kib("self", "VmHWM:").map_or(f64::NAN, |kb| kb as f64 / 1024.0)
}

/// utime + stime of a process (`self` or a pid) in seconds, from /proc/PID/stat.
pub fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    (ticks(14).unwrap_or(0.0) + ticks(15).unwrap_or(0.0)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
