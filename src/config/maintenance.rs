//! `[[maintenance]]`: recurring maintenance windows. Each has a `name`, a 5-field cron
//! `schedule` read in `timezone` (UTC by default; the monitors' own cron and zone parsing,
//! so daylight saving time follows the same rules), a `duration` and `matchers`. A window
//! is active during [occurrence, occurrence + duration): the alerts its matchers select are
//! muted like by a silence (`emergency` ones only when named explicitly).
//!
//! ```toml
//! [[maintenance]]
//! name = "sunday-patching"
//! schedule = "0 2 * * 0"
//! timezone = "Europe/Berlin"
//! duration = "2h"
//! matchers = ["monitor=~wazuh|uptime", "env=prod"]
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::ConfigError;
use super::monitors::ScheduleSetting;
use crate::alerts::matcher::{self, Matcher};
use crate::clock::Millis;
use crate::monitor::{CronZone, Schedule, ScheduleError, format_duration, parse_duration};

/// At most this many windows.
const MAX_WINDOWS: usize = 100;
/// The longest window.
const MAX_DURATION: Duration = Duration::from_secs(31 * 86_400);

/// One `[[maintenance]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMaintenance {
    pub name: Option<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub duration: Option<String>,
    pub matchers: Option<Vec<String>>,
}

/// One validated maintenance window.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceWindow {
    pub name: String,
    /// `cron "0 2 * * 0" Europe/Berlin`.
    pub schedule: ScheduleSetting,
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    pub matchers: Vec<Matcher>,
}

impl PartialEq for MaintenanceWindow {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
            && self.schedule.0 == o.schedule.0
            && self.duration == o.duration
            && self.matchers == o.matchers
    }
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

impl MaintenanceWindow {
    /// When the window that is open at `now_ms` closes (None: not open). The latest
    /// occurrence at or before now decides, so a window longer than its period stays open.
    pub fn active_until(&self, now_ms: Millis) -> Option<Millis> {
        let start = self.schedule.0.latest_at_or_before(now_ms)?;
        let end = start.saturating_add(self.duration.as_millis() as Millis);
        (now_ms >= start && now_ms < end).then_some(end)
    }

    /// A window from its parts (tests and callers that build rules in code).
    pub fn new(
        name: &str,
        cron: &str,
        zone: &str,
        duration: &str,
        matchers: &[&str],
    ) -> Result<Self, ConfigError> {
        parse_one(
            "maintenance[0]",
            FileMaintenance {
                name: Some(name.into()),
                schedule: Some(cron.into()),
                timezone: Some(zone.into()),
                duration: Some(duration.into()),
                matchers: Some(matchers.iter().map(|m| m.to_string()).collect()),
            },
        )
    }
}

fn schedule_error(e: ScheduleError) -> ConfigError {
    let ScheduleError::Invalid { key, reason } = e;
    ConfigError::new(key, reason)
}

fn parse_one(prefix: &str, f: FileMaintenance) -> Result<MaintenanceWindow, ConfigError> {
    let key = |k: &str| format!("{prefix}.{k}");
    let name = f
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ConfigError::new(key("name"), "is required (e.g. \"sunday-patching\")"))?;
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ConfigError::new(
            key("name"),
            "must be 1-100 printable characters",
        ));
    }
    let cron = f.schedule.ok_or_else(|| {
        ConfigError::new(
            key("schedule"),
            "is required: a 5-field cron expression for when the window opens (e.g. \"0 2 * * 0\", Sundays 02:00)",
        )
    })?;
    let mut schedule = Schedule::cron(&key("schedule"), &cron).map_err(schedule_error)?;
    if let Some(tz) = &f.timezone {
        let zone = CronZone::parse(&key("timezone"), tz).map_err(schedule_error)?;
        schedule = schedule
            .with_zone(&key("timezone"), zone)
            .map_err(schedule_error)?;
    }
    let text = f.duration.ok_or_else(|| {
        ConfigError::new(
            key("duration"),
            "is required: how long the window stays open (e.g. \"2h\")",
        )
    })?;
    let duration = parse_duration(&key("duration"), &text).map_err(schedule_error)?;
    if duration < Duration::from_secs(60) || duration > MAX_DURATION {
        return Err(ConfigError::new(
            key("duration"),
            format!(
                "\"{}\" is out of range; a window lasts from 1m to 31d",
                crate::util::quote_untrusted(&text, 20)
            ),
        ));
    }
    let texts = f.matchers.unwrap_or_default();
    let matchers = matcher::parse_list(&key("matchers"), &texts)
        .map_err(|(k, problem)| ConfigError::new(k, problem))?;
    Ok(MaintenanceWindow {
        name,
        schedule: ScheduleSetting(schedule),
        duration,
        matchers,
    })
}

