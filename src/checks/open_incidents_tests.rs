//! Tests of the incident part of the `security_events` monitor: incidents made by the real
//! ingest (correlation of parsed Wazuh alerts) and changed by the real incident_update,
//! read back as observations, and those observations through the alert lifecycle until the
//! incident is acknowledged or resolved.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::alerts::lifecycle::{MonitorPolicy, evaluate_complete};
use crate::clock::ManualClock;
use crate::incidents::ingest::tests::{T0, alert};
use crate::incidents::{UpdateArgs, ingest_page, update};

const MIN: i64 = 60_000;

struct Env {
    _tmp: tempfile::TempDir,
    store: Store,
    cfg: IncidentsConfig,
}

/// Three incidents detected at T0: INC-000001 medium (level 10, file integrity on agent
/// 003), INC-000002 high (level 13, SSH brute force from 203.0.113.9), INC-000003 critical
/// (level 15, an attack on agent 002). SLAs (the defaults): critical 15 min, high 60 min,
/// medium 240 min.
fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let cfg = IncidentsConfig::default();
    // One page per incident, so the ids follow this order.
    let pages = [
        vec![alert("m1", T0, 10, "550", &["syscheck"], "003")],
        vec![
            alert("h1", T0, 13, "5712", &["authentication_failures"], "001"),
            alert(
                "h2",
                T0 + 1000,
                13,
                "5712",
                &["authentication_failures"],
                "002",
            ),
        ],
        vec![alert("c1", T0, 15, "31168", &["attack"], "002")],
    ];
    for page in pages {
        let n = page.len() as u64;
        assert_eq!(
            ingest_page(&store, &cfg, &page, time_of(T0)).unwrap(),
            (n, 1)
        );
    }
    Env {
        _tmp: tmp,
        store,
        cfg,
    }
}

