//! The `security_events` monitor kind: the rate of Wazuh alerts at or above `min_level`
//! per minute in the indexer over `window` (default 1m), against `threshold_per_minute`
//! (default 10), level 15 and above an emergency (the check's own mapping); and our
//! incidents (`checks::open_incidents`): open incidents at or above `incident_severity`
//! (default high; `incidents = false` turns it off) and SLA breaches (`sla = false` turns
//! them off), each an alert naming the incident.
//!
//! Before reading incidents a run ingests new Wazuh alerts into them, unless an ingest or
//! an incident update is already under way (`serve`'s periodic ingest, an incident_status
//! call): then it reads the store as it is rather than queue a second ingest. The ingest is
//! cursor-based, so a run with nothing new costs one small indexer query. A run whose rate
//! query fails is an error as a whole (the `wazuh` monitor reports the indexer itself); the
//! incidents are looked at again by the next run.

use std::time::Duration;

use serde::Serialize;

use super::{KeyError, KindKeys, KindRun};
use crate::checks::open_incidents::{self, IncidentSpec};
use crate::checks::security_events::{self, RateSpec};
use crate::clock::{Clock, SystemClock};
use crate::context::AppContext;

/// How far back the first ingest of a fresh state directory reads (as `serve`'s).
const BOOTSTRAP: time::Duration = time::Duration::hours(24);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityEventsSettings {
    pub spec: RateSpec,
    pub incidents: IncidentSpec,
}

impl SecurityEventsSettings {
    pub fn parse(k: &mut KindKeys) -> Result<Self, KeyError> {
        let min_level = k.integer_in("min_level", 1..=16)?.map(|v| v as u32);
        let per_minute = k.number("threshold_per_minute")?;
        let window = k
            .duration("window")?
            .map(|d: Duration| d.as_millis() as i64);
        let spec = RateSpec::parse(k.prefix(), min_level, per_minute, window)?;
        let enabled = k.boolean("incidents")?;
        let severity = k.string("incident_severity")?;
        let sla = k.boolean("sla")?;
        let incidents = IncidentSpec::parse(k.prefix(), enabled, severity.as_deref(), sla)?;
        Ok(SecurityEventsSettings { spec, incidents })
    }
}

pub async fn observe(ctx: &AppContext, s: &SecurityEventsSettings) -> Result<KindRun, String> {
    let indexer = ctx
        .indexer
        .as_ref()
        .ok_or("the indexer is not configured ([indexer] url); security_events reads it")?;
    if s.incidents.any() {
        let bootstrap = time::OffsetDateTime::now_utc() - BOOTSTRAP;
        match crate::incidents::ingest_if_idle(&ctx.incident_deps(), bootstrap).await {
            Some(st) if st.status != "ok" => tracing::warn!(
                status = %st.status,
                error = st.error.as_deref().unwrap_or(""),
                "security_events: incident ingest; reading the stored incidents"
            ),
            _ => {}
        }
    }
    let now = SystemClock.now_ms();
    let rate = security_events::run(indexer, &s.spec, now)
        .await
        .map_err(|e| e.to_string())?;
    let mut run = KindRun {
        observations: rate.observations(),
        complete: true,
    };
    if s.incidents.any() {
        let (store, cfg, spec) = (
            ctx.store.clone(),
            ctx.config.incidents.clone(),
            s.incidents.clone(),
        );
        let scan =
            tokio::task::spawn_blocking(move || open_incidents::observe(&store, &cfg, &spec, now))
                .await
                .map_err(|e| format!("reading incidents stopped: {e}"))?
                .map_err(|e| format!("reading incidents: {e}"))?;
        run.observations.extend(scan.observations);
        run.complete &= scan.complete;
    }
    Ok(run)
}
