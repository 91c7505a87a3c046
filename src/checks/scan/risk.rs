//! Risk notes for open ports: remote administration, cleartext protocols, data stores and
//! container APIs that should not be reachable from where the scan ran, plus certificate
//! problems on TLS ports. Exposure on loopback is noted at `info` (only local users reach it).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::TlsSummary;
use crate::checks::{Finding, Severity};

/// Why one open port matters.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskNote {
    pub severity: Severity,
    pub code: &'static str,
    pub why: String,
    pub remediation: &'static str,
}

impl RiskNote {
    pub fn finding(&self, sa: &SocketAddr) -> Finding {
        Finding::new(self.severity, self.code, format!("{sa}: {}", self.why))
            .with_remediation(self.remediation)
    }
}

const ADMIN_FIX: &str = "Restrict it to a management network or VPN (firewall), require keys or \
                         MFA, and watch its authentication alerts in Wazuh.";
const DATA_FIX: &str = "Bind it to localhost or a private network, firewall it, and require \
                        authentication with TLS.";

/// The risk of `port` (named `service`) being open on `addr`, if any.
pub fn assess(port: u16, service: &str, addr: IpAddr) -> Option<RiskNote> {
    let (severity, code, what, remediation): (Severity, &'static str, &str, &'static str) =
        match (port, service) {
            (23, _) | (_, "telnet") => (
                Severity::Critical,
                "cleartext_remote_admin_exposed",
                "Telnet sends credentials in cleartext",
                "Disable telnet and use SSH.",
            ),
            (22, _) | (_, "ssh") => (
                Severity::Warning,
                "remote_admin_exposed",
                "SSH remote administration is reachable",
                ADMIN_FIX,
            ),
            (3389, _) | (_, "rdp") => (
                Severity::Warning,
                "remote_admin_exposed",
                "RDP remote desktop is reachable (a common ransomware entry point)",
                ADMIN_FIX,
            ),
            (5900..=5903, _) | (_, "vnc") => (
                Severity::Warning,
                "remote_admin_exposed",
                "VNC remote desktop is reachable (often weakly authenticated)",
                ADMIN_FIX,
            ),
            (5985 | 5986, _) => (
                Severity::Warning,
                "remote_admin_exposed",
                "WinRM remote management is reachable",
                ADMIN_FIX,
            ),
            (21, _) | (_, "ftp") => (
                Severity::Warning,
                "cleartext_service_exposed",
                "FTP sends credentials in cleartext",
                "Replace FTP with SFTP or FTPS, or firewall it.",
            ),
            (445 | 139, _) | (_, "smb") => (
                Severity::Warning,
                "file_sharing_exposed",
                "SMB file sharing is reachable",
                "Firewall SMB to the networks that need it; never expose it to the internet.",
            ),
            (2049, _) => (
                Severity::Warning,
                "file_sharing_exposed",
                "NFS file sharing is reachable",
                "Firewall NFS to the clients that need it.",
            ),
            (6379, _) | (_, "redis") => (
                Severity::Critical,
                "database_exposed",
                "Redis is reachable (no authentication by default)",
                DATA_FIX,
            ),
            (11211, _) => (
                Severity::Critical,
                "database_exposed",
                "memcached is reachable (no authentication)",
                DATA_FIX,
            ),
            (27017, _) | (_, "mongodb") => (
                Severity::Warning,
                "database_exposed",
                "MongoDB is reachable",
                DATA_FIX,
            ),
            (9200, _) | (_, "opensearch") => (
                Severity::Warning,
                "database_exposed",
                "OpenSearch/Elasticsearch (the Wazuh indexer holds every alert) is reachable",
                DATA_FIX,
            ),
            (3306, _) | (_, "mysql") => (
                Severity::Warning,
                "database_exposed",
                "MySQL/MariaDB is reachable",
                DATA_FIX,
            ),
            (5432, _) | (_, "postgres") => (
                Severity::Warning,
                "database_exposed",
                "PostgreSQL is reachable",
                DATA_FIX,
            ),
            (1433, _) | (_, "mssql") => (
                Severity::Warning,
                "database_exposed",
                "Microsoft SQL Server is reachable",
                DATA_FIX,
            ),
            (2375, _) => (
                Severity::Critical,
                "container_api_exposed",
                "the Docker Engine API without TLS is reachable (root on the host)",
                "Never expose the Docker API without TLS client authentication; use the Unix \
                 socket.",
            ),
            (55000, _) | (_, "wazuh-api") => (
                Severity::Warning,
                "wazuh_api_exposed",
                "the Wazuh manager API is reachable",
                "Limit the Wazuh API to administrators' networks.",
            ),
            _ => return None,
        };
    let local = addr.is_loopback();
    Some(RiskNote {
        severity: if local { Severity::Info } else { severity },
        code,
        why: if local {
            format!("{what} (on loopback: only local users)")
        } else {
            what.to_string()
        },
        remediation,
    })
}

