//! Unit tests of notify::template: rendering, strict fields at load, untrusted text, one-line subjects.

use super::*;

#[test]
fn a_template_renders_the_documented_fields() {
    let t = MessageTemplate::compile(
        "{{ alert.id }} {{ alert.level | upper }} {{ kind }}: {{ alert.title }} on \
         {{ alert.labels.agent }} ({{ count }} of {{ monitor }}, value {{ alert.value }}, \
         since {{ alert.started_at }}){% if alert.runbook %} {{ alert.runbook }}{% endif %}\
         {% for a in alerts %} [{{ a.id }}]{% endfor %}{{ alert.resolved_at }}{{ alert.link }}",
    )
    .unwrap();
    assert_eq!(
        t.render(&sample()).unwrap(),
        "ALR-1 CRITICAL firing: Sample alert on web-01 (1 of sample-monitor, value 42, since \
         2026-01-01T00:00:00Z) https://runbooks.example/sample [ALR-1]"
    );
}

#[test]
fn a_label_not_every_alert_has_takes_a_default() {
    let t = MessageTemplate::compile(
        "{{ alert.labels.team | default('-') }}{% if alert.labels.agent is defined %} on \
         {{ alert.labels.agent }}{% endif %}",
    )
    .unwrap();
    assert_eq!(t.render(&sample()).unwrap(), "- on web-01");
}

#[test]
fn typos_unknown_filters_and_syntax_errors_are_caught_at_compile() {
    for (src, want) in [
        ("{{ alert.tittle }}", "line 1: undefined value"),
        ("{{ nope }}", "undefined value"),
        ("ok\n{{ alert.title | shout }}", "line 2: unknown filter"),
        ("{% if %}", "line 1: syntax error"),
        ("   ", "is empty"),
    ] {
        let e = MessageTemplate::compile(src).unwrap_err();
        assert!(e.contains(want), "{src}: {e}");
    }
}

#[test]
fn untrusted_alert_text_is_rendered_literally() {
    let t = MessageTemplate::compile("{{ alert.title }} {{ alert.labels.agent }}").unwrap();
    let mut b = sample();
    b.alerts[0].title = "{{ 7 * 7 }} <b>&".into();
    b.alerts[0].labels.insert(
        "agent".into(),
        "{% for x in range(9) %}x{% endfor %}".into(),
    );
    assert_eq!(
        t.render(&b).unwrap(),
        "{{ 7 * 7 }} <b>& {% for x in range(9) %}x{% endfor %}"
    );
}

#[test]
fn a_failing_render_falls_back_to_the_default_text() {
    // Labels differ per alert: a label the sample has may be missing at send time.
    let t = MessageTemplate::compile("{{ alert.labels.agent }}").unwrap();
    let mut b = sample();
    b.alerts[0].labels.clear();
    assert!(t.render(&b).is_err());
    assert_eq!(t.render_or("pager", &b, "default".into()), "default");
    assert_eq!(t.render_or("pager", &sample(), "default".into()), "web-01");
}

#[test]
fn subjects_are_one_line_and_cut() {
    assert_eq!(
        one_line("Alert\r\nBcc: evil@example.org\n\tend  ", 200),
        "Alert Bcc: evil@example.org end"
    );
    let long = "x".repeat(500);
    let s = one_line(&long, 200);
    assert_eq!(s.chars().count(), 200);
    assert!(s.ends_with('…'));
}

#[test]
fn a_runaway_template_runs_out_of_fuel_at_load() {
    let e = MessageTemplate::compile(
        "{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}",
    )
    .unwrap_err();
    assert!(e.contains("fuel"), "{e}");
}

#[test]
fn an_escalation_has_its_line_and_others_an_empty_one() {
    let t = MessageTemplate::compile(
        "{% if escalation %}{{ escalation }}{% else %}{{ kind }}{% endif %}",
    )
    .unwrap();
    let mut body = sample();
    assert_eq!(t.render(&body).unwrap(), "firing");
    body.kind = NotificationKind::Escalation;
    body.escalation = Some(crate::alerts::EscalationNote {
        rule: "critical-15m".into(),
        contact: "Alice".into(),
        role: Some("security lead".into()),
        waited: "for 15 min".into(),
        due_at: "2026-01-01T00:15:00Z".into(),
    });
    assert_eq!(
        t.render(&body).unwrap(),
        "ESCALATED to security lead (Alice): Sample alert unacknowledged for 15 min (rule \
         critical-15m)"
    );
}
