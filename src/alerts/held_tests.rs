//! The lifecycle with silences, maintenance windows and inhibition, on a ManualClock over
//! a real store: a muted alert fires (visible, with why) without a notification; its held
//! firing notification goes out once nothing mutes it; repeats and escalations stop while
//! it is muted; one page, not four, when the Wazuh manager is unreachable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::alerts::inhibit::InhibitRule;
use crate::alerts::lifecycle::{MonitorPolicy, acknowledge, evaluate, evaluate_complete};
use crate::alerts::mute::{MuteRules, SuppressionKind};
use crate::alerts::silence::{SilenceRequest, create, expire};
use crate::alerts::status;
use crate::alerts::{Level, Observation, alert_id};
use crate::clock::{Clock, ManualClock, Millis};
use crate::config::MaintenanceWindow;
use crate::store::Store;

// 2026-01-15T10:00:00Z, a Thursday.
const T0: Millis = 1_768_471_200_000;
const MIN: Duration = Duration::from_secs(60);

fn setup() -> (tempfile::TempDir, Store, ManualClock) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    (tmp, store, ManualClock::at(T0))
}

fn policy(name: &str) -> MonitorPolicy {
    let mut p = MonitorPolicy::new(name)
        .route(Level::Warning, &["slack"])
        .route(Level::Critical, &["slack", "sms"])
        .route(Level::Emergency, &["slack", "sms", "pd"]);
    p.group_wait = Duration::ZERO;
    p.repeat_interval = Duration::from_secs(3600);
    p
}

fn obs(code: &str, key: &str, level: Option<Level>) -> Observation {
    Observation {
        code: code.into(),
        subject: if key.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::from([("target".to_string(), key.to_string())])
        },
        level,
        title: format!("{code} {key}"),
        summary: String::new(),
        value: None,
    }
}

fn silence(store: &Store, clock: &ManualClock, matchers: &[&str], dur: &str) -> String {
    let (row, _) = create(
        store,
        clock,
        "alice",
        &SilenceRequest {
            matchers: matchers.iter().map(|m| m.to_string()).collect(),
            comment: Some("planned work".into()),
            duration: Some(dur.into()),
            ..Default::default()
        },
    )
    .unwrap();
    row.sil_id()
}

fn kinds_of(store: &Store) -> Vec<(String, String)> {
    store
        .outbox_rows()
        .into_iter()
        .map(|r| (r.kind, r.channel))
        .collect()
}

fn events(store: &Store, seq: i64) -> Vec<(String, Option<String>)> {
    store
        .alert_detail(seq)
        .unwrap()
        .unwrap()
        .events
        .into_iter()
        .map(|e| (e.kind, e.detail))
        .collect()
}

#[test]
fn a_silenced_alert_fires_quietly_is_shown_silenced_and_is_announced_when_the_silence_ends() {
    let (_t, store, clock) = setup();
    let p = policy("certs");
    let sil = silence(
        &store,
        &clock,
        &["monitor=certs", "target=~.*\\.example"],
        "2h",
    );
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("cert_expiring", "a.example", Some(Level::Critical))],
    )
    .unwrap();
    assert_eq!(e.fired.len(), 1, "still evaluated and firing");
    assert_eq!(e.held, e.fired);
    assert!(
        store.outbox_rows().is_empty(),
        "no notification while silenced"
    );
    let seq = e.fired[0];
    let ev = events(&store, seq);
    let held = ev.iter().find(|(k, _)| k == "silenced").unwrap();
    assert!(
        held.1.as_deref().unwrap().contains(&format!(
            "silenced by {sil} (alice, \"planned work\", until 2026-01-15T12:00:00"
        )),
        "{held:?}"
    );
    // alert_status shows it, list and detail, with the reason.
    let rules = MuteRules::default();
    let o = status::overview_muted(&store, clock.now_ms(), &[], 0, &rules).unwrap();
    let v = &o.firing["critical"][0];
    let m = v.muted.as_ref().expect("shown as muted");
    assert_eq!(
        (m.kind, m.by.as_str()),
        (SuppressionKind::Silence, sil.as_str())
    );
    let d = status::detail_muted(&store, &alert_id(seq), clock.now_ms(), &rules).unwrap();
    assert!(
        d.alert
            .muted
            .as_ref()
            .unwrap()
            .reason
            .starts_with("silenced by SIL-1")
    );
    // No repeat while silenced, even after the repeat interval.
    clock.advance(90 * MIN);
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("cert_expiring", "a.example", Some(Level::Critical))],
    )
    .unwrap();
    assert!(e.repeated.is_empty() && e.released.is_empty());
    // A level rise while silenced does not escalate either.
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("cert_expiring", "a.example", Some(Level::Emergency))],
    )
    .unwrap();
    // ... but now it is an emergency, which SIL-1 does not name: the held firing
    // notification goes out to every emergency channel at once.
    assert_eq!(e.level_changed, vec![seq]);
    assert_eq!(e.released, vec![seq]);
    let mut told: Vec<String> = kinds_of(&store)
        .into_iter()
        .map(|(k, c)| format!("{k}:{c}"))
        .collect();
    told.sort();
    assert_eq!(told, ["firing:pd", "firing:slack", "firing:sms"]);
}

