//! Prometheus metrics in text format for `/metrics`: tool calls, errors and latency
//! histograms per tool, HTTP requests refused by the transport guards, monitor runs and
//! their durations (the scheduler records them), notification send attempts per channel
//! (the outbox records them), and, read from the store at scrape time, our alerts by level
//! and state and the outbox per channel (pending, delivered, dead, digested, oldest pending
//! age), and the notifications rate limits held back into digests.
//! Channel and monitor names are config names; no URL or secret is ever a label. Outside
//! `server/` so the context and the monitoring engine hold it without server types.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::alerts::{AlertState, Level};
use crate::clock::Clock;
use crate::store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    tool: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MonitorOutcome {
    monitor: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MonitorLabel {
    monitor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelOutcome {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LevelState {
    level: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelState {
    channel: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

type HistFamily = Family<ToolLabel, Histogram, fn() -> Histogram>;
type RunHistFamily = Family<MonitorLabel, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Mutex<Registry>,
    calls: Family<ToolOutcome, Counter>,
    errors: Family<ToolLabel, Counter>,
    latency: HistFamily,
    refused: Family<Reason, Counter>,
    monitor_runs: Family<MonitorOutcome, Counter>,
    monitor_duration: RunHistFamily,
    sent: Family<ChannelOutcome, Counter>,
    digested: Family<ChannelLabel, Counter>,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms .. ~52 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

fn run_histogram() -> Histogram {
    // 1 ms .. ~9 min
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let calls = Family::<ToolOutcome, Counter>::default();
        let errors = Family::<ToolLabel, Counter>::default();
        let latency: HistFamily = Family::new_with_constructor(latency_histogram);
        let refused = Family::<Reason, Counter>::default();
        let monitor_runs = Family::<MonitorOutcome, Counter>::default();
        let monitor_duration: RunHistFamily = Family::new_with_constructor(run_histogram);
        let sent = Family::<ChannelOutcome, Counter>::default();
        let mut registry = Registry::with_prefix("secops_mcp");
        registry.register(
            "tool_calls",
            "Tool calls by tool and outcome (ok, error, invalid_argument)",
            calls.clone(),
        );
        registry.register(
            "tool_errors",
            "Tool calls that returned an error result",
            errors.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Tool call latency",
            latency.clone(),
        );
        registry.register(
            "http_refused",
            "HTTP requests refused by the transport (unauthorized, origin, host, rate_limited, body_too_large)",
            refused.clone(),
        );
        registry.register(
            "monitor_runs",
            "Monitor runs by monitor and outcome (ok, problems, error, timeout)",
            monitor_runs.clone(),
        );
        registry.register(
            "monitor_run_duration_seconds",
            "How long monitor runs took",
            monitor_duration.clone(),
        );
        registry.register(
            "notifications_sent",
            "Notification send attempts by channel and outcome (delivered, retry, dead)",
            sent.clone(),
        );
        let digested = Family::<ChannelLabel, Counter>::default();
        registry.register(
            "notifications_digested",
            "Notifications a channel's rate limit held back into a digest, by channel",
            digested.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            calls,
            errors,
            latency,
            refused,
            monitor_runs,
            monitor_duration,
            sent,
            digested,
        }
    }

    /// Read our alerts and the outbox from `store` at every scrape: `alerts{level,state}`
    /// (every level and state, zeros included), `notifications{channel,state}` and
    /// `notification_oldest_pending_age_seconds{channel}` (0 with nothing pending) for
    /// every name in `channels` and any other channel that still has rows.
    pub fn collect_monitoring(&self, store: Store, clock: Arc<dyn Clock>, channels: Vec<String>) {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.register_collector(Box::new(StoreGauges {
            store,
            clock,
            channels,
        }));
    }

    /// A monitor run ended (`outcome` as the run records say) after `seconds`.
    pub fn observe_monitor_run(&self, monitor: &str, outcome: &str, seconds: f64) {
        self.monitor_runs
            .get_or_create(&MonitorOutcome {
                monitor: monitor.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.monitor_duration
            .get_or_create(&MonitorLabel {
                monitor: monitor.to_string(),
            })
            .observe(seconds);
    }

    /// The outbox made one attempt through `channel`: `delivered`, `retry` or `dead`.
    pub fn notification_attempt(&self, channel: &str, outcome: &str) {
        self.sent
            .get_or_create(&ChannelOutcome {
                channel: channel.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The outbox held `n` notifications of `channel` back into a digest (rate limit).
    pub fn notifications_digested(&self, channel: &str, n: u64) {
        self.digested
            .get_or_create(&ChannelLabel {
                channel: channel.to_string(),
            })
            .inc_by(n);
    }

    pub fn observe_call(&self, tool: &str, outcome: &str, seconds: f64) {
        self.calls
            .get_or_create(&ToolOutcome {
                tool: tool.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        let label = ToolLabel {
            tool: tool.to_string(),
        };
        if outcome != "ok" {
            self.errors.get_or_create(&label).inc();
        }
        self.latency.get_or_create(&label).observe(seconds);
    }

    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition. With [`Metrics::collect_monitoring`] this reads
    /// the store: call it off the async threads.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The store-backed gauges, computed at each scrape.
struct StoreGauges {
    store: Store,
    clock: Arc<dyn Clock>,
    channels: Vec<String>,
}

impl std::fmt::Debug for StoreGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreGauges")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

const STATES: [AlertState; 3] = [
    AlertState::Pending,
    AlertState::Firing,
    AlertState::Resolved,
];

fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(L, f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(*value).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for StoreGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (counts, health) = match (self.store.alert_counts(), self.store.outbox_health()) {
            (Ok(c), Ok(h)) => (c, h),
            (Err(e), _) | (_, Err(e)) => {
                // The scrape still has every other metric; the log says why these are absent.
                tracing::warn!(error = %e, "/metrics: cannot read alert and outbox counts");
                return Ok(());
            }
        };
        let mut alerts = Vec::new();
        for level in Level::ALL {
            for state in STATES {
                let n = counts
                    .iter()
                    .find(|c| c.level == level.as_str() && c.state == state.as_str())
                    .map_or(0, |c| c.count);
                alerts.push((
                    LevelState {
                        level: level.as_str().into(),
                        state: state.as_str().into(),
                    },
                    n as f64,
                ));
            }
        }
        gauges(
            &mut encoder,
            "alerts",
            "Our alerts by level and state (resolved ones until retention removes them)",
            &alerts,
        )?;
        let mut names: Vec<&str> = self.channels.iter().map(String::as_str).collect();
        names.extend(health.iter().map(|h| h.channel.as_str()));
        names.sort_unstable();
        names.dedup();
        let now = self.clock.now_ms();
        let mut rows = Vec::new();
        let mut ages = Vec::new();
        for name in names {
            let h = health.iter().find(|h| h.channel == name);
            let get = |f: fn(&crate::store::ChannelHealth) -> u64| h.map_or(0, f);
            for (state, n) in [
                ("pending", get(|h| h.pending)),
                ("delivered", get(|h| h.delivered)),
                ("dead", get(|h| h.dead)),
                ("digested", get(|h| h.digested)),
            ] {
                rows.push((
                    ChannelState {
                        channel: name.into(),
                        state: state.into(),
                    },
                    n as f64,
                ));
            }
            let age_ms = h.and_then(|h| h.oldest_pending_age_ms(now)).unwrap_or(0);
            ages.push((
                ChannelLabel {
                    channel: name.into(),
                },
                age_ms as f64 / 1000.0,
            ));
        }
        gauges(
            &mut encoder,
            "notifications",
            "Notifications in the outbox by channel and state (pending, delivered, dead, digested)",
            &rows,
        )?;
        gauges(
            &mut encoder,
            "notification_oldest_pending_age_seconds",
            "How long the oldest pending notification of a channel has waited (0: none pending)",
            &ages,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::lifecycle::{MonitorPolicy, evaluate};
    use crate::alerts::{Level, Observation};
    use crate::clock::ManualClock;

    #[test]
    fn the_scrape_has_runs_sends_and_the_store_gauges() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let clock = ManualClock::at(1_790_000_000_000);
        let m = Metrics::new();
        m.collect_monitoring(
            store.clone(),
            Arc::new(clock.clone()),
            vec!["hook".into(), "log".into()],
        );
        let mut policy = MonitorPolicy::new("web").route(Level::Critical, &["hook"]);
        policy.group_wait = std::time::Duration::ZERO;
        let down = Observation {
            code: "endpoint_down".into(),
            subject: Default::default(),
            level: Some(Level::Critical),
            title: "down".into(),
            summary: String::new(),
            value: None,
        };
        evaluate(&store, &clock, &policy, &[down]).unwrap();
        clock.advance(std::time::Duration::from_secs(90));
        m.observe_monitor_run("web", "problems", 0.25);
        m.notification_attempt("hook", "retry");
        m.notifications_digested("hook", 9);

        let text = m.encode();
        for line in [
            r#"secops_mcp_monitor_runs_total{monitor="web",outcome="problems"} 1"#,
            r#"secops_mcp_monitor_run_duration_seconds_count{monitor="web"} 1"#,
            r#"secops_mcp_notifications_sent_total{channel="hook",outcome="retry"} 1"#,
            r#"secops_mcp_alerts{level="critical",state="firing"} 1"#,
            r#"secops_mcp_alerts{level="warning",state="firing"} 0"#,
            r#"secops_mcp_notifications{channel="hook",state="pending"} 1"#,
            r#"secops_mcp_notifications{channel="log",state="pending"} 0"#,
            r#"secops_mcp_notifications{channel="hook",state="digested"} 0"#,
            r#"secops_mcp_notifications_digested_total{channel="hook"} 9"#,
            r#"secops_mcp_notification_oldest_pending_age_seconds{channel="hook"} 90"#,
            r#"secops_mcp_notification_oldest_pending_age_seconds{channel="log"} 0"#,
            "# TYPE secops_mcp_alerts gauge",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
