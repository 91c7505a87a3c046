//! Judgement for `check_cert`: from a presented chain, the webpki verdict and what the
//! handshake revealed, computes `hostname_match`, `chain_valid`, the human verification
//! error, the findings (stable codes) and the status of one target.
//!
//! Host name matching is in `names.rs`, the issuer-path analysis and the wording of chain
//! verification failures in `chain.rs`.

mod chain;
mod names;

use time::OffsetDateTime;

use super::parse::{ChainEntry, parse_chain, rfc3339};
use super::trust::TrustStore;
use super::verify::{ChainFailure, classify, describe_rustls_error, is_name_error};
use super::{CertResult, CertStatus, ChainCert, Finding, Severity};
use chain::{describe_chain_failure, missing_issuer, out_of_order};
pub(crate) use names::ExpectedName;
use names::{mismatch_reason, name_matches};

/// Everything known about one target before judging it.
#[derive(Debug, Default)]
pub(crate) struct Observation {
    /// DER certificates, leaf first, as presented (server) or as stored (file).
    pub chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// webpki's verdict on chain + name; `None` if the chain was never verified.
    pub verdict: Option<Result<(), rustls::Error>>,
    /// The name to match; `None` means no hostname check (a file without `sni`).
    pub expected_name: Option<ExpectedName>,
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    pub address: Option<String>,
    pub ocsp_stapled: bool,
    /// Set when the chain was received but the handshake did not complete.
    pub handshake_error: Option<String>,
    /// Set when the server's handshake signature did not verify with the leaf's key.
    pub signature_error: Option<rustls::Error>,
    /// A `file:` target whose first certificate is a CA certificate: it is checked for
    /// expiry, key and signature only (no server-chain verification, no self-signed or
    /// missing-issuer findings, which are normal for a CA).
    pub ca_file: bool,
}

/// Expiry thresholds in days.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    pub warning_days: i64,
    pub critical_days: i64,
}

/// A result for a target that could not be checked at all.
pub(crate) fn error_result(target: &str, reason: String, address: Option<String>) -> CertResult {
    CertResult {
        target: target.to_string(),
        status: CertStatus::Error,
        days_left: None,
        not_after: None,
        hostname_match: None,
        chain_valid: None,
        verification_error: Some(reason),
        tls_version: None,
        cipher: None,
        address,
        chain: Vec::new(),
        bundle: None,
        findings: Vec::new(),
    }
}

