//! The durable outbox's SQL: notification rows (one message of one or more alerts to one
//! channel), the alerts each one carries, and every delivery attempt. Enqueue runs inside
//! the caller's transaction (so an alert's state change and its notifications commit
//! together); a sender claims due rows with a lease (an expired lease makes a row
//! claimable again, so a killed sender loses nothing), records each attempt, and the
//! status surfaces read per-channel health and attempt timelines. The retry policy is the
//! sender's (`alerts::outbox`); this module only stores what it decided.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Store, StoreError};
use crate::alerts::NotificationBody;
use crate::clock::Millis;

/// The longest `last_error` / attempt detail kept (characters).
pub const MAX_DETAIL: usize = 500;

/// A notification to enqueue.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// The channel's configured name.
    pub channel: &'a str,
    /// What to send; its `kind` and `dedup_key` are stored as columns too.
    pub body: &'a NotificationBody,
    /// The `alerts.seq` of every alert the body carries (for an alert's timeline); empty
    /// for a synthetic notification (`channel_failing`, a channel test).
    pub alerts: &'a [i64],
    /// Give up (dead-letter) when not delivered by then.
    pub deadline_ms: Millis,
}

/// Where a notification row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationState {
    Pending,
    Delivered,
    Dead,
    /// Held back by the channel's rate limit and carried by a digest row instead.
    Digested,
}

impl NotificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Delivered => "delivered",
            NotificationState::Dead => "dead",
            NotificationState::Digested => "digested",
        }
    }

    fn parse(s: &str) -> NotificationState {
        match s {
            "delivered" => NotificationState::Delivered,
            "dead" => NotificationState::Dead,
            "digested" => NotificationState::Digested,
            _ => NotificationState::Pending,
        }
    }
}

/// One stored notification.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRow {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    pub dedup_key: String,
    pub body: NotificationBody,
    pub state: NotificationState,
    pub attempts: u32,
    pub created_ms: Millis,
    pub next_attempt_ms: Millis,
    pub deadline_ms: Millis,
    pub claimed_by: Option<String>,
    pub lease_until_ms: Option<Millis>,
    pub delivered_ms: Option<Millis>,
    pub last_error: Option<String>,
    /// An escalation's contact (a `[[contacts]]` name): the channel addresses them.
    pub contact: Option<String>,
}

/// What the sender decided after one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// The receiver took it.
    Delivered,
    /// Try again at `next_attempt_ms`.
    Retry { next_attempt_ms: Millis },
    /// Dead-lettered: a permanent failure, `max_attempts` or the deadline.
    Dead,
}

/// One attempt to record.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at_ms: Millis,
    pub outcome: AttemptOutcome,
    /// The receiver's HTTP status, when there was one.
    pub status: Option<u16>,
    /// What happened, already free of secrets (capped to [`MAX_DETAIL`] here).
    pub detail: String,
}

/// One recorded attempt, as the timelines show it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub notification: i64,
    pub channel: String,
    pub kind: String,
    pub at_ms: Millis,
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
    pub status: Option<u16>,
    pub detail: Option<String>,
    /// The contact the row was addressed to (an escalation, or a `contact:` route).
    pub contact: Option<String>,
}

/// The outbox's health for one channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelHealth {
    pub channel: String,
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// Held back by the rate limit and carried by a digest.
    pub digested: u64,
    /// When the oldest pending notification was enqueued.
    pub oldest_pending_ms: Option<Millis>,
}

impl ChannelHealth {
    /// How long the oldest pending notification has waited, at `now_ms`.
    pub fn oldest_pending_age_ms(&self, now_ms: Millis) -> Option<Millis> {
        self.oldest_pending_ms.map(|t| (now_ms - t).max(0))
    }
}

fn cap(s: &str) -> String {
    if s.chars().count() <= MAX_DETAIL {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_DETAIL).collect();
    out.push('…');
    out
}

/// Enqueue one notification inside the caller's transaction, due now; its id.
pub fn enqueue(
    tx: &Transaction<'_>,
    n: &NewNotification<'_>,
    now_ms: Millis,
) -> Result<i64, StoreError> {
    insert(tx, n, None, now_ms, now_ms)
}

/// [`enqueue`] for one contact (an escalation): the sender hands the channel the
/// contact's address from the configuration; the row holds only the name.
pub fn enqueue_for(
    tx: &Transaction<'_>,
    n: &NewNotification<'_>,
    contact: &str,
    now_ms: Millis,
) -> Result<i64, StoreError> {
    insert(tx, n, Some(contact), now_ms, now_ms)
}

