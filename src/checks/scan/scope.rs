//! Scan scope, enforced before any packet: what `SECOPS_SCAN_ALLOW` permits, cloud metadata
//! addresses refused unless listed exactly, CIDR targets capped at 256 addresses, and a
//! hostname resolved once to addresses that are then pinned (no second lookup, so DNS
//! rebinding cannot move the scan). Every refusal names the rule that refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Largest CIDR target (addresses).
pub const MAX_CIDR_ADDRESSES: u128 = 256;

/// Cloud instance-metadata endpoints: reachable from inside clouds and full of credentials.
pub const METADATA_ADDRESSES: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
];

/// Why a target was refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "refused by rule `scan.allow`: {address} is outside the scan scope ({allowed}); add it \
         to SECOPS_SCAN_ALLOW to permit it"
    )]
    OutOfScope { address: IpAddr, allowed: String },
    #[error(
        "refused by rule `metadata`: {address} is a cloud metadata endpoint; list it exactly \
         in SECOPS_SCAN_ALLOW (e.g. {address}/32) if you really mean to scan it"
    )]
    Metadata { address: IpAddr },
    #[error(
        "refused by rule `cidr_size`: {cidr} holds {size} addresses; at most {MAX_CIDR_ADDRESSES} \
         per scan"
    )]
    CidrTooLarge { cidr: String, size: u128 },
    #[error("refused by rule `resolve`: {host} did not resolve to any address ({reason})")]
    Unresolved { host: String, reason: String },
    #[error("invalid target `{target}`: {reason}; use a hostname, an IP address or a CIDR")]
    Invalid { target: String, reason: String },
}

/// The parsed allowlist.
#[derive(Debug, Clone)]
pub struct Scope {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
    text: String,
}

/// What a target became after the scope check: the exact addresses the scan may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub target: String,
    pub addresses: Vec<IpAddr>,
}

impl Scope {
    /// Parse allowlist entries (CIDRs, addresses, hostnames), as validated by the config.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut nets = Vec::new();
        let mut hosts = Vec::new();
        for e in entries {
            let e = e.trim();
            if let Ok(net) = e.parse::<IpNet>() {
                nets.push(net.trunc());
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                nets.push(IpNet::from(ip));
            } else if is_hostname(e) {
                hosts.push(e.trim_end_matches('.').to_ascii_lowercase());
            } else if let Some((ip, _)) = e.split_once('/')
                && let Ok(ip) = ip.parse::<IpAddr>()
            {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                return Err(format!("`{e}`: the prefix length must be 0..={max}"));
            } else {
                return Err(format!(
                    "`{e}` is neither a CIDR, an IP address nor a hostname"
                ));
            }
        }
        Ok(Self {
            nets,
            hosts,
            text: entries.join(","),
        })
    }

    /// No entry at all.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.hosts.is_empty()
    }

    /// The entries as configured, comma-separated (for messages).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Some CIDR or address entry contains `addr` (metadata endpoints not treated apart).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.nets.iter().any(|n| n.contains(&addr))
    }

    /// An entry is exactly this one address (`169.254.169.254` or `169.254.169.254/32`).
    pub fn lists_exactly(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.nets
            .iter()
            .any(|n| n.prefix_len() == n.max_prefix_len() && n.addr() == addr)
    }

    /// A hostname entry names `host` (case and a trailing dot ignored).
    pub fn lists_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    /// Is `addr` allowed? Metadata addresses only when an entry is exactly that host.
    pub fn check_address(&self, addr: IpAddr) -> Result<(), Refusal> {
        let addr = canonical(addr);
        if is_metadata(addr) {
            return if self.lists_exactly(addr) {
                Ok(())
            } else {
                Err(Refusal::Metadata { address: addr })
            };
        }
        if self.contains(addr) {
            Ok(())
        } else {
            Err(Refusal::OutOfScope {
                address: addr,
                allowed: self.text.clone(),
            })
        }
    }

    /// Resolve and check a target. `resolve` is called at most once, for hostnames; the
    /// returned addresses are the only ones the scan may use.
    pub async fn pin<F, Fut>(&self, target: &str, resolve: F) -> Result<Pinned, Refusal>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<Vec<IpAddr>>>,
    {
        let t = target.trim();
        let invalid = |reason: &str| Refusal::Invalid {
            target: crate::util::sanitize_untrusted(target.as_bytes(), 80),
            reason: reason.to_string(),
        };
        if t.is_empty() {
            return Err(invalid("empty"));
        }
        let addresses = if t.contains('/') {
            let net: IpNet = t.parse().map_err(|_| invalid("not a valid CIDR"))?;
            let bits = net.max_prefix_len() - net.prefix_len();
            let size: u128 = if bits >= 128 {
                u128::MAX
            } else {
                1u128 << bits
            };
            if size > MAX_CIDR_ADDRESSES {
                return Err(Refusal::CidrTooLarge {
                    cidr: net.to_string(),
                    size,
                });
            }
            net.hosts().collect::<Vec<_>>()
        } else if let Ok(ip) = t
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            vec![ip]
        } else if is_hostname(t) {
            let host = t.trim_end_matches('.').to_ascii_lowercase();
            let mut addrs = resolve(host.clone())
                .await
                .map_err(|e| Refusal::Unresolved {
                    host: host.clone(),
                    reason: e.kind().to_string(),
                })?;
            addrs.sort();
            addrs.dedup();
            if addrs.is_empty() {
                return Err(Refusal::Unresolved {
                    host,
                    reason: "no addresses".into(),
                });
            }
            // A listed hostname permits its own addresses; metadata endpoints never slip
            // in through a name.
            if self.hosts.contains(&host) {
                for a in &addrs {
                    if METADATA_ADDRESSES.contains(&canonical(*a)) {
                        self.check_address(*a)?;
                    }
                }
                return Ok(Pinned {
                    target: host,
                    addresses: addrs,
                });
            }
            addrs
        } else {
            return Err(invalid("contains characters a hostname cannot have"));
        };
        for a in &addresses {
            self.check_address(*a)?;
        }
        Ok(Pinned {
            target: t.to_string(),
            addresses,
        })
    }
}

