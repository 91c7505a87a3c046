//! Judgement for `check_cert`: from a presented chain, the webpki verdict and what the
//! handshake revealed, computes `hostname_match`, `chain_valid`, the human verification
//! error, the findings (stable codes) and the status of one target.

use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;

use super::parse::{CertInfo, ChainEntry, parse_chain, rfc3339};
use super::trust::TrustStore;
use super::verify::{ChainFailure, classify, describe_rustls_error, is_name_error};
use super::{CertResult, CertStatus, ChainCert, Finding, Severity};

/// The name a certificate must be valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpectedName {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for ExpectedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedName::Dns(name) => f.write_str(name),
            ExpectedName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

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

/// Where the issuer path from the leaf through the presented chain stops.
enum ChainEnd<'a> {
    /// At a self-signed certificate.
    SelfSigned,
    /// At a certificate whose issuer name is a trust anchor's subject.
    AnchorName(&'a CertInfo),
    /// At a certificate (at this chain position) whose issuer is neither presented nor a
    /// trust anchor.
    Orphan(&'a CertInfo, usize),
}

/// Follows issuers (by name) from the leaf through the presented chain, in any order.
fn chain_end<'a>(entries: &'a [ChainEntry], trust: &TrustStore) -> Option<ChainEnd<'a>> {
    let mut current = entries.first()?.parsed()?;
    let mut current_index = 0usize;
    let mut seen = vec![false; entries.len()];
    seen[0] = true;
    loop {
        if current.view.self_signed {
            return Some(ChainEnd::SelfSigned);
        }
        if trust.has_anchor_subject(&current.issuer_raw) {
            return Some(ChainEnd::AnchorName(current));
        }
        let next = entries.iter().enumerate().find_map(|(j, e)| {
            let c = e.parsed()?;
            (j != current_index && !seen[j] && c.subject_raw == current.issuer_raw)
                .then_some((j, c))
        });
        match next {
            Some((j, c)) => {
                seen[j] = true;
                current = c;
                current_index = j;
            }
            None => return Some(ChainEnd::Orphan(current, current_index)),
        }
    }
}

/// The certificate whose issuer is neither presented nor a trust anchor (and which is not
/// self-signed), with its position in the chain.
fn missing_issuer<'a>(
    entries: &'a [ChainEntry],
    trust: &TrustStore,
) -> Option<(&'a CertInfo, usize)> {
    match chain_end(entries, trust)? {
        ChainEnd::Orphan(cert, index) => Some((cert, index)),
        ChainEnd::SelfSigned | ChainEnd::AnchorName(_) => None,
    }
}

/// Whether certificate i+1 is always the issuer of certificate i; describes the first break.
fn out_of_order(entries: &[ChainEntry]) -> Option<String> {
    for i in 0..entries.len().saturating_sub(1) {
        let (Some(cert), Some(next)) = (entries[i].parsed(), entries[i + 1].parsed()) else {
            continue;
        };
        if next.subject_raw == cert.issuer_raw {
            continue;
        }
        let elsewhere = entries.iter().enumerate().find_map(|(j, e)| {
            let c = e.parsed()?;
            (j != i && j != i + 1 && c.subject_raw == cert.issuer_raw).then_some(j)
        });
        let tail = match elsewhere {
            Some(j) => format!("; its issuer is at position {}", j + 1),
            None if cert.view.self_signed => {
                "; it is self-signed, so nothing should follow it".to_string()
            }
            None => "; its issuer is not in the chain".to_string(),
        };
        return Some(format!(
            "the chain is out of order: certificate {} (`{}`) does not issue certificate {} \
             (`{}`){tail}",
            i + 2,
            next.view.subject,
            i + 1,
            cert.view.subject
        ));
    }
    None
}

/// Hostname match per RFC 6125 as browsers apply it: DNS names against DNS SANs (a `*`
/// wildcard only as the whole left-most label, matching exactly one label), IP addresses
/// against IP SANs. The subject CN is not used.
pub(crate) fn name_matches(leaf: &CertInfo, expected: &ExpectedName) -> bool {
    match expected {
        ExpectedName::Ip(ip) => leaf.ip_sans.contains(ip),
        ExpectedName::Dns(name) => leaf.dns_sans.iter().any(|san| dns_matches(san, name)),
    }
}

pub(crate) fn dns_matches(san: &str, name: &str) -> bool {
    let san = san.strip_suffix('.').unwrap_or(san).to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if san.is_empty() || name.is_empty() {
        return false;
    }
    if let Some(suffix) = san.strip_prefix("*.") {
        // At least two labels under the wildcard (no `*.com`), and no nested wildcard.
        if !suffix.contains('.') || suffix.contains('*') {
            return false;
        }
        return match name.split_once('.') {
            Some((first, rest)) => !first.is_empty() && rest == suffix,
            None => false,
        };
    }
    !san.contains('*') && san == name
}

