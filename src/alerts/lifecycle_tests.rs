//! Tests of the alert lifecycle, driven by a ManualClock over a real store.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::store::alerts::tests::OutboxRow;

const T0: Millis = 1_790_000_000_000;
const MIN: Duration = Duration::from_secs(60);

struct Env {
    _tmp: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    Env {
        _tmp: tmp,
        store,
        clock: ManualClock::at(T0),
    }
}

fn policy(name: &str) -> MonitorPolicy {
    let mut p = MonitorPolicy::new(name)
        .route(Level::Warning, &["log"])
        .route(Level::Critical, &["log", "hook"]);
    p.group_wait = Duration::ZERO;
    p
}

fn obs(subject: &str, level: Option<Level>) -> Observation {
    Observation {
        code: "endpoint_down".into(),
        subject: BTreeMap::from([("url".to_string(), subject.to_string())]),
        level,
        title: format!("{subject} is down"),
        summary: format!("{subject} did not answer"),
        value: None,
    }
}

fn down(s: &str) -> Observation {
    obs(s, Some(Level::Critical))
}

fn up(s: &str) -> Observation {
    obs(s, None)
}

fn kinds(rows: &[OutboxRow]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| (r.kind.clone(), r.channel.clone()))
        .collect()
}

fn pair(kind: &str, channel: &str) -> (String, String) {
    (kind.to_string(), channel.to_string())
}

fn events(store: &Store, seq: i64) -> Vec<String> {
    store
        .alert_detail(seq)
        .unwrap()
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[test]
fn a_flapping_subject_fires_once_and_resolves_once() {
    let e = env();
    let mut p = policy("web");
    p.failure_threshold = 3;
    p.success_threshold = 2;
    p.routes = BTreeMap::from([(Level::Critical, vec!["hook".to_string()])]);
    let run = |o: Observation| {
        e.clock.advance(MIN);
        evaluate(&e.store, &e.clock, &p, &[o]).unwrap()
    };
    // Flaps that never reach three failures in a row stay pending and notify nobody.
    run(down("a"));
    run(down("a"));
    run(up("a"));
    run(down("a"));
    run(down("a"));
    assert!(e.store.outbox_rows().is_empty());
    let fired = run(down("a"));
    assert_eq!(fired.fired.len(), 1);
    // One good answer is not enough to resolve at success_threshold 2.
    run(up("a"));
    run(down("a"));
    run(up("a"));
    let resolved = run(up("a"));
    assert_eq!(resolved.resolved, fired.fired);
    // Then it stays quiet.
    run(up("a"));
    let rows = e.store.outbox_rows();
    assert_eq!(
        kinds(&rows),
        vec![pair("firing", "hook"), pair("resolved", "hook")]
    );
    // Both carry the same episode dedup key; the resolved body says resolved.
    assert_eq!(rows[0].dedup_key, rows[1].dedup_key);
    assert_eq!(rows[1].body.alerts[0].state, AlertState::Resolved);
    assert!(rows[1].body.alerts[0].resolved_at.is_some());
    let seq = fired.fired[0];
    let row = e.store.alert_get(seq).unwrap().unwrap();
    assert_eq!(row.state, AlertState::Resolved);
    assert_eq!(row.occurrences, 6);
    assert_eq!(events(&e.store, seq), ["pending", "firing", "resolved"]);
    // A later failure opens a new episode (new alert, new dedup key).
    let again = run(down("a"));
    assert_eq!(again.opened.len(), 1);
    assert_ne!(again.opened[0], seq);
}

#[test]
fn for_duration_holds_an_alert_pending_until_it_has_elapsed() {
    let e = env();
    let mut p = policy("host");
    p.for_duration = 10 * MIN;
    let first = evaluate(&e.store, &e.clock, &p, &[down("cpu")]).unwrap();
    let seq = first.opened[0];
    for _ in 0..9 {
        e.clock.advance(MIN);
        let r = evaluate(&e.store, &e.clock, &p, &[down("cpu")]).unwrap();
        assert!(r.fired.is_empty());
    }
    assert_eq!(
        e.store.alert_get(seq).unwrap().unwrap().state,
        AlertState::Pending
    );
    assert!(e.store.outbox_rows().is_empty());
    e.clock.advance(MIN);
    let r = evaluate(&e.store, &e.clock, &p, &[down("cpu")]).unwrap();
    assert_eq!(r.fired, vec![seq]);
    let row = e.store.alert_get(seq).unwrap().unwrap();
    assert_eq!(row.firing_ms, Some(T0 + 10 * 60_000));
    assert_eq!(
        kinds(&e.store.outbox_rows()),
        vec![pair("firing", "log"), pair("firing", "hook")]
    );
}

#[test]
fn for_duration_restarts_when_the_condition_stops_holding() {
    let e = env();
    let mut p = policy("host");
    p.for_duration = 10 * MIN;
    p.success_threshold = 3;
    evaluate(&e.store, &e.clock, &p, &[down("cpu")]).unwrap();
    e.clock.advance(6 * MIN);
    evaluate(&e.store, &e.clock, &p, &[up("cpu")]).unwrap();
    e.clock.advance(MIN);
    evaluate(&e.store, &e.clock, &p, &[down("cpu")]).unwrap();
    // 11 minutes after the first failure, but only 4 since the condition came back.
    e.clock.advance(4 * MIN);
    let r = evaluate(&e.store, &e.clock, &p, &[down("cpu")]).unwrap();
    assert!(r.fired.is_empty());
    e.clock.advance(6 * MIN);
    let r = evaluate(&e.store, &e.clock, &p, &[down("cpu")]).unwrap();
    assert_eq!(r.fired.len(), 1);
}

#[test]
fn a_pending_alert_that_recovers_resolves_silently() {
    let e = env();
    let mut p = policy("web");
    p.failure_threshold = 3;
    let r = evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    let seq = r.opened[0];
    e.clock.advance(MIN);
    let r = evaluate(&e.store, &e.clock, &p, &[up("a")]).unwrap();
    assert_eq!(r.dropped, vec![seq]);
    assert!(r.resolved.is_empty() && r.notifications.is_empty());
    assert!(e.store.outbox_rows().is_empty());
    let row = e.store.alert_get(seq).unwrap().unwrap();
    assert_eq!(row.state, AlertState::Resolved);
    assert_eq!(row.resolved_ms, Some(T0 + 60_000));
    assert_eq!(events(&e.store, seq), ["pending", "dropped"]);
}

#[test]
fn subjects_a_run_does_not_mention_stay_as_they_are() {
    let e = env();
    let p = policy("web");
    let r = evaluate(&e.store, &e.clock, &p, &[down("a"), down("b")]).unwrap();
    assert_eq!(r.fired.len(), 2);
    e.clock.advance(MIN);
    let r = evaluate(&e.store, &e.clock, &p, &[up("a")]).unwrap();
    assert_eq!(r.resolved.len(), 1);
    let open = e.store.alerts_open().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].subject["url"], "b");
    assert_eq!(open[0].state, AlertState::Firing);
    // An empty run changes nothing either.
    let r = evaluate(&e.store, &e.clock, &p, &[]).unwrap();
    assert_eq!(r, Evaluation::default());
}

