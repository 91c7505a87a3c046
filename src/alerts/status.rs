//! The read side of our alerts (what `alert_status` will show): an overview (firing and
//! pending alerts by level, loudest first and oldest first within a level; recently
//! resolved; each monitor's last run and outcome; outbox health per channel) and the detail
//! of one alert with its timeline (state changes, acknowledgement, notes, every
//! notification and its attempts). Times are RFC 3339 (UTC).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::{AlertState, Level, parse_alert_id};
use crate::checks::{ArgError, Summary};
use crate::clock::{Millis, rfc3339};
use crate::store::alerts::AlertRow;
use crate::store::{Store, StoreError};

/// Resolved alerts shown in the overview.
const RECENT_RESOLVED: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Arg(#[from] ArgError),
    #[error("the state database could not be read: {0}")]
    Store(#[from] StoreError),
}

/// One alert in a list.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AlertView {
    pub id: String,
    pub monitor: String,
    pub code: String,
    pub level: Level,
    pub state: AlertState,
    pub title: String,
    pub labels: BTreeMap<String, String>,
    pub value: Option<String>,
    /// When it was first seen (pending) and started firing.
    pub first_seen: String,
    pub firing_since: Option<String>,
    pub last_seen: String,
    pub resolved_at: Option<String>,
    pub occurrences: i64,
    pub acknowledged_by: Option<String>,
}

impl From<&AlertRow> for AlertView {
    fn from(r: &AlertRow) -> Self {
        Self {
            id: r.id(),
            monitor: r.monitor.clone(),
            code: r.code.clone(),
            level: r.level,
            state: r.state,
            title: r.title.clone(),
            labels: r.labels.clone(),
            value: r.value.clone(),
            first_seen: rfc3339(r.first_seen_ms),
            firing_since: r.firing_ms.map(rfc3339),
            last_seen: rfc3339(r.last_seen_ms),
            resolved_at: r.resolved_ms.map(rfc3339),
            occurrences: r.occurrences,
            acknowledged_by: r.acknowledged_by.clone(),
        }
    }
}

/// A monitor's last run.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MonitorView {
    pub name: String,
    pub last_run: String,
    pub running: bool,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
}

/// Delivery health of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ChannelView {
    pub channel: String,
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    pub oldest_pending_age_secs: Option<i64>,
}

/// The overview.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AlertOverview {
    /// Firing alerts by level name (`emergency` .. `info`), oldest first.
    pub firing: BTreeMap<String, Vec<AlertView>>,
    pub pending: Vec<AlertView>,
    pub recently_resolved: Vec<AlertView>,
    pub monitors: Vec<MonitorView>,
    pub channels: Vec<ChannelView>,
}

/// One timeline entry of an alert.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TimelineEntry {
    pub at: String,
    /// `pending`, `firing`, `resolved`, `acknowledged`, `note`, `notification`, ...
    pub kind: String,
    pub actor: Option<String>,
    pub detail: Option<String>,
}

/// One alert with its timeline.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AlertDetailView {
    pub alert: AlertView,
    pub summary: String,
    pub timeline: Vec<TimelineEntry>,
}

/// The overview, or one alert's detail.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum AlertStatusReport {
    Overview(AlertOverview),
    Detail(Box<AlertDetailView>),
}

/// The overview at `now_ms`; resolved alerts since `resolved_since_ms`.
pub fn overview(
    store: &Store,
    now_ms: Millis,
    resolved_since_ms: Millis,
) -> Result<AlertOverview, StatusError> {
    let mut firing: BTreeMap<String, Vec<AlertView>> = BTreeMap::new();
    let mut pending = Vec::new();
    for row in store.alerts_open()? {
        match row.state {
            AlertState::Firing => firing
                .entry(row.level.as_str().to_string())
                .or_default()
                .push(AlertView::from(&row)),
            _ => pending.push(AlertView::from(&row)),
        }
    }
    let recently_resolved = store
        .alerts_resolved_since(resolved_since_ms, RECENT_RESOLVED)?
        .iter()
        .map(AlertView::from)
        .collect();
    let monitors = store
        .monitor_run_status()?
        .into_iter()
        .map(|s| MonitorView {
            name: s.monitor,
            last_run: rfc3339(s.last_run.started_ms),
            running: s.last_run.finished_ms.is_none(),
            last_outcome: s.last_outcome.map(|o| o.as_str().to_string()),
            last_error: s.last_run.error,
        })
        .collect();
    let channels = store
        .outbox_health()?
        .into_iter()
        .map(|h| ChannelView {
            oldest_pending_age_secs: h.oldest_pending_age_ms(now_ms).map(|ms| ms / 1000),
            channel: h.channel,
            pending: h.pending,
            delivered: h.delivered,
            failed: h.dead,
        })
        .collect();
    Ok(AlertOverview {
        firing,
        pending,
        recently_resolved,
        monitors,
        channels,
    })
}

