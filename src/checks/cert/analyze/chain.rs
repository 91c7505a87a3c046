//! The presented chain as a path: where the issuer path from the leaf stops (missing
//! issuer, trust anchor name, self-signed), order breaks, and the precise wording of a
//! chain verification failure.

use time::OffsetDateTime;

use super::plural_days;
use crate::checks::cert::parse::{CertInfo, ChainEntry, rfc3339};
use crate::checks::cert::trust::TrustStore;
use crate::checks::cert::verify::{ChainFailure, classify, describe_rustls_error};

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
pub(super) fn missing_issuer<'a>(
    entries: &'a [ChainEntry],
    trust: &TrustStore,
) -> Option<(&'a CertInfo, usize)> {
    match chain_end(entries, trust)? {
        ChainEnd::Orphan(cert, index) => Some((cert, index)),
        ChainEnd::SelfSigned | ChainEnd::AnchorName(_) => None,
    }
}

/// Whether certificate i+1 is always the issuer of certificate i; describes the first break.
pub(super) fn out_of_order(entries: &[ChainEntry]) -> Option<String> {
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

/// A precise reason for a chain verification failure, using the parsed chain.
pub(super) fn describe_chain_failure(
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