#[test]
fn a_firing_alert_repeats_every_interval_until_acknowledged() {
    let e = env();
    let mut p = policy("web");
    p.routes = BTreeMap::from([(Level::Critical, vec!["hook".to_string()])]);
    let r = evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    let seq = r.fired[0];
    e.clock.advance(Duration::from_secs(4 * 3600 - 1));
    let r = evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    assert!(r.repeated.is_empty());
    // Due even when the run does not mention the subject.
    e.clock.advance(Duration::from_secs(1));
    let r = evaluate(&e.store, &e.clock, &p, &[]).unwrap();
    assert_eq!(r.repeated, vec![seq]);
    let rows = e.store.outbox_rows();
    assert_eq!(
        kinds(&rows),
        vec![pair("firing", "hook"), pair("repeat", "hook")]
    );
    assert_eq!(rows[1].dedup_key, rows[0].dedup_key);
    // Not again right away.
    let r = evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    assert!(r.repeated.is_empty());
    let row = acknowledge(&e.store, &e.clock, "ALR-1", "alice", &[]).unwrap();
    assert_eq!(row.acknowledged_by.as_deref(), Some("alice"));
    e.clock.advance(Duration::from_secs(9 * 3600));
    let r = evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    assert!(r.repeated.is_empty());
    assert_eq!(e.store.outbox_rows().len(), 2);
    assert_eq!(
        events(&e.store, seq),
        ["pending", "firing", "repeat", "acknowledged"]
    );
    // Resolving an acknowledged alert still tells the receiver.
    let r = evaluate(&e.store, &e.clock, &p, &[up("a")]).unwrap();
    assert_eq!(r.resolved, vec![seq]);
    assert_eq!(e.store.outbox_rows()[2].kind, "resolved");
}

