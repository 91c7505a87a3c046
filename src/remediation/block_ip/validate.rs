//! What block_ip refuses before any plan: malformed addresses, addresses that must never be
//! blocked (loopback, unspecified, multicast and broadcast, protected ranges, the manager's
//! own address, also inside an IPv6 address that embeds an IPv4 one), agent lists that are
//! empty, malformed, too long, or name every agent where policy forbids that.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{BlockArgs, BlockError, COMMAND, Prepared};
use crate::checks::ArgError;
use crate::context::AppContext;

/// Validate the address, the agent list and policy; compute the steps.
pub async fn prepare(ctx: &AppContext, args: &BlockArgs) -> Result<Prepared, BlockError> {
    if args.reason.trim().is_empty() {
        return Err(
            ArgError::new("reason", "must say why (it is recorded in the audit log)").into(),
        );
    }
    if args.ip != args.ip.trim() && !args.ip.trim().is_empty() {
        return Err(ArgError::new(
            "ip",
            "has surrounding spaces: values are exact; give one address such as 203.0.113.7",
        )
        .into());
    }
    let ip: IpAddr = args.ip.parse().map_err(|_| {
        ArgError::new(
            "ip",
            format!(
                "`{}` is not an IPv4 or IPv6 address; give one address such as 203.0.113.7 or \
                 2001:db8::7 (no CIDR, no hostname)",
                crate::util::quote_untrusted(&args.ip, 64)
            ),
        )
    })?;
    let ip = ip.to_canonical();
    // An IPv6 address that carries an IPv4 one is checked as that IPv4 too.
    let embedded = embedded_ipv4(ip);
    let never = |why: &str| {
        let what = match embedded {
            Some((v4, form)) => format!("{ip} embeds IPv4 {v4} ({form}), which"),
            None => ip.to_string(),
        };
        Err(ArgError::new("ip", format!("{what} is {why} and is never blocked")).into())
    };
    let checked: Vec<IpAddr> = std::iter::once(ip)
        .chain(embedded.map(|(v4, _)| IpAddr::V4(v4)))
        .collect();
    for &a in &checked {
        if a.is_loopback() {
            return never("a loopback address");
        }
        if a.is_unspecified() {
            return never("the unspecified address");
        }
        if a.is_multicast() || a == IpAddr::from([255, 255, 255, 255]) {
            return never("a multicast or broadcast address");
        }
        if let Some(net) = ctx
            .config
            .remediation
            .protected_cidrs
            .iter()
            .find(|n| n.contains(&a))
        {
            return never(&format!(
                "inside protected range {net} ([remediation.block_ip] protected_cidrs)"
            ));
        }
    }
    let manager = ctx.wazuh.as_ref().ok_or(BlockError::NotConfigured)?;
    let own = manager_addresses(manager.base_url()).await;
    if checked.iter().any(|a| own.contains(a)) {
        return never("the Wazuh manager's own address");
    }
    let policy = &ctx.config.remediation;
    let agents = if args.all_agents {
        if !args.agents.is_empty() {
            return Err(ArgError::new(
                "agents",
                "must be empty when all_agents is true (give one or the other)",
            )
            .into());
        }
        if !policy.allow_all_agents {
            return Err(ArgError::new(
                "all_agents",
                "is not allowed by policy ([remediation.block_ip] allow_all_agents = false); \
                 list the agent ids instead",
            )
            .into());
        }
        None
    } else {
        if args.agents.is_empty() {
            return Err(ArgError::new(
                "agents",
                "is empty, which Wazuh would take as every agent; list agent ids (e.g. \
                 [\"001\"]), or pass all_agents: true where policy allows it",
            )
            .into());
        }
        let max = policy.block_ip_max_agents;
        let mut seen = BTreeSet::new();
        for a in &args.agents {
            if a.len() < 3 || a.len() > 8 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ArgError::new(
                    "agents",
                    format!(
                        "`{}` is not an agent id; agent ids are digits such as \"001\"",
                        crate::util::quote_untrusted(a, 16)
                    ),
                )
                .into());
            }
            seen.insert(a.clone());
            if seen.len() > max {
                return Err(ArgError::new(
                    "agents",
                    format!(
                        "lists more than {max} agents; at most {max} per call \
                         ([remediation.block_ip] max_agents)"
                    ),
                )
                .into());
            }
        }
        // A list naming every agent of the manager is `all_agents` under another name.
        let every = every_agent(manager, seen.len()).await?;
        if !every.is_empty() && every.iter().all(|a| seen.contains(a)) {
            if !policy.allow_all_agents {
                return Err(ArgError::new(
                    "agents",
                    format!(
                        "names every agent of the manager ({}), which is the same as \
                         all_agents and is not allowed by policy ([remediation.block_ip] \
                         allow_all_agents = false); list only the agents that must drop the \
                         address",
                        every.len()
                    ),
                )
                .into());
            }
            None
        } else {
            Some(seen.into_iter().collect::<Vec<_>>())
        }
    };
    let target = agents.as_ref().map_or("every agent".to_string(), |a| {
        format!("agent(s) {}", a.join(", "))
    });
    let steps = vec![
        format!(
            "PUT /active-response on {}: command `{COMMAND}` with alert.data.srcip = {ip} to {target}",
            manager.base_url()
        ),
        "report each agent's result from the response (failed_items: agent missing, not \
         active, ...)"
            .to_string(),
    ];
    Ok(Prepared { ip, agents, steps })
}

