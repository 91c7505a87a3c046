//! The read side of our alerts (what `alert_status` will show): an overview (firing and
//! pending alerts by level, loudest first and oldest first within a level; recently
//! resolved; each monitor's last run and outcome; outbox health per channel) and the detail
//! of one alert with its timeline (state changes, acknowledgement, notes, every
//! notification and its attempts). Times are RFC 3339 (UTC).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::mute::{MuteRules, Muter, Suppression};
use super::{AlertState, Level, parse_alert_id};
use crate::checks::{ArgError, Summary};
use crate::clock::{Clock, Millis, rfc3339};
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
    /// Why its notifications are held, when something mutes it (a silence, a maintenance
    /// window, an inhibiting alert); it is still evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted: Option<Suppression>,
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
            muted: None,
        }
    }
}

/// A monitor: its schedule, next run (when configured here), last run and outcome.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MonitorView {
    pub name: String,
    /// The monitor's kind; none for a monitor no longer in the configuration.
    pub kind: Option<String>,
    /// `every 60s`, `cron "0 2 * * *" UTC`.
    pub schedule: Option<String>,
    pub enabled: bool,
    /// When it runs next (enabled monitors of this configuration).
    pub next_run: Option<String>,
    /// When its newest run started; none when it never ran.
    pub last_run: Option<String>,
    pub running: bool,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    /// Uptime monitors: uptime % and p95 response time over the last 24 hours and 7 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime: Option<UptimeWindows>,
}

/// An uptime monitor's history over two windows.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct UptimeWindows {
    pub last_24h: crate::store::uptime::UptimeStats,
    pub last_7d: crate::store::uptime::UptimeStats,
}

/// A configured monitor, as the overview shows it beside its runs.
#[derive(Debug, Clone)]
pub struct ScheduledMonitor {
    pub name: String,
    pub kind: &'static str,
    pub schedule: crate::monitor::Schedule,
    pub enabled: bool,
}

impl ScheduledMonitor {
    /// The configuration's monitors.
    pub fn of_config(monitors: &[crate::config::MonitorConfig]) -> Vec<Self> {
        monitors
            .iter()
            .map(|m| ScheduledMonitor {
                name: m.name.clone(),
                kind: m.kind(),
                schedule: m.schedule.0.clone(),
                enabled: m.enabled,
            })
            .collect()
    }
}

/// Delivery health of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ChannelView {
    pub channel: String,
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Held back by the channel's rate limit and sent inside a digest notification.
    pub digested: u64,
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

/// alert_status arguments.
#[derive(Debug, Clone, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    /// One alert (`ALR-12`) with its timeline; without it, the overview only.
    pub alert_id: Option<String>,
    /// How far back "recently resolved" reaches: `30m`, `24h` (default), `7d`, or an
    /// RFC 3339 time.
    pub since: Option<String>,
}

/// The overview, and one alert's detail when asked for.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AlertStatusReport {
    #[serde(flatten)]
    pub overview: AlertOverview,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertDetailView>,
}

/// alert_status: the overview at `now_ms`, and the detail of `args.alert_id`, muted by
/// silences only ([`run_muted`] adds the configured windows and inhibition rules).
pub fn run(
    store: &Store,
    now_ms: Millis,
    configured: &[ScheduledMonitor],
    args: &StatusArgs,
) -> Result<AlertStatusReport, StatusError> {
    run_muted(store, now_ms, configured, args, &MuteRules::default())
}

/// alert_status with what mutes alerts: each open alert says whether and why it is muted.
pub fn run_muted(
    store: &Store,
    now_ms: Millis,
    configured: &[ScheduledMonitor],
    args: &StatusArgs,
    rules: &MuteRules,
) -> Result<AlertStatusReport, StatusError> {
    let now = time::OffsetDateTime::from_unix_timestamp_nanos(now_ms as i128 * 1_000_000)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let since = crate::checks::parse_since(args.since.as_deref().unwrap_or("24h"), now)?;
    let since_ms = (since.unix_timestamp_nanos() / 1_000_000) as Millis;
    let alert = match &args.alert_id {
        Some(id) => Some(detail_muted(store, id, now_ms, rules)?),
        None => None,
    };
    Ok(AlertStatusReport {
        overview: overview_muted(store, now_ms, configured, since_ms, rules)?,
        alert,
    })
}

impl Summary for AlertStatusReport {
    fn summary(&self) -> String {
        match &self.alert {
            Some(d) => format!(
                "{} ({}, {}): {}. {} timeline entries. {}",
                d.alert.id,
                d.alert.level.as_str(),
                d.alert.state.as_str(),
                d.alert.title,
                d.timeline.len(),
                self.overview.summary()
            ),
            None => self.overview.summary(),
        }
    }
}

/// The overview at `now_ms`; resolved alerts since `resolved_since_ms`.
pub fn overview(
    store: &Store,
    now_ms: Millis,
    configured: &[ScheduledMonitor],
    resolved_since_ms: Millis,
) -> Result<AlertOverview, StatusError> {
    overview_muted(
        store,
        now_ms,
        configured,
        resolved_since_ms,
        &MuteRules::default(),
    )
}

