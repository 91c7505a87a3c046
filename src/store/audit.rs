//! The append-only audit log: one row per decision or action of the remediation gate and
//! of incident changes. Each row carries the hash of the previous row (a hash chain), so
//! editing or deleting a row is detected by `verify`, which names the first broken row.
//! Appends commit with `synchronous = FULL` before the caller proceeds (fail closed).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::StoreError;

/// Hash the first row chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a caller appends. Never put a secret in any field.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditEntry {
    /// HTTP principal, or `stdio`, or `cli` (out-of-band approval), or `system`.
    pub caller: String,
    /// Tool or subsystem, e.g. `rotate_credentials`, `incident_update`.
    pub tool: String,
    /// What happened: `plan`, `approve`, `apply`, `refuse`, `success`, `failure`,
    /// `rollback`, `reconcile`, `update`, ...
    pub action: String,
    /// Hex SHA-256 of the canonical, secret-free arguments (binds a row to a call).
    pub args_digest: Option<String>,
    /// Outcome or decision in one word: `ok`, `refused`, `rotated`, `rolled_back`, ...
    pub outcome: String,
    /// Short human-readable detail (reason for a refusal, target of an action). No secrets.
    pub detail: Option<String>,
    /// The incident this action belongs to, when given.
    pub incident_id: Option<String>,
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AuditRecord {
    pub id: i64,
    /// RFC 3339 UTC.
    pub ts: String,
    pub caller: String,
    pub tool: String,
    pub action: String,
    pub args_digest: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub incident_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// Result of walking the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainReport {
    /// Rows checked.
    pub rows: u64,
    /// The first row whose content or link does not match, with the reason.
    pub first_broken: Option<BrokenRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokenRow {
    pub id: i64,
    pub reason: String,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// The hash of a row: SHA-256 over the previous hash and every field, each length-prefixed
/// so no two different rows serialise alike.
fn row_hash(prev_hash: &str, id: i64, ts: &str, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    field(prev_hash);
    field(&id.to_string());
    field(ts);
    field(&e.caller);
    field(&e.tool);
    field(&e.action);
    field(e.args_digest.as_deref().unwrap_or("\u{0}none"));
    field(&e.outcome);
    field(e.detail.as_deref().unwrap_or("\u{0}none"));
    field(e.incident_id.as_deref().unwrap_or("\u{0}none"));
    hex::encode(h.finalize())
}

impl AuditRecord {
    /// The entry this row stores (what its hash covers, with its id, time and link).
    fn entry(&self) -> AuditEntry {
        AuditEntry {
            caller: self.caller.clone(),
            tool: self.tool.clone(),
            action: self.action.clone(),
            args_digest: self.args_digest.clone(),
            outcome: self.outcome.clone(),
            detail: self.detail.clone(),
            incident_id: self.incident_id.clone(),
        }
    }
}

/// Longest `detail` an audit row keeps, in characters.
pub const MAX_DETAIL_CHARS: usize = 1000;
/// Longest value of every other field (caller, tool, action, outcome, incident id, ...).
pub const MAX_FIELD_CHARS: usize = 200;

/// One audited value as stored: control and bidirectional-formatting characters become
/// `.`, and a value longer than `max` characters is cut, ending in
/// `…[truncated, sha256:<hex of the full value>]`, so the row stays short while the
/// original remains provable. The result is never longer than `max` characters.
pub fn cap_field(value: &str, max: usize) -> String {
    let clean = |c: char| {
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
        {
            '.'
        } else {
            c
        }
    };
    if value.chars().count() <= max {
        return value.chars().map(clean).collect();
    }
    let suffix = format!(
        "…[truncated, sha256:{}]",
        hex::encode(Sha256::digest(value.as_bytes()))
    );
    let keep = max.saturating_sub(suffix.chars().count());
    let mut out: String = value.chars().take(keep).map(clean).collect();
    out.push_str(&suffix);
    out
}

/// The entry with every field capped ([`cap_field`]): what is hashed and stored.
fn capped(e: &AuditEntry) -> AuditEntry {
    let f = |s: &str| cap_field(s, MAX_FIELD_CHARS);
    AuditEntry {
        caller: f(&e.caller),
        tool: f(&e.tool),
        action: f(&e.action),
        args_digest: e.args_digest.as_deref().map(f),
        outcome: f(&e.outcome),
        detail: e.detail.as_deref().map(|d| cap_field(d, MAX_DETAIL_CHARS)),
        incident_id: e.incident_id.as_deref().map(f),
    }
}

/// Append one row durably (its own IMMEDIATE transaction, synchronous = FULL). Every field
/// is capped and sanitised first ([`cap_field`]).
pub fn append(conn: &mut Connection, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
    let entry = &capped(entry);
    conn.pragma_update(None, "synchronous", "FULL")?;
    let result = append_inner(conn, entry);
    let _ = conn.pragma_update(None, "synchronous", "NORMAL");
    result
}

fn append_inner(conn: &mut Connection, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (id, prev_hash) = match last {
        Some((id, hash)) => (id + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let ts = crate::util::now_rfc3339();
    let hash = row_hash(&prev_hash, id, &ts, entry);
    tx.execute(
        "INSERT INTO audit (id, ts, caller, tool, action, args_digest, outcome, detail,
                            incident_id, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            id,
            ts,
            entry.caller,
            entry.tool,
            entry.action,
            entry.args_digest,
            entry.outcome,
            entry.detail,
            entry.incident_id,
            prev_hash,
            hash
        ],
    )?;
    tx.commit()?;
    Ok(AuditRecord {
        id,
        ts,
        caller: entry.caller.clone(),
        tool: entry.tool.clone(),
        action: entry.action.clone(),
        args_digest: entry.args_digest.clone(),
        outcome: entry.outcome.clone(),
        detail: entry.detail.clone(),
        incident_id: entry.incident_id.clone(),
        prev_hash,
        hash,
    })
}

const COLUMNS: &str =
    "id, ts, caller, tool, action, args_digest, outcome, detail, incident_id, prev_hash, hash";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        id: r.get(0)?,
        ts: r.get(1)?,
        caller: r.get(2)?,
        tool: r.get(3)?,
        action: r.get(4)?,
        args_digest: r.get(5)?,
        outcome: r.get(6)?,
        detail: r.get(7)?,
        incident_id: r.get(8)?,
        prev_hash: r.get(9)?,
        hash: r.get(10)?,
    })
}

