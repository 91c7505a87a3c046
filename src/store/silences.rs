//! The SQL of silences (migration 11): one row per silence `SIL-<id>` with its matchers
//! (the texts as parsed and re-printed by `alerts::matcher`), author, comment, start and
//! end. Unsilencing ends a silence now and records who; rows are never deleted, so the
//! history stays. Creating or ending a silence runs inside [`Store::alerts_tx`] with the
//! timeline entries it adds to the alerts it covers (`alerts::silence` decides which).

use rusqlite::{Connection, OptionalExtension, params};

use super::alerts::{AlertRow, AlertTx, COLUMNS, add_event, read_row};
use super::{Store, StoreError};
use crate::clock::Millis;

/// One stored silence.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRow {
    pub id: i64,
    /// The matchers' canonical texts (`monitor=certs`, `target=~.*\.example`).
    pub matchers: Vec<String>,
    pub author: String,
    pub comment: String,
    pub starts_ms: Millis,
    pub ends_ms: Millis,
    pub created_ms: Millis,
    /// Set when someone ended it early (`unsilence`): when and who.
    pub removed_ms: Option<Millis>,
    pub removed_by: Option<String>,
}

impl SilenceRow {
    /// The public id (`SIL-3`).
    pub fn sil_id(&self) -> String {
        silence_id(self.id)
    }

    /// In force at `now`: started, not ended.
    pub fn active_at(&self, now: Millis) -> bool {
        self.starts_ms <= now && now < self.ends_ms
    }
}

/// The public id of a silence row.
pub fn silence_id(id: i64) -> String {
    format!("SIL-{id}")
}

/// `SIL-3` -> 3.
pub fn parse_silence_id(text: &str) -> Option<i64> {
    text.trim()
        .strip_prefix("SIL-")?
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// A silence to create.
#[derive(Debug, Clone)]
pub struct NewSilence<'a> {
    pub matchers: &'a [String],
    pub author: &'a str,
    pub comment: &'a str,
    pub starts_ms: Millis,
    pub ends_ms: Millis,
}

/// What ending a silence did.
#[derive(Debug, Clone, PartialEq)]
pub enum SilenceChange {
    Done(Box<SilenceRow>),
    NotFound,
    /// It had already ended (at `ends_ms`; by `removed_by` when someone ended it).
    AlreadyEnded {
        ends_ms: Millis,
        removed_by: Option<String>,
    },
}

const SIL_COLUMNS: &str =
    "id, matchers, author, comment, starts_ms, ends_ms, created_ms, removed_ms, removed_by";

fn read_silence(r: &rusqlite::Row<'_>) -> rusqlite::Result<SilenceRow> {
    let matchers: String = r.get(1)?;
    Ok(SilenceRow {
        id: r.get(0)?,
        matchers: serde_json::from_str(&matchers).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("bad matcher list: {e}").into(),
            )
        })?,
        author: r.get(2)?,
        comment: r.get(3)?,
        starts_ms: r.get(4)?,
        ends_ms: r.get(5)?,
        created_ms: r.get(6)?,
        removed_ms: r.get(7)?,
        removed_by: r.get(8)?,
    })
}

fn get(conn: &Connection, id: i64) -> Result<Option<SilenceRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {SIL_COLUMNS} FROM silences WHERE id = ?1"))?
        .query_row([id], read_silence)
        .optional()?)
}

fn active(conn: &Connection, now: Millis) -> Result<Vec<SilenceRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SIL_COLUMNS} FROM silences WHERE starts_ms <= ?1 AND ends_ms > ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([now], read_silence)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn firing_all(conn: &Connection) -> Result<Vec<AlertRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE state = 'firing' ORDER BY seq"
    ))?;
    let rows = stmt.query_map([], read_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What muting reads: the silences in force at `now` (oldest first) and every firing alert
/// (the sources inhibition rules look at), inside an evaluation's or an escalation round's
/// transaction, or from the store (the status views).
pub trait MuteSource {
    fn silences_active(&self, now: Millis) -> Result<Vec<SilenceRow>, StoreError>;
    fn firing_all(&self) -> Result<Vec<AlertRow>, StoreError>;
}

impl MuteSource for AlertTx<'_> {
    fn silences_active(&self, now: Millis) -> Result<Vec<SilenceRow>, StoreError> {
        active(self.transaction(), now)
    }
    fn firing_all(&self) -> Result<Vec<AlertRow>, StoreError> {
        firing_all(self.transaction())
    }
}

impl MuteSource for super::escalations::EscalationTx<'_> {
    fn silences_active(&self, now: Millis) -> Result<Vec<SilenceRow>, StoreError> {
        active(self.transaction(), now)
    }
    fn firing_all(&self) -> Result<Vec<AlertRow>, StoreError> {
        firing_all(self.transaction())
    }
}

impl MuteSource for Store {
    fn silences_active(&self, now: Millis) -> Result<Vec<SilenceRow>, StoreError> {
        active(&self.conn(), now)
    }
    fn firing_all(&self) -> Result<Vec<AlertRow>, StoreError> {
        firing_all(&self.conn())
    }
}

