//! scan_host: a scope-gated TCP connect scanner. `run` validates the arguments, pins the
//! target to in-scope addresses before any packet, scans with the engine, names services
//! (TLS details through check_cert's module), adds risk notes and compares the open ports
//! with the stored baseline of the same target.

pub mod engine;
pub mod ports;
pub mod risk;
pub mod scope;
pub mod service;

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::checks::cert::{CertChecker, CertOptions, CertStatus, Target};
use crate::checks::{ArgError, Finding, Severity, Summary};
use crate::store::Store;
use engine::{EngineOptions, PortState};
pub use scope::{Refusal, Scope};

/// Largest `timeout_ms`.
pub const MAX_TIMEOUT_MS: i64 = 30_000;
/// Open ports per scan that get service detection (the rest are named by port).
const MAX_DETECTED: usize = 512;
/// Service detections in flight at once.
const DETECT_CONCURRENCY: usize = 64;
/// Time budget of one service detection.
const DETECT_TIMEOUT: Duration = Duration::from_millis(2000);
/// Time budget of one TLS handshake for certificate details.
const TLS_TIMEOUT: Duration = Duration::from_millis(3000);
/// Time budget for resolving a hostname target.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `scan_host`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanArgs {
    /// Hostname, IP address, or CIDR of at most 256 addresses. Must be inside the scan scope
    /// (`SECOPS_SCAN_ALLOW`, loopback only by default).
    pub target: String,
    /// `top100` (default), `top1000`, `all`, one port number, or ports and ranges like
    /// `"22,80,8000-8100"` or `[22, 80, "8000-8100"]`.
    #[serde(default)]
    #[schemars(extend("default" = "top100"))]
    pub ports: Option<ports::PortSpec>,
    /// Read banners and name services on open ports, with TLS certificate details
    /// (default true).
    #[serde(default)]
    #[schemars(extend("default" = true))]
    pub detect_services: Option<bool>,
    /// Per-connection timeout in milliseconds (1 to 30000). Default: adaptive, from the
    /// measured round-trip time.
    #[serde(default)]
    #[schemars(range(min = 1, max = 30000))]
    pub timeout_ms: Option<i64>,
}

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

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    InvalidArgument(#[from] ArgError),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// What a scan needs from the application.
pub struct ScanDeps<'a> {
    pub scope: &'a Scope,
    pub store: Option<&'a Store>,
    pub cert: &'a CertChecker,
    /// Connection budget shared by concurrent scans (sized from the open-file limit).
    pub budget: Arc<Semaphore>,
}

/// Validated arguments.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub target: String,
    pub ports_spec: String,
    pub ports: Vec<u16>,
    pub detect_services: bool,
    pub timeout: Option<Duration>,
}

impl ScanArgs {
    /// Check every argument; the error names the argument and what is allowed.
    pub fn validate(&self) -> Result<ScanPlan, ArgError> {
        let target = self.target.as_str();
        if target != target.trim() && !target.trim().is_empty() {
            return Err(ArgError::new(
                "target",
                "has surrounding spaces: values are exact; give a hostname, an IP address or a \
                 CIDR of at most 256 addresses",
            ));
        }
        if target.trim().is_empty() {
            return Err(ArgError::new(
                "target",
                "empty; give a hostname, an IP address or a CIDR of at most 256 addresses",
            ));
        }
        if target.len() > 253 {
            return Err(ArgError::new(
                "target",
                "longer than 253 characters; give a hostname, an IP address or a CIDR",
            ));
        }
        let spec = self.ports.as_ref().map_or("top100", |p| p.as_str());
        let ports = ports::parse(spec).map_err(|reason| ArgError::new("ports", reason))?;
        let timeout = match self.timeout_ms {
            None => None,
            Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => {
                Some(Duration::from_millis(ms as u64))
            }
            Some(ms) => {
                return Err(ArgError::new(
                    "timeout_ms",
                    format!(
                        "{ms} is out of range; allowed 1 to {MAX_TIMEOUT_MS} milliseconds, or \
                         leave it out for an adaptive timeout"
                    ),
                ));
            }
        };
        Ok(ScanPlan {
            target: target.to_string(),
            ports_spec: crate::util::sanitize_untrusted(spec.as_bytes(), 200),
            ports: ports.0,
            detect_services: self.detect_services.unwrap_or(true),
            timeout,
        })
    }
}

