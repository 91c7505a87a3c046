//! The `scan` monitor kind: a scheduled scan_host of each target (default `schedule =
//! "0 2 * * *"`), targets checked against the scan scope at load. It alerts on the scan's
//! changes since the stored baseline: a newly opened port is a warning (critical when the
//! risk classifier flags its service), a port closed since the baseline is info. A newly
//! opened port stays alerting while it is open until someone acknowledges it (the next
//! scan's baseline already holds it, so the run carries the open alert forward); it
//! resolves when the port closes or after the acknowledgement. A closed port is an event
//! of one run: the next complete scan no longer reports it, so it resolves.

use std::net::IpAddr;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{KeyError, KindKeys, KindRun};
use crate::alerts::{Level, Observation};
use crate::checks::scan::{self, ScanArgs, ScanReport, Scope, ports::PortSpec};
use crate::context::AppContext;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanSettings {
    pub targets: Vec<String>,
    /// scan_host's port spec (`top100` by default).
    pub ports: String,
}

impl ScanSettings {
    pub fn parse(k: &mut KindKeys, scope: &Scope) -> Result<Self, KeyError> {
        let targets = k
            .strings("targets")?
            .ok_or_else(|| k.error("targets", "is required: list the hosts to scan"))?;
        if targets.is_empty() || targets.len() > 64 {
            return Err(k.error("targets", "must list 1 to 64 targets"));
        }
        let ports = k.string("ports")?.unwrap_or_else(|| "top100".into());
        for (i, t) in targets.iter().enumerate() {
            let key = format!("targets[{i}]");
            args(t, &ports).validate().map_err(|e| {
                k.error(if e.argument == "ports" { "ports" } else { &key }, e.reason)
            })?;
            in_scope(t, scope).map_err(|p| k.error(&key, p))?;
        }
        Ok(ScanSettings { targets, ports })
    }
}

fn args(target: &str, ports: &str) -> ScanArgs {
    ScanArgs {
        target: target.to_string(),
        ports: Some(PortSpec::from(ports)),
        detect_services: Some(true),
        timeout_ms: None,
    }
}

/// A target must be inside the scan scope now, not only when the scan runs at 02:00.
fn in_scope(target: &str, scope: &Scope) -> Result<(), String> {
    let outside = || {
        format!(
            "`{}` is outside the scan scope (scan.allow: {}); add it there or scan another target",
            crate::util::quote_untrusted(target, 80),
            scope.text()
        )
    };
    if let Ok(ip) = target.parse::<IpAddr>() {
        return scope.check_address(ip).map_err(|_| outside());
    }
    if let Ok(net) = target.parse::<ipnet::IpNet>() {
        for ip in [net.network(), net.broadcast()] {
            scope.check_address(ip).map_err(|_| outside())?;
        }
        return Ok(());
    }
    if scope.lists_host(target) {
        Ok(())
    } else {
        Err(outside())
    }
}

pub async fn observe(ctx: &AppContext, monitor: &str, s: &ScanSettings) -> Result<KindRun, String> {
    let mut run = KindRun {
        observations: Vec::new(),
        complete: true,
    };
    let cancel = CancellationToken::new();
    let mut reports = Vec::with_capacity(s.targets.len());
    for t in &s.targets {
        let report = scan::run(&ctx.scan_deps(), &args(t, &s.ports), &cancel, &|_, _| {})
            .await
            .map_err(|e| format!("scan of {}: {e}", crate::util::quote_untrusted(t, 80)))?;
        let mapped = map_report(&report);
        run.complete &= mapped.complete;
        run.observations.extend(mapped.observations);
        reports.push(report);
    }
    let open = ctx
        .store
        .alerts_open()
        .map_err(|e| format!("the state database could not be read: {e}"))?;
    carry_open_ports(&mut run, monitor, &open, &reports);
    Ok(run)
}

/// Keep every unacknowledged `port_opened` alert of `monitor` whose port is still open in
/// this run's reports: the baseline moved on, the port did not close, nobody said it is
/// expected.
pub fn carry_open_ports(
    run: &mut KindRun,
    monitor: &str,
    open_alerts: &[crate::store::alerts::AlertRow],
    reports: &[ScanReport],
) {
    for a in open_alerts {
        if a.monitor != monitor || a.code != "port_opened" || a.acknowledged_ms.is_some() {
            continue;
        }
        let (Some(address), Some(port)) = (a.subject.get("address"), a.subject.get("port")) else {
            continue;
        };
        let still_open = reports
            .iter()
            .flat_map(|r| &r.hosts)
            .any(|h| &h.address == address && h.open.iter().any(|o| o.port.to_string() == *port));
        let seen = run
            .observations
            .iter()
            .any(|o| o.code == "port_opened" && o.subject == a.subject);
        if still_open && !seen {
            run.observations.push(Observation {
                code: a.code.clone(),
                subject: a.subject.clone(),
                level: Some(a.level),
                title: a.title.clone(),
                summary: a.summary.clone(),
                value: a.value.clone(),
            });
        }
    }
}

pub fn map_report(r: &ScanReport) -> KindRun {
    let mut observations = Vec::new();
    if let Some(ch) = &r.changes_since_last {
        for p in &ch.opened {
            let open = r
                .hosts
                .iter()
                .filter(|h| h.address == p.address)
                .flat_map(|h| &h.open)
                .find(|o| o.port == p.port);
            let service = open.map_or("unknown", |o| o.service.as_str());
            let risk = open.and_then(|o| o.risk.as_deref());
            let mut summary = format!(
                "Port {} on {} is open now and was not in the scan of {} (service: {service}).",
                p.port, p.address, ch.previous_scan_at
            );
            if let Some(risk) = risk {
                summary.push_str(&format!(" Risk: {risk}."));
            }
            summary.push_str(" If it is not expected, find the process (ss -tlnp) and close it.");
            observations.push(Observation {
                code: "port_opened".into(),
                subject: port_subject(&p.address, p.port),
                level: Some(if risk.is_some() {
                    Level::Critical
                } else {
                    Level::Warning
                }),
                title: format!("New open port {}:{} ({service})", p.address, p.port),
                summary,
                value: Some(service.to_string()),
            });
        }
        for p in &ch.closed {
            observations.push(Observation {
                code: "port_closed".into(),
                subject: port_subject(&p.address, p.port),
                level: Some(Level::Info),
                title: format!("Port {}:{} closed since the last scan", p.address, p.port),
                summary: format!(
                    "Port {} on {} was open in the scan of {} and is closed or filtered now.",
                    p.port, p.address, ch.previous_scan_at
                ),
                value: None,
            });
        }
    }
    KindRun {
        observations,
        complete: r.complete,
    }
}

fn port_subject(address: &str, port: u16) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        ("address".to_string(), address.to_string()),
        ("port".to_string(), port.to_string()),
    ])
}
