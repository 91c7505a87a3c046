//! The `agents` component: the agent summary, the disconnected share against the
//! threshold, and the first disconnected agents by name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::request::{bounded, ready};
use super::{ComponentStatus, HealthDeps, status_of};
use crate::checks::{Finding, Severity};

/// How many disconnected agents are named in the report.
const MAX_LISTED_AGENTS: usize = 20;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentBrief {
    pub id: String,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub last_keep_alive: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentsSection {
    pub check: ComponentStatus,
    pub active: u64,
    pub disconnected: u64,
    pub never_connected: u64,
    pub pending: u64,
    pub total: u64,
    /// Up to 20 disconnected agents.
    pub disconnected_agents: Vec<AgentBrief>,
    pub error: Option<String>,
}

pub(super) async fn check(
    deps: &HealthDeps<'_>,
    timeout: Duration,
) -> (AgentsSection, Vec<Finding>) {
    let mut s = AgentsSection {
        check: ComponentStatus::NotConfigured,
        active: 0,
        disconnected: 0,
        never_connected: 0,
        pending: 0,
        total: 0,
        disconnected_agents: Vec::new(),
        error: None,
    };
    let m = match ready(deps, timeout).await {
        Ok(m) => m,
        Err(stop) => {
            (s.check, s.error) = (stop.check, Some(stop.error));
            return (s, Vec::new());
        }
    };
    let mut f = Vec::new();
    let sum = match bounded(timeout, "GET /agents/summary/status", m.agents_summary()).await {
        Ok(sum) => sum,
        Err(e) => {
            s.check = ComponentStatus::Error;
            s.error = Some(e.into());
            return (s, f);
        }
    };
    s.active = sum.active;
    s.disconnected = sum.disconnected;
    s.never_connected = sum.never_connected;
    s.pending = sum.pending;
    s.total = sum.total;
    if sum.disconnected > 0 {
        if let Ok(list) = bounded(
            timeout,
            "GET /agents?status=disconnected",
            m.agents(Some("disconnected"), MAX_LISTED_AGENTS),
        )
        .await
        {
            s.disconnected_agents = list
                .into_iter()
                .map(|a| AgentBrief {
                    id: a.id,
                    name: a
                        .name
                        .map(|n| crate::util::sanitize_untrusted(n.as_bytes(), 64)),
                    ip: a.ip,
                    last_keep_alive: a.last_keep_alive,
                })
                .collect();
        }
        let share = if sum.total > 0 {
            sum.disconnected as f64 * 100.0 / sum.total as f64
        } else {
            0.0
        };
        let warn = deps.settings.disconnected_warn_percent;
        if share > warn {
            let sev = if share > 25.0f64.max(warn) {
                Severity::Critical
            } else {
                Severity::Warning
            };
            f.push(
                Finding::new(
                    sev,
                    "agents_disconnected",
                    format!(
                        "{} of {} agents ({share:.0} %) {} disconnected",
                        sum.disconnected,
                        sum.total,
                        crate::util::plural(sum.disconnected, "is", "are")
                    ),
                )
                .with_remediation("On an affected host: systemctl status wazuh-agent and /var/ossec/logs/ossec.log; check that ports 1514/1515 to the manager are open and the agent key is valid."),
            );
        } else {
            f.push(Finding::new(
                Severity::Info,
                "agents_disconnected",
                format!(
                    "{} of {} agents {} disconnected",
                    sum.disconnected,
                    sum.total,
                    crate::util::plural(sum.disconnected, "is", "are")
                ),
            ));
        }
    }
    if sum.never_connected > 0 {
        f.push(
            Finding::new(
                Severity::Info,
                "agents_never_connected",
                format!(
                    "{} registered {} never connected",
                    sum.never_connected,
                    crate::util::plural(sum.never_connected, "agent", "agents")
                ),
            )
            .with_remediation(
                "Finish their enrolment or remove stale registrations (manage_agents).",
            ),
        );
    }
    if sum.pending > 0 {
        f.push(Finding::new(
            Severity::Info,
            "agents_pending",
            format!(
                "{} {} pending",
                sum.pending,
                crate::util::plural(sum.pending, "agent is", "agents are")
            ),
        ));
    }
    s.check = status_of(&f);
    (s, f)
}
