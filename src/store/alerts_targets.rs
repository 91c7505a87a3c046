//! Where an alert's notifications go: a [`Target`] is a channel, or a channel addressed to
//! one `[[contacts]]` entry (a route `contact:<name or role>`; the row's `contact` column,
//! which the outbox resolves to the contact's address). The lifecycle's group, resolve and
//! acknowledge follow-ups match on both, so a contact told an alert fired is the one told
//! it resolved, and a group row only gathers alerts for the same contact.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, params};

use super::{AlertTx, bad, to_json};
use crate::alerts::NotificationBody;
use crate::clock::Millis;
use crate::store::StoreError;

/// One destination of a notification row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Target {
    pub channel: String,
    /// A `[[contacts]]` name: the channel addresses this person.
    pub contact: Option<String>,
}

impl Target {
    /// The channel itself (its configured recipients).
    pub fn channel(name: impl Into<String>) -> Self {
        Target {
            channel: name.into(),
            contact: None,
        }
    }

    /// The channel addressed to one contact.
    pub fn contact(channel: impl Into<String>, contact: impl Into<String>) -> Self {
        Target {
            channel: channel.into(),
            contact: Some(contact.into()),
        }
    }
}

impl fmt::Display for Target {
    /// `slack`, or `sms to Alice Martin` (for timelines; names only, never addresses).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.contact {
            None => f.write_str(&self.channel),
            Some(c) => write!(f, "{} to {c}", self.channel),
        }
    }
}

impl AlertTx<'_> {
    /// Insert a pending row for `target` (and its links to the alerts it carries), first
    /// tried at `due_ms`, given up after `deadline_ms`; the row id.
    pub fn enqueue_to(
        &self,
        target: &Target,
        body: &NotificationBody,
        alert_seqs: &[i64],
        now: Millis,
        due_ms: Millis,
        deadline_ms: Millis,
    ) -> Result<i64, StoreError> {
        enqueue_to(&self.tx, target, body, alert_seqs, now, due_ms, deadline_ms)
    }

    /// The still-gathering `firing` row of a monitor's group for a target (same channel,
    /// same contact or none): pending, never claimed nor tried, and not yet due (its group
    /// window is still open at `now`).
    pub fn open_group(
        &self,
        target: &Target,
        monitor: &str,
        now: Millis,
    ) -> Result<Option<(i64, NotificationBody)>, StoreError> {
        let found: Option<(i64, String)> = self
            .tx
            .prepare_cached(
                "SELECT n.id, n.body FROM notifications n
                 WHERE n.channel = ?1 AND n.contact IS ?4 AND n.kind = 'firing'
                   AND n.state = 'pending'
                   AND n.claimed_by IS NULL AND n.attempts = 0 AND n.next_attempt_ms > ?3
                   AND EXISTS (SELECT 1 FROM notification_alerts na
                               JOIN alerts a ON a.seq = na.alert
                               WHERE na.notification = n.id AND a.monitor = ?2)
                 ORDER BY n.id DESC LIMIT 1",
            )?
            .query_row(params![target.channel, monitor, now, target.contact], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        match found {
            None => Ok(None),
            Some((id, body)) => {
                let body = serde_json::from_str(&body).map_err(|e| {
                    StoreError::Query(bad(1, format!("bad notification body: {e}")))
                })?;
                Ok(Some((id, body)))
            }
        }
    }

    /// Replace the body of a still-gathering row and link more alerts to it. Only touches a
    /// row nobody has claimed yet; false when the sender got there first.
    pub fn extend_group(
        &self,
        notification: i64,
        body: &NotificationBody,
        alert_seqs: &[i64],
    ) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE notifications SET body = ?2, dedup_key = ?3
                 WHERE id = ?1 AND state = 'pending' AND claimed_by IS NULL AND attempts = 0",
            )?
            .execute(params![notification, to_json(body), body.dedup_key])?;
        if n == 1 {
            crate::store::outbox::link_alerts(&self.tx, notification, alert_seqs)?;
        }
        Ok(n == 1)
    }

    /// When the latest still-pending `firing` notification of an alert for a target is due
    /// (a group still gathering): its `resolved` must not overtake it.
    pub fn pending_firing_due(
        &self,
        alert: i64,
        target: &Target,
    ) -> Result<Option<Millis>, StoreError> {
        pending_firing_due(&self.tx, alert, target)
    }

    /// The targets that were sent (or are being sent) a `firing` notification of an alert:
    /// where its `resolved` notification goes.
    pub fn firing_targets(&self, alert: i64) -> Result<Vec<Target>, StoreError> {
        firing_targets(&self.tx, alert)
    }
}

pub(super) fn enqueue_to(
    conn: &Connection,
    target: &Target,
    body: &NotificationBody,
    alert_seqs: &[i64],
    now: Millis,
    due_ms: Millis,
    deadline_ms: Millis,
) -> Result<i64, StoreError> {
    let n = crate::store::outbox::NewNotification {
        channel: &target.channel,
        body,
        alerts: alert_seqs,
        deadline_ms,
    };
    crate::store::outbox::insert(conn, &n, target.contact.as_deref(), now, due_ms)
}

pub(super) fn pending_firing_due(
    conn: &Connection,
    alert: i64,
    target: &Target,
) -> Result<Option<Millis>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT MAX(n.next_attempt_ms) FROM notifications n
             JOIN notification_alerts na ON na.notification = n.id
             WHERE na.alert = ?1 AND n.channel = ?2 AND n.contact IS ?3 AND n.kind = 'firing'
               AND n.state = 'pending'",
        )?
        .query_row(params![alert, target.channel, target.contact], |r| r.get(0))?)
}

pub(super) fn firing_targets(conn: &Connection, alert: i64) -> Result<Vec<Target>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT n.channel, n.contact FROM notifications n
         JOIN notification_alerts na ON na.notification = n.id
         WHERE na.alert = ?1 AND n.kind = 'firing' ORDER BY n.channel, n.contact",
    )?;
    let rows = stmt.query_map([alert], |r| {
        Ok(Target {
            channel: r.get(0)?,
            contact: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
