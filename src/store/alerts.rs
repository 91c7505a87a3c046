//! The SQL of our own alerts: the `alerts` rows and their `alert_events` timeline, and the
//! INSERT side of the outbox (`notifications` + `notification_alerts`) so that an alert's
//! state change and the notifications it causes commit in ONE transaction
//! ([`Store::alerts_tx`]). The lifecycle rules live in `alerts::lifecycle`; the sender's SQL
//! (claiming, attempts, delivery) lives in `store/outbox.rs`.

use std::collections::BTreeMap;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Store, StoreError};
use crate::alerts::{
    AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind, alert_id,
};
use crate::clock::{Millis, rfc3339};

#[path = "alerts_targets.rs"]
mod targets;
pub use targets::Target;
use targets::{enqueue_to, firing_targets, pending_firing_due};

/// One stored alert (one episode of a fingerprint). `seq` is 0 until inserted.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub seq: i64,
    pub fingerprint: String,
    pub episode: String,
    pub monitor: String,
    pub code: String,
    pub subject: BTreeMap<String, String>,
    /// Subject labels plus the monitor's labels.
    pub labels: BTreeMap<String, String>,
    pub level: Level,
    pub state: AlertState,
    pub title: String,
    pub summary: String,
    pub value: Option<String>,
    pub first_seen_ms: Millis,
    pub firing_ms: Option<Millis>,
    pub last_seen_ms: Millis,
    pub resolved_ms: Option<Millis>,
    pub occurrences: i64,
    pub fail_streak: i64,
    pub ok_streak: i64,
    pub last_notified_ms: Option<Millis>,
    pub acknowledged_ms: Option<Millis>,
    pub acknowledged_by: Option<String>,
    /// Start of the current run of failing observations (what `for` is measured from).
    pub failing_since_ms: Option<Millis>,
}

impl AlertRow {
    pub fn id(&self) -> String {
        alert_id(self.seq)
    }

    /// What a notification says about this alert.
    pub fn snapshot(&self) -> AlertSnapshot {
        AlertSnapshot {
            id: self.id(),
            fingerprint: self.fingerprint.clone(),
            episode: self.episode.clone(),
            monitor: self.monitor.clone(),
            code: self.code.clone(),
            level: self.level,
            state: self.state,
            title: self.title.clone(),
            summary: self.summary.clone(),
            labels: self.labels.clone(),
            value: self.value.clone(),
            started_at: rfc3339(self.firing_ms.unwrap_or(self.first_seen_ms)),
            resolved_at: self.resolved_ms.map(rfc3339),
            runbook: None,
        }
    }
}

/// One entry of an alert's timeline (`pending`, `firing`, `level_changed`, `repeat`,
/// `acknowledged`, `note`, `resolved`, `dropped`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub id: i64,
    pub alert: i64,
    pub at_ms: Millis,
    pub kind: String,
    pub actor: Option<String>,
    pub detail: Option<String>,
}

/// A notification row linked to an alert, for its detail view.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertNotification {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub created_ms: Millis,
    pub next_attempt_ms: Millis,
    pub delivered_ms: Option<Millis>,
    pub last_error: Option<String>,
}

/// An alert with its timeline and notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDetail {
    pub alert: AlertRow,
    pub events: Vec<AlertEvent>,
    pub notifications: Vec<AlertNotification>,
}

/// What an acknowledgement or a note did.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    Done(Box<AlertRow>),
    NotFound,
    /// Acknowledging a resolved alert has no effect.
    Resolved,
    AlreadyAcknowledged {
        by: String,
        at_ms: Millis,
    },
}

pub(super) const COLUMNS: &str =
    "seq, fingerprint, episode, monitor, code, subject, labels, level, state,
    title, summary, value, first_seen_ms, firing_ms, last_seen_ms, resolved_ms, occurrences,
    fail_streak, ok_streak, last_notified_ms, acknowledged_ms, acknowledged_by, failing_since_ms";

