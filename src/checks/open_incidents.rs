//! The incident part of the `security_events` monitor: our incidents (correlated Wazuh
//! alerts, see `incidents/`) read from the store, as observations. An incident that is
//! still `open` (nobody acknowledged, contained or resolved it) at or above
//! `incident_severity` (default high) is an `incident_open` alert; an open incident past its
//! respond-by time (`incidents::sla`) is an `incident_sla_breach` alert (critical). Both
//! name the incident (`incident = INC-000042`) and end, through the monitor's complete run,
//! once the incident is no longer open: acknowledged, contained or resolved.
//!
//! Levels of `incident_open` follow the incident's loudest Wazuh level, as the rate alert
//! does: 15 and above (a `critical` incident) is `emergency`, 12 to 14 (`high`) is
//! `critical`, below that (`medium`, `low`) `warning`.

use serde::Serialize;
use time::OffsetDateTime;

use super::ArgError;
use super::security_events::{CRITICAL_LEVEL, EMERGENCY_LEVEL};
use crate::alerts::{Level, Observation};
use crate::clock::Millis;
use crate::config::IncidentsConfig;
use crate::incidents::{IncidentSeverity, IncidentView, Status, respond_by, view};
use crate::store::{Store, StoreError};

/// Incidents read per run; with more non-resolved incidents than this the run is partial
/// (nothing it could not see is resolved).
pub const MAX_INCIDENTS: usize = 1000;
/// Agents and source addresses named in one alert's summary.
const MAX_NAMED: usize = 5;

/// Which incident alerts a `security_events` monitor raises, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentSpec {
    /// `incidents`: open incidents at or above `min_severity` are alerts (default true).
    pub enabled: bool,
    /// `incident_severity` (default high).
    pub min_severity: IncidentSeverity,
    /// `sla`: SLA breaches of open incidents, of any severity, are alerts (default true).
    pub sla: bool,
}

impl Default for IncidentSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            min_severity: IncidentSeverity::High,
            sla: true,
        }
    }
}

impl IncidentSpec {
    /// From the monitor's `incidents`, `incident_severity` and `sla` keys; `key` is the
    /// monitor's prefix (`monitors[2]`).
    pub fn parse(
        key: &str,
        enabled: Option<bool>,
        severity: Option<&str>,
        sla: Option<bool>,
    ) -> Result<Self, ArgError> {
        let d = Self::default();
        let enabled = enabled.unwrap_or(d.enabled);
        let min_severity = match severity {
            None => d.min_severity,
            Some(_) if !enabled => {
                return Err(ArgError::new(
                    format!("{key}.incident_severity"),
                    "has no effect with `incidents = false`; remove one of them",
                ));
            }
            Some(s) => IncidentSeverity::parse(s.trim()).ok_or_else(|| {
                ArgError::new(
                    format!("{key}.incident_severity"),
                    format!(
                        "`{}` is not an incident severity; allowed: low, medium, high, critical",
                        crate::util::quote_untrusted(s, 40)
                    ),
                )
            })?,
        };
        Ok(Self {
            enabled,
            min_severity,
            sla: sla.unwrap_or(d.sla),
        })
    }

    /// Whether the monitor looks at incidents at all.
    pub fn any(&self) -> bool {
        self.enabled || self.sla
    }
}

/// What one look at the incidents saw.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentScan {
    pub observations: Vec<Observation>,
    /// Every non-resolved incident was read (fewer than [`MAX_INCIDENTS`]).
    pub complete: bool,
}

/// The alert level of an open incident: its loudest Wazuh level, as the rate alert maps it.
pub fn open_level(max_level: u32) -> Level {
    if max_level >= EMERGENCY_LEVEL {
        Level::Emergency
    } else if max_level >= CRITICAL_LEVEL {
        Level::Critical
    } else {
        Level::Warning
    }
}

fn time_of(ms: Millis) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `host-a, host-b and 3 more`, or `-`.
fn named(items: &[String]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    let shown = items[..items.len().min(MAX_NAMED)].join(", ");
    match items.len().saturating_sub(MAX_NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

fn subject(v: &IncidentView) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([("incident".to_string(), v.id.clone())])
}

fn open_observation(v: &IncidentView) -> Observation {
    let severity = v.severity.as_str();
    let agents: Vec<String> = v.agents.iter().map(|a| a.name.clone()).collect();
    Observation {
        code: "incident_open".into(),
        subject: subject(v),
        level: Some(open_level(v.max_level)),
        title: format!("Incident {} ({severity}) is open: {}", v.id, v.title),
        summary: format!(
            "Incident {} ({severity}, Wazuh level {}) is open and not acknowledged: {}. {} between {} and {}, agents {}, source addresses {}. Respond by {} (escalate to {}). Acknowledge it with incident_update; incident_status shows its timeline.",
            v.id,
            v.max_level,
            v.title,
            crate::util::count(v.alert_count, "Wazuh alert", "Wazuh alerts"),
            v.detected_at,
            v.last_alert_at,
            named(&agents),
            named(&v.source_ips),
            v.sla.respond_by,
            v.escalation.contact,
        ),
        value: Some(crate::util::count(v.alert_count, "alert", "alerts")),
    }
}

fn breach_observation(v: &IncidentView, minutes_late: i64) -> Observation {
    let severity = v.severity.as_str();
    Observation {
        code: "incident_sla_breach".into(),
        subject: subject(v),
        level: Some(Level::Critical),
        title: format!(
            "Incident {} ({severity}) is past its response SLA: {}",
            v.id, v.title
        ),
        summary: format!(
            "Incident {} ({severity}): {}, detected at {}, had to be responded to by {} and is still open, {minutes_late} min late. Escalate to {}; acknowledge it with incident_update.",
            v.id, v.title, v.detected_at, v.sla.respond_by, v.escalation.contact,
        ),
        value: Some(format!("{minutes_late} min late")),
    }
}

/// The observations of the incidents in `store` at `now_ms`: one per open incident at or
/// above the severity, one per SLA breach. Incidents that are not open give none, so a
/// complete run resolves their alerts.
pub fn observe(
    store: &Store,
    cfg: &IncidentsConfig,
    spec: &IncidentSpec,
    now_ms: Millis,
) -> Result<IncidentScan, StoreError> {
    if !spec.any() {
        return Ok(IncidentScan {
            observations: Vec::new(),
            complete: true,
        });
    }
    let rows = store.incidents_unresolved(MAX_INCIDENTS)?;
    let now = time_of(now_ms);
    let mut observations = Vec::new();
    for row in &rows {
        let v = view(row, cfg, now);
        if v.status != Status::Open {
            continue;
        }
        if spec.enabled && v.severity >= spec.min_severity {
            observations.push(open_observation(&v));
        }
        if spec.sla && v.sla.breached {
            let due = respond_by(cfg, v.severity, time_of(row.first_alert_ms));
            let late = (now - due).whole_minutes().max(0);
            observations.push(breach_observation(&v, late));
        }
    }
    Ok(IncidentScan {
        observations,
        complete: rows.len() < MAX_INCIDENTS,
    })
}

#[cfg(test)]
#[path = "open_incidents_tests.rs"]
mod tests;
