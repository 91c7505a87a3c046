//! One `Config` for the whole server: a TOML file (`--config PATH` or `SECOPS_CONFIG`) with
//! `SECOPS_*` environment variables layered on top, every setting parsed once, by its
//! owner's parser, at load time. Secrets are held by reference (env var or file) and in a
//! [`Secret`] that never prints its value. This file is the entry (the `Config` type, the
//! load, the errors); each section lives in its own file.

mod channel_email;
mod channels;
mod channels_build;
mod channels_providers;
mod checks;
mod contacts;
mod env;
mod escalation;
mod file;
mod http;
mod incidents;
mod inhibit;
mod maintenance;
mod masked;
mod monitoring;
mod monitors;
mod remediation;
mod routing;
mod secrets;
mod wazuh;

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

pub use channels::{ChannelConfig, ChannelKind, LOG_CHANNEL, NotifyConfig};
pub use checks::{CertDefaults, DEFAULT_CERT_FILE_ROOTS, DEFAULT_SCAN_ALLOW, HealthConfig};
pub use contacts::{ContactConfig, resolve as resolve_contacts};
pub use env::{ENV_VARS, Env, ProcessEnv};
pub use escalation::{BusinessTime, EscalationConfig, EscalationRule};
pub use http::{DEFAULT_ALLOWED_ORIGINS, HttpConfig, HttpLimits};
pub use incidents::IncidentsConfig;
pub use inhibit::manager_id;
pub use maintenance::MaintenanceWindow;
pub use monitoring::MonitoringConfig;
pub use monitors::{MonitorConfig, ScheduleSetting};
pub use remediation::{Confirmation, CredentialConfig, RemediationPolicy};
pub use secrets::{Secret, SecretSource, read_secret_file};
pub use wazuh::{IndexerConfig, Login, WazuhConfig};

use crate::checks::scan::Scope;
use env::{Key, Layers, path, text};
use file::{FileConfig, parse_file};

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

/// A name other settings refer to (a channel's, an escalation rule's): 1 to 64
/// characters of a-z, 0-9, `-` and `_`; the error names `key`.
fn check_slug(key: String, name: &str) -> Result<(), ConfigError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(ConfigError::new(
            key,
            "must be 1 to 64 characters of a-z, 0-9, `-` and `_`",
        ));
    }
    Ok(())
}

/// A list setting as written (what `config check` shows) together with what its owner's
/// parser made of it (what the server uses, through `Deref`). Built only by parsing, so the
/// two cannot disagree and nothing parses the setting again later.
#[derive(Clone)]
pub struct Parsed<T> {
    entries: Vec<String>,
    value: T,
}

impl<T> Parsed<T> {
    fn parse(
        key: Key,
        entries: Vec<String>,
        parse: impl FnOnce(&[String]) -> Result<T, String>,
    ) -> Result<Self, ConfigError> {
        let value = parse(&entries).map_err(|p| key.error(p))?;
        Ok(Self { entries, value })
    }

    /// The entries as configured.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }
}

impl<T> Deref for Parsed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> fmt::Debug for Parsed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.entries.fmt(f)
    }
}

impl<T> Serialize for Parsed<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(s)
    }
}