/// [`overview`] with the configured muting shown on each open alert.
pub fn overview_muted(
    store: &Store,
    now_ms: Millis,
    configured: &[ScheduledMonitor],
    resolved_since_ms: Millis,
    rules: &MuteRules,
) -> Result<AlertOverview, StatusError> {
    let muter = Muter::read(store, rules, now_ms)?;
    let view = |row: &AlertRow| AlertView {
        muted: muter.check(row),
        ..AlertView::from(row)
    };
    let mut firing: BTreeMap<String, Vec<AlertView>> = BTreeMap::new();
    let mut pending = Vec::new();
    for row in store.alerts_open()? {
        match row.state {
            AlertState::Firing => firing
                .entry(row.level.as_str().to_string())
                .or_default()
                .push(view(&row)),
            _ => pending.push(view(&row)),
        }
    }
    let recently_resolved = store
        .alerts_resolved_since(resolved_since_ms, RECENT_RESOLVED)?
        .iter()
        .map(AlertView::from)
        .collect();
    let monitors = monitor_views(store, now_ms, configured)?;
    let channels = store
        .outbox_health()?
        .into_iter()
        .map(|h| ChannelView {
            oldest_pending_age_secs: h.oldest_pending_age_ms(now_ms).map(|ms| ms / 1000),
            channel: h.channel,
            pending: h.pending,
            delivered: h.delivered,
            failed: h.dead,
            digested: h.digested,
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

/// The configured monitors in configuration order, then any other monitor with recorded
/// runs (removed from the configuration since).
fn monitor_views(
    store: &Store,
    now_ms: Millis,
    configured: &[ScheduledMonitor],
) -> Result<Vec<MonitorView>, StatusError> {
    let mut runs = store.monitor_run_status()?;
    let mut out = Vec::with_capacity(configured.len() + runs.len());
    for m in configured {
        let run = runs
            .iter()
            .position(|r| r.monitor == m.name)
            .map(|i| runs.remove(i));
        let next_run = if m.enabled {
            let mut last = store.last_monitor_slot(&m.name, now_ms)?;
            if last.is_none() && matches!(m.schedule, crate::monitor::Schedule::Cron { .. }) {
                // As the scheduler counts a cron monitor that never ran: from now.
                last = Some(now_ms - 1);
            }
            Some(rfc3339(m.schedule.next_after(&m.name, now_ms, last)))
        } else {
            None
        };
        out.push(MonitorView {
            name: m.name.clone(),
            kind: Some(m.kind.to_string()),
            schedule: Some(m.schedule.describe()),
            enabled: m.enabled,
            next_run,
            last_run: run.as_ref().map(|r| rfc3339(r.last_run.started_ms)),
            running: run
                .as_ref()
                .is_some_and(|r| r.last_run.finished_ms.is_none()),
            last_outcome: run
                .as_ref()
                .and_then(|r| r.last_outcome.map(|o| o.as_str().to_string())),
            last_error: run.and_then(|r| r.last_run.error),
            uptime: if m.kind == "uptime" {
                Some(UptimeWindows {
                    last_24h: store.uptime_stats(&m.name, now_ms - 86_400_000)?,
                    last_7d: store.uptime_stats(&m.name, now_ms - 7 * 86_400_000)?,
                })
            } else {
                None
            },
        });
    }
    out.extend(runs.into_iter().map(|s| MonitorView {
        name: s.monitor,
        kind: None,
        schedule: None,
        enabled: false,
        next_run: None,
        last_run: Some(rfc3339(s.last_run.started_ms)),
        running: s.last_run.finished_ms.is_none(),
        last_outcome: s.last_outcome.map(|o| o.as_str().to_string()),
        last_error: s.last_run.error,
        uptime: None,
    }));
    Ok(out)
}

/// One alert (`ALR-n`) with its timeline, oldest first (muting by silences shown at now).
pub fn detail(store: &Store, id: &str) -> Result<AlertDetailView, StatusError> {
    let now = crate::clock::SystemClock.now_ms();
    detail_muted(store, id, now, &MuteRules::default())
}

/// [`detail`] with the configured muting at `now_ms` (an open alert only).
pub fn detail_muted(
    store: &Store,
    id: &str,
    now_ms: Millis,
    rules: &MuteRules,
) -> Result<AlertDetailView, StatusError> {
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
                    "{} to {}{}: {}{}",
                    a.kind,
                    a.channel,
                    a.contact.map(|c| format!(" ({c})")).unwrap_or_default(),
                    a.outcome,
                    a.detail.map(|d| format!(" ({d})")).unwrap_or_default()
                )),
            },
        ));
    }
    timeline.sort_by_key(|(at, _)| *at);
    let muted = match d.alert.state {
        AlertState::Resolved => None,
        _ => Muter::read(store, rules, now_ms)?.check(&d.alert),
    };
    Ok(AlertDetailView {
        alert: AlertView {
            muted,
            ..AlertView::from(&d.alert)
        },
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
        let muted = self
            .firing
            .values()
            .flatten()
            .filter(|a| a.muted.is_some())
            .count();
        let mut s = format!(
            "{firing} alert(s) firing ({}{}), {} pending.",
            by_level.join(", "),
            if muted > 0 {
                format!("; {muted} muted")
            } else {
                String::new()
            },
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
        let o = overview(&store, clock.now_ms(), &[], 0).unwrap();
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
        acknowledge(&store, &clock, &id, "alice", &[]).unwrap();
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
        let o = overview(&store, clock.now_ms(), &[], 0).unwrap();
        assert_eq!(o.recently_resolved.len(), 1);
        let e = detail(&store, "ALR-x").unwrap_err().to_string();
        assert!(e.contains("alert_id"), "{e}");
        assert!(detail(&store, "ALR-999").is_err());
    }
}
