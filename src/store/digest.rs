//! The digest side of the outbox's SQL: rows a channel's rate limit held back become
//! `digested`, carried by one open digest row of that channel (kind `digest`, pending,
//! never tried, held by no sender); a held-back row joins the open digest, or starts one
//! due when the limit next allows a send. Everything happens in one transaction: the
//! carried rows' state and `digest_id`, the digest's body (rebuilt by the caller from every
//! row it carries), its deadline (the latest of theirs) and its links to their alerts (so
//! an alert's timeline shows the digest's attempts). A row is only taken while the calling
//! sender still holds its claim.

use rusqlite::{OptionalExtension, params};

use super::outbox::{COLUMNS, NotificationRow, read_row};
use super::{Store, StoreError};
use crate::alerts::NotificationBody;
use crate::clock::Millis;

/// Builds a digest's body from its id and every row it carries (oldest first).
pub type DigestBuilder<'a> = &'a dyn Fn(i64, &[NotificationRow]) -> NotificationBody;

fn to_json(body: &NotificationBody) -> Result<String, StoreError> {
    serde_json::to_string(body)
        .map_err(|e| StoreError::Query(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))
}

impl Store {
    /// Hold back rows `ids` of `channel` (claimed by `worker`) into the channel's open
    /// digest, or a new one first due at `due_ms`. Returns the digest's id and how many
    /// rows it took now (0 and no digest when `worker` held none of them any more).
    pub fn outbox_hold(
        &self,
        worker: &str,
        channel: &str,
        ids: &[i64],
        now_ms: Millis,
        due_ms: Millis,
        build: DigestBuilder<'_>,
    ) -> Result<Option<(i64, usize)>, StoreError> {
        if ids.is_empty() {
            return Ok(None);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let open: Option<i64> = tx
            .query_row(
                "SELECT id FROM notifications
                 WHERE channel = ?1 AND kind = 'digest' AND state = 'pending'
                   AND attempts = 0 AND claimed_by IS NULL
                 ORDER BY id DESC LIMIT 1",
                [channel],
                |r| r.get(0),
            )
            .optional()?;
        let digest = match open {
            Some(id) => {
                tx.execute(
                    "UPDATE notifications SET next_attempt_ms = MIN(next_attempt_ms, ?2)
                     WHERE id = ?1",
                    params![id, due_ms],
                )?;
                id
            }
            None => {
                let empty = build(0, &[]);
                tx.execute(
                    "INSERT INTO notifications (channel, kind, dedup_key, body, state, attempts,
                        created_ms, next_attempt_ms, deadline_ms)
                     VALUES (?1, 'digest', '', ?2, 'pending', 0, ?3, ?4, ?4)",
                    params![channel, to_json(&empty)?, now_ms, due_ms],
                )?;
                tx.last_insert_rowid()
            }
        };
        let mut taken = 0;
        {
            let mut mark = tx.prepare_cached(
                "UPDATE notifications SET state = 'digested', digest_id = ?2,
                    claimed_by = NULL, lease_until_ms = NULL
                 WHERE id = ?1 AND channel = ?3 AND claimed_by = ?4 AND state = 'pending'
                   AND kind != 'digest'",
            )?;
            for id in ids {
                taken += mark.execute(params![id, digest, channel, worker])?;
            }
        }
        if taken == 0 {
            // Nothing held back after all: a new digest is rolled back with the rest.
            return Ok(None);
        }
        let carried = {
            let sql =
                format!("SELECT {COLUMNS} FROM notifications WHERE digest_id = ?1 ORDER BY id");
            let mut stmt = tx.prepare(&sql)?;
            stmt.query_map([digest], read_row)?
                .collect::<Result<Vec<_>, _>>()?
        };
        let body = build(digest, &carried);
        let deadline = carried
            .iter()
            .map(|r| r.deadline_ms)
            .max()
            .unwrap_or(due_ms);
        tx.execute(
            "UPDATE notifications SET body = ?2, dedup_key = ?3,
                deadline_ms = MAX(deadline_ms, ?4)
             WHERE id = ?1",
            params![digest, to_json(&body)?, body.dedup_key, deadline],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO notification_alerts (notification, alert)
             SELECT ?1, l.alert FROM notification_alerts l
             JOIN notifications n ON n.id = l.notification WHERE n.digest_id = ?1",
            [digest],
        )?;
        tx.commit()?;
        Ok(Some((digest, taken)))
    }

    /// Put claimed row `id` back unchanged but for its next attempt (no attempt is
    /// counted): a digest waiting for its channel's limit. False when `worker` no longer
    /// held it.
    pub fn outbox_defer(
        &self,
        id: i64,
        worker: &str,
        next_attempt_ms: Millis,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE notifications SET next_attempt_ms = ?3, claimed_by = NULL,
                lease_until_ms = NULL
             WHERE id = ?1 AND claimed_by = ?2 AND state = 'pending'",
            params![id, worker, next_attempt_ms],
        )?;
        Ok(n == 1)
    }

    /// The rows digest `digest` carries, oldest first.
    pub fn outbox_digested(&self, digest: i64) -> Result<Vec<NotificationRow>, StoreError> {
        let conn = self.conn();
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE digest_id = ?1 ORDER BY id");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([digest], read_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The digest that carries row `id`, if any.
    pub fn outbox_digest_of(&self, id: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT digest_id FROM notifications WHERE id = ?1",
                [id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }
}
