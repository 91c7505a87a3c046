//! The `manager` component: login, API latency, version, configuration validation and the
//! daemons (judged in `daemons.rs`), each request under its own timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::request::{Failure, LOGIN, bounded, logged_in};
use super::{ComponentStatus, HealthDeps, NOT_CONFIGURED, daemons, status_of};
use crate::checks::{Finding, Severity};
use crate::config::HealthConfig;
use crate::wazuh::types::{ApiInfo, ConfigValidation, Items};
use crate::wazuh::{ManagerClient, WazuhError};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ManagerSection {
    pub check: ComponentStatus,
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

fn connectivity_remediation() -> &'static str {
    "Check that the manager is running (systemctl status wazuh-manager), that port 55000 is \
     reachable through the firewall, that the API user and password are right, and that the CA \
     file matches the API certificate."
}

pub(super) async fn check(
    deps: &HealthDeps<'_>,
    timeout: Duration,
) -> (ManagerSection, Vec<Finding>) {
    let mut r = Reading {
        s: ManagerSection {
            check: ComponentStatus::NotConfigured,
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
        },
        f: Vec::new(),
        failed: Vec::new(),
    };
    let Some(m) = deps.manager else {
        r.s.error = Some(NOT_CONFIGURED.to_string());
        return (r.s, r.f);
    };
    r.s.url = m.base_url().to_string();
    if !r.log_in(m, timeout).await {
        return (r.s, r.f);
    }
    r.s.reachable = true;
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
    r.api_info(info, deps.settings, timeout);
    let daemons = r.daemons(daemons);
    match minfo {
        Ok(Some(mi)) => r.s.manager_version = mi.version,
        Ok(None) => {}
        Err(e) => r.failed.push(e),
    }
    match validation {
        Err(e) => r.failed.push(e),
        Ok(v) => r.validation(&v),
    }
    r.f.extend(daemons::judge(&daemons));
    r.s.daemons = daemons;
    r.finish(timeout)
}

/// The manager section being read: its findings and the requests that failed so far.
struct Reading {
    s: ManagerSection,
    f: Vec<Finding>,
    failed: Vec<Failure>,
}

impl Reading {
    /// The login first (the first answer, or the cached token): every request after it then
    /// gets its own whole timeout, and the timed `GET /` measures the API alone. False when
    /// the API cannot be used (the section then says why).
    async fn log_in(&mut self, m: &ManagerClient, timeout: Duration) -> bool {
        let s = &mut self.s;
        let t_login = Instant::now();
        match logged_in(m, timeout).await {
            Ok(fresh) => {
                if fresh {
                    s.login_ms = Some(t_login.elapsed().as_millis() as u64);
                }
                true
            }
            Err(e) => {
                s.check = ComponentStatus::Error;
                s.reachable = !e.unreachable;
                let code = if e.unreachable {
                    "manager_unreachable"
                } else {
                    "manager_api_error"
                };
                if e.timed_out() {
                    s.timed_out.push(LOGIN.to_string());
                }
                self.f.push(
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
                false
            }
        }
    }

    /// `GET /`: versions, hostname and the API's latency against the thresholds.
    fn api_info(
        &mut self,
        info: Result<(ApiInfo, Duration), Failure>,
        th: &HealthConfig,
        timeout: Duration,
    ) {
        let (s, f) = (&mut self.s, &mut self.f);
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
                self.failed.push(e);
            }
            Err(e) => self.failed.push(e),
        }
    }

    /// `GET /manager/status`: daemon name -> state (empty when it could not be read).
    fn daemons(
        &mut self,
        daemons: Result<(BTreeMap<String, String>, usize), Failure>,
    ) -> BTreeMap<String, String> {
        let f = &mut self.f;
        match daemons {
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
                    // Logged in (a cached token) but gone since: as unreachable as a
                    // failed login, so the default inhibition sees it.
                    let code = if e.unreachable {
                        self.s.reachable = false;
                        "manager_unreachable"
                    } else {
                        "manager_api_error"
                    };
                    f.push(
                        Finding::new(
                            Severity::Critical,
                            code,
                            format!("Wazuh manager daemons could not be read: {}", e.message),
                        )
                        .with_remediation(connectivity_remediation()),
                    );
                }
                self.failed.push(e);
                BTreeMap::new()
            }
        }
    }

    /// `GET /manager/configuration/validation`: every node whose configuration is invalid.
    fn validation(&mut self, v: &Items<ConfigValidation>) {
        let (s, f) = (&mut self.s, &mut self.f);
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

    /// Requests that timed out become one `manager_partial` warning; every failure is kept
    /// in `error`. Then the section's status from its findings.
    fn finish(mut self, timeout: Duration) -> (ManagerSection, Vec<Finding>) {
        let (s, f) = (&mut self.s, &mut self.f);
        let slow: Vec<&Failure> = self.failed.iter().filter(|e| e.timed_out()).collect();
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
        if !self.failed.is_empty() {
            s.error = Some(
                std::mem::take(&mut self.failed)
                    .into_iter()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        s.check = status_of(f);
        (self.s, self.f)
    }
}

const SLOW_API_REMEDIATION: &str = "Check manager CPU and memory, wazuh-apid's log \
     (/var/ossec/logs/api.log) and the network path; raise health.timeout_ms if the manager is \
     known to be slow.";