fn bad(col: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, Type::Text, what.into())
}

fn json_map(r: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<BTreeMap<String, String>> {
    let s: String = r.get(col)?;
    serde_json::from_str(&s).map_err(|e| bad(col, format!("bad label map: {e}")))
}

pub(super) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    let level: String = r.get(7)?;
    let state: String = r.get(8)?;
    Ok(AlertRow {
        seq: r.get(0)?,
        fingerprint: r.get(1)?,
        episode: r.get(2)?,
        monitor: r.get(3)?,
        code: r.get(4)?,
        subject: json_map(r, 5)?,
        labels: json_map(r, 6)?,
        level: Level::parse(&level).ok_or_else(|| bad(7, format!("unknown level {level}")))?,
        state: AlertState::parse(&state).ok_or_else(|| bad(8, format!("unknown state {state}")))?,
        title: r.get(9)?,
        summary: r.get(10)?,
        value: r.get(11)?,
        first_seen_ms: r.get(12)?,
        firing_ms: r.get(13)?,
        last_seen_ms: r.get(14)?,
        resolved_ms: r.get(15)?,
        occurrences: r.get(16)?,
        fail_streak: r.get(17)?,
        ok_streak: r.get(18)?,
        last_notified_ms: r.get(19)?,
        acknowledged_ms: r.get(20)?,
        acknowledged_by: r.get(21)?,
        failing_since_ms: r.get(22)?,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Maps of strings and our own derive(Serialize) types cannot fail to serialise.
    serde_json::to_string(v).unwrap_or_default()
}

fn get(conn: &Connection, seq: i64) -> Result<Option<AlertRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM alerts WHERE seq = ?1"))?
        .query_row([seq], read_row)
        .optional()?)
}

pub(super) fn add_event(
    conn: &Connection,
    alert: i64,
    at_ms: Millis,
    kind: &str,
    actor: Option<&str>,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO alert_events (alert, at_ms, kind, actor, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![alert, at_ms, kind, actor, detail])?;
    Ok(())
}

/// The writes of one evaluation, inside one IMMEDIATE transaction.
pub struct AlertTx<'a> {
    tx: Transaction<'a>,
}

impl AlertTx<'_> {
    /// The open (pending or firing) alert of a fingerprint.
    pub fn open_by_fingerprint(&self, fingerprint: &str) -> Result<Option<AlertRow>, StoreError> {
        Ok(self
            .tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM alerts WHERE fingerprint = ?1 AND state != 'resolved'"
            ))?
            .query_row([fingerprint], read_row)
            .optional()?)
    }

    /// The firing alerts of a monitor, oldest first.
    pub fn firing_of_monitor(&self, monitor: &str) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE monitor = ?1 AND state = 'firing'
             ORDER BY first_seen_ms, seq"
        ))?;
        let rows = stmt.query_map([monitor], read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The open (pending or firing) alerts of a monitor.
    pub fn open_of_monitor(&self, monitor: &str) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE monitor = ?1 AND state != 'resolved'
             ORDER BY first_seen_ms, seq"
        ))?;
        let rows = stmt.query_map([monitor], read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Insert a new alert; sets `seq`.
    pub fn insert(&self, row: &mut AlertRow) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO alerts ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
                 ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
                COLUMNS.trim_start_matches("seq,")
            ))?
            .execute(params![
                row.fingerprint,
                row.episode,
                row.monitor,
                row.code,
                to_json(&row.subject),
                to_json(&row.labels),
                row.level.as_str(),
                row.state.as_str(),
                row.title,
                row.summary,
                row.value,
                row.first_seen_ms,
                row.firing_ms,
                row.last_seen_ms,
                row.resolved_ms,
                row.occurrences,
                row.fail_streak,
                row.ok_streak,
                row.last_notified_ms,
                row.acknowledged_ms,
                row.acknowledged_by,
                row.failing_since_ms,
            ])?;
        row.seq = self.tx.last_insert_rowid();
        Ok(())
    }

    /// Write back every mutable column of an existing alert.
    pub fn update(&self, row: &AlertRow) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE alerts SET labels = ?2, level = ?3, state = ?4, title = ?5, summary = ?6,
                 value = ?7, firing_ms = ?8, last_seen_ms = ?9, resolved_ms = ?10,
                 occurrences = ?11, fail_streak = ?12, ok_streak = ?13, last_notified_ms = ?14,
                 acknowledged_ms = ?15, acknowledged_by = ?16, failing_since_ms = ?17
                 WHERE seq = ?1",
            )?
            .execute(params![
                row.seq,
                to_json(&row.labels),
                row.level.as_str(),
                row.state.as_str(),
                row.title,
                row.summary,
                row.value,
                row.firing_ms,
                row.last_seen_ms,
                row.resolved_ms,
                row.occurrences,
                row.fail_streak,
                row.ok_streak,
                row.last_notified_ms,
                row.acknowledged_ms,
                row.acknowledged_by,
                row.failing_since_ms,
            ])?;
        Ok(())
    }

    /// Append one timeline entry.
    pub fn event(
        &self,
        alert: i64,
        at_ms: Millis,
        kind: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        add_event(&self.tx, alert, at_ms, kind, None, detail)
    }

    /// The raw transaction, for other store modules that write in the same evaluation.
    pub fn transaction(&self) -> &Transaction<'_> {
        &self.tx
    }
}

