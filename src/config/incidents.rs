//! The `[incidents]` section: how incidents are correlated from Wazuh alerts, how often they
//! are ingested, and the SLA / escalation matrix per severity.

use serde::{Serialize, Serializer};

use super::ConfigError;
use super::env::{Key, Layers, within};
use super::file::FileIncidents;

/// The severities of the SLA matrix, in the order of its arrays.
const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];
const MIN_LEVEL: Key = Key::env("incidents.min_level", "SECOPS_INCIDENTS_MIN_LEVEL");
const INGEST_EVERY: Key = Key::env(
    "incidents.ingest_interval_secs",
    "SECOPS_INCIDENTS_INGEST_INTERVAL_SECS",
);
const SLA_KEYS: [&str; 4] = [
    "incidents.critical_sla_minutes",
    "incidents.high_sla_minutes",
    "incidents.medium_sla_minutes",
    "incidents.low_sla_minutes",
];
const CONTACT_KEYS: [&str; 4] = [
    "incidents.critical_contact",
    "incidents.high_contact",
    "incidents.medium_contact",
    "incidents.low_contact",
];

/// How incidents are correlated from alerts, and the SLA / escalation matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentsConfig {
    /// Alerts at or above this rule level open or join incidents.
    pub min_level: u32,
    /// An alert joins an open incident whose last alert is at most this old.
    pub window_minutes: u64,
    /// Background ingestion interval under `serve` (0 = only on incident_status calls).
    pub ingest_interval_secs: u64,
    /// How far behind the cursor each ingest looks again, for alerts indexed late.
    pub late_alert_minutes: u64,
    /// Response SLA per severity: critical, high, medium, low (`None` = next business day).
    #[serde(serialize_with = "sla_by_severity")]
    pub sla_minutes: [Option<u64>; 4],
    /// Escalation contact per severity: critical, high, medium, low.
    #[serde(serialize_with = "by_severity")]
    pub contacts: [String; 4],
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        Self {
            min_level: 7,
            window_minutes: 60,
            ingest_interval_secs: 60,
            late_alert_minutes: 10,
            sla_minutes: [Some(15), Some(60), Some(240), None],
            contacts: [
                "security lead".into(),
                "DevOps engineer".into(),
                "operations lead".into(),
                "team lead".into(),
            ],
        }
    }
}

/// `{critical: .., high: .., medium: .., low: ..}`.
fn by_severity<T: Serialize, S: Serializer>(v: &[T; 4], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(SEVERITIES.iter().zip(v))
}

/// Like [`by_severity`], an unset SLA shown as `next_business_day`.
fn sla_by_severity<S: Serializer>(v: &[Option<u64>; 4], s: S) -> Result<S::Ok, S::Error> {
    let shown = v.map(|m| m.map_or(serde_json::json!("next_business_day"), |m| m.into()));
    by_severity(&shown, s)
}

pub(super) fn load(l: &Layers, f: FileIncidents) -> Result<IncidentsConfig, ConfigError> {
    let d = IncidentsConfig::default();
    let sla = [
        f.critical_sla_minutes,
        f.high_sla_minutes,
        f.medium_sla_minutes,
        f.low_sla_minutes,
    ];
    let contacts = [
        f.critical_contact,
        f.high_contact,
        f.medium_contact,
        f.low_contact,
    ];
    let mut c = IncidentsConfig {
        min_level: l.number(MIN_LEVEL, f.min_level, d.min_level, 1..=16)?,
        window_minutes: within(
            Key::file("incidents.window_minutes"),
            f.window_minutes.unwrap_or(d.window_minutes),
            1..=7 * 24 * 60,
        )?,
        ingest_interval_secs: l.number(
            INGEST_EVERY,
            f.ingest_interval_secs,
            d.ingest_interval_secs,
            0..=86_400,
        )?,
        late_alert_minutes: within(
            Key::file("incidents.late_alert_minutes"),
            f.late_alert_minutes.unwrap_or(d.late_alert_minutes),
            0..=24 * 60,
        )?,
        ..d
    };
    for (i, (sla, contact)) in sla.into_iter().zip(contacts).enumerate() {
        if let Some(m) = sla {
            c.sla_minutes[i] = Some(within(Key::file(SLA_KEYS[i]), m, 0..=30 * 24 * 60)?);
        }
        if let Some(contact) = contact {
            if contact.trim().is_empty() || contact.len() > 200 {
                return Err(Key::file(CONTACT_KEYS[i]).error("must be 1 to 200 characters"));
            }
            c.contacts[i] = contact;
        }
    }
    Ok(c)
}
