//! Escalation: who is told when nobody acknowledges. [`run`] (every 30 s under the engine)
//! takes, in ONE store transaction, every firing, unacknowledged alert and every live
//! `[[escalation]]` rule at or below its level whose due time (firing + `after`, or the
//! next business day) has passed and which was not done for this episode; for each it
//! enqueues one `escalation` notification per contact per contact channel (the row's
//! `contact` is the contact's name; the outbox addresses them), records the step
//! (`alert_escalations`: once per step per episode, never after acknowledgement or
//! resolution, since those alerts are no longer candidates) and adds an `escalated` event
//! to the alert's timeline. Then the incidents: an `open` incident past its respond-by
//! time tells its severity's `[incidents]` contact once per step (`incident_escalations`).
//! An escalation triggered on a contact's own PagerDuty service is acknowledged and
//! resolved there when the alert (or the incident) is (`follow_ups`,
//! `incident_follow_ups`, once each). Candidate selection is
//! [`candidates`], one function (the place for "skip silenced").

use std::collections::BTreeMap;

use super::mute::{MuteRules, Muter};
use super::{AlertSnapshot, EscalationNote, NotificationBody, NotificationKind};
use crate::clock::{Clock, Millis, rfc3339};
use crate::config::{Config, ContactConfig, EscalationRule, IncidentsConfig};
use crate::incidents::sla;
use crate::store::alerts::AlertRow;
use crate::store::escalations::EscalationTx;
use crate::store::{NewNotification, Store, StoreError};

/// How long an escalation notification may take to deliver before it is dead-lettered.
pub const DEADLINE_MS: Millis = 24 * 3600 * 1000;
/// How often the engine runs [`run`].
pub const TICK: std::time::Duration = std::time::Duration::from_secs(30);
/// At most this many open incidents are looked at per round.
const MAX_INCIDENTS: usize = 1000;

/// The rules and the people, from the configuration.
#[derive(Debug, Clone, Default)]
pub struct EscalationPlan {
    pub rules: Vec<EscalationRule>,
    /// By name.
    pub contacts: BTreeMap<String, ContactConfig>,
    pub incidents: IncidentsConfig,
    /// Incident severity (`critical` .. `low`) -> contact names.
    pub incident_contacts: BTreeMap<String, Vec<String>>,
    /// The channels that take acknowledgements (PagerDuty): an escalation sent there for
    /// a contact is acknowledged / resolved there too when the alert is.
    pub ack_channels: Vec<String>,
    /// Maintenance windows and inhibition rules (silences are read from the store).
    pub mute: std::sync::Arc<MuteRules>,
}

impl EscalationPlan {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            rules: cfg.escalation.rules.clone(),
            contacts: cfg
                .contacts
                .iter()
                .map(|c| (c.name.clone(), c.clone()))
                .collect(),
            incidents: cfg.incidents.clone(),
            incident_contacts: cfg.escalation.incident_contacts.clone(),
            ack_channels: cfg.notify.acknowledging_channels(),
            mute: cfg.mute_rules(),
        }
    }

    /// True when no step can tell anyone (then the engine need not tick).
    pub fn is_idle(&self) -> bool {
        !self.rules.iter().any(|r| r.live) && self.incident_contacts.values().all(Vec::is_empty)
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscalationReport {
    /// Alert steps done this round.
    pub alert_steps: usize,
    /// Incident steps done this round.
    pub incident_steps: usize,
    /// Notification rows enqueued.
    pub notifications: usize,
    /// Acknowledge / resolve follow-ups enqueued for contacts' own services.
    pub follow_ups: usize,
}

/// The alerts due for a step at `now`: firing, unacknowledged, not muted (a silence, a
/// maintenance window or an inhibition: a muted alert is not escalated; its step comes
/// due once nothing mutes it), at or above the rule's level, past the rule's due time,
/// not done yet for this episode, and the rule live.
pub fn candidates<'p>(
    tx: &EscalationTx<'_>,
    plan: &'p EscalationPlan,
    now: Millis,
) -> Result<Vec<(AlertRow, &'p EscalationRule)>, StoreError> {
    let mut out = Vec::new();
    let alerts = tx.firing_unacknowledged()?;
    if alerts.is_empty() {
        return Ok(out);
    }
    let muter = Muter::read(tx, &plan.mute, now)?;
    for alert in alerts {
        if muter.check(&alert).is_some() {
            continue;
        }
        let since = alert.firing_ms.unwrap_or(alert.first_seen_ms);
        for rule in plan.rules.iter().filter(|r| r.live) {
            if alert.level >= rule.level
                && rule.due_ms(since) <= now
                && !tx.alert_step_done(alert.seq, &rule.name)?
            {
                out.push((alert.clone(), rule));
            }
        }
    }
    Ok(out)
}