/// The effective, validated configuration. It serialises (secrets masked) into the view
/// `config check` prints; a `/` in a serialised name places the field in that TOML section
/// ([`Config::masked`] nests it).
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub config_file: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub wazuh: Option<WazuhConfig>,
    pub indexer: Option<IndexerConfig>,
    #[serde(rename = "tls/extra_ca_file")]
    pub extra_ca_file: Option<PathBuf>,
    #[serde(rename = "tls/insecure")]
    pub tls_insecure: bool,
    /// What scan_host may touch, parsed by its own scope parser.
    #[serde(rename = "scan/allow")]
    pub scan_allow: Parsed<Scope>,
    /// scan_host calls each caller may start per minute.
    #[serde(rename = "scan/rate_per_minute")]
    pub scan_rate_per_minute: u32,
    pub http: HttpConfig,
    #[serde(rename = "remediation/enabled")]
    pub remediation_enabled: bool,
    /// What the remediation gate allows once remediation is enabled.
    pub remediation: RemediationPolicy,
    #[serde(rename = "check_cert")]
    pub cert: CertDefaults,
    pub health: HealthConfig,
    pub credentials: Vec<CredentialConfig>,
    pub incidents: IncidentsConfig,
    /// `[[channels]]` and `[routing]`: where our alerts' notifications go.
    #[serde(flatten)]
    pub notify: NotifyConfig,
    pub log_level: String,
    /// `[[monitors]]`, in the order of the file.
    pub monitors: Vec<MonitorConfig>,
    /// `[monitoring]`: retention and delivery attempts.
    pub monitoring: MonitoringConfig,
    /// `[[maintenance]]`: recurring windows that mute the alerts they match.
    pub maintenance: Vec<MaintenanceWindow>,
    /// `[[inhibit]]`: rules by which a firing alert mutes others (default: an unreachable
    /// Wazuh manager mutes the other alerts of that manager).
    pub inhibit: Vec<crate::alerts::inhibit::InhibitRule>,
    /// `[[contacts]]`: the people escalation tells.
    pub contacts: Vec<ContactConfig>,
    /// `[[escalation]]` and `[escalation_defaults]` (the manual's matrix by default).
    pub escalation: EscalationConfig,
}

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

    /// Every section by its own loader, in the order of the file.
    fn from_parts(
        config_file: Option<PathBuf>,
        fc: FileConfig,
        env: &dyn Env,
    ) -> Result<Self, ConfigError> {
        let l = Layers(env);
        let state_dir = state_dir(&l, fc.state_dir)?;
        let tls = fc.tls.unwrap_or_default();
        let scan = fc.scan.unwrap_or_default();
        let fr = fc.remediation.unwrap_or_default();
        let scan_allow = checks::scan_scope(&l, &scan)?;
        let incidents = incidents::load(&l, fc.incidents.unwrap_or_default())?;
        let notify = channels::load(&l, fc.channels, fc.routing)?;
        let contacts = contacts::load(&l, fc.contacts, &notify)?;
        routing::check_contacts(&notify, &contacts)?;
        let escalation =
            escalation::load(fc.escalation, fc.escalation_defaults, &contacts, &incidents)?;
        let mut config = Config {
            wazuh: wazuh::manager(&l, fc.wazuh)?,
            indexer: wazuh::indexer(&l, fc.indexer)?,
            extra_ca_file: l.layer(
                Key::env("tls.extra_ca_file", "SECOPS_EXTRA_CA_FILE"),
                tls.extra_ca_file,
                path,
            )?,
            tls_insecure: l.get(
                Key::env("tls.insecure", "SECOPS_TLS_INSECURE"),
                tls.insecure,
                false,
                env::boolean,
            )?,
            scan_rate_per_minute: checks::scan_rate(&l, &scan)?,
            http: http::load(&l, fc.http.unwrap_or_default())?,
            remediation_enabled: remediation::enabled(&l, &fr)?,
            remediation: remediation::policy(fr, &fc.credentials)?,
            cert: checks::cert(&l, fc.check_cert.unwrap_or_default(), &state_dir)?,
            health: checks::health(&l, fc.health.unwrap_or_default())?,
            credentials: remediation::credentials(fc.credentials)?,
            incidents,
            notify,
            log_level: log_level(&l, fc.log_level)?,
            monitors: monitors::load(fc.monitors, &scan_allow)?,
            monitoring: monitoring::load(fc.monitoring.unwrap_or_default())?,
            maintenance: maintenance::load(fc.maintenance)?,
            inhibit: inhibit::load(fc.inhibit)?,
            contacts,
            escalation,
            scan_allow,
            config_file,
            state_dir,
        };
        monitors::check_routes(&mut config.monitors, &config.notify, &config.contacts)?;
        inhibit::label_wazuh_monitors(&mut config.monitors, config.wazuh.as_ref());
        Ok(config)
    }

    /// Add monitors written as `[[monitors]]` TOML (the demo's own), validated like the
    /// file's and routed by `[routing]`; a name already in use is refused.
    pub fn add_monitors(&mut self, text: &str) -> Result<(), ConfigError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entries {
            #[serde(default)]
            monitors: Vec<toml::Table>,
        }
        let e: Entries =
            toml::from_str(text).map_err(|e| ConfigError::new("monitors", e.to_string()))?;
        let mut added = monitors::load(e.monitors, &self.scan_allow)?;
        monitors::check_routes(&mut added, &self.notify, &self.contacts)?;
        inhibit::label_wazuh_monitors(&mut added, self.wazuh.as_ref());
        if let Some(m) = added
            .iter()
            .find(|m| self.monitors.iter().any(|o| o.name == m.name))
        {
            return Err(ConfigError::new(
                "monitors",
                format!("a monitor named `{}` is configured already", m.name),
            ));
        }
        self.monitors.extend(added);
        Ok(())
    }

    /// What mutes alerts besides silences: the maintenance windows and inhibition rules,
    /// for the lifecycle (`MonitorPolicy::mute`) and alert_status.
    pub fn mute_rules(&self) -> std::sync::Arc<crate::alerts::mute::MuteRules> {
        std::sync::Arc::new(crate::alerts::mute::MuteRules {
            maintenance: self.maintenance.clone(),
            inhibit: self.inhibit.clone(),
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
        w.extend(self.escalation_warnings());
        w
    }

    /// With `[[contacts]]` written: the escalation steps and incident SLA contacts that
    /// tell nobody (a role no contact has).
    fn escalation_warnings(&self) -> Vec<String> {
        if self.contacts.is_empty() {
            return Vec::new();
        }
        let mut w: Vec<String> = self
            .escalation
            .rules
            .iter()
            .filter(|r| !r.live)
            .map(|r| {
                format!(
                    "escalation step {} tells nobody: no contact has the name or role {}",
                    r.name,
                    r.contacts.join(", ")
                )
            })
            .collect();
        for (i, sev) in ["critical", "high", "medium", "low"].iter().enumerate() {
            let told = self.escalation.incident_contacts.get(*sev);
            if told.is_none_or(Vec::is_empty) {
                w.push(format!(
                    "incidents.{sev}_contact `{}` matches no contact's name or role: overdue \
                     {sev} incidents tell nobody",
                    self.incidents.contacts[i]
                ));
            }
        }
        w
    }
}

fn state_dir(l: &Layers, file: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    let key = Key::env("state_dir", "SECOPS_STATE_DIR");
    let dir = l
        .layer(key, file, path)?
        .or_else(default_state_dir)
        .ok_or_else(|| {
            key.error("no platform state directory could be determined; set SECOPS_STATE_DIR")
        })?;
    if dir.as_os_str().is_empty() {
        return Err(key.error("must not be empty"));
    }
    Ok(dir)
}

fn default_state_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local").join("state")))
        .map(|d| d.join("secops-mcp"))
}

