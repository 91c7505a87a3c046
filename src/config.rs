//! One `Config` for the whole server: a TOML file (`--config PATH` or `SECOPS_CONFIG`) with
//! `SECOPS_*` environment variables layered on top, validated once at start. Secrets are held
//! by reference (env var or file) and in a [`Secret`] that never prints its value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A configuration problem: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("configuration error in `{key}`: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// A secret value. `Debug` and `Display` print `***`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret came from (shown by `config check`, never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    Inline,
    /// The built-in simulator's demo credential (`serve --demo`).
    Demo,
}

#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: Option<Secret>,
    pub password_source: Option<SecretSource>,
}

/// Wazuh manager API.
#[derive(Debug, Clone)]
pub struct WazuhConfig {
    pub url: String,
    pub login: Login,
    pub ca_file: Option<PathBuf>,
    /// Our own ceiling on manager API requests, kept below Wazuh's global limit
    /// (`max_request_per_minute`, 300 by default) so other API users keep their share.
    pub requests_per_minute: u32,
}

/// Wazuh indexer (OpenSearch).
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    pub url: String,
    pub login: Login,
    pub ca_file: Option<PathBuf>,
}

/// The streamable HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub tokens_file: Option<PathBuf>,
    pub allowed_origins: Vec<String>,
    /// Extra `Host` values accepted besides loopback names and the bind address.
    pub allowed_hosts: Vec<String>,
    /// Requests per minute per caller (token principal, or remote IP without tokens).
    pub rate_limit_per_minute: u32,
    pub max_body_bytes: usize,
    pub limits: HttpLimits,
}

/// Connection, session and authentication-failure limits of the HTTP transport
/// (`[http]` in TOML).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLimits {
    /// Open connections at once; more get `503` and are closed.
    pub max_connections: usize,
    /// A connection must send a complete request head within this many seconds of the
    /// server waiting for one (slow headers, and idle keep-alive connections alike).
    pub header_timeout_secs: u64,
    /// A request body must arrive completely within this many seconds.
    pub body_timeout_secs: u64,
    /// A write that makes no progress for this long (a client that stopped reading) drops
    /// the connection.
    pub write_timeout_secs: u64,
    /// A standalone SSE stream (`GET /mcp`) is ended after this long; clients reconnect. A
    /// stream nobody reads cannot be held forever.
    pub sse_max_secs: u64,
    /// At shutdown, how long in-flight tool calls may still finish.
    pub drain_timeout_secs: u64,
    /// MCP sessions (2025-11-25 era) at once; more `initialize` calls are refused.
    pub max_sessions: usize,
    /// A session without requests for this long is closed.
    pub session_idle_secs: u64,
    /// Failed authentications per remote address per minute before it gets `429`.
    pub auth_failures_per_minute: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            write_timeout_secs: 30,
            sse_max_secs: 300,
            drain_timeout_secs: 30,
            max_sessions: 200,
            session_idle_secs: 300,
            auth_failures_per_minute: 20,
        }
    }
}

/// Defaults for check_cert that a deployment may tune.
#[derive(Debug, Clone)]
pub struct CertDefaults {
    pub warning_days: i64,
    pub critical_days: i64,
    pub timeout_ms: u64,
    /// Folders the check_cert tool may read `file:` targets from (absolute paths).
    pub file_roots: Vec<PathBuf>,
    /// CIDRs and hostnames check_cert may connect to; empty means any host.
    pub allow: Vec<String>,
}

/// Default `check_cert.file_roots` (the state directory is added to these).
pub const DEFAULT_CERT_FILE_ROOTS: &[&str] = &[
    "/etc/ssl",
    "/etc/pki",
    "/etc/letsencrypt",
    "/var/ossec/etc",
    "/etc/wazuh-indexer/certs",
    "/etc/wazuh-dashboard/certs",
    "/etc/filebeat/certs",
];

/// wazuh_health settings: per-component timeout and the operations manual's thresholds.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub timeout_ms: u64,
    pub api_slow_ms: u64,
    pub api_critical_ms: u64,
    pub cpu_warn_percent: f64,
    pub memory_warn_percent: f64,
    pub disk_warn_percent: f64,
    pub disconnected_warn_percent: f64,
    /// Critical log entries this recent make the logs component critical (older ones in
    /// the window are counted and reported, not critical).
    pub logs_critical_window_minutes: u64,
    pub container_filter: String,
    pub docker_host: Option<String>,
}

/// How incidents are correlated from alerts, and the SLA / escalation matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentsConfig {
    /// Alerts at or above this rule level open or join incidents.
    pub min_level: u32,
    /// An alert joins an open incident whose last alert is at most this old.
    pub window_minutes: u64,
    /// Background ingestion interval under `serve` (0 = only on incident_status calls).
    pub ingest_interval_secs: u64,
    /// How far behind the cursor each ingest looks again, for alerts indexed late.
    pub late_alert_minutes: u64,
    /// Response SLA per severity: critical, high, medium, low (`None` = next business day).
    pub sla_minutes: [Option<u64>; 4],
    /// Escalation contact per severity: critical, high, medium, low.
    pub contacts: [String; 4],
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        Self {
            min_level: 7,
            window_minutes: 60,
            ingest_interval_secs: 60,
            late_alert_minutes: 10,
            sla_minutes: [Some(15), Some(60), Some(240), None],
            contacts: [
                "security lead".into(),
                "DevOps engineer".into(),
                "operations lead".into(),
                "team lead".into(),
            ],
        }
    }
}

/// One credential `rotate_credentials` may touch (TOML only).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub id: String,
    pub kind: String,
    pub user: String,
    pub secret_file: PathBuf,
}

/// How a principal's destructive change is confirmed before it applies
/// (`[remediation.confirmation]`). Only `gate.rs` decides with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The client is asked (elicitation): proves that the client said yes.
    Elicitation,
    /// Only `secops-mcp approve TOKEN` on the server: proves someone with shell access
    /// on the server said yes.
    OutOfBand,
    /// Another principal listed in `[remediation] approvers` approves (`approve_change`),
    /// or the operator on the server (`secops-mcp approve`).
    SecondPrincipal,
}

impl Confirmation {
    pub const ALLOWED: &'static str = "elicitation, out_of_band, second_principal";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Elicitation => "elicitation",
            Self::OutOfBand => "out_of_band",
            Self::SecondPrincipal => "second_principal",
        }
    }

    fn parse(key: &str, v: &str) -> Result<Self, ConfigError> {
        match v {
            "elicitation" => Ok(Self::Elicitation),
            "out_of_band" => Ok(Self::OutOfBand),
            "second_principal" => Ok(Self::SecondPrincipal),
            other => Err(ConfigError::new(
                key,
                format!(
                    "`{}` is not a confirmation policy; allowed: {}",
                    crate::util::sanitize_untrusted(other.as_bytes(), 40),
                    Self::ALLOWED
                ),
            )),
        }
    }
}