#[test]
fn expiry_and_unsilence_release_the_held_firing_notification_once() {
    let (_t, store, clock) = setup();
    let p = policy("certs");
    silence(&store, &clock, &["monitor=certs"], "30m");
    let sil2 = silence(&store, &clock, &["target=b.example"], "2h");
    let run = |clock: &ManualClock| {
        evaluate(
            &store,
            clock,
            &p,
            &[
                obs("cert_expiring", "a.example", Some(Level::Warning)),
                obs("cert_expiring", "b.example", Some(Level::Warning)),
            ],
        )
        .unwrap()
    };
    let e = run(&clock);
    assert_eq!(e.held.len(), 2);
    let (a, b) = (e.fired[0], e.fired[1]);
    clock.advance(29 * MIN);
    assert!(run(&clock).released.is_empty(), "SIL-1 still in force");
    clock.advance(MIN);
    // SIL-1 has ended: a's held firing notification goes out now; b is still silenced.
    let e = run(&clock);
    assert_eq!(e.released, vec![a]);
    let rows = store.outbox_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].kind.as_str(), rows[0].alerts.clone()),
        ("firing", vec![a])
    );
    assert!(events(&store, a).iter().any(|(k, _)| k == "unsilenced"));
    assert!(run(&clock).released.is_empty(), "released once");
    // Unsilencing SIL-2 releases b at the next evaluation.
    expire(&store, &clock, "bob", &sil2).unwrap();
    let e = run(&clock);
    assert_eq!(e.released, vec![b]);
    assert_eq!(kinds_of(&store).len(), 2);
    // Resolving: each was told it fired on slack, so each gets its resolved there.
    clock.advance(MIN);
    evaluate_complete(&store, &clock, &p, &[]).unwrap();
    let resolved = kinds_of(&store)
        .into_iter()
        .filter(|(k, _)| k == "resolved")
        .count();
    assert_eq!(resolved, 2);
}

#[test]
fn a_held_alert_that_is_acknowledged_or_resolves_while_silenced_is_never_announced() {
    let (_t, store, clock) = setup();
    let p = policy("web");
    silence(&store, &clock, &["monitor=web"], "10m");
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[
            obs("down", "a", Some(Level::Critical)),
            obs("down", "b", Some(Level::Critical)),
        ],
    )
    .unwrap();
    acknowledge(&store, &clock, &alert_id(e.fired[0]), "carol", &[]).unwrap();
    clock.advance(5 * MIN);
    evaluate(&store, &clock, &p, &[obs("down", "b", None)]).unwrap();
    clock.advance(10 * MIN);
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("down", "a", Some(Level::Critical))],
    )
    .unwrap();
    assert!(e.released.is_empty());
    assert!(store.outbox_rows().is_empty(), "{:?}", kinds_of(&store));
}

#[test]
fn emergency_alerts_need_a_silence_that_names_them() {
    let (_t, store, clock) = setup();
    let p = policy("security");
    silence(&store, &clock, &["monitor=security"], "1h");
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("security_event_rate", "", Some(Level::Emergency))],
    )
    .unwrap();
    assert!(
        e.held.is_empty(),
        "a broad silence does not mute an emergency"
    );
    assert_eq!(kinds_of(&store).len(), 3);
    silence(
        &store,
        &clock,
        &["monitor=security", "level=emergency"],
        "1h",
    );
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("security_event_rate", "x", Some(Level::Emergency))],
    )
    .unwrap();
    assert_eq!(e.held, e.fired, "named explicitly");
    assert_eq!(kinds_of(&store).len(), 3);
}

