//! The monitor scheduler: runs each due monitor's job, at most one run of a monitor at a
//! time (a slot that comes while the previous run is still going is skipped), cancels a
//! run that exceeds its timeout (recorded as `timeout`), claims every run in the store
//! with a lease first (so schedulers sharing a database never run a monitor twice for one
//! slot) and records how it ended. After downtime the missed slot runs once. `run` is the
//! loop that sleeps until the next due time or shutdown; `next_runs` feeds status output.
//!
//! Schedule time is the [`Clock`]'s (tests drive a `ManualClock`); a run's timeout is real
//! elapsed time (tokio).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{RunOutcome, Schedule, format_duration};
use crate::clock::{Clock, Millis};
use crate::metrics::Metrics;
use crate::store::monitor_runs::{Claim, RunEnd};
use crate::store::{Store, StoreError};

/// A lease lasts the run's timeout plus this, so it outlives every run that ends in time.
pub const LEASE_GRACE: Duration = Duration::from_secs(30);
/// After a store error, try the monitor again this much later.
const RETRY_AFTER_STORE_ERROR_MS: Millis = 5_000;
/// `run` re-reads the clock at least this often (a suspended host, a clock step).
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Runs in progress at once by default: due monitors beyond it wait for a run to finish
/// (1,000 monitors starting together must not start 1,000 runs and their threads).
pub const DEFAULT_MAX_RUNNING: usize = 32;
/// How long shutdown waits for cancelled runs to record themselves.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// What a finished job reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobOutput {
    /// Observations the run yielded (problems and all-clears).
    pub observations: usize,
    /// How many of them are problems (0: the run's outcome is `ok`, else `problems`).
    pub problems: usize,
}

impl From<usize> for JobOutput {
    /// A count of observations, none of them a problem.
    fn from(observations: usize) -> Self {
        JobOutput {
            observations,
            problems: 0,
        }
    }
}

pub type JobFuture = Pin<Box<dyn Future<Output = Result<JobOutput, String>> + Send>>;

/// One monitor's work: a run of its check that yields observations (and hands them to the
/// alerts), or an error text saying why the check could not be done.
pub trait Job: Send + Sync + 'static {
    fn run(&self) -> JobFuture;
}

struct FnJob<F>(F);

impl<F, Fut, O> Job for FnJob<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, String>> + Send + 'static,
    O: Into<JobOutput>,
{
    fn run(&self) -> JobFuture {
        let fut = (self.0)();
        Box::pin(async move { fut.await.map(Into::into) })
    }
}

/// A job from an async closure returning `Result<usize | JobOutput, String>`.
pub fn job_fn<F, Fut, O>(f: F) -> Arc<dyn Job>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, String>> + Send + 'static,
    O: Into<JobOutput>,
{
    Arc::new(FnJob(f))
}

/// One monitor as the scheduler sees it.
#[derive(Clone)]
pub struct MonitorSpec {
    pub name: String,
    pub schedule: Schedule,
    /// A run longer than this is cancelled and recorded as `timeout`.
    pub timeout: Duration,
    pub job: Arc<dyn Job>,
}

impl std::fmt::Debug for MonitorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorSpec")
            .field("name", &self.name)
            .field("schedule", &self.schedule.describe())
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("monitor name \"{0}\" is used twice; every monitor needs its own name")]
    DuplicateName(String),
    #[error("monitor \"{0}\": the run timeout must be more than zero")]
    ZeroTimeout(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one `tick` did, by monitor name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Runs started by this scheduler.
    pub started: Vec<String>,
    /// Due, but the previous run (here or on another replica) is still going: slot skipped.
    pub still_running: Vec<String>,
    /// Due, but another replica already has this slot.
    pub claimed_elsewhere: Vec<String>,
    /// Due, but the scheduler's runs in progress are at `max_running`: started when one
    /// finishes.
    pub deferred: Vec<String>,
    /// Due, but the store could not be asked (retried shortly).
    pub store_errors: Vec<String>,
}

/// A monitor's place in the schedule, for status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorNext {
    pub monitor: String,
    /// `every 60s`, `cron "0 2 * * *" UTC`.
    pub schedule: String,
    pub next_due_ms: Millis,
    /// A run of it is in progress in this scheduler.
    pub running: bool,
    /// When its newest run (on any replica) started.
    pub last_run_ms: Option<Millis>,
    /// How its newest finished run ended.
    pub last_outcome: Option<RunOutcome>,
}

struct Entry {
    spec: MonitorSpec,
    /// The newest slot that was run, is running, or was skipped or taken elsewhere.
    last_slot: Option<Millis>,
    next_due: Millis,
    running: Arc<AtomicBool>,
}

