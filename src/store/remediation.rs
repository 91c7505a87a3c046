//! Remediation state: confirmation tokens (stored by digest, never the token) with their
//! issued -> approved -> used life cycle, and per-credential rotation rows (current version,
//! a lock while a rotation is in progress, and the `orphaned` mark).

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};

/// One issued confirmation token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub token_digest: String,
    pub tool: String,
    pub args_digest: String,
    pub caller: String,
    /// What the plan will do, for the human who approves it (no secrets).
    pub summary: String,
    /// `issued`, `approved` or `used`.
    pub state: String,
    pub issued_at: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub approved_by: Option<String>,
}

/// Rotation state of one credential.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RotationRow {
    pub credential: String,
    pub version: Option<String>,
    pub fingerprint: Option<String>,
    pub rotated_at: Option<String>,
    /// The step a rotation in progress reached (`preflight`, `staged`, `set`, `tested`,
    /// `promoted`); `None` when no rotation holds the lock.
    pub lock_step: Option<String>,
    pub pending_version: Option<String>,
    pub pending_fingerprint: Option<String>,
    /// Why a human must intervene, when rollback failed.
    pub orphaned: Option<String>,
}

fn now() -> String {
    crate::util::now_rfc3339()
}

fn read_token(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        token_digest: r.get(0)?,
        tool: r.get(1)?,
        args_digest: r.get(2)?,
        caller: r.get(3)?,
        summary: r.get(4)?,
        state: r.get(5)?,
        issued_at: r.get(6)?,
        expires_at: r.get(7)?,
        approved_by: r.get(8)?,
    })
}

fn read_rotation(r: &rusqlite::Row<'_>) -> rusqlite::Result<RotationRow> {
    Ok(RotationRow {
        credential: r.get(0)?,
        version: r.get(1)?,
        fingerprint: r.get(2)?,
        rotated_at: r.get(3)?,
        lock_step: r.get(4)?,
        pending_version: r.get(5)?,
        pending_fingerprint: r.get(6)?,
        orphaned: r.get(7)?,
    })
}

const ROTATION_COLUMNS: &str = "credential, version, fingerprint, rotated_at, lock_step, \
                                pending_version, pending_fingerprint, orphaned";

fn get_rotation(conn: &Connection, credential: &str) -> Result<Option<RotationRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {ROTATION_COLUMNS} FROM credential_rotations WHERE credential = ?1"),
            [credential],
            read_rotation,
        )
        .optional()?)
}

