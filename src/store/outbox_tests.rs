//! The outbox SQL's tests (store/outbox.rs).
use std::collections::BTreeMap;

use super::*;
use crate::alerts::{NotificationKind, alert_id};

fn body(key: &str) -> NotificationBody {
    NotificationBody {
        escalation: None,
        kind: NotificationKind::Firing,
        group_key: "certs".into(),
        group_labels: BTreeMap::new(),
        dedup_key: key.into(),
        alerts: vec![],
        digest: vec![],
    }
}

fn alert_row(store: &Store) -> i64 {
    let conn = store.conn();
    conn.execute(
        "INSERT INTO alerts (fingerprint, episode, monitor, code, subject, labels, level,
            state, title, summary, first_seen_ms, last_seen_ms)
         VALUES ('fp', 'fp-1', 'certs', 'cert_expiring', '{}', '{}', 'warning', 'firing',
            't', 's', 1, 1)",
        [],
    )
    .unwrap();
    conn.last_insert_rowid()
}

#[test]
fn enqueue_in_the_callers_transaction_commits_or_rolls_back_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let b = body("k1");
    let n = NewNotification {
        channel: "hook",
        body: &b,
        alerts: &[],
        deadline_ms: 10_000,
    };
    {
        let mut conn = store.conn();
        let tx = conn.transaction().unwrap();
        enqueue(&tx, &n, 1_000).unwrap();
        // dropped: rolled back
    }
    assert!(store.outbox_list(None, 10).unwrap().is_empty());
    {
        let mut conn = store.conn();
        let tx = conn.transaction().unwrap();
        enqueue(&tx, &n, 1_000).unwrap();
        tx.commit().unwrap();
    }
    let rows = store.outbox_list(None, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].body, b);
    assert_eq!(rows[0].kind, "firing");
    assert_eq!(rows[0].dedup_key, "k1");
    assert_eq!(rows[0].state, NotificationState::Pending);
    assert_eq!(
        (rows[0].next_attempt_ms, rows[0].deadline_ms),
        (1_000, 10_000)
    );
}

#[test]
fn a_lease_keeps_others_off_until_it_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let b = body("k");
    for _ in 0..3 {
        store
            .outbox_enqueue(
                &NewNotification {
                    channel: "hook",
                    body: &b,
                    alerts: &[],
                    deadline_ms: 1_000_000,
                },
                100,
            )
            .unwrap();
    }
    // Not due yet.
    assert!(store.outbox_claim("a", 99, 1_000, 10).unwrap().is_empty());
    let a = store.outbox_claim("a", 100, 1_000, 2).unwrap();
    assert_eq!(a.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(a[0].claimed_by.as_deref(), Some("a"));
    assert_eq!(a[0].lease_until_ms, Some(1_100));
    // Only the unclaimed row for b.
    let b2 = store.outbox_claim("b", 500, 1_000, 10).unwrap();
    assert_eq!(b2.iter().map(|r| r.id).collect::<Vec<_>>(), vec![3]);
    // a's lease expires (a was killed): b takes its rows.
    let b3 = store.outbox_claim("b", 1_100, 1_000, 10).unwrap();
    assert_eq!(b3.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2]);
    // a comes back late: its attempt is recorded, the row is b's.
    let late = Attempt {
        at_ms: 1_200,
        outcome: AttemptOutcome::Delivered,
        status: Some(200),
        detail: "HTTP 200".into(),
    };
    assert!(!store.outbox_record(1, "a", &late).unwrap());
    assert!(store.outbox_record(1, "b", &late).unwrap());
    let row = store.outbox_get(1).unwrap().unwrap();
    assert_eq!(row.state, NotificationState::Delivered);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.delivered_ms, Some(1_200));
    assert_eq!(row.claimed_by, None);
    assert_eq!(store.outbox_attempts(1).unwrap().len(), 2);
}

#[test]
fn attempts_schedule_retries_dead_letter_and_show_in_health_and_timelines() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let seq = alert_row(&store);
    assert_eq!(alert_id(seq), "ALR-1");
    let b = body("k");
    let id = store
        .outbox_enqueue(
            &NewNotification {
                channel: "hook",
                body: &b,
                alerts: &[seq],
                deadline_ms: 1_000_000,
            },
            100,
        )
        .unwrap();
    store
        .outbox_enqueue(
            &NewNotification {
                channel: "file",
                body: &b,
                alerts: &[seq],
                deadline_ms: 1_000_000,
            },
            150,
        )
        .unwrap();
    store.outbox_claim("w", 200, 1_000, 10).unwrap();
    let retry = Attempt {
        at_ms: 200,
        outcome: AttemptOutcome::Retry {
            next_attempt_ms: 5_000,
        },
        status: Some(503),
        detail: "x".repeat(2_000),
    };
    assert!(store.outbox_record(id, "w", &retry).unwrap());
    let row = store.outbox_get(id).unwrap().unwrap();
    assert_eq!((row.attempts, row.next_attempt_ms), (1, 5_000));
    assert_eq!(row.state, NotificationState::Pending);
    assert_eq!(
        row.last_error.as_deref().map(|e| e.chars().count()),
        Some(MAX_DETAIL + 1)
    );
    // Released but not due until 5 s (the file row's lease expired: claimable again).
    let ids = |rows: Vec<NotificationRow>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.outbox_claim("w", 4_999, 1_000, 10).unwrap()),
        vec![2]
    );
    assert_eq!(
        ids(store.outbox_claim("w", 5_000, 1_000, 10).unwrap()),
        vec![id]
    );
    let dead = Attempt {
        at_ms: 5_000,
        outcome: AttemptOutcome::Dead,
        status: Some(400),
        detail: "HTTP 400: bad".into(),
    };
    assert!(store.outbox_record(id, "w", &dead).unwrap());
    let health = store.outbox_health().unwrap();
    assert_eq!(health.len(), 2);
    let file = &health[0];
    assert_eq!(
        (file.channel.as_str(), file.pending, file.dead),
        ("file", 1, 0)
    );
    assert_eq!(file.oldest_pending_age_ms(1_150), Some(1_000));
    let hook = &health[1];
    assert_eq!(
        (hook.channel.as_str(), hook.pending, hook.dead),
        ("hook", 0, 1)
    );
    assert_eq!(hook.oldest_pending_ms, None);
    let timeline = store.outbox_attempts_for_alert(seq).unwrap();
    assert_eq!(
        timeline
            .iter()
            .map(|a| (a.channel.as_str(), a.outcome.as_str(), a.status))
            .collect::<Vec<_>>(),
        vec![("hook", "retry", Some(503)), ("hook", "failed", Some(400))]
    );
    assert!(store.outbox_attempts_for_alert(seq + 1).unwrap().is_empty());
}
