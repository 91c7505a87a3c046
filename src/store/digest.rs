//! The digest side of the outbox's SQL: rows a channel's rate limit held back become
//! `digested`, carried by one open digest row of that channel (kind `digest`, pending,
//! never tried, held by no sender); a held-back row joins the open digest, or starts one
//! due when the limit next allows a send. Everything happens in one transaction: the
//! carried rows' state and `digest_id`, one digest per escalation contact (the `contact`
//! column: rows for different contacts are never mixed), the digest's body (rebuilt by the caller from every
//! row it carries), its deadline (the latest of theirs) and its links to their alerts (so
//! an alert's timeline shows the digest's attempts). A row is only taken while the calling
//! sender still holds its claim.

use rusqlite::{OptionalExtension, Transaction, params};

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
    /// digest for the same `contact` (an escalation's; none for the others), or a new one
    /// first due at `due_ms`. Returns each digest that took rows and how many (none when
    /// `worker` held none of them any more).
    pub fn outbox_hold(
        &self,
        worker: &str,
        channel: &str,
        ids: &[i64],
        now_ms: Millis,
        due_ms: Millis,
        build: DigestBuilder<'_>,
    ) -> Result<Vec<(i64, usize)>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut by_contact: Vec<(Option<String>, Vec<i64>)> = Vec::new();
        {
            let mut contact_of =
                tx.prepare_cached("SELECT contact FROM notifications WHERE id = ?1")?;
            for id in ids {
                let Some(c) = contact_of
                    .query_row([id], |r| r.get::<_, Option<String>>(0))
                    .optional()?
                else {
                    continue;
                };
                match by_contact.iter_mut().find(|(k, _)| *k == c) {
                    Some((_, v)) => v.push(*id),
                    None => by_contact.push((c, vec![*id])),
                }
            }
        }
        let mut out = Vec::new();
        for (contact, ids) in by_contact {
            if let Some(d) = hold_one(
                &tx,
                worker,
                channel,
                contact.as_deref(),
                &ids,
                now_ms,
                due_ms,
                build,
            )? {
                out.push(d);
            }
        }
        tx.commit()?;
        Ok(out)
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