/// One alert (`ALR-n`) with its timeline, oldest first.
pub fn detail(store: &Store, id: &str) -> Result<AlertDetailView, StatusError> {
    let seq = parse_alert_id(id).ok_or_else(|| {
        ArgError::new(
            "alert_id",
            "write an alert id as alert_status lists it, e.g. `ALR-12`",
        )
    })?;
    let d = store
        .alert_detail(seq)?
        .ok_or_else(|| ArgError::new("alert_id", format!("no alert {id}")))?;
    let mut timeline: Vec<(Millis, TimelineEntry)> = d
        .events
        .iter()
        .map(|e| {
            (
                e.at_ms,
                TimelineEntry {
                    at: rfc3339(e.at_ms),
                    kind: e.kind.clone(),
                    actor: e.actor.clone(),
                    detail: e.detail.clone(),
                },
            )
        })
        .collect();
    for a in store.outbox_attempts_for_alert(seq)? {
        timeline.push((
            a.at_ms,
            TimelineEntry {
                at: rfc3339(a.at_ms),
                kind: "notification".into(),
                actor: None,
                detail: Some(format!(
                    "{} to {}: {}{}",
                    a.kind,
                    a.channel,
                    a.outcome,
                    a.detail.map(|d| format!(" ({d})")).unwrap_or_default()
                )),
            },
        ));
    }
    timeline.sort_by_key(|(at, _)| *at);
    Ok(AlertDetailView {
        alert: AlertView::from(&d.alert),
        summary: d.alert.summary.clone(),
        timeline: timeline.into_iter().map(|(_, e)| e).collect(),
    })
}

impl Summary for AlertOverview {
    fn summary(&self) -> String {
        let firing: usize = self.firing.values().map(Vec::len).sum();
        if firing == 0 && self.pending.is_empty() {
            return format!(
                "No alert is firing or pending; {} resolved recently; {} monitor(s) reporting.",
                self.recently_resolved.len(),
                self.monitors.len()
            );
        }
        let by_level: Vec<String> = Level::ALL
            .iter()
            .rev()
            .filter_map(|l| {
                self.firing
                    .get(l.as_str())
                    .map(|v| format!("{} {}", v.len(), l.as_str()))
            })
            .collect();
        let loudest = Level::ALL
            .iter()
            .rev()
            .find_map(|l| self.firing.get(l.as_str()).and_then(|v| v.first()));
        let mut s = format!(
            "{firing} alert(s) firing ({}), {} pending.",
            by_level.join(", "),
            self.pending.len()
        );
        if let Some(a) = loudest {
            s.push_str(&format!(
                " Oldest loudest: {} {} since {}.",
                a.id,
                a.title,
                a.firing_since.as_deref().unwrap_or("?")
            ));
        }
        let stuck: Vec<&ChannelView> = self.channels.iter().filter(|c| c.failed > 0).collect();
        if !stuck.is_empty() {
            s.push_str(&format!(
                " Failed notifications on: {}.",
                stuck
                    .iter()
                    .map(|c| c.channel.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alerts::Observation;
    use crate::alerts::lifecycle::{MonitorPolicy, acknowledge, evaluate};
    use crate::clock::{Clock, ManualClock};

    fn obs(url: &str, level: Option<Level>) -> Observation {
        Observation {
            code: "endpoint_down".into(),
            subject: BTreeMap::from([("url".to_string(), url.to_string())]),
            level,
            title: format!("{url} is down"),
            summary: format!("{url} did not answer"),
            value: None,
        }
    }

    #[test]
    fn the_overview_orders_by_level_and_the_detail_tells_the_story() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let clock = ManualClock::at(1_790_000_000_000);
        let mut p = MonitorPolicy::new("web")
            .route(Level::Critical, &["log"])
            .route(Level::Warning, &["log"]);
        p.group_wait = Duration::ZERO;
        evaluate(
            &store,
            &clock,
            &p,
            &[
                obs("https://a/", Some(Level::Critical)),
                obs("https://b/", Some(Level::Warning)),
            ],
        )
        .unwrap();
        let o = overview(&store, clock.now_ms(), 0).unwrap();
        assert_eq!(o.firing["critical"].len(), 1);
        assert_eq!(o.firing["warning"].len(), 1);
        assert!(o.pending.is_empty());
        assert_eq!(o.channels[0].pending, 2, "{:?}", o.channels);
        let text = o.summary();
        assert!(
            text.starts_with("2 alert(s) firing (1 critical, 1 warning)"),
            "{text}"
        );

        let id = o.firing["critical"][0].id.clone();
        clock.advance(Duration::from_secs(30));
        acknowledge(&store, &clock, &id, "alice").unwrap();
        clock.advance(Duration::from_secs(30));
        evaluate(&store, &clock, &p, &[obs("https://a/", None)]).unwrap();
        let d = detail(&store, &id).unwrap();
        let kinds: Vec<&str> = d.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert!(
            kinds.contains(&"firing") && kinds.contains(&"resolved"),
            "{kinds:?}"
        );
        assert!(
            d.timeline
                .iter()
                .any(|e| e.actor.as_deref() == Some("alice")),
            "{:?}",
            d.timeline
        );
        let o = overview(&store, clock.now_ms(), 0).unwrap();
        assert_eq!(o.recently_resolved.len(), 1);
        let e = detail(&store, "ALR-x").unwrap_err().to_string();
        assert!(e.contains("alert_id"), "{e}");
        assert!(detail(&store, "ALR-999").is_err());
    }
}
