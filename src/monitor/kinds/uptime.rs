//! The `uptime` monitor kind: one HTTP(S) endpoint probed per run (TLS verified against
//! the system roots or `tls.extra_ca_file`); the probe's own observations (down /
//! unexpected status critical, slow warning, fine otherwise), and each probe recorded in
//! the monitor's uptime history (store/uptime.rs: uptime % and p95 per window).

use serde::{Serialize, Serializer};

use super::{KeyError, KindKeys, KindRun};
use crate::checks::uptime::{Method, UptimeTarget, display_url};
use crate::context::AppContext;

/// Debug and Serialize show the same fields (the config view's completeness rule), with
/// the URL as alerts show it (no credentials or query).
#[derive(Clone, PartialEq)]
pub struct UptimeSettings {
    pub target: UptimeTarget,
}

impl std::fmt::Debug for UptimeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.target;
        f.debug_struct("UptimeSettings")
            .field("url", &display_url(&t.url))
            .field("method", &t.method)
            .field("expect_status", &self.expect_status())
            .field("max_response_ms", &t.max_response_ms)
            .field("body_contains", &t.body_contains)
            .field("timeout_ms", &t.timeout_ms)
            .finish()
    }
}

impl Serialize for UptimeSettings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let t = &self.target;
        let mut m = s.serialize_struct("UptimeSettings", 6)?;
        m.serialize_field("url", &display_url(&t.url))?;
        m.serialize_field("method", &t.method)?;
        m.serialize_field("expect_status", &self.expect_status())?;
        m.serialize_field("max_response_ms", &t.max_response_ms)?;
        m.serialize_field("body_contains", &t.body_contains)?;
        m.serialize_field("timeout_ms", &t.timeout_ms)?;
        m.end()
    }
}

impl UptimeSettings {
    pub fn parse(k: &mut KindKeys) -> Result<Self, KeyError> {
        let url = k
            .string("url")?
            .ok_or_else(|| k.error("url", "is required (e.g. \"https://example.com/health\")"))?;
        let method = k.string("method")?;
        let expect_status = match k.take("expect_status") {
            None => None,
            Some(toml::Value::String(s)) => Some(s),
            Some(toml::Value::Integer(i)) => Some(i.to_string()),
            Some(v) => {
                return Err(k.wrong("expect_status", "a status or range like \"200-399\"", &v));
            }
        };
        let max_response_ms = k
            .integer_in("max_response_ms", 1..=300_000)?
            .map(|v| v as u64);
        let body_contains = k.string("body_contains")?;
        let timeout_ms = k.integer_in("timeout_ms", 1..=300_000)?.map(|v| v as u64);
        let target = UptimeTarget::parse(
            k.prefix(),
            &url,
            method.as_deref(),
            expect_status.as_deref(),
            max_response_ms,
            body_contains,
            timeout_ms,
        )?;
        Ok(UptimeSettings { target })
    }

    /// `200-399`.
    pub fn expect_status(&self) -> String {
        let (lo, hi) = self.target.expect_status;
        format!("{lo}-{hi}")
    }

    pub fn method(&self) -> Method {
        self.target.method
    }
}

/// Probe once and record the sample in the monitor's uptime history.
pub async fn observe(
    ctx: &AppContext,
    monitor: &str,
    s: &UptimeSettings,
) -> Result<KindRun, String> {
    let probe = ctx.uptime_prober()?.probe(&s.target).await;
    let (store, name) = (ctx.store.clone(), monitor.to_string());
    let (ok, ms) = (probe.problem.is_none(), probe.response_ms);
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    // A lost sample is not worth failing the run (the alerts still work); say so.
    match tokio::task::spawn_blocking(move || store.uptime_record(&name, now, ok, ms)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(monitor, error = %e, "uptime sample not recorded"),
        Err(e) => tracing::warn!(monitor, error = %e, "uptime sample not recorded"),
    }
    Ok(KindRun {
        observations: probe.observations(),
        complete: true,
    })
}