/// Per-caller limit on scans started (a scan is expensive for both ends).
pub struct ScanLimiter {
    limiter: governor::RateLimiter<
        String,
        governor::state::keyed::DefaultKeyedStateStore<String>,
        governor::clock::DefaultClock,
    >,
    per_minute: u32,
}

impl ScanLimiter {
    pub fn new(per_minute: u32) -> Self {
        let n = std::num::NonZeroU32::new(per_minute.max(1)).expect("at least 1");
        Self {
            limiter: governor::RateLimiter::keyed(governor::Quota::per_minute(n)),
            per_minute,
        }
    }

    /// `Err(wait)` when `caller` has used up its scans for now.
    pub fn check(&self, caller: &str) -> Result<(), String> {
        use governor::clock::Clock;
        self.limiter.check_key(&caller.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            format!(
                "scan rate limit: at most {} scans per minute per caller (scan.rate_per_minute); \
                 try again in {} s",
                self.per_minute,
                wait.as_secs() + 1
            )
        })
    }
}

/// A connection budget for all scans of this process, sized from the open-file limit.
pub fn connection_budget() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(engine::default_concurrency()))
}

/// Resolve a hostname once (bounded in time).
pub async fn resolve(host: String) -> std::io::Result<Vec<IpAddr>> {
    let lookup = tokio::net::lookup_host((host.as_str(), 0));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(addrs) => Ok(addrs?.map(|sa| sa.ip()).collect()),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "lookup timed out",
        )),
    }
}

