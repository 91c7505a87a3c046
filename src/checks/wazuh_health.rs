//! wazuh_health: one verdict over the whole Wazuh platform. Components (manager, cluster,
//! agents, indexer, logs, certificates, host, containers) are checked concurrently, each
//! under its own timeout, so the call takes about as long as the slowest component and a
//! dead manager gives `unreachable` promptly. Contract: TOOLS.md `wazuh_health`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::cert::{CertArgs, CertChecker, CertStatus};
use super::containers::ContainersReport;
use super::host::{HostReport, HostThresholds};
use super::{ArgError, Finding, Severity};
use crate::config::HealthConfig;
use crate::store::Store;
use crate::wazuh::types::{LogEntry, NodeHealth};
use crate::wazuh::{IndexerClient, ManagerClient, WazuhError};

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

/// Daemons a default install runs; one of them stopped is critical.
const CORE_DAEMONS: &[&str] = &[
    "wazuh-analysisd",
    "wazuh-remoted",
    "wazuh-db",
    "wazuh-execd",
    "wazuh-modulesd",
    "wazuh-apid",
    "wazuh-authd",
    "wazuh-monitord",
    "wazuh-logcollector",
    "wazuh-syscheckd",
];

/// Daemons that are normally stopped on a default install.
const OPTIONAL_DAEMONS: &[&str] = &[
    "wazuh-maild",
    "wazuh-reportd",
    "wazuh-csyslogd",
    "wazuh-agentlessd",
    "wazuh-integratord",
];