/// Judges one observed chain.
pub(crate) fn assess(
    target: &str,
    obs: Observation,
    trust: &TrustStore,
    thresholds: Thresholds,
    now: OffsetDateTime,
) -> CertResult {
    let entries = parse_chain(&obs.chain, now);
    if entries.is_empty() {
        return error_result(
            target,
            obs.handshake_error
                .unwrap_or_else(|| "no certificate was presented".into()),
            obs.address,
        );
    }
    let leaf = entries[0].parsed();
    let mut findings = Vec::new();
    let mut reasons = Vec::new();

    // Hostname, computed from the leaf's SANs (valid even when the chain is not).
    let hostname_match = obs.expected_name.as_ref().map(|name| match leaf {
        Some(leaf) => name_matches(leaf, name),
        None => false,
    });
    if let (Some(false), Some(name)) = (hostname_match, &obs.expected_name) {
        let why = mismatch_reason(leaf, name);
        reasons.push(format!("hostname mismatch: {why}"));
        findings.push(
            Finding::new(
                Severity::Critical,
                "hostname_mismatch",
                format!("the certificate does not cover `{name}`: {why}"),
            )
            .with_remediation(
                "Install a certificate whose subjectAltName lists this host name (or IP), \
                 or connect with the name the certificate was issued for.",
            ),
        );
    }

    // Chain validity against the trust store (a name-only error means the chain is fine).
    let chain_valid = match &obs.verdict {
        None => None,
        Some(Ok(())) => Some(true),
        Some(Err(e)) if is_name_error(e) => Some(true),
        Some(Err(e)) => {
            let why = describe_chain_failure(e, &entries, trust, now);
            reasons.insert(0, why.clone());
            findings.push(
                Finding::new(
                    Severity::Critical,
                    "chain_untrusted",
                    format!("the certificate chain does not verify against the trust store: {why}"),
                )
                .with_remediation(
                    "Serve a certificate from a trusted CA with its complete intermediate chain; \
                     for an internal CA, install its root in the system trust store or \
                     SECOPS_EXTRA_CA_FILE.",
                ),
            );
            Some(false)
        }
    };

    chain_findings(
        &entries,
        trust,
        thresholds,
        chain_valid,
        now,
        obs.ca_file,
        &mut findings,
    );
    // webpki reports one reason; name the other trust problems the chain analysis found.
    if let Some(Err(e)) = &obs.verdict
        && chain_valid == Some(false)
        && classify(e) != ChainFailure::UnknownIssuer
    {
        for f in &findings {
            if matches!(f.code.as_str(), "missing_intermediate" | "self_signed") {
                reasons.insert(1, format!("also: {}", f.message));
            }
        }
    }
    if obs.ca_file {
        findings.push(Finding::new(
            Severity::Info,
            "ca_certificate",
            "the file holds a CA certificate; it was checked for validity dates, key and \
             signature, not verified as a server certificate (chain_valid is null)",
        ));
    }

    if let Some(e) = &obs.signature_error {
        let weak = leaf.and_then(|l| l.key.weakness());
        let why = match weak {
            Some(weak) => format!(
                "the server's handshake signature could not be verified: {weak}, which this \
                 checker (like current browsers) does not accept"
            ),
            None => format!(
                "the server's handshake signature does not verify with the certificate's key \
                 ({}); the server may not hold the private key for this certificate",
                describe_rustls_error(e)
            ),
        };
        reasons.push(why.clone());
        findings.push(
            Finding::new(Severity::Critical, "handshake_signature_invalid", why).with_remediation(
                "Install a certificate and matching private key with a key of at least 2048 bits \
                 (RSA) or 256 bits (EC).",
            ),
        );
    } else if let Some(e) = &obs.handshake_error {
        reasons.push(format!(
            "the TLS handshake did not complete after the certificate was received: {e}"
        ));
        findings.push(
            Finding::new(
                Severity::Warning,
                "handshake_incomplete",
                format!("the certificate was received but the TLS handshake did not complete: {e}"),
            )
            .with_remediation(
                "Check the server's TLS configuration (client certificate requirement, \
                 protocol versions, cipher suites).",
            ),
        );
    }

    if obs.ocsp_stapled {
        findings.push(Finding::new(
            Severity::Info,
            "ocsp_stapled",
            "the server staples an OCSP response (not validated by this check)",
        ));
    }

    // days_left / not_after of the certificate that expires first.
    let soonest = entries
        .iter()
        .filter_map(ChainEntry::parsed)
        .min_by_key(|c| c.not_after);
    let days_left = soonest.map(|c| c.view.days_left);
    let not_after = soonest.map(|c| rfc3339(c.not_after));

    let worst = findings.iter().map(|f| f.severity).max();
    let status = if chain_valid == Some(false)
        || hostname_match == Some(false)
        || worst == Some(Severity::Critical)
    {
        CertStatus::Critical
    } else if worst == Some(Severity::Warning) {
        CertStatus::Warning
    } else {
        CertStatus::Ok
    };

    CertResult {
        target: target.to_string(),
        status,
        days_left,
        not_after,
        hostname_match,
        chain_valid,
        verification_error: (!reasons.is_empty()).then(|| reasons.join("; ")),
        tls_version: obs.tls_version,
        cipher: obs.cipher,
        address: obs.address,
        chain: entries
            .iter()
            .enumerate()
            .map(|(i, e)| ChainCert {
                position: i + 1,
                ..e.view().clone()
            })
            .collect(),
        bundle: None,
        findings,
    }
}

