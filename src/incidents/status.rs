//! incident_status: the views of an incident (overview row, timeline, related alerts), the
//! overview with counts and SLA breaches, and the detail of one incident.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ingest::{IngestStatus, ingest_locked, parse_ts_ms};
use super::model::{
    IncidentSeverity, Phase, Resolution, Status, incident_id, ms_to_time, name, parse_incident_id,
    parse_name,
};
use super::sla::{Escalation, Sla, timers};
use super::{IncidentDeps, IncidentError};
use crate::checks::{ArgError, Summary, parse_since};
use crate::config::IncidentsConfig;
use crate::store::{AlertSample, IncidentRow, Store, StoreError};
use crate::util::{rfc3339, sanitize_untrusted};

/// Incidents per overview page.
pub const PAGE_SIZE: usize = 50;
const MAX_TIMELINE_AUDIT: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AgentView {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AlertView {
    pub time: String,
    pub rule_id: String,
    pub level: u32,
    /// Untrusted text from the alert (sanitised).
    pub description: String,
    pub agent_id: String,
    pub agent_name: String,
    pub srcip: Option<String>,
}

impl From<&AlertSample> for AlertView {
    fn from(s: &AlertSample) -> Self {
        Self {
            time: rfc3339(ms_to_time(s.time_ms)),
            rule_id: s.rule_id.clone(),
            level: s.level,
            description: s.description.clone(),
            agent_id: s.agent_id.clone(),
            agent_name: s.agent_name.clone(),
            srcip: s.srcip.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct NoteView {
    pub at: String,
    pub by: String,
    pub text: String,
}

/// One incident as incident_status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IncidentView {
    pub id: String,
    /// From the alert's rule description (untrusted text, sanitised) and the key.
    pub title: String,
    pub severity: IncidentSeverity,
    pub status: Status,
    pub phase: Phase,
    pub detected_at: String,
    pub last_alert_at: String,
    pub age_minutes: i64,
    pub sla: Sla,
    pub escalation: Escalation,
    pub alert_count: u64,
    pub max_level: u32,
    pub agents: Vec<AgentView>,
    pub source_ips: Vec<String>,
    /// MITRE ATT&CK technique ids.
    pub mitre: Vec<String>,
    pub assignee: Option<String>,
    pub resolution: Option<Resolution>,
    pub acknowledged_at: Option<String>,
    pub contained_at: Option<String>,
    pub resolved_at: Option<String>,
    pub correlation_key: String,
    pub notes: Vec<NoteView>,
}

pub fn view(row: &IncidentRow, cfg: &IncidentsConfig, now: OffsetDateTime) -> IncidentView {
    let severity = IncidentSeverity::from_level(row.max_level);
    let status = parse_name(&row.status).unwrap_or(Status::Open);
    let detected = ms_to_time(row.first_alert_ms);
    let (sla, escalation) = timers(cfg, severity, status, detected, now);
    IncidentView {
        id: incident_id(row.seq),
        title: row.title.clone(),
        severity,
        status,
        phase: parse_name(&row.phase).unwrap_or(Phase::DetectionAnalysis),
        detected_at: rfc3339(detected),
        last_alert_at: rfc3339(ms_to_time(row.last_alert_ms)),
        age_minutes: (now - detected).whole_minutes().max(0),
        sla,
        escalation,
        alert_count: row.alert_count,
        max_level: row.max_level,
        agents: row
            .body
            .agents
            .iter()
            .map(|a| AgentView {
                id: a.id.clone(),
                name: a.name.clone(),
            })
            .collect(),
        source_ips: row.body.source_ips.clone(),
        mitre: row.body.mitre.clone(),
        assignee: row.assignee.clone(),
        resolution: row.resolution.as_deref().and_then(parse_name),
        acknowledged_at: row.acknowledged_at.clone(),
        contained_at: row.contained_at.clone(),
        resolved_at: row.resolved_at.clone(),
        correlation_key: row.key.clone(),
        notes: row
            .body
            .notes
            .iter()
            .map(|n| NoteView {
                at: n.at.clone(),
                by: n.by.clone(),
                text: n.text.clone(),
            })
            .collect(),
    }
}

/// incident_status arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    /// Show one incident in detail (e.g. `INC-000001`).
    pub incident_id: Option<String>,
    /// Window for new alerts and recently resolved incidents: `30m`, `24h` (default), `7d`,
    /// or an RFC 3339 time.
    pub since: Option<String>,
    /// Only incidents at or above this severity.
    pub min_severity: Option<IncidentSeverity>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Counts {
    pub low: u64,
    pub medium: u64,
    pub high: u64,
    pub critical: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct StatusCounts {
    pub open: u64,
    pub acknowledged: u64,
    pub contained: u64,
    pub resolved: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct OldestOpen {
    pub id: String,
    pub detected_at: String,
    pub age_minutes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TimelineEntry {
    pub at: String,
    /// `alert`, `alerts_omitted`, `status_change`, `note` or `remediation`.
    pub kind: String,
    pub summary: String,
    /// For audit entries: the tool, action, caller and outcome.
    pub tool: Option<String>,
    pub action: Option<String>,
    pub caller: Option<String>,
    pub outcome: Option<String>,
    pub alert: Option<AlertView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RelatedAlerts {
    /// The first alerts and the most recent ones.
    pub sample: Vec<AlertView>,
    pub total: u64,
    /// Alerts counted but not in the sample.
    pub not_shown: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub timeline: Vec<TimelineEntry>,
    pub related_alerts: RelatedAlerts,
}

/// incident_status output: the overview, and `incident` when one was asked for.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StatusReport {
    pub ingest: IngestStatus,
    /// Non-resolved incidents (after `min_severity`).
    pub open: u64,
    pub by_severity: Counts,
    pub by_status: StatusCounts,
    pub sla_breaches: u64,
    pub unacknowledged: u64,
    pub oldest_open: Option<OldestOpen>,
    /// Most urgent first: SLA breaches, then severity, then age. Empty in detail mode.
    pub incidents: Vec<IncidentView>,
    /// Incidents matching (all pages).
    pub total: u64,
    pub next_cursor: Option<String>,
    pub incident: Option<IncidentDetail>,
}

impl Summary for StatusReport {
    fn summary(&self) -> String {
        if let Some(d) = &self.incident {
            let i = &d.incident;
            return format!(
                "{} [{}] {}, phase {}: {}, {}{}.",
                i.id,
                name(&i.severity),
                name(&i.status),
                name(&i.phase),
                crate::util::count(i.alert_count, "alert", "alerts"),
                crate::util::count(
                    d.timeline.len() as u64,
                    "timeline entry",
                    "timeline entries"
                ),
                if i.sla.breached {
                    format!("; SLA BREACHED, escalate to {}", i.escalation.contact)
                } else {
                    String::new()
                }
            );
        }
        let c = &self.by_severity;
        format!(
            "{} (critical {}, high {}, medium {}, low {}); {}, {} unacknowledged; ingest {}.",
            crate::util::count(self.open, "open incident", "open incidents"),
            c.critical,
            c.high,
            c.medium,
            c.low,
            crate::util::count(self.sla_breaches, "SLA breach", "SLA breaches"),
            self.unacknowledged,
            self.ingest.status
        )
    }
}

fn timeline(store: &Store, row: &IncidentRow) -> Result<Vec<TimelineEntry>, StoreError> {
    let entry = |at: String, kind: &str, summary: String| TimelineEntry {
        at,
        kind: kind.into(),
        summary,
        tool: None,
        action: None,
        caller: None,
        outcome: None,
        alert: None,
    };
    let mut out: Vec<(i64, TimelineEntry)> = Vec::new();
    let b = &row.body;
    for s in b.first_alerts.iter().chain(&b.last_alerts) {
        let mut e = entry(
            rfc3339(ms_to_time(s.time_ms)),
            "alert",
            format!("rule {} level {} on {}", s.rule_id, s.level, s.agent_name),
        );
        e.alert = Some(s.into());
        out.push((s.time_ms, e));
    }
    let shown = (b.first_alerts.len() + b.last_alerts.len()) as u64;
    if row.alert_count > shown {
        let at = b
            .last_alerts
            .first()
            .map_or(row.last_alert_ms, |s| s.time_ms - 1);
        let e = entry(
            rfc3339(ms_to_time(at)),
            "alerts_omitted",
            format!(
                "{} not shown",
                crate::util::count(row.alert_count - shown, "more alert", "more alerts")
            ),
        );
        out.push((at, e));
    }
    for r in store.audit_for_incident(&incident_id(row.seq), MAX_TIMELINE_AUDIT)? {
        let at_ms = parse_ts_ms(&r.ts).unwrap_or(0);
        let kind = match (r.tool.as_str(), r.action.as_str()) {
            ("incident_update", "note") => "note",
            ("incident_update", _) => "status_change",
            _ => "remediation",
        };
        let mut e = entry(r.ts.clone(), kind, r.detail.clone().unwrap_or_default());
        e.tool = Some(r.tool);
        e.action = Some(r.action);
        e.caller = Some(r.caller);
        e.outcome = Some(r.outcome);
        out.push((at_ms, e));
    }
    // Stable: equal times keep alerts before audit rows, audit rows in id order.
    out.sort_by_key(|(t, _)| *t);
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

/// The detail of one incident.
pub fn detail(
    store: &Store,
    cfg: &IncidentsConfig,
    id: &str,
    now: OffsetDateTime,
) -> Result<IncidentDetail, IncidentError> {
    let row = load(store, id)?;
    let b = &row.body;
    let sample: Vec<AlertView> = b
        .first_alerts
        .iter()
        .chain(&b.last_alerts)
        .map(Into::into)
        .collect();
    Ok(IncidentDetail {
        incident: view(&row, cfg, now),
        timeline: timeline(store, &row)?,
        related_alerts: RelatedAlerts {
            not_shown: row.alert_count.saturating_sub(sample.len() as u64),
            total: row.alert_count,
            sample,
        },
    })
}

pub(super) fn load(store: &Store, id: &str) -> Result<IncidentRow, IncidentError> {
    let shown = sanitize_untrusted(id.as_bytes(), 40);
    let seq = parse_incident_id(id).ok_or_else(|| {
        ArgError::new(
            "incident_id",
            format!("`{shown}` is not an incident id; ids look like `INC-000001`"),
        )
    })?;
    store.incident_get(seq)?.ok_or_else(|| {
        ArgError::new(
            "incident_id",
            format!("no incident `{shown}`; list incidents with incident_status"),
        )
        .into()
    })
}

/// The overview (and detail, with `incident_id`) from the store, after ingesting.
pub fn status(
    store: &Store,
    cfg: &IncidentsConfig,
    args: &StatusArgs,
    ingest: IngestStatus,
    now: OffsetDateTime,
) -> Result<StatusReport, IncidentError> {
    let since = parse_since(args.since.as_deref().unwrap_or("24h"), now)?;
    let offset: usize = match &args.cursor {
        None => 0,
        Some(c) => c.parse().map_err(|_| {
            ArgError::new(
                "cursor",
                "must be a `next_cursor` value from a previous call",
            )
        })?,
    };
    let min = args.min_severity.unwrap_or(IncidentSeverity::Low);
    let rows = store.incidents_active(
        (since.unix_timestamp_nanos() / 1_000_000) as i64,
        &rfc3339(since),
        10_000,
    )?;
    let mut views: Vec<IncidentView> = rows
        .iter()
        .map(|r| view(r, cfg, now))
        .filter(|v| v.severity >= min)
        .collect();
    views.sort_by(|a, b| {
        let rank = |v: &IncidentView| {
            (
                v.status == Status::Resolved,
                !v.sla.breached,
                std::cmp::Reverse(v.severity),
                v.detected_at.clone(),
            )
        };
        rank(a).cmp(&rank(b))
    });
    let mut r = StatusReport {
        ingest,
        open: 0,
        by_severity: Counts::default(),
        by_status: StatusCounts::default(),
        sla_breaches: 0,
        unacknowledged: 0,
        oldest_open: None,
        incidents: Vec::new(),
        total: views.len() as u64,
        next_cursor: None,
        incident: None,
    };
    for v in &views {
        match v.status {
            Status::Open => r.by_status.open += 1,
            Status::Acknowledged => r.by_status.acknowledged += 1,
            Status::Contained => r.by_status.contained += 1,
            Status::Resolved => {
                r.by_status.resolved += 1;
                continue;
            }
        }
        r.open += 1;
        *match v.severity {
            IncidentSeverity::Low => &mut r.by_severity.low,
            IncidentSeverity::Medium => &mut r.by_severity.medium,
            IncidentSeverity::High => &mut r.by_severity.high,
            IncidentSeverity::Critical => &mut r.by_severity.critical,
        } += 1;
        r.sla_breaches += u64::from(v.sla.breached);
        r.unacknowledged += u64::from(v.status == Status::Open);
        if r.oldest_open
            .as_ref()
            .is_none_or(|o| v.age_minutes > o.age_minutes)
        {
            r.oldest_open = Some(OldestOpen {
                id: v.id.clone(),
                detected_at: v.detected_at.clone(),
                age_minutes: v.age_minutes,
            });
        }
    }
    match &args.incident_id {
        Some(id) => r.incident = Some(detail(store, cfg, id, now)?),
        None => {
            if offset + PAGE_SIZE < views.len() {
                r.next_cursor = Some((offset + PAGE_SIZE).to_string());
            }
            r.incidents = views.into_iter().skip(offset).take(PAGE_SIZE).collect();
        }
    }
    Ok(r)
}

/// incident_status: ingest new alerts (the first run reaches back to `since`), then the
/// overview, or the detail with `incident_id`.
pub async fn run(
    deps: &IncidentDeps<'_>,
    args: &StatusArgs,
) -> Result<StatusReport, IncidentError> {
    let now = OffsetDateTime::now_utc();
    let since = parse_since(args.since.as_deref().unwrap_or("24h"), now)?;
    let ingest = ingest_locked(deps, since).await;
    status(deps.store, deps.settings, args, ingest, now)
}