/// Findings for a TLS port's certificate.
pub fn tls_findings(sa: &SocketAddr, tls: &TlsSummary) -> Vec<Finding> {
    let mut out = Vec::new();
    if tls.days_left < 0 {
        out.push(
            Finding::new(
                Severity::Critical,
                "tls_cert_expired",
                format!(
                    "{sa}: certificate `{}` expired {}",
                    tls.subject, tls.not_after
                ),
            )
            .with_remediation("Renew the certificate and reload the service."),
        );
    } else if tls.days_left <= crate::checks::cert::DEFAULT_CRITICAL_DAYS {
        out.push(
            Finding::new(
                Severity::Critical,
                "tls_cert_expires_soon",
                format!(
                    "{sa}: certificate `{}` expires in {} days",
                    tls.subject, tls.days_left
                ),
            )
            .with_remediation("Renew the certificate now."),
        );
    } else if tls.days_left <= crate::checks::cert::DEFAULT_WARNING_DAYS {
        out.push(
            Finding::new(
                Severity::Warning,
                "tls_cert_expires_soon",
                format!(
                    "{sa}: certificate `{}` expires in {} days",
                    tls.subject, tls.days_left
                ),
            )
            .with_remediation("Plan the renewal."),
        );
    }
    if tls.self_signed {
        out.push(Finding::new(
            Severity::Info,
            "tls_cert_self_signed",
            format!("{sa}: self-signed certificate `{}`", tls.subject),
        ));
    }
    out
}

/// Merge findings with the same code and severity into one, listing where.
pub fn group(findings: Vec<Finding>) -> Vec<Finding> {
    let mut by_key: BTreeMap<(std::cmp::Reverse<Severity>, String, String), Vec<Finding>> =
        BTreeMap::new();
    for f in findings {
        // Group port findings by what they say after the address.
        let what = f
            .message
            .split_once(": ")
            .map(|(_, w)| w.to_string())
            .unwrap_or_default();
        by_key
            .entry((std::cmp::Reverse(f.severity), f.code.clone(), what))
            .or_default()
            .push(f);
    }
    by_key
        .into_values()
        .map(|mut group| {
            if group.len() == 1 {
                return group.pop().expect("one element");
            }
            let where_: Vec<&str> = group
                .iter()
                .filter_map(|f| f.message.split_once(": ").map(|(a, _)| a))
                .take(10)
                .collect();
            let what = group[0]
                .message
                .split_once(": ")
                .map(|(_, w)| w)
                .unwrap_or("");
            let more = if group.len() > 10 {
                format!(" and {} more", group.len() - 10)
            } else {
                String::new()
            };
            let mut f = Finding::new(
                group[0].severity,
                &group[0].code,
                format!("{}{more}: {what}", where_.join(", ")),
            );
            f.remediation = group[0].remediation.clone();
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_admin_and_data_ports_are_noted() {
        let remote: IpAddr = "10.0.0.5".parse().unwrap();
        let ssh = assess(22, "ssh", remote).unwrap();
        assert_eq!(ssh.code, "remote_admin_exposed");
        assert_eq!(ssh.severity, Severity::Warning);
        assert_eq!(
            assess(23, "telnet", remote).unwrap().severity,
            Severity::Critical
        );
        assert_eq!(
            assess(6379, "redis", remote).unwrap().code,
            "database_exposed"
        );
        assert_eq!(
            assess(3389, "unknown", remote).unwrap().code,
            "remote_admin_exposed"
        );
        assert!(assess(8123, "unknown", remote).is_none());
        // Any port named ssh by its banner counts too.
        assert!(assess(2222, "ssh", remote).is_some());
    }

    #[test]
    fn loopback_exposure_is_informational() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let n = assess(6379, "redis", lo).unwrap();
        assert_eq!(n.severity, Severity::Info);
        assert!(n.why.contains("loopback"));
    }

    #[test]
    fn same_findings_on_many_hosts_are_grouped() {
        let fs: Vec<Finding> = (1..=12)
            .map(|i| {
                let sa: SocketAddr = format!("10.0.0.{i}:22").parse().unwrap();
                assess(22, "ssh", sa.ip()).unwrap().finding(&sa)
            })
            .collect();
        let grouped = group(fs);
        assert_eq!(grouped.len(), 1);
        assert!(grouped[0].message.contains("10.0.0.1:22"));
        assert!(
            grouped[0].message.contains("and 2 more"),
            "{}",
            grouped[0].message
        );
    }
}
