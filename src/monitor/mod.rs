//! Monitors: scheduled runs of a check that yield observations for our alerts. This file
//! owns when a monitor runs: [`Schedule`] (an interval `every = "60s"` with a small
//! deterministic jitter, or a 5-field cron `schedule = "0 2 * * *"` read in UTC or in the
//! monitor's [`CronZone`], `timezone = "Europe/Berlin"`), the duration grammar of the
//! config (`30s`, `15m`, `6h`, `1d`) and a run's [`RunOutcome`]. The loop that runs them,
//! with leases and run records, is [`scheduler`].
//!
//! Daylight saving time follows croner's rules (the Open Cron Pattern Specification, as
//! Vixie cron): on the spring-forward day a fixed-time job whose minute does not exist
//! (`0 2 * * *` in Europe/Berlin, where 02:00 jumps to 03:00) runs once at the first minute
//! after the gap (03:00 local); on the fall-back day a fixed-time job in the repeated hour
//! runs once, at the first of the two times. A job with `*` or a step in its minute or hour
//! field skips the minutes of the gap and runs in both passes of a repeated hour.

pub mod engine;
pub mod kinds;
pub mod scheduler;
pub mod start;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::clock::Millis;

pub use scheduler::{
    Job, JobFuture, JobOutput, MonitorNext, MonitorSpec, Scheduler, SchedulerError, TickReport,
    default_replica_id, job_fn,
};

/// The longest interval or duration the config accepts (a year), far below overflow.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// Jitter of an interval slot: up to this share of the interval ...
const JITTER_SHARE: i64 = 10; // percent
/// ... and never more than this.
const JITTER_MAX_MS: i64 = 30_000;

/// A bad `every`, `schedule` or duration setting; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Parse a config duration: a whole number followed by one unit, `s`, `m`, `h` or `d`
/// (`"30s"`, `"15m"`, `"6h"`, `"1d"`; `"0s"` is zero). `key` (e.g. `monitors[2].for`) names
/// the setting in the error.
pub fn parse_duration(key: &str, text: &str) -> Result<Duration, ScheduleError> {
    const ALLOWED: &str = "write a whole number followed by a unit: s, m, h or d (e.g. \"60s\", \"15m\", \"6h\", \"1d\")";
    let t = text.trim();
    if t.is_empty() {
        return Err(invalid(key, format!("empty duration; {ALLOWED}")));
    }
    let shown = crate::util::quote_untrusted(t, 40);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(invalid(
            key,
            format!("\"{shown}\" does not start with a number; {ALLOWED}"),
        ));
    }
    let unit_secs: u64 = match unit.trim() {
        "" => {
            return Err(invalid(key, format!("\"{shown}\" has no unit; {ALLOWED}")));
        }
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            let other = crate::util::quote_untrusted(other, 20);
            return Err(invalid(
                key,
                format!("\"{shown}\" has the unknown unit \"{other}\"; {ALLOWED}"),
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| invalid(key, format!("\"{shown}\" is too large (at most 366d)")))?;
    let secs = n
        .checked_mul(unit_secs)
        .filter(|s| *s <= MAX_DURATION.as_secs())
        .ok_or_else(|| invalid(key, format!("\"{shown}\" is too large (at most 366d)")))?;
    Ok(Duration::from_secs(secs))
}

/// The time zone a cron expression is read in: UTC unless the monitor sets `timezone` to
/// a name from the IANA time zone database (`Europe/Berlin`, `America/New_York`); the
/// zone rules are compiled in (chrono-tz), so the host's own zone files do not matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronZone(Tz);

impl Default for CronZone {
    fn default() -> Self {
        CronZone::UTC
    }
}

impl CronZone {
    pub const UTC: CronZone = CronZone(Tz::UTC);

    /// `timezone = "Europe/Berlin"`; `key` (`monitors[3].timezone`) names the setting in
    /// the error.
    pub fn parse(key: &str, text: &str) -> Result<CronZone, ScheduleError> {
        text.parse().map_err(|reason| invalid(key, reason))
    }

    /// The IANA name (`UTC`, `Europe/Berlin`).
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// `ms` as a time in this zone.
    fn at(self, ms: Millis) -> DateTime<Tz> {
        to_utc(ms).with_timezone(&self.0)
    }
}

/// When a monitor runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `every`: slots at whole multiples of the interval since the epoch, shifted by
    /// a jitter derived from the monitor's name (so replicas agree on the slots).
    Every { every: Duration },
    /// At the minutes a 5-field cron expression matches, read in `zone`.
    Cron {
        expr: String,
        cron: Box<Cron>,
        zone: CronZone,
    },
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Schedule::Every { every: a }, Schedule::Every { every: b }) => a == b,
            (
                Schedule::Cron {
                    expr: a, zone: za, ..
                },
                Schedule::Cron {
                    expr: b, zone: zb, ..
                },
            ) => a == b && za == zb,
            _ => false,
        }
    }
}

