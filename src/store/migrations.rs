//! Versioned schema migrations, tracked in SQLite's `PRAGMA user_version`. Append new
//! steps to `MIGRATIONS`; never edit a step that has shipped.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// Step N (1-based) moves the schema from version N-1 to N.
const MIGRATIONS: &[&str] = &[
    // 1: the tool-call log (no arguments: they could hold secrets).
    "CREATE TABLE tool_calls (
        id          INTEGER PRIMARY KEY,
        ts          TEXT    NOT NULL,
        tool        TEXT    NOT NULL,
        caller      TEXT    NOT NULL,
        duration_ms REAL    NOT NULL,
        outcome     TEXT    NOT NULL,
        detail      TEXT
    );
    CREATE INDEX tool_calls_ts ON tool_calls(ts);",
    // 2: small named markers (e.g. when wazuh_health last read the manager logs).
    "CREATE TABLE kv (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );",
    // 3: the append-only, hash-chained audit log (gate decisions, remediation, incidents).
    "CREATE TABLE audit (
        id          INTEGER PRIMARY KEY,
        ts          TEXT NOT NULL,
        caller      TEXT NOT NULL,
        tool        TEXT NOT NULL,
        action      TEXT NOT NULL,
        args_digest TEXT,
        outcome     TEXT NOT NULL,
        detail      TEXT,
        incident_id TEXT,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL
    );
    CREATE INDEX audit_incident ON audit(incident_id) WHERE incident_id IS NOT NULL;",
    // 4: scan baselines (the open ports of each scan, for changes_since_last).
    "CREATE TABLE scans (
        id          INTEGER PRIMARY KEY,
        target      TEXT NOT NULL,
        scanned_at  TEXT NOT NULL,
        ports_spec  TEXT NOT NULL,
        addresses   TEXT NOT NULL
    );
    CREATE INDEX scans_target ON scans(target, id);
    CREATE TABLE scan_open_ports (
        scan_id INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        address TEXT    NOT NULL,
        port    INTEGER NOT NULL,
        PRIMARY KEY (scan_id, address, port)
    );",
    // 5: remediation gate: confirmation tokens (their digest only) and credential rotation
    // state (a lock row per credential while a rotation is in progress).
    "CREATE TABLE confirmation_tokens (
        token_digest TEXT PRIMARY KEY,
        tool         TEXT NOT NULL,
        args_digest  TEXT NOT NULL,
        caller       TEXT NOT NULL,
        summary      TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('issued', 'approved', 'used')),
        issued_at    TEXT NOT NULL,
        expires_at   INTEGER NOT NULL,
        approved_by  TEXT,
        used_at      TEXT
    );
    CREATE TABLE credential_rotations (
        credential       TEXT PRIMARY KEY,
        version          TEXT,
        fingerprint      TEXT,
        rotated_at       TEXT,
        lock_step        TEXT,
        pending_version  TEXT,
        pending_fingerprint TEXT,
        orphaned         TEXT,
        updated_at       TEXT NOT NULL
    );",
    // 6: incidents correlated from Wazuh alerts, and the alerts already ingested (for
    // idempotent ingestion across restarts; pruned behind the cursor).
    "CREATE TABLE incidents (
        seq            INTEGER PRIMARY KEY,
        corr_key       TEXT    NOT NULL,
        title          TEXT    NOT NULL,
        max_level      INTEGER NOT NULL,
        status         TEXT    NOT NULL,
        phase          TEXT    NOT NULL,
        assignee       TEXT,
        resolution     TEXT,
        first_alert_ms INTEGER NOT NULL,
        last_alert_ms  INTEGER NOT NULL,
        alert_count    INTEGER NOT NULL,
        body           TEXT    NOT NULL,
        created_at     TEXT    NOT NULL,
        updated_at     TEXT    NOT NULL,
        acknowledged_at TEXT,
        contained_at   TEXT,
        resolved_at    TEXT
    );
    CREATE INDEX incidents_open_key ON incidents(corr_key) WHERE status != 'resolved';
    CREATE TABLE ingested_alerts (
        doc   TEXT    PRIMARY KEY,
        ts_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX ingested_alerts_ts ON ingested_alerts(ts_ms);",
    // 7: monitoring: monitor runs (claimed with a lease, so replicas on a shared database
    // never run a monitor twice), our own alerts with their timeline, and the durable
    // outbox of notifications with every delivery attempt. Times are UTC epoch ms.
    "CREATE TABLE monitor_runs (
        id            INTEGER PRIMARY KEY,
        monitor       TEXT    NOT NULL,
        scheduled_ms  INTEGER NOT NULL,
        claimed_by    TEXT    NOT NULL,
        lease_until_ms INTEGER NOT NULL,
        started_ms    INTEGER NOT NULL,
        finished_ms   INTEGER,
        outcome       TEXT CHECK (outcome IN ('ok', 'problems', 'error', 'timeout')),
        error         TEXT,
        observations  INTEGER
    );
    CREATE INDEX monitor_runs_monitor ON monitor_runs(monitor, id);
    CREATE INDEX monitor_runs_started ON monitor_runs(started_ms);
    CREATE TABLE alerts (
        seq            INTEGER PRIMARY KEY,
        fingerprint    TEXT    NOT NULL,
        episode        TEXT    NOT NULL UNIQUE,
        monitor        TEXT    NOT NULL,
        code           TEXT    NOT NULL,
        subject        TEXT    NOT NULL,
        labels         TEXT    NOT NULL,
        level          TEXT    NOT NULL CHECK (level IN ('info', 'warning', 'critical', 'emergency')),
        state          TEXT    NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
        title          TEXT    NOT NULL,
        summary        TEXT    NOT NULL,
        value          TEXT,
        first_seen_ms  INTEGER NOT NULL,
        firing_ms      INTEGER,
        last_seen_ms   INTEGER NOT NULL,
        resolved_ms    INTEGER,
        occurrences    INTEGER NOT NULL DEFAULT 1,
        fail_streak    INTEGER NOT NULL DEFAULT 0,
        ok_streak      INTEGER NOT NULL DEFAULT 0,
        last_notified_ms INTEGER,
        acknowledged_ms INTEGER,
        acknowledged_by TEXT,
        failing_since_ms INTEGER
    );
    CREATE UNIQUE INDEX alerts_open ON alerts(fingerprint) WHERE state != 'resolved';
    CREATE INDEX alerts_state ON alerts(state, level);
    CREATE TABLE alert_events (
        id       INTEGER PRIMARY KEY,
        alert    INTEGER NOT NULL REFERENCES alerts(seq) ON DELETE CASCADE,
        at_ms    INTEGER NOT NULL,
        kind     TEXT    NOT NULL,
        actor    TEXT,
        detail   TEXT
    );
    CREATE INDEX alert_events_alert ON alert_events(alert, id);
    CREATE TABLE notifications (
        id             INTEGER PRIMARY KEY,
        channel        TEXT    NOT NULL,
        kind           TEXT    NOT NULL CHECK (kind IN ('firing', 'repeat', 'resolved', 'test')),
        dedup_key      TEXT    NOT NULL,
        body           TEXT    NOT NULL,
        state          TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts       INTEGER NOT NULL DEFAULT 0,
        created_ms     INTEGER NOT NULL,
        next_attempt_ms INTEGER NOT NULL,
        deadline_ms    INTEGER NOT NULL,
        claimed_by     TEXT,
        lease_until_ms INTEGER,
        delivered_ms   INTEGER,
        last_error     TEXT
    );
    CREATE INDEX notifications_due ON notifications(state, next_attempt_ms);
    CREATE INDEX notifications_channel ON notifications(channel, state);
    CREATE TABLE notification_alerts (
        notification INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
        alert        INTEGER NOT NULL REFERENCES alerts(seq) ON DELETE CASCADE,
        PRIMARY KEY (notification, alert)
    ) WITHOUT ROWID;
    CREATE INDEX notification_alerts_alert ON notification_alerts(alert);
    CREATE TABLE notification_attempts (
        id           INTEGER PRIMARY KEY,
        notification INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
        at_ms        INTEGER NOT NULL,
        outcome      TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
        status       INTEGER,
        detail       TEXT
    );
    CREATE INDEX notification_attempts_n ON notification_attempts(notification, id);",
    // 8: uptime monitors' response-time history (uptime % and p95 over 24 h and 7 d).
    "CREATE TABLE uptime_samples (
        id          INTEGER PRIMARY KEY,
        monitor     TEXT    NOT NULL,
        at_ms       INTEGER NOT NULL,
        ok          INTEGER NOT NULL,
        response_ms INTEGER
    );
    CREATE INDEX uptime_samples_monitor_at ON uptime_samples(monitor, at_ms);",
];

pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

pub fn apply(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let wrap = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(wrap)?;
    if current > latest() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: current,
            known: latest(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        // Each step and its version bump commit together or not at all.
        let batch = format!("BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {version}; COMMIT;");
        if let Err(e) = conn.execute_batch(&batch) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(wrap(e));
        }
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}
