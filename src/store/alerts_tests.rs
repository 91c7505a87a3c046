//! Tests of the alert and outbox-insert SQL, and the outbox view the lifecycle's tests read.

use super::*;
use crate::alerts::{NotificationKind, episode_key};

/// A notification row as tests see it.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    pub dedup_key: String,
    pub body: NotificationBody,
    pub next_attempt_ms: Millis,
    pub deadline_ms: Millis,
    pub alerts: Vec<i64>,
    pub contact: Option<String>,
}

impl Store {
    /// Every notification row, oldest first (for the lifecycle's tests).
    pub(crate) fn outbox_rows(&self) -> Vec<OutboxRow> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, channel, kind, dedup_key, body, next_attempt_ms, deadline_ms, contact
                 FROM notifications ORDER BY id",
            )
            .unwrap();
        let mut rows: Vec<OutboxRow> = stmt
            .query_map([], |r| {
                let body: String = r.get(4)?;
                Ok(OutboxRow {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    kind: r.get(2)?,
                    dedup_key: r.get(3)?,
                    body: serde_json::from_str(&body).unwrap(),
                    next_attempt_ms: r.get(5)?,
                    deadline_ms: r.get(6)?,
                    alerts: Vec::new(),
                    contact: r.get(7)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for row in &mut rows {
            let mut s = conn
                .prepare(
                    "SELECT alert FROM notification_alerts WHERE notification = ?1 ORDER BY alert",
                )
                .unwrap();
            row.alerts = s
                .query_map([row.id], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        }
        rows
    }

    /// Pretend the sender claimed a row.
    pub(crate) fn outbox_claim_for_test(&self, id: i64) {
        self.conn()
            .execute(
                "UPDATE notifications SET claimed_by = 'test', lease_until_ms = 0 WHERE id = ?1",
                [id],
            )
            .unwrap();
    }
}

fn row(fp: &str, level: Level, state: AlertState, first_seen_ms: Millis) -> AlertRow {
    AlertRow {
        seq: 0,
        fingerprint: fp.into(),
        episode: episode_key(fp, first_seen_ms),
        monitor: "web".into(),
        code: "endpoint_down".into(),
        subject: BTreeMap::from([("url".into(), fp.into())]),
        labels: BTreeMap::from([("url".into(), fp.into()), ("env".into(), "prod".into())]),
        level,
        state,
        title: format!("{fp} down"),
        summary: "no answer".into(),
        value: Some("timeout".into()),
        first_seen_ms,
        firing_ms: (state != AlertState::Pending).then_some(first_seen_ms + 1),
        last_seen_ms: first_seen_ms + 2,
        resolved_ms: (state == AlertState::Resolved).then_some(first_seen_ms + 3),
        occurrences: 1,
        fail_streak: 1,
        ok_streak: 0,
        last_notified_ms: None,
        acknowledged_ms: None,
        acknowledged_by: None,
        failing_since_ms: Some(first_seen_ms),
    }
}

fn insert(store: &Store, r: &mut AlertRow) {
    store
        .alerts_tx(|tx| {
            tx.insert(r)?;
            tx.event(r.seq, r.first_seen_ms, "pending", None)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[test]
fn rows_round_trip_and_one_fingerprint_has_one_open_alert() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut a = row("a", Level::Critical, AlertState::Firing, 1_000);
    insert(&store, &mut a);
    assert_eq!(a.seq, 1);
    assert_eq!(store.alert_get(1).unwrap().unwrap(), a);
    let open = store
        .alerts_tx(|tx| tx.open_by_fingerprint("a"))
        .unwrap()
        .unwrap();
    assert_eq!(open, a);
    // A second open alert of the same fingerprint is refused by the schema.
    let mut dup = row("a", Level::Warning, AlertState::Pending, 2_000);
    let err = store.alerts_tx(|tx| tx.insert(&mut dup)).unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    // Updates write back the mutable columns.
    a.level = Level::Emergency;
    a.state = AlertState::Resolved;
    a.resolved_ms = Some(5_000);
    a.ok_streak = 2;
    store.alerts_tx(|tx| tx.update(&a)).unwrap();
    assert_eq!(store.alert_get(1).unwrap().unwrap(), a);
    assert!(
        store
            .alerts_tx(|tx| tx.open_by_fingerprint("a"))
            .unwrap()
            .is_none()
    );
    let snap = a.snapshot();
    assert_eq!(snap.id, "ALR-1");
    assert_eq!(snap.started_at, crate::clock::rfc3339(1_001));
    assert_eq!(snap.resolved_at, Some(crate::clock::rfc3339(5_000)));
}

#[test]
fn open_alerts_list_firing_then_loudest_then_oldest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    for (fp, level, state, t) in [
        ("p-crit", Level::Critical, AlertState::Pending, 100),
        ("f-warn-old", Level::Warning, AlertState::Firing, 200),
        ("f-crit-new", Level::Critical, AlertState::Firing, 400),
        ("f-crit-old", Level::Critical, AlertState::Firing, 300),
        ("f-emerg", Level::Emergency, AlertState::Firing, 500),
        ("r-old", Level::Critical, AlertState::Resolved, 10),
        ("r-new", Level::Info, AlertState::Resolved, 600),
    ] {
        insert(&store, &mut row(fp, level, state, t));
    }
    let open: Vec<String> = store
        .alerts_open()
        .unwrap()
        .into_iter()
        .map(|r| r.fingerprint)
        .collect();
    assert_eq!(
        open,
        [
            "f-emerg",
            "f-crit-old",
            "f-crit-new",
            "f-warn-old",
            "p-crit"
        ]
    );
    let resolved: Vec<String> = store
        .alerts_resolved_since(0, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.fingerprint)
        .collect();
    assert_eq!(resolved, ["r-new", "r-old"]);
    assert_eq!(store.alerts_resolved_since(500, 10).unwrap().len(), 1);
    assert_eq!(store.alerts_resolved_since(0, 1).unwrap().len(), 1);
}

#[test]
fn detail_acknowledge_note_and_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut a = row("a", Level::Critical, AlertState::Firing, 1_000);
    insert(&store, &mut a);
    let body = NotificationBody {
        kind: NotificationKind::Firing,
        group_key: "web".into(),
        group_labels: BTreeMap::new(),
        escalation: None,
        dedup_key: a.episode.clone(),
        alerts: vec![a.snapshot()],
        digest: vec![],
    };
    let id = store
        .alerts_tx(|tx| {
            tx.enqueue_to(
                &Target::channel("hook"),
                &body,
                &[a.seq],
                1_500,
                1_500,
                9_000,
            )
        })
        .unwrap();
    assert!(matches!(
        store.alert_acknowledge(a.seq, "alice", 2_000, &Default::default()).unwrap(),
        AlertChange::Done(r) if r.acknowledged_by.as_deref() == Some("alice")
    ));
    assert_eq!(
        store
            .alert_acknowledge(a.seq, "bob", 2_500, &Default::default())
            .unwrap(),
        AlertChange::AlreadyAcknowledged {
            by: "alice".into(),
            at_ms: 2_000
        }
    );
    assert_eq!(
        store
            .alert_acknowledge(99, "bob", 2_500, &Default::default())
            .unwrap(),
        AlertChange::NotFound
    );
    store.alert_note(a.seq, "bob", "looking", 3_000).unwrap();
    let d = store.alert_detail(a.seq).unwrap().unwrap();
    assert_eq!(d.alert.acknowledged_ms, Some(2_000));
    let ev: Vec<_> = d
        .events
        .iter()
        .map(|e| (e.kind.as_str(), e.actor.as_deref(), e.at_ms))
        .collect();
    assert_eq!(
        ev,
        [
            ("pending", None, 1_000),
            ("acknowledged", Some("alice"), 2_000),
            ("note", Some("bob"), 3_000)
        ]
    );
    assert_eq!(d.notifications.len(), 1);
    let n = &d.notifications[0];
    assert_eq!(
        (n.id, n.channel.as_str(), n.kind.as_str(), n.state.as_str()),
        (id, "hook", "firing", "pending")
    );
    assert_eq!((n.created_ms, n.next_attempt_ms), (1_500, 1_500));
    // Resolved alerts can't be acknowledged; old resolved ones are pruned with their
    // timeline; open ones never are.
    let mut r = row("b", Level::Warning, AlertState::Resolved, 100);
    insert(&store, &mut r);
    assert_eq!(
        store
            .alert_acknowledge(r.seq, "bob", 2_500, &Default::default())
            .unwrap(),
        AlertChange::Resolved
    );
    assert_eq!(store.alerts_prune_resolved(104).unwrap(), 1);
    assert!(store.alert_get(r.seq).unwrap().is_none());
    assert!(store.alert_detail(r.seq).unwrap().is_none());
    assert_eq!(store.alerts_prune_resolved(i64::MAX).unwrap(), 0);
    assert!(store.alert_get(a.seq).unwrap().is_some());
}

#[test]
fn an_error_inside_the_transaction_rolls_everything_back() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let res: Result<(), StoreError> = store.alerts_tx(|tx| {
        let mut a = row("a", Level::Critical, AlertState::Firing, 1_000);
        tx.insert(&mut a)?;
        tx.event(a.seq, 1_000, "firing", None)?;
        Err(StoreError::Query(rusqlite::Error::InvalidQuery))
    });
    assert!(res.is_err());
    assert!(store.alert_get(1).unwrap().is_none());
    assert!(store.alerts_open().unwrap().is_empty());
}
