//! block_ip: containment through Wazuh active response (`firewall-drop` with the address in
//! `alert.data.srcip`) on an explicit agent list. Refuses addresses that must never be blocked
//! and reports each agent's result from `failed_items` instead of claiming success. This file
//! holds the arguments, the reports and the apply; `validate.rs` what is refused before a plan.

mod validate;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::gate::{Call, Mode};
use super::{ApplyReport, Arguments, Executed, Outcome, PlanReport, Remediation};
use crate::checks::ArgError;
use crate::context::AppContext;
use crate::wazuh::ActiveResponseResult;

pub use self::validate::{embedded_ipv4, prepare};

pub const TOOL: &str = "block_ip";
const COMMAND: &str = "firewall-drop";

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockArgs {
    /// The IPv4 or IPv6 address to block (a single address, not a CIDR).
    pub ip: String,
    /// Agent ids (e.g. `"001"`) whose firewall drops the address.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Send to every agent instead of a list (only when policy allows it).
    #[serde(default)]
    pub all_agents: bool,
    /// `plan` (default) or `apply`.
    #[serde(default)]
    pub mode: Mode,
    /// The token `plan` returned (required for `apply`).
    pub confirmation_token: Option<String>,
    /// Why the address is blocked (recorded in the audit log).
    pub reason: String,
    /// Incident this change belongs to (recorded in the audit log).
    pub incident_id: Option<String>,
}

impl Arguments for BlockArgs {
    fn mode(&self) -> Mode {
        self.mode
    }
    fn confirmation_token(&self) -> Option<&str> {
        self.confirmation_token.as_deref()
    }
    fn reason(&self) -> &str {
        &self.reason
    }
}

/// Whether the command went to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Sent,
    Failed,
}

/// One agent's result.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AgentResult {
    pub agent: String,
    /// `sent` or `failed`.
    #[schemars(with = "String")]
    pub status: AgentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

// The declared output schema only (the tools/list snapshot pins it): results are a
// `PlanReport<BlockPlan>` or an `ApplyReport<BlockApplied, BlockOutcome>`.
#[derive(schemars::JsonSchema)]
pub struct BlockOutput {
    pub ip: String,
    /// `plan` or `apply`.
    pub mode: String,
    /// The agent ids, or `["all"]`.
    pub agents: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `blocked` (every agent), `partial`, or `failed` (none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<AgentResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A plan's own fields.
#[derive(Debug, Clone, Serialize)]
pub struct BlockPlan {
    pub ip: String,
    /// The agent ids, or `["all"]`.
    pub agents: Vec<String>,
}

/// An applied block's own fields.
#[derive(Debug, Clone, Serialize)]
pub struct BlockApplied {
    pub ip: String,
    /// The agent ids, or `["all"]`.
    pub agents: Vec<String>,
    /// Every agent's result (absent when the Wazuh API call itself failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<AgentResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockOutcome {
    /// Sent to every agent.
    Blocked,
    Partial,
    /// Sent to none.
    Failed,
}

impl Outcome for BlockOutcome {
    fn as_str(self) -> &'static str {
        match self {
            BlockOutcome::Blocked => "blocked",
            BlockOutcome::Partial => "partial",
            BlockOutcome::Failed => "failed",
        }
    }
    fn audit_action(self) -> &'static str {
        match self {
            BlockOutcome::Failed => "failure",
            _ => "success",
        }
    }
    fn failed(self) -> bool {
        self == BlockOutcome::Failed
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error(transparent)]
    InvalidArgument(#[from] ArgError),
    #[error("refused: the Wazuh manager API is not configured (set SECOPS_WAZUH_URL)")]
    NotConfigured,
}

/// A validated request.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub ip: IpAddr,
    /// `None`: every agent.
    pub agents: Option<Vec<String>>,
    pub steps: Vec<String>,
}