/// The most recent rows, newest first.
pub fn recent(conn: &Connection, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit as i64], read_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Rows that name `incident_id`, oldest first (bounded by `limit`).
pub fn for_incident(
    conn: &Connection,
    incident_id: &str,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit WHERE incident_id = ?1 ORDER BY id ASC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![incident_id, limit as i64], read_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Walk the whole chain in id order and report the first row that does not verify.
pub fn verify(conn: &Connection) -> Result<ChainReport, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY id ASC"))?;
    let mut rows = stmt.query([])?;
    let mut expected_prev = GENESIS.to_string();
    let mut expected_id = 1i64;
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        let rec = read_row(row)?;
        count += 1;
        let broken = |reason: String| {
            Ok(ChainReport {
                rows: count,
                first_broken: Some(BrokenRow { id: rec.id, reason }),
            })
        };
        if rec.id != expected_id {
            return broken(format!(
                "row id {} follows row {}: rows {}..{} are missing",
                rec.id,
                expected_id - 1,
                expected_id,
                rec.id - 1
            ));
        }
        if rec.prev_hash != expected_prev {
            return broken("its prev_hash does not match the previous row's hash".into());
        }
        let recomputed = row_hash(&rec.prev_hash, rec.id, &rec.ts, &rec.entry());
        if recomputed != rec.hash {
            return broken("its content does not match its hash (the row was edited)".into());
        }
        expected_prev = rec.hash;
        expected_id += 1;
    }
    Ok(ChainReport {
        rows: count,
        first_broken: None,
    })
}

