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
    /// Response time of the login, when this check had to log in.
    pub login_ms: Option<u64>,
    /// Requests that did not answer within their timeout (the rest were still read).
    pub timed_out: Vec<String>,
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
    /// Start of the window (argument `since`, default 24 h ago): entries at or after it are
    /// counted. The verdict depends on the window only, never on who asked before.
    pub since: String,
    /// Critical entries at or after this time make the component critical.
    pub critical_since: String,
    /// Entries in the window by their own `level` (`error`, `critical`).
    pub by_level: BTreeMap<String, u64>,
    pub errors_by_tag: BTreeMap<String, u64>,
    pub critical_by_tag: BTreeMap<String, u64>,
    /// Critical entries since `critical_since`.
    pub recent_critical: u64,
    /// The newest error and critical lines in the window (sanitised: log text is
    /// untrusted).
    pub recent: Vec<LogEntry>,
    /// Entries returned with another level than the one asked for (a proxy or manager that
    /// ignores the filter): not counted.
    pub ignored_other_level: u64,
    /// True when a level had more entries in the window than one read returns (500): the
    /// counts are lower bounds.
    pub truncated: bool,
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
    /// The trust anchors the chain was verified against (the component's CA file, else the
    /// system store and `tls.extra_ca_file`).
    pub trust_anchors: String,
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
        since: super::incidents::parse_since(args.since.as_deref().unwrap_or("24h"), now)?,
        critical_since: now
            - time::Duration::minutes(deps.settings.logs_critical_window_minutes as i64),
    };
    let wants = |c: &str| components.contains(&c);
    let started = Instant::now();
    let timeout = Duration::from_millis(deps.settings.timeout_ms);

    let manager = maybe(wants("manager"), check_manager(deps, timeout));
    let cluster = maybe(wants("cluster"), check_cluster(deps, timeout));
    let agents = maybe(wants("agents"), check_agents(deps, timeout));
    let indexer = maybe(wants("indexer"), check_indexer(deps, timeout));
    let logs = maybe(wants("logs"), check_logs(deps, timeout, &window));
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

impl Failure {
    fn timed_out(&self) -> bool {
        self.message.contains(NO_ANSWER)
    }
}

const NO_ANSWER: &str = "no answer within";

/// Run one request (`what`, e.g. `GET /manager/status`) under its own timeout; `Err` says
/// which request failed and why. Each request of a component gets the whole timeout, so a
/// slow but answering API is measured, not declared dead.
async fn bounded<T>(
    timeout: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, WazuhError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure {
            unreachable: e.is_unreachable(),
            message: e.to_string(),
        }),
        Err(_) => {
            let message = format!("{what}: {NO_ANSWER} {} ms", timeout.as_millis());
            crate::calllog::note(crate::calllog::Level::Warning, "wazuh_health", &message);
            Err(Failure {
                message,
                unreachable: true,
            })
        }
    }
}

const LOGIN: &str = "login (POST /security/user/authenticate)";

