//! Monitor kinds: the kind-specific settings of a `[[monitors]]` entry ([`KindSettings`],
//! parsed from the keys the common part of the entry leaves over, see [`KindKeys`]) and
//! one `observe` per kind that runs the existing check and maps its report into alert
//! [`Observation`]s ([`KindRun`]). One file per kind; this file owns the shared reader,
//! the enum and the dispatch.

pub mod certificates;
pub mod connections;
pub mod host;
pub mod scan;
pub mod security_events;
pub mod self_check;
pub mod uptime;
pub mod wazuh;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::alerts::Level;
use crate::checks::Severity;
use crate::checks::scan::Scope;
use crate::context::AppContext;

pub use certificates::CertificatesSettings;
pub use connections::ConnectionsSettings;
pub use host::HostSettings;
pub use scan::ScanSettings;
pub use security_events::SecurityEventsSettings;
pub use self_check::SelfSettings;
pub use uptime::UptimeSettings;
pub use wazuh::WazuhSettings;

/// The kinds a monitor may have, as written in `kind = "..."`.
pub const KINDS: &[&str] = &[
    "certificates",
    "uptime",
    "wazuh",
    "host",
    "connections",
    "security_events",
    "scan",
    "self",
];

/// What one run of a monitor saw: the engine's type, so a kind's run goes to the
/// lifecycle as is.
pub use super::engine::KindRun;

/// A bad kind setting: the full key (`monitors[2].url`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub key: String,
    pub problem: String,
}

impl From<crate::checks::ArgError> for KeyError {
    fn from(e: crate::checks::ArgError) -> Self {
        KeyError {
            key: e.argument,
            problem: e.reason,
        }
    }
}

/// The keys of one `[[monitors]]` entry, taken one by one; what is left at the end is an
/// unknown key. `prefix` is `monitors[<i>]`.
pub struct KindKeys {
    prefix: String,
    table: toml::Table,
}

impl KindKeys {
    pub fn new(prefix: impl Into<String>, table: toml::Table) -> Self {
        KindKeys {
            prefix: prefix.into(),
            table,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full name of `key` (`monitors[0].url`).
    pub fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    pub fn error(&self, key: &str, problem: impl Into<String>) -> KeyError {
        KeyError {
            key: self.key(key),
            problem: problem.into(),
        }
    }

    fn take(&mut self, key: &str) -> Option<toml::Value> {
        self.table.remove(key)
    }

    fn wrong(&self, key: &str, want: &str, got: &toml::Value) -> KeyError {
        self.error(key, format!("must be {want}, not {}", got.type_str()))
    }

    pub fn string(&mut self, key: &str) -> Result<Option<String>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(key, "a string", &v)),
        }
    }

    pub fn boolean(&mut self, key: &str) -> Result<Option<bool>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(v) => Err(self.wrong(key, "true or false", &v)),
        }
    }

    pub fn integer(&mut self, key: &str) -> Result<Option<i64>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(i)),
            Some(v) => Err(self.wrong(key, "a whole number", &v)),
        }
    }

    /// A whole number within `range`.
    pub fn integer_in(
        &mut self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, KeyError> {
        match self.integer(key)? {
            Some(i) if !range.contains(&i) => Err(self.error(
                key,
                format!(
                    "must be between {} and {} (not {i})",
                    range.start(),
                    range.end()
                ),
            )),
            other => Ok(other),
        }
    }

    pub fn number(&mut self, key: &str) -> Result<Option<f64>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Float(f)) => Ok(Some(f)),
            Some(toml::Value::Integer(i)) => Ok(Some(i as f64)),
            Some(v) => Err(self.wrong(key, "a number", &v)),
        }
    }

    /// A percentage, 0 to 100.
    pub fn percent(&mut self, key: &str) -> Result<Option<f64>, KeyError> {
        match self.number(key)? {
            Some(p) if !(p.is_finite() && (0.0..=100.0).contains(&p)) => {
                Err(self.error(key, format!("must be a percentage from 0 to 100 (not {p})")))
            }
            other => Ok(other),
        }
    }

    pub fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::String(s) => Ok(s),
                    other => Err(self.wrong(&format!("{key}[{i}]"), "a string", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong(key, "a list of strings", &v)),
        }
    }

    pub fn integers(&mut self, key: &str) -> Result<Option<Vec<i64>>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::Integer(n) => Ok(n),
                    other => Err(self.wrong(&format!("{key}[{i}]"), "a whole number", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong(key, "a list of numbers", &v)),
        }
    }

    /// A table of strings (`labels = { team = "sec" }`).
    pub fn string_map(&mut self, key: &str) -> Result<Option<BTreeMap<String, String>>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => t
                .into_iter()
                .map(|(k, v)| match v {
                    toml::Value::String(s) => Ok((k, s)),
                    other => Err(self.wrong(&format!("{key}.{k}"), "a string", &other)),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong(key, "a table of strings", &v)),
        }
    }

    /// A table of string lists (`routes = { critical = ["ops"] }`).
    pub fn list_map(
        &mut self,
        key: &str,
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => {
                let mut out = BTreeMap::new();
                for (k, v) in t {
                    let toml::Value::Array(items) = v else {
                        return Err(self.wrong(&format!("{key}.{k}"), "a list of strings", &v));
                    };
                    let mut list = Vec::new();
                    for (i, item) in items.into_iter().enumerate() {
                        match item {
                            toml::Value::String(s) => list.push(s),
                            other => {
                                return Err(self.wrong(
                                    &format!("{key}.{k}[{i}]"),
                                    "a string",
                                    &other,
                                ));
                            }
                        }
                    }
                    out.insert(k, list);
                }
                Ok(Some(out))
            }
            Some(v) => Err(self.wrong(key, "a table of channel lists", &v)),
        }
    }

    /// A duration (`"15m"`) by the config's duration grammar.
    pub fn duration(&mut self, key: &str) -> Result<Option<Duration>, KeyError> {
        let full = self.key(key);
        match self.string(key)? {
            None => Ok(None),
            Some(s) => super::parse_duration(&full, &s).map(Some).map_err(|e| {
                let super::ScheduleError::Invalid { key, reason } = e;
                KeyError {
                    key,
                    problem: reason,
                }
            }),
        }
    }

    /// Refuse whatever key was not taken.
    pub fn finish(self) -> Result<(), KeyError> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(k) => Err(KeyError {
                key: format!("{}.{}", self.prefix, crate::util::quote_untrusted(k, 64)),
                problem: "unknown key for this kind of monitor".to_string(),
            }),
        }
    }
}

