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
    // 9: notifications of kind `acknowledged` (PagerDuty acknowledge). SQLite cannot
    // change a CHECK in place, and dropping `notifications` with foreign keys on would
    // cascade into its children, so the three outbox tables are rebuilt side by side, the
    // old ones dropped children first, and the new ones renamed (which rewrites the
    // children's references).
    "CREATE TABLE notifications_v9 (
        id             INTEGER PRIMARY KEY,
        channel        TEXT    NOT NULL,
        kind           TEXT    NOT NULL
            CHECK (kind IN ('firing', 'repeat', 'resolved', 'acknowledged', 'test')),
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
    INSERT INTO notifications_v9 SELECT id, channel, kind, dedup_key, body, state, attempts,
        created_ms, next_attempt_ms, deadline_ms, claimed_by, lease_until_ms, delivered_ms,
        last_error FROM notifications;
    CREATE TABLE notification_alerts_v9 (
        notification INTEGER NOT NULL REFERENCES notifications_v9(id) ON DELETE CASCADE,
        alert        INTEGER NOT NULL REFERENCES alerts(seq) ON DELETE CASCADE,
        PRIMARY KEY (notification, alert)
    ) WITHOUT ROWID;
    INSERT INTO notification_alerts_v9 SELECT notification, alert FROM notification_alerts;
    CREATE TABLE notification_attempts_v9 (
        id           INTEGER PRIMARY KEY,
        notification INTEGER NOT NULL REFERENCES notifications_v9(id) ON DELETE CASCADE,
        at_ms        INTEGER NOT NULL,
        outcome      TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
        status       INTEGER,
        detail       TEXT
    );
    INSERT INTO notification_attempts_v9 SELECT id, notification, at_ms, outcome, status, detail
        FROM notification_attempts;
    DROP TABLE notification_attempts;
    DROP TABLE notification_alerts;
    DROP TABLE notifications;
    ALTER TABLE notifications_v9 RENAME TO notifications;
    ALTER TABLE notification_alerts_v9 RENAME TO notification_alerts;
    ALTER TABLE notification_attempts_v9 RENAME TO notification_attempts;
    CREATE INDEX notifications_due ON notifications(state, next_attempt_ms);
    CREATE INDEX notifications_channel ON notifications(channel, state);
    CREATE INDEX notification_alerts_alert ON notification_alerts(alert);
    CREATE INDEX notification_attempts_n ON notification_attempts(notification, id);",
    // 10: the kinds `escalation` (an unacknowledged alert or an overdue incident told to
    // a contact, whose name is in `contact`) and `digest` (what a channel's rate limit
    // held back, sent as one), and the state `digested` (carried by the digest row
    // `digest_id`). Rebuilt side by side like 9.
    "CREATE TABLE notifications_v10 (
        id             INTEGER PRIMARY KEY,
        channel        TEXT    NOT NULL,
        kind           TEXT    NOT NULL
            CHECK (kind IN ('firing', 'repeat', 'resolved', 'acknowledged', 'test',
                            'escalation', 'digest')),
        dedup_key      TEXT    NOT NULL,
        body           TEXT    NOT NULL,
        state          TEXT    NOT NULL
            CHECK (state IN ('pending', 'delivered', 'dead', 'digested')),
        attempts       INTEGER NOT NULL DEFAULT 0,
        created_ms     INTEGER NOT NULL,
        next_attempt_ms INTEGER NOT NULL,
        deadline_ms    INTEGER NOT NULL,
        claimed_by     TEXT,
        lease_until_ms INTEGER,
        delivered_ms   INTEGER,
        last_error     TEXT,
        contact        TEXT,
        digest_id      INTEGER REFERENCES notifications_v10(id) ON DELETE SET NULL
    );
    INSERT INTO notifications_v10 SELECT id, channel, kind, dedup_key, body, state, attempts,
        created_ms, next_attempt_ms, deadline_ms, claimed_by, lease_until_ms, delivered_ms,
        last_error, NULL, NULL FROM notifications;
    CREATE TABLE notification_alerts_v10 (
        notification INTEGER NOT NULL REFERENCES notifications_v10(id) ON DELETE CASCADE,
        alert        INTEGER NOT NULL REFERENCES alerts(seq) ON DELETE CASCADE,
        PRIMARY KEY (notification, alert)
    ) WITHOUT ROWID;
    INSERT INTO notification_alerts_v10 SELECT notification, alert FROM notification_alerts;
    CREATE TABLE notification_attempts_v10 (
        id           INTEGER PRIMARY KEY,
        notification INTEGER NOT NULL REFERENCES notifications_v10(id) ON DELETE CASCADE,
        at_ms        INTEGER NOT NULL,
        outcome      TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
        status       INTEGER,
        detail       TEXT
    );
    INSERT INTO notification_attempts_v10 SELECT id, notification, at_ms, outcome, status,
        detail FROM notification_attempts;
    DROP TABLE notification_attempts;
    DROP TABLE notification_alerts;
    DROP TABLE notifications;
    ALTER TABLE notifications_v10 RENAME TO notifications;
    ALTER TABLE notification_alerts_v10 RENAME TO notification_alerts;
    ALTER TABLE notification_attempts_v10 RENAME TO notification_attempts;
    CREATE INDEX notifications_due ON notifications(state, next_attempt_ms);
    CREATE INDEX notifications_channel ON notifications(channel, state);
    CREATE INDEX notifications_digest ON notifications(digest_id);
    CREATE INDEX notification_alerts_alert ON notification_alerts(alert);
    CREATE INDEX notification_attempts_n ON notification_attempts(notification, id);",
    // 11: silences (`SIL-<id>`): matchers (a JSON list of `label=value` texts), who and
    // why, when; unsilencing ends one now and records who (`removed_*`), the row is kept.
    "CREATE TABLE silences (
        id          INTEGER PRIMARY KEY,
        matchers    TEXT    NOT NULL,
        author      TEXT    NOT NULL,
        comment     TEXT    NOT NULL,
        starts_ms   INTEGER NOT NULL,
        ends_ms     INTEGER NOT NULL CHECK (ends_ms >= starts_ms),
        created_ms  INTEGER NOT NULL,
        removed_ms  INTEGER,
        removed_by  TEXT
    );
    CREATE INDEX silences_ends ON silences(ends_ms);",
    // 12: escalation steps done, once per alert episode (an `alerts` row) and rule, and
    // once per incident and SLA step; they go with their alert or incident.
    "CREATE TABLE alert_escalations (
        alert INTEGER NOT NULL REFERENCES alerts(seq) ON DELETE CASCADE,
        rule  TEXT    NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (alert, rule)
    ) WITHOUT ROWID;
    CREATE TABLE incident_escalations (
        incident INTEGER NOT NULL REFERENCES incidents(seq) ON DELETE CASCADE,
        step     TEXT    NOT NULL,
        at_ms    INTEGER NOT NULL,
        PRIMARY KEY (incident, step)
    ) WITHOUT ROWID;",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_9_keeps_the_outbox_and_its_cascades_and_takes_acknowledged() {
        let tmp = tempfile::tempdir().unwrap();
        let conn = Connection::open(tmp.path().join("s.db")).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        for sql in &MIGRATIONS[..8] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 8).unwrap();
        conn.execute_batch(
            "INSERT INTO notifications (id, channel, kind, dedup_key, body, state, created_ms,
                next_attempt_ms, deadline_ms) VALUES (7, 'pd', 'firing', 'k', '{}', 'pending', 1, 1, 2);
             INSERT INTO notification_attempts (notification, at_ms, outcome) VALUES (7, 1, 'retry');",
        )
        .unwrap();
        apply(&conn, tmp.path()).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM notification_attempts WHERE notification = 7",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
        conn.execute(
            "INSERT INTO notifications (channel, kind, dedup_key, body, state, created_ms,
                next_attempt_ms, deadline_ms) VALUES ('pd', 'acknowledged', 'k', '{}', 'pending', 1, 1, 2)",
            [],
        )
        .unwrap();
        let schema: String = conn
            .query_row(
                "SELECT group_concat(sql, ' ') FROM sqlite_schema WHERE name LIKE 'notification%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!schema.contains("_v9"), "{schema}");
        conn.execute("DELETE FROM notifications WHERE id = 7", [])
            .unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM notification_attempts", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 0, "the cascade still holds");
    }
}