/// A cloud metadata endpoint (also written as IPv4-mapped IPv6).
pub fn is_metadata(a: IpAddr) -> bool {
    METADATA_ADDRESSES.contains(&canonical(a))
}

/// IPv4-mapped IPv6 (`::ffff:169.254.169.254`) is the IPv4 address it maps.
pub fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

fn is_hostname(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(entries: &[&str]) -> Scope {
        Scope::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    async fn no_dns(_: String) -> std::io::Result<Vec<IpAddr>> {
        panic!("must not resolve")
    }

    #[tokio::test]
    async fn default_scope_is_loopback_only() {
        let s = scope(&["127.0.0.0/8", "::1"]);
        assert!(s.pin("127.0.0.77", no_dns).await.is_ok());
        assert!(s.pin("::1", no_dns).await.is_ok());
        let e = s.pin("192.0.2.10", no_dns).await.unwrap_err();
        assert!(matches!(e, Refusal::OutOfScope { .. }));
        assert!(e.to_string().contains("`scan.allow`"));
    }

    #[tokio::test]
    async fn metadata_is_refused_unless_listed_exactly() {
        let wide = scope(&["0.0.0.0/0", "::/0"]);
        for m in [
            "169.254.169.254",
            "fd00:ec2::254",
            "100.100.100.200",
            "::ffff:169.254.169.254",
        ] {
            let e = wide.pin(m, no_dns).await.unwrap_err();
            assert!(matches!(e, Refusal::Metadata { .. }), "{m}: {e}");
            assert!(e.to_string().contains("`metadata`"));
        }
        let e = wide.pin("169.254.169.0/24", no_dns).await.unwrap_err();
        assert!(matches!(e, Refusal::Metadata { .. }));
        let exact = scope(&["169.254.169.254/32"]);
        assert!(exact.pin("169.254.169.254", no_dns).await.is_ok());
    }

    #[tokio::test]
    async fn cidr_targets_are_capped_and_fully_in_scope() {
        let s = scope(&["10.0.0.0/8"]);
        let p = s.pin("10.1.2.0/24", no_dns).await.unwrap();
        assert_eq!(p.addresses.len(), 254);
        let e = s.pin("10.1.0.0/23", no_dns).await.unwrap_err();
        assert!(matches!(e, Refusal::CidrTooLarge { size: 512, .. }), "{e}");
        let e = s.pin("10.255.255.0/23", no_dns).await.unwrap_err();
        assert!(matches!(e, Refusal::CidrTooLarge { .. }));
        let e = scope(&["10.1.2.0/25"])
            .pin("10.1.2.0/24", no_dns)
            .await
            .unwrap_err();
        assert!(matches!(e, Refusal::OutOfScope { .. }), "half outside: {e}");
    }

    #[tokio::test]
    async fn hostnames_resolve_once_and_every_address_must_be_in_scope() {
        let s = scope(&["127.0.0.0/8"]);
        let p = s
            .pin("svc.example", |h| async move {
                assert_eq!(h, "svc.example");
                Ok(vec![
                    "127.0.0.5".parse().unwrap(),
                    "127.0.0.5".parse().unwrap(),
                ])
            })
            .await
            .unwrap();
        assert_eq!(p.addresses, vec!["127.0.0.5".parse::<IpAddr>().unwrap()]);
        // One address outside: the whole target is refused.
        let e = s
            .pin("rebind.example", |_| async {
                Ok(vec![
                    "127.0.0.5".parse().unwrap(),
                    "192.0.2.1".parse().unwrap(),
                ])
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Refusal::OutOfScope { .. }));
        // A listed hostname permits its addresses, never a metadata endpoint.
        let named = scope(&["scanme.example"]);
        assert!(
            named
                .pin("scanme.example", |_| async {
                    Ok(vec!["192.0.2.7".parse().unwrap()])
                })
                .await
                .is_ok()
        );
        let e = named
            .pin("scanme.example", |_| async {
                Ok(vec!["169.254.169.254".parse().unwrap()])
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Refusal::Metadata { .. }));
        let e = s
            .pin("nx.example", |_| async {
                Err(std::io::ErrorKind::NotFound.into())
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("`resolve`"));
    }

    #[tokio::test]
    async fn malformed_targets_are_refused_without_lookups() {
        let s = scope(&["127.0.0.0/8"]);
        for t in [
            "",
            "exa mple",
            "1.2.3.4/33",
            "-bad.example",
            "a..b",
            "http://x/",
        ] {
            let e = s.pin(t, no_dns).await.unwrap_err();
            assert!(matches!(e, Refusal::Invalid { .. }), "{t:?}: {e}");
        }
    }
}
