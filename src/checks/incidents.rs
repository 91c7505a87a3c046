//! Incidents from Wazuh alerts: idempotent, cursor-based ingestion from the indexer,
//! correlation (source IP for authentication failures, else rule + agent, within a window),
//! severity buckets, the lifecycle (`incident_update`), SLA timers and escalation, and the
//! `incident_status` overview and detail views. No MCP types; time is always passed in.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, Weekday};

use super::ArgError;
use crate::config::IncidentsConfig;
use crate::store::incidents::IncidentTx;
use crate::store::{
    AgentRef, AlertSample, AuditEntry, IncidentRow, Note, Store, StoreError, audit,
};
use crate::util::{rfc3339, sanitize_untrusted};
use crate::wazuh::{ALERTS_INDEX, AlertQuery, IndexerClient, MAX_PAGE};

/// Incidents per overview page.
pub const PAGE_SIZE: usize = 50;
/// Alert pages (of `MAX_PAGE`) read per ingest run; the rest waits for the next run.
pub const MAX_PAGES_PER_RUN: usize = 200;
const FIRST_SAMPLES: usize = 20;
const LAST_SAMPLES: usize = 5;
const MAX_AGENTS: usize = 50;
const MAX_IPS: usize = 50;
const MAX_MITRE: usize = 30;
const MAX_NOTES: usize = 100;
const MAX_TIMELINE_AUDIT: usize = 200;
const CURSOR_KEY: &str = "incidents.cursor_ms";
const AUTH_GROUPS: [&str; 2] = ["authentication_failed", "authentication_failures"];
/// The only alert fields ingestion reads (`_source` filtering keeps pages small).
const SOURCE_FIELDS: [&str; 10] = [
    "timestamp",
    "id",
    "rule.level",
    "rule.id",
    "rule.description",
    "rule.groups",
    "rule.mitre.id",
    "agent.id",
    "agent.name",
    "data.srcip",
];

#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error(transparent)]
    InvalidArgument(#[from] ArgError),
    #[error("incident store error: {0}")]
    Store(#[from] StoreError),
}

/// Wazuh's rule-level buckets.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn from_level(level: u32) -> Self {
        match level {
            0..=6 => Self::Low,
            7..=11 => Self::Medium,
            12..=14 => Self::High,
            _ => Self::Critical,
        }
    }
    /// Index into the config's SLA and contact arrays (critical first).
    fn idx(self) -> usize {
        3 - self as usize
    }
}

/// Lifecycle status; moves forward only (a resolved incident may be reopened to `open`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    Acknowledged,
    Contained,
    Resolved,
}

/// The incident-response runbook's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    DetectionAnalysis,
    Containment,
    EradicationRecovery,
    PostIncident,
}

/// Why an incident was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    TruePositive,
    FalsePositive,
    Duplicate,
}

/// What incident_update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Acknowledge,
    Assign,
    SetPhase,
    SetStatus,
    Note,
    Resolve,
}

/// The snake_case name serde gives a unit variant.
fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse_name<T: for<'de> Deserialize<'de>>(s: &str) -> Option<T> {
    serde_json::from_value(Value::String(s.to_string())).ok()
}

// ----- ingestion and correlation -----

/// One alert hit, reduced to what correlation needs (sanitised).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedAlert {
    /// `_index/_id`: unique across the alert indices.
    pub doc: String,
    pub ts_ms: i64,
    pub level: u32,
    pub rule_id: String,
    pub description: String,
    pub groups: Vec<String>,
    pub mitre: Vec<String>,
    pub agent_id: String,
    pub agent_name: String,
    pub srcip: Option<String>,
}

