use std::collections::BTreeMap;

use super::*;
use crate::alerts::lifecycle::{MonitorPolicy, evaluate};
use crate::alerts::{Level, Observation};
use crate::clock::ManualClock;

fn obs(target: &str, level: Level) -> Observation {
    Observation {
        code: "cert_expiring".into(),
        subject: BTreeMap::from([("target".into(), target.into())]),
        level: Some(level),
        title: format!("{target} expires soon"),
        summary: String::new(),
        value: None,
    }
}

#[test]
fn create_validates_every_argument_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let clock = ManualClock::at(1_790_000_000_000);
    let ok = || SilenceRequest {
        matchers: vec!["monitor=certs".into()],
        comment: Some("renewing".into()),
        duration: Some("2h".into()),
        ..Default::default()
    };
    let field = |r: SilenceRequest| match create(&store, &clock, "alice", &r).unwrap_err() {
        SilenceError::Arg { field, problem } => format!("{field}: {problem}"),
        other => panic!("{other}"),
    };
    assert!(
        field(SilenceRequest {
            matchers: vec![],
            ..ok()
        })
        .starts_with("matchers: give")
    );
    let e = field(SilenceRequest {
        matchers: vec!["monitor=certs".into(), "oops".into()],
        ..ok()
    });
    assert!(
        e.starts_with("matchers: matchers[1]: matcher \"oops\""),
        "{e}"
    );
    assert!(
        field(SilenceRequest {
            comment: None,
            ..ok()
        })
        .starts_with("comment: is required")
    );
    assert!(
        field(SilenceRequest {
            comment: Some("x".repeat(501)),
            ..ok()
        })
        .starts_with("comment:")
    );
    assert!(
        field(SilenceRequest {
            duration: None,
            ..ok()
        })
        .starts_with("duration: is required")
    );
    assert!(
        field(SilenceRequest {
            duration: Some("91d".into()),
            ..ok()
        })
        .starts_with("duration:")
    );
    assert!(
        field(SilenceRequest {
            duration: Some("2 hours".into()),
            ..ok()
        })
        .starts_with("duration:")
    );
    assert!(
        field(SilenceRequest {
            ends_at: Some("2030-01-01T00:00:00Z".into()),
            ..ok()
        })
        .starts_with("duration: give either")
    );
    assert!(
        field(SilenceRequest {
            duration: None,
            ends_at: Some("yesterday".into()),
            ..ok()
        })
        .starts_with("ends_at: \"yesterday\" is not an RFC 3339")
    );
    assert!(
        field(SilenceRequest {
            duration: None,
            ends_at: Some("2020-01-01T00:00:00Z".into()),
            ..ok()
        })
        .starts_with("ends_at: must be later")
    );
    assert!(
        field(SilenceRequest {
            matchers: vec![],
            alert_id: Some("ALR-9".into()),
            ..ok()
        })
        .starts_with("alert_id: no alert ALR-9")
    );
    assert!(
        field(SilenceRequest {
            alert_id: Some("ALR-9".into()),
            ..ok()
        })
        .starts_with("matchers: give either")
    );
    let e = field(SilenceRequest {
        starts_at: Some("2020-01-01T00:00:00Z".into()),
        ..ok()
    });
    assert!(
        e.starts_with("starts_at: the silence would be over already"),
        "{e}"
    );
    let later = SilenceRequest {
        starts_at: Some(rfc3339(clock.now_ms() + 3_600_000)),
        ..ok()
    };
    let (pending, covered) = create(&store, &clock, "alice", &later).unwrap();
    assert!(covered.is_empty());
    assert_eq!(SilenceView::of(&pending, clock.now_ms()).state, "pending");
    expire(&store, &clock, "alice", &pending.sil_id()).unwrap();
    let (row, covered) = create(&store, &clock, "alice", &ok()).unwrap();
    assert_eq!(row.sil_id(), "SIL-2");
    assert_eq!(row.ends_ms - row.starts_ms, 2 * 3600 * 1000);
    assert!(covered.is_empty());
    assert!(matches!(
        expire(&store, &clock, "bob", "SIL-x").unwrap_err(),
        SilenceError::Arg {
            field: "silence_id",
            ..
        }
    ));
    expire(&store, &clock, "bob", "SIL-2").unwrap();
    let again = expire(&store, &clock, "bob", "SIL-2")
        .unwrap_err()
        .to_string();
    assert!(
        again.contains("already ended") && again.contains("bob"),
        "{again}"
    );
}

#[test]
fn silencing_an_alert_covers_its_subject_and_notes_the_timeline() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let clock = ManualClock::at(1_790_000_000_000);
    let mut p = MonitorPolicy::new("certs").route(Level::Warning, &["log"]);
    p.group_wait = Duration::ZERO;
    let e = evaluate(
        &store,
        &clock,
        &p,
        &[
            obs("a.example:443", Level::Warning),
            obs("b.example:443", Level::Warning),
        ],
    )
    .unwrap();
    let id = crate::alerts::alert_id(e.fired[0]);
    let req = SilenceRequest {
        alert_id: Some(id.clone()),
        comment: Some("known, renewal booked".into()),
        ends_at: Some(rfc3339(clock.now_ms() + 3_600_000)),
        ..Default::default()
    };
    let (row, covered) = create(&store, &clock, "alice", &req).unwrap();
    assert_eq!(covered, vec![id.clone()], "only that alert");
    assert_eq!(row.matchers[0], "monitor=certs");
    assert!(row.matchers[2].starts_with("fingerprint="));
    let d = store.alert_detail(e.fired[0]).unwrap().unwrap();
    let ev = d.events.iter().find(|e| e.kind == "silenced").unwrap();
    assert_eq!(ev.actor.as_deref(), Some("alice"));
    assert!(ev.detail.as_deref().unwrap().contains("SIL-1"), "{ev:?}");
    let (_, covered) = expire(&store, &clock, "bob", "SIL-1").unwrap();
    assert_eq!(covered, vec![id]);
    let views = list(&store, &clock, true).unwrap();
    assert_eq!(views[0].state, "ended");
    assert_eq!(views[0].removed_by.as_deref(), Some("bob"));
    assert!(list(&store, &clock, false).unwrap().is_empty());
}