/// What the kind parsers may need from the rest of the configuration.
pub struct KindContext<'a> {
    /// scan_host's scope: a scan monitor's targets must be inside it.
    pub scan_scope: &'a Scope,
}

/// The settings of one monitor's kind.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KindSettings {
    Certificates(CertificatesSettings),
    Uptime(UptimeSettings),
    Wazuh(WazuhSettings),
    Host(HostSettings),
    Connections(ConnectionsSettings),
    SecurityEvents(SecurityEventsSettings),
    Scan(ScanSettings),
    /// `kind = "self"`: secops-mcp's own refusals, tool error rate and latency.
    #[serde(rename = "self")]
    SelfCheck(SelfSettings),
}

/// Defaults a kind gives the common settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KindDefaults {
    pub every: Duration,
    /// A cron schedule used when neither `every` nor `schedule` is set.
    pub schedule: Option<&'static str>,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

impl KindDefaults {
    const fn every(every: Duration) -> Self {
        KindDefaults {
            every,
            schedule: None,
            failure_threshold: 1,
            success_threshold: 1,
        }
    }
}

/// The defaults of `kind` (a name from [`KINDS`]).
pub fn defaults(kind: &str) -> Option<KindDefaults> {
    let secs = Duration::from_secs;
    Some(match kind {
        "certificates" => KindDefaults::every(secs(6 * 3600)),
        "uptime" => KindDefaults {
            failure_threshold: 3,
            success_threshold: 2,
            ..KindDefaults::every(secs(60))
        },
        "wazuh" | "security_events" | "self" => KindDefaults::every(secs(60)),
        "host" | "connections" => KindDefaults::every(secs(60)),
        "scan" => KindDefaults {
            schedule: Some("0 2 * * *"),
            ..KindDefaults::every(secs(86_400))
        },
        _ => return None,
    })
}

