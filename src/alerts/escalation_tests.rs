//! Escalation rounds with a ManualClock over a real store.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::alerts::lifecycle::{MonitorPolicy, acknowledge, evaluate};
use crate::alerts::{Level, Observation};
use crate::clock::ManualClock;
use crate::store::{IncidentRow, NotificationRow};

const T0: Millis = 1_790_000_000_000;
const MIN: Duration = Duration::from_secs(60);

fn plan(extra: &str) -> EscalationPlan {
    let toml = format!(
        "[[contacts]]\nname = \"Alice\"\nrole = \"security lead\"\nemail = \"alice@example.org\"\n\
         channels = [\"log\"]\n\
         [[contacts]]\nname = \"Bob\"\nrole = \"DevOps engineer\"\nemail = \"bob@example.org\"\n\
         channels = [\"log\"]\n{extra}"
    );
    let env = BTreeMap::from([(
        "SECOPS_STATE_DIR".to_string(),
        "/tmp/secops-test-state".to_string(),
    )]);
    EscalationPlan::from_config(&crate::config::Config::from_toml_str(&toml, &env).unwrap())
}

struct Env {
    _tmp: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    Env {
        store: Store::open(tmp.path()).unwrap(),
        _tmp: tmp,
        clock: ManualClock::at(T0),
    }
}

/// One alert of `level` firing at the clock's now; its seq.
fn fire(e: &Env, level: Level) -> i64 {
    let mut p = MonitorPolicy::new("web").route(level, &["log"]);
    p.group_wait = Duration::ZERO;
    let o = Observation {
        code: "endpoint_down".into(),
        subject: BTreeMap::from([("url".to_string(), "https://a.example".to_string())]),
        level: Some(level),
        title: "a.example is down".into(),
        summary: "no answer".into(),
        value: None,
    };
    evaluate(&e.store, &e.clock, &p, &[o]).unwrap();
    e.store.alerts_open().unwrap()[0].seq
}

fn escalations(store: &Store) -> Vec<NotificationRow> {
    store
        .outbox_list(None, 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "escalation")
        .collect()
}

fn at(e: &Env, minutes: u64, p: &EscalationPlan) -> EscalationReport {
    e.clock.set(T0 + (minutes * 60_000) as i64);
    run(&e.store, &e.clock, p).unwrap()
}

#[test]
fn a_critical_alert_climbs_the_matrix_once_per_step() {
    let e = env();
    let p = plan("");
    let seq = fire(&e, Level::Critical);
    assert_eq!(at(&e, 14, &p).alert_steps, 0);
    let r = at(&e, 15, &p);
    assert_eq!((r.alert_steps, r.notifications), (1, 1));
    assert_eq!(at(&e, 20, &p), EscalationReport::default());
    let rows = escalations(&e.store);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.channel.as_str(), row.contact.as_deref()),
        ("log", Some("Alice"))
    );
    let note = row.body.escalation.as_ref().unwrap();
    assert_eq!(
        (
            note.rule.as_str(),
            note.role.as_deref(),
            note.waited.as_str()
        ),
        ("critical-15m", Some("security lead"), "for 15 min")
    );
    assert_eq!(row.body.alerts[0].id, alert_id_of(seq));
    assert_eq!(row.body.dedup_key, row.body.alerts[0].episode);
    // No address or key is stored.
    let stored = serde_json::to_string(&row.body).unwrap();
    assert!(!stored.contains("alice@example.org"), "{stored}");
    assert_eq!(
        crate::notify::escalation_line(&row.body).unwrap(),
        "ESCALATED to security lead (Alice): a.example is down unacknowledged for 15 min \
         (rule critical-15m)"
    );
    // The next step: the DevOps engineer after 1 h (the operations lead has no contact).
    assert_eq!(at(&e, 60, &p).alert_steps, 1);
    assert_eq!(at(&e, 4 * 60, &p).alert_steps, 0);
    let rows = escalations(&e.store);
    assert_eq!(
        rows.iter()
            .map(|r| r.contact.clone().unwrap())
            .collect::<Vec<_>>(),
        ["Alice", "Bob"]
    );
    let detail = e.store.alert_detail(seq).unwrap().unwrap();
    let escalated: Vec<_> = detail
        .events
        .iter()
        .filter(|ev| ev.kind == "escalated")
        .map(|ev| ev.detail.clone().unwrap())
        .collect();
    assert_eq!(escalated.len(), 2);
    assert!(
        escalated[0].contains("critical-15m")
            && escalated[0].contains("security lead (Alice) on log"),
        "{escalated:?}"
    );
    // The timeline links the notifications too.
    assert_eq!(
        detail
            .notifications
            .iter()
            .filter(|n| n.kind == "escalation")
            .count(),
        2
    );
}