/// Run a scan. `progress(done, total)` reports probes finished.
pub async fn run(
    deps: &ScanDeps<'_>,
    args: &ScanArgs,
    cancel: &CancellationToken,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<ScanReport, ScanError> {
    run_plan(deps, &args.validate()?, cancel, progress).await
}

/// Run a scan from already validated arguments.
pub async fn run_plan(
    deps: &ScanDeps<'_>,
    plan: &ScanPlan,
    cancel: &CancellationToken,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<ScanReport, ScanError> {
    // Scope before any packet: the addresses pinned here are the only ones touched.
    let pinned = deps.scope.pin(&plan.target, resolve).await?;
    run_pinned(
        deps,
        plan,
        &pinned.target,
        &pinned.addresses,
        cancel,
        progress,
    )
    .await
}

async fn run_pinned(
    deps: &ScanDeps<'_>,
    plan: &ScanPlan,
    target: &str,
    addresses: &[IpAddr],
    cancel: &CancellationToken,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<ScanReport, ScanError> {
    let started = Instant::now();
    let opts = EngineOptions {
        timeout: plan.timeout,
        budget: Some(deps.budget.clone()),
        ..EngineOptions::default()
    };
    use crate::calllog::{Level, note};
    note(
        Level::Info,
        "scan_host",
        format!(
            "scanning {} {} on {} {}",
            plan.ports.len(),
            crate::util::plural(plan.ports.len() as u64, "port", "ports"),
            addresses.len(),
            crate::util::plural(addresses.len() as u64, "address", "addresses"),
        ),
    );
    let outcome = engine::scan(addresses, &plan.ports, &opts, cancel, progress).await;
    if cancel.is_cancelled() {
        note(
            Level::Notice,
            "scan_host",
            "scan cancelled; reporting what was found",
        );
    }

    // Group by host.
    let mut per_host: BTreeMap<IpAddr, Vec<(u16, PortState)>> = BTreeMap::new();
    for (&(addr, port), &state) in &outcome.results {
        per_host.entry(addr).or_default().push((port, state));
    }
    let open: Vec<SocketAddr> = per_host
        .iter()
        .flat_map(|(a, ps)| {
            ps.iter()
                .filter(|(_, s)| *s == PortState::Open)
                .map(move |(p, _)| SocketAddr::new(*a, *p))
        })
        .collect();
    let sni_name =
        (!target.contains('/') && target.parse::<IpAddr>().is_err()).then(|| target.to_string());
    note(
        Level::Info,
        "scan_host",
        format!(
            "port scan done in {} ms: {} open",
            started.elapsed().as_millis(),
            open.len()
        ),
    );
    let details = if plan.detect_services && !cancel.is_cancelled() {
        if !open.is_empty() {
            note(
                Level::Info,
                "scan_host",
                format!(
                    "detecting services on {} open {}",
                    open.len(),
                    crate::util::plural(open.len() as u64, "port", "ports")
                ),
            );
        }
        detect_all(deps.cert, &open, sni_name.as_deref(), cancel).await
    } else {
        BTreeMap::new()
    };

    let mut hosts = Vec::new();
    let mut findings = Vec::new();
    let mut inconclusive_total = 0;
    for &addr in addresses {
        let mut states = per_host.remove(&addr).unwrap_or_default();
        states.sort_unstable_by_key(|(p, _)| *p);
        let mut host = HostScan {
            address: addr.to_string(),
            open: Vec::new(),
            closed_count: 0,
            filtered: String::new(),
            filtered_count: 0,
            inconclusive_count: 0,
        };
        let mut filtered = Vec::new();
        for (port, state) in states {
            match state {
                PortState::Open => {
                    let sa = SocketAddr::new(addr, port);
                    let (service, banner, tls) = match details.get(&sa) {
                        Some(d) => (d.0.name.clone(), d.0.banner.clone(), d.1.clone()),
                        None => (
                            service::name_by_port(port).unwrap_or("unknown").to_string(),
                            None,
                            None,
                        ),
                    };
                    let note = risk::assess(port, &service, addr);
                    if let Some(tls) = &tls {
                        findings.extend(risk::tls_findings(&sa, tls));
                    }
                    host.open.push(OpenPort {
                        port,
                        service,
                        banner,
                        tls,
                        risk: note.as_ref().map(|n| n.why.clone()),
                    });
                    if let Some(n) = note {
                        findings.push(n.finding(&sa));
                    }
                }
                PortState::Closed => host.closed_count += 1,
                PortState::Filtered => filtered.push(port),
                PortState::Inconclusive => host.inconclusive_count += 1,
            }
        }
        host.filtered_count = filtered.len();
        host.filtered = compress_ranges(&filtered);
        inconclusive_total += host.inconclusive_count;
        hosts.push(host);
    }
    let mut findings = risk::group(findings);
    if outcome.cancelled || inconclusive_total > 0 {
        findings.push(
            Finding::new(
                Severity::Warning,
                "scan_incomplete",
                format!(
                    "{inconclusive_total} port(s) could not be decided{}",
                    if outcome.cancelled {
                        " because the scan was cancelled"
                    } else {
                        " (local connection resources ran out)"
                    }
                ),
            )
            .with_remediation("Run the scan again, with fewer ports or a smaller target."),
        );
    }

    let address_strings: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
    let changes_since_last = match deps.store {
        Some(store) if !outcome.cancelled => baseline(
            store,
            target,
            plan,
            &address_strings,
            &hosts,
            &outcome.results,
        ),
        _ => None,
    };

    Ok(ScanReport {
        target: target.to_string(),
        addresses: address_strings,
        ports: plan.ports_spec.clone(),
        ports_scanned: plan.ports.len(),
        duration_ms: started.elapsed().as_millis() as u64,
        timeout_ms: outcome.final_timeout.as_millis() as u64,
        complete: !outcome.cancelled && inconclusive_total == 0,
        hosts,
        changes_since_last,
        findings,
    })
}

type Detail = (service::Service, Option<TlsSummary>);

/// Name the services on open ports (bounded concurrency), with TLS details where a port
/// speaks TLS. Connects only to the given (pinned) addresses.
async fn detect_all(
    cert: &CertChecker,
    open: &[SocketAddr],
    sni: Option<&str>,
    cancel: &CancellationToken,
) -> BTreeMap<SocketAddr, Detail> {
    let work = futures::stream::iter(open.iter().take(MAX_DETECTED).copied())
        .map(|sa| async move {
            let svc = service::detect(sa, DETECT_TIMEOUT).await;
            let tls = if svc.tls || service::is_tls_port(sa.port()) && svc.banner.is_none() {
                tls_summary(cert, sa, sni).await
            } else {
                None
            };
            (sa, (svc, tls))
        })
        .buffer_unordered(DETECT_CONCURRENCY)
        .collect::<Vec<_>>();
    tokio::select! {
        done = work => done.into_iter().collect(),
        _ = cancel.cancelled() => BTreeMap::new(),
    }
}

async fn tls_summary(cert: &CertChecker, sa: SocketAddr, sni: Option<&str>) -> Option<TlsSummary> {
    let sni = sni.and_then(|n| rustls_pki_types::ServerName::try_from(n.to_string()).ok());
    let options = CertOptions {
        targets: vec![(
            sa.to_string(),
            Target::Network {
                host: crate::checks::cert::Host::Ip(sa.ip()),
                port: sa.port(),
            },
        )],
        sni,
        starttls: None,
        warning_days: crate::checks::cert::DEFAULT_WARNING_DAYS,
        critical_days: crate::checks::cert::DEFAULT_CRITICAL_DAYS,
        timeout: TLS_TIMEOUT,
        details: false,
    };
    // scan.allow has already pinned this address; check_cert.allow is not scan_host's rule.
    let report = cert.for_pinned_addresses().check_validated(&options).await;
    let result = report.results.into_iter().next()?;
    let leaf = result.chain.first()?;
    Some(TlsSummary {
        subject: leaf.subject.clone(),
        issuer: leaf.issuer.clone(),
        not_after: leaf.not_after.clone(),
        days_left: result.days_left.unwrap_or(leaf.days_left),
        self_signed: leaf.self_signed,
        chain_valid: result.chain_valid,
        verification_error: result
            .verification_error
            .clone()
            .filter(|_| result.status != CertStatus::Ok || result.chain_valid == Some(false)),
        tls_version: result.tls_version.clone(),
    })
}

/// Compare with the previous scan of the same target, then store this one as the new
/// baseline. Ports that were open and are inconclusive now stay open in the baseline (their
/// state is unknown, not closed).
fn baseline(
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

    #[test]
    fn arguments_are_validated_with_precise_errors() {
        let args = |t: &str, p: Option<&str>, ms: Option<i64>| ScanArgs {
            target: t.into(),
            ports: p.map(Into::into),
            detect_services: None,
            timeout_ms: ms,
        };
        let e = args("", None, None).validate().unwrap_err();
        assert_eq!(e.argument, "target");
        let e = args("127.0.0.1", Some("22,abc"), None)
            .validate()
            .unwrap_err();
        assert_eq!(e.argument, "ports");
        assert!(e.reason.contains("abc"), "{}", e.reason);
        let e = args("127.0.0.1", Some("0-10"), None)
            .validate()
            .unwrap_err();
        assert_eq!(e.argument, "ports");
        let e = args("127.0.0.1", None, Some(0)).validate().unwrap_err();
        assert_eq!(e.argument, "timeout_ms");
        let p = args("127.0.0.1", None, None).validate().unwrap();
        assert_eq!(p.ports.len(), 100);
        assert_eq!(p.ports_spec, "top100");
        assert!(p.detect_services);
        assert!(p.timeout.is_none());
    }
}
