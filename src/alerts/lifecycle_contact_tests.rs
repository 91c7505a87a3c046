//! Routes that name a contact (`contact:<name or role>`), through the lifecycle on a
//! ManualClock over a real store: the contact's rows carry their name (the outbox
//! addresses them), the resolve and the PagerDuty acknowledgement reach the same person,
//! a group row only gathers alerts for the same contact, repeats and level rises include
//! them, and a silence holds and releases their rows like the others.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::alerts::silence::{SilenceRequest, create, expire};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::store::alerts::tests::OutboxRow;

const T0: Millis = 1_790_000_000_000;
const MIN: Duration = Duration::from_secs(60);
const ALICE: &str = "Alice Martin";

fn setup() -> (tempfile::TempDir, Store, ManualClock) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    (tmp, store, ManualClock::at(T0))
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

/// (kind, channel, contact) of each row.
fn rows(rows: &[OutboxRow]) -> Vec<(String, String, Option<String>)> {
    rows.iter()
        .map(|r| (r.kind.clone(), r.channel.clone(), r.contact.clone()))
        .collect()
}

fn row(kind: &str, channel: &str, contact: Option<&str>) -> (String, String, Option<String>) {
    (kind.into(), channel.into(), contact.map(String::from))
}

const CONFIG: &str = "\
[[channels]]
name = \"text\"
kind = \"sms\"
account_sid = \"AC0123456789abcdef0123456789abcdef\"
auth_token_env = \"TW_TOKEN\"
from = \"+15005550006\"
to = [\"+15551230009\"]
[[channels]]
name = \"pager\"
kind = \"pagerduty\"
routing_key_env = \"PD_KEY\"
[[channels]]
name = \"chat\"
kind = \"log\"
[[contacts]]
name = \"Alice Martin\"
role = \"security lead\"
phone = \"+15551230001\"
pagerduty_routing_key_env = \"ALICE_PD\"
[routing]
critical = [\"chat\", \"contact:security lead\"]
[[monitors]]
name = \"web\"
kind = \"uptime\"
url = \"http://127.0.0.1:8080/health\"
";

fn config() -> Config {
    let env: BTreeMap<String, String> = [
        ("SECOPS_STATE_DIR", "/tmp/secops-test-state"),
        ("TW_TOKEN", "tw-t0ken"),
        ("PD_KEY", "ServiceKey0123456789abcdef012345"),
        ("ALICE_PD", "AliceS3cretKey0123456789abcdef01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Config::from_toml_str(CONFIG, &env).unwrap()
}

#[test]
fn a_critical_alert_routed_to_the_security_lead_reaches_her_fires_acks_and_resolves() {
    let (_t, store, clock) = setup();
    let cfg = config();
    let mut p = cfg.monitors[0].policy();
    (p.group_wait, p.for_duration) = (Duration::ZERO, Duration::ZERO);
    (p.failure_threshold, p.success_threshold) = (1, 1);
    let r = evaluate(&store, &clock, &p, &[down("a")]).unwrap();
    let seq = r.fired[0];
    let fired = store.outbox_rows();
    assert_eq!(
        rows(&fired),
        vec![
            row("firing", "chat", None),
            row("firing", "text", Some(ALICE)),
            row("firing", "pager", Some(ALICE)),
        ]
    );
    // Her rows are ordinary firing notifications of the alert, with its episode's key.
    assert!(fired.iter().all(|f| f.alerts == [seq]));
    assert!(fired.iter().all(|f| f.body.escalation.is_none()));
    assert!(fired.iter().all(|f| f.dedup_key == fired[0].dedup_key));

    // The PagerDuty acknowledgement goes to the service the trigger went to: hers.
    clock.advance(MIN);
    let ack = cfg.notify.acknowledging_channels();
    assert_eq!(ack, ["pager"]);
    acknowledge(&store, &clock, "ALR-1", "bob", &ack).unwrap();
    let after_ack = store.outbox_rows();
    assert_eq!(
        rows(&after_ack[3..]),
        vec![row("acknowledged", "pager", Some(ALICE))]
    );
    assert_eq!(after_ack[3].dedup_key, fired[2].dedup_key);

    // Resolving reaches her again on both of her channels, and the channel.
    clock.advance(MIN);
    let r = evaluate(&store, &clock, &p, &[up("a")]).unwrap();
    assert_eq!(r.resolved, vec![seq]);
    let all = store.outbox_rows();
    assert_eq!(
        rows(&all[4..]),
        vec![
            row("resolved", "chat", None),
            row("resolved", "pager", Some(ALICE)),
            row("resolved", "text", Some(ALICE)),
        ]
    );
    assert!(all[4..].iter().all(|r| r.dedup_key == fired[0].dedup_key));
}

#[test]
fn a_group_row_only_gathers_alerts_for_the_same_contact() {
    let (_t, store, clock) = setup();
    let mut p = MonitorPolicy::new("web")
        .route(Level::Critical, &["text"])
        .route_contact(Level::Critical, "text", ALICE)
        .route_contact(Level::Critical, "text", "Bob");
    p.group_wait = Duration::from_secs(30);
    let first = evaluate(&store, &clock, &p, &[down("a")]).unwrap();
    clock.advance(Duration::from_secs(10));
    let second = evaluate(&store, &clock, &p, &[down("a"), down("b")]).unwrap();
    let (a, b) = (first.fired[0], second.fired[0]);
    let all = store.outbox_rows();
    assert_eq!(
        rows(&all),
        vec![
            row("firing", "text", None),
            row("firing", "text", Some(ALICE)),
            row("firing", "text", Some("Bob")),
        ]
    );
    // Each target's row gathered both alerts; none took another contact's.
    assert!(all.iter().all(|r| r.alerts == [a, b]), "{all:?}");
    assert!(all.iter().all(|r| r.body.alerts.len() == 2));
    let due = all[0].next_attempt_ms;
    assert_eq!(due, T0 + 30_000);

    // `a` resolves while the groups still gather: each resolve waits for its own firing.
    clock.advance(Duration::from_secs(5));
    evaluate(&store, &clock, &p, &[up("a"), down("b")]).unwrap();
    let resolved = store.outbox_rows();
    assert_eq!(
        rows(&resolved[3..]),
        vec![
            row("resolved", "text", None),
            row("resolved", "text", Some(ALICE)),
            row("resolved", "text", Some("Bob")),
        ]
    );
    assert!(resolved[3..].iter().all(|r| r.next_attempt_ms == due));
}

#[test]
fn a_level_rise_and_repeats_reach_the_contact_too() {
    let (_t, store, clock) = setup();
    let mut p = MonitorPolicy::new("web")
        .route(Level::Warning, &["log"])
        .route(Level::Critical, &["log"])
        .route_contact(Level::Critical, "text", ALICE);
    p.group_wait = Duration::ZERO;
    p.repeat_interval = Duration::from_secs(3600);
    let r = evaluate(&store, &clock, &p, &[obs("a", Some(Level::Warning))]).unwrap();
    let seq = r.fired[0];
    assert_eq!(rows(&store.outbox_rows()), vec![row("firing", "log", None)]);
    // Critical now: she had not been told, so she is; the log is not told twice.
    clock.advance(MIN);
    evaluate(&store, &clock, &p, &[down("a")]).unwrap();
    assert_eq!(
        rows(&store.outbox_rows()),
        vec![
            row("firing", "log", None),
            row("firing", "text", Some(ALICE))
        ]
    );
    // An hour later, unacknowledged: one repeat each, and the timeline names her.
    clock.advance(Duration::from_secs(3600));
    let r = evaluate(&store, &clock, &p, &[down("a")]).unwrap();
    assert_eq!(r.repeated, vec![seq]);
    assert_eq!(
        rows(&store.outbox_rows()[2..]),
        vec![
            row("repeat", "log", None),
            row("repeat", "text", Some(ALICE))
        ]
    );
    let detail = store.alert_detail(seq).unwrap().unwrap();
    let repeat = detail.events.iter().find(|e| e.kind == "repeat").unwrap();
    assert_eq!(repeat.detail.as_deref(), Some("log, text to Alice Martin"));
    // Acknowledged with no acknowledging channel: repeats stop for her as for the log.
    acknowledge(&store, &clock, "ALR-1", "bob", &[]).unwrap();
    clock.advance(Duration::from_secs(3600));
    evaluate(&store, &clock, &p, &[down("a")]).unwrap();
    assert_eq!(store.outbox_rows().len(), 4);
}

#[test]
fn a_silence_holds_the_contacts_rows_and_releases_them_when_it_ends() {
    let (_t, store, clock) = setup();
    let mut p = MonitorPolicy::new("web")
        .route(Level::Critical, &["log"])
        .route_contact(Level::Critical, "text", ALICE);
    p.group_wait = Duration::ZERO;
    let (sil, _) = create(
        &store,
        &clock,
        "carol",
        &SilenceRequest {
            matchers: vec!["monitor=web".into()],
            comment: Some("deploy".into()),
            duration: Some("1h".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let r = evaluate(&store, &clock, &p, &[down("a")]).unwrap();
    assert_eq!(r.held, r.fired);
    assert!(
        store.outbox_rows().is_empty(),
        "nobody is told while silenced"
    );
    clock.advance(MIN);
    expire(&store, &clock, "carol", &sil.sil_id()).unwrap();
    clock.advance(MIN);
    let r = evaluate(&store, &clock, &p, &[down("a")]).unwrap();
    assert_eq!(r.released.len(), 1);
    assert_eq!(
        rows(&store.outbox_rows()),
        vec![
            row("firing", "log", None),
            row("firing", "text", Some(ALICE))
        ]
    );
    // And the resolve reaches her.
    clock.advance(MIN);
    evaluate(&store, &clock, &p, &[up("a")]).unwrap();
    assert_eq!(
        rows(&store.outbox_rows()[2..]),
        vec![
            row("resolved", "log", None),
            row("resolved", "text", Some(ALICE))
        ]
    );
}

#[test]
fn a_contact_route_without_a_contact_is_refused_by_the_policy() {
    let mut p = MonitorPolicy::new("web");
    p.contact_routes
        .insert(Level::Critical, vec![Target::channel("text")]);
    let e = p.validate().unwrap_err().to_string();
    assert!(e.contains("contact_routes"), "{e}");
}