/// Policy of the remediation gate (`[remediation]` in TOML). Only `gate.rs` decides with it.
#[derive(Debug, Clone)]
pub struct RemediationPolicy {
    /// Lifetime of a confirmation token (default 300 s).
    pub token_ttl_secs: u64,
    /// Apply needs a human (elicitation or `secops-mcp approve`); default true.
    pub require_human: bool,
    /// Destructive calls (plan or apply) per caller per minute.
    pub rate_limit_per_minute: u32,
    pub rotate_credentials_enabled: bool,
    /// Credential ids `rotate_credentials` may touch; `None` means every configured one.
    pub rotate_allow: Option<Vec<String>>,
    pub block_ip_enabled: bool,
    /// Addresses `block_ip` never blocks (besides loopback and the manager itself).
    pub protected_cidrs: Vec<ipnet::IpNet>,
    /// Whether `block_ip` may target every agent (`all_agents: true`).
    pub allow_all_agents: bool,
    /// Most agent ids one `block_ip` call may list.
    pub block_ip_max_agents: usize,
    /// Confirmation policy of the stdio caller (default `elicitation`).
    pub confirm_stdio: Confirmation,
    /// Confirmation policy of every HTTP principal, the anonymous one included (default
    /// `out_of_band`).
    pub confirm_http: Confirmation,
    /// Per-principal overrides.
    pub confirm_principals: BTreeMap<String, Confirmation>,
    /// Principals that may approve another principal's change (`approve_change`).
    pub approvers: Vec<String>,
}

impl Default for RemediationPolicy {
    fn default() -> Self {
        Self {
            token_ttl_secs: 300,
            require_human: true,
            rate_limit_per_minute: 10,
            rotate_credentials_enabled: true,
            rotate_allow: None,
            block_ip_enabled: true,
            protected_cidrs: Vec::new(),
            allow_all_agents: false,
            block_ip_max_agents: 20,
            confirm_stdio: Confirmation::Elicitation,
            confirm_http: Confirmation::OutOfBand,
            confirm_principals: BTreeMap::new(),
            approvers: Vec::new(),
        }
    }
}

/// The effective, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub config_file: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub wazuh: Option<WazuhConfig>,
    pub indexer: Option<IndexerConfig>,
    pub extra_ca_file: Option<PathBuf>,
    pub tls_insecure: bool,
    pub scan_allow: Vec<String>,
    /// scan_host calls each caller may start per minute.
    pub scan_rate_per_minute: u32,
    pub http: HttpConfig,
    pub remediation_enabled: bool,
    /// What the remediation gate allows once remediation is enabled.
    pub remediation: RemediationPolicy,
    pub cert: CertDefaults,
    pub health: HealthConfig,
    pub credentials: Vec<CredentialConfig>,
    pub incidents: IncidentsConfig,
    pub log_level: String,
}

pub const DEFAULT_ALLOWED_ORIGINS: &[&str] = &["http://localhost:*", "http://127.0.0.1:*"];
pub const DEFAULT_SCAN_ALLOW: &[&str] = &["127.0.0.0/8", "::1"];