/// Link a notification to more alerts it carries (a group that gathered another one).
pub fn link_alerts(conn: &Connection, id: i64, alerts: &[i64]) -> Result<(), StoreError> {
    let mut link = conn.prepare_cached(
        "INSERT OR IGNORE INTO notification_alerts (notification, alert) VALUES (?1, ?2)",
    )?;
    for seq in alerts {
        link.execute(params![id, seq])?;
    }
    Ok(())
}

pub(super) fn insert(
    conn: &Connection,
    n: &NewNotification<'_>,
    contact: Option<&str>,
    now_ms: Millis,
    due_ms: Millis,
) -> Result<i64, StoreError> {
    let body = serde_json::to_string(n.body)
        .map_err(|e| StoreError::Query(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
    conn.prepare_cached(
        "INSERT INTO notifications (channel, kind, dedup_key, body, state, attempts,
            created_ms, next_attempt_ms, deadline_ms, contact)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        n.channel,
        n.body.kind.as_str(),
        n.body.dedup_key,
        body,
        now_ms,
        due_ms,
        n.deadline_ms,
        contact
    ])?;
    let id = conn.last_insert_rowid();
    link_alerts(conn, id, n.alerts)?;
    Ok(id)
}

pub(super) const COLUMNS: &str = "id, channel, kind, dedup_key, body, state, attempts, created_ms,
    next_attempt_ms, deadline_ms, claimed_by, lease_until_ms, delivered_ms, last_error, contact";