/// Every `[[maintenance]]` entry; names must be unique.
pub(super) fn load(entries: Vec<FileMaintenance>) -> Result<Vec<MaintenanceWindow>, ConfigError> {
    if entries.len() > MAX_WINDOWS {
        return Err(ConfigError::new(
            "maintenance",
            format!("{} entries; at most {MAX_WINDOWS}", entries.len()),
        ));
    }
    let mut out: Vec<MaintenanceWindow> = Vec::with_capacity(entries.len());
    for (i, f) in entries.into_iter().enumerate() {
        let w = parse_one(&format!("maintenance[{i}]"), f)?;
        if out.iter().any(|o| o.name == w.name) {
            return Err(ConfigError::new(
                format!("maintenance[{i}].name"),
                format!(
                    "\"{}\" is used by another window; names must be unique",
                    w.name
                ),
            ));
        }
        out.push(w);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Millis {
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as Millis
    }

    #[test]
    fn a_window_is_open_from_its_occurrence_for_its_duration_in_local_time() {
        let w =
            MaintenanceWindow::new("nightly", "0 2 * * *", "Europe/Berlin", "2h", &["env=prod"])
                .unwrap();
        // Winter (CET, UTC+1): 02:00-04:00 local is 01:00-03:00 UTC.
        assert_eq!(w.active_until(at("2026-01-15T00:59:00Z")), None);
        assert_eq!(
            w.active_until(at("2026-01-15T01:00:00Z")),
            Some(at("2026-01-15T03:00:00Z"))
        );
        assert_eq!(
            w.active_until(at("2026-01-15T02:59:59Z")),
            Some(at("2026-01-15T03:00:00Z"))
        );
        assert_eq!(
            w.active_until(at("2026-01-15T03:00:00Z")),
            None,
            "the end is exclusive"
        );
        // Summer (CEST, UTC+2): 02:00-04:00 local is 00:00-02:00 UTC.
        assert_eq!(
            w.active_until(at("2026-07-15T00:30:00Z")),
            Some(at("2026-07-15T02:00:00Z"))
        );
        assert_eq!(w.active_until(at("2026-07-15T02:30:00Z")), None);
    }

    #[test]
    fn daylight_saving_days_keep_one_window_of_the_full_duration() {
        let w =
            MaintenanceWindow::new("nightly", "0 2 * * *", "Europe/Berlin", "2h", &["env=prod"])
                .unwrap();
        // 2026-03-29: 02:00 does not exist (02:00 CET -> 03:00 CEST); croner opens the
        // window at the first minute after the gap, 03:00 CEST = 01:00 UTC, for 2 h.
        assert_eq!(w.active_until(at("2026-03-29T00:30:00Z")), None);
        assert_eq!(
            w.active_until(at("2026-03-29T01:00:00Z")),
            Some(at("2026-03-29T03:00:00Z"))
        );
        assert_eq!(w.active_until(at("2026-03-29T03:00:00Z")), None);
        // 2026-10-25: 02:00 happens twice (CEST then CET); the window opens at the first,
        // 02:00 CEST = 00:00 UTC, and lasts 2 h of real time.
        assert_eq!(w.active_until(at("2026-10-24T23:59:00Z")), None);
        assert_eq!(
            w.active_until(at("2026-10-25T00:00:00Z")),
            Some(at("2026-10-25T02:00:00Z"))
        );
        assert_eq!(w.active_until(at("2026-10-25T02:00:00Z")), None);
    }

    #[test]
    fn a_window_longer_than_its_period_stays_open() {
        let w =
            MaintenanceWindow::new("always", "0 * * * *", "UTC", "90m", &["monitor=x"]).unwrap();
        assert_eq!(
            w.active_until(at("2026-01-15T10:45:00Z")),
            Some(at("2026-01-15T11:30:00Z"))
        );
    }

    #[test]
    fn bad_entries_name_the_key() {
        let e = |f: FileMaintenance| load(vec![f]).unwrap_err();
        let ok = || FileMaintenance {
            name: Some("w".into()),
            schedule: Some("0 2 * * *".into()),
            timezone: None,
            duration: Some("2h".into()),
            matchers: Some(vec!["env=prod".into()]),
        };
        assert_eq!(
            load(vec![ok()]).unwrap()[0].duration,
            Duration::from_secs(7200)
        );
        let err = e(FileMaintenance { name: None, ..ok() });
        assert_eq!(err.key, "maintenance[0].name");
        let err = e(FileMaintenance {
            schedule: Some("0 2 * *".into()),
            ..ok()
        });
        assert_eq!(err.key, "maintenance[0].schedule");
        assert!(err.problem.contains("4 fields"), "{}", err.problem);
        let err = e(FileMaintenance {
            timezone: Some("Europe/Berln".into()),
            ..ok()
        });
        assert_eq!(err.key, "maintenance[0].timezone");
        let err = e(FileMaintenance {
            duration: Some("40d".into()),
            ..ok()
        });
        assert_eq!(err.key, "maintenance[0].duration");
        assert!(err.problem.contains("1m to 31d"), "{}", err.problem);
        let err = e(FileMaintenance {
            duration: None,
            ..ok()
        });
        assert_eq!(err.key, "maintenance[0].duration");
        let err = e(FileMaintenance {
            matchers: Some(vec!["env=prod".into(), "env".into()]),
            ..ok()
        });
        assert_eq!(err.key, "maintenance[0].matchers[1]");
        let err = e(FileMaintenance {
            matchers: None,
            ..ok()
        });
        assert_eq!(err.key, "maintenance[0].matchers");
        let err = load(vec![ok(), ok()]).unwrap_err();
        assert_eq!(err.key, "maintenance[1].name");
    }
}