impl Schedule {
    /// `every = "60s"`: at least one second.
    pub fn every(key: &str, text: &str) -> Result<Schedule, ScheduleError> {
        let every = parse_duration(key, text)?;
        if every < Duration::from_secs(1) {
            return Err(invalid(
                key,
                "an interval must be at least 1s (e.g. \"60s\")",
            ));
        }
        Ok(Schedule::Every { every })
    }

    /// `schedule = "0 2 * * *"`: five fields (minute hour day-of-month month
    /// day-of-week), read in UTC ([`Schedule::with_zone`] reads it elsewhere).
    pub fn cron(key: &str, text: &str) -> Result<Schedule, ScheduleError> {
        let expr = text.trim();
        let shown = crate::util::quote_untrusted(expr, 80);
        const FORM: &str = "a cron expression has five fields: minute hour day-of-month month day-of-week (e.g. \"0 2 * * *\" for 02:00 every day, in UTC unless `timezone` is set)";
        let fields = expr.split_whitespace().count();
        if !expr.starts_with('@') && fields != 5 {
            return Err(invalid(
                key,
                format!("\"{shown}\" has {fields} fields; {FORM}"),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| invalid(key, format!("\"{shown}\" is not valid ({e}); {FORM}")))?;
        // A pattern that can never match (`0 0 31 2 *`) is an error now, not a silent
        // monitor that never runs.
        if cron
            .find_next_occurrence(&DateTime::<Utc>::UNIX_EPOCH, false)
            .is_err()
        {
            return Err(invalid(
                key,
                format!("\"{shown}\" never matches any time; {FORM}"),
            ));
        }
        Ok(Schedule::Cron {
            expr: expr.to_string(),
            cron: Box::new(cron),
            zone: CronZone::UTC,
        })
    }

    /// The cron schedule read in `zone` (a monitor's `timezone`, named by `key` in the
    /// error). An interval has no wall clock to read, so `timezone` with `every` (or with
    /// a kind's default interval) is an error rather than a setting silently ignored.
    pub fn with_zone(self, key: &str, zone: CronZone) -> Result<Schedule, ScheduleError> {
        match self {
            Schedule::Cron { expr, cron, .. } => Ok(Schedule::Cron { expr, cron, zone }),
            Schedule::Every { .. } => Err(invalid(
                key,
                "applies only to a cron `schedule`; this monitor runs on an interval (`every`, or its kind's default), which is the same in every time zone. Remove `timezone`, or set e.g. `schedule = \"0 2 * * *\"` with `timezone = \"Europe/Berlin\"`",
            )),
        }
    }

    /// A monitor's schedule from its settings: exactly one of `every` and `schedule`, or
    /// `default_every` (the kind's default) when neither is set. `prefix` is the monitor's
    /// key path (`monitors[0]`).
    pub fn from_settings(
        prefix: &str,
        every: Option<&str>,
        schedule: Option<&str>,
        default_every: Duration,
    ) -> Result<Schedule, ScheduleError> {
        match (every, schedule) {
            (Some(_), Some(_)) => Err(invalid(
                &format!("{prefix}.schedule"),
                "set either `every` (an interval) or `schedule` (a cron expression), not both",
            )),
            (Some(e), None) => Schedule::every(&format!("{prefix}.every"), e),
            (None, Some(s)) => Schedule::cron(&format!("{prefix}.schedule"), s),
            (None, None) => Ok(Schedule::Every {
                every: default_every.max(Duration::from_secs(1)),
            }),
        }
    }

    /// How the schedule reads in status output (`every 60s`, `cron "0 2 * * *" UTC`,
    /// `cron "0 2 * * *" Europe/Berlin`).
    pub fn describe(&self) -> String {
        match self {
            Schedule::Every { every } => format!("every {}", format_duration(*every)),
            Schedule::Cron { expr, zone, .. } => format!("cron \"{expr}\" {}", zone.name()),
        }
    }

    /// The jitter of `monitor`'s interval slots in ms (0 for cron): up to 10 % of the
    /// interval and at most 30 s, the same on every replica.
    pub fn jitter_ms(&self, monitor: &str) -> Millis {
        match self {
            Schedule::Every { every } => {
                let interval = every.as_millis() as Millis;
                let span = (interval * JITTER_SHARE / 100).min(JITTER_MAX_MS);
                if span == 0 {
                    0
                } else {
                    (fnv1a(monitor.as_bytes()) % (span as u64 + 1)) as Millis
                }
            }
            Schedule::Cron { .. } => 0,
        }
    }

    /// The slot a monitor is due at, given the slot of its last claimed run
    /// (`last_scheduled`, None if it never ran):
    /// - a slot that is due (at or before `now_ms`) and later than `last_scheduled` is
    ///   returned as is, the most recent one only: after downtime the missed runs happen
    ///   once, not once per missed slot. An interval monitor that never ran is due at once
    ///   (its current slot); a cron monitor that never ran waits for its next minute.
    /// - otherwise the next slot after both `now_ms` and `last_scheduled`: for an interval
    ///   the next multiple of the interval plus the jitter; for cron the next matching
    ///   minute in the schedule's zone (see the module's note on daylight saving time).
    pub fn next_after(
        &self,
        monitor: &str,
        now_ms: Millis,
        last_scheduled: Option<Millis>,
    ) -> Millis {
        match self {
            Schedule::Every { every } => {
                let interval = (every.as_millis() as Millis).max(1);
                let offset = self.jitter_ms(monitor);
                // The latest slot k * interval + offset at or before now.
                let latest = (now_ms - offset).div_euclid(interval) * interval + offset;
                match last_scheduled {
                    Some(last) if last >= latest => {
                        let from = last.max(now_ms);
                        ((from - offset).div_euclid(interval) + 1) * interval + offset
                    }
                    _ => latest,
                }
            }
            Schedule::Cron { cron, zone, .. } => {
                let now = zone.at(now_ms);
                if let Some(last) = last_scheduled
                    && let Ok(prev) = cron.find_previous_occurrence(&now, true)
                {
                    let prev = prev.timestamp_millis();
                    if prev > last {
                        return prev;
                    }
                }
                let from = zone.at(last_scheduled.map_or(now_ms, |l| l.max(now_ms)));
                cron.find_next_occurrence(&from, false)
                    .map(|t| t.timestamp_millis())
                    // Checked at parse time to match some time; a search that still
                    // fails (past year 9999) puts the monitor off for a day.
                    .unwrap_or(now_ms + 86_400_000)
            }
        }
    }
}

impl Schedule {
    /// The latest minute a cron schedule matches at or before `now_ms`, read in its zone
    /// (what a maintenance window's occurrence is); None for an interval.
    pub fn latest_at_or_before(&self, now_ms: Millis) -> Option<Millis> {
        match self {
            Schedule::Cron { cron, zone, .. } => cron
                .find_previous_occurrence(&zone.at(now_ms), true)
                .ok()
                .map(|t| t.timestamp_millis()),
            Schedule::Every { .. } => None,
        }
    }
}

impl FromStr for CronZone {
    type Err = String;
    /// An exact IANA name; anything else is refused with an example, and the closest name
    /// when one is close (`europe/berlin`, `Europe/Berln` -> `Europe/Berlin`).
    fn from_str(s: &str) -> Result<Self, String> {
        let name = s.trim();
        if let Ok(tz) = name.parse::<Tz>() {
            return Ok(CronZone(tz));
        }
        let shown = crate::util::quote_untrusted(name, 60);
        const EXAMPLE: &str = "write a name from the IANA time zone database, e.g. \"Europe/Berlin\", \"America/New_York\" or \"UTC\"";
        if name.is_empty() {
            return Err(format!("is empty; {EXAMPLE}"));
        }
        let lower = name.to_ascii_lowercase();
        let closest = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| {
                let d = strsim::damerau_levenshtein(&lower, &tz.name().to_ascii_lowercase());
                (d, tz.name())
            })
            .min()
            .filter(|(d, _)| *d <= 3);
        Err(match closest {
            Some((_, near)) => {
                format!(
                    "\"{shown}\" is not a known time zone (did you mean \"{near}\"?); {EXAMPLE}"
                )
            }
            None => format!("\"{shown}\" is not a known time zone; {EXAMPLE}"),
        })
    }
}

fn to_utc(ms: Millis) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// `90s` -> `90s`, `3600s` -> `1h`: the largest unit that divides the duration.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

/// FNV-1a (64 bit): a hash that stays the same across builds and machines, so every
/// replica derives the same jitter from a monitor's name.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// How one monitor run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The run completed and found nothing wrong.
    Ok,
    /// The run completed and found at least one problem.
    Problems,
    /// The run failed (the check could not be done).
    Error,
    /// The run took longer than its timeout and was cancelled.
    Timeout,
}

impl RunOutcome {
    pub const ALL: [RunOutcome; 4] = [
        RunOutcome::Ok,
        RunOutcome::Problems,
        RunOutcome::Error,
        RunOutcome::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Problems => "problems",
            RunOutcome::Error => "error",
            RunOutcome::Timeout => "timeout",
        }
    }

    pub fn parse(s: &str) -> Option<RunOutcome> {
        RunOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

#[cfg(test)]
mod tests;