#[test]
fn group_wait_gathers_alerts_that_fire_together_into_one_notification() {
    let e = env();
    let mut p = policy("web");
    p.group_wait = Duration::from_secs(30);
    p.routes = BTreeMap::from([(Level::Critical, vec!["hook".to_string()])]);
    evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    e.clock.advance(Duration::from_secs(10));
    evaluate(&e.store, &e.clock, &p, &[down("b")]).unwrap();
    let rows = e.store.outbox_rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let g = &rows[0];
    assert_eq!(g.next_attempt_ms, T0 + 30_000);
    assert_eq!(g.deadline_ms, T0 + 30_000 + 24 * 3600 * 1000);
    assert_eq!(g.alerts, vec![1, 2]);
    assert_eq!(g.body.alerts.len(), 2);
    assert_eq!(g.body.group_key, "web");
    assert_eq!(g.body.group_labels["monitor"], "web");
    assert_eq!(g.dedup_key, format!("group-{}", g.body.alerts[0].episode));
    assert_eq!(g.body.dedup_key, g.dedup_key);
    // Past the window: a new group.
    e.clock.advance(Duration::from_secs(21));
    evaluate(&e.store, &e.clock, &p, &[down("c")]).unwrap();
    let rows = e.store.outbox_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].alerts, vec![3]);
    assert_eq!(rows[1].dedup_key, rows[1].body.alerts[0].episode);
    // An alert that resolves while its firing row is still gathering: the resolved row
    // is not due before the firing one.
    e.clock.advance(Duration::from_secs(5));
    evaluate(&e.store, &e.clock, &p, &[up("c")]).unwrap();
    let rows = e.store.outbox_rows();
    assert_eq!(rows[2].kind, "resolved");
    assert_eq!(rows[2].next_attempt_ms, rows[1].next_attempt_ms);
    // Another monitor never joins this monitor's group.
    let mut other = p.clone();
    other.name = "api".into();
    evaluate(&e.store, &e.clock, &other, &[down("a")]).unwrap();
    assert_eq!(e.store.outbox_rows().len(), 4);
}

#[test]
fn a_group_row_the_sender_already_claimed_is_not_extended() {
    let e = env();
    let mut p = policy("web");
    p.group_wait = Duration::from_secs(30);
    p.routes = BTreeMap::from([(Level::Critical, vec!["hook".to_string()])]);
    evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    let first = e.store.outbox_rows()[0].id;
    e.store.outbox_claim_for_test(first);
    e.clock.advance(Duration::from_secs(5));
    evaluate(&e.store, &e.clock, &p, &[down("b")]).unwrap();
    let rows = e.store.outbox_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].body.alerts.len(), 1);
    assert_eq!(rows[1].alerts, vec![2]);
}

#[test]
fn a_restarted_evaluator_does_not_reannounce_nor_lose_a_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let mut p = policy("web");
    p.routes = BTreeMap::from([(Level::Critical, vec!["hook".to_string()])]);
    {
        let store = Store::open(tmp.path()).unwrap();
        evaluate(&store, &clock, &p, &[down("a"), down("b")]).unwrap();
        clock.advance(MIN);
        // b resolves just before the "crash": its notification is pending.
        evaluate(&store, &clock, &p, &[down("a"), up("b")]).unwrap();
    }
    let store = Store::open(tmp.path()).unwrap();
    let before = store.outbox_rows();
    assert_eq!(
        kinds(&before),
        vec![
            pair("firing", "hook"),
            pair("firing", "hook"),
            pair("resolved", "hook")
        ]
    );
    clock.advance(MIN);
    let r = evaluate(&store, &clock, &p, &[down("a"), up("b")]).unwrap();
    assert!(r.fired.is_empty() && r.opened.is_empty() && r.resolved.is_empty());
    assert_eq!(store.outbox_rows().len(), 3);
    clock.advance(MIN);
    let r = evaluate(&store, &clock, &p, &[up("a")]).unwrap();
    assert_eq!(r.resolved, vec![1]);
    assert_eq!(
        kinds(&store.outbox_rows()[3..]),
        vec![pair("resolved", "hook")]
    );
}

