//! Rate limits and digests in the sender (alerts/outbox_rate.rs) with a ManualClock over a
//! real store and a recording channel.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use super::super::{Outbox, OutboxSettings};
use crate::alerts::rate_limit::RateLimit;
use crate::alerts::{AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind};
use crate::clock::{Clock, ManualClock};
use crate::notify::{Channel, Delivery};
use crate::store::{NewNotification, NotificationState, Store};

const T0: i64 = 1_800_000_000_000;

/// Takes every kind, records what it was sent, answers from a script (else delivered).
struct Recorder {
    name: &'static str,
    kind: &'static str,
    got: Mutex<Vec<NotificationBody>>,
    answers: Mutex<VecDeque<Delivery>>,
}

impl Recorder {
    fn new(name: &'static str, kind: &'static str) -> Arc<Recorder> {
        Arc::new(Recorder {
            name,
            kind,
            got: Mutex::new(Vec::new()),
            answers: Mutex::new(VecDeque::new()),
        })
    }

    fn got(&self) -> Vec<NotificationBody> {
        self.got.lock().unwrap().clone()
    }
}

impl Channel for Recorder {
    fn name(&self) -> &str {
        self.name
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn wants(&self, _kind: NotificationKind) -> bool {
        true
    }
    fn send<'a>(&'a self, body: &'a NotificationBody) -> BoxFuture<'a, Delivery> {
        self.got.lock().unwrap().push(body.clone());
        let answer = self.answers.lock().unwrap().pop_front();
        Box::pin(async move {
            answer.unwrap_or(Delivery::Delivered {
                status: Some(200),
                answer: "ok".into(),
            })
        })
    }
}

fn snapshot(i: usize) -> AlertSnapshot {
    AlertSnapshot {
        id: format!("ALR-{i}"),
        fingerprint: format!("{i:016x}"),
        episode: format!("{i:016x}-1"),
        monitor: "web".into(),
        code: "endpoint_down".into(),
        level: Level::Critical,
        state: AlertState::Firing,
        title: format!("https://site{i}.example is down"),
        summary: "connection refused".into(),
        labels: BTreeMap::new(),
        value: None,
        started_at: "2027-01-15T08:00:00Z".into(),
        resolved_at: None,
        runbook: None,
    }
}

fn body(kind: NotificationKind, i: usize) -> NotificationBody {
    NotificationBody {
        escalation: None,
        kind,
        group_key: "web".into(),
        group_labels: BTreeMap::new(),
        dedup_key: format!("{i:016x}-1"),
        alerts: vec![snapshot(i)],
        digest: vec![],
    }
}

struct Rig {
    _tmp: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
    outbox: Outbox,
}

fn rig(channel: Arc<Recorder>, limit: &str) -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let clock = ManualClock::at(T0);
    let name = channel.name.to_string();
    let channels: BTreeMap<String, Arc<dyn Channel>> =
        BTreeMap::from([(name.clone(), channel as Arc<dyn Channel>)]);
    let outbox = Outbox::new(
        store.clone(),
        channels,
        Arc::new(clock.clone()) as Arc<dyn Clock>,
        OutboxSettings {
            worker: "w".into(),
            ..Default::default()
        },
    )
    .with_rate_limits(&BTreeMap::from([(name, RateLimit::parse(limit).unwrap())]));
    Rig {
        _tmp: tmp,
        store,
        clock,
        outbox,
    }
}

impl Rig {
    fn enqueue(&self, channel: &str, b: &NotificationBody) -> i64 {
        self.store
            .outbox_enqueue(
                &NewNotification {
                    channel,
                    body: b,
                    alerts: &[],
                    deadline_ms: T0 + 24 * 3_600_000,
                },
                self.clock.now_ms(),
            )
            .unwrap()
    }
}

fn ids(b: &NotificationBody) -> Vec<String> {
    b.alerts.iter().map(|a| a.id.clone()).collect()
}

