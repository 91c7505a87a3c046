//! The `security_events` monitor kind: the rate of Wazuh alerts at or above `min_level`
//! per minute in the indexer over `window` (default 1m), against `threshold_per_minute`
//! (default 10); level 15 and above is an emergency (the check's own mapping).

use std::time::Duration;

use serde::Serialize;

use super::{KeyError, KindKeys, KindRun};
use crate::checks::security_events::{self, RateSpec};
use crate::clock::{Clock, SystemClock};
use crate::context::AppContext;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityEventsSettings {
    pub spec: RateSpec,
}

impl SecurityEventsSettings {
    pub fn parse(k: &mut KindKeys) -> Result<Self, KeyError> {
        let min_level = k.integer_in("min_level", 1..=16)?.map(|v| v as u32);
        let per_minute = k.number("threshold_per_minute")?;
        let window = k
            .duration("window")?
            .map(|d: Duration| d.as_millis() as i64);
        let spec = RateSpec::parse(k.prefix(), min_level, per_minute, window)?;
        Ok(SecurityEventsSettings { spec })
    }
}

pub async fn observe(ctx: &AppContext, s: &SecurityEventsSettings) -> Result<KindRun, String> {
    let indexer = ctx
        .indexer
        .as_ref()
        .ok_or("the indexer is not configured ([indexer] url); security_events reads it")?;
    let rate = security_events::run(indexer, &s.spec, SystemClock.now_ms())
        .await
        .map_err(|e| e.to_string())?;
    Ok(KindRun {
        observations: rate.observations(),
        complete: true,
    })
}