// ----- the TOML file, as written by people -----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    state_dir: Option<PathBuf>,
    log_level: Option<String>,
    wazuh: Option<FileService>,
    indexer: Option<FileService>,
    tls: Option<FileTls>,
    scan: Option<FileScan>,
    http: Option<FileHttp>,
    remediation: Option<FileRemediation>,
    check_cert: Option<FileCert>,
    health: Option<FileHealth>,
    incidents: Option<FileIncidents>,
    #[serde(default)]
    credentials: Vec<CredentialConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileService {
    url: Option<String>,
    requests_per_minute: Option<u32>,
    user: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    extra_ca_file: Option<PathBuf>,
    insecure: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileScan {
    allow: Option<Vec<String>>,
    rate_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    tokens_file: Option<PathBuf>,
    allowed_origins: Option<Vec<String>>,
    allowed_hosts: Option<Vec<String>>,
    rate_limit_per_minute: Option<u32>,
    max_body_bytes: Option<usize>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    write_timeout_secs: Option<u64>,
    sse_max_secs: Option<u64>,
    drain_timeout_secs: Option<u64>,
    max_sessions: Option<usize>,
    session_idle_secs: Option<u64>,
    auth_failures_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRemediation {
    enabled: Option<bool>,
    token_ttl_secs: Option<u64>,
    require_human: Option<bool>,
    rate_limit_per_minute: Option<u32>,
    approvers: Option<Vec<String>>,
    confirmation: Option<FileConfirmation>,
    rotate_credentials: Option<FileRotate>,
    block_ip: Option<FileBlockIp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfirmation {
    stdio: Option<String>,
    http: Option<String>,
    principals: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRotate {
    enabled: Option<bool>,
    allow: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBlockIp {
    enabled: Option<bool>,
    protected_cidrs: Option<Vec<String>>,
    allow_all_agents: Option<bool>,
    max_agents: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCert {
    warning_days: Option<i64>,
    critical_days: Option<i64>,
    timeout_ms: Option<u64>,
    file_roots: Option<Vec<PathBuf>>,
    allow: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHealth {
    timeout_ms: Option<u64>,
    api_slow_ms: Option<u64>,
    api_critical_ms: Option<u64>,
    cpu_warn_percent: Option<f64>,
    memory_warn_percent: Option<f64>,
    disk_warn_percent: Option<f64>,
    disconnected_warn_percent: Option<f64>,
    logs_critical_window_minutes: Option<u64>,
    container_filter: Option<String>,
    docker_host: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIncidents {
    min_level: Option<u32>,
    window_minutes: Option<u64>,
    ingest_interval_secs: Option<u64>,
    late_alert_minutes: Option<u64>,
    critical_sla_minutes: Option<u64>,
    high_sla_minutes: Option<u64>,
    medium_sla_minutes: Option<u64>,
    low_sla_minutes: Option<u64>,
    critical_contact: Option<String>,
    high_contact: Option<String>,
    medium_contact: Option<String>,
    low_contact: Option<String>,
}

/// Environment access, abstracted so tests can pass a map instead of mutating the process env.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned().filter(|v| !v.is_empty())
    }
}

/// Every environment variable the server reads (documented in README's reference).
pub const ENV_VARS: &[&str] = &[
    "SECOPS_CONFIG",
    "SECOPS_STATE_DIR",
    "SECOPS_LOG",
    "SECOPS_WAZUH_URL",
    "SECOPS_WAZUH_USER",
    "SECOPS_WAZUH_PASSWORD",
    "SECOPS_WAZUH_PASSWORD_FILE",
    "SECOPS_WAZUH_CA_FILE",
    "SECOPS_INDEXER_URL",
    "SECOPS_INDEXER_USER",
    "SECOPS_INDEXER_PASSWORD",
    "SECOPS_INDEXER_PASSWORD_FILE",
    "SECOPS_INDEXER_CA_FILE",
    "SECOPS_EXTRA_CA_FILE",
    "SECOPS_TLS_INSECURE",
    "SECOPS_SCAN_ALLOW",
    "SECOPS_SCAN_RATE_PER_MINUTE",
    "SECOPS_HTTP_TOKENS_FILE",
    "SECOPS_ALLOWED_ORIGINS",
    "SECOPS_ALLOWED_HOSTS",
    "SECOPS_HTTP_RATE_LIMIT",
    "SECOPS_HTTP_MAX_BODY_BYTES",
    "SECOPS_REMEDIATION",
    "SECOPS_HEALTH_TIMEOUT_MS",
    "SECOPS_CONTAINER_FILTER",
    "SECOPS_INCIDENTS_MIN_LEVEL",
    "SECOPS_INCIDENTS_INGEST_INTERVAL_SECS",
    "DOCKER_HOST",
];

impl Config {
    /// Load from the process environment and an optional explicit file path.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &ProcessEnv)
    }

    /// Load with an explicit environment (tests).
    pub fn load_with(file: Option<&Path>, env: &dyn Env) -> Result<Self, ConfigError> {
        let path = file
            .map(Path::to_path_buf)
            .or_else(|| env.var("SECOPS_CONFIG").map(PathBuf::from));
        let fc = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    ConfigError::new("config", format!("cannot read {}: {e}", p.display()))
                })?;
                parse_file(&text).map_err(|mut e| {
                    e.problem = format!("{} (in {})", e.problem, p.display());
                    e
                })?
            }
            None => FileConfig::default(),
        };
        Self::from_parts(path, fc, env)
    }

    /// Parse TOML text plus environment (tests and `config check`).
    pub fn from_toml_str(text: &str, env: &dyn Env) -> Result<Self, ConfigError> {
        Self::from_parts(None, parse_file(text)?, env)
    }

    fn from_parts(
        config_file: Option<PathBuf>,
        fc: FileConfig,
        env: &dyn Env,
    ) -> Result<Self, ConfigError> {
        let state_dir = env
            .var("SECOPS_STATE_DIR")
            .map(PathBuf::from)
            .or(fc.state_dir)
            .or_else(default_state_dir)
            .ok_or_else(|| {
                ConfigError::new(
                    "state_dir",
                    "no platform state directory could be determined; set SECOPS_STATE_DIR",
                )
            })?;
        if state_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("state_dir", "must not be empty"));
        }

        let wazuh_rpm = fc
            .wazuh
            .as_ref()
            .and_then(|w| w.requests_per_minute)
            .unwrap_or(240);
        if !(1..=1_000_000).contains(&wazuh_rpm) {
            return Err(ConfigError::new(
                "wazuh.requests_per_minute",
                "must be between 1 and 1000000",
            ));
        }
        if fc
            .indexer
            .as_ref()
            .is_some_and(|i| i.requests_per_minute.is_some())
        {
            return Err(ConfigError::new(
                "indexer.requests_per_minute",
                "is only a [wazuh] setting (the manager API's limit)",
            ));
        }
        let wazuh = service(
            "wazuh",
            "SECOPS_WAZUH",
            fc.wazuh.unwrap_or_default(),
            env,
            "wazuh",
        )?
        .map(|(url, login, ca_file)| WazuhConfig {
            url,
            login,
            ca_file,
            requests_per_minute: wazuh_rpm,
        });
        let indexer = service(
            "indexer",
            "SECOPS_INDEXER",
            fc.indexer.unwrap_or_default(),
            env,
            "admin",
        )?
        .map(|(url, login, ca_file)| IndexerConfig {
            url,
            login,
            ca_file,
        });

        let tls = fc.tls.unwrap_or_default();
        let extra_ca_file = env
            .var("SECOPS_EXTRA_CA_FILE")
            .map(PathBuf::from)
            .or(tls.extra_ca_file);
        let tls_insecure = match env.var("SECOPS_TLS_INSECURE") {
            Some(v) => parse_bool("SECOPS_TLS_INSECURE", &v)?,
            None => tls.insecure.unwrap_or(false),
        };

        let fscan = fc.scan.unwrap_or_default();
        let scan_allow = match env.var("SECOPS_SCAN_ALLOW") {
            Some(v) => split_list(&v),
            None => fscan
                .allow
                .unwrap_or_else(|| DEFAULT_SCAN_ALLOW.iter().map(|s| s.to_string()).collect()),
        };
        let scan_rate_per_minute = match env.var("SECOPS_SCAN_RATE_PER_MINUTE") {
            Some(v) => parse_num("SECOPS_SCAN_RATE_PER_MINUTE", &v)?,
            None => fscan.rate_per_minute.unwrap_or(10),
        };
        if !(1..=10_000).contains(&scan_rate_per_minute) {
            return Err(ConfigError::new(
                "scan.rate_per_minute",
                format!("{scan_rate_per_minute} is out of range (1..=10000)"),
            ));
        }
        for entry in &scan_allow {
            validate_scope_entry("scan.allow (SECOPS_SCAN_ALLOW)", entry)?;
        }

        let fh = fc.http.unwrap_or_default();
        let allowed_origins = match env.var("SECOPS_ALLOWED_ORIGINS") {
            Some(v) => split_list(&v),
            None => fh.allowed_origins.unwrap_or_else(|| {
                DEFAULT_ALLOWED_ORIGINS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }),
        };
        for o in &allowed_origins {
            validate_origin_pattern(o)?;
        }
        let allowed_hosts = match env.var("SECOPS_ALLOWED_HOSTS") {
            Some(v) => split_list(&v),
            None => fh.allowed_hosts.unwrap_or_default(),
        };
        let rate_limit_per_minute = match env.var("SECOPS_HTTP_RATE_LIMIT") {
            Some(v) => parse_num("SECOPS_HTTP_RATE_LIMIT", &v)?,
            None => fh.rate_limit_per_minute.unwrap_or(600),
        };
        if !(1..=1_000_000).contains(&rate_limit_per_minute) {
            return Err(ConfigError::new(
                "http.rate_limit_per_minute",
                format!("{rate_limit_per_minute} is out of range (1..=1000000)"),
            ));
        }
        let max_body_bytes = match env.var("SECOPS_HTTP_MAX_BODY_BYTES") {
            Some(v) => parse_num("SECOPS_HTTP_MAX_BODY_BYTES", &v)?,
            None => fh.max_body_bytes.unwrap_or(256 * 1024),
        };
        if !(1024..=64 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(ConfigError::new(
                "http.max_body_bytes",
                format!("{max_body_bytes} is out of range (1024..=67108864)"),
            ));
        }
        let d = HttpLimits::default();
        let limits = HttpLimits {
            max_connections: fh.max_connections.unwrap_or(d.max_connections),
            header_timeout_secs: fh.header_timeout_secs.unwrap_or(d.header_timeout_secs),
            body_timeout_secs: fh.body_timeout_secs.unwrap_or(d.body_timeout_secs),
            write_timeout_secs: fh.write_timeout_secs.unwrap_or(d.write_timeout_secs),
            sse_max_secs: fh.sse_max_secs.unwrap_or(d.sse_max_secs),
            drain_timeout_secs: fh.drain_timeout_secs.unwrap_or(d.drain_timeout_secs),
            max_sessions: fh.max_sessions.unwrap_or(d.max_sessions),
            session_idle_secs: fh.session_idle_secs.unwrap_or(d.session_idle_secs),
            auth_failures_per_minute: fh
                .auth_failures_per_minute
                .unwrap_or(d.auth_failures_per_minute),
        };
        for (key, v, lo, hi) in [
            (
                "http.max_connections",
                limits.max_connections as u64,
                1,
                100_000,
            ),
            (
                "http.header_timeout_secs",
                limits.header_timeout_secs,
                1,
                3600,
            ),
            ("http.body_timeout_secs", limits.body_timeout_secs, 1, 3600),
            (
                "http.write_timeout_secs",
                limits.write_timeout_secs,
                1,
                3600,
            ),
            ("http.sse_max_secs", limits.sse_max_secs, 1, 86_400),
            (
                "http.drain_timeout_secs",
                limits.drain_timeout_secs,
                1,
                3600,
            ),
            ("http.max_sessions", limits.max_sessions as u64, 1, 100_000),
            (
                "http.session_idle_secs",
                limits.session_idle_secs,
                1,
                86_400,
            ),
            (
                "http.auth_failures_per_minute",
                limits.auth_failures_per_minute as u64,
                1,
                100_000,
            ),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(ConfigError::new(
                    key,
                    format!("{v} is out of range ({lo}..={hi})"),
                ));
            }
        }
        let tokens_file = env
            .var("SECOPS_HTTP_TOKENS_FILE")
            .map(PathBuf::from)
            .or(fh.tokens_file);

        let remediation_enabled = match env.var("SECOPS_REMEDIATION") {
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "enabled" | "true" | "1" | "on" => true,
                "disabled" | "false" | "0" | "off" => false,
                other => {
                    return Err(ConfigError::new(
                        "SECOPS_REMEDIATION",
                        format!("`{other}` is not allowed; use `enabled` or `disabled`"),
                    ));
                }
            },
            None => fc
                .remediation
                .as_ref()
                .and_then(|r| r.enabled)
                .unwrap_or(false),
        };
        let remediation = remediation_policy(fc.remediation.unwrap_or_default(), &fc.credentials)?;

        let fcert = fc.check_cert.unwrap_or_default();
        let file_roots = match env.var("SECOPS_CERT_FILE_ROOTS") {
            Some(v) => split_list(&v).into_iter().map(PathBuf::from).collect(),
            None => fcert.file_roots.unwrap_or_else(|| {
                DEFAULT_CERT_FILE_ROOTS
                    .iter()
                    .map(PathBuf::from)
                    .chain(std::iter::once(state_dir.clone()))
                    .collect()
            }),
        };
        for root in &file_roots {
            validate_file_root(root)?;
        }
        let cert_allow = match env.var("SECOPS_CERT_ALLOW") {
            Some(v) => split_list(&v),
            None => fcert.allow.unwrap_or_default(),
        };
        for entry in &cert_allow {
            validate_scope_entry(CERT_ALLOW_KEY, entry)?;
        }
        crate::checks::scan::Scope::parse(&cert_allow)
            .map_err(|e| ConfigError::new(CERT_ALLOW_KEY, e))?;
        let cert = CertDefaults {
            warning_days: fcert.warning_days.unwrap_or(30),
            critical_days: fcert.critical_days.unwrap_or(7),
            timeout_ms: fcert.timeout_ms.unwrap_or(5000),
            file_roots,
            allow: cert_allow,
        };
        if !(0..=3650).contains(&cert.warning_days) {
            return Err(ConfigError::new(
                "check_cert.warning_days",
                "must be between 0 and 3650",
            ));
        }
        if !(0..=cert.warning_days).contains(&cert.critical_days) {
            return Err(ConfigError::new(
                "check_cert.critical_days",
                "must be between 0 and check_cert.warning_days",
            ));
        }
        if !(1..=120_000).contains(&cert.timeout_ms) {
            return Err(ConfigError::new(
                "check_cert.timeout_ms",
                "must be between 1 and 120000",
            ));
        }

        let fhe = fc.health.unwrap_or_default();
        let health = HealthConfig {
            timeout_ms: match env.var("SECOPS_HEALTH_TIMEOUT_MS") {
                Some(v) => parse_num("SECOPS_HEALTH_TIMEOUT_MS", &v)?,
                None => fhe.timeout_ms.unwrap_or(5000),
            },
            api_slow_ms: fhe.api_slow_ms.unwrap_or(2000),
            api_critical_ms: fhe.api_critical_ms.unwrap_or(5000),
            cpu_warn_percent: fhe.cpu_warn_percent.unwrap_or(80.0),
            memory_warn_percent: fhe.memory_warn_percent.unwrap_or(85.0),
            disk_warn_percent: fhe.disk_warn_percent.unwrap_or(85.0),
            disconnected_warn_percent: fhe.disconnected_warn_percent.unwrap_or(5.0),
            logs_critical_window_minutes: fhe.logs_critical_window_minutes.unwrap_or(60),
            container_filter: env
                .var("SECOPS_CONTAINER_FILTER")
                .or(fhe.container_filter)
                .unwrap_or_else(|| "wazuh".to_string()),
            docker_host: env.var("DOCKER_HOST").or(fhe.docker_host),
        };
        if !(100..=120_000).contains(&health.timeout_ms) {
            return Err(ConfigError::new(
                "health.timeout_ms (SECOPS_HEALTH_TIMEOUT_MS)",
                "must be between 100 and 120000",
            ));
        }
        if !(1..=10_080).contains(&health.logs_critical_window_minutes) {
            return Err(ConfigError::new(
                "health.logs_critical_window_minutes",
                "must be between 1 and 10080 (a week)",
            ));
        }
        if health.api_slow_ms >= health.api_critical_ms {
            return Err(ConfigError::new(
                "health.api_slow_ms",
                "must be below health.api_critical_ms",
            ));
        }
        for (key, v) in [
            ("health.cpu_warn_percent", health.cpu_warn_percent),
            ("health.memory_warn_percent", health.memory_warn_percent),
            ("health.disk_warn_percent", health.disk_warn_percent),
            (
                "health.disconnected_warn_percent",
                health.disconnected_warn_percent,
            ),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(ConfigError::new(
                    key,
                    "must be a percentage between 0 and 100",
                ));
            }
        }

        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in fc.credentials.iter().enumerate() {
            let key = format!("credentials[{i}]");
            if c.id.trim().is_empty() {
                return Err(ConfigError::new(format!("{key}.id"), "must not be empty"));
            }
            if !seen.insert(c.id.clone()) {
                return Err(ConfigError::new(
                    format!("{key}.id"),
                    format!("duplicate credential id `{}`", c.id),
                ));
            }
            if c.kind != "wazuh_api_user" {
                return Err(ConfigError::new(
                    format!("{key}.kind"),
                    format!("unknown kind `{}`; allowed: wazuh_api_user", c.kind),
                ));
            }
            if !c.secret_file.is_absolute() {
                return Err(ConfigError::new(
                    format!("{key}.secret_file"),
                    "must be an absolute path",
                ));
            }
        }

        let incidents = incidents_config(fc.incidents.unwrap_or_default(), env)?;

        let log_level = env
            .var("SECOPS_LOG")
            .or(fc.log_level)
            .unwrap_or_else(|| "info".to_string());
        tracing_subscriber::EnvFilter::try_new(&log_level)
            .map_err(|e| ConfigError::new("log_level", format!("`{log_level}`: {e}")))?;

        Ok(Config {
            config_file,
            state_dir,
            wazuh,
            indexer,
            extra_ca_file,
            tls_insecure,
            scan_allow,
            scan_rate_per_minute,
            http: HttpConfig {
                tokens_file,
                allowed_origins,
                allowed_hosts,
                rate_limit_per_minute,
                max_body_bytes,
                limits,
            },
            remediation_enabled,
            remediation,
            cert,
            health,
            credentials: fc.credentials,
            incidents,
            log_level,
        })
    }

    /// The effective settings as a JSON value with every secret masked (for `config check`
    /// and the config resource).
    pub fn masked(&self) -> serde_json::Value {
        use serde_json::json;
        let login = |l: &Login| {
            json!({
                "user": l.user,
                "password": match (&l.password, &l.password_source) {
                    (Some(_), Some(src)) => json!({"set": true, "from": src}),
                    (Some(_), None) => json!({"set": true}),
                    _ => json!({"set": false}),
                },
            })
        };
        json!({
            "config_file": self.config_file,
            "state_dir": self.state_dir,
            "log_level": self.log_level,
            "wazuh": self.wazuh.as_ref().map(|w| json!({
                "url": w.url, "login": login(&w.login), "ca_file": w.ca_file,
                "requests_per_minute": w.requests_per_minute,
            })),
            "indexer": self.indexer.as_ref().map(|w| json!({
                "url": w.url, "login": login(&w.login), "ca_file": w.ca_file,
            })),
            "tls": {"extra_ca_file": self.extra_ca_file, "insecure": self.tls_insecure},
            "scan": {"allow": self.scan_allow, "rate_per_minute": self.scan_rate_per_minute},
            "http": {
                "tokens_file": self.http.tokens_file,
                "allowed_origins": self.http.allowed_origins,
                "allowed_hosts": self.http.allowed_hosts,
                "rate_limit_per_minute": self.http.rate_limit_per_minute,
                "max_body_bytes": self.http.max_body_bytes,
                "max_connections": self.http.limits.max_connections,
                "header_timeout_secs": self.http.limits.header_timeout_secs,
                "body_timeout_secs": self.http.limits.body_timeout_secs,
                "write_timeout_secs": self.http.limits.write_timeout_secs,
                "sse_max_secs": self.http.limits.sse_max_secs,
                "drain_timeout_secs": self.http.limits.drain_timeout_secs,
                "max_sessions": self.http.limits.max_sessions,
                "session_idle_secs": self.http.limits.session_idle_secs,
                "auth_failures_per_minute": self.http.limits.auth_failures_per_minute,
            },
            "remediation": {
                "enabled": self.remediation_enabled,
                "token_ttl_secs": self.remediation.token_ttl_secs,
                "require_human": self.remediation.require_human,
                "rate_limit_per_minute": self.remediation.rate_limit_per_minute,
                "approvers": self.remediation.approvers,
                "confirmation": {
                    "stdio": self.remediation.confirm_stdio.as_str(),
                    "http": self.remediation.confirm_http.as_str(),
                    "principals": self.remediation.confirm_principals.iter()
                        .map(|(k, v)| (k.clone(), json!(v.as_str())))
                        .collect::<serde_json::Map<_, _>>(),
                },
                "rotate_credentials": {
                    "enabled": self.remediation.rotate_credentials_enabled,
                    "allow": self.remediation.rotate_allow,
                },
                "block_ip": {
                    "enabled": self.remediation.block_ip_enabled,
                    "protected_cidrs": self.remediation.protected_cidrs.iter()
                        .map(|c| c.to_string()).collect::<Vec<_>>(),
                    "allow_all_agents": self.remediation.allow_all_agents,
                    "max_agents": self.remediation.block_ip_max_agents,
                },
            },
            "check_cert": {
                "warning_days": self.cert.warning_days,
                "critical_days": self.cert.critical_days,
                "timeout_ms": self.cert.timeout_ms,
                "file_roots": self.cert.file_roots,
                "allow": self.cert.allow,
            },
            "health": {
                "timeout_ms": self.health.timeout_ms,
                "api_slow_ms": self.health.api_slow_ms,
                "api_critical_ms": self.health.api_critical_ms,
                "cpu_warn_percent": self.health.cpu_warn_percent,
                "memory_warn_percent": self.health.memory_warn_percent,
                "disk_warn_percent": self.health.disk_warn_percent,
                "disconnected_warn_percent": self.health.disconnected_warn_percent,
                "logs_critical_window_minutes": self.health.logs_critical_window_minutes,
                "container_filter": self.health.container_filter,
                "docker_host": self.health.docker_host,
            },
            "incidents": {
                "min_level": self.incidents.min_level,
                "window_minutes": self.incidents.window_minutes,
                "ingest_interval_secs": self.incidents.ingest_interval_secs,
                "late_alert_minutes": self.incidents.late_alert_minutes,
                "sla_minutes": {
                    "critical": self.incidents.sla_minutes[0],
                    "high": self.incidents.sla_minutes[1],
                    "medium": self.incidents.sla_minutes[2],
                    "low": self.incidents.sla_minutes[3].map_or(json!("next_business_day"), |m| json!(m)),
                },
                "contacts": {
                    "critical": self.incidents.contacts[0],
                    "high": self.incidents.contacts[1],
                    "medium": self.incidents.contacts[2],
                    "low": self.incidents.contacts[3],
                },
            },
            "credentials": self.credentials.iter().map(|c| json!({
                "id": c.id, "kind": c.kind, "user": c.user, "secret_file": c.secret_file,
            })).collect::<Vec<_>>(),
        })
    }

    /// Warnings worth printing at start (not errors).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.tls_insecure {
            w.push(
                "SECOPS_TLS_INSECURE=true: certificate verification toward Wazuh is DISABLED; \
                 anyone on the path can impersonate the manager and read its credentials"
                    .to_string(),
            );
        }
        for (name, svc) in [
            ("wazuh", self.wazuh.as_ref().map(|w| &w.login)),
            ("indexer", self.indexer.as_ref().map(|i| &i.login)),
        ] {
            if let Some(l) = svc
                && l.password_source == Some(SecretSource::Inline)
            {
                w.push(format!(
                    "{name}.password is written inline in the config file; prefer password_file \
                     or password_env"
                ));
            }
        }
        w
    }
}