#[tokio::test]
async fn a_burst_to_slack_is_one_message_then_one_digest_of_the_rest() {
    let chat = Recorder::new("chat", "slack");
    let r = rig(chat.clone(), "1/s");
    assert_eq!(r.outbox.rate_limit("chat").to_string(), "1/s");
    let metrics = Arc::new(crate::metrics::Metrics::new());
    r.outbox.set_metrics(metrics.clone());
    let rows: Vec<i64> = (1..=10)
        .map(|i| r.enqueue("chat", &body(NotificationKind::Firing, i)))
        .collect();
    let first = r.outbox.deliver_due().await.unwrap();
    let scraped = metrics.encode();
    assert!(
        scraped.contains(r#"secops_mcp_notifications_digested_total{channel="chat"} 9"#),
        "{scraped}"
    );
    assert_eq!((first.claimed, first.delivered, first.digested), (10, 1, 9));
    assert_eq!(chat.got().len(), 1);
    assert_eq!(ids(&chat.got()[0]), ["ALR-1"]);
    // The nine held back are digested, all pointing at one pending digest.
    let digest = r.store.outbox_digest_of(rows[1]).unwrap().unwrap();
    for id in &rows[1..] {
        let row = r.store.outbox_get(*id).unwrap().unwrap();
        assert_eq!(row.state, NotificationState::Digested, "{id}");
        assert_eq!(r.store.outbox_digest_of(*id).unwrap(), Some(digest));
    }
    assert_eq!(r.store.outbox_digest_of(rows[0]).unwrap(), None);
    let d = r.store.outbox_get(digest).unwrap().unwrap();
    assert_eq!(
        (d.kind.as_str(), d.state),
        ("digest", NotificationState::Pending)
    );
    assert_eq!(d.next_attempt_ms, T0 + 1_000);
    assert_eq!(r.store.outbox_digested(digest).unwrap().len(), 9);

    // Not before the limit allows.
    r.clock.advance(Duration::from_millis(999));
    assert_eq!(r.outbox.deliver_due().await.unwrap().claimed, 0);
    assert_eq!(chat.got().len(), 1);
    r.clock.advance(Duration::from_millis(1));
    let second = r.outbox.deliver_due().await.unwrap();
    assert_eq!((second.claimed, second.delivered), (1, 1));
    let got = chat.got();
    assert_eq!(got.len(), 2);
    let sent = &got[1];
    assert_eq!(sent.kind, NotificationKind::Digest);
    assert_eq!(sent.digest.len(), 9);
    assert_eq!(
        sent.digest
            .iter()
            .map(|e| e.notification)
            .collect::<Vec<_>>(),
        rows[1..].to_vec()
    );
    assert!(
        sent.digest
            .iter()
            .all(|e| e.kind == NotificationKind::Firing)
    );
    // None lost: every alert reached the receiver exactly once.
    let mut all: Vec<String> = got.iter().flat_map(ids).collect();
    all.sort();
    let mut want: Vec<String> = (1..=10).map(|i| format!("ALR-{i}")).collect();
    want.sort();
    assert_eq!(all, want);
    let d = r.store.outbox_get(digest).unwrap().unwrap();
    assert_eq!(d.state, NotificationState::Delivered);
    let h = r.outbox.health().await.unwrap();
    assert_eq!(
        (h[0].delivered, h[0].digested, h[0].pending),
        (2, 9, 0),
        "{h:?}"
    );
    // Quiet afterwards.
    r.clock.advance(Duration::from_secs(5));
    assert_eq!(r.outbox.deliver_due().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn rows_held_while_a_digest_waits_join_it() {
    let chat = Recorder::new("chat", "slack");
    let r = rig(chat.clone(), "1/s");
    for i in 1..=3 {
        r.enqueue("chat", &body(NotificationKind::Firing, i));
    }
    r.outbox.deliver_due().await.unwrap();
    r.clock.advance(Duration::from_millis(400));
    r.enqueue("chat", &body(NotificationKind::Resolved, 1));
    let mid = r.outbox.deliver_due().await.unwrap();
    assert_eq!((mid.delivered, mid.digested), (0, 1));
    r.clock.advance(Duration::from_millis(600));
    r.outbox.deliver_due().await.unwrap();
    let got = chat.got();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1].digest.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [
            NotificationKind::Firing,
            NotificationKind::Firing,
            NotificationKind::Resolved
        ]
    );
    assert_eq!(ids(&got[1]), ["ALR-2", "ALR-3", "ALR-1"]);
}

#[tokio::test]
async fn sms_sends_ten_an_hour_then_one_digest_every_six_minutes() {
    let sms = Recorder::new("pager-sms", "sms");
    let r = rig(sms.clone(), "10/h");
    for i in 1..=15 {
        r.enqueue("pager-sms", &body(NotificationKind::Firing, i));
    }
    let first = r.outbox.deliver_due().await.unwrap();
    assert_eq!((first.delivered, first.digested), (10, 5));
    r.clock.advance(Duration::from_secs(359));
    assert_eq!(r.outbox.deliver_due().await.unwrap().claimed, 0);
    r.clock.advance(Duration::from_secs(1));
    assert_eq!(r.outbox.deliver_due().await.unwrap().delivered, 1);
    let got = sms.got();
    assert_eq!(got.len(), 11);
    assert_eq!(
        ids(&got[10]),
        ["ALR-11", "ALR-12", "ALR-13", "ALR-14", "ALR-15"]
    );
    // The next send is 6 minutes after that one: two more rows wait in a new digest.
    r.clock.advance(Duration::from_secs(60));
    r.enqueue("pager-sms", &body(NotificationKind::Firing, 16));
    r.enqueue("pager-sms", &body(NotificationKind::Resolved, 3));
    let held = r.outbox.deliver_due().await.unwrap();
    assert_eq!((held.delivered, held.digested), (0, 2));
    r.clock.advance(Duration::from_secs(299));
    r.outbox.deliver_due().await.unwrap();
    assert_eq!(sms.got().len(), 11);
    r.clock.advance(Duration::from_secs(1));
    r.outbox.deliver_due().await.unwrap();
    let got = sms.got();
    assert_eq!(got.len(), 12);
    assert_eq!(got[11].digest.len(), 2);
    assert_eq!(ids(&got[11]), ["ALR-16", "ALR-3"]);
}

#[tokio::test]
async fn acknowledged_and_test_rows_are_never_limited_or_digested() {
    let chat = Recorder::new("chat", "slack");
    let r = rig(chat.clone(), "1/s");
    let fire = r.enqueue("chat", &body(NotificationKind::Firing, 1));
    let acks: Vec<i64> = (1..=3)
        .map(|i| r.enqueue("chat", &body(NotificationKind::Acknowledged, i)))
        .collect();
    let test = r.enqueue("chat", &body(NotificationKind::Test, 9));
    let held = r.enqueue("chat", &body(NotificationKind::Firing, 2));
    let round = r.outbox.deliver_due().await.unwrap();
    assert_eq!((round.delivered, round.digested), (5, 1));
    for id in acks.iter().chain([&fire, &test]) {
        let row = r.store.outbox_get(*id).unwrap().unwrap();
        assert_eq!(row.state, NotificationState::Delivered, "{id}");
        assert_eq!(r.store.outbox_digest_of(*id).unwrap(), None);
    }
    assert_eq!(
        r.store.outbox_get(held).unwrap().unwrap().state,
        NotificationState::Digested
    );
    // Even while the limit has nothing left, an acknowledgement goes out at once.
    let late = r.enqueue("chat", &body(NotificationKind::Acknowledged, 2));
    r.outbox.deliver_due().await.unwrap();
    assert_eq!(
        r.store.outbox_get(late).unwrap().unwrap().state,
        NotificationState::Delivered
    );
}

#[tokio::test]
async fn a_failing_digest_retries_like_any_row_and_its_rows_stay_digested() {
    let chat = Recorder::new("chat", "slack");
    let r = rig(chat.clone(), "1/s");
    for i in 1..=3 {
        r.enqueue("chat", &body(NotificationKind::Firing, i));
    }
    r.outbox.deliver_due().await.unwrap();
    chat.answers.lock().unwrap().push_back(Delivery::Retry {
        status: Some(503),
        reason: "HTTP 503: busy".into(),
        after: None,
    });
    r.clock.advance(Duration::from_secs(1));
    let round = r.outbox.deliver_due().await.unwrap();
    assert_eq!(round.retried, 1);
    let digest = r.store.outbox_digest_of(2).unwrap().unwrap();
    let d = r.store.outbox_get(digest).unwrap().unwrap();
    assert_eq!((d.state, d.attempts), (NotificationState::Pending, 1));
    // A row held now does not join a digest already tried: it waits in a new one.
    r.enqueue("chat", &body(NotificationKind::Firing, 4));
    r.outbox.deliver_due().await.unwrap();
    let newer = r.store.outbox_digest_of(5).unwrap().unwrap();
    assert_ne!(newer, digest);
    // The retry comes (backoff), is delivered, and carries the same two rows.
    r.clock.advance(Duration::from_secs(10));
    r.outbox.deliver_due().await.unwrap();
    r.clock.advance(Duration::from_secs(10));
    r.outbox.deliver_due().await.unwrap();
    let d = r.store.outbox_get(digest).unwrap().unwrap();
    assert_eq!(d.state, NotificationState::Delivered);
    let carried = r.store.outbox_digested(digest).unwrap();
    assert_eq!(carried.iter().map(|c| c.id).collect::<Vec<_>>(), [2, 3]);
    assert!(
        carried
            .iter()
            .all(|c| c.state == NotificationState::Digested)
    );
    let attempts = r.store.outbox_attempts(digest).unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| a.outcome.as_str())
            .collect::<Vec<_>>(),
        ["retry", "delivered"]
    );
    assert_eq!(
        r.store.outbox_get(newer).unwrap().unwrap().state,
        NotificationState::Delivered
    );
    // Every alert reached the receiver; ALR-2 and ALR-3 twice (the retried digest).
    let got: Vec<String> = chat.got().iter().flat_map(ids).collect();
    for i in 1..=4 {
        assert!(got.contains(&format!("ALR-{i}")), "{got:?}");
    }
}

#[tokio::test]
async fn an_unlimited_channel_sends_every_row_as_itself() {
    let hook = Recorder::new("hook", "webhook");
    let r = rig(hook.clone(), "none");
    for i in 1..=10 {
        r.enqueue("hook", &body(NotificationKind::Firing, i));
    }
    let round = r.outbox.deliver_due().await.unwrap();
    assert_eq!((round.delivered, round.digested), (10, 0));
    assert!(
        hook.got()
            .iter()
            .all(|b| b.kind == NotificationKind::Firing)
    );
}