/// One escalation round at `clock`'s now (see the module text). Call it again as often
/// as you like: a step is done once.
pub fn run(
    store: &Store,
    clock: &dyn Clock,
    plan: &EscalationPlan,
) -> Result<EscalationReport, StoreError> {
    let now = clock.now_ms();
    store.escalation_tx(|tx| {
        let mut report = EscalationReport::default();
        for (alert, rule) in candidates(tx, plan, now)? {
            if !tx.mark_alert_step(alert.seq, &rule.name, now)? {
                continue;
            }
            let since = alert.firing_ms.unwrap_or(alert.first_seen_ms);
            let due = rule.due_ms(since);
            let mut told = Vec::new();
            for name in &rule.reaches {
                let Some(c) = plan.contacts.get(name) else {
                    continue;
                };
                let note = note(&rule.name, c, rule.waited(), due);
                let body = body(
                    &alert.monitor,
                    NotificationKind::Escalation,
                    alert.snapshot(),
                    Some(note),
                );
                report.notifications += enqueue(tx, c, &body, &[alert.seq], now)?;
                told.push(format!("{} on {}", shown(c), c.channels.join(", ")));
            }
            tx.alert_event(
                alert.seq,
                now,
                "escalated",
                &format!(
                    "rule {} (level {} and above, unacknowledged {}): told {}",
                    rule.name,
                    rule.level.as_str(),
                    rule.waited(),
                    if told.is_empty() {
                        "nobody (no contact configured)".to_string()
                    } else {
                        told.join("; ")
                    }
                ),
            )?;
            report.alert_steps += 1;
        }
        report.follow_ups = follow_ups(tx, plan, now)? + incident_follow_ups(tx, plan, now)?;
        report.notifications += report.follow_ups;
        for row in tx.incidents_open(MAX_INCIDENTS)? {
            let Some((sev, due)) = sla::overdue(&plan.incidents, &row, now) else {
                continue;
            };
            let names = plan
                .incident_contacts
                .get(sev.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if names.is_empty() {
                continue;
            }
            let step = format!("sla-{}", sev.as_str());
            if !tx.mark_incident_step(row.seq, &step, now)? {
                continue;
            }
            let snapshot = sla::escalation_snapshot(&row, sev, due);
            let waited = format!("past its respond-by time ({})", rfc3339(due));
            for name in names {
                let Some(c) = plan.contacts.get(name) else {
                    continue;
                };
                let note = note(&format!("incident-{step}"), c, waited.clone(), due);
                let body = body(
                    "incidents",
                    NotificationKind::Escalation,
                    snapshot.clone(),
                    Some(note),
                );
                report.notifications += enqueue(tx, c, &body, &[], now)?;
            }
            report.incident_steps += 1;
        }
        Ok(report)
    })
}

/// An escalation triggered on a contact's own PagerDuty service is acknowledged there when
/// the alert is acknowledged, and resolved there when it resolves: once each per
/// (channel, contact), within 7 days of it, recorded as steps `acknowledged:<channel>:<contact>` and
/// `resolved:<channel>:<contact>`.
fn follow_ups(
    tx: &EscalationTx<'_>,
    plan: &EscalationPlan,
    now: Millis,
) -> Result<usize, StoreError> {
    let mut n = 0;
    for (alert, channel, contact) in
        tx.escalated_and_settled(&plan.ack_channels, now - 7 * 24 * 3600 * 1000, 1000)?
    {
        let mut kinds = vec![];
        if alert.acknowledged_ms.is_some() {
            kinds.push(NotificationKind::Acknowledged);
        }
        if alert.state == super::AlertState::Resolved {
            kinds.push(NotificationKind::Resolved);
        }
        for kind in kinds {
            let step = format!("{}:{channel}:{contact}", kind.as_str());
            if !tx.mark_alert_step(alert.seq, &step, now)? {
                continue;
            }
            let body = body(&alert.monitor, kind, alert.snapshot(), None);
            enqueue_to(tx, &channel, &contact, &body, &[alert.seq], now)?;
            n += 1;
        }
    }
    Ok(n)
}

/// The same for incidents: an SLA escalation triggered on a contact's own PagerDuty
/// service is acknowledged there once the incident is acknowledged (or contained) and
/// resolved there once it is resolved; recorded as incident steps.
fn incident_follow_ups(
    tx: &EscalationTx<'_>,
    plan: &EscalationPlan,
    now: Millis,
) -> Result<usize, StoreError> {
    if plan.ack_channels.is_empty() {
        return Ok(0);
    }
    let mut n = 0;
    for row in tx.incidents_escalated_and_settled(MAX_INCIDENTS)? {
        let (sev, due) = sla::respond_by_ms(&plan.incidents, &row);
        let mut snapshot = sla::escalation_snapshot(&row, sev, due);
        let kind = if row.status == "resolved" {
            snapshot.state = super::AlertState::Resolved;
            NotificationKind::Resolved
        } else {
            NotificationKind::Acknowledged
        };
        for (channel, contact) in tx.escalation_targets(&snapshot.episode)? {
            if !plan.ack_channels.contains(&channel) {
                continue;
            }
            let step = format!("{}:{channel}:{contact}", kind.as_str());
            if !tx.mark_incident_step(row.seq, &step, now)? {
                continue;
            }
            let body = body("incidents", kind, snapshot.clone(), None);
            enqueue_to(tx, &channel, &contact, &body, &[], now)?;
            n += 1;
        }
    }
    Ok(n)
}

fn shown(c: &ContactConfig) -> String {
    match &c.role {
        Some(r) => format!("{r} ({})", c.name),
        None => c.name.clone(),
    }
}

fn note(rule: &str, c: &ContactConfig, waited: String, due: Millis) -> EscalationNote {
    EscalationNote {
        rule: rule.to_string(),
        contact: c.name.clone(),
        role: c.role.clone(),
        waited,
        due_at: rfc3339(due),
    }
}

/// A notification about one alert (or incident snapshot) of `group`, keyed by its episode:
/// an escalation (with its note) or a follow-up (acknowledged, resolved).
fn body(
    group: &str,
    kind: NotificationKind,
    snapshot: AlertSnapshot,
    escalation: Option<EscalationNote>,
) -> NotificationBody {
    NotificationBody {
        digest: vec![],
        kind,
        group_key: group.to_string(),
        group_labels: BTreeMap::from([("monitor".to_string(), group.to_string())]),
        dedup_key: snapshot.episode.clone(),
        alerts: vec![snapshot],
        escalation,
    }
}

/// One row on `channel` addressed to `contact`.
fn enqueue_to(
    tx: &EscalationTx<'_>,
    channel: &str,
    contact: &str,
    body: &NotificationBody,
    alerts: &[i64],
    now: Millis,
) -> Result<(), StoreError> {
    tx.enqueue_for(
        &NewNotification {
            channel,
            body,
            alerts,
            deadline_ms: now + DEADLINE_MS,
        },
        contact,
        now,
    )?;
    Ok(())
}

/// One row per channel of the contact; how many.
fn enqueue(
    tx: &EscalationTx<'_>,
    c: &ContactConfig,
    body: &NotificationBody,
    alerts: &[i64],
    now: Millis,
) -> Result<usize, StoreError> {
    for channel in &c.channels {
        enqueue_to(tx, channel, &c.name, body, alerts, now)?;
    }
    Ok(c.channels.len())
}

#[cfg(test)]
#[path = "escalation_tests.rs"]
mod tests;