fn incidents_config(f: FileIncidents, env: &dyn Env) -> Result<IncidentsConfig, ConfigError> {
    let d = IncidentsConfig::default();
    let min_level = match env.var("SECOPS_INCIDENTS_MIN_LEVEL") {
        Some(v) => parse_num("SECOPS_INCIDENTS_MIN_LEVEL", &v)?,
        None => f.min_level.unwrap_or(d.min_level),
    };
    if !(1..=16).contains(&min_level) {
        return Err(ConfigError::new(
            "incidents.min_level (SECOPS_INCIDENTS_MIN_LEVEL)",
            "must be a Wazuh rule level between 1 and 16",
        ));
    }
    let ingest_interval_secs = match env.var("SECOPS_INCIDENTS_INGEST_INTERVAL_SECS") {
        Some(v) => parse_num("SECOPS_INCIDENTS_INGEST_INTERVAL_SECS", &v)?,
        None => f.ingest_interval_secs.unwrap_or(d.ingest_interval_secs),
    };
    let c = IncidentsConfig {
        min_level,
        window_minutes: f.window_minutes.unwrap_or(d.window_minutes),
        ingest_interval_secs,
        late_alert_minutes: f.late_alert_minutes.unwrap_or(d.late_alert_minutes),
        sla_minutes: [
            f.critical_sla_minutes.or(d.sla_minutes[0]),
            f.high_sla_minutes.or(d.sla_minutes[1]),
            f.medium_sla_minutes.or(d.sla_minutes[2]),
            f.low_sla_minutes.or(d.sla_minutes[3]),
        ],
        contacts: [
            f.critical_contact.unwrap_or_else(|| d.contacts[0].clone()),
            f.high_contact.unwrap_or_else(|| d.contacts[1].clone()),
            f.medium_contact.unwrap_or_else(|| d.contacts[2].clone()),
            f.low_contact.unwrap_or_else(|| d.contacts[3].clone()),
        ],
    };
    for (key, v, max) in [
        ("incidents.window_minutes", c.window_minutes, 7 * 24 * 60),
        (
            "incidents.late_alert_minutes",
            c.late_alert_minutes,
            24 * 60,
        ),
        (
            "incidents.ingest_interval_secs (SECOPS_INCIDENTS_INGEST_INTERVAL_SECS)",
            c.ingest_interval_secs,
            86_400,
        ),
    ] {
        if v > max {
            return Err(ConfigError::new(
                key,
                format!("must be between 0 and {max}"),
            ));
        }
    }
    if c.window_minutes == 0 {
        return Err(ConfigError::new(
            "incidents.window_minutes",
            "must be at least 1",
        ));
    }
    for (i, sev) in ["critical", "high", "medium", "low"].iter().enumerate() {
        if c.sla_minutes[i].is_some_and(|m| m > 30 * 24 * 60) {
            return Err(ConfigError::new(
                format!("incidents.{sev}_sla_minutes"),
                "must be between 0 and 43200 (30 days)",
            ));
        }
        if c.contacts[i].trim().is_empty() || c.contacts[i].len() > 200 {
            return Err(ConfigError::new(
                format!("incidents.{sev}_contact"),
                "must be 1 to 200 characters",
            ));
        }
    }
    Ok(c)
}

