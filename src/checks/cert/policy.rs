//! What `check_cert` may reach: which files (`check_cert.file_roots`) and which hosts
//! (`check_cert.allow`, cloud metadata endpoints refused unless listed exactly). Enforced
//! before a file is opened or a packet is sent to the target. The server (the MCP tool)
//! always sets both; the `check cert` CLI (an operator on the host) reads any regular file;
//! a `CertChecker` built directly (library, tests) reads any regular file and refuses only
//! metadata endpoints.

use std::net::IpAddr;
use std::path::PathBuf;

use super::target::Host;
use crate::checks::scan::scope::{Scope, canonical, is_metadata};

/// Where `check_cert` may look.
#[derive(Debug, Clone, Default)]
pub struct CertPolicy {
    /// `None`: any regular file (still opened without blocking and read bounded). `Some`:
    /// only regular files whose resolved path lies under one of these folders.
    pub(crate) file_roots: Option<Vec<PathBuf>>,
    /// `check_cert.allow`: `None` (empty setting) means any host.
    pub(crate) allow: Option<Scope>,
    /// Connect wherever told (scan_host, whose own scope already pinned the address).
    pub(crate) any_address: bool,
}

impl CertPolicy {
    /// The MCP tool's policy: files only under `file_roots` (an empty list permits no file),
    /// hosts only as `allow` says (empty: any host). Both come validated from the config.
    pub fn confined(file_roots: Vec<PathBuf>, allow: &Scope) -> Self {
        Self {
            file_roots: Some(file_roots),
            allow: any_host_if_empty(allow),
            any_address: false,
        }
    }

    /// An operator's policy (`secops-mcp check cert`): any regular file, hosts as `allow`
    /// says.
    pub fn operator(allow: &Scope) -> Self {
        Self {
            file_roots: None,
            allow: any_host_if_empty(allow),
            any_address: false,
        }
    }

    /// The folders `file:` targets are confined to, if any.
    pub fn file_roots(&self) -> Option<&[PathBuf]> {
        self.file_roots.as_deref()
    }

    /// May a connection go to `addrs` (the addresses `host` resolved to, or its IP)? Every
    /// address must pass. `Err` is the refusal, naming the rule and the setting.
    pub(crate) fn check_addresses(&self, host: &Host, addrs: &[IpAddr]) -> Result<(), String> {
        if self.any_address {
            return Ok(());
        }
        for &addr in addrs {
            let addr = canonical(addr);
            let listed_exactly = self.allow.as_ref().is_some_and(|s| s.lists_exactly(addr));
            if is_metadata(addr) {
                if listed_exactly {
                    continue;
                }
                let via = match host {
                    Host::Dns(name) => format!("`{name}` resolves to {addr}, "),
                    Host::Ip(_) => format!("{addr} is "),
                };
                return Err(format!(
                    "refused by rule `metadata`: {via}a cloud metadata endpoint; check_cert \
                     connects there only when `check_cert.allow` (SECOPS_CERT_ALLOW) lists it \
                     exactly (e.g. {addr}/32)"
                ));
            }
            let Some(scope) = &self.allow else { continue };
            let by_name = matches!(host, Host::Dns(name) if scope.lists_host(name));
            if !(by_name || scope.contains(addr)) {
                let what = match host {
                    Host::Dns(name) => format!("`{name}` ({addr})"),
                    Host::Ip(_) => addr.to_string(),
                };
                return Err(format!(
                    "refused by `check_cert.allow`: {what} is outside the hosts certificate \
                     checks may reach ({}); add it to check_cert.allow (SECOPS_CERT_ALLOW) to \
                     permit it",
                    scope.text()
                ));
            }
        }
        Ok(())
    }
}