impl Env {
    fn observe(&self, spec: &IncidentSpec, now_ms: Millis) -> Vec<(String, String, Level)> {
        let scan = observe(&self.store, &self.cfg, spec, now_ms).unwrap();
        assert!(scan.complete);
        let mut out: Vec<_> = scan
            .observations
            .iter()
            .map(|o| {
                assert_eq!(o.subject.len(), 1, "{o:?}");
                (
                    o.code.clone(),
                    o.subject["incident"].clone(),
                    o.level.unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn incident_update(&self, args: serde_json::Value, now_ms: Millis) {
        let args: UpdateArgs = serde_json::from_value(args).unwrap();
        update(&self.store, &self.cfg, "alice", &args, time_of(now_ms)).unwrap();
    }
}

fn row(code: &str, id: &str, level: Level) -> (String, String, Level) {
    (code.to_string(), id.to_string(), level)
}

#[test]
fn open_incidents_at_or_above_the_severity_are_alerts_levelled_by_their_wazuh_level() {
    let e = env();
    let spec = IncidentSpec::default();
    // High and critical, not medium; 15+ is an emergency, 12-14 critical.
    assert_eq!(
        e.observe(&spec, T0 + 5 * MIN),
        vec![
            row("incident_open", "INC-000002", Level::Critical),
            row("incident_open", "INC-000003", Level::Emergency),
        ]
    );
    let medium = IncidentSpec::parse("m", None, Some("medium"), None).unwrap();
    assert_eq!(
        e.observe(&medium, T0 + 5 * MIN)[0],
        row("incident_open", "INC-000001", Level::Warning)
    );
    let scan = observe(&e.store, &e.cfg, &spec, T0 + 5 * MIN).unwrap();
    let o = scan
        .observations
        .iter()
        .find(|o| o.subject["incident"] == "INC-000002")
        .unwrap();
    assert!(
        o.title.starts_with("Incident INC-000002 (high) is open: "),
        "{}",
        o.title
    );
    for part in [
        "Wazuh level 13",
        "2 Wazuh alerts",
        "host-001, host-002",
        "203.0.113.9",
        "escalate to DevOps engineer",
        "incident_update",
    ] {
        assert!(o.summary.contains(part), "{part}: {}", o.summary);
    }
    assert_eq!(o.value.as_deref(), Some("2 alerts"));

    // A louder alert joins the medium incident: it is now critical, and an emergency.
    let louder = [alert("m2", T0 + MIN, 15, "550", &["syscheck"], "003")];
    ingest_page(&e.store, &e.cfg, &louder, time_of(T0 + MIN)).unwrap();
    assert!(e.observe(&spec, T0 + 5 * MIN).contains(&row(
        "incident_open",
        "INC-000001",
        Level::Emergency
    )));
}

#[test]
fn sla_breaches_of_open_incidents_of_any_severity_are_critical() {
    let e = env();
    let breaches = |now| -> Vec<String> {
        e.observe(&IncidentSpec::default(), now)
            .into_iter()
            .filter(|(code, _, level)| code == "incident_sla_breach" && *level == Level::Critical)
            .map(|(_, id, _)| id)
            .collect()
    };
    assert!(breaches(T0 + 14 * MIN).is_empty());
    assert_eq!(breaches(T0 + 16 * MIN), vec!["INC-000003"]);
    assert_eq!(breaches(T0 + 61 * MIN), vec!["INC-000002", "INC-000003"]);
    // The medium incident is below `incident_severity`, but its breach still counts.
    assert_eq!(
        breaches(T0 + 241 * MIN),
        vec!["INC-000001", "INC-000002", "INC-000003"]
    );
    let scan = observe(&e.store, &e.cfg, &IncidentSpec::default(), T0 + 20 * MIN).unwrap();
    let b = scan
        .observations
        .iter()
        .find(|o| o.code == "incident_sla_breach")
        .unwrap();
    assert_eq!(b.value.as_deref(), Some("5 min late"));
    assert!(
        b.summary.contains("Escalate to security lead"),
        "{}",
        b.summary
    );

    // `sla = false`: no breaches; `incidents = false`: breaches only.
    let no_sla = IncidentSpec::parse("m", None, None, Some(false)).unwrap();
    assert!(
        e.observe(&no_sla, T0 + 61 * MIN)
            .iter()
            .all(|(code, ..)| code == "incident_open")
    );
    let sla_only = IncidentSpec::parse("m", Some(false), None, None).unwrap();
    assert_eq!(
        e.observe(&sla_only, T0 + 20 * MIN),
        vec![row("incident_sla_breach", "INC-000003", Level::Critical)]
    );
    let off = IncidentSpec::parse("m", Some(false), None, Some(false)).unwrap();
    assert!(!off.any());
    assert!(e.observe(&off, T0 + 241 * MIN).is_empty());
}

#[test]
fn acknowledged_contained_or_resolved_incidents_give_no_observation() {
    let e = env();
    let spec = IncidentSpec::default();
    let later = T0 + 61 * MIN;
    e.incident_update(
        json!({"incident_id": "INC-000003", "action": "acknowledge", "assignee": "bob"}),
        later,
    );
    e.incident_update(
        json!({"incident_id": "INC-000002", "action": "resolve", "resolution": "true_positive"}),
        later,
    );
    e.incident_update(
        json!({"incident_id": "INC-000001", "action": "set_status", "status": "contained"}),
        later,
    );
    assert!(e.observe(&spec, T0 + 241 * MIN).is_empty());
    // Reopened, it is an alert again (a new episode of the same alert identity).
    e.incident_update(
        json!({"incident_id": "INC-000002", "action": "set_status", "status": "open"}),
        later,
    );
    assert!(e.observe(&spec, later + MIN).contains(&row(
        "incident_open",
        "INC-000002",
        Level::Critical
    )));
}

#[test]
fn through_the_lifecycle_an_incident_alert_fires_and_resolves_when_the_incident_is_handled() {
    let e = env();
    let spec = IncidentSpec::default();
    let clock = ManualClock::at(T0 + 20 * MIN);
    let mut policy = MonitorPolicy::new("events");
    policy.group_wait = Duration::ZERO;
    let run = |now: Millis| {
        clock.set(now);
        let scan = observe(&e.store, &e.cfg, &spec, now).unwrap();
        evaluate_complete(&e.store, &clock, &policy, &scan.observations).unwrap()
    };
    // Two open incidents and the critical one's SLA breach: three alerts fire.
    let first = run(T0 + 20 * MIN);
    assert_eq!((first.opened.len(), first.fired.len()), (3, 3), "{first:?}");
    // Still open a minute later: nothing new, nothing resolved.
    let again = run(T0 + 21 * MIN);
    assert!(
        again.opened.is_empty() && again.resolved.is_empty(),
        "{again:?}"
    );
    // bob acknowledges the critical incident: its open alert and its breach resolve.
    e.incident_update(
        json!({"incident_id": "INC-000003", "action": "acknowledge", "assignee": "bob"}),
        T0 + 22 * MIN,
    );
    let acked = run(T0 + 23 * MIN);
    assert_eq!(acked.resolved.len(), 2, "{acked:?}");
    // The high incident is resolved: its alert resolves too.
    e.incident_update(
        json!({"incident_id": "INC-000002", "action": "resolve", "resolution": "false_positive"}),
        T0 + 24 * MIN,
    );
    let done = run(T0 + 25 * MIN);
    assert_eq!(done.resolved.len(), 1, "{done:?}");
    assert!(run(T0 + 26 * MIN).resolved.is_empty());
}

#[test]
fn settings_name_the_key_and_say_what_is_allowed() {
    let d = IncidentSpec::parse("monitors[1]", None, None, None).unwrap();
    assert_eq!(d, IncidentSpec::default());
    assert!(d.enabled && d.sla && d.min_severity == IncidentSeverity::High);
    assert_eq!(
        IncidentSpec::parse("m", None, Some(" critical "), None)
            .unwrap()
            .min_severity,
        IncidentSeverity::Critical
    );
    let e = IncidentSpec::parse("monitors[1]", None, Some("urgent"), None).unwrap_err();
    assert_eq!(e.argument, "monitors[1].incident_severity");
    assert!(
        e.reason.contains("allowed: low, medium, high, critical"),
        "{}",
        e.reason
    );
    let e = IncidentSpec::parse("monitors[1]", Some(false), Some("high"), None).unwrap_err();
    assert_eq!(e.argument, "monitors[1].incident_severity");
    assert!(e.reason.contains("incidents = false"), "{}", e.reason);
    assert_eq!(open_level(16), Level::Emergency);
    assert_eq!(open_level(12), Level::Critical);
    assert_eq!(open_level(11), Level::Warning);
}
