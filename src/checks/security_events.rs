//! The rate of Wazuh alerts (the `security_events` monitor's check): how many alerts at or
//! above `min_level` the indexer holds for the last `window`, per minute, against a
//! threshold (10 a minute by default, the monitoring guide's), classified by the highest
//! Wazuh level among them: 15 and above is `emergency`, 12 and above `critical`, else
//! `warning`. Two counting queries (no documents fetched) and one small `terms` aggregation
//! for the rules that fired most; rule descriptions are untrusted text and are sanitised.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ArgError;
use crate::alerts::{Level, Observation};
use crate::clock::{Millis, rfc3339};
use crate::util::sanitize_untrusted;
use crate::wazuh::{AlertQuery, IndexerClient, WazuhError};

/// Wazuh level from which an alert burst is an emergency.
pub const EMERGENCY_LEVEL: u32 = 15;
/// Wazuh level from which it is critical.
pub const CRITICAL_LEVEL: u32 = 12;

/// What to count, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateSpec {
    /// Count alerts at or above this Wazuh level (default 7).
    pub min_level: u32,
    /// Alerts per minute at which the rate alerts (default 10).
    pub per_minute: f64,
    /// The window the rate is measured over (default 1 minute).
    pub window_ms: Millis,
}

impl RateSpec {
    pub fn parse(
        key: &str,
        min_level: Option<u32>,
        per_minute: Option<f64>,
        window_ms: Option<Millis>,
    ) -> Result<Self, ArgError> {
        let min_level = min_level.unwrap_or(7);
        if !(1..=16).contains(&min_level) {
            return Err(ArgError::new(
                format!("{key}.min_level"),
                format!("must be a Wazuh rule level between 1 and 16 (not {min_level})"),
            ));
        }
        let per_minute = per_minute.unwrap_or(10.0);
        if !(per_minute.is_finite() && per_minute > 0.0 && per_minute <= 1_000_000.0) {
            return Err(ArgError::new(
                format!("{key}.threshold_per_minute"),
                "must be a number of alerts per minute above 0",
            ));
        }
        let window_ms = window_ms.unwrap_or(60_000);
        if !(10_000..=86_400_000).contains(&window_ms) {
            return Err(ArgError::new(
                format!("{key}.window"),
                "must be between 10s and 24h",
            ));
        }
        Ok(Self {
            min_level,
            per_minute,
            window_ms,
        })
    }
}

/// What the indexer holds for the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRate {
    pub since: String,
    pub until: String,
    /// Alerts at or above `min_level` in the window.
    pub count: u64,
    /// Of those, at level 15 or above / 12 or above.
    pub emergency: u64,
    pub critical: u64,
    pub per_minute: f64,
    pub threshold_per_minute: f64,
    pub min_level: u32,
    /// The rules that fired most: (description, count), sanitised.
    pub top_rules: Vec<(String, u64)>,
}

impl EventRate {
    /// Over the threshold, and how loud.
    pub fn level(&self) -> Option<Level> {
        if self.per_minute < self.threshold_per_minute {
            return None;
        }
        Some(if self.emergency > 0 {
            Level::Emergency
        } else if self.critical > 0 {
            Level::Critical
        } else {
            Level::Warning
        })
    }

    pub fn observations(&self) -> Vec<Observation> {
        let level = self.level();
        let rules = self
            .top_rules
            .iter()
            .map(|(d, n)| format!("{d} ({n})"))
            .collect::<Vec<_>>()
            .join("; ");
        let summary = if level.is_some() {
            format!(
                "{} Wazuh alerts at level {} or above between {} and {} ({:.1} a minute, threshold {}), {} at level {CRITICAL_LEVEL}+ and {} at level {EMERGENCY_LEVEL}+. Most frequent: {}. Open incident_status to see how they correlate.",
                self.count,
                self.min_level,
                self.since,
                self.until,
                self.per_minute,
                self.threshold_per_minute,
                self.critical,
                self.emergency,
                if rules.is_empty() {
                    "-".to_string()
                } else {
                    rules
                }
            )
        } else {
            String::new()
        };
        vec![Observation {
            code: "security_event_rate".into(),
            subject: BTreeMap::from([("min_level".into(), self.min_level.to_string())]),
            level,
            title: format!(
                "{:.1} Wazuh alerts a minute at level {}+ (threshold {})",
                self.per_minute, self.min_level, self.threshold_per_minute
            ),
            summary,
            value: Some(format!("{:.1}/min", self.per_minute)),
        }]
    }
}

/// Count the window ending at `now_ms`.
pub async fn run(
    indexer: &IndexerClient,
    spec: &RateSpec,
    now_ms: Millis,
) -> Result<EventRate, WazuhError> {
    let since = rfc3339(now_ms - spec.window_ms);
    let until = rfc3339(now_ms);
    let query = |min_level: u32, terms: bool| AlertQuery {
        since: Some(since.clone()),
        until: Some(until.clone()),
        min_level: Some(min_level),
        size: 1,
        terms: if terms {
            vec![("rules".into(), "rule.description".into(), 5)]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    let all = indexer.search_alerts(&query(spec.min_level, true)).await?;
    let count = all.total();
    let (critical, emergency) = if count == 0 {
        (0, 0)
    } else {
        let c = indexer
            .search_alerts(&query(spec.min_level.max(CRITICAL_LEVEL), false))
            .await?
            .total();
        let e = if c == 0 {
            0
        } else {
            indexer
                .search_alerts(&query(spec.min_level.max(EMERGENCY_LEVEL), false))
                .await?
                .total()
        };
        (c, e)
    };
    let minutes = spec.window_ms as f64 / 60_000.0;
    Ok(EventRate {
        since,
        until,
        count,
        emergency,
        critical,
        per_minute: (count as f64 / minutes * 10.0).round() / 10.0,
        threshold_per_minute: spec.per_minute,
        min_level: spec.min_level,
        top_rules: all
            .buckets("rules")
            .into_iter()
            .map(|(d, n)| (sanitize_untrusted(d.as_bytes(), 120), n))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_minute: f64, critical: u64, emergency: u64) -> EventRate {
        EventRate {
            since: "a".into(),
            until: "b".into(),
            count: 40,
            emergency,
            critical,
            per_minute,
            threshold_per_minute: 10.0,
            min_level: 7,
            top_rules: vec![("sshd: brute force".into(), 40)],
        }
    }

    #[test]
    fn the_level_follows_the_loudest_wazuh_level_once_over_the_threshold() {
        assert_eq!(rate(9.9, 5, 1).level(), None);
        assert_eq!(rate(10.0, 0, 0).level(), Some(Level::Warning));
        assert_eq!(rate(40.0, 3, 0).level(), Some(Level::Critical));
        assert_eq!(rate(40.0, 3, 1).level(), Some(Level::Emergency));
        let o = &rate(40.0, 3, 1).observations()[0];
        assert!(
            o.summary.contains("sshd: brute force (40)"),
            "{}",
            o.summary
        );
        assert_eq!(o.value.as_deref(), Some("40.0/min"));
    }

    #[test]
    fn settings_are_checked_with_the_key_named() {
        assert!(RateSpec::parse("m", None, None, None).is_ok());
        assert_eq!(
            RateSpec::parse("m", Some(0), None, None)
                .unwrap_err()
                .argument,
            "m.min_level"
        );
        assert_eq!(
            RateSpec::parse("m", None, Some(0.0), None)
                .unwrap_err()
                .argument,
            "m.threshold_per_minute"
        );
        assert_eq!(
            RateSpec::parse("m", None, None, Some(1_000))
                .unwrap_err()
                .argument,
            "m.window"
        );
    }
}
