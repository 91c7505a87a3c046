//! `[[escalation]]` and `[escalation_defaults]`: who is told when nobody acknowledges an
//! alert. A rule applies to alerts at or above its `level` and is due `after` a duration
//! since the alert started firing ("15m", "1h", "4h") or on the `next_business_day = true`
//! at `business_time` ("09:00") in `timezone` (IANA, chrono-tz; Saturdays and Sundays
//! skipped). `contacts` are names or roles of `[[contacts]]` (an unknown one is an error).
//!
//! Without any `[[escalation]]` the operations manual's matrix applies. Its severities map
//! to our levels as: critical -> `critical` (and `emergency`, which is louder), high ->
//! `warning`, medium -> `info` (after 4 h), low -> `info` (the next business day). Rules
//! are "at or above": a critical alert nobody acknowledges reaches the security lead after
//! 15 min, the DevOps engineer after 1 h, the operations lead after 4 h and the team lead
//! the next business day. The default rules name ROLES; a step whose role no contact has
//! is skipped (`live = false` in `config check`). `[escalation_defaults] enabled = false`
//! turns escalation off.
//!
//! The same contacts serve the incidents' SLA escalation: each `[incidents]` `*_contact`
//! (a name or a role) is resolved here (`incident_contacts`; unresolved: nobody is told).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize, Serializer};

use super::ConfigError;
use super::contacts::{ContactConfig, resolve, resolve_known};
use super::incidents::IncidentsConfig;
use crate::alerts::Level;
use crate::clock::Millis;

const MAX_RULES: usize = 50;

/// One `[[escalation]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileEscalation {
    pub name: Option<String>,
    pub level: Option<String>,
    pub after: Option<String>,
    pub next_business_day: Option<bool>,
    pub business_time: Option<String>,
    pub timezone: Option<String>,
    pub contacts: Option<Vec<String>>,
}

/// `[escalation_defaults]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileEscalationDefaults {
    pub enabled: Option<bool>,
    pub business_time: Option<String>,
    pub timezone: Option<String>,
}

/// A local time of day in a time zone: when "the next business day" starts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BusinessTime {
    pub time: NaiveTime,
    pub zone: Tz,
}

impl Default for BusinessTime {
    fn default() -> Self {
        Self {
            time: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            zone: Tz::UTC,
        }
    }
}

impl fmt::Display for BusinessTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.time.format("%H:%M"), self.zone.name())
    }
}

impl fmt::Debug for BusinessTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl Serialize for BusinessTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl BusinessTime {
    /// `business_time` at the first weekday after the local day of `from_ms`. A local time
    /// that does not exist that day (a DST gap) moves forward by the gap; an ambiguous
    /// one (a DST overlap) is its earlier instant.
    pub fn next_business_day(&self, from_ms: Millis) -> Millis {
        let from = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(from_ms)
            .unwrap_or_default()
            .with_timezone(&self.zone);
        let mut day = from.date_naive();
        loop {
            day = day.succ_opt().unwrap_or(day);
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                break;
            }
        }
        self.at(day)
    }

    fn at(&self, day: NaiveDate) -> Millis {
        let mut local = day.and_time(self.time);
        for _ in 0..4 {
            if let Some(t) = self.zone.from_local_datetime(&local).earliest() {
                return t.timestamp_millis();
            }
            local += chrono::Duration::minutes(30);
        }
        self.zone
            .from_utc_datetime(&day.and_time(self.time))
            .timestamp_millis()
    }
}

/// One escalation step.
#[derive(Debug, Clone, Serialize)]
pub struct EscalationRule {
    pub name: String,
    /// Alerts at or above this level.
    pub level: Level,
    /// Due this long after the alert started firing ...
    pub after_secs: Option<u64>,
    /// ... or at this time of the next business day after it started firing.
    pub next_business_day: Option<BusinessTime>,
    /// As written: names or roles of `[[contacts]]`.
    pub contacts: Vec<String>,
    /// The contact names these resolve to (empty: the step is skipped).
    pub reaches: Vec<String>,
    /// Whether the step tells anyone.
    pub live: bool,
}