fn clean(v: Option<&Value>, max: usize) -> String {
    match v {
        Some(Value::String(s)) => sanitize_untrusted(s.as_bytes(), max),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Parse Wazuh's `2024-05-01T10:20:30.123+0000` (and RFC 3339) into epoch milliseconds.
pub fn parse_ts_ms(s: &str) -> Option<i64> {
    if !s.is_ascii() {
        return None;
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
        let (head, off) = s.split_at(s.len().checked_sub(5)?);
        let fixed = format!("{head}{}:{}", &off[..3], &off[3..]);
        OffsetDateTime::parse(&fixed, &Rfc3339).ok()
    })?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

impl ParsedAlert {
    /// From one `_search` hit; `None` when it has no usable time or rule level.
    pub fn from_hit(hit: &Value) -> Option<Self> {
        let src = hit.get("_source")?;
        let sort_ms = hit
            .get("sort")
            .and_then(|s| s.get(0))
            .and_then(Value::as_i64);
        let ts_ms = sort_ms.or_else(|| src.get("timestamp")?.as_str().and_then(parse_ts_ms))?;
        let rule = src.get("rule")?;
        let level = match rule.get("level")? {
            Value::Number(n) => n.as_u64()?,
            Value::String(s) => s.parse().ok()?,
            _ => return None,
        }
        .min(16) as u32;
        let strs = |v: Option<&Value>, max: usize| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .take(max)
                        .filter_map(Value::as_str)
                        .map(|s| sanitize_untrusted(s.as_bytes(), 64))
                        .collect()
                })
                .unwrap_or_default()
        };
        let id = hit
            .get("_id")
            .and_then(Value::as_str)
            .or_else(|| src.get("id").and_then(Value::as_str))?;
        let index = hit.get("_index").and_then(Value::as_str).unwrap_or("");
        let agent = src.get("agent");
        let srcip = src
            .get("data")
            .and_then(|d| d.get("srcip"))
            .map(|v| clean(Some(v), 64))
            .filter(|s| !s.is_empty());
        Some(Self {
            doc: format!(
                "{}/{}",
                sanitize_untrusted(index.as_bytes(), 128),
                sanitize_untrusted(id.as_bytes(), 128)
            ),
            ts_ms,
            level,
            rule_id: clean(rule.get("id"), 32),
            description: clean(rule.get("description"), 200),
            groups: strs(rule.get("groups"), 32),
            mitre: strs(rule.get("mitre").and_then(|m| m.get("id")), 16),
            agent_id: clean(agent.and_then(|a| a.get("id")), 32),
            agent_name: clean(agent.and_then(|a| a.get("name")), 64),
            srcip,
        })
    }

    /// Authentication-failure families by source IP; everything else by rule and agent.
    pub fn correlation_key(&self) -> String {
        match &self.srcip {
            Some(ip)
                if self
                    .groups
                    .iter()
                    .any(|g| AUTH_GROUPS.contains(&g.as_str())) =>
            {
                format!("srcip:{ip}")
            }
            _ => format!("rule:{}:agent:{}", self.rule_id, self.agent_id),
        }
    }

    fn sample(&self) -> AlertSample {
        AlertSample {
            time_ms: self.ts_ms,
            rule_id: self.rule_id.clone(),
            level: self.level,
            description: self.description.clone(),
            agent_id: self.agent_id.clone(),
            agent_name: self.agent_name.clone(),
            srcip: self.srcip.clone(),
        }
    }

    fn title(&self) -> String {
        let what = if self.description.is_empty() {
            format!("Rule {}", self.rule_id)
        } else {
            self.description.trim_end_matches('.').to_string()
        };
        match (&self.srcip, self.correlation_key().starts_with("srcip:")) {
            (Some(ip), true) => format!("{what} from {ip}"),
            _ if !self.agent_name.is_empty() => format!("{what} on {}", self.agent_name),
            _ => format!("{what} on agent {}", self.agent_id),
        }
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T, cap: usize) {
    if list.len() < cap && !list.contains(&item) {
        list.push(item);
    }
}

