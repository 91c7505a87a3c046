//! The outbox sender: claims due notification rows (with a lease, so a killed sender's rows
//! come back), sends each once through its channel, records the attempt, and decides what
//! happens next: delivered; retried with exponential backoff and jitter (backon's
//! `ExponentialBuilder`), never sooner than the receiver's `Retry-After` (capped); or
//! dead-lettered (a permanent failure, `max_attempts`, or the deadline), saying why. A
//! dead row raises a `channel_failing` notification on every other channel, at most once
//! per channel per `failing_every`. Delivery is at-least-once: a redelivery carries the
//! same dedup key. Only this sender calls a channel. A channel's rate limit is applied
//! before each round sends (outbox_rate.rs): what exceeds it goes out as one digest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind, episode_key, fingerprint,
};
use crate::clock::{Clock, Millis, rfc3339};
use crate::notify::{Channel, Delivery, Recipient};
use crate::store::{
    Attempt, AttemptOutcome, ChannelHealth, NewNotification, NotificationRow, Store, StoreError,
};

/// The code of the alert a dead-lettering channel raises.
pub const CHANNEL_FAILING: &str = "channel_failing";
/// The monitor name our own synthetic alerts carry.
pub const SELF_MONITOR: &str = "secops-mcp";

/// How the sender retries and leases.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// This sender's name in `claimed_by` (unique per process).
    pub worker: String,
    /// Dead-letter after this many attempts.
    pub max_attempts: u32,
    /// The first retry's delay (before jitter); each next one doubles.
    pub min_delay: Duration,
    /// No retry waits longer than this (jitter included), unless `Retry-After` says so.
    pub max_delay: Duration,
    /// A receiver's `Retry-After` is honoured up to this.
    pub max_retry_after: Duration,
    /// How long a claim holds; longer than any channel's timeout.
    pub lease: Duration,
    /// Rows claimed per round.
    pub batch: usize,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// `run` looks for due rows this often (and when woken).
    pub poll: Duration,
    /// `channel_failing` at most this often per channel.
    pub failing_every: Duration,
    /// How long a `channel_failing` notification may take to deliver.
    pub failing_deadline: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            worker: default_worker(),
            max_attempts: 10,
            min_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(3600),
            lease: Duration::from_secs(120),
            batch: 100,
            concurrency: 16,
            poll: Duration::from_secs(1),
            failing_every: Duration::from_secs(3600),
            failing_deadline: Duration::from_secs(24 * 3600),
        }
    }
}

