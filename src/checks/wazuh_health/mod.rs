//! wazuh_health: one verdict over the whole Wazuh platform. Components (manager, cluster,
//! agents, indexer, logs, certificates, host, containers) are checked concurrently, each
//! under its own timeout, so the call takes about as long as the slowest component and a
//! dead manager gives `unreachable` promptly. This file owns the arguments, the report, the
//! run and the verdict; each component has its own file. Contract: TOOLS.md `wazuh_health`.

mod agents;
mod certificates;
mod cluster;
mod containers;
mod daemons;
mod host;
mod indexer;
mod logs;
mod manager;
mod request;

use std::future::Future;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use agents::{AgentBrief, AgentsSection};
pub use certificates::{CertExpiry, CertificatesSection};
pub use cluster::ClusterSection;
pub use containers::ContainersSection;
pub use host::HostSection;
pub use indexer::IndexerSection;
pub use logs::{LogWindow, LogsSection};
pub use manager::ManagerSection;

use super::cert::CertChecker;
use super::{ArgError, Finding, Severity, Summary};
use crate::config::HealthConfig;
use crate::store::Store;
use crate::wazuh::{IndexerClient, ManagerClient};

pub const COMPONENTS: [&str; 8] = [
    "manager",
    "cluster",
    "agents",
    "indexer",
    "logs",
    "certificates",
    "host",
    "containers",
];

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthArgs {
    /// Components to check (default all): `manager`, `cluster`, `agents`, `indexer`, `logs`,
    /// `certificates`, `host`, `containers`.
    #[serde(default)]
    #[schemars(extend("default" = null))]
    pub include: Option<Vec<String>>,
    /// Window of the `logs` component: `30m`, `24h` (default), `7d`, or an RFC 3339 time.
    /// Errors in the window are a warning; critical entries are critical only when they
    /// are recent (`health.logs_critical_window_minutes`, default the last hour).
    #[serde(default)]
    #[schemars(extend("default" = "24h"))]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    Degraded,
    Critical,
    Unreachable,
    NotConfigured,
}

// A component's status (its `check` field); the schemas keep the published name `Check`,
// and the doc line below is the schema's description.
/// Outcome of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Check")]
pub enum ComponentStatus {
    Ok,
    Warning,
    Critical,
    /// The component could not be checked (see `error`).
    Error,
    NotConfigured,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HealthReport {
    pub status: Verdict,
    pub checked_at: String,
    pub duration_ms: u64,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<ManagerSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents: Option<AgentsSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexer: Option<IndexerSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogsSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<CertificatesSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<ContainersSection>,
}

/// What the check needs from the server context.
pub struct HealthDeps<'a> {
    pub manager: Option<&'a ManagerClient>,
    pub indexer: Option<&'a IndexerClient>,
    /// Trusts the manager API's CA.
    pub manager_certs: Option<&'a CertChecker>,
    /// Trusts the indexer's CA.
    pub indexer_certs: Option<&'a CertChecker>,
    pub store: &'a Store,
    pub settings: &'a HealthConfig,
}

impl HealthArgs {
    /// The components to check, validated.
    pub fn components(&self) -> Result<Vec<&'static str>, ArgError> {
        let Some(list) = &self.include else {
            return Ok(COMPONENTS.to_vec());
        };
        if list.is_empty() {
            return Err(ArgError::new(
                "include",
                format!(
                    "must name at least one component; allowed: {}",
                    COMPONENTS.join(", ")
                ),
            ));
        }
        let mut out = Vec::new();
        for c in list {
            let known = super::keyword("include", c, &COMPONENTS)?;
            if !out.contains(&known) {
                out.push(known);
            }
        }
        Ok(out)
    }
}

/// Run the health check.
pub async fn run(deps: &HealthDeps<'_>, args: &HealthArgs) -> Result<HealthReport, ArgError> {
    let components = args.components()?;
    let now = OffsetDateTime::now_utc();
    let window = LogWindow {
        since: super::parse_since(args.since.as_deref().unwrap_or("24h"), now)?,
        critical_since: now
            - time::Duration::minutes(deps.settings.logs_critical_window_minutes as i64),
    };
    let wants = |c: &str| components.contains(&c);
    let started = Instant::now();
    let timeout = Duration::from_millis(deps.settings.timeout_ms);

    let manager = maybe(wants("manager"), manager::check(deps, timeout));
    let cluster = maybe(wants("cluster"), cluster::check(deps, timeout));
    let agents = maybe(wants("agents"), agents::check(deps, timeout));
    let indexer = maybe(wants("indexer"), indexer::check(deps, timeout));
    let logs = maybe(wants("logs"), logs::check(deps, timeout, &window));
    let certificates = maybe(wants("certificates"), certificates::check(deps, timeout));
    let host = maybe(wants("host"), host::check(deps, timeout));
    let containers = maybe(wants("containers"), containers::check(deps, timeout));
    let (manager, cluster, agents, indexer, logs, certificates, host, containers) = tokio::join!(
        manager,
        cluster,
        agents,
        indexer,
        logs,
        certificates,
        host,
        containers
    );

    let mut findings = Vec::new();
    let manager = collect(&mut findings, manager);
    let cluster = collect(&mut findings, cluster);
    let agents = collect(&mut findings, agents);
    let indexer = collect(&mut findings, indexer);
    let logs = collect(&mut findings, logs);
    let certificates = collect(&mut findings, certificates);
    let host = collect(&mut findings, host);
    let containers = collect(&mut findings, containers);
    // Most severe first, stable within a severity.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));

    Ok(HealthReport {
        status: verdict(deps, &components, manager.as_ref(), &findings),
        checked_at: crate::util::now_rfc3339(),
        duration_ms: started.elapsed().as_millis() as u64,
        findings,
        manager,
        cluster,
        agents,
        indexer,
        logs,
        certificates,
        host,
        containers,
    })
}