/// Findings that depend only on the chain itself.
fn chain_findings(
    entries: &[ChainEntry],
    trust: &TrustStore,
    thresholds: Thresholds,
    chain_valid: Option<bool>,
    now: OffsetDateTime,
    ca_file: bool,
    findings: &mut Vec<Finding>,
) {
    for (i, entry) in entries.iter().enumerate() {
        let position = position_name(i, ca_file);
        let cert = match entry {
            ChainEntry::Parsed(cert) => cert,
            ChainEntry::Malformed { reason, .. } => {
                findings.push(
                    Finding::new(
                        Severity::Critical,
                        "cert_malformed",
                        format!("the {position} certificate cannot be parsed: {reason}"),
                    )
                    .with_remediation("Re-issue or re-export the certificate; it is corrupt."),
                );
                continue;
            }
        };
        let subject = &cert.view.subject;
        let days = cert.view.days_left;
        if cert.not_after < now {
            findings.push(
                Finding::new(
                    Severity::Critical,
                    "cert_expired",
                    format!(
                        "the {position} certificate `{subject}` expired on {} ({} ago)",
                        rfc3339(cert.not_after),
                        plural_days((now - cert.not_after).whole_days())
                    ),
                )
                .with_remediation(
                    "Renew the certificate and install it (with its intermediates) on the \
                     server, then re-run check_cert.",
                ),
            );
        } else if cert.not_before > now {
            findings.push(
                Finding::new(
                    Severity::Critical,
                    "cert_not_yet_valid",
                    format!(
                        "the {position} certificate `{subject}` is not valid until {} (in {})",
                        rfc3339(cert.not_before),
                        plural_days((cert.not_before - now).whole_days())
                    ),
                )
                .with_remediation(
                    "Check the server's and this host's clocks, or install the currently valid \
                     certificate.",
                ),
            );
        } else if days <= thresholds.warning_days {
            let severity = if days <= thresholds.critical_days {
                Severity::Critical
            } else {
                Severity::Warning
            };
            findings.push(
                Finding::new(
                    severity,
                    "cert_expires_soon",
                    format!(
                        "the {position} certificate `{subject}` expires on {} (in {})",
                        rfc3339(cert.not_after),
                        plural_days(days)
                    ),
                )
                .with_remediation(
                    "Renew the certificate before it expires (automate renewal, e.g. ACME), \
                     then install it with its intermediates.",
                ),
            );
        }

        if let Some(weak) = cert.key.weakness() {
            findings.push(
                Finding::new(
                    Severity::Critical,
                    "weak_key",
                    format!("the {position} certificate `{subject}` has a weak key: {weak}"),
                )
                .with_remediation(
                    "Re-issue the certificate with an RSA key of at least 2048 bits or an EC key \
                     on P-256 or P-384.",
                ),
            );
        }

        // A self-signature is never checked by clients (trust comes from the trust store),
        // so its hash does not matter on a root sent in the chain or a CA file's root.
        let exempt_root = cert.view.self_signed && (i > 0 || ca_file);
        if let (Some(hash), false) = (cert.weak_hash, exempt_root) {
            findings.push(
                Finding::new(
                    Severity::Critical,
                    "weak_signature",
                    format!(
                        "the {position} certificate `{subject}` is signed with {hash} ({}), \
                         which is broken and rejected by current clients",
                        cert.view.signature_algorithm
                    ),
                )
                .with_remediation(
                    "Re-issue the certificate (or obtain a new intermediate) signed with \
                     SHA-256 or stronger.",
                ),
            );
        }
    }

    let Some(leaf) = entries.first().and_then(ChainEntry::parsed) else {
        return;
    };
    if ca_file {
        return;
    }

    if leaf.view.self_signed {
        let trusted = chain_valid == Some(true);
        findings.push(
            Finding::new(
                if trusted {
                    Severity::Warning
                } else {
                    Severity::Critical
                },
                "self_signed",
                if trusted {
                    format!(
                        "the certificate `{}` is self-signed; it is trusted only because it is \
                         in the trust store itself",
                        leaf.view.subject
                    )
                } else {
                    format!(
                        "the certificate `{}` is self-signed and not trusted",
                        leaf.view.subject
                    )
                },
            )
            .with_remediation(
                "Replace it with a certificate issued by a public CA (e.g. Let's Encrypt) or by \
                 your internal CA whose root is installed on the clients.",
            ),
        );
    }

    // Only the leaf's own issuer counts as a missing intermediate; a chain that stops
    // higher up is an unknown CA (reported by chain_untrusted).
    if let Some((orphan, 0)) = missing_issuer(entries, trust) {
        findings.push(
            Finding::new(
                Severity::Critical,
                "missing_intermediate",
                format!(
                    "the chain is incomplete: the issuer `{}` of `{}` is neither sent by the \
                     server nor in the trust store",
                    orphan.view.issuer, orphan.view.subject
                ),
            )
            .with_remediation(
                "Configure the server to send the full chain (leaf followed by every \
                 intermediate, e.g. the CA's fullchain.pem).",
            ),
        );
    }

    if let Some(message) = out_of_order(entries) {
        findings.push(
            Finding::new(Severity::Warning, "chain_out_of_order", message).with_remediation(
                "Order the chain file leaf first, then each intermediate followed by the \
                 certificate that issued it; remove certificates that do not belong.",
            ),
        );
    }
}

fn plural_days(days: i64) -> String {
    if days == 0 {
        "less than a day".into()
    } else if days == 1 {
        "1 day".into()
    } else {
        format!("{days} days")
    }
}

/// How findings name the certificate at index `i`: by its `position` (`#1` is the leaf or
/// a bundle's first certificate), as `chain[].position` and the CLI list do.
fn position_name(i: usize, ca_file: bool) -> String {
    if i == 0 && !ca_file {
        "leaf (#1)".into()
    } else {
        format!("#{}", i + 1)
    }
}

/// The positions a finding's message names (`#3`), the inverse of [`position_name`].
pub(crate) fn positions_named(message: &str) -> Vec<usize> {
    message
        .split('#')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        })
        .collect()
}
