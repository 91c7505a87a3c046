//! What a scan reports: the per-host and per-port result types, the changes since the last
//! scan, the port-range notation of filtered ports, and the one-paragraph text summary.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::checks::{Finding, Severity, Summary};

/// Certificate facts for an open port that speaks TLS.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TlsSummary {
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    pub days_left: i64,
    pub self_signed: bool,
    /// The chain verified against the trust store (the address is not checked as a name).
    pub chain_valid: Option<bool>,
    pub verification_error: Option<String>,
    pub tls_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OpenPort {
    pub port: u16,
    /// e.g. `ssh`, `http`, `tls`, `redis`, `wazuh-api`; `unknown` when nothing matched.
    pub service: String,
    /// What the service said first (sanitised and capped: untrusted text).
    pub banner: Option<String>,
    pub tls: Option<TlsSummary>,
    /// Why this port matters, when it does (remote admin, data store, cleartext...).
    pub risk: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HostScan {
    pub address: String,
    pub open: Vec<OpenPort>,
    /// Ports that answered with a reset (refused).
    pub closed_count: usize,
    /// Ports that did not answer (dropped or unreachable), as ports and ranges (`1-21,23`).
    pub filtered: String,
    pub filtered_count: usize,
    /// Ports whose state could not be decided (cancelled, or local resources ran out).
    pub inconclusive_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PortRef {
    pub address: String,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Changes {
    /// Open now, not open in the previous scan (only ports both scans covered).
    pub opened: Vec<PortRef>,
    /// Open in the previous scan, closed or filtered now.
    pub closed: Vec<PortRef>,
    pub previous_scan_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScanReport {
    pub target: String,
    /// What the target resolved to; the scan connected to exactly these.
    pub addresses: Vec<String>,
    /// The port spec scanned.
    pub ports: String,
    /// Ports scanned per address.
    pub ports_scanned: usize,
    pub duration_ms: u64,
    /// The per-connection timeout the scan ended with (adaptive unless given).
    pub timeout_ms: u64,
    /// False when the scan was cancelled or some ports are inconclusive.
    pub complete: bool,
    pub hosts: Vec<HostScan>,
    /// Present when an earlier scan of the same target is stored.
    pub changes_since_last: Option<Changes>,
    pub findings: Vec<Finding>,
}

/// `[1,2,3,5,7,8]` -> `1-3,5,7-8`.
pub fn compress_ranges(ports: &[u16]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ports.len() {
        let start = ports[i];
        let mut end = start;
        while i + 1 < ports.len() && ports[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = ports[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

impl Summary for ScanReport {
    /// One paragraph for a person.
    fn summary(&self) -> String {
        let open: usize = self.hosts.iter().map(|h| h.open.len()).sum();
        let filtered: usize = self.hosts.iter().map(|h| h.filtered_count).sum();
        let inconclusive: usize = self.hosts.iter().map(|h| h.inconclusive_count).sum();
        let mut s = format!(
            "Scanned {} ({} address{}, {} port{} each) in {} ms: {} open",
            self.target,
            self.addresses.len(),
            if self.addresses.len() == 1 { "" } else { "es" },
            self.ports_scanned,
            if self.ports_scanned == 1 { "" } else { "s" },
            self.duration_ms,
            open
        );
        let list: Vec<String> = self
            .hosts
            .iter()
            .flat_map(|h| {
                h.open.iter().map(move |p| {
                    if self.addresses.len() > 1 {
                        format!("{}:{} {}", h.address, p.port, p.service)
                    } else {
                        format!("{} {}", p.port, p.service)
                    }
                })
            })
            .take(20)
            .collect();
        if !list.is_empty() {
            s.push_str(&format!(
                " ({}{})",
                list.join(", "),
                if open > 20 { ", ..." } else { "" }
            ));
        }
        if filtered > 0 {
            s.push_str(&format!(", {filtered} filtered"));
        }
        if inconclusive > 0 {
            s.push_str(&format!(", {inconclusive} INCONCLUSIVE"));
        }
        s.push('.');
        if let Some(c) = &self.changes_since_last {
            if c.opened.is_empty() && c.closed.is_empty() {
                s.push_str(&format!(" No change since {}.", c.previous_scan_at));
            } else {
                let fmt = |v: &[PortRef]| {
                    v.iter()
                        .map(|p| format!("{}:{}", p.address, p.port))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                s.push_str(&format!(" Since {}:", c.previous_scan_at));
                if !c.opened.is_empty() {
                    s.push_str(&format!(" opened {}", fmt(&c.opened)));
                }
                if !c.closed.is_empty() {
                    s.push_str(&format!(" closed {}", fmt(&c.closed)));
                }
                s.push('.');
            }
        }
        let notable = self
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .count();
        if notable > 0 {
            s.push_str(&format!(" {notable} finding(s) need attention."));
        }
        if !self.complete {
            s.push_str(" The scan is INCOMPLETE.");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_port_ranges() {
        assert_eq!(compress_ranges(&[]), "");
        assert_eq!(compress_ranges(&[5]), "5");
        assert_eq!(compress_ranges(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(compress_ranges(&[65534, 65535]), "65534-65535");
    }
}