fn alert_id_of(seq: i64) -> String {
    crate::alerts::alert_id(seq)
}

#[test]
fn acknowledged_or_resolved_alerts_and_quieter_levels_are_not_escalated() {
    let e = env();
    let p = plan("");
    let seq = fire(&e, Level::Critical);
    e.clock.advance(14 * MIN);
    acknowledge(&e.store, &e.clock, &alert_id_of(seq), "carol", &[]).unwrap();
    for m in [15, 60, 600, 10_000] {
        assert_eq!(at(&e, m, &p), EscalationReport::default(), "{m}");
    }
    // A warning alert does not reach the critical step, but the warning one.
    let e = env();
    fire(&e, Level::Warning);
    assert_eq!(at(&e, 30, &p).alert_steps, 0);
    assert_eq!(at(&e, 61, &p).alert_steps, 1);
    assert_eq!(escalations(&e.store)[0].contact.as_deref(), Some("Bob"));
}

#[test]
fn written_rules_and_skipped_steps() {
    let e = env();
    // Two contacts on one rule: one row each; an emergency alert matches a critical rule.
    let p = plan(
        "[[escalation]]\nname = \"now\"\nlevel = \"critical\"\nafter = \"5m\"\n\
         contacts = [\"Alice\", \"DevOps engineer\"]\n",
    );
    fire(&e, Level::Emergency);
    let r = at(&e, 5, &p);
    assert_eq!((r.alert_steps, r.notifications), (1, 2));
    assert_eq!(at(&e, 500, &p).alert_steps, 0);
    // With no contact for any default role, nothing ticks at all.
    let none = EscalationPlan::default();
    assert!(none.is_idle());
    assert!(!p.is_idle());
}

fn incident(store: &Store, level: u32, status: &str) -> i64 {
    let mut row = IncidentRow {
        key: format!("srcip:192.0.2.{level}"),
        title: "sshd: brute force\u{1b}[31m {{ config }}".into(),
        max_level: level,
        status: status.into(),
        phase: "detection_analysis".into(),
        first_alert_ms: T0,
        last_alert_ms: T0,
        alert_count: 3,
        ..Default::default()
    };
    store.incident_tx(|tx| tx.save(&mut row)).unwrap();
    row.seq
}

