//! The `[[monitors]]` section: each entry's common keys (`name`, `kind`, `every` or
//! `schedule` with its optional `timezone`, `enabled`, `labels`, `timeout`, the lifecycle's
//! thresholds and durations, `routes`) parsed here, every other key handed to the kind's own parser
//! ([`crate::monitor::kinds`]); unknown keys refused. Errors name the key as
//! `monitors[<i>].<key>`. A [`MonitorConfig`] builds the lifecycle's [`MonitorPolicy`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::ConfigError;
use super::contacts::ContactConfig;
use super::routing::{contact_ref, contact_targets};
use crate::alerts::Level;
use crate::alerts::lifecycle::MonitorPolicy;
use crate::checks::scan::Scope;
use crate::monitor::kinds::{self, KINDS, KeyError, KindContext, KindKeys, KindSettings};
use crate::monitor::{CronZone, Schedule, ScheduleError, format_duration};
use crate::store::alerts::Target;

/// At most this many monitors, labels per monitor, and characters per label.
pub const MAX_MONITORS: usize = 5_000;
pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_LEN: usize = 256;
/// The default per-run timeout (and its ceiling for interval monitors).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A monitor's schedule as written (`every 60s`, `cron "0 2 * * *" Europe/Berlin`) and
/// parsed.
#[derive(Clone, PartialEq)]
pub struct ScheduleSetting(pub Schedule);

impl std::fmt::Debug for ScheduleSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.describe())
    }
}

impl Serialize for ScheduleSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.describe())
    }
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// One validated `[[monitors]]` entry.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorConfig {
    pub name: String,
    pub schedule: ScheduleSetting,
    pub enabled: bool,
    pub labels: BTreeMap<String, String>,
    /// A run longer than this is cancelled.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    #[serde(rename = "for", serialize_with = "ser_duration")]
    pub for_duration: Duration,
    #[serde(serialize_with = "ser_opt_duration")]
    pub repeat_interval: Option<Duration>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub group_wait: Option<Duration>,
    /// Level -> channel names and `contact:<name or role>` entries as written (checked
    /// against `[[channels]]` and `[[contacts]]` in [`check_routes`]).
    pub routes: BTreeMap<Level, Vec<String>>,
    /// Level -> the `contact:` entries resolved to (channel, contact) targets (shown by
    /// `config check`: names only, never an address).
    pub contact_routes: BTreeMap<Level, Vec<Target>>,
    /// The kind and its own settings.
    pub settings: KindSettings,
}

impl MonitorConfig {
    pub fn kind(&self) -> &'static str {
        self.settings.kind()
    }

    /// The lifecycle's view of this monitor.
    pub fn policy(&self) -> MonitorPolicy {
        let mut p = MonitorPolicy::new(&self.name);
        p.labels = self.labels.clone();
        p.failure_threshold = self.failure_threshold;
        p.success_threshold = self.success_threshold;
        p.for_duration = self.for_duration;
        if let Some(r) = self.repeat_interval {
            p.repeat_interval = r;
        }
        if let Some(g) = self.group_wait {
            p.group_wait = g;
        }
        p.routes = self
            .routes
            .iter()
            .map(|(l, entries)| {
                let channels = entries.iter().filter(|e| contact_ref(e).is_none());
                (*l, channels.cloned().collect())
            })
            .collect();
        p.contact_routes = self.contact_routes.clone();
        p.for_by_code = self.for_by_code();
        p
    }

    /// The kind's per-code `for` (host metrics); codes not listed use `for`.
    pub fn for_by_code(&self) -> BTreeMap<String, Duration> {
        self.settings.for_by_code()
    }
}

fn key_error(e: KeyError) -> ConfigError {
    ConfigError::new(e.key, e.problem)
}

fn schedule_error(e: ScheduleError) -> ConfigError {
    let ScheduleError::Invalid { key, reason } = e;
    ConfigError::new(key, reason)
}

