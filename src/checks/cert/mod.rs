//! check_cert: TLS certificate checks for network endpoints (optionally via STARTTLS) and
//! PEM files on disk. Records the presented chain even when verification fails, then
//! reports the precise verification error and findings (expiry, weak keys, weak signatures,
//! chain problems). Contract: TOOLS.md `check_cert`.
//!
//! This file owns the public types and the orchestration (all targets concurrently, results
//! in input order); `target` validates arguments, `policy` says which files and hosts may
//! be reached (`check_cert.file_roots`, `check_cert.allow`, no cloud metadata endpoint),
//! `files` reads `file:` targets bounded and without blocking, `net` + `starttls` +
//! `verify` talk to servers, `parse` reads certificates, `analyze` judges them, `trust`
//! loads trust anchors.
//!
//! What the fields mean:
//! - `chain_valid`: the presented chain (leaf + the intermediates sent, in any order) builds
//!   a path to a trust anchor at the time of the check, as a rustls/webpki client would see
//!   it, ignoring the host name. For `file:` targets the first certificate of the file is
//!   the leaf and the others are offered as intermediates, verified for TLS server use;
//!   `null` when that first certificate is a CA certificate (then only dates, key and
//!   signature are judged). `null` also when the target could not be checked.
//! - `hostname_match`: the leaf's subjectAltName DNS/IP entries cover the `sni` (or the
//!   target host); wildcards only as a whole left-most label; the subject CN is not used.
//!   `null` for a file without `sni`.
//! - `serial`: uppercase hex bytes separated by colons (`04:A3:...`), without the DER
//!   sign-padding zero.
//! - `subject` / `issuer`: RFC 4514 strings (most specific RDN first, e.g. `CN=a,O=b,C=US`).
//! - `self_signed`: subject equals issuer and the signature verifies with the certificate's
//!   own key (when the algorithm cannot be checked here, e.g. RSA under 2048 bits, the key
//!   identifiers decide).
//! - `status`: `error` when nothing could be inspected (the reason is in
//!   `verification_error`); `critical` for any critical finding (expired, not yet valid,
//!   within `critical_days`, untrusted chain, hostname mismatch, self-signed, missing
//!   intermediate, weak key or signature); `warning` for any warning finding (within
//!   `warning_days`, chain out of order, handshake incomplete after the certificate); else
//!   `ok`. `starttls` applies to network targets only; `file:` targets ignore it.

mod analyze;
mod files;
mod net;
mod parse;
mod policy;
mod starttls;
mod target;
mod trust;
mod verify;

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::{ServerName, UnixTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ArgError, Finding, Severity, Summary};
use crate::config::CertDefaults;
use analyze::{ExpectedName, Observation, Thresholds, assess, error_result};

pub use files::MAX_CERT_FILE_BYTES;
pub use policy::CertPolicy;
pub use target::{
    CertOptions, DEFAULT_CRITICAL_DAYS, DEFAULT_TIMEOUT_MS, DEFAULT_WARNING_DAYS, Host, MAX_DAYS,
    MAX_TARGETS, MAX_TIMEOUT_MS, StartTls, Target, parse_target,
};