/// The one verdict: not configured (a Wazuh component asked for without a manager),
/// unreachable (the manager did not answer), else the worst finding.
fn verdict(
    deps: &HealthDeps<'_>,
    components: &[&str],
    manager: Option<&ManagerSection>,
    findings: &[Finding],
) -> Verdict {
    if deps.manager.is_none()
        && components
            .iter()
            .any(|c| !matches!(*c, "host" | "containers"))
    {
        Verdict::NotConfigured
    } else if manager.is_some_and(|m| !m.reachable) {
        Verdict::Unreachable
    } else if findings.iter().any(|f| f.severity == Severity::Critical) {
        Verdict::Critical
    } else if findings.iter().any(|f| f.severity == Severity::Warning) {
        Verdict::Degraded
    } else {
        Verdict::Healthy
    }
}

/// Move a component's findings into the report's list and keep its section.
fn collect<T>(findings: &mut Vec<Finding>, checked: Option<(T, Vec<Finding>)>) -> Option<T> {
    checked.map(|(section, f)| {
        findings.extend(f);
        section
    })
}

async fn maybe<T>(wanted: bool, fut: impl Future<Output = T>) -> Option<T> {
    if wanted { Some(fut.await) } else { None }
}

/// A component's status from its findings: the worst one.
fn status_of(findings: &[Finding]) -> ComponentStatus {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => ComponentStatus::Critical,
        Some(Severity::Warning) => ComponentStatus::Warning,
        _ => ComponentStatus::Ok,
    }
}

const NOT_CONFIGURED: &str = "Wazuh manager API not configured: set SECOPS_WAZUH_URL, SECOPS_WAZUH_USER and SECOPS_WAZUH_PASSWORD (or _FILE)";

/// RFC 3339, or Wazuh's `2021-05-27 10:50:08.985208+00:00` style.
pub fn parse_loose_time(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let t = s.trim();
    OffsetDateTime::parse(t, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&t.replacen(' ', "T", 1), &Rfc3339))
        .ok()
}

impl Summary for HealthReport {
    /// One short paragraph a person can read.
    fn summary(&self) -> String {
        let verdict = match self.status {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Critical => "critical",
            Verdict::Unreachable => "unreachable",
            Verdict::NotConfigured => "not configured",
        };
        let mut out = format!("Wazuh is {verdict} (checked in {} ms).", self.duration_ms);
        let serious: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .collect();
        if serious.is_empty() {
            out.push_str(" No problems found.");
        } else {
            out.push_str(&format!(
                " {}:",
                crate::util::count(serious.len() as u64, "finding", "findings")
            ));
            for f in serious.iter().take(5) {
                let sev = if f.severity == Severity::Critical {
                    "critical"
                } else {
                    "warning"
                };
                out.push_str(&format!(" [{sev}] {};", f.message));
            }
            if serious.len() > 5 {
                out.push_str(&format!(" and {} more.", serious.len() - 5));
            }
        }
        if let Some(a) = &self.agents
            && a.check != ComponentStatus::Error
            && a.check != ComponentStatus::NotConfigured
        {
            out.push_str(&format!(
                " Agents: {} active, {} disconnected, {} never connected.",
                a.active, a.disconnected, a.never_connected
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_is_validated() {
        let a = HealthArgs {
            include: Some(vec!["manager".into(), "host".into(), "host".into()]),
            ..Default::default()
        };
        assert_eq!(a.components().unwrap(), vec!["manager", "host"]);
        let e = HealthArgs {
            include: Some(vec!["MANAGER".into()]),
            ..Default::default()
        }
        .components()
        .unwrap_err();
        assert!(e.reason.contains("write `manager`"), "{}", e.reason);
        let e = HealthArgs {
            include: Some(vec!["kernel".into()]),
            ..Default::default()
        }
        .components()
        .unwrap_err();
        assert_eq!(e.argument, "include");
        assert!(e.reason.contains("kernel") && e.reason.contains("containers"));
        assert!(
            HealthArgs {
                include: Some(vec![]),
                ..Default::default()
            }
            .components()
            .is_err()
        );
        assert_eq!(HealthArgs::default().components().unwrap().len(), 8);
    }

    #[test]
    fn loose_times_parse() {
        assert!(parse_loose_time("2021-05-27 10:50:08.985208+00:00").is_some());
        assert!(parse_loose_time("2020-04-15T14:47:54Z").is_some());
        assert!(parse_loose_time("yesterday").is_none());
    }
}