/// Parse every entry; names must be unique.
pub(super) fn load(
    entries: Vec<toml::Table>,
    scan_scope: &Scope,
) -> Result<Vec<MonitorConfig>, ConfigError> {
    if entries.len() > MAX_MONITORS {
        return Err(ConfigError::new(
            "monitors",
            format!("{} entries; at most {MAX_MONITORS}", entries.len()),
        ));
    }
    let cx = KindContext { scan_scope };
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, table) in entries.into_iter().enumerate() {
        let m = entry(i, table, &cx)?;
        if !seen.insert(m.name.clone()) {
            return Err(ConfigError::new(
                format!("monitors[{i}].name"),
                format!(
                    "`{}` is used by an earlier monitor; every monitor needs its own name",
                    m.name
                ),
            ));
        }
        out.push(m);
    }
    Ok(out)
}

/// A monitor's `routes` name only channels `[[channels]]` defines (or the built-in `log`)
/// and `contact:<name or role>` of `[[contacts]]`; then every level the monitor does not
/// route itself takes `[routing]`'s entries, so `routes` holds the effective routes and
/// `contact_routes` their contacts' targets.
pub(super) fn check_routes(
    monitors: &mut [MonitorConfig],
    notify: &super::NotifyConfig,
    contacts: &[ContactConfig],
) -> Result<(), ConfigError> {
    for m in monitors.iter_mut() {
        for level in Level::ALL {
            m.routes
                .entry(level)
                .or_insert_with(|| notify.route(level).to_vec());
        }
    }
    for (i, m) in monitors.iter_mut().enumerate() {
        let mut resolved: BTreeMap<Level, Vec<Target>> = BTreeMap::new();
        for (level, entries) in &m.routes {
            let key = || format!("monitors[{i}].routes.{}", level.as_str());
            for who in entries.iter().filter_map(|e| contact_ref(e)) {
                if who.is_empty() {
                    return Err(ConfigError::new(
                        key(),
                        "`contact:` needs a contact's name or role, e.g. `contact:security lead`",
                    ));
                }
                let targets =
                    contact_targets(who, contacts).map_err(|p| ConfigError::new(key(), p))?;
                let level_targets = resolved.entry(*level).or_default();
                for t in targets {
                    if !level_targets.contains(&t) {
                        level_targets.push(t);
                    }
                }
            }
            let channels = entries.iter().filter(|e| contact_ref(e).is_none());
            if let Some(c) = channels.clone().find(|c| !notify.has_channel(c)) {
                return Err(ConfigError::new(
                    format!("monitors[{i}].routes.{}", level.as_str()),
                    format!(
                        "no channel named `{}`; define it in [[channels]] (a contact is \
                         written `contact:<name or role>`)",
                        crate::util::quote_untrusted(c, 64)
                    ),
                ));
            }
        }
        m.contact_routes = resolved;
    }
    Ok(())
}

/// `[a-z0-9_-]`, 1 to 64 characters.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "`{}` may contain only a-z, 0-9, `_` and `-`",
            crate::util::quote_untrusted(name, 64)
        ));
    }
    Ok(())
}

