//! The SQL of escalation (migration 11): which steps were done for which alert episode
//! (`alert_escalations`) and incident (`incident_escalations`), read and written inside
//! one IMMEDIATE transaction ([`Store::escalation_tx`]) together with the `escalated`
//! timeline events and the outbox rows, so a step is enqueued once or not at all. The
//! rules live in `alerts::escalation`.

use rusqlite::{OptionalExtension, Transaction, params};

use super::alerts::{AlertRow, add_event};
use super::incidents::IncidentRow;
use super::outbox::{NewNotification, enqueue_for};
use super::{Store, StoreError};
use crate::clock::Millis;

/// The writes of one escalation round.
pub struct EscalationTx<'a> {
    tx: Transaction<'a>,
}

impl EscalationTx<'_> {
    pub(super) fn transaction(&self) -> &Transaction<'_> {
        &self.tx
    }

    /// Every firing alert nobody has acknowledged, oldest first.
    pub fn firing_unacknowledged(&self) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {} FROM alerts WHERE state = 'firing' AND acknowledged_ms IS NULL
             ORDER BY firing_ms, seq",
            super::alerts::COLUMNS
        ))?;
        let rows = stmt.query_map([], super::alerts::read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `rule` was done for alert `seq`.
    pub fn alert_step_done(&self, seq: i64, rule: &str) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM alert_escalations WHERE alert = ?1 AND rule = ?2")?
            .query_row(params![seq, rule], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Record `rule` as done for alert `seq` (false: it was already).
    pub fn mark_alert_step(&self, seq: i64, rule: &str, at_ms: Millis) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO alert_escalations (alert, rule, at_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![seq, rule, at_ms])?
            == 1)
    }

    /// The (alert, channel, contact) an escalation was sent to whose alert has since been
    /// acknowledged or resolved at or after `since_ms`, among `channels` (those that take
    /// acknowledgements): what a follow-up (acknowledge / resolve on the contact's own
    /// service) is for. Not where a route (`contact:`) told the same contact it fired on the
    /// same channel: the lifecycle acknowledges and resolves that one itself. Newest first,
    /// at most `limit`.
    pub fn escalated_and_settled(
        &self,
        channels: &[String],
        since_ms: Millis,
        limit: usize,
    ) -> Result<Vec<(AlertRow, String, String)>, StoreError> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let cols = super::alerts::COLUMNS
            .split(',')
            .map(|c| format!("a.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT DISTINCT {cols}, n.channel, n.contact FROM alerts a
             JOIN notification_alerts na ON na.alert = a.seq
             JOIN notifications n ON n.id = na.notification
             WHERE n.kind = 'escalation' AND n.contact IS NOT NULL
               AND (a.state = 'resolved' OR a.acknowledged_ms IS NOT NULL)
               AND NOT EXISTS (SELECT 1 FROM notifications f
                               JOIN notification_alerts fa ON fa.notification = f.id
                               WHERE fa.alert = a.seq AND f.kind = 'firing'
                                 AND f.channel = n.channel AND f.contact = n.contact)
               AND MAX(COALESCE(a.resolved_ms, 0), COALESCE(a.acknowledged_ms, 0)) >= ?2
             ORDER BY a.seq DESC LIMIT ?1"
        ))?;
        let n = super::alerts::COLUMNS.split(',').count();
        let rows = stmt.query_map(params![limit as i64, since_ms], |r| {
            Ok((
                super::alerts::read_row(r)?,
                r.get::<_, String>(n)?,
                r.get::<_, String>(n + 1)?,
            ))
        })?;
        let all: Vec<_> = rows.collect::<Result<_, _>>()?;
        Ok(all
            .into_iter()
            .filter(|(_, ch, _)| channels.contains(ch))
            .collect())
    }

    /// Append an alert timeline entry (`escalated`, `escalation_skipped`).
    pub fn alert_event(
        &self,
        seq: i64,
        at_ms: Millis,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        add_event(&self.tx, seq, at_ms, kind, None, Some(detail))
    }

    /// The incidents nobody has acknowledged yet (status `open`), newest first, at most
    /// `limit`.
    pub fn incidents_open(&self, limit: usize) -> Result<Vec<IncidentRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {} FROM incidents WHERE status = 'open' ORDER BY seq DESC LIMIT ?1",
            super::incidents::COLUMNS
        ))?;
        let rows = stmt.query_map([limit as i64], super::incidents::read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Record SLA step `step` as done for incident `seq` (false: it was already).
    pub fn mark_incident_step(
        &self,
        seq: i64,
        step: &str,
        at_ms: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO incident_escalations (incident, step, at_ms)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![seq, step, at_ms])?
            == 1)
    }

    /// Incidents no longer `open` that had an SLA escalation step, newest first, at most
    /// `limit`: what an acknowledge / resolve follow-up is for.
    pub fn incidents_escalated_and_settled(
        &self,
        limit: usize,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {} FROM incidents WHERE status != 'open' AND seq IN
                (SELECT incident FROM incident_escalations WHERE step LIKE 'sla-%')
             ORDER BY seq DESC LIMIT ?1",
            super::incidents::COLUMNS
        ))?;
        let rows = stmt.query_map([limit as i64], super::incidents::read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The (channel, contact) pairs escalation notifications with `dedup_key` went to.
    pub fn escalation_targets(&self, dedup_key: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT DISTINCT channel, contact FROM notifications
             WHERE kind = 'escalation' AND dedup_key = ?1 AND contact IS NOT NULL
             ORDER BY channel, contact",
        )?;
        let rows = stmt.query_map([dedup_key], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Enqueue one notification for `contact`, due now.
    pub fn enqueue_for(
        &self,
        n: &NewNotification<'_>,
        contact: &str,
        now_ms: Millis,
    ) -> Result<i64, StoreError> {
        enqueue_for(&self.tx, n, contact, now_ms)
    }
}

impl Store {
    /// Run `f` in one IMMEDIATE transaction over alerts, incidents, their escalation
    /// steps and the outbox; commits when `f` is Ok.
    pub fn escalation_tx<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&EscalationTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let etx = EscalationTx { tx };
        let out = f(&etx)?;
        etx.tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// The escalation steps done for incident `seq`: (step, at_ms), oldest first.
    pub fn incident_escalations(&self, seq: i64) -> Result<Vec<(String, Millis)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT step, at_ms FROM incident_escalations WHERE incident = ?1 ORDER BY at_ms",
        )?;
        let rows = stmt.query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_recorded_once_and_goes_with_its_alert() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let seq = {
            let conn = store.conn();
            conn.execute(
                "INSERT INTO alerts (fingerprint, episode, monitor, code, subject, labels, level,
                    state, title, summary, first_seen_ms, firing_ms, last_seen_ms, resolved_ms)
                 VALUES ('fp', 'fp-1', 'web', 'down', '{}', '{}', 'critical', 'firing', 't', 's',
                    1, 1, 1, NULL)",
                [],
            )
            .unwrap();
            conn.last_insert_rowid()
        };
        store
            .escalation_tx(|tx| {
                assert_eq!(tx.firing_unacknowledged()?.len(), 1);
                assert!(!tx.alert_step_done(seq, "r")?);
                assert!(tx.mark_alert_step(seq, "r", 5)?);
                assert!(!tx.mark_alert_step(seq, "r", 6)?, "once");
                assert!(tx.alert_step_done(seq, "r")?);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        // A rolled-back round leaves nothing.
        let failed: Result<(), StoreError> = store.escalation_tx(|tx| {
            tx.mark_alert_step(seq, "other", 7)?;
            Err(StoreError::Query(rusqlite::Error::InvalidQuery))
        });
        assert!(failed.is_err());
        store
            .escalation_tx(|tx| {
                assert!(!tx.alert_step_done(seq, "other")?);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store
            .conn()
            .execute("UPDATE alerts SET state = 'resolved', resolved_ms = 2", [])
            .unwrap();
        assert_eq!(store.alerts_prune_resolved(10).unwrap(), 1);
        let left: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM alert_escalations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "the cascade removed the step");
    }
}