/// `<pid>-<random>`: distinct per process, so leases tell senders apart.
pub fn default_worker() -> String {
    format!(
        "outbox-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// What one `deliver_due` round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub claimed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    /// Channels a `channel_failing` notification was raised for.
    pub failing_raised: Vec<String>,
    /// Rows the rate limit held back into a digest this round.
    pub digested: usize,
    /// Digests put back until their channel's limit allows a send.
    pub deferred: usize,
}

/// The sender.
pub struct Outbox {
    store: Store,
    channels: BTreeMap<String, Arc<dyn Channel>>,
    clock: Arc<dyn Clock>,
    settings: OutboxSettings,
    wake: Arc<Notify>,
    /// Where every attempt is counted (`notifications_sent`), once set.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
    /// The limited channels' limiters (outbox_rate.rs); none by default.
    limits: BTreeMap<String, super::rate_limit::Limiter>,
    /// `[[contacts]]` by name: whom a row with a `contact` is addressed to.
    contacts: BTreeMap<String, Recipient>,
}

/// What to do with one row after its attempt.
struct Decision {
    attempt: Attempt,
    /// Dead: the reason, for `channel_failing`.
    dead_reason: Option<String>,
}

impl Outbox {
    pub fn new(
        store: Store,
        channels: BTreeMap<String, Arc<dyn Channel>>,
        clock: Arc<dyn Clock>,
        settings: OutboxSettings,
    ) -> Self {
        Self {
            store,
            channels,
            clock,
            settings,
            wake: Arc::new(Notify::new()),
            metrics: std::sync::OnceLock::new(),
            limits: BTreeMap::new(),
            contacts: BTreeMap::new(),
        }
    }

    /// Address rows that name a contact (escalations) to these contacts, by name.
    pub fn with_contacts(mut self, contacts: impl IntoIterator<Item = Recipient>) -> Self {
        self.contacts = contacts.into_iter().map(|r| (r.name.clone(), r)).collect();
        self
    }

    /// Count every attempt in `metrics` from now on (the first call wins).
    pub fn set_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    pub fn settings(&self) -> &OutboxSettings {
        &self.settings
    }

    /// Notify it after enqueueing, so `run` sends without waiting for its poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Health of every configured channel (zeros for one without rows) and of any other
    /// channel that still has rows.
    pub async fn health(&self) -> Result<Vec<ChannelHealth>, StoreError> {
        let store = self.store.clone();
        let mut rows = blocking(move || store.outbox_health()).await?;
        for name in self.channels.keys() {
            if !rows.iter().any(|h| &h.channel == name) {
                rows.push(ChannelHealth {
                    channel: name.clone(),
                    ..Default::default()
                });
            }
        }
        rows.sort_by(|a, b| a.channel.cmp(&b.channel));
        Ok(rows)
    }

    /// The delay before retry number `attempt` (1 = after the first failed try):
    /// exponential from `min_delay`, doubled each time, with up to 100 % jitter, capped at
    /// `max_delay`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let s = &self.settings;
        backon::ExponentialBuilder::new()
            .with_min_delay(s.min_delay)
            .with_max_delay(s.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(s.max_delay)
            .min(s.max_delay)
    }

    /// One round: claim the due rows, send each once, record what happened. Returns when
    /// every claimed row is recorded.
    pub async fn deliver_due(&self) -> Result<RoundReport, StoreError> {
        let now = self.clock.now_ms();
        let (store, worker) = (self.store.clone(), self.settings.worker.clone());
        let (lease, batch) = (
            self.settings.lease.as_millis() as Millis,
            self.settings.batch,
        );
        let rows = blocking(move || store.outbox_claim(&worker, now, lease, batch)).await?;
        let mut report = RoundReport {
            claimed: rows.len(),
            ..Default::default()
        };
        let rows = self.apply_limits(rows, &mut report).await?;
        let results: Vec<Result<(String, Decision), StoreError>> = futures::stream::iter(rows)
            .map(|row| self.deliver_one(row))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut failing: BTreeMap<String, String> = BTreeMap::new();
        for r in results {
            let (channel, d) = r?;
            match d.attempt.outcome {
                AttemptOutcome::Delivered => report.delivered += 1,
                AttemptOutcome::Retry { .. } => report.retried += 1,
                AttemptOutcome::Dead => report.dead += 1,
            }
            if let Some(reason) = d.dead_reason {
                failing.entry(channel).or_insert(reason);
            }
        }
        for (channel, reason) in failing {
            if self.raise_failing(&channel, &reason).await? {
                report.failing_raised.push(channel);
            }
        }
        Ok(report)
    }

    /// Loop on [`Outbox::deliver_due`] until `shutdown`: again at once after a full batch,
    /// else after `poll` or when woken.
    pub async fn run(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let full = match self.deliver_due().await {
                Ok(r) => r.claimed >= self.settings.batch,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox round failed; retrying");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    async fn deliver_one(&self, row: NotificationRow) -> Result<(String, Decision), StoreError> {
        let d = match self.channels.get(&row.channel) {
            _ if self.clock.now_ms() >= row.deadline_ms => {
                let reason = format!(
                    "gave up: the deadline {} passed after {} attempt(s)",
                    rfc3339(row.deadline_ms),
                    row.attempts
                );
                self.dead(None, reason)
            }
            None => self.dead(None, format!("channel {} is not configured", row.channel)),
            Some(ch) if !ch.wants(row.body.kind) => self.decide(
                &row,
                Delivery::Delivered {
                    status: None,
                    answer: format!(
                        "not sent: a {} channel does not take {} notifications",
                        ch.kind(),
                        row.body.kind.as_str()
                    ),
                },
            ),
            Some(ch) => {
                let delivery = match row.contact.as_deref() {
                    None => ch.send(&row.body).await,
                    Some(name) => match self.contacts.get(name) {
                        Some(to) => ch.send_to(&row.body, Some(to)).await,
                        None => Delivery::Failed {
                            status: None,
                            reason: format!(
                                "contact {} is not configured (any more)",
                                crate::util::sanitize_untrusted(name.as_bytes(), 64)
                            ),
                        },
                    },
                };
                self.decide(&row, delivery)
            }
        };
        tracing::debug!(
            notification = row.id,
            channel = %row.channel,
            dedup_key = %row.dedup_key,
            outcome = ?d.attempt.outcome,
            detail = %d.attempt.detail,
            "notification attempt"
        );
        if let Some(m) = self.metrics.get() {
            let outcome = match d.attempt.outcome {
                AttemptOutcome::Delivered => "delivered",
                AttemptOutcome::Retry { .. } => "retry",
                AttemptOutcome::Dead => "dead",
            };
            m.notification_attempt(&row.channel, outcome);
        }
        if matches!(d.attempt.outcome, AttemptOutcome::Dead) {
            tracing::warn!(
                notification = row.id,
                channel = %row.channel,
                detail = %d.attempt.detail,
                "notification dead-lettered"
            );
        }
        let (store, worker, attempt) = (
            self.store.clone(),
            self.settings.worker.clone(),
            d.attempt.clone(),
        );
        let owned = blocking(move || store.outbox_record(row.id, &worker, &attempt)).await?;
        if !owned {
            tracing::info!(
                notification = row.id,
                channel = %row.channel,
                "another sender took this notification over after our lease expired"
            );
        }
        Ok((row.channel, d))
    }

    fn dead(&self, status: Option<u16>, reason: String) -> Decision {
        Decision {
            attempt: Attempt {
                at_ms: self.clock.now_ms(),
                outcome: AttemptOutcome::Dead,
                status,
                detail: reason.clone(),
            },
            dead_reason: Some(reason),
        }
    }

    fn decide(&self, row: &NotificationRow, delivery: Delivery) -> Decision {
        let now = self.clock.now_ms();
        match delivery {
            Delivery::Delivered { status, answer } => Decision {
                attempt: Attempt {
                    at_ms: now,
                    outcome: AttemptOutcome::Delivered,
                    status,
                    detail: match status {
                        Some(s) if answer.is_empty() => format!("HTTP {s}"),
                        Some(s) => format!("HTTP {s}: {answer}"),
                        None => answer,
                    },
                },
                dead_reason: None,
            },
            Delivery::Failed { status, reason } => self.dead(status, reason),
            Delivery::Retry {
                status,
                reason,
                after,
            } => {
                let attempts = row.attempts + 1;
                if attempts >= self.settings.max_attempts {
                    return self.dead(
                        status,
                        format!("gave up after {attempts} attempts (max_attempts): {reason}"),
                    );
                }
                let honoured = after.map(|a| a.min(self.settings.max_retry_after));
                let delay = self.backoff(attempts).max(honoured.unwrap_or_default());
                let next = now + delay.as_millis() as Millis;
                if next > row.deadline_ms {
                    return self.dead(
                        status,
                        format!(
                            "gave up after {attempts} attempt(s): the deadline {} comes before \
                             the next try: {reason}",
                            rfc3339(row.deadline_ms)
                        ),
                    );
                }
                let detail = match honoured {
                    Some(a) => format!("{reason} (Retry-After {} s honoured)", a.as_secs()),
                    None => reason,
                };
                Decision {
                    attempt: Attempt {
                        at_ms: now,
                        outcome: AttemptOutcome::Retry {
                            next_attempt_ms: next,
                        },
                        status,
                        detail,
                    },
                    dead_reason: None,
                }
            }
        }
    }

    /// Enqueue `channel_failing` about `channel` to every other channel, unless one was
    /// raised within `failing_every`. True when raised.
    async fn raise_failing(&self, channel: &str, reason: &str) -> Result<bool, StoreError> {
        let others: Vec<String> = self
            .channels
            .keys()
            .filter(|n| n.as_str() != channel)
            .cloned()
            .collect();
        if others.is_empty() {
            return Ok(false);
        }
        let now = self.clock.now_ms();
        let key = format!("outbox.channel_failing.{channel}");
        let every = self.settings.failing_every.as_millis() as Millis;
        let store = self.store.clone();
        let kind = self
            .channels
            .get(channel)
            .map(|c| c.kind())
            .unwrap_or("unknown");
        let body = failing_body(channel, kind, reason, now);
        let deadline = now + self.settings.failing_deadline.as_millis() as Millis;
        let raised = blocking(move || {
            let last = store.get_kv(&key)?.and_then(|v| v.parse::<Millis>().ok());
            if last.is_some_and(|t| now - t < every && now >= t) {
                return Ok(false);
            }
            for other in &others {
                store.outbox_enqueue(
                    &NewNotification {
                        channel: other,
                        body: &body,
                        alerts: &[],
                        deadline_ms: deadline,
                    },
                    now,
                )?;
            }
            store.set_kv(&key, &now.to_string())?;
            Ok(true)
        })
        .await?;
        if raised {
            tracing::warn!(channel, "channel failing; told the other channels");
            self.wake.notify_one();
        }
        Ok(raised)
    }
}

/// The notification that says channel `channel` is dead-lettering (never its URL).
pub fn failing_body(channel: &str, kind: &str, reason: &str, now: Millis) -> NotificationBody {
    self_body(
        NotificationKind::Firing,
        CHANNEL_FAILING,
        Level::Critical,
        channel,
        &[("channel_kind", kind)],
        format!("Notification channel {channel} is failing"),
        format!(
            "A notification to the {kind} channel {channel} was dead-lettered: {reason}. \
             Check the receiver and the channel's settings, then run \
             `secops-mcp channels test {channel}`."
        ),
        now,
    )
}

/// A notification of secops-mcp's own about one channel (`channel_failing`, a channel
/// test): one firing alert of the `secops-mcp` monitor whose subject is the channel, with
/// `extra` labels.
#[allow(clippy::too_many_arguments)]
pub fn self_body(
    kind: NotificationKind,
    code: &str,
    level: Level,
    channel: &str,
    extra: &[(&str, &str)],
    title: String,
    summary: String,
    now: Millis,
) -> NotificationBody {
    let subject = BTreeMap::from([("channel".to_string(), channel.to_string())]);
    let fp = fingerprint(SELF_MONITOR, code, &subject);
    let episode = episode_key(&fp, now);
    let mut labels = subject;
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    NotificationBody {
        kind,
        group_key: format!("{SELF_MONITOR}/{code}"),
        group_labels: BTreeMap::from([("alertname".to_string(), code.to_string())]),
        escalation: None,
        dedup_key: episode.clone(),
        alerts: vec![AlertSnapshot {
            id: format!("{code}/{channel}"),
            fingerprint: fp,
            episode,
            monitor: SELF_MONITOR.into(),
            code: code.into(),
            level,
            state: AlertState::Firing,
            title,
            summary,
            labels,
            value: None,
            started_at: rfc3339(now),
            resolved_at: None,
            runbook: None,
        }],
        digest: vec![],
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[path = "outbox_rate.rs"]
mod rate;
pub use rate::{digest_body, exempt};

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