/// Fold one alert into an incident (counts, severity that only rises, sets, samples).
pub fn absorb(row: &mut IncidentRow, a: &ParsedAlert) {
    if row.alert_count == 0 || a.level > row.max_level {
        row.title = a.title();
    }
    row.max_level = row.max_level.max(a.level);
    row.alert_count += 1;
    if row.alert_count == 1 {
        row.first_alert_ms = a.ts_ms;
        row.last_alert_ms = a.ts_ms;
    }
    row.first_alert_ms = row.first_alert_ms.min(a.ts_ms);
    row.last_alert_ms = row.last_alert_ms.max(a.ts_ms);
    let b = &mut row.body;
    if !a.agent_id.is_empty() {
        let agent = AgentRef {
            id: a.agent_id.clone(),
            name: a.agent_name.clone(),
        };
        push_unique(&mut b.agents, agent, MAX_AGENTS);
    }
    if let Some(ip) = &a.srcip {
        push_unique(&mut b.source_ips, ip.clone(), MAX_IPS);
    }
    for m in &a.mitre {
        push_unique(&mut b.mitre, m.clone(), MAX_MITRE);
    }
    if b.first_alerts.len() < FIRST_SAMPLES {
        b.first_alerts.push(a.sample());
    } else {
        if b.last_alerts.len() == LAST_SAMPLES {
            b.last_alerts.remove(0);
        }
        b.last_alerts.push(a.sample());
    }
}

/// Correlates alerts into incidents inside one page transaction, caching touched rows.
struct Correlator<'a, 'b> {
    tx: &'a IncidentTx<'b>,
    window_ms: i64,
    now: String,
    rows: HashMap<String, IncidentRow>,
    new_incidents: u64,
}

