//! SLA timers and escalation: when an incident of a severity must be responded to
//! (minutes per severity, or 17:00 UTC of the next business day) and whom to escalate to;
//! when an open incident is overdue ([`overdue`]) and what the escalation notification
//! says about it ([`escalation_snapshot`]; sent by `alerts::escalation`).

use schemars::JsonSchema;
use serde::Serialize;
use time::{Duration, OffsetDateTime, Weekday};

use std::collections::BTreeMap;

use super::model::{IncidentSeverity, Status, incident_id, ms_to_time};
use crate::alerts::{AlertSnapshot, AlertState, Level};
use crate::config::IncidentsConfig;
use crate::store::IncidentRow;
use crate::util::{rfc3339, sanitize_untrusted};

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Sla {
    pub respond_by: String,
    /// Past `respond_by` and not yet acknowledged.
    pub breached: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Escalation {
    pub contact: String,
    pub due_at: String,
    pub overdue: bool,
}

/// Index into the config's SLA and contact arrays (critical first).
fn slot(sev: IncidentSeverity) -> usize {
    3 - sev as usize
}

/// 17:00 UTC of the next weekday after `t`.
fn next_business_day(t: OffsetDateTime) -> OffsetDateTime {
    let mut d = t.date();
    loop {
        d = d.next_day().unwrap_or(d);
        if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
            break;
        }
    }
    d.with_hms(17, 0, 0)
        .map(|dt| dt.assume_utc())
        .unwrap_or(t + Duration::days(1))
}

/// When an incident of `sev` detected at `detected` must be responded to.
pub fn respond_by(
    cfg: &IncidentsConfig,
    sev: IncidentSeverity,
    detected: OffsetDateTime,
) -> OffsetDateTime {
    match cfg.sla_minutes[slot(sev)] {
        Some(m) => detected + Duration::minutes(m as i64),
        None => next_business_day(detected),
    }
}

/// The SLA and the escalation of an incident detected at `detected`: breached and overdue
/// once `now` passes `respond_by` while the incident is still open.
pub fn timers(
    cfg: &IncidentsConfig,
    severity: IncidentSeverity,
    status: Status,
    detected: OffsetDateTime,
    now: OffsetDateTime,
) -> (Sla, Escalation) {
    let due = respond_by(cfg, severity, detected);
    let waiting = status == Status::Open;
    let late = waiting && now > due;
    (
        Sla {
            respond_by: rfc3339(due),
            breached: late,
        },
        Escalation {
            contact: cfg.contacts[slot(severity)].clone(),
            due_at: rfc3339(due),
            overdue: late,
        },
    )
}

/// The SLA step an incident is overdue on at `now_ms`: its severity and respond-by time,
/// while it is still `open` (not acknowledged, contained or resolved) and the time passed.
pub fn overdue(
    cfg: &IncidentsConfig,
    row: &IncidentRow,
    now_ms: i64,
) -> Option<(IncidentSeverity, i64)> {
    let status = super::model::parse_name(&row.status).unwrap_or(Status::Open);
    if status != Status::Open {
        return None;
    }
    let (sev, due_ms) = respond_by_ms(cfg, row);
    (now_ms > due_ms).then_some((sev, due_ms))
}

/// An incident's severity and respond-by time (epoch ms).
pub fn respond_by_ms(cfg: &IncidentsConfig, row: &IncidentRow) -> (IncidentSeverity, i64) {
    let sev = IncidentSeverity::from_level(row.max_level);
    let due = respond_by(cfg, sev, ms_to_time(row.first_alert_ms));
    (sev, (due.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Our level for an incident severity (the operations manual's rows): critical ->
/// critical, high -> warning, medium and low -> info.
pub fn level_of(sev: IncidentSeverity) -> Level {
    match sev {
        IncidentSeverity::Critical => Level::Critical,
        IncidentSeverity::High => Level::Warning,
        IncidentSeverity::Medium | IncidentSeverity::Low => Level::Info,
    }
}

/// What an escalation notification says about an overdue incident. The title and agent
/// names come from Wazuh (untrusted): sanitised and cut here, and only ever data (no
/// template is made of them).
pub fn escalation_snapshot(row: &IncidentRow, sev: IncidentSeverity, due_ms: i64) -> AlertSnapshot {
    let id = incident_id(row.seq);
    let title = sanitize_untrusted(row.title.as_bytes(), 200);
    let agents: Vec<String> = row
        .body
        .agents
        .iter()
        .take(5)
        .map(|a| sanitize_untrusted(a.name.as_bytes(), 64))
        .collect();
    let mut labels = BTreeMap::from([
        ("incident".to_string(), id.clone()),
        ("severity".to_string(), sev.as_str().to_string()),
    ]);
    if !agents.is_empty() {
        labels.insert("agents".into(), agents.join(", "));
    }
    let fingerprint = format!("incident-{}", row.seq);
    let episode = format!("{fingerprint}-{:x}", row.first_alert_ms);
    AlertSnapshot {
        id: id.clone(),
        fingerprint,
        episode,
        monitor: "incidents".into(),
        code: "incident_sla_breach".into(),
        level: level_of(sev),
        state: AlertState::Firing,
        title: format!("Incident {id}: {title}"),
        summary: format!(
            "Incident {id} ({} severity, {} alert(s), highest Wazuh rule level {}) was to be \
             responded to by {}; nobody has acknowledged it. Look at it with incident_status \
             (id {id}) and acknowledge it with incident_update.",
            sev.as_str(),
            row.alert_count,
            row.max_level,
            crate::clock::rfc3339(due_ms)
        ),
        labels,
        value: None,
        started_at: crate::clock::rfc3339(row.first_alert_ms),
        resolved_at: None,
        runbook: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::ingest::tests::T0;
    use crate::incidents::view;

    #[test]
    fn sla_breach_once_the_clock_passes_respond_by() {
        let cfg = IncidentsConfig::default();
        let row = IncidentRow {
            seq: 1,
            max_level: 15,
            status: "open".into(),
            first_alert_ms: T0,
            last_alert_ms: T0,
            ..Default::default()
        };
        let v = view(&row, &cfg, ms_to_time(T0 + 14 * 60_000));
        assert!(!v.sla.breached);
        assert_eq!(v.escalation.contact, "security lead");
        let v = view(&row, &cfg, ms_to_time(T0 + 16 * 60_000));
        assert!(v.sla.breached && v.escalation.overdue);
        let acked = IncidentRow {
            status: "acknowledged".into(),
            ..row.clone()
        };
        assert!(
            !view(&acked, &cfg, ms_to_time(T0 + 16 * 60_000))
                .sla
                .breached
        );
        // Low: next business day (Friday -> Monday 17:00 UTC).
        let fri = time::macros::datetime!(2026-11-20 10:00 UTC);
        assert_eq!(
            respond_by(&cfg, IncidentSeverity::Low, fri),
            time::macros::datetime!(2026-11-23 17:00 UTC)
        );
    }
}