fn parse_file(text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let msg = e.message().to_string();
        // toml reports the offending key inside the message ("unknown field `x`").
        let key = e
            .span()
            .and_then(|s| text.get(s))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s.len() < 80)
            .unwrap_or_else(|| "config".to_string());
        ConfigError::new(key, msg)
    })
}

type ServiceParts = (String, Login, Option<PathBuf>);

fn service(
    section: &str,
    prefix: &str,
    fs: FileService,
    env: &dyn Env,
    default_user: &str,
) -> Result<Option<ServiceParts>, ConfigError> {
    let url = env.var(&format!("{prefix}_URL")).or(fs.url);
    let Some(url) = url else {
        return Ok(None);
    };
    let url_key = format!("{section}.url ({prefix}_URL)");
    let parsed = url.trim().trim_end_matches('/').to_string();
    match parsed.split_once("://") {
        Some(("https", rest)) | Some(("http", rest)) if !rest.is_empty() => {}
        _ => {
            return Err(ConfigError::new(
                url_key,
                format!("`{url}` is not an http(s) URL, e.g. https://wazuh.example:55000"),
            ));
        }
    }
    let user = env
        .var(&format!("{prefix}_USER"))
        .or(fs.user)
        .unwrap_or_else(|| default_user.to_string());
    let (password, password_source) = if let Some(p) = env.var(&format!("{prefix}_PASSWORD")) {
        (
            Some(Secret::new(p)),
            Some(SecretSource::Env(format!("{prefix}_PASSWORD"))),
        )
    } else if let Some(f) = env
        .var(&format!("{prefix}_PASSWORD_FILE"))
        .map(PathBuf::from)
        .or(fs.password_file)
    {
        let secret = read_secret_file(&f).map_err(|problem| {
            ConfigError::new(
                format!("{section}.password_file ({prefix}_PASSWORD_FILE)"),
                problem,
            )
        })?;
        (Some(secret), Some(SecretSource::File(f)))
    } else if let Some(var) = fs.password_env {
        let v = env.var(&var).ok_or_else(|| {
            ConfigError::new(
                format!("{section}.password_env"),
                format!("environment variable `{var}` is not set"),
            )
        })?;
        (Some(Secret::new(v)), Some(SecretSource::Env(var)))
    } else if let Some(p) = fs.password {
        (Some(Secret::new(p)), Some(SecretSource::Inline))
    } else {
        (None, None)
    };
    let ca_file = env
        .var(&format!("{prefix}_CA_FILE"))
        .map(PathBuf::from)
        .or(fs.ca_file);
    if let Some(ca) = &ca_file
        && !ca.is_file()
    {
        return Err(ConfigError::new(
            format!("{section}.ca_file ({prefix}_CA_FILE)"),
            format!("{} does not exist or is not a file", ca.display()),
        ));
    }
    Ok(Some((
        parsed,
        Login {
            user,
            password,
            password_source,
        },
        ca_file,
    )))
}