impl EscalationRule {
    /// When this step is due for an alert firing since `firing_ms`.
    pub fn due_ms(&self, firing_ms: Millis) -> Millis {
        match (self.after_secs, &self.next_business_day) {
            (Some(s), _) => firing_ms.saturating_add(s as i64 * 1000),
            (None, Some(b)) => b.next_business_day(firing_ms),
            (None, None) => firing_ms,
        }
    }

    /// How the step reads in a message: "for 15 min", "until the next business day
    /// (09:00 Europe/Berlin)".
    pub fn waited(&self) -> String {
        match (self.after_secs, &self.next_business_day) {
            (Some(s), _) => format!("for {}", human(s)),
            (None, Some(b)) => format!("until the next business day ({b})"),
            (None, None) => String::new(),
        }
    }
}

/// 900 -> "15 min", 3600 -> "1 h", 5400 -> "90 min", 86400 -> "1 d".
pub fn human(secs: u64) -> String {
    match secs {
        s if s > 0 && s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s > 0 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The escalation settings.
#[derive(Debug, Clone, Serialize)]
pub struct EscalationConfig {
    pub enabled: bool,
    /// True when no `[[escalation]]` was written and the manual's matrix applies.
    pub default_rules: bool,
    /// `[escalation_defaults]` `business_time` and `timezone`.
    pub business_time: BusinessTime,
    pub rules: Vec<EscalationRule>,
    /// Incident severity -> the contact names its SLA escalation tells.
    pub incident_contacts: BTreeMap<String, Vec<String>>,
}

/// The operations manual's matrix: (name, level, after, role); `None` = next business day.
const MATRIX: [(&str, Level, Option<u64>, &str); 4] = [
    ("critical-15m", Level::Critical, Some(900), "security lead"),
    ("warning-1h", Level::Warning, Some(3600), "DevOps engineer"),
    ("info-4h", Level::Info, Some(4 * 3600), "operations lead"),
    ("info-next-business-day", Level::Info, None, "team lead"),
];

fn business_time(
    key_time: &str,
    key_zone: &str,
    time: Option<&str>,
    zone: Option<&str>,
    base: BusinessTime,
) -> Result<BusinessTime, ConfigError> {
    let mut b = base;
    if let Some(t) = time {
        b.time = NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| {
            ConfigError::new(
                key_time,
                format!(
                    "`{}` is not a time of day; write HH:MM in 24 hours, e.g. \"09:00\"",
                    crate::util::quote_untrusted(t, 20)
                ),
            )
        })?;
    }
    if let Some(z) = zone {
        let cz = crate::monitor::CronZone::parse(key_zone, z).map_err(|e| {
            let crate::monitor::ScheduleError::Invalid { key, reason } = e;
            ConfigError::new(key, reason)
        })?;
        b.zone = cz.name().parse().unwrap_or(Tz::UTC);
    }
    Ok(b)
}

pub(super) fn load(
    rules: Vec<FileEscalation>,
    defaults: Option<FileEscalationDefaults>,
    contacts: &[ContactConfig],
    incidents: &IncidentsConfig,
) -> Result<EscalationConfig, ConfigError> {
    let d = defaults.unwrap_or_default();
    let bt = business_time(
        "escalation_defaults.business_time",
        "escalation_defaults.timezone",
        d.business_time.as_deref(),
        d.timezone.as_deref(),
        BusinessTime::default(),
    )?;
    let enabled = d.enabled.unwrap_or(true);
    let names = |c: Vec<&ContactConfig>| c.into_iter().map(|c| c.name.clone()).collect();
    if rules.len() > MAX_RULES {
        return Err(ConfigError::new(
            "escalation",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    let default_rules = rules.is_empty();
    let mut out: Vec<EscalationRule> = Vec::new();
    if default_rules {
        for (name, level, after, role) in MATRIX {
            let reaches: Vec<String> = names(resolve(contacts, role));
            out.push(EscalationRule {
                name: name.into(),
                level,
                after_secs: after,
                next_business_day: after.is_none().then_some(bt),
                contacts: vec![role.into()],
                live: !reaches.is_empty(),
                reaches,
            });
        }
    }
    for (i, r) in rules.into_iter().enumerate() {
        let rule = rule(i, r, bt, contacts)?;
        if out.iter().any(|o| o.name == rule.name) {
            return Err(ConfigError::new(
                format!("escalation[{i}].name"),
                format!("`{}` is used by an earlier rule", rule.name),
            ));
        }
        out.push(rule);
    }
    if !enabled {
        out.clear();
    }
    let incident_contacts = ["critical", "high", "medium", "low"]
        .iter()
        .zip(&incidents.contacts)
        .map(|(sev, who)| (sev.to_string(), names(resolve(contacts, who))))
        .collect();
    Ok(EscalationConfig {
        enabled,
        default_rules,
        business_time: bt,
        rules: out,
        incident_contacts,
    })
}

fn rule(
    i: usize,
    r: FileEscalation,
    bt: BusinessTime,
    contacts: &[ContactConfig],
) -> Result<EscalationRule, ConfigError> {
    let at = |k: &str| format!("escalation[{i}].{k}");
    let name = r
        .name
        .ok_or_else(|| ConfigError::new(at("name"), "is required"))?;
    super::check_slug(at("name"), &name)?;
    const LEVELS: &str = "`info`, `warning`, `critical`, `emergency`";
    let level = match r.level.as_deref() {
        None => {
            return Err(ConfigError::new(
                at("level"),
                format!("is required (alerts at or above it): {LEVELS}"),
            ));
        }
        Some(l) => Level::parse(l).ok_or_else(|| {
            ConfigError::new(
                at("level"),
                format!(
                    "`{}` is not a level; allowed: {LEVELS}",
                    crate::util::quote_untrusted(l, 20)
                ),
            )
        })?,
    };
    let nbd = r.next_business_day.unwrap_or(false);
    let (after_secs, next_business_day) = match (&r.after, nbd) {
        (Some(_), true) => {
            return Err(ConfigError::new(
                at("after"),
                "set `after` or `next_business_day = true`, not both",
            ));
        }
        (Some(a), false) => {
            let d = crate::monitor::parse_duration(&at("after"), a).map_err(|e| {
                let crate::monitor::ScheduleError::Invalid { key, reason } = e;
                ConfigError::new(key, reason)
            })?;
            if d.as_secs() < 60 {
                return Err(ConfigError::new(at("after"), "must be at least 1m"));
            }
            (Some(d.as_secs()), None)
        }
        (None, true) => {
            let b = business_time(
                &at("business_time"),
                &at("timezone"),
                r.business_time.as_deref(),
                r.timezone.as_deref(),
                bt,
            )?;
            (None, Some(b))
        }
        (None, false) => {
            return Err(ConfigError::new(
                at("after"),
                "is required: a duration such as \"15m\", \"1h\" or \"4h\", or else \
                 `next_business_day = true`",
            ));
        }
    };
    if !nbd {
        for (k, set) in [
            ("business_time", r.business_time.is_some()),
            ("timezone", r.timezone.is_some()),
        ] {
            if set {
                return Err(ConfigError::new(
                    at(k),
                    "applies only with `next_business_day = true`",
                ));
            }
        }
    }
    let written = r.contacts.unwrap_or_default();
    if written.is_empty() {
        return Err(ConfigError::new(
            at("contacts"),
            "is required: names or roles of [[contacts]]",
        ));
    }
    let mut reaches: Vec<String> = Vec::new();
    for (j, who) in written.iter().enumerate() {
        let found = resolve_known(contacts, who)
            .map_err(|p| ConfigError::new(format!("escalation[{i}].contacts[{j}]"), p))?;
        for c in found {
            if !reaches.contains(&c.name) {
                reaches.push(c.name.clone());
            }
        }
    }
    Ok(EscalationRule {
        name,
        level,
        after_secs,
        next_business_day,
        contacts: written,
        reaches,
        live: true,
    })
}

#[cfg(test)]
#[path = "escalation_tests.rs"]
mod tests;
