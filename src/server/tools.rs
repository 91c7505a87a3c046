//! `#[tool]` adapters: JSON arguments -> typed arguments (precise errors naming the
//! argument) -> a check or remediation call -> structured content plus a one-paragraph
//! text summary. No business logic lives here.

pub(crate) mod remediation;

use rmcp::model::ProgressNotificationParam;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::SecopsServer;
use crate::checks::ArgError;
use crate::checks::cert::{CertArgs, CertError, CertReport};
use crate::checks::containers::ContainersReport;
use crate::checks::host::{HostReport, HostThresholds};
use crate::checks::incidents::{
    IncidentError, StatusArgs, StatusReport, UpdateArgs, UpdateReport, parse_since,
};
use crate::checks::scan::{ScanArgs, ScanError, ScanReport};
use crate::checks::wazuh_health::{HealthArgs, HealthReport};

const CHECK_CERT_DESC: &str = include_str!("../../tools/check_cert.md");
const WAZUH_HEALTH_DESC: &str = include_str!("../../tools/wazuh_health.md");
const HOST_METRICS_DESC: &str = include_str!("../../tools/host_metrics.md");
const CONTAINER_STATUS_DESC: &str = include_str!("../../tools/container_status.md");
const SCAN_HOST_DESC: &str = include_str!("../../tools/scan_host.md");
const INCIDENT_STATUS_DESC: &str = include_str!("../../tools/incident_status.md");
const INCIDENT_UPDATE_DESC: &str = include_str!("../../tools/incident_update.md");