fn remediation_policy(
    fr: FileRemediation,
    credentials: &[CredentialConfig],
) -> Result<RemediationPolicy, ConfigError> {
    let d = RemediationPolicy::default();
    let token_ttl_secs = fr.token_ttl_secs.unwrap_or(d.token_ttl_secs);
    if !(1..=86_400).contains(&token_ttl_secs) {
        return Err(ConfigError::new(
            "remediation.token_ttl_secs",
            "must be between 1 and 86400",
        ));
    }
    let rate_limit_per_minute = fr.rate_limit_per_minute.unwrap_or(d.rate_limit_per_minute);
    if rate_limit_per_minute == 0 {
        return Err(ConfigError::new(
            "remediation.rate_limit_per_minute",
            "must be at least 1",
        ));
    }
    let rot = fr.rotate_credentials.unwrap_or_default();
    if let Some(allow) = &rot.allow {
        for id in allow {
            if !credentials.iter().any(|c| &c.id == id) {
                return Err(ConfigError::new(
                    "remediation.rotate_credentials.allow",
                    format!("`{id}` is not the id of a [[credentials]] entry"),
                ));
            }
        }
    }
    let bi = fr.block_ip.unwrap_or_default();
    let mut protected_cidrs = Vec::new();
    for c in bi.protected_cidrs.unwrap_or_default() {
        let net = c
            .parse::<ipnet::IpNet>()
            .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                ConfigError::new(
                    "remediation.block_ip.protected_cidrs",
                    format!("`{c}` is not an IP address or CIDR (e.g. 10.0.0.0/8)"),
                )
            })?;
        protected_cidrs.push(net);
    }
    if let Some(m) = bi.max_agents
        && !(1..=10_000).contains(&m)
    {
        return Err(ConfigError::new(
            "remediation.block_ip.max_agents",
            "must be between 1 and 10000",
        ));
    }
    let principal_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c))
    };
    let mut approvers = Vec::new();
    for a in fr.approvers.unwrap_or_default() {
        if !principal_ok(&a) {
            return Err(ConfigError::new(
                "remediation.approvers",
                format!(
                    "`{}` is not a principal name (letters, digits and -_.@, at most 64)",
                    crate::util::sanitize_untrusted(a.as_bytes(), 64)
                ),
            ));
        }
        if matches!(a.as_str(), "cli" | "system" | "http:anonymous") {
            return Err(ConfigError::new(
                "remediation.approvers",
                format!(
                    "`{a}` is not a principal that can approve (`cli` is the operator's \
                     `secops-mcp approve`, which needs no listing; `http:anonymous` is any \
                     local process)"
                ),
            ));
        }
        if !approvers.contains(&a) {
            approvers.push(a);
        }
    }
    let fconf = fr.confirmation.unwrap_or_default();
    let confirm_stdio = match &fconf.stdio {
        Some(v) => Confirmation::parse("remediation.confirmation.stdio", v)?,
        None => d.confirm_stdio,
    };
    let confirm_http = match &fconf.http {
        Some(v) => Confirmation::parse("remediation.confirmation.http", v)?,
        None => d.confirm_http,
    };
    let mut confirm_principals = BTreeMap::new();
    for (name, v) in fconf.principals.unwrap_or_default() {
        let key = format!("remediation.confirmation.principals.{name}");
        if !principal_ok(&name) || matches!(name.as_str(), "cli" | "system") {
            return Err(ConfigError::new(
                "remediation.confirmation.principals",
                format!(
                    "`{}` is not a principal name (letters, digits and -_.@, at most 64; not \
                     `cli` or `system`)",
                    crate::util::sanitize_untrusted(name.as_bytes(), 64)
                ),
            ));
        }
        confirm_principals.insert(name, Confirmation::parse(&key, &v)?);
    }
    let second_principal = confirm_stdio == Confirmation::SecondPrincipal
        || confirm_http == Confirmation::SecondPrincipal
        || confirm_principals
            .values()
            .any(|c| *c == Confirmation::SecondPrincipal);
    if second_principal && approvers.is_empty() {
        return Err(ConfigError::new(
            "remediation.approvers",
            "is empty, but a confirmation policy is `second_principal`; list the principals \
             who may approve another's change (e.g. approvers = [\"bob\"])",
        ));
    }
    Ok(RemediationPolicy {
        token_ttl_secs,
        require_human: fr.require_human.unwrap_or(d.require_human),
        rate_limit_per_minute,
        rotate_credentials_enabled: rot.enabled.unwrap_or(d.rotate_credentials_enabled),
        rotate_allow: rot.allow,
        block_ip_enabled: bi.enabled.unwrap_or(d.block_ip_enabled),
        protected_cidrs,
        allow_all_agents: bi.allow_all_agents.unwrap_or(d.allow_all_agents),
        block_ip_max_agents: bi.max_agents.unwrap_or(d.block_ip_max_agents),
        confirm_stdio,
        confirm_http,
        confirm_principals,
        approvers,
    })
}