/// The IPv4 address an IPv6 address embeds, with the form: NAT64 (64:ff9b::/96, RFC 6052),
/// IPv4-compatible (::/96, deprecated; not :: or ::1). IPv4-mapped (::ffff:0:0/96) is
/// already made IPv4 by `to_canonical`; it is recognised here too.
pub fn embedded_ipv4(ip: IpAddr) -> Option<(std::net::Ipv4Addr, &'static str)> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let s = v6.segments();
    let low = std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((low, "NAT64 64:ff9b::/96")),
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((low, "IPv4-mapped ::ffff:0:0/96")),
        [0, 0, 0, 0, 0, 0, 0, 0] | [0, 0, 0, 0, 0, 0, 0, 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some((low, "IPv4-compatible ::/96")),
        _ => None,
    }
}

/// Every agent id of the manager except 000 (the manager itself), to recognise a list of
/// `listed` ids that names them all (empty when the manager has more agents than that).
/// Fails closed: a manager that cannot list its agents refuses the plan.
async fn every_agent(
    manager: &crate::wazuh::ManagerClient,
    listed: usize,
) -> Result<BTreeSet<String>, BlockError> {
    let failed = |e: crate::wazuh::WazuhError| {
        BlockError::from(ArgError::new(
            "agents",
            format!(
                "cannot be checked: listing the manager's agents failed ({e}); try again when \
                 the Wazuh API answers"
            ),
        ))
    };
    // Counting first spares listing a large estate for a short list.
    let total = manager
        .agents_page(None, 1, 0)
        .await
        .map_err(failed)?
        .total_affected;
    if total > listed as u64 + 1 {
        return Ok(BTreeSet::new());
    }
    let agents = manager.agents(None, listed + 1).await.map_err(failed)?;
    Ok(agents
        .into_iter()
        .map(|a| a.id)
        .filter(|id| id != "000")
        .collect())
}

/// Addresses the manager URL's host resolves to.
async fn manager_addresses(base_url: &str) -> Vec<IpAddr> {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return Vec::new();
    };
    let Some(host) = url.host_str() else {
        return Vec::new();
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip.to_canonical()];
    }
    let port = url.port_or_known_default().unwrap_or(55000);
    tokio::net::lookup_host((host, port))
        .await
        .map(|it| it.map(|a| a.ip().to_canonical()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_manager_address_comes_from_its_url() {
        let v4 = manager_addresses("https://192.0.2.5:55000").await;
        assert_eq!(v4, vec!["192.0.2.5".parse::<IpAddr>().unwrap()]);
        let v6 = manager_addresses("https://[2001:db8::5]:55000/").await;
        assert_eq!(v6, vec!["2001:db8::5".parse::<IpAddr>().unwrap()]);
        let named = manager_addresses("https://localhost:55000").await;
        assert!(named.iter().all(|ip| ip.is_loopback()) && !named.is_empty());
    }

    #[test]
    fn embedded_ipv4_forms_are_recognised() {
        let e = |s: &str| embedded_ipv4(s.parse().unwrap()).map(|(v4, _)| v4.to_string());
        assert_eq!(e("64:ff9b::7f00:1").as_deref(), Some("127.0.0.1"));
        assert_eq!(e("64:ff9b::a01:203").as_deref(), Some("10.1.2.3"));
        assert_eq!(e("64:ff9b::10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(e("::ffff:10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(e("::7f00:1").as_deref(), Some("127.0.0.1"));
        assert_eq!(e("::"), None);
        assert_eq!(e("::1"), None);
        assert_eq!(e("2001:db8::a01:203"), None);
        assert_eq!(e("64:ff9b:1::a01:203"), None);
        assert_eq!(e("10.1.2.3"), None);
    }
}
