//! The TOML file as people write it: one struct per section, every key optional, unknown
//! keys refused (`deny_unknown_fields`), and the parse error naming the offending key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use super::remediation::CredentialConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub state_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub wazuh: Option<FileService>,
    pub indexer: Option<FileService>,
    pub tls: Option<FileTls>,
    pub scan: Option<FileScan>,
    pub http: Option<FileHttp>,
    pub remediation: Option<FileRemediation>,
    pub check_cert: Option<FileCert>,
    pub health: Option<FileHealth>,
    pub incidents: Option<FileIncidents>,
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    /// `[[monitors]]`: kept as tables, each parsed by config/monitors.rs and its kind.
    #[serde(default)]
    pub monitors: Vec<toml::Table>,
    #[serde(default)]
    pub channels: Vec<super::channels::FileChannelEntry>,
    pub routing: Option<super::channels::FileRouting>,
    pub monitoring: Option<FileMonitoring>,
    #[serde(default)]
    pub maintenance: Vec<super::maintenance::FileMaintenance>,
    /// Absent: the default rule; `inhibit = []`: none.
    pub inhibit: Option<Vec<super::inhibit::FileInhibit>>,
    #[serde(default)]
    pub contacts: Vec<super::contacts::FileContact>,
    #[serde(default)]
    pub escalation: Vec<super::escalation::FileEscalation>,
    pub escalation_defaults: Option<super::escalation::FileEscalationDefaults>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMonitoring {
    pub retention_days: Option<u32>,
    pub max_attempts: Option<u32>,
    pub max_concurrent_runs: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileService {
    pub url: Option<String>,
    pub requests_per_minute: Option<u32>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTls {
    pub extra_ca_file: Option<PathBuf>,
    pub insecure: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileScan {
    pub allow: Option<Vec<String>>,
    pub rate_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileHttp {
    pub tokens_file: Option<PathBuf>,
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub rate_limit_per_minute: Option<u32>,
    pub max_body_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub write_timeout_secs: Option<u64>,
    pub sse_max_secs: Option<u64>,
    pub drain_timeout_secs: Option<u64>,
    pub max_sessions: Option<usize>,
    pub session_idle_secs: Option<u64>,
    pub auth_failures_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRemediation {
    pub enabled: Option<bool>,
    pub token_ttl_secs: Option<u64>,
    pub require_human: Option<bool>,
    pub rate_limit_per_minute: Option<u32>,
    pub approvers: Option<Vec<String>>,
    pub confirmation: Option<FileConfirmation>,
    pub rotate_credentials: Option<FileRotate>,
    pub block_ip: Option<FileBlockIp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfirmation {
    pub stdio: Option<String>,
    pub http: Option<String>,
    pub principals: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRotate {
    pub enabled: Option<bool>,
    pub allow: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileBlockIp {
    pub enabled: Option<bool>,
    pub protected_cidrs: Option<Vec<String>>,
    pub allow_all_agents: Option<bool>,
    pub max_agents: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCert {
    pub warning_days: Option<i64>,
    pub critical_days: Option<i64>,
    pub timeout_ms: Option<u64>,
    pub file_roots: Option<Vec<PathBuf>>,
    pub allow: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileHealth {
    pub timeout_ms: Option<u64>,
    pub api_slow_ms: Option<u64>,
    pub api_critical_ms: Option<u64>,
    pub cpu_warn_percent: Option<f64>,
    pub memory_warn_percent: Option<f64>,
    pub disk_warn_percent: Option<f64>,
    pub disconnected_warn_percent: Option<f64>,
    pub logs_critical_window_minutes: Option<u64>,
    pub container_filter: Option<String>,
    pub docker_host: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileIncidents {
    pub min_level: Option<u32>,
    pub window_minutes: Option<u64>,
    pub ingest_interval_secs: Option<u64>,
    pub late_alert_minutes: Option<u64>,
    pub critical_sla_minutes: Option<u64>,
    pub high_sla_minutes: Option<u64>,
    pub medium_sla_minutes: Option<u64>,
    pub low_sla_minutes: Option<u64>,
    pub critical_contact: Option<String>,
    pub high_contact: Option<String>,
    pub medium_contact: Option<String>,
    pub low_contact: Option<String>,
}

/// Parse the file; an error names the key by its path (`scan.rate_per_minute`), or by the
/// text toml points at when the file is not TOML at all.
pub(super) fn parse_file(text: &str) -> Result<FileConfig, ConfigError> {
    let spanned_key = |e: &toml::de::Error| {
        e.span()
            .and_then(|s| text.get(s))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s.len() < 80)
            .unwrap_or_else(|| "config".to_string())
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| ConfigError::new(spanned_key(&e), e.message()))?;
    serde_path_to_error::deserialize::<_, FileConfig>(de).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        let key = if path.is_empty() || path == "." {
            spanned_key(&e)
        } else {
            path
        };
        ConfigError::new(key, e.message())
    })
}