/// Send the block (the gate has consumed the token).
async fn execute(
    ctx: &AppContext,
    p: &Prepared,
) -> Result<Executed<BlockApplied, BlockOutcome>, BlockError> {
    let manager = ctx.wazuh.as_ref().ok_or(BlockError::NotConfigured)?;
    let alert = json!({"srcip": p.ip.to_string()});
    let mut out = BlockApplied {
        ip: p.ip.to_string(),
        agents: agents_shown(p),
        results: None,
        detail: None,
    };
    let (outcome, detail) = match manager
        .run_active_response(p.agents.as_deref(), COMMAND, &[], alert)
        .await
    {
        Ok(resp) => {
            let results = agent_results(&resp, p.agents.as_deref());
            let sent = results
                .iter()
                .filter(|r| r.status == AgentStatus::Sent)
                .count();
            let outcome = match sent {
                0 => BlockOutcome::Failed,
                n if n == results.len() => BlockOutcome::Blocked,
                _ => BlockOutcome::Partial,
            };
            let detail = format!(
                "sent to {sent} of {} agent(s); failed: {}",
                results.len(),
                results
                    .iter()
                    .filter(|r| r.status != AgentStatus::Sent)
                    .map(|r| r.agent.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            out.results = Some(results);
            (outcome, detail)
        }
        Err(e) => (
            BlockOutcome::Failed,
            format!("the Wazuh API refused or failed: {e}"),
        ),
    };
    if outcome == BlockOutcome::Failed && out.results.is_none() {
        out.detail = Some(detail.clone());
    }
    Ok(Executed {
        report: out,
        outcome,
        audit_detail: detail,
    })
}

/// The agent ids, or `["all"]`.
fn agents_shown(p: &Prepared) -> Vec<String> {
    p.agents.clone().unwrap_or_else(|| vec!["all".into()])
}

/// Per-agent results from the affected and failed items; requested agents the answer does
/// not mention count as failed (never claim an unconfirmed block).
fn agent_results(resp: &ActiveResponseResult, requested: Option<&[String]>) -> Vec<AgentResult> {
    let mut out: Vec<AgentResult> = resp
        .affected
        .iter()
        .map(|agent| AgentResult {
            agent: agent.clone(),
            status: AgentStatus::Sent,
            code: None,
            reason: None,
        })
        .collect();
    for f in &resp.failed {
        let message = f
            .message
            .as_deref()
            .map(|m| crate::util::sanitize_untrusted(m.as_bytes(), 200));
        for agent in &f.ids {
            out.push(AgentResult {
                agent: agent.clone(),
                status: AgentStatus::Failed,
                code: f.code,
                reason: message.clone(),
            });
        }
    }
    for a in requested.unwrap_or_default() {
        if !out.iter().any(|r| &r.agent == a) {
            out.push(AgentResult {
                agent: a.clone(),
                status: AgentStatus::Failed,
                code: None,
                reason: Some("not confirmed by the Wazuh API".into()),
            });
        }
    }
    out.sort_by(|a, b| a.agent.cmp(&b.agent));
    out
}

/// The block_ip action.
pub struct BlockIp;

impl Remediation for BlockIp {
    const TOOL: &'static str = TOOL;
    type Args = BlockArgs;
    type Prepared = Prepared;
    type Plan = BlockPlan;
    type Applied = BlockApplied;
    type Outcome = BlockOutcome;
    type Error = BlockError;

    async fn prepare(ctx: &AppContext, args: &BlockArgs) -> Result<Prepared, BlockError> {
        prepare(ctx, args).await
    }

    fn steps(p: &Prepared) -> &[String] {
        &p.steps
    }

    fn summary(p: &Prepared, reason: &str) -> String {
        format!(
            "block {} (firewall-drop) on agent(s) {}; reason: {reason}",
            p.ip,
            agents_shown(p).join(",")
        )
    }

    fn question(p: &Prepared, reason: &str) -> String {
        format!(
            "secops-mcp asks to BLOCK {} (firewall-drop) on agent(s) {}.\nReason: {reason}\n\
             Approve this change?",
            p.ip,
            agents_shown(p).join(", ")
        )
    }

    fn plan(p: &Prepared) -> BlockPlan {
        BlockPlan {
            ip: p.ip.to_string(),
            agents: agents_shown(p),
        }
    }

    async fn execute(
        ctx: &AppContext,
        p: &Prepared,
        _call: &Call,
    ) -> Result<Executed<BlockApplied, BlockOutcome>, BlockError> {
        execute(ctx, p).await
    }

    fn plan_summary(r: &PlanReport<BlockPlan>) -> String {
        format!(
            "Plan to block {} on {}. Nothing changed yet; apply with the confirmation_token \
             before {}.",
            r.action.ip,
            r.action.agents.join(", "),
            r.expires_at
        )
    }

    fn applied_summary(r: &ApplyReport<BlockApplied, BlockOutcome>) -> String {
        let (a, o) = (&r.action, r.outcome.as_str());
        match &a.results {
            Some(results) => {
                let sent = results
                    .iter()
                    .filter(|a| a.status == AgentStatus::Sent)
                    .count();
                let failed: Vec<String> = results
                    .iter()
                    .filter(|a| a.status != AgentStatus::Sent)
                    .map(|a| format!("{} ({})", a.agent, a.reason.as_deref().unwrap_or("failed")))
                    .collect();
                format!(
                    "block_ip {} {o}: sent to {sent} agent(s){}{}",
                    a.ip,
                    if failed.is_empty() {
                        ""
                    } else {
                        "; NOT blocked on: "
                    },
                    failed.join(", ")
                )
            }
            None => format!(
                "block_ip {} {o}: {}",
                a.ip,
                a.detail.as_deref().unwrap_or("")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_come_from_failed_items_and_missing_agents_fail() {
        let resp = json!({"data": {
            "affected_items": ["001"],
            "failed_items": [{"error": {"code": 1701, "message": "Agent does not exist"}, "id": ["999"]}],
            "total_affected_items": 1, "total_failed_items": 1}});
        let req = vec!["001".to_string(), "002".to_string(), "999".to_string()];
        let r = agent_results(&ActiveResponseResult::parse(&resp), Some(&req));
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].status, AgentStatus::Sent);
        assert_eq!(r[1].agent, "002");
        assert_eq!(r[1].status, AgentStatus::Failed);
        assert_eq!(r[2].code, Some(1701));
    }
}