/// Read a secret from a file: first line, trailing newline trimmed. The error never
/// contains file content.
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret::new(first))
}

fn default_state_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local").join("state")))
        .map(|d| d.join("secops-mcp"))
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(ConfigError::new(
            key,
            format!("`{other}` is not a boolean; use true or false"),
        )),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError::new(key, format!("`{v}` is not a valid number")))
}

const CERT_ALLOW_KEY: &str = "check_cert.allow (SECOPS_CERT_ALLOW)";

fn validate_file_root(root: &Path) -> Result<(), ConfigError> {
    let key = "check_cert.file_roots (SECOPS_CERT_FILE_ROOTS)";
    let shown = root.display();
    if root.as_os_str().is_empty() {
        return Err(ConfigError::new(key, "an entry is empty"));
    }
    if !root.is_absolute() {
        return Err(ConfigError::new(
            key,
            format!("`{shown}` is not an absolute path; write folders like /etc/ssl"),
        ));
    }
    if root
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(ConfigError::new(
            key,
            format!("`{shown}` contains `..`; write the folder itself"),
        ));
    }
    Ok(())
}

/// A scope entry, checked by the parser scan_host and check_cert use (so `config check`
/// and `serve` can never disagree about it).
fn validate_scope_entry(key: &str, entry: &str) -> Result<(), ConfigError> {
    crate::checks::scan::Scope::parse(&[entry.to_string()])
        .map(|_| ())
        .map_err(|e| ConfigError::new(key, e))
}

/// An allowed origin, checked by the HTTP transport's own parser.
fn validate_origin_pattern(o: &str) -> Result<(), ConfigError> {
    crate::server::http::OriginPattern::parse(o)
        .map(|_| ())
        .map_err(|e| {
            ConfigError::new(
                "http.allowed_origins (SECOPS_ALLOWED_ORIGINS)",
                format!(
                    "{e}; write scheme://host[:port] (port may be `*`), e.g. \
                     https://app.example.com or http://localhost:*"
                ),
            )
        })
}