/// Log in (or reuse the cached token) under its own timeout, so the requests after it get
/// their whole timeout.
async fn logged_in(m: &ManagerClient, timeout: Duration) -> Result<bool, Failure> {
    bounded(timeout, LOGIN, m.authenticate()).await
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
        login_ms: None,
        timed_out: Vec::new(),
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
    // The login first (the first answer, or the cached token): every request after it then
    // gets its own whole timeout, and the timed `GET /` measures the API alone.
    let t_login = Instant::now();
    match logged_in(m, timeout).await {
        Ok(fresh) => {
            if fresh {
                s.login_ms = Some(t_login.elapsed().as_millis() as u64);
            }
        }
        Err(e) => {
            s.check = Check::Error;
            s.reachable = !e.unreachable;
            let code = if e.unreachable {
                "manager_unreachable"
            } else {
                "manager_api_error"
            };
            if e.timed_out() {
                s.timed_out.push(LOGIN.to_string());
            }
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
    }
    s.reachable = true;
    // The independent requests at once, each under its own timeout.
    let t0 = Instant::now();
    let (info, daemons, minfo, validation) = tokio::join!(
        bounded(timeout, "GET /", async {
            let r = m.api_info().await?;
            Ok::<_, WazuhError>((r, t0.elapsed()))
        }),
        bounded(timeout, "GET /manager/status", m.daemons()),
        bounded(timeout, "GET /manager/info", m.manager_info()),
        bounded(
            timeout,
            "GET /manager/configuration/validation",
            m.config_validation()
        ),
    );
    let mut failed: Vec<Failure> = Vec::new();
    match info {
        Ok((info, elapsed)) => {
            let ms = elapsed.as_millis() as u64;
            s.latency_ms = Some(ms);
            s.api_version = info.api_version;
            s.hostname = info.hostname;
            if ms > th.api_critical_ms {
                f.push(
                    Finding::new(
                        Severity::Critical,
                        "api_slow",
                        format!(
                            "Wazuh API answered in {ms} ms (critical above {} ms)",
                            th.api_critical_ms
                        ),
                    )
                    .with_remediation(SLOW_API_REMEDIATION),
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
                    .with_remediation(SLOW_API_REMEDIATION),
                );
            }
        }
        Err(e) if e.timed_out() => {
            f.push(
                Finding::new(
                    Severity::Critical,
                    "api_slow",
                    format!(
                        "Wazuh API logged in but GET / did not answer within {} ms",
                        timeout.as_millis()
                    ),
                )
                .with_remediation(SLOW_API_REMEDIATION),
            );
            failed.push(e);
        }
        Err(e) => failed.push(e),
    }
    let daemons = match daemons {
        Ok((d, degraded)) => {
            if degraded > 0 {
                f.push(Finding::new(
                    Severity::Info,
                    "partial_response",
                    format!(
                        "{degraded} daemon {} could not be read",
                        crate::util::plural(degraded as u64, "entry", "entries")
                    ),
                ));
            }
            d
        }
        Err(e) => {
            if !e.timed_out() {
                f.push(
                    Finding::new(
                        Severity::Critical,
                        "manager_api_error",
                        format!("Wazuh manager daemons could not be read: {}", e.message),
                    )
                    .with_remediation(connectivity_remediation()),
                );
            }
            failed.push(e);
            BTreeMap::new()
        }
    };
    match minfo {
        Ok(Some(mi)) => s.manager_version = mi.version,
        Ok(None) => {}
        Err(e) => failed.push(e),
    }
    match validation {
        Err(e) => failed.push(e),
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
    let slow: Vec<&Failure> = failed.iter().filter(|e| e.timed_out()).collect();
    if !slow.is_empty() {
        s.timed_out = slow
            .iter()
            .map(|e| e.message.split(": ").next().unwrap_or_default().to_string())
            .collect();
        f.push(
            Finding::new(
                Severity::Warning,
                "manager_partial",
                format!(
                    "the Wazuh API answered, but {} did not answer within {} ms each; the \
                     rest of the manager section was read",
                    s.timed_out.join(", "),
                    timeout.as_millis()
                ),
            )
            .with_remediation(SLOW_API_REMEDIATION),
        );
    }
    if !failed.is_empty() {
        s.error = Some(
            failed
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    s.daemons = daemons;
    s.check = check_of(&f);
    (s, f)
}

const SLOW_API_REMEDIATION: &str = "Check manager CPU and memory, wazuh-apid's log \
     (/var/ossec/logs/api.log) and the network path; raise health.timeout_ms if the manager is \
     known to be slow.";

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
    if let Err(e) = logged_in(m, timeout).await {
        s.check = Check::Error;
        s.error = Some(e.into());
        return (s, f);
    }
    let status = match bounded(timeout, "GET /cluster/status", m.cluster_status()).await {
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
            match bounded(timeout, "GET /cluster/healthcheck", m.cluster_healthcheck()).await {
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
    if let Err(e) = logged_in(m, timeout).await {
        s.check = Check::Error;
        s.error = Some(e.into());
        return (s, f);
    }
    let sum = match bounded(timeout, "GET /agents/summary/status", m.agents_summary()).await {
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
    match bounded(timeout, "GET /_cluster/health", ix.health()).await {
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

/// The logs component's window: counted from `since`; critical when critical entries are
/// at or after `critical_since`.
pub struct LogWindow {
    pub since: OffsetDateTime,
    pub critical_since: OffsetDateTime,
}

/// Entries read per level (the API's maximum page).
const LOG_PAGE: u32 = 500;

async fn check_logs(
    deps: &HealthDeps<'_>,
    timeout: Duration,
    window: &LogWindow,
) -> (LogsSection, Vec<Finding>) {
    let mut s = LogsSection {
        check: Check::NotConfigured,
        since: crate::util::rfc3339(window.since),
        critical_since: crate::util::rfc3339(window.critical_since),
        by_level: BTreeMap::new(),
        errors_by_tag: BTreeMap::new(),
        critical_by_tag: BTreeMap::new(),
        recent_critical: 0,
        recent: Vec::new(),
        ignored_other_level: 0,
        truncated: false,
        error: None,
    };
    let Some(m) = deps.manager else {
        s.error = Some(NOT_CONFIGURED.to_string());
        return (s, Vec::new());
    };
    let mut f = Vec::new();
    if let Err(e) = logged_in(m, timeout).await {
        s.check = Check::Error;
        s.error = Some(e.into());
        return (s, f);
    }
    let (errors, criticals) = tokio::join!(
        bounded(
            timeout,
            "GET /manager/logs?level=error",
            m.logs(Some("error"), LOG_PAGE)
        ),
        bounded(
            timeout,
            "GET /manager/logs?level=critical",
            m.logs(Some("critical"), LOG_PAGE)
        ),
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
    for (asked, entries, by_tag) in [
        ("error", &errors.items, &mut s.errors_by_tag),
        ("critical", &criticals.items, &mut s.critical_by_tag),
    ] {
        let mut oldest_in_window = true;
        for e in entries {
            // Counted by the entry's own level: a server that ignores the filter must not
            // turn info lines into criticals.
            let level = e.level.as_deref().map(|l| l.trim().to_ascii_lowercase());
            if level.as_deref() != Some(asked) {
                s.ignored_other_level += 1;
                continue;
            }
            // An unparsable timestamp counts as in the window: better counted than missed.
            let at = e.timestamp.as_deref().and_then(parse_loose_time);
            oldest_in_window = at.is_none_or(|t| t >= window.since);
            if !oldest_in_window {
                continue;
            }
            if asked == "critical" && at.is_some_and(|t| t >= window.critical_since) {
                s.recent_critical += 1;
            }
            let tag = crate::util::sanitize_untrusted(
                e.tag.as_deref().unwrap_or("unknown").as_bytes(),
                64,
            );
            *by_tag.entry(tag).or_default() += 1;
            *s.by_level.entry(asked.to_string()).or_default() += 1;
            recent.push(e.clone());
        }
        // A full page whose oldest entry is still in the window: there may be more.
        if entries.len() >= LOG_PAGE as usize && oldest_in_window {
            s.truncated = true;
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
            e.level = e
                .level
                .map(|t| crate::util::sanitize_untrusted(t.as_bytes(), 16));
            e
        })
        .collect();
    let at_least = if s.truncated { "at least " } else { "" };
    let n_err: u64 = s.errors_by_tag.values().sum();
    let n_crit: u64 = s.critical_by_tag.values().sum();
    let entries = |n: u64| crate::util::plural(n, "entry", "entries");
    if s.recent_critical > 0 {
        let n = s.recent_critical;
        f.push(
            Finding::new(
                Severity::Critical,
                "logs_critical",
                format!(
                    "{n} critical log {} since {}",
                    entries(n),
                    s.critical_since
                ),
            )
            .with_remediation("Read them in /var/ossec/logs/ossec.log (grep CRITICAL) and act before they cascade."),
        );
    } else if n_crit > 0 {
        f.push(
            Finding::new(
                Severity::Warning,
                "logs_critical_earlier",
                format!(
                    "{at_least}{n_crit} critical log {} since {}, none since {} ({})",
                    entries(n_crit),
                    s.since,
                    s.critical_since,
                    top_tags(&s.critical_by_tag)
                ),
            )
            .with_remediation("Check that what they reported was fixed (/var/ossec/logs/ossec.log, grep CRITICAL)."),
        );
    }
    if n_err > 0 {
        f.push(
            Finding::new(
                Severity::Warning,
                "logs_errors",
                format!(
                    "{at_least}{n_err} error log {} since {} ({})",
                    entries(n_err),
                    s.since,
                    top_tags(&s.errors_by_tag)
                ),
            )
            .with_remediation("Group them by daemon (tag); recurring errors from one daemon usually point at its configuration or a full disk."),
        );
    }
    if s.ignored_other_level > 0 {
        f.push(Finding::new(
            Severity::Info,
            "logs_level_mismatch",
            format!(
                "the manager returned {} log {} at a level that was not asked for; they were not counted",
                s.ignored_other_level,
                entries(s.ignored_other_level)
            ),
        ));
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
        (
            *component,
            url.clone(),
            checker.trust_description().to_string(),
            checker.check(args).await,
        )
    });
    let mut f = Vec::new();
    for (component, url, trust, result) in futures::future::join_all(checks).await {
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
                    fi.message = format!("{label}: {} (trust anchors: {trust})", fi.message);
                    f.push(fi);
                }
                if r.status == CertStatus::Error {
                    f.push(Finding::new(
                        Severity::Warning,
                        "cert_check_failed",
                        format!(
                            "{label} could not be checked: {} (trust anchors: {trust})",
                            r.short_reason()
                        ),
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
                    trust_anchors: trust,
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