#[test]
fn a_maintenance_window_mutes_while_open_and_releases_after() {
    let (_t, store, clock) = setup();
    let mut p = policy("uptime");
    // Thursdays 10:00-11:00 Berlin (09:00-10:00 UTC in January) would be over at T0;
    // this one opens at 11:00 Berlin = 10:00 UTC = T0, for 30 minutes.
    let w = MaintenanceWindow::new(
        "deploy",
        "0 11 * * 4",
        "Europe/Berlin",
        "30m",
        &["monitor=uptime"],
    )
    .unwrap();
    p.mute = Arc::new(MuteRules {
        maintenance: vec![w],
        inhibit: vec![],
    });
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("endpoint_down", "a", Some(Level::Critical))],
    )
    .unwrap();
    assert_eq!(e.held, e.fired);
    let ev = events(&store, e.fired[0]);
    assert!(
        ev.iter().any(|(k, d)| k == "silenced"
            && d.as_deref()
                .unwrap()
                .contains("in maintenance window deploy until 2026-01-15T10:30:00")),
        "{ev:?}"
    );
    // An emergency in the window is not muted (the window does not name emergencies).
    let loud = evaluate(
        &store,
        &clock,
        &p,
        &[obs("tls_broken", "b", Some(Level::Emergency))],
    )
    .unwrap();
    assert!(loud.held.is_empty() && loud.fired.len() == 1);
    assert_eq!(
        kinds_of(&store).len(),
        3,
        "slack, sms and pd for the emergency"
    );
    // 29 minutes in, still open: nothing released.
    clock.advance(29 * MIN);
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("endpoint_down", "a", Some(Level::Critical))],
    )
    .unwrap();
    assert!(e.released.is_empty());
    clock.advance(MIN);
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("endpoint_down", "a", Some(Level::Critical))],
    )
    .unwrap();
    assert_eq!(e.released.len(), 1);
    assert_eq!(
        kinds_of(&store).len(),
        5,
        "then slack and sms for the held one"
    );
}

fn wazuh_policy() -> MonitorPolicy {
    let mut p = policy("wazuh");
    p.labels
        .insert("manager".into(), "wazuh.example:55000".into());
    p.mute = Arc::new(MuteRules {
        maintenance: vec![],
        inhibit: vec![InhibitRule::wazuh_manager_default()],
    });
    p
}

#[test]
fn the_default_inhibition_sends_one_page_when_the_manager_is_unreachable() {
    let (_t, store, clock) = setup();
    let p = wazuh_policy();
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[
            obs("daemon_stopped", "wazuh-analysisd", Some(Level::Critical)),
            obs("manager_unreachable", "", Some(Level::Critical)),
            obs("cluster_disconnected", "node02", Some(Level::Critical)),
            obs("agents_disconnected", "", Some(Level::Warning)),
        ],
    )
    .unwrap();
    assert_eq!(e.fired.len(), 4);
    assert_eq!(e.held.len(), 3);
    let rows = store.outbox_rows();
    let carried: Vec<Vec<i64>> = rows.iter().map(|r| r.alerts.clone()).collect();
    let unreachable = e.fired[1];
    assert!(
        carried.iter().all(|a| a == &vec![unreachable]),
        "{carried:?}"
    );
    assert_eq!(rows.len(), 2, "one page (slack + sms), not four");
    let ev = events(&store, e.fired[0]);
    assert!(
        ev.iter().any(|(_, d)| d
            .as_deref()
            .unwrap_or("")
            .contains(&format!("inhibited by {}", alert_id(unreachable)))),
        "{ev:?}"
    );
    // The manager answers again: its alert resolves, the others are announced now.
    clock.advance(MIN);
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[
            obs("manager_unreachable", "", None),
            obs("daemon_stopped", "wazuh-analysisd", Some(Level::Critical)),
        ],
    )
    .unwrap();
    assert_eq!(e.resolved, vec![unreachable]);
    assert_eq!(e.released.len(), 3);
}

#[test]
fn inhibition_stops_repeats_of_alerts_that_fired_before_the_source() {
    let (_t, store, clock) = setup();
    let p = wazuh_policy();
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("daemon_stopped", "x", Some(Level::Critical))],
    )
    .unwrap();
    let daemon = e.fired[0];
    assert_eq!(kinds_of(&store).len(), 2);
    clock.advance(61 * MIN);
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[obs("manager_unreachable", "", Some(Level::Critical))],
    )
    .unwrap();
    assert!(e.repeated.is_empty(), "the daemon's repeat is inhibited");
    assert_eq!(kinds_of(&store).len(), 4, "only the manager's firing");
    // The muting is visible in alert_status.
    let rules = (*p.mute).clone();
    let d = status::detail_muted(&store, &alert_id(daemon), clock.now_ms(), &rules).unwrap();
    assert_eq!(d.alert.muted.unwrap().kind, SuppressionKind::Inhibition);
}
