//! check_cert: TLS certificate checks for network endpoints (optionally via STARTTLS) and
//! PEM files on disk. Records the presented chain even when verification fails, then
//! reports the precise verification error and findings (expiry, weak keys, weak signatures,
//! chain problems). Contract: TOOLS.md `check_cert`.
//!
//! STUB: the real implementation replaces this file.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArgError, Finding};

/// Arguments of `check_cert` (validated by [`CertChecker::check`], not by serde, so that
/// every mistake gets a message naming the argument).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertArgs {
    /// 1 to 100 targets: `host`, `host:port`, `https://host[:port]/...`, or `file:/path/to/cert.pem`.
    pub targets: Vec<String>,
    /// Server name to send (SNI) and verify, instead of the host in the target.
    #[serde(default)]
    pub sni: Option<String>,
    /// Upgrade a plaintext protocol first: `smtp`, `imap`, `pop3`, `ftp` or `postgres`.
    #[serde(default)]
    pub starttls: Option<String>,
    /// Status `warning` when a certificate expires within this many days (default 30).
    #[serde(default)]
    pub warning_days: Option<i64>,
    /// Status `critical` when a certificate expires within this many days (default 7).
    #[serde(default)]
    pub critical_days: Option<i64>,
    /// Per-target timeout in milliseconds (default 5000).
    #[serde(default)]
    pub timeout_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    Ok,
    Warning,
    Critical,
    Error,
}

/// One certificate of the presented chain, leaf first, in the order the server sent it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChainCert {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub key: String,
    pub signature_algorithm: String,
    pub fingerprint_sha256: String,
    pub self_signed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertResult {
    pub target: String,
    pub status: CertStatus,
    pub days_left: Option<i64>,
    pub not_after: Option<String>,
    pub hostname_match: Option<bool>,
    pub chain_valid: Option<bool>,
    pub verification_error: Option<String>,
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    pub chain: Vec<ChainCert>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct CertSummary {
    pub ok: usize,
    pub warning: usize,
    pub critical: usize,
    pub error: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertReport {
    pub results: Vec<CertResult>,
    pub summary: CertSummary,
}

/// Holds the trust anchors (system store + extra CA file), built once at start.
#[derive(Debug, Clone)]
pub struct CertChecker {}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    InvalidArgument(#[from] ArgError),
    #[error("cannot load trust anchors from {path}: {reason}")]
    TrustStore { path: String, reason: String },
}

impl CertChecker {
    pub fn new(_extra_ca_file: Option<&Path>) -> Result<Self, CertError> {
        Ok(Self {})
    }

    pub async fn check(&self, args: CertArgs) -> Result<CertReport, CertError> {
        if args.targets.is_empty() {
            return Err(ArgError::new("targets", "at least one target is required").into());
        }
        Err(ArgError::new("targets", "not implemented").into())
    }
}

impl CertReport {
    /// One short paragraph a person can read.
    pub fn summary_text(&self) -> String {
        format!(
            "{} target(s): {} ok, {} warning, {} critical, {} error",
            self.results.len(),
            self.summary.ok,
            self.summary.warning,
            self.summary.critical,
            self.summary.error
        )
    }
}
