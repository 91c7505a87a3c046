//! SLA timers and escalation: when an incident of a severity must be responded to
//! (minutes per severity, or 17:00 UTC of the next business day) and whom to escalate to.

use schemars::JsonSchema;
use serde::Serialize;
use time::{Duration, OffsetDateTime, Weekday};

use super::model::{IncidentSeverity, Status};
use crate::config::IncidentsConfig;
use crate::util::rfc3339;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::ingest::tests::T0;
    use crate::incidents::model::ms_to_time;
    use crate::incidents::view;
    use crate::store::IncidentRow;

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