/// [`Store::outbox_hold`] for the rows of one contact, inside its transaction.
#[allow(clippy::too_many_arguments)]
fn hold_one(
    tx: &Transaction<'_>,
    worker: &str,
    channel: &str,
    contact: Option<&str>,
    ids: &[i64],
    now_ms: Millis,
    due_ms: Millis,
    build: DigestBuilder<'_>,
) -> Result<Option<(i64, usize)>, StoreError> {
    tx.execute("SAVEPOINT hold_one", [])?;
    let open: Option<i64> = tx
        .query_row(
            "SELECT id FROM notifications
             WHERE channel = ?1 AND kind = 'digest' AND state = 'pending'
               AND attempts = 0 AND claimed_by IS NULL AND contact IS ?2
             ORDER BY id DESC LIMIT 1",
            params![channel, contact],
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
                    created_ms, next_attempt_ms, deadline_ms, contact)
                 VALUES (?1, 'digest', '', ?2, 'pending', 0, ?3, ?4, ?4, ?5)",
                params![channel, to_json(&empty)?, now_ms, due_ms, contact],
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
        // Nothing held back after all: undo a new digest (and the due time of an open one).
        tx.execute_batch("ROLLBACK TO hold_one; RELEASE hold_one")?;
        return Ok(None);
    }
    let carried = {
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE digest_id = ?1 ORDER BY id");
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
    tx.execute("RELEASE hold_one", [])?;
    Ok(Some((digest, taken)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alerts::NotificationKind;
    use crate::store::{NewNotification, NotificationState};

    fn body(key: &str) -> NotificationBody {
        NotificationBody {
            escalation: None,
            kind: NotificationKind::Escalation,
            group_key: "web".into(),
            group_labels: BTreeMap::new(),
            dedup_key: key.into(),
            alerts: vec![],
            digest: vec![],
        }
    }

    fn build(id: i64, rows: &[NotificationRow]) -> NotificationBody {
        let mut b = body(&format!("digest-{id}"));
        b.kind = NotificationKind::Digest;
        b.group_key = format!("{} rows", rows.len());
        b
    }

    fn contact_of(store: &Store, id: i64) -> Option<String> {
        store
            .conn()
            .query_row(
                "SELECT contact FROM notifications WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn held_rows_join_one_digest_per_contact_and_only_while_claimed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let enqueue = |k: &str, contact: Option<&str>| {
            let b = body(k);
            let id = store
                .outbox_enqueue(
                    &NewNotification {
                        channel: "mail",
                        body: &b,
                        alerts: &[],
                        deadline_ms: 50_000,
                    },
                    1_000,
                )
                .unwrap();
            store
                .conn()
                .execute(
                    "UPDATE notifications SET contact = ?2 WHERE id = ?1",
                    params![id, contact],
                )
                .unwrap();
            id
        };
        let plain = enqueue("a", None);
        let lead1 = enqueue("b", Some("security lead"));
        let lead2 = enqueue("c", Some("security lead"));
        store.outbox_claim("w", 1_000, 10_000, 10).unwrap();
        let held = store
            .outbox_hold("w", "mail", &[plain, lead1, lead2], 1_000, 61_000, &build)
            .unwrap();
        assert_eq!(held.len(), 2, "{held:?}");
        let (d_plain, d_lead) = (held[0].0, held[1].0);
        assert_eq!((held[0].1, held[1].1), (1, 2));
        assert_eq!(contact_of(&store, d_plain), None);
        assert_eq!(contact_of(&store, d_lead).as_deref(), Some("security lead"));
        let d = store.outbox_get(d_lead).unwrap().unwrap();
        assert_eq!((d.kind.as_str(), d.next_attempt_ms), ("digest", 61_000));
        assert_eq!(d.body.group_key, "2 rows");
        assert_eq!(d.dedup_key, format!("digest-{d_lead}"));
        // The digest lives at least as long as the rows it carries.
        assert_eq!(d.deadline_ms, 61_000);
        for id in [lead1, lead2] {
            let r = store.outbox_get(id).unwrap().unwrap();
            assert_eq!(r.state, NotificationState::Digested);
            assert_eq!(r.claimed_by, None);
            assert_eq!(store.outbox_digest_of(id).unwrap(), Some(d_lead));
        }
        // Another row for the lead joins the open digest, its due time pulled forward.
        let lead3 = enqueue("d", Some("security lead"));
        store.outbox_claim("w", 1_000, 10_000, 10).unwrap();
        let again = store
            .outbox_hold("w", "mail", &[lead3], 2_000, 30_000, &build)
            .unwrap();
        assert_eq!(again, vec![(d_lead, 1)]);
        assert_eq!(store.outbox_digested(d_lead).unwrap().len(), 3);
        let d = store.outbox_get(d_lead).unwrap().unwrap();
        assert_eq!(
            (d.next_attempt_ms, d.body.group_key.as_str()),
            (30_000, "3 rows")
        );
        // A row this sender does not hold is not taken, and no digest is left behind.
        let other = enqueue("e", None);
        store.outbox_claim("x", 1_000, 10_000, 10).unwrap();
        let before = store.outbox_list(None, 100).unwrap().len();
        assert!(
            store
                .outbox_hold("w", "mail", &[other], 2_000, 30_000, &build)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.outbox_list(None, 100).unwrap().len(), before);
        // A claimed digest waiting for its limit is put back, no attempt counted.
        let claimed = store.outbox_claim("w", 61_000, 10_000, 10).unwrap();
        assert!(claimed.iter().any(|r| r.id == d_plain), "{claimed:?}");
        assert!(store.outbox_defer(d_plain, "w", 62_000).unwrap());
        let d = store.outbox_get(d_plain).unwrap().unwrap();
        assert_eq!(
            (d.next_attempt_ms, d.attempts, d.claimed_by),
            (62_000, 0, None)
        );
        assert!(store.outbox_attempts(d_plain).unwrap().is_empty());
    }
}