/// An empty `check_cert.allow` means any host.
fn any_host_if_empty(allow: &Scope) -> Option<Scope> {
    (!allow.is_empty()).then(|| allow.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn allow(entries: &[&str]) -> CertPolicy {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        CertPolicy::confined(Vec::new(), &Scope::parse(&entries).unwrap())
    }

    #[test]
    fn metadata_is_refused_by_default_even_with_any_host() {
        for policy in [
            CertPolicy::default(),
            allow(&[]),
            allow(&["0.0.0.0/0", "::/0"]),
        ] {
            for m in [
                "169.254.169.254",
                "fd00:ec2::254",
                "100.100.100.200",
                "::ffff:169.254.169.254",
            ] {
                let e = policy
                    .check_addresses(&Host::Ip(ip(m)), &[ip(m)])
                    .unwrap_err();
                assert!(
                    e.contains("`metadata`") && e.contains("check_cert.allow"),
                    "{e}"
                );
            }
            // Through a name that resolves there (one of several addresses is enough).
            let e = policy
                .check_addresses(
                    &Host::Dns("metadata.example".into()),
                    &[ip("192.0.2.1"), ip("169.254.169.254")],
                )
                .unwrap_err();
            assert!(
                e.contains("`metadata.example` resolves to 169.254.169.254"),
                "{e}"
            );
            assert!(
                policy
                    .check_addresses(&Host::Ip(ip("192.0.2.1")), &[ip("192.0.2.1")])
                    .is_ok()
            );
        }
    }

    #[test]
    fn metadata_is_allowed_when_listed_exactly() {
        let exact = allow(&["169.254.169.254/32", "fd00:ec2::254"]);
        for m in ["169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254"] {
            assert!(
                exact.check_addresses(&Host::Ip(ip(m)), &[ip(m)]).is_ok(),
                "{m}"
            );
        }
        let e = exact
            .check_addresses(&Host::Ip(ip("100.100.100.200")), &[ip("100.100.100.200")])
            .unwrap_err();
        assert!(e.contains("`metadata`"), "{e}");
        // A wide entry is not an exact listing.
        let wide = allow(&["169.254.0.0/16"]);
        assert!(
            wide.check_addresses(&Host::Ip(ip("169.254.169.254")), &[ip("169.254.169.254")])
                .is_err()
        );
        // A listed hostname does not let a metadata address in either.
        let named = allow(&["svc.example"]);
        assert!(
            named
                .check_addresses(&Host::Dns("svc.example".into()), &[ip("169.254.169.254")])
                .is_err()
        );
    }

    #[test]
    fn allow_confines_hosts_and_names_the_setting() {
        let p = allow(&["127.0.0.2/32", "svc.example"]);
        assert!(
            p.check_addresses(&Host::Ip(ip("127.0.0.2")), &[ip("127.0.0.2")])
                .is_ok()
        );
        let e = p
            .check_addresses(&Host::Ip(ip("127.0.0.1")), &[ip("127.0.0.1")])
            .unwrap_err();
        assert!(
            e.contains("`check_cert.allow`")
                && e.contains("127.0.0.1")
                && e.contains("SECOPS_CERT_ALLOW"),
            "{e}"
        );
        // A listed name permits its addresses; another name must resolve inside.
        assert!(
            p.check_addresses(&Host::Dns("svc.example".into()), &[ip("192.0.2.9")])
                .is_ok()
        );
        let e = p
            .check_addresses(
                &Host::Dns("localhost".into()),
                &[ip("127.0.0.2"), ip("127.0.0.1")],
            )
            .unwrap_err();
        assert!(e.contains("`localhost` (127.0.0.1)"), "{e}");
        // Empty means any host.
        assert!(
            allow(&[])
                .check_addresses(&Host::Ip(ip("192.0.2.1")), &[ip("192.0.2.1")])
                .is_ok()
        );
    }

    #[test]
    fn scan_host_pinned_addresses_skip_the_policy() {
        let p = CertPolicy {
            any_address: true,
            ..allow(&["127.0.0.2/32"])
        };
        assert!(
            p.check_addresses(&Host::Ip(ip("169.254.169.254")), &[ip("169.254.169.254")])
                .is_ok()
        );
    }
}