/// Arguments of `check_cert` (validated by [`CertChecker::check`], not by serde, so that
/// every mistake gets a message naming the argument).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertArgs {
    /// 1 to 100 targets: `host`, `host:port`, `https://host[:port]/...`, or `file:/path/to/cert.pem`.
    #[schemars(length(min = 1, max = 100))]
    pub targets: Vec<String>,
    /// Server name to send (SNI) and verify, instead of the host in the target.
    #[serde(default)]
    #[schemars(extend("default" = null))]
    pub sni: Option<String>,
    /// Upgrade a plaintext protocol first: `smtp`, `imap`, `pop3`, `ftp` or `postgres`.
    #[serde(default)]
    #[schemars(extend("enum" = ["smtp", "imap", "pop3", "ftp", "postgres", null], "default" = null))]
    pub starttls: Option<String>,
    /// Status `warning` when a certificate expires within this many days (default 30).
    #[serde(default)]
    #[schemars(range(min = 0, max = 3650), extend("default" = 30))]
    pub warning_days: Option<i64>,
    /// Status `critical` when a certificate expires within this many days (default 7).
    #[serde(default)]
    #[schemars(range(min = 0, max = 3650), extend("default" = 7))]
    pub critical_days: Option<i64>,
    /// Per-target timeout in milliseconds (default 5000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 120000), extend("default" = 5000))]
    pub timeout_ms: Option<i64>,
    /// For a CA bundle file: list every certificate in `chain`, not only those with a
    /// problem (default false; the counts are always in `bundle`).
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub details: Option<bool>,
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
    /// Position in the presented chain or file, from 1 (the leaf, or a bundle's first
    /// certificate); findings name certificates by the same number (`#2`).
    pub position: usize,
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
    /// The address the connection went to (`ip:port`), for network targets that connected.
    pub address: Option<String>,
    /// The presented chain (every certificate), or for a CA bundle file only the
    /// certificates with a problem unless `details` is true (counts in `bundle`).
    pub chain: Vec<ChainCert>,
    /// Present for a file holding a bundle of CA certificates.
    pub bundle: Option<BundleSummary>,
    pub findings: Vec<Finding>,
}

/// Counts over a CA bundle file (such as the system's `ca-certificates.crt`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BundleSummary {
    pub certificates: usize,
    pub expired: usize,
    /// Valid now, expiring within `warning_days`.
    pub expiring: usize,
    pub not_yet_valid: usize,
    /// Certificates some finding is about.
    pub with_problems: usize,
    /// Whether `chain` lists every certificate (`details: true`) or only those with a
    /// problem.
    pub listed_all: bool,
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
    /// The trust anchors chains were verified against, e.g.
    /// `system trust store (146) + /etc/secops/ca.pem (1)`.
    pub trust_anchors: String,
}

/// Holds the trust anchors (system store + extra CA file), built once at start, and the
/// [`CertPolicy`] saying which files and hosts may be checked. Cheap to clone (`Arc`s).
#[derive(Clone)]
pub struct CertChecker {
    trust: Arc<trust::TrustStore>,
    policy: Arc<CertPolicy>,
}

impl std::fmt::Debug for CertChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertChecker")
            .field("trust", &self.trust)
            .field("policy", &self.policy)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    InvalidArgument(#[from] ArgError),
    #[error("cannot load trust anchors from {path}: {reason}")]
    TrustStore { path: String, reason: String },
}

impl CertChecker {
    /// Loads the system trust store (tolerating individual bad certificates) and, if given,
    /// the extra PEM bundle (an error names the file if it is unreadable or holds no
    /// certificate).
    pub fn new(extra_ca_file: Option<&Path>) -> Result<Self, CertError> {
        Self::with_ca_files(&extra_ca_file.into_iter().collect::<Vec<_>>())
    }

    /// The system store plus every PEM bundle in `ca_files` (duplicates ignored). The
    /// policy is the library default: any regular file (bounded, non-blocking read), any
    /// host except cloud metadata endpoints; the server sets its own with
    /// [`CertChecker::with_policy`].
    pub fn with_ca_files(ca_files: &[&Path]) -> Result<Self, CertError> {
        Ok(Self {
            trust: Arc::new(trust::TrustStore::load(ca_files)?),
            policy: Arc::new(CertPolicy::default()),
        })
    }

