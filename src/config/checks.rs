//! The read-only checks' sections: `[scan]` (the scope parsed by scan_host's own
//! [`Scope::parse`]), `[check_cert]` (defaults, file roots, and the allow list check_cert's
//! policy takes already parsed) and `[health]` (wazuh_health's timeout and thresholds).

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::env::{Key, Layers, list, text, within};
use super::file::{FileCert, FileHealth, FileScan};
use super::{ConfigError, Parsed};
use crate::checks::scan::Scope;

pub const DEFAULT_SCAN_ALLOW: &[&str] = &["127.0.0.0/8", "::1"];

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

/// Defaults for check_cert that a deployment may tune.
#[derive(Debug, Clone, Serialize)]
pub struct CertDefaults {
    pub warning_days: i64,
    pub critical_days: i64,
    pub timeout_ms: u64,
    /// Folders the check_cert tool may read `file:` targets from (absolute paths).
    pub file_roots: Vec<PathBuf>,
    /// CIDRs and hostnames check_cert may connect to; empty means any host.
    pub allow: Parsed<Scope>,
}

/// wazuh_health settings: per-component timeout and the operations manual's thresholds.
#[derive(Debug, Clone, Serialize)]
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

const SCAN_ALLOW: Key = Key::env("scan.allow", "SECOPS_SCAN_ALLOW");
const CERT_ALLOW: Key = Key::env("check_cert.allow", "SECOPS_CERT_ALLOW");
const HEALTH_TIMEOUT: Key = Key::env("health.timeout_ms", "SECOPS_HEALTH_TIMEOUT_MS");
const CERT_FILE_ROOTS: Key = Key::env("check_cert.file_roots", "SECOPS_CERT_FILE_ROOTS");

/// `scan.allow`, parsed by scan_host's scope parser.
pub(super) fn scan_scope(l: &Layers, fs: &FileScan) -> Result<Parsed<Scope>, ConfigError> {
    let default = DEFAULT_SCAN_ALLOW.iter().map(|s| s.to_string()).collect();
    let entries = l.get(SCAN_ALLOW, fs.allow.clone(), default, list)?;
    Parsed::parse(SCAN_ALLOW, entries, Scope::parse)
}

pub(super) fn scan_rate(l: &Layers, fs: &FileScan) -> Result<u32, ConfigError> {
    let key = Key::env("scan.rate_per_minute", "SECOPS_SCAN_RATE_PER_MINUTE");
    l.number(key, fs.rate_per_minute, 10, 1..=10_000)
}

pub(super) fn cert(
    l: &Layers,
    fc: FileCert,
    state_dir: &Path,
) -> Result<CertDefaults, ConfigError> {
    let default_roots = DEFAULT_CERT_FILE_ROOTS
        .iter()
        .map(PathBuf::from)
        .chain(std::iter::once(state_dir.to_path_buf()))
        .collect();
    let file_roots = l.get(CERT_FILE_ROOTS, fc.file_roots, default_roots, |v| {
        Ok(list(v)?.into_iter().map(PathBuf::from).collect())
    })?;
    for root in &file_roots {
        check_file_root(root).map_err(|p| CERT_FILE_ROOTS.error(p))?;
    }
    let allow = l.get(CERT_ALLOW, fc.allow, Vec::new(), list)?;
    let warning_days = within(
        Key::file("check_cert.warning_days"),
        fc.warning_days.unwrap_or(30),
        0..=3650,
    )?;
    Ok(CertDefaults {
        warning_days,
        critical_days: within(
            Key::file("check_cert.critical_days"),
            fc.critical_days.unwrap_or(7),
            0..=warning_days,
        )?,
        timeout_ms: within(
            Key::file("check_cert.timeout_ms"),
            fc.timeout_ms.unwrap_or(5000),
            1..=120_000,
        )?,
        file_roots,
        allow: Parsed::parse(CERT_ALLOW, allow, Scope::parse)?,
    })
}

/// A `check_cert.file_roots` entry: an absolute folder without `..`.
fn check_file_root(root: &Path) -> Result<(), String> {
    let shown = root.display();
    if root.as_os_str().is_empty() {
        return Err("an entry is empty".into());
    }
    if !root.is_absolute() {
        return Err(format!(
            "`{shown}` is not an absolute path; write folders like /etc/ssl"
        ));
    }
    if root.components().any(|c| c == Component::ParentDir) {
        return Err(format!("`{shown}` contains `..`; write the folder itself"));
    }
    Ok(())
}

pub(super) fn health(l: &Layers, f: FileHealth) -> Result<HealthConfig, ConfigError> {
    let file = Key::file;
    let percent =
        |key, v: Option<f64>, default| within(file(key), v.unwrap_or(default), 0.0..=100.0);
    let api_slow_ms = f.api_slow_ms.unwrap_or(2000);
    let api_critical_ms = f.api_critical_ms.unwrap_or(5000);
    if api_slow_ms >= api_critical_ms {
        return Err(file("health.api_slow_ms").error("must be below health.api_critical_ms"));
    }
    Ok(HealthConfig {
        timeout_ms: l.number(HEALTH_TIMEOUT, f.timeout_ms, 5000, 100..=120_000)?,
        api_slow_ms,
        api_critical_ms,
        cpu_warn_percent: percent("health.cpu_warn_percent", f.cpu_warn_percent, 80.0)?,
        memory_warn_percent: percent("health.memory_warn_percent", f.memory_warn_percent, 85.0)?,
        disk_warn_percent: percent("health.disk_warn_percent", f.disk_warn_percent, 85.0)?,
        disconnected_warn_percent: percent(
            "health.disconnected_warn_percent",
            f.disconnected_warn_percent,
            5.0,
        )?,
        logs_critical_window_minutes: within(
            file("health.logs_critical_window_minutes"),
            f.logs_critical_window_minutes.unwrap_or(60),
            1..=10_080,
        )?,
        container_filter: l.get(
            Key::env("health.container_filter", "SECOPS_CONTAINER_FILTER"),
            f.container_filter,
            "wazuh".into(),
            text,
        )?,
        docker_host: l.layer(
            Key::env("health.docker_host", "DOCKER_HOST"),
            f.docker_host,
            text,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::Config;
    use crate::config::tests::env;

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
        assert_eq!(c.cert.allow.entries(), ["127.0.0.2/32", "mail.example"]);
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
}
