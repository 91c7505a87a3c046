//! The `certificates` monitor kind: check_cert over a list of targets (host, host:port,
//! https URL, STARTTLS, `file:`), one alert per target whose code is the target's worst
//! finding; a target whose certificate is good again is not mentioned, so its alert
//! resolves (the run is complete). A monitor may watch up to [`MAX_MONITOR_TARGETS`]
//! targets: its run calls check_cert on slices of at most check_cert's own
//! [`MAX_TARGETS`], a few slices at a time.

use futures::StreamExt;
use serde::Serialize;

use super::{KeyError, KindKeys, KindRun, level_of, subject};
use crate::alerts::{Level, Observation};
use crate::checks::cert::{self, CertArgs, CertReport, CertResult, CertStatus, MAX_TARGETS};
use crate::context::AppContext;

/// At most this many targets in one certificates monitor (a sanity cap).
pub const MAX_MONITOR_TARGETS: usize = 5_000;
/// check_cert calls (of up to [`MAX_TARGETS`] targets each) in flight at once in one run.
const SLICES_AT_ONCE: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertificatesSettings {
    pub targets: Vec<String>,
    pub warning_days: i64,
    pub critical_days: i64,
    pub timeout_ms: Option<i64>,
    /// `smtp`, `imap`, `pop3`, `ftp` or `postgres`: upgrade a plaintext protocol first.
    pub starttls: Option<String>,
}

impl CertificatesSettings {
    pub fn parse(k: &mut KindKeys) -> Result<Self, KeyError> {
        let targets = k
            .strings("targets")?
            .ok_or_else(|| k.error("targets", "is required: list the certificates to watch"))?;
        if targets.is_empty() || targets.len() > MAX_MONITOR_TARGETS {
            return Err(k.error(
                "targets",
                format!(
                    "must list 1 to {MAX_MONITOR_TARGETS} targets (not {})",
                    targets.len()
                ),
            ));
        }
        for (i, t) in targets.iter().enumerate() {
            cert::parse_target(t, None)
                .map_err(|e| k.error(&format!("targets[{i}]"), e.to_string()))?;
        }
        let warning_days = k.integer_in("warning_days", 0..=3650)?.unwrap_or(30);
        let critical_days = k
            .integer_in("critical_days", 0..=warning_days)?
            .unwrap_or(7);
        if critical_days > warning_days {
            return Err(k.error(
                "critical_days",
                format!("must not exceed warning_days ({warning_days})"),
            ));
        }
        let timeout_ms = k.integer_in("timeout_ms", 1..=120_000)?;
        let starttls = match k.string("starttls")? {
            None => None,
            Some(s) => Some(
                crate::checks::keyword(
                    &k.key("starttls"),
                    &s,
                    &["smtp", "imap", "pop3", "ftp", "postgres"],
                )?
                .to_string(),
            ),
        };
        Ok(CertificatesSettings {
            starttls,
            targets,
            warning_days,
            critical_days,
            timeout_ms,
        })
    }
}

/// check_cert over every target, [`MAX_TARGETS`] per call, [`SLICES_AT_ONCE`] calls at
/// a time; the observations in target order.
pub async fn observe(ctx: &AppContext, s: &CertificatesSettings) -> Result<KindRun, String> {
    let calls: Vec<CertArgs> = s
        .targets
        .chunks(MAX_TARGETS)
        .map(|slice| CertArgs {
            targets: slice.to_vec(),
            warning_days: Some(s.warning_days),
            critical_days: Some(s.critical_days),
            timeout_ms: s.timeout_ms,
            starttls: s.starttls.clone(),
            ..Default::default()
        })
        .collect();
    let deps = ctx.cert_deps();
    let deps = &deps;
    let reports: Vec<Result<CertReport, cert::CertError>> = futures::stream::iter(calls)
        .map(|args| async move { cert::run(deps, &args).await })
        .buffered(SLICES_AT_ONCE)
        .collect()
        .await;
    let mut run = KindRun {
        observations: Vec::new(),
        complete: true,
    };
    for report in reports {
        let report = report.map_err(|e| e.to_string())?;
        run.observations.extend(map_report(&report).observations);
    }
    Ok(run)
}

/// One observation per target with a problem; good targets are left out (complete run).
pub fn map_report(report: &CertReport) -> KindRun {
    KindRun {
        observations: report.results.iter().filter_map(observation).collect(),
        complete: true,
    }
}

fn observation(r: &CertResult) -> Option<Observation> {
    let level = match r.status {
        CertStatus::Ok => return None,
        CertStatus::Warning => Level::Warning,
        CertStatus::Critical | CertStatus::Error => Level::Critical,
    };
    let worst = r.findings.iter().max_by_key(|f| f.severity);
    let code = worst.map_or_else(
        || format!("cert_{:?}", r.status).to_lowercase(),
        |f| f.code.clone(),
    );
    let level = worst.map_or(level, |f| level_of(f.severity).max(level));
    let target = crate::util::quote_untrusted(&r.target, 200);
    let message = worst.map_or_else(|| "certificate problem".to_string(), |f| f.message.clone());
    let mut summary = format!("{target}: {message}.");
    if let Some(fix) = worst.and_then(|f| f.remediation.as_deref()) {
        summary.push(' ');
        summary.push_str(fix);
    }
    Some(Observation {
        code,
        subject: subject("target", &r.target),
        level: Some(level),
        title: format!("Certificate of {target}: {message}"),
        summary,
        value: r.days_left.map(|d| format!("{d} days")),
    })
}