impl Correlator<'_, '_> {
    fn add(&mut self, a: &ParsedAlert) -> Result<(), StoreError> {
        let key = a.correlation_key();
        if !self.rows.contains_key(&key)
            && let Some(row) = self.tx.open_by_key(&key)?
        {
            self.rows.insert(key.clone(), row);
        }
        let joins = self.rows.get(&key).is_some_and(|r| {
            a.ts_ms <= r.last_alert_ms + self.window_ms
                && a.ts_ms + self.window_ms >= r.first_alert_ms
        });
        if !joins {
            if let Some(mut old) = self.rows.remove(&key) {
                self.tx.save(&mut old)?;
            }
            self.new_incidents += 1;
            self.rows.insert(
                key.clone(),
                IncidentRow {
                    key: key.clone(),
                    status: name(&Status::Open),
                    phase: name(&Phase::DetectionAnalysis),
                    created_at: self.now.clone(),
                    ..Default::default()
                },
            );
        }
        if let Some(row) = self.rows.get_mut(&key) {
            absorb(row, a);
            row.updated_at = self.now.clone();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<u64, StoreError> {
        for row in self.rows.values_mut() {
            self.tx.save(row)?;
        }
        Ok(self.new_incidents)
    }
}

/// Ingest one page of parsed alerts: each alert not seen before joins or opens an
/// incident; all in one transaction. Returns (new alerts, new incidents).
pub fn ingest_page(
    store: &Store,
    cfg: &IncidentsConfig,
    alerts: &[ParsedAlert],
    now: OffsetDateTime,
) -> Result<(u64, u64), StoreError> {
    store.incident_tx(|tx| {
        let mut c = Correlator {
            tx,
            window_ms: cfg.window_minutes as i64 * 60_000,
            now: rfc3339(now),
            rows: HashMap::new(),
            new_incidents: 0,
        };
        let mut fresh = 0;
        for a in alerts {
            if a.level >= cfg.min_level && tx.mark_ingested(&a.doc, a.ts_ms)? {
                c.add(a)?;
                fresh += 1;
            }
        }
        Ok((fresh, c.finish()?))
    })
}

/// How the last ingest went (shown by incident_status).
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct IngestStatus {
    /// `ok`, `not_configured` (no indexer: answering from the store), `unreachable` or `error`.
    pub status: String,
    pub error: Option<String>,
    /// Alerts at or above the threshold ingested by this run.
    pub new_alerts: u64,
    pub new_incidents: u64,
    /// Time of the newest ingested alert (the cursor).
    pub cursor: Option<String>,
    /// True when the run stopped at its page bound; the next run continues.
    pub more: bool,
}

fn ms_to_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Read alerts newer than the stored cursor (minus the late-alert overlap; alerts already
/// ingested are skipped by id) in bounded `search_after` pages and correlate them. The
/// first run starts at `bootstrap`. Never fails: problems are reported in the status.
pub async fn ingest(
    indexer: Option<&IndexerClient>,
    store: &Store,
    cfg: &IncidentsConfig,
    bootstrap: OffsetDateTime,
    now: OffsetDateTime,
) -> IngestStatus {
    let cursor: Option<i64> = store
        .get_kv(CURSOR_KEY)
        .ok()
        .flatten()
        .and_then(|c| c.parse().ok());
    let mut st = IngestStatus {
        status: "ok".into(),
        cursor: cursor.map(|c| rfc3339(ms_to_time(c))),
        ..Default::default()
    };
    let Some(indexer) = indexer else {
        st.status = "not_configured".into();
        st.error = Some("no Wazuh indexer configured; answering from stored incidents".into());
        return st;
    };
    let overlap_ms = cfg.late_alert_minutes as i64 * 60_000;
    let from_ms = match cursor {
        Some(c) => c - overlap_ms,
        None => (bootstrap.unix_timestamp_nanos() / 1_000_000) as i64,
    };
    let mut newest = cursor;
    let mut q = AlertQuery {
        since: Some(rfc3339(ms_to_time(from_ms - 1000))),
        min_level: Some(cfg.min_level),
        size: MAX_PAGE,
        ascending: true,
        ..Default::default()
    };
    let fetch = |q: &AlertQuery| {
        let mut body = q.to_body();
        body["_source"] = serde_json::json!(SOURCE_FIELDS);
        async move { indexer.search(ALERTS_INDEX, &body).await }
    };
    // Pipelined: while one page is correlated (SQLite, on a blocking thread), the next page
    // is already being fetched; pages are still applied strictly in order.
    let mut pending = Some(fetch(&q).await);
    for page in 0..MAX_PAGES_PER_RUN {
        let resp = match pending.take() {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                use crate::wazuh::WazuhError as W;
                st.status = match e {
                    W::Timeout { .. } | W::Connect { .. } | W::Tls { .. } => "unreachable",
                    _ => "error",
                }
                .into();
                st.error = Some(format!("{e}; answering from stored incidents"));
                break;
            }
            None => break,
        };
        let hits = match resp.0.get("hits").and_then(|h| h.get("hits")) {
            Some(Value::Array(a)) => a.as_slice(),
            _ => &[],
        };
        let alerts: Vec<ParsedAlert> = hits.iter().filter_map(ParsedAlert::from_hit).collect();
        let page_newest = alerts.iter().map(|a| a.ts_ms).max();
        let next_after = match hits.last().and_then(|h| h.get("sort")) {
            Some(Value::Array(s)) if hits.len() == MAX_PAGE => Some(s.clone()),
            _ => None,
        };
        let may_continue = page + 1 < MAX_PAGES_PER_RUN;
        if let Some(s) = &next_after {
            q.search_after = Some(s.clone());
        }
        let next = async {
            match (&next_after, may_continue) {
                (Some(_), true) => Some(fetch(&q).await),
                _ => None,
            }
        };
        let work = {
            let (store, cfg) = (store.clone(), cfg.clone());
            tokio::task::spawn_blocking(move || ingest_page(&store, &cfg, &alerts, now))
        };
        let (applied, next) = tokio::join!(work, next);
        match applied {
            Ok(Ok((a, i))) => {
                st.new_alerts += a;
                st.new_incidents += i;
            }
            Ok(Err(e)) => {
                st.status = "error".into();
                st.error = Some(e.to_string());
                return st;
            }
            Err(e) => {
                st.status = "error".into();
                st.error = Some(format!("ingest task failed: {e}"));
                return st;
            }
        }
        newest = page_newest.into_iter().chain(newest).max();
        st.more = next_after.is_some() && !may_continue;
        match next {
            Some(r) => pending = Some(r),
            None => break,
        }
    }
    if let Some(n) = newest
        && newest != cursor
    {
        if let Err(e) = store.set_kv(CURSOR_KEY, &n.to_string()) {
            st.status = "error".into();
            st.error = Some(e.to_string());
        }
        let _ = store.ingested_prune(n - overlap_ms - 3_600_000);
        st.cursor = Some(rfc3339(ms_to_time(n)));
    }
    st
}

// ----- views -----

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
    pub severity: Severity,
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

pub fn incident_id(seq: i64) -> String {
    format!("INC-{seq:06}")
}

/// `INC-000042` -> 42; `None` for anything else.
pub fn parse_incident_id(id: &str) -> Option<i64> {
    let n = id.trim().strip_prefix("INC-")?;
    if n.is_empty() || n.len() > 12 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|n| *n > 0)
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
    sev: Severity,
    detected: OffsetDateTime,
) -> OffsetDateTime {
    match cfg.sla_minutes[sev.idx()] {
        Some(m) => detected + Duration::minutes(m as i64),
        None => next_business_day(detected),
    }
}

pub fn view(row: &IncidentRow, cfg: &IncidentsConfig, now: OffsetDateTime) -> IncidentView {
    let severity = Severity::from_level(row.max_level);
    let status = parse_name(&row.status).unwrap_or(Status::Open);
    let detected = ms_to_time(row.first_alert_ms);
    let due = respond_by(cfg, severity, detected);
    let waiting = status == Status::Open;
    let late = waiting && now > due;
    IncidentView {
        id: incident_id(row.seq),
        title: row.title.clone(),
        severity,
        status,
        phase: parse_name(&row.phase).unwrap_or(Phase::DetectionAnalysis),
        detected_at: rfc3339(detected),
        last_alert_at: rfc3339(ms_to_time(row.last_alert_ms)),
        age_minutes: (now - detected).whole_minutes().max(0),
        sla: Sla {
            respond_by: rfc3339(due),
            breached: late,
        },
        escalation: Escalation {
            contact: cfg.contacts[severity.idx()].clone(),
            due_at: rfc3339(due),
            overdue: late,
        },
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

/// Parse `since`: `30m`, `24h`, `7d` (or `s`, `w`) or an RFC 3339 time.
pub fn parse_since(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, ArgError> {
    let bad = || {
        ArgError::new(
            "since",
            format!(
                "`{}` is not a duration like `30m`, `24h`, `7d` (units s, m, h, d, w) or an RFC 3339 time",
                sanitize_untrusted(s.as_bytes(), 40)
            ),
        )
    };
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    if !(1..=366 * 86_400).contains(&n.saturating_mul(secs)) {
        return Err(ArgError::new("since", "must be between 1s and 366d"));
    }
    Ok(now - Duration::seconds(n * secs))
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
    pub min_severity: Option<Severity>,
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

impl StatusReport {
    pub fn summary_text(&self) -> String {
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

fn load(store: &Store, id: &str) -> Result<IncidentRow, IncidentError> {
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
    let min = args.min_severity.unwrap_or(Severity::Low);
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
            Severity::Low => &mut r.by_severity.low,
            Severity::Medium => &mut r.by_severity.medium,
            Severity::High => &mut r.by_severity.high,
            Severity::Critical => &mut r.by_severity.critical,
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

// ----- lifecycle -----

/// incident_update arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// e.g. `INC-000001`.
    pub incident_id: String,
    /// `acknowledge`, `assign` (needs `assignee`), `set_phase` (needs `phase`), `set_status`
    /// (needs `status`), `note` (needs `note`) or `resolve` (needs `resolution`).
    pub action: Action,
    /// For `assign` (and optionally `acknowledge`).
    pub assignee: Option<String>,
    /// For `set_phase`.
    pub phase: Option<Phase>,
    /// For `set_status`: `acknowledged`, `contained`, or `open` to reopen a resolved incident.
    pub status: Option<Status>,
    /// Required for `note`; allowed with every action.
    pub note: Option<String>,
    /// For `resolve`.
    pub resolution: Option<Resolution>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct UpdateReport {
    /// What changed, in words (also written to the audit log).
    pub change: String,
    pub audit_id: i64,
    pub incident: IncidentView,
}

fn required<T: Copy>(v: Option<T>, arg: &str, action: &str, allowed: &str) -> Result<T, ArgError> {
    v.ok_or_else(|| {
        ArgError::new(
            arg,
            format!("is required for action `{action}`; allowed: {allowed}"),
        )
    })
}

fn text_arg(v: &Option<String>, arg: &str, max: usize) -> Result<Option<String>, ArgError> {
    match v.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Err(ArgError::new(arg, "must not be empty")),
        Some(s) if s.chars().count() > max => Err(ArgError::new(
            arg,
            format!("must be at most {max} characters"),
        )),
        Some(s) => Ok(Some(sanitize_untrusted(s.as_bytes(), max))),
    }
}

/// Apply one lifecycle change, append it to the audit log (before saving: fail closed)
/// and return the incident as it is now.
pub fn update(
    store: &Store,
    cfg: &IncidentsConfig,
    caller: &str,
    args: &UpdateArgs,
    now: OffsetDateTime,
) -> Result<UpdateReport, IncidentError> {
    let act = name(&args.action);
    // Arguments that the action does not use are refused rather than ignored.
    let uses: &[&str] = match args.action {
        Action::Acknowledge => &["assignee"],
        Action::Assign => &["assignee"],
        Action::SetPhase => &["phase"],
        Action::SetStatus => &["status"],
        Action::Note => &[],
        Action::Resolve => &["resolution"],
    };
    for (arg, given) in [
        ("assignee", args.assignee.is_some()),
        ("phase", args.phase.is_some()),
        ("status", args.status.is_some()),
        ("resolution", args.resolution.is_some()),
    ] {
        if given && !uses.contains(&arg) {
            return Err(ArgError::new(arg, format!("is not used by action `{act}`")).into());
        }
    }
    let assignee = text_arg(&args.assignee, "assignee", 100)?;
    let note = text_arg(&args.note, "note", 2000)?;
    let mut row = load(store, &args.incident_id)?;
    let status: Status = parse_name(&row.status).unwrap_or(Status::Open);
    let ts = rfc3339(now);
    let id = incident_id(row.seq);
    let change = match args.action {
        Action::Acknowledge => {
            if status != Status::Open {
                return Err(ArgError::new(
                    "action",
                    format!(
                        "{id} is already {}; acknowledge applies to `open` incidents",
                        row.status
                    ),
                )
                .into());
            }
            row.status = name(&Status::Acknowledged);
            row.acknowledged_at = Some(ts.clone());
            if let Some(a) = &assignee {
                row.assignee = Some(a.clone());
            }
            format!(
                "status open -> acknowledged{}",
                assignee
                    .as_ref()
                    .map(|a| format!(", assigned to {a}"))
                    .unwrap_or_default()
            )
        }
        Action::Assign => {
            let a = assignee.clone().ok_or_else(|| {
                ArgError::new(
                    "assignee",
                    "is required for action `assign`: a person or team name",
                )
            })?;
            let old = row.assignee.replace(a.clone());
            format!("assignee {} -> {a}", old.as_deref().unwrap_or("(none)"))
        }
        Action::SetPhase => {
            let p = required(
                args.phase,
                "phase",
                &act,
                "detection_analysis, containment, eradication_recovery, post_incident",
            )?;
            if status == Status::Resolved && p != Phase::PostIncident {
                return Err(ArgError::new(
                    "phase",
                    format!("{id} is resolved: only `post_incident` is allowed (reopen it first with set_status open)"),
                )
                .into());
            }
            let old = row.phase.clone();
            row.phase = name(&p);
            format!("phase {old} -> {}", row.phase)
        }
        Action::SetStatus => {
            let s = required(args.status, "status", &act, "open, acknowledged, contained")?;
            let ok = match (status, s) {
                (_, Status::Resolved) => {
                    return Err(ArgError::new(
                        "status",
                        "use action `resolve` with a `resolution` (true_positive, false_positive, duplicate) to resolve",
                    )
                    .into());
                }
                (Status::Resolved, Status::Open) => true,
                (Status::Resolved, _) => {
                    return Err(ArgError::new(
                        "status",
                        format!("{id} is resolved; it can only be reopened with status `open`"),
                    )
                    .into());
                }
                (from, to) => to > from,
            };
            if !ok {
                return Err(ArgError::new(
                    "status",
                    format!(
                        "{id} is {}; status moves forward only (open -> acknowledged -> contained -> resolved); allowed now: {}",
                        row.status,
                        match status {
                            Status::Open => "acknowledged, contained",
                            Status::Acknowledged => "contained",
                            _ => "none (resolve it with action `resolve`)",
                        }
                    ),
                )
                .into());
            }
            let old = row.status.clone();
            row.status = name(&s);
            match s {
                Status::Open => {
                    row.resolution = None;
                    row.resolved_at = None;
                    row.phase = name(&Phase::DetectionAnalysis);
                }
                Status::Acknowledged => {
                    row.acknowledged_at.get_or_insert(ts.clone());
                }
                Status::Contained => {
                    row.acknowledged_at.get_or_insert(ts.clone());
                    row.contained_at = Some(ts.clone());
                    if row.phase == name(&Phase::DetectionAnalysis) {
                        row.phase = name(&Phase::Containment);
                    }
                }
                Status::Resolved => {}
            }
            format!("status {old} -> {}", row.status)
        }
        Action::Note => {
            if note.is_none() {
                return Err(ArgError::new(
                    "note",
                    "is required for action `note`: the text to add",
                )
                .into());
            }
            "note added".to_string()
        }
        Action::Resolve => {
            let r = required(
                args.resolution,
                "resolution",
                &act,
                "true_positive, false_positive, duplicate",
            )?;
            if status == Status::Resolved {
                return Err(ArgError::new("action", format!("{id} is already resolved")).into());
            }
            let old = row.status.clone();
            row.status = name(&Status::Resolved);
            row.resolution = Some(name(&r));
            row.resolved_at = Some(ts.clone());
            row.phase = name(&Phase::PostIncident);
            format!("status {old} -> resolved ({})", name(&r))
        }
    };
    if let Some(n) = &note {
        if row.body.notes.len() >= MAX_NOTES {
            row.body.notes.remove(0);
        }
        row.body.notes.push(Note {
            at: ts.clone(),
            by: caller.to_string(),
            text: n.clone(),
        });
    }
    row.updated_at = ts;
    let detail = match &note {
        Some(n) => format!("{change}; note: {}", sanitize_untrusted(n.as_bytes(), 300)),
        None => change.clone(),
    };
    let digest_args = serde_json::json!({
        "incident_id": id, "action": act, "assignee": assignee, "phase": args.phase,
        "status": args.status, "note": note, "resolution": args.resolution,
    });
    let rec = store.audit_append(&AuditEntry {
        caller: caller.to_string(),
        tool: "incident_update".into(),
        action: act,
        args_digest: Some(audit::canonical_digest(&digest_args)),
        outcome: "ok".into(),
        detail: Some(detail),
        incident_id: Some(id),
    })?;
    store.incident_save(&mut row)?;
    Ok(UpdateReport {
        change,
        audit_id: rec.id,
        incident: view(&row, cfg, now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(
        id: &str,
        ts_ms: i64,
        level: u32,
        rule: &str,
        groups: &[&str],
        agent: &str,
        ip: &str,
    ) -> Value {
        json!({
            "_index": "wazuh-alerts-4.x-2026.11.23", "_id": id, "sort": [ts_ms, id],
            "_source": {
                "timestamp": "2026-11-23T10:00:00.000+0000",
                "rule": {"level": level, "id": rule, "description": "desc\u{1b}[31m", "groups": groups,
                         "mitre": {"id": ["T1110"]}},
                "agent": {"id": agent, "name": format!("host-{agent}")},
                "data": {"srcip": ip},
            }
        })
    }

    fn alert(
        id: &str,
        ts_ms: i64,
        level: u32,
        rule: &str,
        groups: &[&str],
        agent: &str,
    ) -> ParsedAlert {
        ParsedAlert::from_hit(&hit(id, ts_ms, level, rule, groups, agent, "203.0.113.9")).unwrap()
    }

    const T0: i64 = 1_795_000_000_000;

    #[test]
    fn severity_buckets_follow_wazuh() {
        for (l, s) in [
            (0, Severity::Low),
            (6, Severity::Low),
            (7, Severity::Medium),
            (11, Severity::Medium),
            (12, Severity::High),
            (14, Severity::High),
            (15, Severity::Critical),
            (16, Severity::Critical),
        ] {
            assert_eq!(Severity::from_level(l), s, "level {l}");
        }
    }

    #[test]
    fn parses_and_sanitises_hits_and_keys() {
        let a = alert(
            "x",
            T0,
            10,
            "5712",
            &["sshd", "authentication_failures"],
            "001",
        );
        assert_eq!(a.correlation_key(), "srcip:203.0.113.9");
        assert_eq!(a.description, "desc.[31m");
        assert_eq!(a.doc, "wazuh-alerts-4.x-2026.11.23/x");
        let b = alert("y", T0, 7, "550", &["syscheck"], "003");
        assert_eq!(b.correlation_key(), "rule:550:agent:003");
        assert!(ParsedAlert::from_hit(&json!({"_id": "z", "_source": {"rule": {}}})).is_none());
        assert_eq!(
            parse_ts_ms("2026-11-23T10:00:00.000+0000"),
            parse_ts_ms("2026-11-23T10:00:00Z")
        );
        for junk in ["", "+0000", "2026-11-23T10:00:00.000+00é0", "é"] {
            assert_eq!(parse_ts_ms(junk), None, "{junk}");
        }
    }

    #[test]
    fn correlation_groups_by_key_and_window_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let cfg = IncidentsConfig::default();
        let now = ms_to_time(T0);
        let auth = &["authentication_failures"];
        let mut alerts: Vec<ParsedAlert> = (0..30)
            .map(|i| {
                alert(
                    &format!("b{i}"),
                    T0 + i * 1000,
                    10,
                    "5712",
                    auth,
                    if i % 2 == 0 { "001" } else { "002" },
                )
            })
            .collect();
        alerts.push(alert("low", T0, 5, "5710", auth, "001"));
        alerts.push(alert("crit", T0, 15, "31168", &["attack"], "001"));
        // Same key, but two hours later: a new incident.
        alerts.push(alert("late", T0 + 2 * 3_600_000, 10, "5712", auth, "001"));
        assert_eq!(ingest_page(&store, &cfg, &alerts, now).unwrap(), (32, 3));
        assert_eq!(ingest_page(&store, &cfg, &alerts, now).unwrap(), (0, 0));
        let rows = store.incidents_active(0, "", 100).unwrap();
        assert_eq!(rows.len(), 3);
        let burst = rows.iter().find(|r| r.alert_count == 30).unwrap();
        assert_eq!(burst.body.agents.len(), 2);
        assert_eq!(burst.body.source_ips, vec!["203.0.113.9"]);
        assert_eq!(
            burst.body.first_alerts.len() + burst.body.last_alerts.len(),
            25
        );
        let crit = rows.iter().find(|r| r.max_level == 15).unwrap();
        assert_eq!(view(crit, &cfg, now).severity, Severity::Critical);
    }

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
            respond_by(&cfg, Severity::Low, fri),
            time::macros::datetime!(2026-11-23 17:00 UTC)
        );
    }

    #[test]
    fn since_accepts_durations_and_rfc3339() {
        let now = ms_to_time(T0);
        assert_eq!(
            parse_since("30m", now).unwrap(),
            now - Duration::minutes(30)
        );
        assert_eq!(parse_since("7d", now).unwrap(), now - Duration::days(7));
        assert!(parse_since("2026-11-23T10:00:00Z", now).is_ok());
        for bad in ["", "yesterday", "5x", "0h", "-3h"] {
            assert_eq!(
                parse_since(bad, now).unwrap_err().argument,
                "since",
                "{bad}"
            );
        }
    }
}
