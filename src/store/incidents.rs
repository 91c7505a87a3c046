//! Incident rows and the ingested-alert ledger: the SQL behind incident correlation. The
//! correlation rules live in `incidents::correlate`; this module only loads and saves rows,
//! inside one transaction per ingested page so a page is counted once or not at all.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// One alert as kept in an incident's sample: compact, already sanitised fields only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertSample {
    pub time_ms: i64,
    pub rule_id: String,
    pub level: u32,
    pub description: String,
    pub agent_id: String,
    pub agent_name: String,
    pub srcip: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub at: String,
    pub by: String,
    pub text: String,
}

/// The variable-length parts of an incident, stored as one JSON column (each list capped
/// by the correlation code).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentBody {
    pub agents: Vec<AgentRef>,
    pub source_ips: Vec<String>,
    pub mitre: Vec<String>,
    /// The first alerts of the incident.
    pub first_alerts: Vec<AlertSample>,
    /// The most recent alerts after the first ones (a ring).
    pub last_alerts: Vec<AlertSample>,
    pub notes: Vec<Note>,
}

/// One stored incident. `seq` is 0 until inserted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentRow {
    pub seq: i64,
    pub key: String,
    pub title: String,
    pub max_level: u32,
    pub status: String,
    pub phase: String,
    pub assignee: Option<String>,
    pub resolution: Option<String>,
    pub first_alert_ms: i64,
    pub last_alert_ms: i64,
    pub alert_count: u64,
    pub body: IncidentBody,
    pub created_at: String,
    pub updated_at: String,
    pub acknowledged_at: Option<String>,
    pub contained_at: Option<String>,
    pub resolved_at: Option<String>,
}

pub(super) const COLUMNS: &str =
    "seq, corr_key, title, max_level, status, phase, assignee, resolution,
    first_alert_ms, last_alert_ms, alert_count, body, created_at, updated_at,
    acknowledged_at, contained_at, resolved_at";

pub(super) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentRow> {
    let body: String = r.get(11)?;
    Ok(IncidentRow {
        seq: r.get(0)?,
        key: r.get(1)?,
        title: r.get(2)?,
        max_level: r.get(3)?,
        status: r.get(4)?,
        phase: r.get(5)?,
        assignee: r.get(6)?,
        resolution: r.get(7)?,
        first_alert_ms: r.get(8)?,
        last_alert_ms: r.get(9)?,
        alert_count: r.get::<_, i64>(10)?.max(0) as u64,
        // A body we cannot read (hand-edited database) degrades to empty lists.
        body: serde_json::from_str(&body).unwrap_or_default(),
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        acknowledged_at: r.get(14)?,
        contained_at: r.get(15)?,
        resolved_at: r.get(16)?,
    })
}

fn body_json(row: &IncidentRow) -> String {
    serde_json::to_string(&row.body).unwrap_or_else(|_| "{}".into())
}

fn save(conn: &Connection, row: &mut IncidentRow) -> Result<(), StoreError> {
    let body = body_json(row);
    if row.seq == 0 {
        conn.prepare_cached(
            "INSERT INTO incidents (corr_key, title, max_level, status, phase, assignee,
                resolution, first_alert_ms, last_alert_ms, alert_count, body, created_at,
                updated_at, acknowledged_at, contained_at, resolved_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            row.key,
            row.title,
            row.max_level,
            row.status,
            row.phase,
            row.assignee,
            row.resolution,
            row.first_alert_ms,
            row.last_alert_ms,
            row.alert_count as i64,
            body,
            row.created_at,
            row.updated_at,
            row.acknowledged_at,
            row.contained_at,
            row.resolved_at
        ])?;
        row.seq = conn.last_insert_rowid();
    } else {
        conn.prepare_cached(
            "UPDATE incidents SET corr_key = ?2, title = ?3, max_level = ?4, status = ?5,
                phase = ?6, assignee = ?7, resolution = ?8, first_alert_ms = ?9,
                last_alert_ms = ?10, alert_count = ?11, body = ?12, updated_at = ?13,
                acknowledged_at = ?14, contained_at = ?15, resolved_at = ?16
             WHERE seq = ?1",
        )?
        .execute(params![
            row.seq,
            row.key,
            row.title,
            row.max_level,
            row.status,
            row.phase,
            row.assignee,
            row.resolution,
            row.first_alert_ms,
            row.last_alert_ms,
            row.alert_count as i64,
            body,
            row.updated_at,
            row.acknowledged_at,
            row.contained_at,
            row.resolved_at
        ])?;
    }
    Ok(())
}

