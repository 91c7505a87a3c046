//! block_ip: containment through Wazuh active response (`firewall-drop` with the address in
//! `alert.data.srcip`) on an explicit agent list. Refuses addresses that must never be blocked
//! and reports each agent's result from `failed_items` instead of claiming success.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::gate::{Call, GateError, Mode};
use super::{ApplyReport, Arguments, Executed, Outcome, PlanReport, Remediation};
use crate::checks::ArgError;
use crate::context::AppContext;
use crate::wazuh::ActiveResponseResult;

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

/// The declared output schema only (the tools/list snapshot pins it): results are a
/// [`PlanReport<BlockPlan>`] or an [`ApplyReport<BlockApplied, BlockOutcome>`].
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
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
    #[error(transparent)]
    Gate(#[from] GateError),
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

/// Validate the address, the agent list and policy; compute the steps.
pub async fn prepare(ctx: &AppContext, args: &BlockArgs) -> Result<Prepared, BlockError> {
    if args.reason.trim().is_empty() {
        return Err(
            ArgError::new("reason", "must say why (it is recorded in the audit log)").into(),
        );
    }
    if args.ip != args.ip.trim() && !args.ip.trim().is_empty() {
        return Err(ArgError::new(
            "ip",
            "has surrounding spaces: values are exact; give one address such as 203.0.113.7",
        )
        .into());
    }
    let ip: IpAddr = args.ip.parse().map_err(|_| {
        ArgError::new(
            "ip",
            format!(
                "`{}` is not an IPv4 or IPv6 address; give one address such as 203.0.113.7 or \
                 2001:db8::7 (no CIDR, no hostname)",
                crate::util::quote_untrusted(&args.ip, 64)
            ),
        )
    })?;
    let ip = ip.to_canonical();
    // An IPv6 address that carries an IPv4 one is checked as that IPv4 too.
    let embedded = embedded_ipv4(ip);
    let never = |why: &str| {
        let what = match embedded {
            Some((v4, form)) => format!("{ip} embeds IPv4 {v4} ({form}), which"),
            None => ip.to_string(),
        };
        Err(ArgError::new("ip", format!("{what} is {why} and is never blocked")).into())
    };
    let checked: Vec<IpAddr> = std::iter::once(ip)
        .chain(embedded.map(|(v4, _)| IpAddr::V4(v4)))
        .collect();
    for &a in &checked {
        if a.is_loopback() {
            return never("a loopback address");
        }
        if a.is_unspecified() {
            return never("the unspecified address");
        }
        if a.is_multicast() || a == IpAddr::from([255, 255, 255, 255]) {
            return never("a multicast or broadcast address");
        }
        if let Some(net) = ctx
            .config
            .remediation
            .protected_cidrs
            .iter()
            .find(|n| n.contains(&a))
        {
            return never(&format!(
                "inside protected range {net} ([remediation.block_ip] protected_cidrs)"
            ));
        }
    }
    let manager = ctx.wazuh.as_ref().ok_or(BlockError::NotConfigured)?;
    let own = manager_addresses(manager.base_url()).await;
    if checked.iter().any(|a| own.contains(a)) {
        return never("the Wazuh manager's own address");
    }
    let policy = &ctx.config.remediation;
    let agents = if args.all_agents {
        if !args.agents.is_empty() {
            return Err(ArgError::new(
                "agents",
                "must be empty when all_agents is true (give one or the other)",
            )
            .into());
        }
        if !policy.allow_all_agents {
            return Err(ArgError::new(
                "all_agents",
                "is not allowed by policy ([remediation.block_ip] allow_all_agents = false); \
                 list the agent ids instead",
            )
            .into());
        }
        None
    } else {
        if args.agents.is_empty() {
            return Err(ArgError::new(
                "agents",
                "is empty, which Wazuh would take as every agent; list agent ids (e.g. \
                 [\"001\"]), or pass all_agents: true where policy allows it",
            )
            .into());
        }
        let max = policy.block_ip_max_agents;
        let mut seen = BTreeSet::new();
        for a in &args.agents {
            if a.len() < 3 || a.len() > 8 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ArgError::new(
                    "agents",
                    format!(
                        "`{}` is not an agent id; agent ids are digits such as \"001\"",
                        crate::util::quote_untrusted(a, 16)
                    ),
                )
                .into());
            }
            seen.insert(a.clone());
            if seen.len() > max {
                return Err(ArgError::new(
                    "agents",
                    format!(
                        "lists more than {max} agents; at most {max} per call \
                         ([remediation.block_ip] max_agents)"
                    ),
                )
                .into());
            }
        }
        // A list naming every agent of the manager is `all_agents` under another name.
        let every = every_agent(manager, seen.len()).await?;
        if !every.is_empty() && every.iter().all(|a| seen.contains(a)) {
            if !policy.allow_all_agents {
                return Err(ArgError::new(
                    "agents",
                    format!(
                        "names every agent of the manager ({}), which is the same as \
                         all_agents and is not allowed by policy ([remediation.block_ip] \
                         allow_all_agents = false); list only the agents that must drop the \
                         address",
                        every.len()
                    ),
                )
                .into());
            }
            None
        } else {
            Some(seen.into_iter().collect::<Vec<_>>())
        }
    };
    let target = agents.as_ref().map_or("every agent".to_string(), |a| {
        format!("agent(s) {}", a.join(", "))
    });
    let steps = vec![
        format!(
            "PUT /active-response on {}: command `{COMMAND}` with alert.data.srcip = {ip} to {target}",
            manager.base_url()
        ),
        "report each agent's result from the response (failed_items: agent missing, not \
         active, ...)"
            .to_string(),
    ];
    Ok(Prepared { ip, agents, steps })
}