pub(super) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NotificationRow> {
    let body: String = r.get(4)?;
    let body = serde_json::from_str(&body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let state: String = r.get(5)?;
    Ok(NotificationRow {
        id: r.get(0)?,
        channel: r.get(1)?,
        kind: r.get(2)?,
        dedup_key: r.get(3)?,
        body,
        state: NotificationState::parse(&state),
        attempts: r.get::<_, i64>(6)?.max(0) as u32,
        created_ms: r.get(7)?,
        next_attempt_ms: r.get(8)?,
        deadline_ms: r.get(9)?,
        claimed_by: r.get(10)?,
        lease_until_ms: r.get(11)?,
        delivered_ms: r.get(12)?,
        last_error: r.get(13)?,
        contact: r.get(14)?,
    })
}

fn read_attempt(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRow> {
    Ok(AttemptRow {
        notification: r.get(0)?,
        channel: r.get(1)?,
        kind: r.get(2)?,
        at_ms: r.get(3)?,
        outcome: r.get(4)?,
        status: r.get::<_, Option<i64>>(5)?.map(|s| s.clamp(0, 999) as u16),
        detail: r.get(6)?,
        contact: r.get(7)?,
    })
}

impl Store {
    /// Enqueue one notification in its own transaction; its id.
    pub fn outbox_enqueue(
        &self,
        n: &NewNotification<'_>,
        now_ms: Millis,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = enqueue(&tx, n, now_ms)?;
        tx.commit()?;
        Ok(id)
    }

    /// Claim up to `limit` due pending rows for `worker` until `now_ms + lease_ms`: rows
    /// whose next attempt is due and which nobody holds (or whose holder's lease
    /// expired). Oldest due first.
    pub fn outbox_claim(
        &self,
        worker: &str,
        now_ms: Millis,
        lease_ms: Millis,
        limit: usize,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "UPDATE notifications SET claimed_by = ?1, lease_until_ms = ?2
             WHERE id IN (
                SELECT id FROM notifications
                WHERE state = 'pending' AND next_attempt_ms <= ?3
                  AND (lease_until_ms IS NULL OR lease_until_ms <= ?3)
                ORDER BY next_attempt_ms, id LIMIT ?4)
             RETURNING {COLUMNS}"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt
            .query_map(
                params![worker, now_ms + lease_ms, now_ms, limit as i64],
                read_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by_key(|r| (r.next_attempt_ms, r.id));
        Ok(rows)
    }

    /// Record one attempt of notification `id` and apply the sender's decision. The
    /// attempt is always recorded; the row's state changes only while `worker` still
    /// holds it (false: another sender claimed it after this one's lease expired).
    pub fn outbox_record(&self, id: i64, worker: &str, a: &Attempt) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let detail = cap(&a.detail);
        let outcome = match a.outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry { .. } => "retry",
            AttemptOutcome::Dead => "failed",
        };
        tx.prepare_cached(
            "INSERT INTO notification_attempts (notification, at_ms, outcome, status, detail)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, a.at_ms, outcome, a.status, detail])?;
        let changed = match a.outcome {
            AttemptOutcome::Delivered => tx.execute(
                "UPDATE notifications SET state = 'delivered', attempts = attempts + 1,
                    delivered_ms = ?3, claimed_by = NULL, lease_until_ms = NULL
                 WHERE id = ?1 AND claimed_by = ?2 AND state = 'pending'",
                params![id, worker, a.at_ms],
            )?,
            AttemptOutcome::Retry { next_attempt_ms } => tx.execute(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_ms = ?3,
                    last_error = ?4, claimed_by = NULL, lease_until_ms = NULL
                 WHERE id = ?1 AND claimed_by = ?2 AND state = 'pending'",
                params![id, worker, next_attempt_ms, detail],
            )?,
            AttemptOutcome::Dead => tx.execute(
                "UPDATE notifications SET state = 'dead', attempts = attempts + 1,
                    last_error = ?3, claimed_by = NULL, lease_until_ms = NULL
                 WHERE id = ?1 AND claimed_by = ?2 AND state = 'pending'",
                params![id, worker, detail],
            )?,
        };
        tx.commit()?;
        Ok(changed == 1)
    }

    /// One notification row.
    pub fn outbox_get(&self, id: i64) -> Result<Option<NotificationRow>, StoreError> {
        let conn = self.conn();
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = ?1");
        Ok(conn.query_row(&sql, [id], read_row).optional()?)
    }

    /// The notifications of one channel (all of them when `channel` is None), oldest
    /// first, at most `limit`.
    pub fn outbox_list(
        &self,
        channel: Option<&str>,
        limit: usize,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE (?1 IS NULL OR channel = ?1)
             ORDER BY id LIMIT ?2"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params![channel, limit as i64], read_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Pending, delivered, dead and digested counts and the oldest pending row, per channel that has
    /// any row (by name).
    pub fn outbox_health(&self) -> Result<Vec<ChannelHealth>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT channel,
                    SUM(state = 'pending'), SUM(state = 'delivered'), SUM(state = 'dead'),
                    MIN(CASE WHEN state = 'pending' THEN created_ms END),
                    SUM(state = 'digested')
             FROM notifications GROUP BY channel ORDER BY channel",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ChannelHealth {
                    channel: r.get(0)?,
                    pending: r.get::<_, i64>(1)?.max(0) as u64,
                    delivered: r.get::<_, i64>(2)?.max(0) as u64,
                    dead: r.get::<_, i64>(3)?.max(0) as u64,
                    oldest_pending_ms: r.get(4)?,
                    digested: r.get::<_, i64>(5)?.max(0) as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every attempt of one notification, oldest first.
    pub fn outbox_attempts(&self, notification: i64) -> Result<Vec<AttemptRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT a.notification, n.channel, n.kind, a.at_ms, a.outcome, a.status, a.detail,
                    n.contact
             FROM notification_attempts a JOIN notifications n ON n.id = a.notification
             WHERE a.notification = ?1 ORDER BY a.id",
        )?;
        let rows = stmt
            .query_map([notification], read_attempt)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every attempt of every notification that carried alert `seq`, oldest first.
    /// Delete delivered and dead-lettered notifications (and their attempts) finished before
    /// `cutoff_ms` (retention), and digested ones enqueued before it whose digest is no
    /// longer pending; pending rows are never deleted.
    pub fn outbox_prune_finished(&self, cutoff_ms: Millis) -> Result<usize, StoreError> {
        let conn = self.conn();
        let carried = conn.execute(
            "DELETE FROM notifications WHERE state = 'digested' AND created_ms < ?1
             AND (digest_id IS NULL OR digest_id NOT IN
                  (SELECT id FROM notifications WHERE state = 'pending'))",
            [cutoff_ms],
        )?;
        Ok(carried
            + conn.execute(
                "DELETE FROM notifications WHERE state IN ('delivered', 'dead')
                 AND COALESCE(delivered_ms, created_ms) < ?1",
                [cutoff_ms],
            )?)
    }

    pub fn outbox_attempts_for_alert(&self, seq: i64) -> Result<Vec<AttemptRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT a.notification, n.channel, n.kind, a.at_ms, a.outcome, a.status, a.detail,
                    n.contact
             FROM notification_alerts l
             JOIN notifications n ON n.id = l.notification
             JOIN notification_attempts a ON a.notification = n.id
             WHERE l.alert = ?1 ORDER BY a.at_ms, a.id",
        )?;
        let rows = stmt
            .query_map([seq], read_attempt)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
