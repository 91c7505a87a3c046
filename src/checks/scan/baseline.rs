//! The scan baseline: compare the open ports with the stored previous scan of the same
//! target, then store this scan as the new baseline.

use std::collections::HashSet;
use std::net::IpAddr;

use super::engine::PortState;
use super::{Changes, HostScan, PortRef, ScanPlan, ports};
use crate::store::Store;

/// Compare with the previous scan of the same target, then store this one as the new
/// baseline. Ports that were open and are inconclusive now stay open in the baseline (their
/// state is unknown, not closed).
pub(super) fn baseline(
    store: &Store,
    target: &str,
    plan: &ScanPlan,
    addresses: &[String],
    hosts: &[HostScan],
    results: &std::collections::HashMap<(IpAddr, u16), PortState>,
) -> Option<Changes> {
    let key = target.to_ascii_lowercase();
    let previous = match store.last_scan(&key) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the scan baseline");
            None
        }
    };
    let mut open_now: Vec<(String, u16)> = hosts
        .iter()
        .flat_map(|h| h.open.iter().map(move |p| (h.address.clone(), p.port)))
        .collect();
    let state_of = |address: &str, port: u16| {
        address
            .parse::<IpAddr>()
            .ok()
            .and_then(|a| results.get(&(a, port)).copied())
    };
    let changes = previous.as_ref().map(|prev| {
        let prev_ports: HashSet<u16> = ports::parse(&prev.ports_spec)
            .map(|p| p.0.into_iter().collect())
            .unwrap_or_default();
        let prev_addresses: HashSet<&str> = prev.addresses.iter().map(String::as_str).collect();
        let prev_open: HashSet<(&str, u16)> =
            prev.open.iter().map(|(a, p)| (a.as_str(), *p)).collect();
        let mut opened: Vec<PortRef> = open_now
            .iter()
            .filter(|(a, p)| {
                prev_ports.contains(p)
                    && prev_addresses.contains(a.as_str())
                    && !prev_open.contains(&(a.as_str(), *p))
            })
            .map(|(a, p)| PortRef {
                address: a.clone(),
                port: *p,
            })
            .collect();
        let mut closed: Vec<PortRef> = prev
            .open
            .iter()
            .filter(|(a, p)| {
                matches!(
                    state_of(a, *p),
                    Some(PortState::Closed) | Some(PortState::Filtered)
                )
            })
            .map(|(a, p)| PortRef {
                address: a.clone(),
                port: *p,
            })
            .collect();
        opened.sort_by(|x, y| (&x.address, x.port).cmp(&(&y.address, y.port)));
        closed.sort_by(|x, y| (&x.address, x.port).cmp(&(&y.address, y.port)));
        Changes {
            opened,
            closed,
            previous_scan_at: prev.scanned_at.clone(),
        }
    });
    if let Some(prev) = &previous {
        for (a, p) in &prev.open {
            if state_of(a, *p) == Some(PortState::Inconclusive) {
                open_now.push((a.clone(), *p));
            }
        }
    }
    if let Err(e) = store.save_scan(
        &key,
        &crate::util::now_rfc3339(),
        &plan.ports_spec,
        addresses,
        &open_now,
    ) {
        tracing::warn!(error = %e, "cannot store the scan baseline");
    }
    changes
}