impl AlertTx<'_> {
    /// Every open (pending or firing) alert of every monitor.
    pub fn open_all(&self) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt = self.transaction().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE state != 'resolved' ORDER BY seq"
        ))?;
        let rows = stmt.query_map([], read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A timeline entry with the person who caused it.
    pub fn event_by(
        &self,
        alert: i64,
        at_ms: Millis,
        kind: &str,
        actor: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        add_event(self.transaction(), alert, at_ms, kind, Some(actor), detail)
    }

    /// Store a new silence (created now); returns it with its id.
    pub fn silence_insert(
        &self,
        s: &NewSilence<'_>,
        now: Millis,
    ) -> Result<SilenceRow, StoreError> {
        let matchers = serde_json::to_string(s.matchers).unwrap_or_else(|_| "[]".into());
        self.transaction()
            .prepare_cached(
                "INSERT INTO silences (matchers, author, comment, starts_ms, ends_ms, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                matchers,
                s.author,
                s.comment,
                s.starts_ms,
                s.ends_ms,
                now
            ])?;
        let id = self.transaction().last_insert_rowid();
        get(self.transaction(), id)?.ok_or(StoreError::Query(rusqlite::Error::QueryReturnedNoRows))
    }

    /// End a silence now (a silence not started yet ends before it starts), recording who.
    pub fn silence_expire(
        &self,
        id: i64,
        actor: &str,
        now: Millis,
    ) -> Result<SilenceChange, StoreError> {
        let Some(row) = get(self.transaction(), id)? else {
            return Ok(SilenceChange::NotFound);
        };
        if row.ends_ms <= now || row.removed_ms.is_some() {
            return Ok(SilenceChange::AlreadyEnded {
                ends_ms: row.ends_ms,
                removed_by: row.removed_by,
            });
        }
        let ends = now.max(row.starts_ms);
        self.transaction()
            .prepare_cached(
                "UPDATE silences SET ends_ms = ?2, removed_ms = ?3, removed_by = ?4 WHERE id = ?1",
            )?
            .execute(params![id, ends, now, actor])?;
        Ok(get(self.transaction(), id)?
            .map(|r| SilenceChange::Done(Box::new(r)))
            .unwrap_or(SilenceChange::NotFound))
    }
}

impl Store {
    /// One silence.
    pub fn silence_get(&self, id: i64) -> Result<Option<SilenceRow>, StoreError> {
        get(&self.conn(), id)
    }

    /// Silences not ended at `now` (in force or starting later, not removed), or with `include_ended`
    /// every silence; newest first, at most `limit`.
    pub fn silences_list(
        &self,
        include_ended: bool,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<SilenceRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {SIL_COLUMNS} FROM silences WHERE ?1 OR (ends_ms > ?2 AND removed_ms IS NULL)
             ORDER BY id DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![include_ended, now, limit as i64], read_silence)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silences_are_stored_listed_and_ended_with_history_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let m = vec![
            "monitor=certs".to_string(),
            "target=~.*\\.example".to_string(),
        ];
        let new = |starts_ms, ends_ms| NewSilence {
            matchers: &m,
            author: "alice",
            comment: "renewal in progress",
            starts_ms,
            ends_ms,
        };
        let (a, b) = store
            .alerts_tx(|tx| {
                Ok::<_, StoreError>((
                    tx.silence_insert(&new(100, 1000), 100)?,
                    tx.silence_insert(&new(2000, 3000), 100)?,
                ))
            })
            .unwrap();
        assert_eq!(a.sil_id(), "SIL-1");
        assert_eq!(a.matchers, m);
        assert_eq!(parse_silence_id("SIL-2"), Some(b.id));
        assert_eq!(parse_silence_id("SIL-0"), None);
        assert_eq!(parse_silence_id("ALR-2"), None);
        assert_eq!(store.silences_active(500).unwrap(), vec![a.clone()]);
        assert!(
            store.silences_active(1000).unwrap().is_empty(),
            "end is exclusive"
        );
        assert_eq!(store.silences_list(false, 500, 10).unwrap().len(), 2);
        let done = store
            .alerts_tx(|tx| tx.silence_expire(a.id, "bob", 600))
            .unwrap();
        let SilenceChange::Done(row) = done else {
            panic!("{done:?}")
        };
        assert_eq!((row.ends_ms, row.removed_by.as_deref()), (600, Some("bob")));
        assert!(store.silences_active(700).unwrap().is_empty());
        let again = store
            .alerts_tx(|tx| tx.silence_expire(a.id, "carol", 700))
            .unwrap();
        assert_eq!(
            again,
            SilenceChange::AlreadyEnded {
                ends_ms: 600,
                removed_by: Some("bob".into())
            }
        );
        // A silence that has not started ends at its start.
        let SilenceChange::Done(row) = store
            .alerts_tx(|tx| tx.silence_expire(b.id, "bob", 700))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(row.ends_ms, 2000);
        assert_eq!(
            store
                .alerts_tx(|tx| tx.silence_expire(99, "bob", 700))
                .unwrap(),
            SilenceChange::NotFound
        );
        assert!(store.silences_list(false, 700, 10).unwrap().is_empty());
        assert_eq!(store.silences_list(true, 700, 10).unwrap().len(), 2);
        assert!(store.silence_get(a.id).unwrap().is_some());
    }
}
