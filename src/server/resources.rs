//! Read-only MCP resources: the effective configuration (secrets masked), the recent
//! tool-call log, the recent audit log, the firing alerts, and one resource per open incident (`secops://incidents/{id}`, its detail
//! as incident_status shows it, from the store).

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents};

use crate::context::AppContext;

pub const CONFIG_URI: &str = "secops://config";
pub const TOOL_CALLS_URI: &str = "secops://tool-calls/recent";
pub const AUDIT_URI: &str = "secops://audit/recent";
pub const INCIDENT_PREFIX: &str = "secops://incidents/";
pub const ALERTS_FIRING_URI: &str = "secops://alerts/firing";
const RECENT_LIMIT: usize = 100;
/// Most bytes of JSON the audit resource returns; older rows beyond it are left out.
pub const AUDIT_MAX_BYTES: usize = 256 * 1024;
/// Open incidents listed as resources (the most recent first).
const MAX_INCIDENT_RESOURCES: usize = 200;

pub fn list(ctx: &AppContext) -> Vec<Resource> {
    let mut out = vec![
        Resource::new(CONFIG_URI, "config")
            .with_title("Effective configuration")
            .with_description("The settings this server runs with; secrets are masked")
            .with_mime_type("application/json"),
        Resource::new(TOOL_CALLS_URI, "recent_tool_calls")
            .with_title("Recent tool calls")
            .with_description(
                "The last 100 tool calls: time, tool, caller, duration, outcome (no arguments)",
            )
            .with_mime_type("application/json"),
        Resource::new(AUDIT_URI, "recent_audit")
            .with_title("Recent audit entries")
            .with_description(
                "The last 100 rows of the hash-chained audit log (remediation plans, approvals, \
                 refusals, outcomes), newest first, at most 256 KiB (rows_left_out says how \
                 many older ones did not fit), read-only",
            )
            .with_mime_type("application/json"),
        Resource::new(ALERTS_FIRING_URI, "alerts_firing")
            .with_title("Firing alerts")
            .with_description(
                "Our monitors' alerts that are firing now, by level (emergency first), and \
                 those pending, with when they started and who acknowledged them",
            )
            .with_mime_type("application/json"),
    ];
    // Non-resolved incidents only (a far-future `since` excludes resolved ones).
    let rows = ctx
        .store
        .incidents_active(i64::MAX, "9999", MAX_INCIDENT_RESOURCES)
        .unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    for row in rows {
        let v = crate::incidents::view(&row, &ctx.config.incidents, now);
        out.push(
            Resource::new(format!("{INCIDENT_PREFIX}{}", v.id), v.id.to_lowercase())
                .with_title(format!(
                    "{} [{}]",
                    v.id,
                    serde_json::json!(v.severity).as_str().unwrap_or("")
                ))
                .with_description(format!(
                    "{} ({}, status {})",
                    v.title,
                    crate::util::count(v.alert_count, "alert", "alerts"),
                    serde_json::json!(v.status).as_str().unwrap_or("")
                ))
                .with_mime_type("application/json"),
        );
    }
    out
}

pub fn read(ctx: &AppContext, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let value = match uri {
        CONFIG_URI => ctx.config.masked(),
        TOOL_CALLS_URI => {
            ctx.store.flush();
            let calls = ctx
                .store
                .recent_tool_calls(RECENT_LIMIT)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            serde_json::json!({ "tool_calls": calls })
        }
        AUDIT_URI => {
            let rows = ctx
                .store
                .audit_recent(RECENT_LIMIT)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            audit_page(&rows, AUDIT_MAX_BYTES)
        }
        ALERTS_FIRING_URI => {
            let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
            let configured =
                crate::alerts::status::ScheduledMonitor::of_config(&ctx.config.monitors);
            let rules = ctx.config.mute_rules();
            let o =
                crate::alerts::status::overview_muted(&ctx.store, now, &configured, now, &rules)
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            let firing: Vec<_> = ["emergency", "critical", "warning", "info"]
                .iter()
                .flat_map(|l| o.firing.get(*l).cloned().unwrap_or_default())
                .collect();
            serde_json::json!({
                "firing": firing,
                "pending": o.pending,
                "count": firing.len(),
            })
        }
        _ if uri.starts_with(INCIDENT_PREFIX) => {
            let id = &uri[INCIDENT_PREFIX.len()..];
            let now = time::OffsetDateTime::now_utc();
            match crate::incidents::detail(&ctx.store, &ctx.config.incidents, id, now) {
                Ok(d) => serde_json::to_value(d)
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?,
                Err(crate::incidents::IncidentError::InvalidArgument(e)) => {
                    return Err(ErrorData::resource_not_found(e.reason, None));
                }
                Err(e) => return Err(ErrorData::internal_error(e.to_string(), None)),
            }
        }
        _ => {
            return Err(ErrorData::resource_not_found(
                format!(
                    "no resource `{uri}`; available: {CONFIG_URI}, {TOOL_CALLS_URI}, \
                     {AUDIT_URI}, {ALERTS_FIRING_URI}, {INCIDENT_PREFIX}INC-NNNNNN"
                ),
                None,
            ));
        }
    };
    let text = serde_json::to_string_pretty(&value)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ]))
}

/// The newest rows that fit in `max_bytes` of pretty JSON, and how many were left out.
fn audit_page(rows: &[crate::store::AuditRecord], max_bytes: usize) -> serde_json::Value {
    // Room for the envelope and the count (generous).
    let mut used = 256;
    let mut kept = Vec::new();
    for row in rows {
        let v = serde_json::to_value(row).unwrap_or_default();
        // Pretty printing nests each row two levels deep: count that indentation too.
        let size = serde_json::to_string_pretty(&v)
            .map_or(usize::MAX, |t| t.len() + 4 * t.lines().count() + 2);
        if used + size > max_bytes {
            break;
        }
        used += size;
        kept.push(v);
    }
    let left_out = rows.len() - kept.len();
    let mut out = serde_json::json!({ "audit": kept, "rows_left_out": left_out });
    if left_out > 0 {
        out["note"] = serde_json::json!(format!(
            "{left_out} older row(s) of the last {} did not fit in {} KiB; read them with \
             `secops-mcp audit tail -n N` on the server",
            rows.len(),
            max_bytes / 1024
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_page_stays_under_its_cap_and_counts_what_it_left_out() {
        let row = |id: i64| crate::store::AuditRecord {
            id,
            ts: "2026-01-01T00:00:00Z".into(),
            caller: "alice".into(),
            tool: "block_ip".into(),
            action: "refuse".into(),
            args_digest: Some("ab".repeat(32)),
            outcome: "refused".into(),
            detail: Some("d".repeat(1000)),
            incident_id: None,
            prev_hash: "0".repeat(64),
            hash: "1".repeat(64),
        };
        let rows: Vec<_> = (1..=100).rev().map(row).collect();
        let page = audit_page(&rows, 16 * 1024);
        let text = serde_json::to_string_pretty(&page).unwrap();
        assert!(text.len() <= 16 * 1024, "{}", text.len());
        let kept = page["audit"].as_array().unwrap().len();
        assert!(kept > 0 && kept < 100);
        assert_eq!(page["rows_left_out"], 100 - kept);
        assert_eq!(page["audit"][0]["id"], 100, "newest first");
        assert!(page["note"].as_str().unwrap().contains("did not fit"));
        let all = audit_page(&rows, AUDIT_MAX_BYTES);
        assert_eq!(all["rows_left_out"], 0);
        assert!(all.get("note").is_none());
    }
}
