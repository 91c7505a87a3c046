//! scan_host: a scope-gated TCP connect scanner. `run` validates the arguments, pins the
//! target to in-scope addresses before any packet, scans with the engine, names services
//! (TLS details through check_cert's module), adds risk notes and compares the open ports
//! with the stored baseline of the same target.
//!
//! The arguments and their validation are in `plan.rs`, the report types and summary in
//! `report.rs`, the comparison with the stored baseline in `baseline.rs`.

mod baseline;
pub mod engine;
mod plan;
pub mod ports;
mod report;
pub mod risk;
pub mod scope;
pub mod service;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::checks::cert::{CertChecker, CertOptions, CertStatus, Target};
use crate::checks::{ArgError, Finding, Severity};
use crate::store::Store;
use baseline::baseline;
use engine::{EngineOptions, PortState};
pub use plan::{MAX_TIMEOUT_MS, ScanArgs, ScanPlan};
pub use report::{Changes, HostScan, OpenPort, PortRef, ScanReport, TlsSummary, compress_ranges};
pub use scope::{Refusal, Scope};

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