fn mismatch_reason(leaf: Option<&CertInfo>, expected: &ExpectedName) -> String {
    let Some(leaf) = leaf else {
        return format!("the leaf certificate cannot be parsed, so `{expected}` cannot match");
    };
    let names: Vec<&str> = leaf.view.sans.iter().map(String::as_str).collect();
    if names.is_empty() {
        return format!(
            "the certificate has no subjectAltName entries (its subject `{}` is not used for \
             name checks by current clients), so `{expected}` does not match",
            leaf.view.subject
        );
    }
    let shown: Vec<&str> = names.iter().copied().take(10).collect();
    let more = if names.len() > 10 {
        format!(" and {} more", names.len() - 10)
    } else {
        String::new()
    };
    format!(
        "`{expected}` is not among the certificate's names ({}{more})",
        shown.join(", ")
    )
}

/// A precise reason for a chain verification failure, using the parsed chain.
fn describe_chain_failure(
    e: &rustls::Error,
    entries: &[ChainEntry],
    trust: &TrustStore,
    now: OffsetDateTime,
) -> String {
    let parsed = || entries.iter().filter_map(ChainEntry::parsed);
    match classify(e) {
        ChainFailure::Expired => match parsed()
            .filter(|c| c.not_after < now)
            .min_by_key(|c| c.not_after)
        {
            Some(c) => format!(
                "certificate expired: `{}` expired on {} ({} ago)",
                c.view.subject,
                rfc3339(c.not_after),
                plural_days((now - c.not_after).whole_days())
            ),
            None => "certificate expired".into(),
        },
        ChainFailure::NotYetValid => match parsed().find(|c| c.not_before > now) {
            Some(c) => format!(
                "certificate not yet valid: `{}` is valid only from {}",
                c.view.subject,
                rfc3339(c.not_before)
            ),
            None => "certificate not yet valid".into(),
        },
        ChainFailure::UnknownIssuer => {
            let Some(leaf) = entries.first().and_then(ChainEntry::parsed) else {
                return "unknown issuer: the leaf certificate cannot be parsed".into();
            };
            if leaf.view.self_signed {
                return format!(
                    "self-signed certificate: `{}` is signed by its own key and is not in the \
                     trust store",
                    leaf.view.subject
                );
            }
            match missing_issuer(entries, trust) {
                Some((orphan, 0)) => {
                    return format!(
                        "unknown issuer (incomplete chain): the server did not send the \
                         intermediate certificate `{}` that issued `{}`, and it is not in the \
                         trust store",
                        orphan.view.issuer, orphan.view.subject
                    );
                }
                Some((orphan, _)) => {
                    return format!(
                        "unknown issuer: the chain ends at `{}`, whose issuer `{}` is neither \
                         sent by the server nor in the trust store (an untrusted CA, or a \
                         missing intermediate)",
                        orphan.view.subject, orphan.view.issuer
                    );
                }
                None => {}
            }
            match parsed().find(|c| c.view.self_signed) {
                Some(root) => format!(
                    "unknown issuer: the chain ends at the root `{}`, which is not in the trust \
                     store",
                    root.view.subject
                ),
                None => format!(
                    "unknown issuer: no path from `{}` to a certificate in the trust store",
                    leaf.view.subject
                ),
            }
        }
        ChainFailure::BadSignature => match chain_end(entries, trust) {
            Some(ChainEnd::AnchorName(top)) => format!(
                "`{}` names `{}` as its issuer, and a trust anchor has that name, but that \
                 anchor's key did not sign it (a different CA with the same name, e.g. a \
                 re-keyed or impostor root)",
                top.view.subject, top.view.issuer
            ),
            _ => "a signature in the chain does not verify (a certificate was not issued by \
                  the one it names, or was altered)"
                .into(),
        },
        ChainFailure::UnsupportedAlgorithm => {
            let algs: Vec<String> = parsed()
                .map(|c| c.view.signature_algorithm.clone())
                .collect();
            format!(
                "the chain uses a signature algorithm or key this checker does not accept \
                 (algorithms in chain: {}; keys under 2048-bit RSA and SHA-1 are refused)",
                algs.join(", ")
            )
        }
        ChainFailure::WrongPurpose => "the certificate is not valid for TLS server \
                                       authentication (extended key usage does not include \
                                       serverAuth)"
            .into(),
        ChainFailure::CaAsLeaf => match entries.first().and_then(ChainEntry::parsed) {
            Some(leaf) if leaf.view.self_signed => format!(
                "self-signed certificate: `{}` is signed by its own key (and marked as a CA), \
                 so it cannot serve as a trusted server certificate",
                leaf.view.subject
            ),
            _ => {
                "the leaf is a CA certificate, which cannot be used as a server certificate".into()
            }
        },
        ChainFailure::Other => describe_rustls_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_rules() {
        assert!(dns_matches("*.example.com", "www.example.com"));
        assert!(dns_matches("*.Example.com.", "WWW.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.com", "example.com"));
        assert!(!dns_matches("w*.example.com", "www.example.com"));
        assert!(!dns_matches("*.*.example.com", "a.b.example.com"));
        assert!(dns_matches("example.com", "example.com."));
        assert!(!dns_matches("example.com", "www.example.com"));
        assert!(!dns_matches("", "example.com"));
    }
}