    /// The same trust anchors under `policy`.
    pub fn with_policy(mut self, policy: CertPolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &CertPolicy {
        &self.policy
    }

    /// The same trust anchors, connecting to any address: for scan_host, whose scope has
    /// already pinned and checked the address (`scan.allow` decides there, not
    /// `check_cert.allow`).
    pub(crate) fn for_pinned_addresses(&self) -> Self {
        let mut policy = (*self.policy).clone();
        policy.any_address = true;
        self.clone().with_policy(policy)
    }

    /// Which trust anchors this checker verifies against, for reports.
    pub fn trust_description(&self) -> &str {
        &self.trust.description
    }

    /// Number of trust anchors loaded: (from the system store, from the extra CA file).
    pub fn trust_anchor_counts(&self) -> (usize, usize) {
        (self.trust.system_anchors, self.trust.extra_anchors)
    }

    /// Problems met while loading the system trust store (tolerated, worth logging).
    pub fn trust_store_warnings(&self) -> &[String] {
        &self.trust.warnings
    }

    /// Validates `args`, checks every target concurrently (each under its own timeout) and
    /// returns the results in input order. Only bad arguments fail the whole call; a target
    /// that cannot be checked gets `status: error` with the reason.
    pub async fn check(&self, args: CertArgs) -> Result<CertReport, CertError> {
        let options = args.validate()?;
        Ok(self.check_validated(&options).await)
    }

    /// Checks already validated options (see [`CertArgs::validate`]).
    pub async fn check_validated(&self, options: &CertOptions) -> CertReport {
        let checks = options
            .targets
            .iter()
            .map(|(raw, target)| self.check_target(raw, target, options));
        let results = futures::future::join_all(checks).await;
        let summary = CertSummary::count(&results);
        CertReport {
            results,
            summary,
            trust_anchors: self.trust.description.clone(),
        }
    }

    async fn check_target(&self, raw: &str, target: &Target, options: &CertOptions) -> CertResult {
        let thresholds = Thresholds {
            warning_days: options.warning_days,
            critical_days: options.critical_days,
        };
        match target {
            Target::Network { host, port } => {
                self.check_network(raw, host, *port, options, thresholds)
                    .await
            }
            Target::File { path } => self.check_file(raw, path, options, thresholds).await,
        }
    }

    async fn check_network(
        &self,
        raw: &str,
        host: &Host,
        port: u16,
        options: &CertOptions,
        thresholds: Thresholds,
    ) -> CertResult {
        let probe = net::probe(
            &self.trust,
            &self.policy,
            host,
            port,
            options.starttls,
            options.sni.as_ref(),
            options.timeout,
        )
        .await;
        let address = probe.address.map(|a| a.to_string());
        let recorded = probe.recorded;
        if recorded.chain.is_empty() {
            let reason = match probe.outcome {
                Err(e) => e.to_string(),
                Ok(_) => "the server presented no certificate".to_string(),
            };
            return error_result(raw, reason, address);
        }
        let expected_name = match &options.sni {
            Some(name) => expected_from_server_name(name),
            None => Some(match host {
                Host::Dns(name) => ExpectedName::Dns(name.clone()),
                Host::Ip(ip) => ExpectedName::Ip(*ip),
            }),
        };
        let (tls_version, cipher, handshake_error) = match probe.outcome {
            Ok(n) => (n.tls_version, n.cipher, None),
            Err(e) => (None, None, Some(e.to_string())),
        };
        let observation = Observation {
            chain: recorded.chain,
            verdict: recorded.verdict,
            expected_name,
            tls_version,
            cipher,
            address,
            ocsp_stapled: !recorded.ocsp.is_empty(),
            handshake_error,
            signature_error: recorded.signature_error,
            ca_file: false,
        };
        assess(
            raw,
            observation,
            &self.trust,
            thresholds,
            OffsetDateTime::now_utc(),
        )
    }

    async fn check_file(
        &self,
        raw: &str,
        path: &Path,
        options: &CertOptions,
        thresholds: Thresholds,
    ) -> CertResult {
        let chain =
            match files::read_cert_file(path, self.policy.file_roots(), options.timeout).await {
                Ok(chain) => chain,
                Err(reason) => return error_result(raw, reason, None),
            };
        let now = OffsetDateTime::now_utc();
        let leaf = parse::parse_cert(&chain[0], now);
        let ca_file = leaf.parsed().is_some_and(|info| info.is_ca);
        let verdict = if ca_file {
            None
        } else {
            // Without `sni` the name only lets webpki run; its name error is ignored.
            let verify_name = match &options.sni {
                Some(name) => name.clone(),
                None => name_for_file(&leaf),
            };
            Some(
                self.trust
                    .verify(&chain[0], &chain[1..], &verify_name, &[], UnixTime::now()),
            )
        };
        let observation = Observation {
            chain,
            verdict,
            expected_name: options.sni.as_ref().and_then(expected_from_server_name),
            ca_file,
            ..Observation::default()
        };
        let mut result = assess(raw, observation, &self.trust, thresholds, now);
        if ca_file && result.chain.len() > 1 {
            summarise_bundle(&mut result, thresholds.warning_days, options.details);
        }
        result
    }
}

/// A CA bundle: counts over every certificate, and (unless `details`) only the
/// certificates with a problem kept in `chain`.
fn summarise_bundle(result: &mut CertResult, warning_days: i64, details: bool) {
    let named: std::collections::BTreeSet<usize> = result
        .findings
        .iter()
        .flat_map(|f| analyze::positions_named(&f.message))
        .filter(|p| (1..=result.chain.len()).contains(p))
        .collect();
    let now = crate::util::now_rfc3339();
    let mut b = BundleSummary {
        certificates: result.chain.len(),
        listed_all: details,
        ..BundleSummary::default()
    };
    for c in &result.chain {
        if c.days_left < 0 {
            b.expired += 1;
        } else if c.not_before.as_str() > now.as_str() {
            b.not_yet_valid += 1;
        } else if c.days_left <= warning_days {
            b.expiring += 1;
        }
    }
    b.with_problems = named.len();
    if !details {
        result.chain.retain(|c| named.contains(&c.position));
    }
    result.bundle = Some(b);
}

fn expected_from_server_name(name: &ServerName<'static>) -> Option<ExpectedName> {
    match name {
        ServerName::DnsName(dns) => Some(ExpectedName::Dns(dns.as_ref().to_ascii_lowercase())),
        ServerName::IpAddress(ip) => Some(ExpectedName::Ip(std::net::IpAddr::from(*ip))),
        _ => None,
    }
}

/// A name the file's leaf claims (first DNS or IP SAN, a wildcard made concrete), so webpki
/// can run; used only when no `sni` is given, and then name errors are ignored.
fn name_for_file(leaf: &parse::ChainEntry) -> ServerName<'static> {
    let fallback = || ServerName::try_from("name-not-checked.invalid").map(|n| n.to_owned());
    if let Some(info) = leaf.parsed() {
        if let Some(dns) = info.dns_sans.first() {
            let concrete = match dns.strip_prefix("*.") {
                Some(rest) => format!("wildcard.{rest}"),
                None => dns.clone(),
            };
            if let Ok(name) = ServerName::try_from(concrete) {
                return name;
            }
        }
        if let Some(ip) = info.ip_sans.first() {
            return ServerName::IpAddress((*ip).into());
        }
    }
    match fallback() {
        Ok(name) => name,
        Err(_) => ServerName::IpAddress(std::net::IpAddr::from([0u8, 0, 0, 0]).into()),
    }
}