/// How many disconnected agents are named in the report.
const MAX_LISTED_AGENTS: usize = 20;
/// How many recent error lines are quoted.
const MAX_RECENT_LOGS: usize = 10;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthArgs {
    /// Components to check (default all): `manager`, `cluster`, `agents`, `indexer`, `logs`,
    /// `certificates`, `host`, `containers`.
    #[serde(default)]
    #[schemars(extend("default" = null))]
    pub include: Option<Vec<String>>,
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

/// Outcome of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Ok,
    Warning,
    Critical,
    /// The component could not be checked (see `error`).
    Error,
    NotConfigured,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ManagerSection {
    pub check: Check,
    pub reachable: bool,
    pub url: String,
    pub api_version: Option<String>,
    pub manager_version: Option<String>,
    pub hostname: Option<String>,
    /// Response time of `GET /` with a valid token.
    pub latency_ms: Option<u64>,
    /// Daemon name -> state.
    pub daemons: BTreeMap<String, String>,
    pub configuration_valid: Option<bool>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ClusterSection {
    pub check: Check,
    pub enabled: Option<bool>,
    pub running: Option<bool>,
    pub nodes: Vec<NodeHealth>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentBrief {
    pub id: String,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub last_keep_alive: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentsSection {
    pub check: Check,
    pub active: u64,
    pub disconnected: u64,
    pub never_connected: u64,
    pub pending: u64,
    pub total: u64,
    /// Up to 20 disconnected agents.
    pub disconnected_agents: Vec<AgentBrief>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IndexerSection {
    pub check: Check,
    pub reachable: bool,
    pub url: Option<String>,
    /// `green`, `yellow` or `red`.
    pub status: Option<String>,
    pub unassigned_shards: Option<u64>,
    pub number_of_nodes: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LogsSection {
    pub check: Check,
    /// Errors and criticals are counted from this time (the previous check, or 24 h ago).
    pub since: String,
    pub errors_by_tag: BTreeMap<String, u64>,
    pub critical_by_tag: BTreeMap<String, u64>,
    /// The newest error and critical lines (sanitised: log text is untrusted).
    pub recent: Vec<LogEntry>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertExpiry {
    /// `manager_api` or `indexer`.
    pub component: String,
    pub target: String,
    pub status: CertStatus,
    pub days_left: Option<i64>,
    pub not_after: Option<String>,
    pub chain_valid: Option<bool>,
    pub verification_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertificatesSection {
    pub check: Check,
    pub certificates: Vec<CertExpiry>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HostSection {
    pub check: Check,
    #[serde(flatten)]
    pub metrics: Option<HostReport>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ContainersSection {
    pub check: Check,
    #[serde(flatten)]
    pub report: ContainersReport,
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
            let name = c.trim().to_ascii_lowercase();
            let Some(known) = COMPONENTS.iter().find(|k| **k == name) else {
                return Err(ArgError::new(
                    "include",
                    format!(
                        "unknown component `{}`; allowed: {}",
                        crate::util::sanitize_untrusted(c.as_bytes(), 40),
                        COMPONENTS.join(", ")
                    ),
                ));
            };
            if !out.contains(known) {
                out.push(*known);
            }
        }
        Ok(out)
    }
}

/// Run the health check.
pub async fn run(deps: &HealthDeps<'_>, args: &HealthArgs) -> Result<HealthReport, ArgError> {
    let components = args.components()?;
    let wants = |c: &str| components.contains(&c);
    let started = Instant::now();
    let timeout = Duration::from_millis(deps.settings.timeout_ms);

    let manager = maybe(wants("manager"), check_manager(deps, timeout));
    let cluster = maybe(wants("cluster"), check_cluster(deps, timeout));
    let agents = maybe(wants("agents"), check_agents(deps, timeout));
    let indexer = maybe(wants("indexer"), check_indexer(deps, timeout));
    let logs = maybe(wants("logs"), check_logs(deps, timeout));
    let certificates = maybe(wants("certificates"), check_certificates(deps, timeout));
    let host = maybe(wants("host"), check_host(deps, timeout));
    let containers = maybe(wants("containers"), check_containers(deps, timeout));
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

    let status = if deps.manager.is_none()
        && components
            .iter()
            .any(|c| !matches!(*c, "host" | "containers"))
    {
        Verdict::NotConfigured
    } else if manager.as_ref().is_some_and(|m| !m.reachable) {
        Verdict::Unreachable
    } else if findings.iter().any(|f| f.severity == Severity::Critical) {
        Verdict::Critical
    } else if findings.iter().any(|f| f.severity == Severity::Warning) {
        Verdict::Degraded
    } else {
        Verdict::Healthy
    };

    Ok(HealthReport {
        status,
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

/// Why a component could not finish.
#[derive(Debug)]
struct Failure {
    message: String,
    /// The service could not be reached at all (timeout, refused, TLS), as opposed to
    /// answering with an error.
    unreachable: bool,
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.message
    }
}

/// Run a component under its timeout; `Err` says why it could not finish.
async fn bounded<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, WazuhError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure {
            unreachable: e.is_unreachable(),
            message: e.to_string(),
        }),
        Err(_) => Err(Failure {
            message: format!("no answer within {} ms", timeout.as_millis()),
            unreachable: true,
        }),
    }
}

fn check_of(findings: &[Finding]) -> Check {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => Check::Critical,
        Some(Severity::Warning) => Check::Warning,
        _ => Check::Ok,
    }
}

const NOT_CONFIGURED: &str = "Wazuh manager API not configured: set SECOPS_WAZUH_URL, SECOPS_WAZUH_USER and SECOPS_WAZUH_PASSWORD (or _FILE)";

fn connectivity_remediation() -> &'static str {
    "Check that the manager is running (systemctl status wazuh-manager), that port 55000 is \
     reachable through the firewall, that the API user and password are right, and that the CA \
     file matches the API certificate."
}

// ----- manager -----

async fn check_manager(deps: &HealthDeps<'_>, timeout: Duration) -> (ManagerSection, Vec<Finding>) {
    let mut s = ManagerSection {
        check: Check::NotConfigured,
        reachable: false,
        url: String::new(),
        api_version: None,
        manager_version: None,
        hostname: None,
        latency_ms: None,
        daemons: BTreeMap::new(),
        configuration_valid: None,
        error: None,
    };
    let Some(m) = deps.manager else {
        s.error = Some(NOT_CONFIGURED.to_string());
        return (s, Vec::new());
    };
    s.url = m.base_url().to_string();
    let mut f = Vec::new();
    let th = deps.settings;
    // Daemons first: it also logs in, so the timed `GET /` below measures the API alone.
    let daemons = bounded(timeout, m.daemons()).await;
    let (daemons, degraded) = match daemons {
        Ok(d) => d,
        Err(e) => {
            s.check = Check::Error;
            s.reachable = !e.unreachable;
            let code = if e.unreachable {
                "manager_unreachable"
            } else {
                "manager_api_error"
            };
            f.push(
                Finding::new(
                    Severity::Critical,
                    code,
                    format!(
                        "Wazuh manager API at {} cannot be used: {}",
                        m.base_url(),
                        e.message
                    ),
                )
                .with_remediation(connectivity_remediation()),
            );
            s.error = Some(e.message);
            return (s, f);
        }
    };
    s.reachable = true;
    let t0 = Instant::now();
    let (info, minfo, validation) = tokio::join!(
        bounded(timeout, async {
            let r = m.api_info().await;
            Ok::<_, WazuhError>((r, t0.elapsed()))
        }),
        bounded(timeout, m.manager_info()),
        bounded(timeout, m.config_validation()),
    );
    match info {
        Ok((Ok(info), elapsed)) => {
            let ms = elapsed.as_millis() as u64;
            s.latency_ms = Some(ms);
            s.api_version = info.api_version;
            s.hostname = info.hostname;
            if ms > th.api_critical_ms {
                f.push(
                    Finding::new(
                        Severity::Critical,
                        "api_slow",
                        format!("Wazuh API answered in {ms} ms (critical above {} ms)", th.api_critical_ms),
                    )
                    .with_remediation("Check manager CPU and memory, wazuh-apid's log (/var/ossec/logs/api.log) and the network path."),
                );
            } else if ms > th.api_slow_ms {
                f.push(
                    Finding::new(
                        Severity::Warning,
                        "api_slow",
                        format!(
                            "Wazuh API answered in {ms} ms (slow above {} ms)",
                            th.api_slow_ms
                        ),
                    )
                    .with_remediation(
                        "Check manager load and wazuh-apid's log (/var/ossec/logs/api.log).",
                    ),
                );
            }
        }
        Ok((Err(e), _)) => s.error = Some(e.to_string()),
        Err(e) => s.error = Some(e.into()),
    }
    if let Ok(Some(mi)) = minfo {
        s.manager_version = mi.version;
    }
    match validation {
        Ok(v) => {
            let bad: Vec<String> = v
                .items
                .iter()
                .filter(|n| !n.ok())
                .map(|n| {
                    let details = n
                        .details
                        .iter()
                        .map(|d| crate::util::sanitize_untrusted(d.as_bytes(), 200))
                        .collect::<Vec<_>>()
                        .join("; ");
                    format!(
                        "{}: {}",
                        n.name,
                        if details.is_empty() {
                            n.status.clone()
                        } else {
                            details
                        }
                    )
                })
                .chain(
                    v.failed
                        .iter()
                        .map(|fi| crate::util::sanitize_untrusted(fi.to_string().as_bytes(), 200)),
                )
                .collect();
            s.configuration_valid = Some(bad.is_empty());
            if !bad.is_empty() {
                f.push(
                    Finding::new(
                        Severity::Critical,
                        "config_invalid",
                        format!("Wazuh configuration validation failed: {}", bad.join(" | ")),
                    )
                    .with_remediation("Fix ossec.conf (run /var/ossec/bin/wazuh-analysisd -t) before any restart: a manager with an invalid configuration will not start again."),
                );
            }
        }
        Err(e) => {
            s.error.get_or_insert(e.into());
        }
    }
    for (name, state) in &daemons {
        let running = state == "running";
        if CORE_DAEMONS.contains(&name.as_str()) && !running {
            f.push(
                Finding::new(
                    Severity::Critical,
                    "daemon_stopped",
                    format!("core daemon {name} is {state}"),
                )
                .with_remediation(format!(
                    "Read /var/ossec/logs/ossec.log for {name}'s last errors, then restart the manager (systemctl restart wazuh-manager)."
                )),
            );
        } else if OPTIONAL_DAEMONS.contains(&name.as_str()) && state == "failed" {
            f.push(Finding::new(
                Severity::Warning,
                "daemon_failed",
                format!("optional daemon {name} has failed"),
            ));
        } else if !CORE_DAEMONS.contains(&name.as_str())
            && !OPTIONAL_DAEMONS.contains(&name.as_str())
            && state == "failed"
        {
            f.push(Finding::new(
                Severity::Warning,
                "daemon_failed",
                format!("daemon {name} has failed"),
            ));
        }
    }
    for core in CORE_DAEMONS {
        if !daemons.is_empty() && !daemons.contains_key(*core) {
            f.push(Finding::new(
                Severity::Warning,
                "daemon_missing",
                format!("core daemon {core} is not listed by the manager"),
            ));
        }
    }
    if degraded > 0 {
        f.push(Finding::new(
            Severity::Info,
            "partial_response",
            format!("{degraded} daemon entries could not be read"),
        ));
    }
    s.daemons = daemons;
    s.check = check_of(&f);
    (s, f)
}

// ----- cluster -----

async fn check_cluster(deps: &HealthDeps<'_>, timeout: Duration) -> (ClusterSection, Vec<Finding>) {
    let mut s = ClusterSection {
        check: Check::NotConfigured,
        enabled: None,
        running: None,
        nodes: Vec::new(),
        error: None,
    };
    let Some(m) = deps.manager else {
        s.error = Some(NOT_CONFIGURED.to_string());
        return (s, Vec::new());
    };
    let mut f = Vec::new();
    let status = match bounded(timeout, m.cluster_status()).await {
        Ok(st) => st,
        Err(e) => {
            s.check = Check::Error;
            s.error = Some(e.into());
            return (s, f);
        }
    };
    s.enabled = status.enabled;
    s.running = status.running;
    if status.enabled == Some(true) {
        if status.running != Some(true) {
            f.push(
                Finding::new(
                    Severity::Critical,
                    "cluster_not_running",
                    "the cluster is enabled but wazuh-clusterd is not running",
                )
                .with_remediation("Check /var/ossec/logs/cluster.log; the cluster key and node names must match on every node, and port 1516 must be open between nodes."),
            );
        } else {
            match bounded(timeout, m.cluster_healthcheck()).await {
                Ok(nodes) => {
                    let now = OffsetDateTime::now_utc();
                    for n in &nodes.items {
                        if let Some(ts) = n.last_keep_alive.as_deref().and_then(parse_loose_time) {
                            let age = now - ts;
                            if age > time::Duration::minutes(5) {
                                f.push(
                                    Finding::new(
                                        Severity::Warning,
                                        "cluster_node_stale",
                                        format!(
                                            "cluster node {} last checked in {} minutes ago",
                                            n.name,
                                            age.whole_minutes()
                                        ),
                                    )
                                    .with_remediation("Check the node's wazuh-clusterd and the network between nodes (port 1516)."),
                                );
                            }
                        }
                    }
                    s.nodes = nodes.items;
                }
                Err(e) => s.error = Some(e.into()),
            }
        }
    }
    s.check = check_of(&f);
    (s, f)
}

// ----- agents -----

async fn check_agents(deps: &HealthDeps<'_>, timeout: Duration) -> (AgentsSection, Vec<Finding>) {
    let mut s = AgentsSection {
        check: Check::NotConfigured,
        active: 0,
        disconnected: 0,
        never_connected: 0,
        pending: 0,
        total: 0,
        disconnected_agents: Vec::new(),
        error: None,
    };
    let Some(m) = deps.manager else {
        s.error = Some(NOT_CONFIGURED.to_string());
        return (s, Vec::new());
    };
    let mut f = Vec::new();
    let sum = match bounded(timeout, m.agents_summary()).await {
        Ok(sum) => sum,
        Err(e) => {
            s.check = Check::Error;
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
        if let Ok(list) = bounded(timeout, m.agents(Some("disconnected"), MAX_LISTED_AGENTS)).await
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
                        "{} of {} agents ({share:.0} %) are disconnected",
                        sum.disconnected, sum.total
                    ),
                )
                .with_remediation("On an affected host: systemctl status wazuh-agent and /var/ossec/logs/ossec.log; check that ports 1514/1515 to the manager are open and the agent key is valid."),
            );
        } else {
            f.push(Finding::new(
                Severity::Info,
                "agents_disconnected",
                format!(
                    "{} of {} agents are disconnected",
                    sum.disconnected, sum.total
                ),
            ));
        }
    }
    if sum.never_connected > 0 {
        f.push(
            Finding::new(
                Severity::Info,
                "agents_never_connected",
                format!("{} registered agents never connected", sum.never_connected),
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
            format!("{} agents are pending", sum.pending),
        ));
    }
    s.check = check_of(&f);
    (s, f)
}

// ----- indexer -----

async fn check_indexer(deps: &HealthDeps<'_>, timeout: Duration) -> (IndexerSection, Vec<Finding>) {
    let mut s = IndexerSection {
        check: Check::NotConfigured,
        reachable: false,
        url: None,
        status: None,
        unassigned_shards: None,
        number_of_nodes: None,
        error: None,
    };
    let Some(ix) = deps.indexer else {
        s.error = Some(
            "Wazuh indexer not configured: set SECOPS_INDEXER_URL, SECOPS_INDEXER_USER and \
             SECOPS_INDEXER_PASSWORD (or _FILE)"
                .to_string(),
        );
        return (s, Vec::new());
    };
    s.url = Some(ix.base_url().to_string());
    let mut f = Vec::new();
    match bounded(timeout, ix.health()).await {
        Ok(h) => {
            s.reachable = true;
            s.unassigned_shards = h.unassigned_shards;
            s.number_of_nodes = h.number_of_nodes;
            let shards = h.unassigned_shards.unwrap_or(0);
            match h.status.as_deref() {
                Some("green") => {}
                Some("yellow") => f.push(
                    Finding::new(
                        Severity::Warning,
                        "indexer_yellow",
                        format!("indexer cluster is yellow: {shards} unassigned shards (replicas not allocated)"),
                    )
                    .with_remediation("On a single-node indexer set number_of_replicas to 0 for wazuh-* indices; otherwise check that every indexer node is up and has disk below the watermarks."),
                ),
                Some("red") => f.push(
                    Finding::new(
                        Severity::Critical,
                        "indexer_red",
                        format!("indexer cluster is red: {shards} unassigned shards; some primary data is unavailable"),
                    )
                    .with_remediation("GET _cluster/allocation/explain shows why; usually a node is down or disk passed the flood-stage watermark."),
                ),
                other => f.push(Finding::new(
                    Severity::Warning,
                    "indexer_status_unknown",
                    format!(
                        "indexer reported status {}",
                        crate::util::sanitize_untrusted(other.unwrap_or("(none)").as_bytes(), 20)
                    ),
                )),
            }
            s.status = h.status;
        }
        Err(e) => {
            s.check = Check::Error;
            f.push(
                Finding::new(
                    Severity::Critical,
                    "indexer_unreachable",
                    format!("Wazuh indexer cannot be used: {}", e.message),
                )
                .with_remediation("Check that wazuh-indexer is running (systemctl status wazuh-indexer), port 9200 is reachable, and the indexer credentials and CA file are right."),
            );
            s.error = Some(e.into());
            return (s, f);
        }
    }
    s.check = check_of(&f);
    (s, f)
}

// ----- logs -----

fn logs_marker(deps: &HealthDeps<'_>) -> Option<String> {
    deps.manager
        .map(|m| format!("wazuh_health.logs_checked_at:{}", m.base_url()))
}

async fn check_logs(deps: &HealthDeps<'_>, timeout: Duration) -> (LogsSection, Vec<Finding>) {
    let now = OffsetDateTime::now_utc();
    let marker = logs_marker(deps);
    let since = marker
        .as_deref()
        .and_then(|k| deps.store.get_kv(k).ok().flatten())
        .and_then(|v| parse_loose_time(&v))
        .unwrap_or(now - time::Duration::hours(24));
    let mut s = LogsSection {
        check: Check::NotConfigured,
        since: crate::util::rfc3339(since),
        errors_by_tag: BTreeMap::new(),
        critical_by_tag: BTreeMap::new(),
        recent: Vec::new(),
        error: None,
    };
    let Some(m) = deps.manager else {
        s.error = Some(NOT_CONFIGURED.to_string());
        return (s, Vec::new());
    };
    let mut f = Vec::new();
    let (errors, criticals) = tokio::join!(
        bounded(timeout, m.logs(Some("error"), 500)),
        bounded(timeout, m.logs(Some("critical"), 500)),
    );
    let (errors, criticals) = match (errors, criticals) {
        (Ok(e), Ok(c)) => (e, c),
        (Err(e), _) | (_, Err(e)) => {
            s.check = Check::Error;
            s.error = Some(e.into());
            return (s, f);
        }
    };
    let mut recent = Vec::new();
    for (entries, by_tag) in [
        (&errors.items, &mut s.errors_by_tag),
        (&criticals.items, &mut s.critical_by_tag),
    ] {
        for e in entries {
            // Unparsable timestamps count as new: better a duplicate than a miss.
            let new = e
                .timestamp
                .as_deref()
                .and_then(parse_loose_time)
                .is_none_or(|t| t > since);
            if !new {
                continue;
            }
            let tag = crate::util::sanitize_untrusted(
                e.tag.as_deref().unwrap_or("unknown").as_bytes(),
                64,
            );
            *by_tag.entry(tag).or_default() += 1;
            recent.push(e.clone());
        }
    }
    recent.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
    recent.truncate(MAX_RECENT_LOGS);
    s.recent = recent
        .into_iter()
        .map(|mut e| {
            e.description = crate::util::sanitize_untrusted(e.description.as_bytes(), 300);
            e.tag = e
                .tag
                .map(|t| crate::util::sanitize_untrusted(t.as_bytes(), 64));
            e
        })
        .collect();
    let n_err: u64 = s.errors_by_tag.values().sum();
    let n_crit: u64 = s.critical_by_tag.values().sum();
    if n_crit > 0 {
        f.push(
            Finding::new(
                Severity::Critical,
                "logs_critical",
                format!("{n_crit} critical log entries since {}", s.since),
            )
            .with_remediation("Read them in /var/ossec/logs/ossec.log (grep CRITICAL) and act before they cascade."),
        );
    }
    if n_err > 0 {
        f.push(
            Finding::new(
                Severity::Warning,
                "logs_errors",
                format!(
                    "{n_err} error log entries since {} ({})",
                    s.since,
                    top_tags(&s.errors_by_tag)
                ),
            )
            .with_remediation("Group them by daemon (tag); recurring errors from one daemon usually point at its configuration or a full disk."),
        );
    }
    if let Some(k) = marker {
        let _ = deps.store.set_kv(&k, &crate::util::rfc3339(now));
    }
    s.check = check_of(&f);
    (s, f)
}

fn top_tags(by_tag: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = by_tag.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .take(3)
        .map(|(t, n)| format!("{t}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ----- certificates -----

async fn check_certificates(
    deps: &HealthDeps<'_>,
    timeout: Duration,
) -> (CertificatesSection, Vec<Finding>) {
    let mut targets: Vec<(&str, String, &CertChecker)> = Vec::new();
    if let (Some(m), Some(c)) = (deps.manager, deps.manager_certs) {
        targets.push(("manager_api", m.base_url().to_string(), c));
    }
    if let (Some(i), Some(c)) = (deps.indexer, deps.indexer_certs) {
        targets.push(("indexer", i.base_url().to_string(), c));
    }
    let mut s = CertificatesSection {
        check: Check::NotConfigured,
        certificates: Vec::new(),
        error: None,
    };
    if targets.is_empty() {
        s.error = Some(NOT_CONFIGURED.to_string());
        return (s, Vec::new());
    }
    let timeout_ms = timeout.as_millis().min(120_000) as i64;
    let checks = targets.iter().map(|(component, url, checker)| async move {
        let args = CertArgs {
            targets: vec![url.clone()],
            timeout_ms: Some(timeout_ms),
            ..Default::default()
        };
        (*component, url.clone(), checker.check(args).await)
    });
    let mut f = Vec::new();
    for (component, url, result) in futures::future::join_all(checks).await {
        let label = if component == "manager_api" {
            "Wazuh API certificate"
        } else {
            "indexer certificate"
        };
        match result.map(|r| r.results.into_iter().next()) {
            Ok(Some(r)) => {
                for mut fi in r.findings.clone() {
                    if fi.severity == Severity::Info {
                        continue;
                    }
                    fi.message = format!("{label}: {}", fi.message);
                    f.push(fi);
                }
                if r.status == CertStatus::Error {
                    f.push(Finding::new(
                        Severity::Warning,
                        "cert_check_failed",
                        format!("{label} could not be checked: {}", r.short_reason()),
                    ));
                }
                s.certificates.push(CertExpiry {
                    component: component.to_string(),
                    target: url,
                    status: r.status,
                    days_left: r.days_left,
                    not_after: r.not_after,
                    chain_valid: r.chain_valid,
                    verification_error: r.verification_error,
                });
            }
            Ok(None) => {}
            Err(e) => {
                s.error = Some(format!("{label}: {e}"));
            }
        }
    }
    s.check = check_of(&f);
    (s, f)
}

// ----- host and containers -----

async fn check_host(deps: &HealthDeps<'_>, timeout: Duration) -> (HostSection, Vec<Finding>) {
    let th = HostThresholds {
        cpu_warn: deps.settings.cpu_warn_percent,
        memory_warn: deps.settings.memory_warn_percent,
        disk_warn: deps.settings.disk_warn_percent,
    };
    match tokio::time::timeout(timeout, super::host::measure(th)).await {
        Ok(Ok(mut r)) => {
            let f = std::mem::take(&mut r.findings);
            (
                HostSection {
                    check: check_of(&f),
                    metrics: Some(r),
                    error: None,
                },
                f,
            )
        }
        Ok(Err(e)) => (
            HostSection {
                check: Check::Error,
                metrics: None,
                error: Some(e),
            },
            Vec::new(),
        ),
        Err(_) => (
            HostSection {
                check: Check::Error,
                metrics: None,
                error: Some(format!("no answer within {} ms", timeout.as_millis())),
            },
            Vec::new(),
        ),
    }
}

async fn check_containers(
    deps: &HealthDeps<'_>,
    timeout: Duration,
) -> (ContainersSection, Vec<Finding>) {
    let mut r = super::containers::check(
        deps.settings.docker_host.as_deref(),
        &deps.settings.container_filter,
        timeout,
    )
    .await;
    let f = std::mem::take(&mut r.findings);
    let check = if r.available {
        check_of(&f)
    } else {
        Check::NotConfigured
    };
    (ContainersSection { check, report: r }, f)
}

/// RFC 3339, or Wazuh's `2021-05-27 10:50:08.985208+00:00` style.
pub fn parse_loose_time(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let t = s.trim();
    OffsetDateTime::parse(t, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&t.replacen(' ', "T", 1), &Rfc3339))
        .ok()
}

impl HealthReport {
    /// One short paragraph a person can read.
    pub fn summary_text(&self) -> String {
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
            out.push_str(&format!(" {} finding(s):", serious.len()));
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
            && a.check != Check::Error
            && a.check != Check::NotConfigured
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
            include: Some(vec!["Manager".into(), "host".into(), "host".into()]),
        };
        assert_eq!(a.components().unwrap(), vec!["manager", "host"]);
        let e = HealthArgs {
            include: Some(vec!["kernel".into()]),
        }
        .components()
        .unwrap_err();
        assert_eq!(e.argument, "include");
        assert!(e.reason.contains("kernel") && e.reason.contains("containers"));
        assert!(
            HealthArgs {
                include: Some(vec![])
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