#[test]
fn an_overdue_incident_tells_its_contact_once() {
    let e = env();
    let p = plan("");
    let open = incident(&e.store, 15, "open");
    incident(&e.store, 15, "acknowledged");
    // Medium (level 8): its "operations lead" has no contact: nobody, nothing recorded.
    incident(&e.store, 8, "open");
    assert_eq!(at(&e, 15, &p).incident_steps, 0, "not past respond-by yet");
    let r = at(&e, 16, &p);
    assert_eq!((r.incident_steps, r.notifications), (1, 1));
    assert_eq!(at(&e, 30, &p).incident_steps, 0);
    assert_eq!(at(&e, 600, &p).incident_steps, 0);
    let rows = escalations(&e.store);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].contact.as_deref(), Some("Alice"));
    let a = &rows[0].body.alerts[0];
    assert_eq!(a.id, crate::incidents::incident_id(open));
    assert_eq!(a.level, Level::Critical);
    // Untrusted text stays data: control characters gone, braces kept as text.
    assert!(!a.title.contains('\u{1b}'), "{}", a.title);
    assert!(a.title.contains("{ config }"), "{}", a.title);
    assert_eq!(
        rows[0].body.escalation.as_ref().unwrap().rule,
        "incident-sla-critical"
    );
    assert_eq!(
        e.store.incident_escalations(open).unwrap(),
        vec![("sla-critical".to_string(), T0 + 16 * 60_000)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_runs_escalation_and_wakes_the_outbox() {
    use crate::alerts::outbox::{Outbox, OutboxSettings};
    use crate::monitor::engine::Engine;
    use std::sync::Arc;
    let e = env();
    fire(&e, Level::Critical);
    e.clock.set(T0 + 16 * 60_000);
    let clock: Arc<dyn Clock> = Arc::new(e.clock.clone());
    let channels = BTreeMap::from([(
        "log".to_string(),
        Arc::new(crate::notify::LogChannel::new("log")) as Arc<dyn crate::notify::Channel>,
    )]);
    let p = plan("");
    let outbox = Arc::new(
        Outbox::new(
            e.store.clone(),
            channels,
            clock.clone(),
            OutboxSettings::default(),
        )
        .with_contacts(p.contacts.values().map(|c| c.recipient())),
    );
    let engine = Engine::new(e.store.clone(), clock, "r1", vec![], outbox, 30)
        .unwrap()
        .with_escalation(p);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(engine.run(stop.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = escalations(&e.store);
        if rows.len() == 1 && rows[0].state == crate::store::NotificationState::Delivered {
            assert_eq!(rows[0].contact.as_deref(), Some("Alice"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap();
}

#[test]
fn a_silenced_alert_is_not_escalated_until_the_silence_ends() {
    let e = env();
    let p = plan("");
    let seq = fire(&e, Level::Critical);
    let req = crate::alerts::silence::SilenceRequest {
        matchers: vec!["monitor=web".into()],
        alert_id: None,
        comment: Some("planned restart of a.example".into()),
        duration: Some("30m".into()),
        ends_at: None,
        starts_at: None,
    };
    let (sil, _) = crate::alerts::silence::create(&e.store, &e.clock, "alice", &req).unwrap();
    assert_eq!(
        at(&e, 15, &p),
        EscalationReport::default(),
        "muted: nobody told"
    );
    assert_eq!(at(&e, 29, &p), EscalationReport::default());
    assert!(escalations(&e.store).is_empty());
    // The silence is over (ended early by a person): the overdue step goes out once.
    crate::alerts::silence::expire(&e.store, &e.clock, "alice", &sil.sil_id()).unwrap();
    assert_eq!(at(&e, 29, &p).alert_steps, 1);
    assert_eq!(at(&e, 31, &p).alert_steps, 0);
    let rows = escalations(&e.store);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].body.alerts[0].id, alert_id_of(seq));

    // An emergency alert is not muted by a silence that does not name it.
    let e = env();
    let seq = fire(&e, Level::Emergency);
    crate::alerts::silence::create(&e.store, &e.clock, "alice", &req).unwrap();
    assert_eq!(
        at(&e, 15, &p).alert_steps,
        1,
        "a broad silence never hides an emergency"
    );
    assert_eq!(escalations(&e.store)[0].body.alerts[0].id, alert_id_of(seq));
}

#[test]
fn a_maintenance_window_mutes_escalation_too() {
    let e = env();
    // Every day from T0's midnight UTC for 23 h: T0 (2026-09-21 ~14:13 UTC) is inside.
    let p = plan(
        "[[maintenance]]\nname = \"patching\"\nschedule = \"0 0 * * *\"\nduration = \"23h\"\n\
         matchers = [\"monitor=web\"]\n",
    );
    fire(&e, Level::Critical);
    assert_eq!(at(&e, 15, &p), EscalationReport::default());
    assert!(escalations(&e.store).is_empty());
}
