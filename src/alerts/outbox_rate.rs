//! The outbox's rate limits: before a round sends, each claimed row of a limited channel
//! takes one send from the channel's [`Limiter`]. A row without one is held back: never
//! dropped and never sent on its own later, it becomes `digested`, carried by the
//! channel's open digest (one notification of kind `digest`, due when the limit next
//! allows a send; store/digest.rs). The digest then takes its send like any row (waiting,
//! uncounted, while the limit has none) and goes through the normal retry and dead-letter
//! path. A digest that fails is retried like any row; when it is dead-lettered the rows it
//! carried stay `digested` (visible through the digest's timeline and `digest_id`) and
//! `channel_failing` is raised as for any dead row: they are not sent again one by one.
//!
//! Never limited: `test` rows (`channels test` must answer now), `acknowledged` rows
//! (they need their per-alert dedup key), rows the channel does not take (recorded as "not
//! sent"), rows past their deadline (dead-lettered at once) and channels without a limit
//! (pagerduty cannot have one: config/channels.rs refuses it).

use std::collections::BTreeMap;

use super::{Outbox, RoundReport, blocking};
use crate::alerts::rate_limit::{Limiter, RateLimit};
use crate::alerts::{DigestEntry, NotificationBody, NotificationKind};
use crate::clock::{Millis, rfc3339};
use crate::store::{NotificationRow, StoreError};

/// Whether a row of this kind is never rate limited.
pub fn exempt(kind: NotificationKind) -> bool {
    matches!(
        kind,
        NotificationKind::Test | NotificationKind::Acknowledged
    )
}

/// The body of digest `id` on `channel` carrying `rows` (oldest first): every row's alerts
/// in order, and one [`DigestEntry`] per row saying its kind and which alerts are its.
pub fn digest_body(channel: &str, id: i64, rows: &[NotificationRow]) -> NotificationBody {
    let mut alerts = Vec::new();
    let mut digest = Vec::with_capacity(rows.len());
    for r in rows {
        digest.push(DigestEntry {
            notification: r.id,
            kind: r.body.kind,
            group_key: r.body.group_key.clone(),
            dedup_key: r.body.dedup_key.clone(),
            created_at: rfc3339(r.created_ms),
            alert_ids: r.body.alerts.iter().map(|a| a.id.clone()).collect(),
        });
        alerts.extend(r.body.alerts.iter().cloned());
    }
    NotificationBody {
        escalation: None,
        kind: NotificationKind::Digest,
        group_key: format!("digest/{channel}"),
        group_labels: BTreeMap::from([("channel".to_string(), channel.to_string())]),
        dedup_key: format!("digest-{channel}-{id}"),
        alerts,
        digest,
    }
}

impl Outbox {
    /// Limit each channel of `limits` (by name; unlimited ones and unknown names are
    /// ignored), on this outbox's clock.
    pub fn with_rate_limits(mut self, limits: &BTreeMap<String, RateLimit>) -> Self {
        self.limits = limits
            .iter()
            .filter_map(|(name, l)| Some((name.clone(), Limiter::new(*l, self.clock.clone())?)))
            .collect();
        self
    }

    /// The effective limit of channel `name`.
    pub fn rate_limit(&self, name: &str) -> RateLimit {
        self.limits
            .get(name)
            .map_or(RateLimit::Unlimited, Limiter::limit)
    }

    /// Take a send for each claimed row of a limited channel (in claim order); hold back
    /// the rows that get none into their channel's digest and put back the digests that
    /// get none. Returns the rows to send now.
    pub(super) async fn apply_limits(
        &self,
        rows: Vec<NotificationRow>,
        report: &mut RoundReport,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        if self.limits.is_empty() {
            return Ok(rows);
        }
        let now = self.clock.now_ms();
        let mut send = Vec::with_capacity(rows.len());
        let mut held: BTreeMap<String, (Vec<i64>, Millis)> = BTreeMap::new();
        let mut defer: Vec<(i64, Millis)> = Vec::new();
        for row in rows {
            let limiter = match (
                self.limits.get(&row.channel),
                self.channels.get(&row.channel),
            ) {
                (Some(l), Some(ch)) if ch.wants(row.body.kind) => l,
                _ => {
                    send.push(row);
                    continue;
                }
            };
            if exempt(row.body.kind) || now >= row.deadline_ms {
                send.push(row);
                continue;
            }
            match limiter.take() {
                Ok(()) => send.push(row),
                Err(next) if row.body.kind == NotificationKind::Digest => {
                    defer.push((row.id, next))
                }
                Err(next) => {
                    let h = held.entry(row.channel.clone()).or_default();
                    h.0.push(row.id);
                    h.1 = h.1.max(next);
                }
            }
        }
        for (id, next) in defer {
            let (store, worker) = (self.store.clone(), self.settings.worker.clone());
            if blocking(move || store.outbox_defer(id, &worker, next)).await? {
                report.deferred += 1;
            }
        }
        for (channel, (ids, due)) in held {
            let (store, worker) = (self.store.clone(), self.settings.worker.clone());
            let name = channel.clone();
            let held = blocking(move || {
                let build = |id: i64, rows: &[NotificationRow]| digest_body(&name, id, rows);
                store.outbox_hold(&worker, &name, &ids, now, due, &build)
            })
            .await?;
            for (digest, taken) in held {
                report.digested += taken;
                tracing::info!(
                    channel = %channel,
                    digest,
                    held = taken,
                    limit = %self.rate_limit(&channel),
                    next = %rfc3339(due),
                    "rate limit: notifications held back into a digest"
                );
                if let Some(m) = self.metrics.get() {
                    m.notifications_digested(&channel, taken as u64);
                }
            }
        }
        Ok(send)
    }
}

#[cfg(test)]
#[path = "outbox_rate_tests.rs"]
mod tests;