#[test]
fn a_level_change_while_firing_is_recorded_and_escalates() {
    let e = env();
    let p = policy("web");
    let warn = |s: &str| obs(s, Some(Level::Warning));
    let r = evaluate(&e.store, &e.clock, &p, &[warn("a")]).unwrap();
    let seq = r.fired[0];
    assert_eq!(kinds(&e.store.outbox_rows()), vec![pair("firing", "log")]);
    e.clock.advance(MIN);
    let r = evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    assert_eq!(r.level_changed, vec![seq]);
    // The critical route adds `hook`, which had not been told; `log` is not told twice.
    assert_eq!(
        kinds(&e.store.outbox_rows()),
        vec![pair("firing", "log"), pair("firing", "hook")]
    );
    e.clock.advance(MIN);
    evaluate(&e.store, &e.clock, &p, &[warn("a")]).unwrap();
    let detail = e.store.alert_detail(seq).unwrap().unwrap();
    assert_eq!(detail.alert.level, Level::Warning);
    let changes: Vec<_> = detail
        .events
        .iter()
        .filter(|e| e.kind == "level_changed")
        .map(|e| e.detail.clone().unwrap())
        .collect();
    assert_eq!(changes, ["warning -> critical", "critical -> warning"]);
    assert_eq!(e.store.outbox_rows().len(), 2);
    // Resolution goes to every channel that heard it fire.
    e.clock.advance(MIN);
    evaluate(&e.store, &e.clock, &p, &[up("a")]).unwrap();
    assert_eq!(
        kinds(&e.store.outbox_rows()[2..]),
        vec![pair("resolved", "hook"), pair("resolved", "log")]
    );
}

#[test]
fn a_run_that_mentions_a_subject_twice_counts_once_at_its_loudest() {
    let e = env();
    let p = policy("web");
    let r = evaluate(
        &e.store,
        &e.clock,
        &p,
        &[up("a"), obs("a", Some(Level::Warning)), down("a")],
    )
    .unwrap();
    assert_eq!(r.opened.len(), 1);
    let row = e.store.alert_get(r.opened[0]).unwrap().unwrap();
    assert_eq!((row.level, row.occurrences), (Level::Critical, 1));
}

#[test]
fn a_failed_evaluation_writes_nothing() {
    let e = env();
    let mut p = policy("web");
    // A route to a channel name the outbox cannot store would be a config error; here we
    // force a failure inside the transaction by breaking the notifications table.
    e.store
        .conn()
        .execute_batch("DROP TABLE notification_attempts; DROP TABLE notification_alerts;")
        .unwrap();
    p.routes = BTreeMap::from([(Level::Critical, vec!["hook".to_string()])]);
    assert!(evaluate(&e.store, &e.clock, &p, &[down("a")]).is_err());
    assert!(e.store.alerts_open().unwrap().is_empty());
}

#[test]
fn bad_policies_and_inputs_are_named() {
    let e = env();
    let mut p = policy("web");
    p.failure_threshold = 0;
    let err = evaluate(&e.store, &e.clock, &p, &[])
        .unwrap_err()
        .to_string();
    assert_eq!(err, "monitor web: failure_threshold must be at least 1");
    let mut p = policy("web");
    p.success_threshold = 0;
    assert!(
        p.validate()
            .unwrap_err()
            .to_string()
            .contains("success_threshold")
    );
    let p = policy("web");
    evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    let ack = |id: &str, who: &str| {
        acknowledge(&e.store, &e.clock, id, who, &[])
            .unwrap_err()
            .to_string()
    };
    assert!(ack("7", "bob").contains("not an alert id"));
    assert_eq!(ack("ALR-9", "bob"), "no alert ALR-9");
    assert!(ack("ALR-1", " ").starts_with("actor:"));
    acknowledge(&e.store, &e.clock, "ALR-1", "bob", &[]).unwrap();
    assert_eq!(
        ack("ALR-1", "carol"),
        "alert ALR-1 was already acknowledged by bob"
    );
    evaluate(&e.store, &e.clock, &p, &[up("a")]).unwrap();
    assert!(ack("ALR-1", "carol").contains("is resolved"));
    // Notes: any state, validated, in the timeline with their author.
    let n = |text: &str| note(&e.store, &e.clock, "ALR-1", "dave", text);
    assert!(n("").unwrap_err().to_string().starts_with("note:"));
    assert!(n("a\u{7}b").is_err());
    assert!(n(&"x".repeat(MAX_NOTE_CHARS + 1)).is_err());
    n("rebooted the proxy\nlooks fine").unwrap();
    let detail = e.store.alert_detail(1).unwrap().unwrap();
    let last = detail.events.last().unwrap();
    assert_eq!(last.kind, "note");
    assert_eq!(last.actor.as_deref(), Some("dave"));
    assert_eq!(
        last.detail.as_deref(),
        Some("rebooted the proxy\nlooks fine")
    );
    assert!(
        note(&e.store, &e.clock, "ALR-5", "dave", "x")
            .unwrap_err()
            .to_string()
            .contains("no alert")
    );
}

