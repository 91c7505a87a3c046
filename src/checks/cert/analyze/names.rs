//! Host name checks for `check_cert`: the name a certificate must cover, RFC 6125 matching
//! against the leaf's subjectAltNames (wildcards as browsers apply them), and why it failed.

use std::fmt;
use std::net::IpAddr;

use crate::checks::cert::parse::CertInfo;

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

pub(super) fn mismatch_reason(leaf: Option<&CertInfo>, expected: &ExpectedName) -> String {
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