impl KindSettings {
    /// Parse the kind keys of an entry; `kind` was checked against [`KINDS`].
    pub fn parse(kind: &str, keys: &mut KindKeys, cx: &KindContext) -> Result<Self, KeyError> {
        Ok(match kind {
            "certificates" => KindSettings::Certificates(CertificatesSettings::parse(keys)?),
            "uptime" => KindSettings::Uptime(UptimeSettings::parse(keys)?),
            "wazuh" => KindSettings::Wazuh(WazuhSettings::parse(keys)?),
            "host" => KindSettings::Host(HostSettings::parse(keys)?),
            "connections" => KindSettings::Connections(ConnectionsSettings::parse(keys)?),
            "security_events" => KindSettings::SecurityEvents(SecurityEventsSettings::parse(keys)?),
            "scan" => KindSettings::Scan(ScanSettings::parse(keys, cx.scan_scope)?),
            "self" => KindSettings::SelfCheck(SelfSettings::parse(keys)?),
            other => {
                return Err(keys.error(
                    "kind",
                    format!(
                        "`{}` is not a monitor kind; allowed: {}",
                        crate::util::quote_untrusted(other, 40),
                        KINDS.join(", ")
                    ),
                ));
            }
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            KindSettings::Certificates(_) => "certificates",
            KindSettings::Uptime(_) => "uptime",
            KindSettings::Wazuh(_) => "wazuh",
            KindSettings::Host(_) => "host",
            KindSettings::Connections(_) => "connections",
            KindSettings::SecurityEvents(_) => "security_events",
            KindSettings::Scan(_) => "scan",
            KindSettings::SelfCheck(_) => "self",
        }
    }

    /// A per-code `for` the kind asks for (host: CPU 15m, memory 10m, disk 0), which
    /// overrides the monitor's `for` for that code. The lifecycle applies one `for` per
    /// monitor today; a scheduler that runs host monitors takes the per-code value from
    /// here (see `MonitorConfig::for_by_code`).
    pub fn for_by_code(&self) -> BTreeMap<String, Duration> {
        match self {
            KindSettings::Host(h) => h.for_by_code(),
            _ => BTreeMap::new(),
        }
    }
}

/// Run one monitor's check once and map its report into observations.
/// `monitor` is the monitor's name (a kind may read its own open alerts).
pub async fn observe(
    ctx: &AppContext,
    monitor: &str,
    settings: &KindSettings,
) -> Result<KindRun, String> {
    match settings {
        KindSettings::Certificates(s) => certificates::observe(ctx, s).await,
        KindSettings::Uptime(s) => uptime::observe(ctx, monitor, s).await,
        KindSettings::Wazuh(s) => wazuh::observe(ctx, s).await,
        KindSettings::Host(s) => host::observe(s).await,
        KindSettings::Connections(s) => connections::observe(s).await,
        KindSettings::SecurityEvents(s) => security_events::observe(ctx, s).await,
        KindSettings::Scan(s) => scan::observe(ctx, monitor, s).await,
        KindSettings::SelfCheck(s) => self_check::observe(&ctx.selfwatch, s).await,
    }
}

/// The engine's view of a configured monitor: its schedule, timeout, lifecycle policy and
/// an observe step running this kind against `ctx`.
pub fn engine_monitor(
    ctx: Arc<AppContext>,
    m: &crate::config::MonitorConfig,
) -> super::engine::Monitor {
    let settings = Arc::new(m.settings.clone());
    let name: Arc<str> = m.name.as_str().into();
    super::engine::Monitor {
        schedule: m.schedule.0.clone(),
        timeout: m.timeout,
        // Maintenance windows and inhibition rules apply to every monitor.
        policy: crate::alerts::lifecycle::MonitorPolicy {
            mute: ctx.config.mute_rules(),
            ..m.policy()
        },
        observe: Arc::new(move || {
            let (ctx, settings, name) = (ctx.clone(), settings.clone(), name.clone());
            Box::pin(async move { observe(&ctx, &name, &settings).await })
        }),
    }
}

/// A check's severity as an alert level.
pub fn level_of(s: Severity) -> Level {
    match s {
        Severity::Info => Level::Info,
        Severity::Warning => Level::Warning,
        Severity::Critical => Level::Critical,
    }
}

/// Serialize a duration the way the config writes it (`15m`).
pub(crate) fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::format_duration(*d))
}

/// One subject label.
pub(crate) fn subject(k: &str, v: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(k.to_string(), v.to_string())])
}

#[cfg(test)]
mod tests;
