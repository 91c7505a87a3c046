//! The monitoring engine: each monitor's run observes (its kind wraps a check), the
//! observations go through the alert lifecycle in one store transaction (a complete run
//! may resolve what it no longer sees; a partial one may not), and the outbox is woken to
//! deliver what that wrote. `run` drives the scheduler, the outbox, the daily retention
//! clean-up and (when configured) escalation every 30 s together until shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Schedule;
use super::scheduler::{Job, JobOutput, MonitorSpec, Scheduler, SchedulerError, job_fn};
use crate::alerts::escalation::{self, EscalationPlan};
use crate::alerts::lifecycle::{MonitorPolicy, evaluate, evaluate_complete};
use crate::alerts::outbox::Outbox;
use crate::alerts::{Observation, retention};
use crate::clock::Clock;
use crate::store::Store;

/// What one run of a monitor's kind saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindRun {
    pub observations: Vec<Observation>,
    /// The run looked at everything the monitor covers (nothing failed part way), so an
    /// open alert it does not mention is over.
    pub complete: bool,
}

/// A monitor's observation step (its kind over its check).
pub type Observe = Arc<dyn Fn() -> BoxFuture<'static, Result<KindRun, String>> + Send + Sync>;

/// One monitor as the engine runs it.
#[derive(Clone)]
pub struct Monitor {
    pub schedule: Schedule,
    pub timeout: Duration,
    pub policy: MonitorPolicy,
    pub observe: Observe,
}

/// The scheduler job of `monitor`: observe, evaluate, wake the outbox.
pub fn job(
    store: Store,
    clock: Arc<dyn Clock>,
    monitor: &Monitor,
    wake: Arc<Notify>,
) -> Arc<dyn Job> {
    let policy = Arc::new(monitor.policy.clone());
    let observe = monitor.observe.clone();
    job_fn(move || {
        let (store, clock, policy, observe, wake) = (
            store.clone(),
            clock.clone(),
            policy.clone(),
            observe.clone(),
            wake.clone(),
        );
        async move {
            let run = observe().await?;
            let problems = run
                .observations
                .iter()
                .filter(|o| o.level.is_some())
                .count();
            let observations = run.observations.len();
            // SQLite work off the async threads.
            let evaluated = tokio::task::spawn_blocking(move || {
                if run.complete {
                    evaluate_complete(&store, clock.as_ref(), &policy, &run.observations)
                } else {
                    evaluate(&store, clock.as_ref(), &policy, &run.observations)
                }
            })
            .await
            .map_err(|e| format!("the evaluation stopped: {e}"))?
            .map_err(|e| e.to_string())?;
            if !evaluated.notifications.is_empty() {
                wake.notify_one();
            }
            Ok(JobOutput {
                observations,
                problems,
            })
        }
    })
}

/// The scheduler, the outbox and retention, together.
pub struct Engine {
    scheduler: Scheduler,
    outbox: Arc<Outbox>,
    store: Store,
    clock: Arc<dyn Clock>,
    retention_days: u32,
    /// Escalation rules and contacts (run every [`escalation::TICK`]).
    escalation: Option<Arc<EscalationPlan>>,
}

impl Engine {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        replica: impl Into<String>,
        monitors: Vec<Monitor>,
        outbox: Arc<Outbox>,
        retention_days: u32,
    ) -> Result<Self, SchedulerError> {
        let wake = outbox.waker();
        let specs = monitors
            .iter()
            .map(|m| MonitorSpec {
                name: m.policy.name.clone(),
                schedule: m.schedule.clone(),
                timeout: m.timeout,
                job: job(store.clone(), clock.clone(), m, wake.clone()),
            })
            .collect();
        Ok(Self {
            scheduler: Scheduler::new(store.clone(), clock.clone(), replica, specs)?,
            outbox,
            store,
            clock,
            retention_days,
            escalation: None,
        })
    }

    /// Escalate unacknowledged alerts and overdue incidents by `plan` every 30 s (nothing
    /// when no step can tell anyone).
    pub fn with_escalation(mut self, plan: EscalationPlan) -> Self {
        self.escalation = (!plan.is_idle()).then(|| Arc::new(plan));
        self
    }

    /// Count runs (the scheduler) and send attempts (the outbox) in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.outbox.set_metrics(metrics.clone());
        self.scheduler.set_metrics(metrics);
        self
    }

    /// At most `n` monitor runs in progress at once.
    pub fn with_max_running(mut self, n: usize) -> Self {
        self.scheduler.set_max_running(n);
        self
    }

    pub fn scheduler(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Run the monitors, deliver notifications and clean up daily, until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let outbox = self.outbox.clone();
        let deliver = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move { outbox.run(shutdown).await })
        };
        let (store, clock, days) = (self.store.clone(), self.clock.clone(), self.retention_days);
        let clean = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let (store, now) = (store.clone(), clock.now_ms());
                    match tokio::task::spawn_blocking(move || retention::prune(&store, now, days))
                        .await
                    {
                        Ok(Ok(p)) => tracing::info!(?p, "monitoring retention clean-up"),
                        Ok(Err(e)) => tracing::warn!(error = %e, "retention clean-up failed"),
                        Err(e) => tracing::warn!(error = %e, "retention clean-up stopped"),
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(86_400)) => {}
                    }
                }
            })
        };
        let escalate = self.escalation.clone().map(|plan| {
            let (store, clock, wake) =
                (self.store.clone(), self.clock.clone(), self.outbox.waker());
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let (store, clock, plan) = (store.clone(), clock.clone(), plan.clone());
                    let round = tokio::task::spawn_blocking(move || {
                        escalation::run(&store, clock.as_ref(), &plan)
                    })
                    .await;
                    match round {
                        Ok(Ok(r)) if r.notifications > 0 => {
                            tracing::info!(?r, "escalated");
                            wake.notify_one();
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "escalation round failed"),
                        Err(e) => tracing::warn!(error = %e, "escalation round stopped"),
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(escalation::TICK) => {}
                    }
                }
            })
        });
        self.scheduler.run(shutdown).await;
        let _ = deliver.await;
        let _ = clean.await;
        if let Some(e) = escalate {
            let _ = e.await;
        }
    }
}
