//! Read-only MCP resources: the effective configuration (secrets masked) and the recent
//! tool-call log, so an operator or auditor can see how the server is set up and used.

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents};

use crate::context::AppContext;

pub const CONFIG_URI: &str = "secops://config";
pub const TOOL_CALLS_URI: &str = "secops://tool-calls/recent";
pub const AUDIT_URI: &str = "secops://audit/recent";
const RECENT_LIMIT: usize = 100;

pub fn list() -> Vec<Resource> {
    vec![
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
    ]
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
        _ => {
            return Err(ErrorData::resource_not_found(
                format!(
                    "no resource `{uri}`; available: {CONFIG_URI}, {TOOL_CALLS_URI}, {AUDIT_URI}"
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
