//! The engine built from the configuration (what `serve` and `secops-mcp monitor` run):
//! every enabled `[[monitors]]` entry over the shared [`AppContext`], the configured
//! channels behind one outbox (addressing `[[contacts]]`), escalation by `[[escalation]]`
//! and the incidents' SLA contacts, `[monitoring]`'s retention and attempts, counted in the
//! context's metrics (runs, send attempts); and
//! [`run_once`], every enabled monitor observed once for `monitor --once` (no alert
//! changes, no notifications: a monitoring plugin's answer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::engine::Engine;
use super::kinds::{self, engine_monitor};
use super::scheduler::default_replica_id;
use crate::alerts::Level;
use crate::alerts::escalation::EscalationPlan;
use crate::alerts::outbox::{Outbox, OutboxSettings};
use crate::clock::Clock;
use crate::context::AppContext;

/// The engine of `ctx`'s enabled monitors and escalation, or `None` when no monitor is
/// enabled and no escalation step can tell anyone.
pub fn engine(ctx: &Arc<AppContext>, clock: Arc<dyn Clock>) -> anyhow::Result<Option<Engine>> {
    let monitors: Vec<_> = ctx
        .config
        .monitors
        .iter()
        .filter(|m| m.enabled)
        .map(|m| engine_monitor(ctx.clone(), m))
        .collect();
    let plan = EscalationPlan::from_config(&ctx.config);
    // Escalation (alerts and the incidents' SLA) needs the outbox even without monitors.
    if monitors.is_empty() && plan.is_idle() {
        return Ok(None);
    }
    let channels = ctx.config.notify.build()?;
    let settings = OutboxSettings {
        max_attempts: ctx.config.monitoring.max_attempts,
        ..OutboxSettings::default()
    };
    let outbox = Arc::new(
        Outbox::new(ctx.store.clone(), channels, clock.clone(), settings)
            .with_rate_limits(&ctx.config.notify.rate_limits())
            .with_contacts(ctx.config.contacts.iter().map(|c| c.recipient())),
    );
    let engine = Engine::new(
        ctx.store.clone(),
        clock,
        default_replica_id(),
        monitors,
        outbox,
        ctx.config.monitoring.retention_days,
    )?
    .with_metrics(ctx.metrics.clone())
    .with_max_running(ctx.config.monitoring.max_concurrent_runs as usize)
    .with_escalation(plan);
    Ok(Some(engine))
}

/// One monitor's answer in `monitor --once`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnceRow {
    pub monitor: String,
    pub kind: &'static str,
    /// `ok`, `problems`, `error` or `timeout`.
    pub outcome: &'static str,
    /// The worst level seen, if any problem.
    pub level: Option<Level>,
    /// How many subjects have a problem.
    pub problems: usize,
    /// The worst problem's title, or the error.
    pub detail: Option<String>,
    pub duration_ms: u64,
}

impl OnceRow {
    /// The monitoring-plugin exit status this row asks for: 0 ok (or info), 1 warning,
    /// 2 critical or emergency, 3 unknown (the check could not run).
    pub fn status(&self) -> u8 {
        match (self.outcome, self.level) {
            ("error" | "timeout", _) => 3,
            (_, Some(Level::Critical | Level::Emergency)) => 2,
            (_, Some(Level::Warning)) => 1,
            _ => 0,
        }
    }
}

/// The plugin status of a whole `--once` run: the worst row's, where a critical problem
/// outranks a check that could not run.
pub fn once_status(rows: &[OnceRow]) -> u8 {
    let worst = rows.iter().map(OnceRow::status).collect::<Vec<_>>();
    if worst.contains(&2) {
        2
    } else {
        worst.into_iter().max().unwrap_or(0)
    }
}

/// Every enabled monitor observed once, at most `concurrency` at a time, each within its
/// own timeout; in configuration order.
pub async fn run_once(ctx: &Arc<AppContext>, concurrency: usize) -> Vec<OnceRow> {
    use futures::StreamExt;
    let monitors: Vec<_> = ctx.config.monitors.iter().filter(|m| m.enabled).collect();
    futures::stream::iter(monitors)
        .map(|m| async move {
            let started = Instant::now();
            let run =
                tokio::time::timeout(m.timeout, kinds::observe(ctx, &m.name, &m.settings)).await;
            let duration_ms = started.elapsed().as_millis() as u64;
            let row = |outcome, level, problems, detail| OnceRow {
                monitor: m.name.clone(),
                kind: m.kind(),
                outcome,
                level,
                problems,
                detail,
                duration_ms,
            };
            match run {
                Err(_) => row(
                    "timeout",
                    None,
                    0,
                    Some(format!(
                        "no answer within {}",
                        super::format_duration(m.timeout)
                    )),
                ),
                Ok(Err(e)) => row("error", None, 0, Some(e)),
                Ok(Ok(run)) => {
                    let mut problems: Vec<_> = run
                        .observations
                        .iter()
                        .filter_map(|o| o.level.map(|l| (l, o)))
                        .collect();
                    problems.sort_by_key(|p| std::cmp::Reverse(p.0));
                    let worst = problems.first().map(|(l, o)| (*l, o.title.clone()));
                    let outcome = if problems.is_empty() {
                        "ok"
                    } else {
                        "problems"
                    };
                    row(
                        outcome,
                        worst.as_ref().map(|w| w.0),
                        problems.len(),
                        worst.map(|w| w.1),
                    )
                }
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// How long `run_once` may take at most: the longest monitor timeout (they run
/// concurrently, so this bounds the whole only when `concurrency` covers them all).
pub fn longest_timeout(ctx: &AppContext) -> Duration {
    ctx.config
        .monitors
        .iter()
        .map(|m| m.timeout)
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcome: &'static str, level: Option<Level>) -> OnceRow {
        OnceRow {
            monitor: "m".into(),
            kind: "uptime",
            outcome,
            level,
            problems: usize::from(level.is_some()),
            detail: None,
            duration_ms: 1,
        }
    }

    #[test]
    fn once_status_is_a_monitoring_plugins() {
        assert_eq!(once_status(&[]), 0);
        assert_eq!(once_status(&[row("ok", None)]), 0);
        assert_eq!(once_status(&[row("problems", Some(Level::Info))]), 0);
        assert_eq!(once_status(&[row("problems", Some(Level::Warning))]), 1);
        assert_eq!(
            once_status(&[row("ok", None), row("problems", Some(Level::Emergency))]),
            2
        );
        assert_eq!(
            once_status(&[row("error", None), row("problems", Some(Level::Warning))]),
            3
        );
        // A critical problem outranks a check that could not run.
        assert_eq!(
            once_status(&[row("timeout", None), row("problems", Some(Level::Critical))]),
            2
        );
    }
}