/// Arguments of tools that take none (unknown arguments are still refused).
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[tool_router(vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "check_cert",
        description = CHECK_CERT_DESC,
        input_schema = super::schema::input::<CertArgs>(),
        output_schema = super::schema::output::<CertReport>(),
        annotations(
            title = "Check TLS certificates",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn check_cert(&self, args: JsonObject) -> CallToolResult {
        let mut args: CertArgs = match parse_args(args) {
            Ok(a) => a,
            Err(e) => return arg_error(&e),
        };
        let defaults = &self.context().config.cert;
        args.warning_days.get_or_insert(defaults.warning_days);
        args.critical_days.get_or_insert(defaults.critical_days);
        args.timeout_ms.get_or_insert(defaults.timeout_ms as i64);
        match self.context().cert.check(args).await {
            Ok(report) => structured(&report, report.summary_text()),
            Err(CertError::InvalidArgument(e)) => arg_error(&e),
            Err(e) => tool_error(&e.to_string()),
        }
    }

    #[tool(
        name = "wazuh_health",
        description = WAZUH_HEALTH_DESC,
        input_schema = super::schema::input::<HealthArgs>(),
        output_schema = super::schema::output::<HealthReport>(),
        annotations(
            title = "Wazuh health",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn wazuh_health(&self, args: JsonObject) -> CallToolResult {
        let args: HealthArgs = match parse_args(args) {
            Ok(a) => a,
            Err(e) => return arg_error(&e),
        };
        match crate::checks::wazuh_health::run(&self.context().health_deps(), &args).await {
            Ok(report) => structured(&report, report.summary_text()),
            Err(e) => arg_error(&e),
        }
    }

    #[tool(
        name = "scan_host",
        description = SCAN_HOST_DESC,
        input_schema = super::schema::input::<ScanArgs>(),
        output_schema = super::schema::output::<ScanReport>(),
        annotations(
            title = "Scan a host's TCP ports",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn scan_host(
        &self,
        rctx: RequestContext<RoleServer>,
        args: JsonObject,
    ) -> CallToolResult {
        let args: ScanArgs = match parse_args(args) {
            Ok(a) => a,
            Err(e) => return arg_error(&e),
        };
        let plan = match args.validate() {
            Ok(p) => p,
            Err(e) => return arg_error(&e),
        };
        let caller = self.caller(&rctx);
        if let Err(msg) = self.context().scan_limiter.check(&caller.0) {
            return tool_error(&msg);
        }
        // Progress: the engine reports every 100 ms; a task forwards the latest count to the
        // client at most every 250 ms (only when the client asked for progress).
        let (tx, mut rx) = tokio::sync::watch::channel((0usize, 0usize));
        let forwarder = rctx.meta.get_progress_token().map(|token| {
            let peer = rctx.peer.clone();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let (done, total) = *rx.borrow_and_update();
                    let note = ProgressNotificationParam::new(token.clone(), done as f64)
                        .with_total(total as f64)
                        .with_message(format!("{done}/{total} ports probed"));
                    if peer.notify_progress(note).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            })
        });
        let progress = move |done: usize, total: usize| {
            let _ = tx.send((done, total));
        };
        let deps = self.context().scan_deps();
        let result = crate::checks::scan::run_plan(&deps, &plan, &rctx.ct, &progress).await;
        drop(progress);
        if let Some(f) = forwarder {
            // Let the last count go out, but never hold the result for a slow client.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(300), f).await;
        }
        match result {
            Ok(report) => structured(&report, report.summary_text()),
            Err(ScanError::InvalidArgument(e)) => arg_error(&e),
            Err(ScanError::Refused(r)) => tool_error(&r.to_string()),
        }
    }

    #[tool(
        name = "host_metrics",
        description = HOST_METRICS_DESC,
        input_schema = super::schema::input::<NoArgs>(),
        output_schema = super::schema::output::<HostReport>(),
        annotations(
            title = "Host metrics",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn host_metrics(&self, args: JsonObject) -> CallToolResult {
        if let Err(e) = parse_args::<NoArgs>(args) {
            return arg_error(&e);
        }
        let h = &self.context().config.health;
        let th = HostThresholds {
            cpu_warn: h.cpu_warn_percent,
            memory_warn: h.memory_warn_percent,
            disk_warn: h.disk_warn_percent,
        };
        match crate::checks::host::measure(th).await {
            Ok(r) => {
                let summary = format!(
                    "CPU {:.1} %, memory {:.1} %, fullest disk {:.1} %, load {:.2}; {}.",
                    r.cpu_percent,
                    r.memory_percent,
                    r.disk_percent,
                    r.load_1m,
                    crate::util::count(r.findings.len() as u64, "finding", "findings")
                );
                structured(&r, summary)
            }
            Err(e) => tool_error(&e),
        }
    }

    #[tool(
        name = "container_status",
        description = CONTAINER_STATUS_DESC,
        input_schema = super::schema::input::<NoArgs>(),
        output_schema = super::schema::output::<ContainersReport>(),
        annotations(
            title = "Container status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn container_status(&self, args: JsonObject) -> CallToolResult {
        if let Err(e) = parse_args::<NoArgs>(args) {
            return arg_error(&e);
        }
        let h = &self.context().config.health;
        let r = crate::checks::containers::check(
            h.docker_host.as_deref(),
            &h.container_filter,
            std::time::Duration::from_millis(h.timeout_ms),
        )
        .await;
        let summary = if r.available {
            format!(
                "{} matching `{}`; {}.",
                crate::util::count(r.containers.len() as u64, "container", "containers"),
                r.name_filter,
                crate::util::count(r.findings.len() as u64, "finding", "findings")
            )
        } else {
            format!(
                "Containers not available: {}",
                r.reason.as_deref().unwrap_or("unknown reason")
            )
        };
        structured(&r, summary)
    }
}

#[tool_router(router = incident_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "incident_status",
        description = INCIDENT_STATUS_DESC,
        input_schema = super::schema::input::<StatusArgs>(),
        output_schema = super::schema::output::<StatusReport>(),
        annotations(
            title = "Incident status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn incident_status(&self, args: JsonObject) -> CallToolResult {
        let args: StatusArgs = match parse_args(args) {
            Ok(a) => a,
            Err(e) => return arg_error(&e),
        };
        let now = time::OffsetDateTime::now_utc();
        let since = match parse_since(args.since.as_deref().unwrap_or("24h"), now) {
            Ok(t) => t,
            Err(e) => return arg_error(&e),
        };
        let ctx = self.context();
        let ingest = ctx.ingest_incidents(since).await;
        match crate::checks::incidents::status(
            &ctx.store,
            &ctx.config.incidents,
            &args,
            ingest,
            now,
        ) {
            Ok(r) => structured(&r, r.summary_text()),
            Err(e) => incident_error(&e),
        }
    }

    #[tool(
        name = "incident_update",
        description = INCIDENT_UPDATE_DESC,
        input_schema = super::schema::input::<UpdateArgs>(),
        output_schema = super::schema::output::<UpdateReport>(),
        annotations(
            title = "Update an incident",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn incident_update(
        &self,
        args: JsonObject,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> CallToolResult {
        let args: UpdateArgs = match parse_args(args) {
            Ok(a) => a,
            Err(e) => return arg_error(&e),
        };
        let caller = self.caller(&context);
        let ctx = self.context();
        // Not while alerts are being ingested: both read-modify-write the incident row.
        let _one = ctx.ingest_lock.lock().await;
        let now = time::OffsetDateTime::now_utc();
        match crate::checks::incidents::update(
            &ctx.store,
            &ctx.config.incidents,
            &caller.0,
            &args,
            now,
        ) {
            Ok(r) => {
                let summary = format!("{}: {}.", r.incident.id, r.change);
                structured(&r, summary)
            }
            Err(e) => incident_error(&e),
        }
    }
}

fn incident_error(e: &IncidentError) -> CallToolResult {
    match e {
        IncidentError::InvalidArgument(a) => arg_error(a),
        IncidentError::Store(_) => tool_error(&e.to_string()),
    }
}

/// Deserialize tool arguments, turning serde's complaint into an [`ArgError`] that names
/// the argument (or the unknown one) and what is allowed.
pub fn parse_args<T: DeserializeOwned>(args: JsonObject) -> Result<T, ArgError> {
    let value = serde_json::Value::Object(args);
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if let Some(rest) = inner.strip_prefix("unknown field `") {
            let (name, allowed) = rest.rsplit_once("`, ").unwrap_or((rest, ""));
            let name = crate::util::sanitize_untrusted(name.as_bytes(), 64);
            if allowed.contains("there are no fields") {
                return ArgError::new(name, "unknown argument: this tool takes no arguments");
            }
            let allowed = allowed
                .trim_start_matches("expected ")
                .trim_start_matches("one of ");
            return ArgError::new(name, format!("unknown argument; allowed: {allowed}"));
        }
        if let Some(rest) = inner.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or(rest);
            return ArgError::new(name, "is required");
        }
        let name = if path == "." { "arguments" } else { &path };
        ArgError::new(name, inner)
    })
}

/// A successful result: the report as structured content, plus a short summary and the
/// serialized JSON as text (for clients that do not read structured content).
pub fn structured<T: Serialize>(report: &T, summary: String) -> CallToolResult {
    match serde_json::to_value(report) {
        Ok(value) => {
            let mut r = CallToolResult::structured(value);
            r.content.insert(0, ContentBlock::text(summary));
            r
        }
        Err(e) => tool_error(&format!("internal error: cannot serialize report: {e}")),
    }
}

pub fn arg_error(e: &ArgError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(e.to_string())])
}

