//! Scan baselines: the open ports each scan of a target found, so the next scan of the same
//! target can say what opened and closed since (what nmap users do with ndiff). Only the
//! newest `KEEP_PER_TARGET` scans of a target are kept.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// Scans kept per target.
pub const KEEP_PER_TARGET: i64 = 20;

/// One stored scan of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanBaseline {
    pub id: i64,
    pub target: String,
    /// RFC 3339 UTC.
    pub scanned_at: String,
    /// The port spec the scan used (re-parsed to know which ports it covered).
    pub ports_spec: String,
    pub addresses: Vec<String>,
    /// (address, port) pairs found open.
    pub open: Vec<(String, u16)>,
}

/// The newest stored scan of `target`.
pub fn last(conn: &Connection, target: &str) -> Result<Option<ScanBaseline>, StoreError> {
    let head: Option<(i64, String, String, String)> = conn
        .query_row(
            "SELECT id, scanned_at, ports_spec, addresses FROM scans WHERE target = ?1
             ORDER BY id DESC LIMIT 1",
            [target],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((id, scanned_at, ports_spec, addresses)) = head else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT address, port FROM scan_open_ports WHERE scan_id = ?1 ORDER BY address, port",
    )?;
    let open = stmt
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u16))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ScanBaseline {
        id,
        target: target.to_string(),
        scanned_at,
        ports_spec,
        addresses: serde_json::from_str(&addresses).unwrap_or_default(),
        open,
    }))
}

/// Store a completed scan and prune the target's oldest scans.
pub fn save(
    conn: &mut Connection,
    target: &str,
    scanned_at: &str,
    ports_spec: &str,
    addresses: &[String],
    open: &[(String, u16)],
) -> Result<i64, StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO scans (target, scanned_at, ports_spec, addresses) VALUES (?1, ?2, ?3, ?4)",
        params![
            target,
            scanned_at,
            ports_spec,
            serde_json::to_string(addresses).unwrap_or_else(|_| "[]".into())
        ],
    )?;
    let id = tx.last_insert_rowid();
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO scan_open_ports (scan_id, address, port) VALUES (?1, ?2, ?3)",
        )?;
        for (address, port) in open {
            stmt.execute(params![id, address, *port as i64])?;
        }
    }
    tx.execute(
        "DELETE FROM scans WHERE target = ?1 AND id NOT IN
           (SELECT id FROM scans WHERE target = ?1 ORDER BY id DESC LIMIT ?2)",
        params![target, KEEP_PER_TARGET],
    )?;
    tx.commit()?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::super::Store;

    #[test]
    fn saves_reads_back_and_prunes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert!(store.last_scan("127.0.0.77").unwrap().is_none());
        for i in 0..(super::KEEP_PER_TARGET + 5) {
            store
                .save_scan(
                    "127.0.0.77",
                    &format!("2026-11-23T10:00:{:02}Z", i % 60),
                    "top100",
                    &["127.0.0.77".to_string()],
                    &[
                        ("127.0.0.77".to_string(), 22),
                        ("127.0.0.77".to_string(), i as u16 + 1000),
                    ],
                )
                .unwrap();
        }
        let last = store.last_scan("127.0.0.77").unwrap().unwrap();
        assert_eq!(last.ports_spec, "top100");
        assert_eq!(last.addresses, ["127.0.0.77"]);
        assert!(last.open.contains(&("127.0.0.77".to_string(), 22)));
        assert!(last.open.contains(&("127.0.0.77".to_string(), 1024)));
        let kept: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM scans", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, super::KEEP_PER_TARGET);
        let ports: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM scan_open_ports", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            ports,
            super::KEEP_PER_TARGET * 2,
            "pruned scans take their ports along"
        );
    }
}