impl CertSummary {
    fn count(results: &[CertResult]) -> Self {
        let mut summary = CertSummary::default();
        for result in results {
            match result.status {
                CertStatus::Ok => summary.ok += 1,
                CertStatus::Warning => summary.warning += 1,
                CertStatus::Critical => summary.critical += 1,
                CertStatus::Error => summary.error += 1,
            }
        }
        summary
    }
}

impl CertResult {
    /// A few words on why this target has its status (for summaries).
    pub fn short_reason(&self) -> String {
        let reason = match self.status {
            CertStatus::Ok => match self.days_left {
                Some(days) => format!("expires in {days} days"),
                None => "ok".into(),
            },
            CertStatus::Error => self
                .verification_error
                .clone()
                .unwrap_or_else(|| "could not be checked".into()),
            CertStatus::Warning | CertStatus::Critical => {
                // The most severe finding; among equals the most specific one.
                let worst = self
                    .findings
                    .iter()
                    .filter(|f| f.severity != Severity::Info)
                    .max_by_key(|f| (f.severity, std::cmp::Reverse(specificity(&f.code))));
                match worst {
                    Some(f) if f.code == "cert_expires_soon" => match self.days_left {
                        Some(0) => "expires in less than a day".into(),
                        Some(1) => "expires in 1 day".into(),
                        Some(days) => format!("expires in {days} days"),
                        None => f.code.replace('_', " "),
                    },
                    Some(f) if f.code == "cert_expired" => match self.days_left {
                        Some(days) => format!("expired {} days ago", days.saturating_neg()),
                        None => "expired".into(),
                    },
                    Some(f) => f.code.replace('_', " "),
                    None => self
                        .verification_error
                        .clone()
                        .unwrap_or_else(|| "see findings".into()),
                }
            }
        };
        target::sanitize(&reason, 100)
    }
}