pub struct Scheduler {
    store: Store,
    clock: Arc<dyn Clock>,
    replica: String,
    entries: Vec<Entry>,
    tasks: JoinSet<()>,
    cancel_runs: CancellationToken,
    /// Where every finished run is counted (`monitor_runs`, its duration), when set.
    metrics: Option<Arc<Metrics>>,
    max_running: usize,
}

impl Scheduler {
    /// A scheduler for `monitors`, claiming runs as `replica` (see [`default_replica_id`]).
    /// Each monitor resumes from its newest recorded slot.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        replica: impl Into<String>,
        monitors: Vec<MonitorSpec>,
    ) -> Result<Self, SchedulerError> {
        let mut names = HashSet::new();
        let now = clock.now_ms();
        let mut entries = Vec::with_capacity(monitors.len());
        for spec in monitors {
            if !names.insert(spec.name.clone()) {
                return Err(SchedulerError::DuplicateName(spec.name));
            }
            if spec.timeout.is_zero() {
                return Err(SchedulerError::ZeroTimeout(spec.name));
            }
            let mut last_slot = store.last_monitor_slot(&spec.name, now)?;
            if last_slot.is_none() && matches!(spec.schedule, Schedule::Cron { .. }) {
                // A cron monitor that never ran counts from now: its first run is at the
                // next matching minute, which a later tick must still see as due.
                last_slot = Some(now - 1);
            }
            let next_due = spec.schedule.next_after(&spec.name, now, last_slot);
            entries.push(Entry {
                spec,
                last_slot,
                next_due,
                running: Arc::new(AtomicBool::new(false)),
            });
        }
        Ok(Scheduler {
            store,
            clock,
            replica: replica.into(),
            entries,
            tasks: JoinSet::new(),
            cancel_runs: CancellationToken::new(),
            metrics: None,
            max_running: DEFAULT_MAX_RUNNING,
        })
    }

    /// Count every finished run in `metrics` (outcome and real elapsed time).
    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    /// At most `n` runs in progress at once (at least 1); the others stay due.
    pub fn set_max_running(&mut self, n: usize) {
        self.max_running = n.max(1);
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Start every due monitor that is not running; compute each monitor's next due time.
    pub fn tick(&mut self) -> TickReport {
        while self.tasks.try_join_next().is_some() {}
        let mut report = TickReport::default();
        let mut free = self.max_running.saturating_sub(self.running());
        for i in 0..self.entries.len() {
            let now = self.clock.now_ms();
            let entry = &mut self.entries[i];
            let name = entry.spec.name.clone();
            let slot = entry.spec.schedule.next_after(&name, now, entry.last_slot);
            if slot > now {
                entry.next_due = slot;
                continue;
            }
            if entry.running.load(Ordering::SeqCst) {
                tracing::warn!(monitor = %name, "the previous run is still going; this slot is skipped");
                report.still_running.push(name);
                self.mark_done(i, slot, now);
                continue;
            }
            if free == 0 {
                // Stays due: started by a later tick, when a run has finished.
                entry.next_due = now;
                report.deferred.push(name);
                continue;
            }
            let lease_until = now + (entry.spec.timeout + LEASE_GRACE).as_millis() as Millis;
            match self
                .store
                .claim_monitor_run(&name, slot, &self.replica, now, lease_until)
            {
                Ok(Claim::Claimed(id)) => {
                    free -= 1;
                    self.spawn_run(i, id, slot);
                    report.started.push(name);
                    self.mark_done(i, slot, now);
                }
                Ok(Claim::Busy { claimed_by, .. }) => {
                    tracing::info!(monitor = %name, %claimed_by, "the previous run is still going elsewhere; this slot is skipped");
                    report.still_running.push(name);
                    self.mark_done(i, slot, now);
                }
                Ok(Claim::SlotTaken { scheduled_ms }) => {
                    tracing::debug!(monitor = %name, "slot already claimed by another scheduler");
                    report.claimed_elsewhere.push(name);
                    self.mark_done(i, slot.max(scheduled_ms), now);
                }
                Err(e) => {
                    tracing::warn!(monitor = %name, error = %e, "cannot claim a monitor run; retrying shortly");
                    report.store_errors.push(name);
                    self.entries[i].next_due = now + RETRY_AFTER_STORE_ERROR_MS;
                }
            }
        }
        report
    }

    fn mark_done(&mut self, i: usize, slot: Millis, now: Millis) {
        let entry = &mut self.entries[i];
        entry.last_slot = Some(entry.last_slot.map_or(slot, |l| l.max(slot)));
        entry.next_due = entry
            .spec
            .schedule
            .next_after(&entry.spec.name, now, entry.last_slot);
    }

    fn spawn_run(&mut self, i: usize, id: i64, slot: Millis) {
        let entry = &self.entries[i];
        let running = entry.running.clone();
        running.store(true, Ordering::SeqCst);
        let name = entry.spec.name.clone();
        let timeout = entry.spec.timeout;
        let job = entry.spec.job.clone();
        let store = self.store.clone();
        let clock = self.clock.clone();
        let replica = self.replica.clone();
        let cancel = self.cancel_runs.clone();
        let metrics = self.metrics.clone();
        self.tasks.spawn(async move {
            let _reset = ResetOnDrop(running);
            let started = clock.now_ms();
            let elapsed = std::time::Instant::now();
            let run = std::panic::AssertUnwindSafe(job.run()).catch_unwind();
            let result: Result<JobOutput, (RunOutcome, String)> = tokio::select! {
                r = tokio::time::timeout(timeout, run) => match r {
                    Ok(Ok(Ok(out))) => Ok(out),
                    Ok(Ok(Err(e))) => Err((RunOutcome::Error, e)),
                    Ok(Err(_panic)) => Err((RunOutcome::Error, "the run panicked".to_string())),
                    Err(_) => Err((
                        RunOutcome::Timeout,
                        format!("cancelled after the run timeout of {}", format_duration(timeout)),
                    )),
                },
                _ = cancel.cancelled() => Err((
                    RunOutcome::Error,
                    "cancelled: the scheduler is shutting down".to_string(),
                )),
            };
            let finished_ms = clock.now_ms();
            let (outcome, error, observations) = match &result {
                Ok(out) if out.problems > 0 => (RunOutcome::Problems, None, out.observations),
                Ok(out) => (RunOutcome::Ok, None, out.observations),
                Err((outcome, e)) => (*outcome, Some(e.as_str()), 0),
            };
            let end = RunEnd {
                outcome,
                error,
                observations,
                finished_ms,
            };
            let duration_ms = finished_ms - started;
            if let Some(m) = &metrics {
                m.observe_monitor_run(&name, outcome.as_str(), elapsed.elapsed().as_secs_f64());
            }
            match store.finish_monitor_run(id, &replica, &end) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(monitor = %name, run = id, "the run's lease expired before it finished; its result is not recorded")
                }
                Err(e) => {
                    tracing::warn!(monitor = %name, run = id, error = %e, "cannot record the end of a monitor run")
                }
            }
            match outcome {
                RunOutcome::Ok | RunOutcome::Problems => tracing::info!(
                    monitor = %name, slot, outcome = outcome.as_str(), observations, duration_ms, "monitor run finished"
                ),
                RunOutcome::Error | RunOutcome::Timeout => tracing::warn!(
                    monitor = %name, slot, outcome = outcome.as_str(), error = error.unwrap_or(""), duration_ms, "monitor run failed"
                ),
            }
        });
    }

    /// Wait until every run this scheduler started has finished and been recorded.
    pub async fn wait_idle(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs in progress in this scheduler.
    pub fn running(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.running.load(Ordering::SeqCst))
            .count()
    }

    /// The earliest next due time of any monitor.
    pub fn next_due_ms(&self) -> Option<Millis> {
        self.entries.iter().map(|e| e.next_due).min()
    }

    /// Tick, then sleep until the next due time, until `shutdown`; then cancel the runs in
    /// progress (recorded as errors saying so) and wait briefly for their records.
    pub async fn run(&mut self, shutdown: CancellationToken) {
        loop {
            let report = self.tick();
            let now = self.clock.now_ms();
            // With runs deferred, the next tick comes when a run finishes (join_next).
            let wait = if report.deferred.is_empty() {
                self.next_due_ms()
                    .map(|due| Duration::from_millis((due - now).max(10) as u64))
                    .unwrap_or(MAX_SLEEP)
                    .min(MAX_SLEEP)
            } else {
                MAX_SLEEP
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                Some(_) = self.tasks.join_next() => {}
            }
        }
        self.cancel_runs.cancel();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!("monitor runs did not stop in time; abandoning them");
            self.tasks.abort_all();
        }
    }

    /// Every monitor's next due time, whether it is running, and its last run and outcome.
    pub fn next_runs(&self) -> Result<Vec<MonitorNext>, StoreError> {
        let status = self.store.monitor_run_status()?;
        Ok(self
            .entries
            .iter()
            .map(|e| {
                let st = status.iter().find(|s| s.monitor == e.spec.name);
                MonitorNext {
                    monitor: e.spec.name.clone(),
                    schedule: e.spec.schedule.describe(),
                    next_due_ms: e.next_due,
                    running: e.running.load(Ordering::SeqCst),
                    last_run_ms: st.map(|s| s.last_run.started_ms),
                    last_outcome: st.and_then(|s| s.last_outcome),
                }
            })
            .collect())
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.cancel_runs.cancel();
    }
}

struct ResetOnDrop(Arc<AtomicBool>);

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// `host:pid`: who claims runs, unique per process.
pub fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string());
    format!(
        "{}:{}",
        crate::util::sanitize_untrusted(host.as_bytes(), 64),
        std::process::id()
    )
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
