//! The embedded SQLite store: the only code that writes SQL. Opens (and creates, 0700/0600)
//! the database in the state directory, applies versioned migrations, and owns the tables:
//! the `tool_calls` log, the audit chain and incidents; later scan baselines, rotations.

pub mod alerts;
pub mod audit;
pub mod digest;
pub mod escalations;
pub mod incidents;
mod migrations;
pub mod monitor_runs;
pub mod outbox;
pub mod remediation;
mod scans;
pub mod silences;
pub mod stats;
mod tool_calls;
pub mod uptime;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub use audit::{AuditEntry, AuditRecord, ChainReport};
pub use incidents::{AgentRef, AlertSample, IncidentBody, IncidentRow, Note};
pub use outbox::{
    Attempt, AttemptOutcome, AttemptRow, ChannelHealth, NewNotification, NotificationRow,
    NotificationState,
};
pub use remediation::{RotationRow, TokenRow};
pub use scans::ScanBaseline;
pub use stats::AlertCount;
pub use tool_calls::{ToolCallLog, ToolCallRecord};

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "secops.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this binary knows ({known}); \
         upgrade secops-mcp or point SECOPS_STATE_DIR elsewhere"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database error: {0}")]
    Query(#[from] rusqlite::Error),
}

/// Handle to the store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Connection for reads and synchronous writes.
    conn: Mutex<Connection>,
    /// Background writer for the high-volume tool-call log.
    tool_calls: ToolCallLog,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Store {
    /// Open (creating if needed) the database in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(state_dir)?;
        let path = state_dir.join(DB_FILE);
        let conn = open_conn(&path)?;
        restrict_file(&path);
        migrations::apply(&conn, &path)?;
        let writer = open_conn(&path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                tool_calls: ToolCallLog::spawn(writer),
                path,
                conn: Mutex::new(conn),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self.conn();
        Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Record one tool call (asynchronously batched; never blocks the caller on disk).
    pub fn record_tool_call(&self, rec: ToolCallRecord) {
        self.inner.tool_calls.record(rec);
    }

    /// Wait until every recorded tool call is on disk.
    pub fn flush(&self) {
        self.inner.tool_calls.flush();
    }

    /// The most recent tool calls, newest first.
    pub fn recent_tool_calls(&self, limit: usize) -> Result<Vec<ToolCallRecord>, StoreError> {
        tool_calls::recent(&self.conn(), limit)
    }

    /// A named marker, if set.
    pub fn get_kv(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn()
            .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Set a named marker.
    pub fn set_kv(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            rusqlite::params![key, value, crate::util::now_rfc3339()],
        )?;
        Ok(())
    }

    /// Append one audit row durably; the caller must not proceed if this fails.
    pub fn audit_append(&self, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
        audit::append(&mut self.conn(), entry)
    }

    /// The most recent audit rows, newest first.
    pub fn audit_recent(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        audit::recent(&self.conn(), limit)
    }

    /// Audit rows naming an incident, oldest first.
    pub fn audit_for_incident(
        &self,
        incident_id: &str,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        audit::for_incident(&self.conn(), incident_id, limit)
    }

    /// Walk the audit hash chain.
    pub fn audit_verify(&self) -> Result<ChainReport, StoreError> {
        audit::verify(&self.conn())
    }

    /// The newest stored scan of a target.
    pub fn last_scan(&self, target: &str) -> Result<Option<ScanBaseline>, StoreError> {
        scans::last(&self.conn(), target)
    }

    /// Store a completed scan as the target's new baseline.
    pub fn save_scan(
        &self,
        target: &str,
        scanned_at: &str,
        ports_spec: &str,
        addresses: &[String],
        open: &[(String, u16)],
    ) -> Result<i64, StoreError> {
        scans::save(
            &mut self.conn(),
            target,
            scanned_at,
            ports_spec,
            addresses,
            open,
        )
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions
        // roll back), so a poisoned lock is safe to reuse.
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let wrap = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(wrap)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(wrap)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(wrap)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(wrap)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(wrap)?;
    Ok(conn)
}

/// Create the state directory (0700) if needed; for files written there before the
/// database is opened.
pub fn ensure_state_dir(dir: &Path) -> Result<(), StoreError> {
    create_private_dir(dir)
}

/// Create the state directory with mode 0700 (and tighten an existing one we own).
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::StateDir {
        path: dir.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let meta = std::fs::metadata(dir).map_err(err)?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(err)?;
    Ok(())
}

fn restrict_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_dir_and_migrates() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let store = Store::open(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(store.schema_version().unwrap(), migrations::latest());
        let mode: String = store
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        // Re-opening is idempotent.
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.schema_version().unwrap(), migrations::latest());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        store
            .conn()
            .pragma_update(None, "user_version", 9999)
            .unwrap();
        drop(store);
        let err = Store::open(tmp.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::TooNew { found: 9999, .. }),
            "{err}"
        );
    }

    #[test]
    fn kv_markers_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.get_kv("a").unwrap(), None);
        store.set_kv("a", "1").unwrap();
        store.set_kv("a", "2").unwrap();
        assert_eq!(store.get_kv("a").unwrap().as_deref(), Some("2"));
    }

    #[test]
    fn tool_calls_are_logged_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        for i in 0..5 {
            store.record_tool_call(ToolCallRecord {
                ts: format!("2026-11-23T10:00:0{i}Z"),
                tool: "check_cert".into(),
                caller: "stdio".into(),
                duration_ms: 1.5,
                outcome: "ok".into(),
                detail: Some(format!("targets={i}")),
            });
        }
        store.flush();
        let recent = store.recent_tool_calls(3).unwrap();
        assert_eq!(recent.len(), 3);
        assert_eq!(recent[0].detail.as_deref(), Some("targets=4"));
        assert_eq!(recent[0].tool, "check_cert");
    }
}