/// Rank of a finding code when several share the worst severity (lower is more telling).
fn specificity(code: &str) -> usize {
    const ORDER: [&str; 10] = [
        "cert_expired",
        "cert_not_yet_valid",
        "hostname_mismatch",
        "self_signed",
        "missing_intermediate",
        "cert_expires_soon",
        "weak_key",
        "weak_signature",
        "handshake_signature_invalid",
        "chain_untrusted",
    ];
    ORDER.iter().position(|c| *c == code).unwrap_or(ORDER.len())
}

/// What check_cert needs: the engine (trust anchors, policy) and the configured defaults.
pub struct CertDeps<'a> {
    pub checker: &'a CertChecker,
    pub defaults: &'a CertDefaults,
}

/// check_cert with the configured defaults for the thresholds and timeout the caller left
/// out.
pub async fn run(deps: &CertDeps<'_>, args: &CertArgs) -> Result<CertReport, CertError> {
    let mut args = args.clone();
    let defaults = deps.defaults;
    args.warning_days.get_or_insert(defaults.warning_days);
    args.critical_days.get_or_insert(defaults.critical_days);
    args.timeout_ms.get_or_insert(defaults.timeout_ms as i64);
    deps.checker.check(args).await
}

impl Summary for CertReport {
    /// One short paragraph a person can read, e.g. `3 targets: 1 ok, 1 warning
    /// (example.com: expires in 12 days), 1 error (db:5432: connection refused)`.
    fn summary(&self) -> String {
        let n = self.results.len();
        let mut parts = Vec::new();
        for (status, count, label) in [
            (CertStatus::Ok, self.summary.ok, "ok"),
            (CertStatus::Warning, self.summary.warning, "warning"),
            (CertStatus::Critical, self.summary.critical, "critical"),
            (CertStatus::Error, self.summary.error, "error"),
        ] {
            if count == 0 {
                continue;
            }
            if status == CertStatus::Ok {
                parts.push(format!("{count} ok"));
                continue;
            }
            let mut details: Vec<String> = self
                .results
                .iter()
                .filter(|r| r.status == status)
                .take(3)
                .map(|r| format!("{}: {}", target::sanitize(&r.target, 60), r.short_reason()))
                .collect();
            if count > 3 {
                details.push(format!("and {} more", count - 3));
            }
            parts.push(format!("{count} {label} ({})", details.join("; ")));
        }
        format!(
            "{n} target{}: {}.",
            if n == 1 { "" } else { "s" },
            parts.join(", ")
        )
    }
}
