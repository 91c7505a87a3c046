//! `#[tool]` adapters, one file per tool family: JSON arguments -> typed arguments (precise
//! errors naming the argument) -> the check's `run` -> structured content plus a
//! one-paragraph text summary. No business logic lives here. This file owns what every
//! adapter shares: argument parsing, the result shapes, and the call classification for
//! metrics and the tool-call log.

mod alerts;
mod cert;
mod health;
mod host;
mod incidents;
pub(crate) mod remediation;
mod scan;

use rmcp::ErrorData;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, JsonObject};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checks::{ArgError, Summary};

pub use crate::checks::NoArgs;

/// One adapter's whole job: parse the arguments (a bad one is an `invalid argument` result),
/// run the check, and answer with its report and summary, or with the error's text.
pub async fn answer<A, R, E>(
    args: JsonObject,
    run: impl AsyncFnOnce(A) -> Result<R, E>,
) -> CallToolResult
where
    A: DeserializeOwned,
    R: Serialize + Summary,
    E: std::fmt::Display,
{
    match parse_args(args) {
        Ok(a) => reply(run(a).await),
        Err(e) => arg_error(&e),
    }
}

/// A check's result as a tool result: the report with its summary, or `isError: true` with
/// the error's text (an argument error reads `invalid argument ...`, see [`outcome_of`]).
pub fn reply<R: Serialize + Summary, E: std::fmt::Display>(result: Result<R, E>) -> CallToolResult {
    match result {
        Ok(report) => structured(&report, report.summary()),
        Err(e) => tool_error(&e.to_string()),
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
    use crate::checks::wazuh_health::HealthArgs;

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
        let m = crate::server::unknown_tool_message("wazuh_healt", &tools);
        assert!(m.contains("did you mean `wazuh_health`?"), "{m}");
        assert!(
            m.contains("Available tools: wazuh_health, check_cert"),
            "{m}"
        );
        let m = crate::server::unknown_tool_message("zzzzzzzz\u{1b}[31m", &tools);
        assert!(!m.contains("did you mean"), "{m}");
        assert!(!m.contains('\u{1b}'), "{m}");
    }
}
