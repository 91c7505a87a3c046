use super::*;
use crate::alerts::{AlertState, Level};

/// An alert row for matching (no store).
pub(crate) fn alert(seq: i64, monitor: &str, code: &str, level: Level) -> AlertRow {
    AlertRow {
        seq,
        fingerprint: format!("fp{seq:014}"),
        episode: format!("fp{seq:014}-1"),
        monitor: monitor.into(),
        code: code.into(),
        subject: BTreeMap::from([("target".into(), "mail.example.com:443".into())]),
        labels: BTreeMap::from([
            ("target".into(), "mail.example.com:443".into()),
            ("env".into(), "prod".into()),
        ]),
        level,
        state: AlertState::Firing,
        title: "t".into(),
        summary: String::new(),
        value: None,
        first_seen_ms: 1,
        firing_ms: Some(1),
        last_seen_ms: 1,
        resolved_ms: None,
        occurrences: 1,
        fail_streak: 1,
        ok_streak: 0,
        last_notified_ms: Some(1),
        acknowledged_ms: None,
        acknowledged_by: None,
        failing_since_ms: Some(1),
    }
}

#[test]
fn the_four_operators_parse_and_print_back() {
    for (text, name, op, value) in [
        ("monitor=certs", "monitor", MatchOp::Equal, "certs"),
        ("env != prod", "env", MatchOp::NotEqual, "prod"),
        (
            r"target=~.*\.example\.com:443",
            "target",
            MatchOp::Regex,
            r".*\.example\.com:443",
        ),
        ("code!~cert_.*", "code", MatchOp::NotRegex, "cert_.*"),
        ("team=\"ops team\"", "team", MatchOp::Equal, "ops team"),
        ("team=", "team", MatchOp::Equal, ""),
    ] {
        let m = Matcher::parse(text).unwrap();
        assert_eq!(
            (m.name.as_str(), m.op, m.value.as_str()),
            (name, op, value),
            "{text}"
        );
        assert_eq!(Matcher::parse(&m.to_string()).unwrap(), m, "{m}");
    }
}

#[test]
fn bad_matchers_name_the_matcher_and_the_reason() {
    for (text, want) in [
        ("", "is empty"),
        ("=certs", "does not start with a label name"),
        ("monitor", "no operator after the label name `monitor`"),
        ("monitor~certs", "no operator"),
        ("9x=1", "starts with a digit"),
        ("target=~(unclosed", "the regex is not valid"),
        ("level=loud", "`loud` is not a level"),
        ("a=\u{7}", "control characters"),
    ] {
        let e = Matcher::parse(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
        assert!(e.starts_with("matcher \""), "{e}");
    }
    let long = format!("a={}", "x".repeat(MAX_MATCHER_CHARS));
    assert!(
        Matcher::parse(&long)
            .unwrap_err()
            .reason
            .contains("longer than")
    );
    // A regex whose compiled program is huge is refused, not built.
    let huge = format!("a=~(?:{}){{1000}}", "[a-z]{100}");
    let e = Matcher::parse(&huge).unwrap_err();
    assert!(e.reason.contains("too large"), "{e}");
    let (key, why) = parse_list("matchers", &["monitor=a".into(), "x".into()]).unwrap_err();
    assert_eq!(key, "matchers[1]");
    assert!(why.contains("no operator"), "{why}");
    let (key, why) = parse_list("maintenance[0].matchers", &[]).unwrap_err();
    assert_eq!(key, "maintenance[0].matchers");
    assert!(why.contains("at least one"), "{why}");
    let many: Vec<String> = (0..=MAX_MATCHERS).map(|i| format!("a{i}=1")).collect();
    assert!(parse_list("m", &many).unwrap_err().1.contains("at most"));
}

#[test]
fn matching_covers_labels_and_the_alert_fields_with_anchored_regexes() {
    let a = alert(5, "certs", "cert_expiring", Level::Warning);
    let f = fields_of(&a);
    let yes = |t: &str| Matcher::parse(t).unwrap().matches(&f);
    assert!(yes("monitor=certs"));
    assert!(yes("code=~cert_.*"));
    assert!(yes("level=warning"));
    assert!(yes("id=ALR-5"));
    assert!(yes(&format!("fingerprint={}", a.fingerprint)));
    assert!(yes(r"target=~.*\.example\.com:443"));
    assert!(yes("env!=staging"));
    // Anchored: a regex must match the whole value.
    assert!(!yes("target=~example"));
    assert!(!yes("code=~cert"));
    assert!(yes("code!~cert"));
    // A missing label reads as "".
    assert!(yes("team!=ops"));
    assert!(yes("team="));
    assert!(!yes("team=~.+"));
    assert!(!yes("id=ALR-50"));
    let set = [
        Matcher::parse("monitor=certs").unwrap(),
        Matcher::parse("env=prod").unwrap(),
    ];
    assert!(all_match(&set, &f));
    let set = [
        Matcher::parse("monitor=certs").unwrap(),
        Matcher::parse("env=dev").unwrap(),
    ];
    assert!(!all_match(&set, &f), "matchers are ANDed");
}

#[test]
fn emergency_alerts_are_muted_only_when_named_explicitly() {
    let m =
        |ts: &[&str]| -> Vec<Matcher> { ts.iter().map(|t| Matcher::parse(t).unwrap()).collect() };
    let crit = alert(3, "wazuh", "manager_unreachable", Level::Critical);
    let emerg = alert(4, "security", "security_event_rate", Level::Emergency);
    // A broad silence mutes the critical alert but not the emergency one.
    assert!(mutes(&m(&["env=prod"]), &crit));
    assert!(!mutes(&m(&["env=prod"]), &emerg));
    assert!(
        !mutes(&m(&["level=~.*"]), &emerg),
        "a regex on level is not explicit"
    );
    assert!(!mutes(&m(&["level!=info"]), &emerg));
    // Named explicitly: level=emergency, its id, or its fingerprint.
    assert!(mutes(&m(&["level=emergency"]), &emerg));
    assert!(mutes(&m(&["id=ALR-4"]), &emerg));
    assert!(mutes(
        &m(&[&format!("fingerprint={}", emerg.fingerprint)]),
        &emerg
    ));
    assert!(!mutes(&m(&["id=ALR-3"]), &emerg), "another alert's id");
    assert!(mutes(&m(&["monitor=security", "level=emergency"]), &emerg));
}