impl Store {
    pub fn token_insert(&self, t: &TokenRow) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO confirmation_tokens (token_digest, tool, args_digest, caller, summary,
                                              state, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'issued', ?6, ?7)",
            params![
                t.token_digest,
                t.tool,
                t.args_digest,
                t.caller,
                t.summary,
                t.issued_at,
                t.expires_at
            ],
        )?;
        Ok(())
    }

    pub fn token_get(&self, token_digest: &str) -> Result<Option<TokenRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT token_digest, tool, args_digest, caller, summary, state, issued_at,
                        expires_at, approved_by
                 FROM confirmation_tokens WHERE token_digest = ?1",
                [token_digest],
                read_token,
            )
            .optional()?)
    }

    /// Mark an issued token approved; false when it is not in state `issued`.
    pub fn token_approve(&self, token_digest: &str, by: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE confirmation_tokens SET state = 'approved', approved_by = ?2
             WHERE token_digest = ?1 AND state = 'issued'",
            params![token_digest, by],
        )?;
        Ok(n == 1)
    }

    /// Use a token up (atomically): false when it was already used.
    pub fn token_consume(&self, token_digest: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE confirmation_tokens SET state = 'used', used_at = ?2
             WHERE token_digest = ?1 AND state IN ('issued', 'approved')",
            params![token_digest, now()],
        )?;
        Ok(n == 1)
    }

    pub fn rotation_get(&self, credential: &str) -> Result<Option<RotationRow>, StoreError> {
        get_rotation(&self.conn(), credential)
    }

    /// Rotations holding their lock (to reconcile after a crash).
    pub fn rotations_in_progress(&self) -> Result<Vec<RotationRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ROTATION_COLUMNS} FROM credential_rotations WHERE lock_step IS NOT NULL"
        ))?;
        let rows = stmt.query_map([], read_rotation)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Take the rotation lock of `credential` for a new version; false when another
    /// rotation holds it.
    pub fn rotation_lock(
        &self,
        credential: &str,
        pending_version: &str,
        pending_fingerprint: &str,
    ) -> Result<bool, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO credential_rotations (credential, updated_at) VALUES (?1, ?2)",
            params![credential, now()],
        )?;
        let n = conn.execute(
            "UPDATE credential_rotations
             SET lock_step = 'preflight', pending_version = ?2, pending_fingerprint = ?3,
                 updated_at = ?4
             WHERE credential = ?1 AND lock_step IS NULL",
            params![credential, pending_version, pending_fingerprint, now()],
        )?;
        Ok(n == 1)
    }

    /// Record the step a rotation reached.
    pub fn rotation_step(&self, credential: &str, step: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE credential_rotations SET lock_step = ?2, updated_at = ?3 WHERE credential = ?1",
            params![credential, step, now()],
        )?;
        Ok(())
    }

    /// Release the lock; with `promoted`, the pending version becomes current.
    pub fn rotation_release(&self, credential: &str, promoted: bool) -> Result<(), StoreError> {
        let sql = if promoted {
            "UPDATE credential_rotations
             SET version = pending_version, fingerprint = pending_fingerprint, rotated_at = ?2,
                 lock_step = NULL, pending_version = NULL, pending_fingerprint = NULL,
                 orphaned = NULL, updated_at = ?2
             WHERE credential = ?1"
        } else {
            "UPDATE credential_rotations
             SET lock_step = NULL, pending_version = NULL, pending_fingerprint = NULL,
                 updated_at = ?2
             WHERE credential = ?1"
        };
        self.conn().execute(sql, params![credential, now()])?;
        Ok(())
    }

    /// Mark a credential orphaned (target and stored secret may disagree) and release the
    /// lock; `None` clears the mark.
    pub fn rotation_orphan(
        &self,
        credential: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE credential_rotations
             SET orphaned = ?2, lock_step = NULL, updated_at = ?3
             WHERE credential = ?1",
            params![credential, detail, now()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_single_use() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let t = TokenRow {
            token_digest: "d".into(),
            tool: "block_ip".into(),
            args_digest: "a".into(),
            caller: "stdio".into(),
            summary: "block".into(),
            state: "issued".into(),
            issued_at: now(),
            expires_at: 1,
            approved_by: None,
        };
        store.token_insert(&t).unwrap();
        assert!(store.token_approve("d", "cli").unwrap());
        assert!(!store.token_approve("d", "cli").unwrap());
        assert_eq!(store.token_get("d").unwrap().unwrap().state, "approved");
        assert!(store.token_consume("d").unwrap());
        assert!(!store.token_consume("d").unwrap());
        assert!(store.token_get("x").unwrap().is_none());
    }

    #[test]
    fn rotation_lock_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert!(store.rotation_lock("c", "v2", "fp2").unwrap());
        assert!(!store.rotation_lock("c", "v3", "fp3").unwrap());
        store.rotation_step("c", "set").unwrap();
        assert_eq!(store.rotations_in_progress().unwrap().len(), 1);
        store.rotation_release("c", true).unwrap();
        let r = store.rotation_get("c").unwrap().unwrap();
        assert_eq!(r.version.as_deref(), Some("v2"));
        assert!(r.lock_step.is_none());
        assert!(store.rotation_lock("c", "v3", "fp3").unwrap());
    }
}
