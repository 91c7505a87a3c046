//! The `certificates` component: the manager API's and the indexer's certificates, each
//! checked with check_cert against that component's own trust anchors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::{ComponentStatus, HealthDeps, NOT_CONFIGURED, status_of};
use crate::checks::cert::{CertArgs, CertChecker, CertStatus};
use crate::checks::{Finding, Severity};

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
    pub check: ComponentStatus,
    pub certificates: Vec<CertExpiry>,
    pub error: Option<String>,
}

pub(super) async fn check(
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
        check: ComponentStatus::NotConfigured,
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
    s.check = status_of(&f);
    (s, f)
}
