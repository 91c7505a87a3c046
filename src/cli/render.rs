//! Human output of the `check` subcommands: the text renderers of the cert, scan and health
//! reports (the same reports the tools return as JSON) and the scan's progress bar.

use std::fmt::Write;

use secops_mcp::checks::Summary;
use secops_mcp::checks::cert::{CertReport, CertStatus};
use secops_mcp::checks::scan::{PortRef, ScanReport};
use secops_mcp::checks::wazuh_health::HealthReport;

/// The progress bar (on stderr) of a scan's probes.
pub fn scan_progress() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} probes ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

pub fn scan_report(report: &ScanReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} -> {} ({} ports each, {} ms, timeout {} ms)",
        report.target,
        report.addresses.join(", "),
        report.ports_scanned,
        report.duration_ms,
        report.timeout_ms
    );
    for h in &report.hosts {
        let _ = writeln!(
            out,
            "\n{}: {} open, {} closed, {} filtered, {} inconclusive",
            h.address,
            h.open.len(),
            h.closed_count,
            h.filtered_count,
            h.inconclusive_count
        );
        if !h.open.is_empty() {
            let _ = writeln!(out, "  {:<7} {:<20} DETAIL", "PORT", "SERVICE");
        }
        for p in &h.open {
            let mut detail = p.banner.clone().unwrap_or_default();
            if let Some(t) = &p.tls {
                if !detail.is_empty() {
                    detail.push_str("; ");
                }
                let _ = write!(detail, "TLS {} ({} days left)", t.subject, t.days_left);
            }
            let _ = writeln!(out, "  {:<7} {:<20} {}", p.port, p.service, detail);
            if let Some(r) = &p.risk {
                let _ = writeln!(out, "  {:<7} {:<20} risk: {r}", "", "");
            }
        }
        if h.filtered_count > 0 && h.filtered.len() <= 200 {
            let _ = writeln!(out, "  filtered: {}", h.filtered);
        }
    }
    if let Some(c) = &report.changes_since_last {
        let fmt = |v: &[PortRef]| {
            if v.is_empty() {
                return "-".to_string();
            }
            v.iter()
                .map(|p| format!("{}:{}", p.address, p.port))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "\nSince {}:", c.previous_scan_at);
        let _ = writeln!(out, "  opened: {}", fmt(&c.opened));
        let _ = writeln!(out, "  closed: {}", fmt(&c.closed));
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out);
    }
    for f in &report.findings {
        let sev = format!("{:?}", f.severity).to_uppercase();
        let _ = writeln!(out, "{sev:<8} {} {}", f.code, f.message);
    }
    if !report.complete {
        let _ = writeln!(out, "\nINCOMPLETE: some ports could not be decided.");
    }
    out
}

pub fn cert_report(report: &CertReport) -> String {
    let mut out = String::new();
    for r in &report.results {
        let status = match r.status {
            CertStatus::Ok => "OK",
            CertStatus::Warning => "WARNING",
            CertStatus::Critical => "CRITICAL",
            CertStatus::Error => "ERROR",
        };
        let _ = write!(out, "{status:<8} {}", r.target);
        if let Some(d) = r.days_left {
            let _ = write!(out, "  {d} days left");
        }
        if let Some(na) = &r.not_after {
            let _ = write!(out, " (until {na})");
        }
        if let Some(v) = &r.tls_version {
            let _ = write!(out, "  {v}");
        }
        if let Some(c) = &r.cipher {
            let _ = write!(out, " {c}");
        }
        out.push('\n');
        if let Some(e) = &r.verification_error {
            let _ = writeln!(out, "         verification: {e}");
        }
        if let Some(b) = &r.bundle {
            let _ = writeln!(
                out,
                "         bundle of {} CA certificates: {} expired, {} expiring within the warning \
                 window, {} not yet valid; {} with a problem{}",
                b.certificates,
                b.expired,
                b.expiring,
                b.not_yet_valid,
                b.with_problems,
                if b.listed_all || b.with_problems == 0 {
                    ""
                } else {
                    " (listed below; --details lists them all)"
                }
            );
        }
        for c in &r.chain {
            let _ = writeln!(
                out,
                "         #{} {}  issuer: {}  {}  {}  expires {} ({} days)",
                c.position,
                c.subject,
                c.issuer,
                c.key,
                c.signature_algorithm,
                c.not_after,
                c.days_left
            );
            if c.position == 1 && r.bundle.is_none() && !c.sans.is_empty() {
                let _ = writeln!(out, "             SANs: {}", c.sans.join(", "));
            }
        }
        for f in &r.findings {
            let sev = format!("{:?}", f.severity).to_lowercase();
            let _ = writeln!(out, "         - {sev} {}: {}", f.code, f.message);
        }
    }
    let _ = writeln!(out, "{}", report.summary());
    out
}

pub fn health_report(report: &HealthReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", report.summary());
    for f in &report.findings {
        let sev = format!("{:?}", f.severity).to_lowercase();
        let _ = writeln!(out, "  - {sev:<8} {}: {}", f.code, f.message);
        if let Some(r) = &f.remediation {
            let _ = writeln!(out, "             {r}");
        }
    }
    out
}