/// The operations correlation needs inside one page's transaction.
pub struct IncidentTx<'a> {
    tx: Transaction<'a>,
}

impl IncidentTx<'_> {
    /// Remember an alert document; false when it was already ingested.
    pub fn mark_ingested(&self, doc: &str, ts_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO ingested_alerts (doc, ts_ms) VALUES (?1, ?2)")?
            .execute(params![doc, ts_ms])?;
        Ok(n == 1)
    }

    /// The newest non-resolved incident with this correlation key.
    pub fn open_by_key(&self, key: &str) -> Result<Option<IncidentRow>, StoreError> {
        Ok(self
            .tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM incidents WHERE corr_key = ?1 AND status != 'resolved'
                 ORDER BY seq DESC LIMIT 1"
            ))?
            .query_row([key], read_row)
            .optional()?)
    }

    /// Insert (seq 0) or update a row; sets `seq` on insert.
    pub fn save(&self, row: &mut IncidentRow) -> Result<(), StoreError> {
        save(&self.tx, row)
    }
}

impl Store {
    /// Run `f` in one IMMEDIATE transaction over the incident tables; commits when `f` is Ok.
    pub fn incident_tx<T>(
        &self,
        f: impl FnOnce(&IncidentTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let itx = IncidentTx { tx };
        let out = f(&itx)?;
        itx.tx.commit()?;
        Ok(out)
    }

    /// Save one incident outside ingestion (lifecycle changes).
    pub fn incident_save(&self, row: &mut IncidentRow) -> Result<(), StoreError> {
        save(&self.conn(), row)
    }

    pub fn incident_get(&self, seq: i64) -> Result<Option<IncidentRow>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM incidents WHERE seq = ?1"))?
            .query_row([seq], read_row)
            .optional()?)
    }

    /// Every non-resolved incident, plus resolved ones with an alert or change since
    /// `since_ms` / `since_ts`; newest first, at most `limit`.
    pub fn incidents_active(
        &self,
        since_ms: i64,
        since_ts: &str,
        limit: usize,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM incidents
             WHERE status != 'resolved' OR last_alert_ms >= ?1 OR updated_at >= ?2
             ORDER BY seq DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![since_ms, since_ts, limit as i64], read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The non-resolved incidents (open, acknowledged, contained), newest first, at most
    /// `limit`.
    pub fn incidents_unresolved(&self, limit: usize) -> Result<Vec<IncidentRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM incidents WHERE status != 'resolved'
             ORDER BY seq DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], read_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forget ingested-alert ids older than `before_ms` (they are behind the cursor).
    pub fn ingested_prune(&self, before_ms: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM ingested_alerts WHERE ts_ms < ?1", [before_ms])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_ingest_marks_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let seq = store
            .incident_tx(|tx| {
                assert!(tx.mark_ingested("idx/a", 5)?);
                assert!(!tx.mark_ingested("idx/a", 5)?);
                let mut row = IncidentRow {
                    key: "srcip:192.0.2.1".into(),
                    status: "open".into(),
                    phase: "detection_analysis".into(),
                    max_level: 10,
                    alert_count: 1,
                    ..Default::default()
                };
                tx.save(&mut row)?;
                assert_eq!(tx.open_by_key("srcip:192.0.2.1")?.unwrap().seq, row.seq);
                Ok(row.seq)
            })
            .unwrap();
        let mut row = store.incident_get(seq).unwrap().unwrap();
        row.status = "resolved".into();
        store.incident_save(&mut row).unwrap();
        assert!(
            store
                .incident_tx(|tx| tx.open_by_key("srcip:192.0.2.1"))
                .unwrap()
                .is_none()
        );
        assert_eq!(store.incidents_active(0, "", 10).unwrap().len(), 1);
        assert!(store.incidents_unresolved(10).unwrap().is_empty());
        assert_eq!(store.ingested_prune(6).unwrap(), 1);
    }
}