#[test]
fn a_complete_run_resolves_what_it_no_longer_mentions_and_a_partial_run_does_not() {
    let e = env();
    let p = policy("health");
    let a = down("a");
    let b = down("b");
    let r = evaluate(&e.store, &e.clock, &p, &[a.clone(), b]).unwrap();
    assert_eq!(r.fired.len(), 2, "{r:?}");
    e.clock.advance(MIN);
    // A partial run (e.g. one component timed out) that mentions only `a`: `b` stays.
    let r = evaluate(&e.store, &e.clock, &p, std::slice::from_ref(&a)).unwrap();
    assert!(r.resolved.is_empty(), "{r:?}");
    e.clock.advance(MIN);
    // A complete run that finds only `a` wrong: `b` is gone, so it resolves.
    let r = evaluate_complete(&e.store, &e.clock, &p, std::slice::from_ref(&a)).unwrap();
    assert_eq!(r.resolved.len(), 1, "{r:?}");
    let open = e.store.alerts_open().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].subject["url"], "a");
    // Another monitor's alerts are never touched by this one's complete runs.
    let other = policy("other");
    evaluate(&e.store, &e.clock, &other, &[down("c")]).unwrap();
    let r = evaluate_complete(&e.store, &e.clock, &p, &[]).unwrap();
    assert_eq!(r.resolved.len(), 1, "only `a` of this monitor: {r:?}");
    let open = e.store.alerts_open().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].monitor, "other");
}

#[test]
fn a_per_code_for_overrides_the_monitors_for() {
    let e = env();
    let mut p = policy("host");
    p.for_duration = Duration::from_secs(3600);
    p.for_by_code
        .insert("endpoint_down".into(), Duration::from_secs(600));
    evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    e.clock.advance(Duration::from_secs(300));
    let r = evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    assert!(r.fired.is_empty(), "5 of 10 minutes: {r:?}");
    e.clock.advance(Duration::from_secs(301));
    let r = evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    assert_eq!(
        r.fired.len(),
        1,
        "the code's 10 minutes, not the monitor's hour: {r:?}"
    );
}

#[test]
fn an_acknowledgement_is_enqueued_only_for_acknowledging_channels_that_were_told() {
    let e = env();
    let mut p = policy("web").route(Level::Critical, &["log", "hook", "pd"]);
    p.group_wait = Duration::from_secs(30);
    let r = evaluate(&e.store, &e.clock, &p, &[down("a")]).unwrap();
    let seq = r.fired[0];
    // The firing rows still gather their group: the acknowledgement must not overtake them.
    e.clock.advance(Duration::from_secs(10));
    let ack = vec!["pd".to_string(), "other-pd".to_string()];
    acknowledge(&e.store, &e.clock, "ALR-1", "alice", &ack).unwrap();
    let rows = e.store.outbox_rows();
    assert_eq!(
        kinds(&rows),
        vec![
            pair("firing", "log"),
            pair("firing", "hook"),
            pair("firing", "pd"),
            pair("acknowledged", "pd"),
        ]
    );
    let firing_pd = &rows[2];
    let acked = &rows[3];
    assert_eq!(acked.dedup_key, firing_pd.dedup_key);
    assert_eq!(acked.next_attempt_ms, firing_pd.next_attempt_ms);
    assert_eq!(events(&e.store, seq), ["pending", "firing", "acknowledged"]);
    // Resolving then tells every channel told it fired, pd included, with the same key.
    let r = evaluate(&e.store, &e.clock, &p, &[up("a")]).unwrap();
    assert_eq!(r.resolved, vec![seq]);
    let rows = e.store.outbox_rows();
    let resolved_pd = rows
        .iter()
        .find(|r| r.kind == "resolved" && r.channel == "pd")
        .unwrap();
    assert_eq!(resolved_pd.dedup_key, firing_pd.dedup_key);
}