/// Hex SHA-256 of a canonical JSON rendering of `value` (object keys sorted), for
/// `args_digest`. Callers remove secrets before digesting.
pub fn canonical_digest(value: &serde_json::Value) -> String {
    fn canon(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                    out.push(':');
                    canon(&m[*k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canon(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    canon(value, &mut s);
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            caller: "alice".into(),
            tool: "rotate_credentials".into(),
            action: action.into(),
            args_digest: Some("ab".repeat(32)),
            outcome: "ok".into(),
            detail: Some("credential=wazuh-wui".into()),
            incident_id: None,
        }
    }

    #[test]
    fn chain_links_and_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let a = store.audit_append(&entry("plan")).unwrap();
        let b = store.audit_append(&entry("apply")).unwrap();
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(b.id, a.id + 1);
        let report = store.audit_verify().unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.rows, 2);
        let recent = store.audit_recent(1).unwrap();
        assert_eq!(recent[0].action, "apply");
    }

    #[test]
    fn editing_a_row_is_named_by_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        for a in ["plan", "approve", "apply", "success"] {
            store.audit_append(&entry(a)).unwrap();
        }
        store
            .conn()
            .execute("UPDATE audit SET outcome = 'refused' WHERE id = 3", [])
            .unwrap();
        let report = store.audit_verify().unwrap();
        let broken = report.first_broken.expect("edit detected");
        assert_eq!(broken.id, 3);
        assert!(broken.reason.contains("edited"), "{}", broken.reason);
    }

    #[test]
    fn deleting_a_middle_row_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        for a in ["plan", "approve", "apply"] {
            store.audit_append(&entry(a)).unwrap();
        }
        store
            .conn()
            .execute("DELETE FROM audit WHERE id = 2", [])
            .unwrap();
        let broken = store.audit_verify().unwrap().first_broken.unwrap();
        assert_eq!(broken.id, 3);
        assert!(broken.reason.contains("missing"), "{}", broken.reason);
    }

    #[test]
    fn incident_rows_are_found_oldest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let mut e = entry("apply");
        e.incident_id = Some("INC-1".into());
        store.audit_append(&e).unwrap();
        store.audit_append(&entry("plan")).unwrap();
        e.action = "success".into();
        store.audit_append(&e).unwrap();
        let rows = store.audit_for_incident("INC-1", 10).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
            ["apply", "success"]
        );
    }

    #[test]
    fn long_fields_are_cut_with_a_digest_and_still_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let huge = "x".repeat(250_000);
        let mut e = entry("refuse");
        e.detail = Some(format!("`{huge}` is not an IPv4 address"));
        e.caller = huge.clone();
        e.incident_id = Some("INC-\u{202e}1\n".into());
        let rec = store.audit_append(&e).unwrap();
        let detail = rec.detail.unwrap();
        assert_eq!(detail.chars().count(), MAX_DETAIL_CHARS);
        let full = hex::encode(Sha256::digest(e.detail.as_ref().unwrap().as_bytes()));
        assert!(
            detail.ends_with(&format!("…[truncated, sha256:{full}]")),
            "{detail}"
        );
        assert_eq!(rec.caller.chars().count(), MAX_FIELD_CHARS);
        assert_eq!(rec.incident_id.as_deref(), Some("INC-.1."));
        // Short values are kept as they are.
        assert_eq!(cap_field("by elicitation — ok", 200), "by elicitation — ok");
        assert!(store.audit_verify().unwrap().ok());
    }

    #[test]
    fn digest_is_canonical() {
        let a: serde_json::Value = serde_json::json!({"b": 1, "a": [1, {"y": 2, "x": 1}]});
        let b: serde_json::Value = serde_json::json!({"a": [1, {"x": 1, "y": 2}], "b": 1});
        assert_eq!(canonical_digest(&a), canonical_digest(&b));
        let c: serde_json::Value = serde_json::json!({"a": [1, {"x": 1, "y": 3}], "b": 1});
        assert_ne!(canonical_digest(&a), canonical_digest(&c));
    }
}