/// `log_level`, checked by the filter parser logging will use.
fn log_level(l: &Layers, file: Option<String>) -> Result<String, ConfigError> {
    let key = Key::env("log_level", "SECOPS_LOG");
    let level = l.get(key, file, "info".into(), text)?;
    tracing_subscriber::EnvFilter::try_new(&level)
        .map_err(|e| key.error(format!("`{level}`: {e}")))?;
    Ok(level)
}

/// True for addresses only this machine can reach.
pub fn is_loopback_bind(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A test environment: `pairs`, with an isolated state directory unless given.
    pub(crate) fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
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
        assert_eq!(c.scan_allow.entries(), ["127.0.0.0/8", "::1"]);
        assert_eq!(
            c.http.allowed_origins.entries(),
            ["http://localhost:*", "http://127.0.0.1:*"]
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
        assert_eq!(c.scan_allow.entries(), ["192.0.2.0/24", "host.example"]);
        assert!(!c.remediation_enabled);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml_str("[http]\ntokenz_file = \"x\"\n", &env(&[])).unwrap_err();
        assert!(e.problem.contains("tokenz_file"), "{e}");
        // A value of the wrong type is named by its path, not by the value.
        let e =
            Config::from_toml_str("[scan]\nrate_per_minute = \"abc\"\n", &env(&[])).unwrap_err();
        assert_eq!(e.key, "scan.rate_per_minute", "{e}");
        let e = Config::from_toml_str("[[credentials]]\nid = 5\n", &env(&[])).unwrap_err();
        assert_eq!(e.key, "credentials[0].id", "{e}");
        let e = Config::from_toml_str("[scan\n", &env(&[])).unwrap_err();
        assert!(!e.problem.is_empty(), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::from_toml_str("", &env(&[("SECOPS_TLS_INSECURE", "maybe")])).unwrap_err();
        assert_eq!(e.key, "tls.insecure (SECOPS_TLS_INSECURE)");
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
        assert_eq!(e.key, "remediation.enabled (SECOPS_REMEDIATION)");
        let e = Config::from_toml_str("[check_cert]\ncritical_days = 40\n", &env(&[])).unwrap_err();
        assert_eq!(e.key, "check_cert.critical_days");
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
        let password = |l: Option<&Login>| l.and_then(|l| l.password.clone()).unwrap();
        let wazuh = password(c.wazuh.as_ref().map(|w| &w.login));
        assert_eq!(wazuh.expose(), "S3cret-env-pass!");
        let indexer = password(c.indexer.as_ref().map(|i| &i.login));
        assert_eq!(indexer.expose(), "S3cret-file-pass!");
        let shown = format!("{:?} {}", c, c.masked());
        assert!(!shown.contains("S3cret"), "{shown}");
    }

    #[test]
    fn example_config_file_uses_only_known_keys() {
        parse_file(include_str!("../../examples/secops-mcp.toml")).unwrap();
    }
}