/// True for addresses only this machine can reach.
pub fn is_loopback_bind(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m.entry("SECOPS_STATE_DIR".into())
            .or_insert_with(|| "/tmp/secops-test-state".into());
        m
    }

    #[test]
    fn defaults_are_read_only_and_loopback_scoped() {
        let c = Config::from_toml_str("", &env(&[])).unwrap();
        assert!(!c.remediation_enabled);
        assert_eq!(c.scan_allow, vec!["127.0.0.0/8", "::1"]);
        assert_eq!(
            c.http.allowed_origins,
            vec!["http://localhost:*", "http://127.0.0.1:*"]
        );
        assert!(c.wazuh.is_none());
        assert_eq!(c.cert.warning_days, 30);
        assert_eq!(c.cert.critical_days, 7);
    }

    #[test]
    fn env_overrides_file() {
        let c = Config::from_toml_str(
            "[scan]\nallow = [\"10.0.0.0/8\"]\n[remediation]\nenabled = true\n",
            &env(&[
                ("SECOPS_SCAN_ALLOW", "192.0.2.0/24, host.example"),
                ("SECOPS_REMEDIATION", "disabled"),
            ]),
        )
        .unwrap();
        assert_eq!(c.scan_allow, vec!["192.0.2.0/24", "host.example"]);
        assert!(!c.remediation_enabled);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml_str("[http]\ntokenz_file = \"x\"\n", &env(&[])).unwrap_err();
        assert!(e.problem.contains("tokenz_file"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::from_toml_str("", &env(&[("SECOPS_TLS_INSECURE", "maybe")])).unwrap_err();
        assert_eq!(e.key, "SECOPS_TLS_INSECURE");
        let e =
            Config::from_toml_str("", &env(&[("SECOPS_SCAN_ALLOW", "10.0.0.0/99")])).unwrap_err();
        assert!(e.key.contains("SECOPS_SCAN_ALLOW") && e.problem.contains("prefix"));
        let e = Config::from_toml_str("", &env(&[("SECOPS_WAZUH_URL", "ftp://x")])).unwrap_err();
        assert!(e.key.contains("SECOPS_WAZUH_URL"));
        let e = Config::from_toml_str("", &env(&[("SECOPS_ALLOWED_ORIGINS", "localhost")]))
            .unwrap_err();
        assert!(e.key.contains("allowed_origins"));
        // The transport's own parser decides, so config check and serve agree.
        let e = Config::from_toml_str("", &env(&[("SECOPS_ALLOWED_ORIGINS", "http://h:abc")]))
            .unwrap_err();
        assert!(
            e.key.contains("allowed_origins") && e.problem.contains("port"),
            "{e}"
        );
        let e = Config::from_toml_str("", &env(&[("SECOPS_SCAN_ALLOW", "exa mple")])).unwrap_err();
        assert!(e.key.contains("SECOPS_SCAN_ALLOW"), "{e}");
        let e =
            Config::from_toml_str("", &env(&[("SECOPS_REMEDIATION", "yes please")])).unwrap_err();
        assert_eq!(e.key, "SECOPS_REMEDIATION");
        let e = Config::from_toml_str("[check_cert]\ncritical_days = 40\n", &env(&[])).unwrap_err();
        assert_eq!(e.key, "check_cert.critical_days");
    }

    #[test]
    fn check_cert_file_roots_and_allow_are_validated_and_shown() {
        let c = Config::from_toml_str("", &env(&[])).unwrap();
        let roots: Vec<String> = c
            .cert
            .file_roots
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        for r in DEFAULT_CERT_FILE_ROOTS {
            assert!(roots.contains(&r.to_string()), "{roots:?}");
        }
        assert!(
            roots.contains(&"/tmp/secops-test-state".to_string()),
            "{roots:?}"
        );
        assert!(c.cert.allow.is_empty(), "default: any host");
        let shown = c.masked();
        assert_eq!(shown["check_cert"]["allow"], serde_json::json!([]));
        assert!(
            shown["check_cert"]["file_roots"]
                .to_string()
                .contains("/etc/ssl")
        );

        let c = Config::from_toml_str(
            "[check_cert]\nfile_roots = [\"/srv/certs\"]\nallow = [\"127.0.0.2/32\", \"mail.example\"]\n",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.cert.file_roots, vec![PathBuf::from("/srv/certs")]);
        assert_eq!(c.cert.allow, vec!["127.0.0.2/32", "mail.example"]);
        let c = Config::from_toml_str("", &env(&[("SECOPS_CERT_FILE_ROOTS", "/a,/b")])).unwrap();
        assert_eq!(c.cert.file_roots.len(), 2);

        for bad in [
            "[check_cert]\nfile_roots = [\"certs\"]\n",
            "[check_cert]\nfile_roots = [\"\"]\n",
            "[check_cert]\nfile_roots = [\"/etc/ssl/../..\"]\n",
        ] {
            let e = Config::from_toml_str(bad, &env(&[])).unwrap_err();
            assert!(e.key.starts_with("check_cert.file_roots"), "{bad}: {e:?}");
        }
        for bad in ["10.0.0.0/33", "not a host!"] {
            let e = Config::from_toml_str("", &env(&[("SECOPS_CERT_ALLOW", bad)])).unwrap_err();
            assert!(e.key.starts_with("check_cert.allow"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn secrets_are_masked_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "S3cret-file-pass!\n").unwrap();
        let c = Config::from_toml_str(
            "",
            &env(&[
                ("SECOPS_WAZUH_URL", "https://wazuh.example:55000"),
                ("SECOPS_WAZUH_PASSWORD", "S3cret-env-pass!"),
                ("SECOPS_INDEXER_URL", "https://idx.example:9200"),
                ("SECOPS_INDEXER_PASSWORD_FILE", pw.to_str().unwrap()),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.wazuh
                .as_ref()
                .unwrap()
                .login
                .password
                .as_ref()
                .unwrap()
                .expose(),
            "S3cret-env-pass!"
        );
        assert_eq!(
            c.indexer
                .as_ref()
                .unwrap()
                .login
                .password
                .as_ref()
                .unwrap()
                .expose(),
            "S3cret-file-pass!"
        );
        let shown = format!("{:?} {}", c, c.masked());
        assert!(!shown.contains("S3cret"), "{shown}");
    }

    #[test]
    fn example_config_file_uses_only_known_keys() {
        parse_file(include_str!("../examples/secops-mcp.toml")).unwrap();
    }

    #[test]
    fn credentials_are_validated() {
        let e = Config::from_toml_str(
            "[[credentials]]\nid = \"a\"\nkind = \"ssh_key\"\nuser = \"u\"\nsecret_file = \"/x\"\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "credentials[0].kind");
    }

    #[test]
    fn remediation_policy_defaults_and_validation() {
        let c = Config::from_toml_str("", &env(&[])).unwrap();
        assert_eq!(c.remediation.token_ttl_secs, 300);
        assert!(c.remediation.require_human && !c.remediation.allow_all_agents);
        let c = Config::from_toml_str(
            "[remediation]\ntoken_ttl_secs = 2\n[remediation.block_ip]\nprotected_cidrs = [\"192.0.2.7\", \"10.0.0.0/8\"]\n",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.remediation.token_ttl_secs, 2);
        assert_eq!(c.remediation.protected_cidrs.len(), 2);
        let e = Config::from_toml_str(
            "[remediation.block_ip]\nprotected_cidrs = [\"10.0.0.0/33\"]\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "remediation.block_ip.protected_cidrs");
        let e = Config::from_toml_str(
            "[remediation.rotate_credentials]\nallow = [\"nope\"]\n",
            &env(&[]),
        )
        .unwrap_err();
        assert!(e.problem.contains("nope"), "{e}");
    }

    #[test]
    fn confirmation_policy_defaults_validation_and_masked_view() {
        let c = Config::from_toml_str("", &env(&[])).unwrap();
        assert_eq!(c.remediation.confirm_stdio, Confirmation::Elicitation);
        assert_eq!(c.remediation.confirm_http, Confirmation::OutOfBand);
        assert_eq!(c.remediation.block_ip_max_agents, 20);
        let c = Config::from_toml_str(
            "[remediation]\napprovers = [\"bob\"]\n[remediation.confirmation]\n\
             stdio = \"out_of_band\"\nhttp = \"elicitation\"\n\
             principals = { alice = \"second_principal\" }\n\
             [remediation.block_ip]\nmax_agents = 5\n",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.remediation.confirm_stdio, Confirmation::OutOfBand);
        assert_eq!(
            c.remediation.confirm_principals["alice"],
            Confirmation::SecondPrincipal
        );
        let m = c.masked();
        assert_eq!(
            m["remediation"]["confirmation"]["principals"]["alice"],
            "second_principal"
        );
        assert_eq!(m["remediation"]["confirmation"]["stdio"], "out_of_band");
        assert_eq!(m["remediation"]["approvers"][0], "bob");
        assert_eq!(m["remediation"]["block_ip"]["max_agents"], 5);
        // Unknown policy names list the allowed ones and name the key.
        let e = Config::from_toml_str(
            "[remediation.confirmation]\nhttp = \"trust_me\"\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "remediation.confirmation.http");
        assert!(e.problem.contains("trust_me"), "{e}");
        assert!(e.problem.contains(Confirmation::ALLOWED), "{e}");
        let e = Config::from_toml_str(
            "[remediation]\napprovers = [\"bob\"]\n\
             [remediation.confirmation]\nprincipals = { alice = \"yes\" }\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "remediation.confirmation.principals.alice");
        // second_principal needs approvers; approvers are real principals.
        let e = Config::from_toml_str(
            "[remediation.confirmation]\nhttp = \"second_principal\"\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "remediation.approvers");
        for bad in ["cli", "http:anonymous", "a b"] {
            let e = Config::from_toml_str(
                &format!("[remediation]\napprovers = [\"{bad}\"]\n"),
                &env(&[]),
            )
            .unwrap_err();
            assert_eq!(e.key, "remediation.approvers", "{bad}");
        }
        for bad in ["0", "10001"] {
            let e = Config::from_toml_str(
                &format!("[remediation.block_ip]\nmax_agents = {bad}\n"),
                &env(&[]),
            )
            .unwrap_err();
            assert_eq!(e.key, "remediation.block_ip.max_agents");
        }
    }
}
