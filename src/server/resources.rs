//! Read-only MCP resources: the effective configuration (secrets masked), the recent
//! tool-call log, the recent audit log, and one resource per open incident (`secops://incidents/{id}`, its detail
//! as incident_status shows it, from the store).

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents};

use crate::context::AppContext;

pub const CONFIG_URI: &str = "secops://config";
pub const TOOL_CALLS_URI: &str = "secops://tool-calls/recent";
pub const AUDIT_URI: &str = "secops://audit/recent";
pub const INCIDENT_PREFIX: &str = "secops://incidents/";
const RECENT_LIMIT: usize = 100;
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
                 refusals, outcomes), newest first, read-only",
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
        let v = crate::checks::incidents::view(&row, &ctx.config.incidents, now);
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
            serde_json::json!({ "audit": rows })
        }
        _ if uri.starts_with(INCIDENT_PREFIX) => {
            let id = &uri[INCIDENT_PREFIX.len()..];
            let now = time::OffsetDateTime::now_utc();
            match crate::checks::incidents::detail(&ctx.store, &ctx.config.incidents, id, now) {
                Ok(d) => serde_json::to_value(d)
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?,
                Err(crate::checks::incidents::IncidentError::InvalidArgument(e)) => {
                    return Err(ErrorData::resource_not_found(e.reason, None));
                }
                Err(e) => return Err(ErrorData::internal_error(e.to_string(), None)),
            }
        }
        _ => {
            return Err(ErrorData::resource_not_found(
                format!(
                    "no resource `{uri}`; available: {CONFIG_URI}, {TOOL_CALLS_URI}, \
                     {AUDIT_URI}, {INCIDENT_PREFIX}INC-NNNNNN"
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
