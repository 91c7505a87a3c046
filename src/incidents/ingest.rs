//! Ingestion: idempotent, cursor-based reading of Wazuh alerts from the indexer in
//! bounded `search_after` pages, each alert reduced to a [`ParsedAlert`] and each page
//! correlated (see `correlate.rs`) in one transaction.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::IncidentDeps;
use super::correlate::Correlator;
use super::model::ms_to_time;
use crate::config::IncidentsConfig;
use crate::store::{Store, StoreError};
use crate::util::{rfc3339, sanitize_untrusted};
use crate::wazuh::{ALERTS_INDEX, AlertQuery, IndexerClient, MAX_PAGE};

/// Alert pages (of `MAX_PAGE`) read per ingest run; the rest waits for the next run.
pub const MAX_PAGES_PER_RUN: usize = 200;
const CURSOR_KEY: &str = "incidents.cursor_ms";
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

/// [`ingest`] under the deps' lock: one ingest (or incident update) at a time.
pub async fn ingest_locked(deps: &IncidentDeps<'_>, bootstrap: OffsetDateTime) -> IngestStatus {
    let _one = deps.lock.lock().await;
    ingest(
        deps.indexer,
        deps.store,
        deps.settings,
        bootstrap,
        OffsetDateTime::now_utc(),
    )
    .await
}

/// [`ingest`] unless another ingest or incident update holds the deps' lock right now:
/// then `None` at once, without waiting (the ingest under way reads the same alerts, and
/// the caller reads the store as it is). For callers on a schedule, such as the
/// `security_events` monitor, which must not queue a second ingest behind the first.
pub async fn ingest_if_idle(
    deps: &IncidentDeps<'_>,
    bootstrap: OffsetDateTime,
) -> Option<IngestStatus> {
    let _one = deps.lock.try_lock().ok()?;
    Some(
        ingest(
            deps.indexer,
            deps.store,
            deps.settings,
            bootstrap,
            OffsetDateTime::now_utc(),
        )
        .await,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn hit(
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

    pub(crate) fn alert(
        id: &str,
        ts_ms: i64,
        level: u32,
        rule: &str,
        groups: &[&str],
        agent: &str,
    ) -> ParsedAlert {
        ParsedAlert::from_hit(&hit(id, ts_ms, level, rule, groups, agent, "203.0.113.9")).unwrap()
    }

    pub(crate) const T0: i64 = 1_795_000_000_000;

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
}