pub fn tool_error(msg: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(msg.to_string())])
}

/// Classify a call for metrics and the tool-call log.
pub fn outcome_of(result: &Result<CallToolResponse, ErrorData>) -> &'static str {
    match result {
        Err(_) => "protocol_error",
        Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
            let first = r
                .content
                .first()
                .and_then(|c| c.as_text())
                .map(|t| t.text.as_str());
            if first.is_some_and(|t| t.starts_with("invalid argument")) {
                "invalid_argument"
            } else {
                "error"
            }
        }
        Ok(_) => "ok",
    }
}

/// The non-secret shape of a call for the tool-call log (never argument values that could
/// hold secrets).
pub fn call_detail(tool: &str, args: Option<&JsonObject>) -> Option<String> {
    let args = args?;
    match tool {
        "wazuh_health" => args
            .get("include")
            .and_then(|t| t.as_array())
            .map(|t| format!("components={}", t.len())),
        "check_cert" => args
            .get("targets")
            .and_then(|t| t.as_array())
            .map(|t| format!("targets={}", t.len())),
        "rotate_credentials" | "block_ip" => {
            // Shape only: the mode, the credential id (a configuration name) or how many
            // agents; never the reason text or a token.
            let mode = args.get("mode").and_then(|m| m.as_str()).unwrap_or("plan");
            let mode = crate::util::sanitize_untrusted(mode.as_bytes(), 16);
            Some(match args.get("credential").and_then(|c| c.as_str()) {
                Some(c) => format!(
                    "mode={mode} credential={}",
                    crate::util::sanitize_untrusted(c.as_bytes(), 64)
                ),
                None => format!(
                    "mode={mode} agents={}",
                    args.get("agents")
                        .and_then(|a| a.as_array())
                        .map_or(0, |a| a.len())
                ),
            })
        }
        "scan_host" => {
            let target = args.get("target").and_then(|t| t.as_str()).unwrap_or("");
            let spec = match args.get("ports") {
                None => Ok(crate::checks::scan::ports::PortSpec::from("top100")),
                Some(v) => {
                    serde_json::from_value::<crate::checks::scan::ports::PortSpec>(v.clone())
                        .map_err(|_| ())
                }
            };
            let ports = spec
                .ok()
                .and_then(|s| crate::checks::scan::ports::parse(s.as_str()).ok())
                .map(|p| p.0.len().to_string())
                .unwrap_or_else(|| "invalid".into());
            Some(format!(
                "target={} ports={ports}",
                crate::util::sanitize_untrusted(target.as_bytes(), 80)
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn unknown_arguments_are_named_plainly() {
        let e = parse_args::<NoArgs>(obj(serde_json::json!({"verbose": true}))).unwrap_err();
        assert_eq!(e.argument, "verbose");
        assert_eq!(e.reason, "unknown argument: this tool takes no arguments");
        let e = parse_args::<HealthArgs>(obj(serde_json::json!({"includ": []}))).unwrap_err();
        assert_eq!(e.argument, "includ");
        assert_eq!(e.reason.matches("allowed").count(), 1, "{}", e.reason);
        assert!(e.reason.contains("`include`"), "{}", e.reason);
        assert!(!e.reason.contains("expected"), "{}", e.reason);
    }

    #[test]
    fn unknown_tool_names_get_the_list_and_a_suggestion() {
        let tools = vec!["wazuh_health".to_string(), "check_cert".to_string()];
        let m = super::super::unknown_tool_message("wazuh_healt", &tools);
        assert!(m.contains("did you mean `wazuh_health`?"), "{m}");
        assert!(
            m.contains("Available tools: wazuh_health, check_cert"),
            "{m}"
        );
        let m = super::super::unknown_tool_message("zzzzzzzz\u{1b}[31m", &tools);
        assert!(!m.contains("did you mean"), "{m}");
        assert!(!m.contains('\u{1b}'), "{m}");
    }
}