fn entry(i: usize, table: toml::Table, cx: &KindContext) -> Result<MonitorConfig, ConfigError> {
    let mut k = KindKeys::new(format!("monitors[{i}]"), table);
    let at = |key: &str| format!("monitors[{i}].{key}");
    let name = k
        .string("name")
        .map_err(key_error)?
        .ok_or_else(|| ConfigError::new(at("name"), "is required (e.g. name = \"web-uptime\")"))?;
    check_name(&name).map_err(|p| ConfigError::new(at("name"), p))?;
    let kind = k.string("kind").map_err(key_error)?.ok_or_else(|| {
        ConfigError::new(
            at("kind"),
            format!("is required; one of {}", KINDS.join(", ")),
        )
    })?;
    let Some(defaults) = kinds::defaults(&kind) else {
        return Err(ConfigError::new(
            at("kind"),
            format!(
                "`{}` is not a monitor kind; allowed: {}",
                crate::util::quote_untrusted(&kind, 40),
                KINDS.join(", ")
            ),
        ));
    };
    let every = k.string("every").map_err(key_error)?;
    let cron = k.string("schedule").map_err(key_error)?;
    let timezone = k.string("timezone").map_err(key_error)?;
    let prefix = k.prefix().to_string();
    let mut schedule = match (&every, &cron, defaults.schedule) {
        (None, None, Some(default_cron)) => Schedule::cron(&at("schedule"), default_cron),
        _ => Schedule::from_settings(&prefix, every.as_deref(), cron.as_deref(), defaults.every),
    }
    .map_err(schedule_error)?;
    if let Some(tz) = &timezone {
        let key = at("timezone");
        let zone = CronZone::parse(&key, tz).map_err(schedule_error)?;
        schedule = schedule.with_zone(&key, zone).map_err(schedule_error)?;
    }
    let enabled = k.boolean("enabled").map_err(key_error)?.unwrap_or(true);
    let labels = k
        .string_map("labels")
        .map_err(key_error)?
        .unwrap_or_default();
    if labels.len() > MAX_LABELS {
        return Err(ConfigError::new(
            at("labels"),
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    for (lk, lv) in &labels {
        check_name(lk).map_err(|p| {
            ConfigError::new(at(&format!("labels.{lk}")), format!("label name {p}"))
        })?;
        if lv.len() > MAX_LABEL_LEN || lv.chars().any(char::is_control) {
            return Err(ConfigError::new(
                at(&format!("labels.{lk}")),
                format!("must be at most {MAX_LABEL_LEN} characters without control characters"),
            ));
        }
    }
    let timeout = match k.duration("timeout").map_err(key_error)? {
        Some(t) if t.is_zero() => {
            return Err(ConfigError::new(at("timeout"), "must be longer than 0s"));
        }
        Some(t) => t,
        None => match &schedule {
            Schedule::Every { every } => (*every).min(DEFAULT_TIMEOUT),
            Schedule::Cron { .. } => DEFAULT_TIMEOUT,
        },
    };
    let threshold = |k: &mut KindKeys, key: &str, default: u32| -> Result<u32, ConfigError> {
        Ok(k.integer_in(key, 1..=1000)
            .map_err(key_error)?
            .map_or(default, |v| v as u32))
    };
    let failure_threshold = threshold(&mut k, "failure_threshold", defaults.failure_threshold)?;
    let success_threshold = threshold(&mut k, "success_threshold", defaults.success_threshold)?;
    let for_duration = k
        .duration("for")
        .map_err(key_error)?
        .unwrap_or(Duration::ZERO);
    let repeat_interval = k.duration("repeat_interval").map_err(key_error)?;
    let group_wait = k.duration("group_wait").map_err(key_error)?;
    let mut routes = BTreeMap::new();
    for (level, channels) in k.list_map("routes").map_err(key_error)?.unwrap_or_default() {
        let key = at(&format!("routes.{level}"));
        let l = Level::parse(&level).ok_or_else(|| {
            ConfigError::new(
                &key,
                format!(
                    "`{}` is not a level; allowed: info, warning, critical, emergency",
                    crate::util::quote_untrusted(&level, 40)
                ),
            )
        })?;
        if channels.iter().any(|c| c.trim().is_empty()) {
            return Err(ConfigError::new(key, "has an empty channel name"));
        }
        routes.insert(l, channels);
    }
    let settings = KindSettings::parse(&kind, &mut k, cx).map_err(key_error)?;
    k.finish().map_err(key_error)?;
    let m = MonitorConfig {
        name,
        schedule: ScheduleSetting(schedule),
        enabled,
        labels,
        timeout,
        failure_threshold,
        success_threshold,
        for_duration,
        repeat_interval,
        group_wait,
        routes,
        contact_routes: BTreeMap::new(),
        settings,
    };
    m.policy()
        .validate()
        .map_err(|e| ConfigError::new(at("name"), e.to_string()))?;
    Ok(m)
}

#[cfg(test)]
#[path = "monitors_tests.rs"]
mod tests;