/// Who is told of an acknowledgement: the channels that take acknowledgements (by name),
/// among the targets (channel, contact) told the alert fired, within `deadline` of it.
#[derive(Debug, Clone, Default)]
pub struct AckNotice<'a> {
    pub channels: &'a [String],
    pub deadline_ms: Millis,
}

impl Store {
    /// Run `f` in one IMMEDIATE transaction over the alert and outbox tables; commits when
    /// `f` is Ok, rolls everything back otherwise.
    pub fn alerts_tx<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&AlertTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let atx = AlertTx { tx };
        let out = f(&atx)?;
        atx.tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    pub fn alert_get(&self, seq: i64) -> Result<Option<AlertRow>, StoreError> {
        get(&self.conn(), seq)
    }

    /// Firing and pending alerts: firing first, then by level (loudest first), oldest
    /// first within a level.
    pub fn alerts_open(&self) -> Result<Vec<AlertRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE state != 'resolved'
             ORDER BY CASE state WHEN 'firing' THEN 0 ELSE 1 END,
                      CASE level WHEN 'emergency' THEN 0 WHEN 'critical' THEN 1
                                 WHEN 'warning' THEN 2 ELSE 3 END,
                      first_seen_ms, seq"
        ))?;
        let rows = stmt.query_map([], read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Alerts resolved at or after `since_ms`, most recently resolved first.
    pub fn alerts_resolved_since(
        &self,
        since_ms: Millis,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE state = 'resolved' AND resolved_ms >= ?1
             ORDER BY resolved_ms DESC, seq DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![since_ms, limit as i64], read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One alert with its timeline (oldest first) and its notifications.
    pub fn alert_detail(&self, seq: i64) -> Result<Option<AlertDetail>, StoreError> {
        let conn = self.conn();
        let Some(alert) = get(&conn, seq)? else {
            return Ok(None);
        };
        let mut stmt = conn.prepare_cached(
            "SELECT id, alert, at_ms, kind, actor, detail FROM alert_events
             WHERE alert = ?1 ORDER BY id",
        )?;
        let events = stmt
            .query_map([seq], |r| {
                Ok(AlertEvent {
                    id: r.get(0)?,
                    alert: r.get(1)?,
                    at_ms: r.get(2)?,
                    kind: r.get(3)?,
                    actor: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut stmt = conn.prepare_cached(
            "SELECT n.id, n.channel, n.kind, n.state, n.attempts, n.created_ms,
                    n.next_attempt_ms, n.delivered_ms, n.last_error
             FROM notifications n JOIN notification_alerts na ON na.notification = n.id
             WHERE na.alert = ?1 ORDER BY n.id",
        )?;
        let notifications = stmt
            .query_map([seq], |r| {
                Ok(AlertNotification {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    kind: r.get(2)?,
                    state: r.get(3)?,
                    attempts: r.get(4)?,
                    created_ms: r.get(5)?,
                    next_attempt_ms: r.get(6)?,
                    delivered_ms: r.get(7)?,
                    last_error: r.get(8)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(AlertDetail {
            alert,
            events,
            notifications,
        }))
    }

    /// Acknowledge an open alert (stops its repeats), recording who and when, and, in the
    /// same transaction, an `acknowledged` notification to each of `notice.channels` that
    /// was told the alert fired (never before that firing notification is due).
    pub fn alert_acknowledge(
        &self,
        seq: i64,
        actor: &str,
        now: Millis,
        notice: &AckNotice<'_>,
    ) -> Result<AlertChange, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(mut row) = get(&tx, seq)? else {
            return Ok(AlertChange::NotFound);
        };
        if row.state == AlertState::Resolved {
            return Ok(AlertChange::Resolved);
        }
        if let (Some(by), Some(at_ms)) = (&row.acknowledged_by, row.acknowledged_ms) {
            return Ok(AlertChange::AlreadyAcknowledged {
                by: by.clone(),
                at_ms,
            });
        }
        tx.prepare_cached(
            "UPDATE alerts SET acknowledged_ms = ?2, acknowledged_by = ?3 WHERE seq = ?1",
        )?
        .execute(params![seq, now, actor])?;
        add_event(&tx, seq, now, "acknowledged", Some(actor), None)?;
        row.acknowledged_ms = Some(now);
        row.acknowledged_by = Some(actor.to_string());
        // Each target told it fired on a channel that takes acknowledgements, the same
        // contact included (a PagerDuty ack goes to the service the trigger went to).
        for target in firing_targets(&tx, seq)? {
            if !notice.channels.contains(&target.channel) {
                continue;
            }
            let body = NotificationBody {
                kind: NotificationKind::Acknowledged,
                group_key: row.monitor.clone(),
                group_labels: BTreeMap::from([("monitor".to_string(), row.monitor.clone())]),
                escalation: None,
                dedup_key: row.episode.clone(),
                alerts: vec![row.snapshot()],
                digest: vec![],
            };
            let due = pending_firing_due(&tx, seq, &target)?.map_or(now, |d| d.max(now));
            enqueue_to(
                &tx,
                &target,
                &body,
                &[seq],
                now,
                due,
                due + notice.deadline_ms,
            )?;
        }
        tx.commit()?;
        Ok(AlertChange::Done(Box::new(row)))
    }

    /// Add a note to an alert's timeline (any state).
    pub fn alert_note(
        &self,
        seq: i64,
        actor: &str,
        text: &str,
        now: Millis,
    ) -> Result<AlertChange, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(row) = get(&tx, seq)? else {
            return Ok(AlertChange::NotFound);
        };
        add_event(&tx, seq, now, "note", Some(actor), Some(text))?;
        tx.commit()?;
        Ok(AlertChange::Done(Box::new(row)))
    }

    /// Delete resolved alerts resolved before `cutoff_ms` (their timeline and outbox links
    /// go with them); returns how many.
    pub fn alerts_prune_resolved(&self, cutoff_ms: Millis) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM alerts WHERE state = 'resolved' AND resolved_ms < ?1",
            [cutoff_ms],
        )?)
    }
}

#[cfg(test)]
#[path = "alerts_tests.rs"]
pub(crate) mod tests;