/// The IPv4 address an IPv6 address embeds, with the form: NAT64 (64:ff9b::/96, RFC 6052),
/// IPv4-compatible (::/96, deprecated; not :: or ::1). IPv4-mapped (::ffff:0:0/96) is
/// already made IPv4 by `to_canonical`; it is recognised here too.
pub fn embedded_ipv4(ip: IpAddr) -> Option<(std::net::Ipv4Addr, &'static str)> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let s = v6.segments();
    let low = std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((low, "NAT64 64:ff9b::/96")),
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((low, "IPv4-mapped ::ffff:0:0/96")),
        [0, 0, 0, 0, 0, 0, 0, 0] | [0, 0, 0, 0, 0, 0, 0, 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some((low, "IPv4-compatible ::/96")),
        _ => None,
    }
}

/// Every agent id of the manager except 000 (the manager itself), to recognise a list of
/// `listed` ids that names them all (empty when the manager has more agents than that).
/// Fails closed: a manager that cannot list its agents refuses the plan.
async fn every_agent(
    manager: &crate::wazuh::ManagerClient,
    listed: usize,
) -> Result<BTreeSet<String>, BlockError> {
    let failed = |e: crate::wazuh::WazuhError| {
        BlockError::from(ArgError::new(
            "agents",
            format!(
                "cannot be checked: listing the manager's agents failed ({e}); try again when \
                 the Wazuh API answers"
            ),
        ))
    };
    // Counting first spares listing a large estate for a short list.
    let total = manager
        .agents_page(None, 1, 0)
        .await
        .map_err(failed)?
        .total_affected;
    if total > listed as u64 + 1 {
        return Ok(BTreeSet::new());
    }
    let agents = manager.agents(None, listed + 1).await.map_err(failed)?;
    Ok(agents
        .into_iter()
        .map(|a| a.id)
        .filter(|id| id != "000")
        .collect())
}

/// Addresses the manager URL's host resolves to.
async fn manager_addresses(base_url: &str) -> Vec<IpAddr> {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return Vec::new();
    };
    let Some(host) = url.host_str() else {
        return Vec::new();
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip.to_canonical()];
    }
    let port = url.port_or_known_default().unwrap_or(55000);
    tokio::net::lookup_host((host, port))
        .await
        .map(|it| it.map(|a| a.ip().to_canonical()).collect())
        .unwrap_or_default()
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

    #[tokio::test]
    async fn the_manager_address_comes_from_its_url() {
        let v4 = manager_addresses("https://192.0.2.5:55000").await;
        assert_eq!(v4, vec!["192.0.2.5".parse::<IpAddr>().unwrap()]);
        let v6 = manager_addresses("https://[2001:db8::5]:55000/").await;
        assert_eq!(v6, vec!["2001:db8::5".parse::<IpAddr>().unwrap()]);
        let named = manager_addresses("https://localhost:55000").await;
        assert!(named.iter().all(|ip| ip.is_loopback()) && !named.is_empty());
    }

    #[test]
    fn embedded_ipv4_forms_are_recognised() {
        let e = |s: &str| embedded_ipv4(s.parse().unwrap()).map(|(v4, _)| v4.to_string());
        assert_eq!(e("64:ff9b::7f00:1").as_deref(), Some("127.0.0.1"));
        assert_eq!(e("64:ff9b::a01:203").as_deref(), Some("10.1.2.3"));
        assert_eq!(e("64:ff9b::10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(e("::ffff:10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(e("::7f00:1").as_deref(), Some("127.0.0.1"));
        assert_eq!(e("::"), None);
        assert_eq!(e("::1"), None);
        assert_eq!(e("2001:db8::a01:203"), None);
        assert_eq!(e("64:ff9b:1::a01:203"), None);
        assert_eq!(e("10.1.2.3"), None);
    }

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
