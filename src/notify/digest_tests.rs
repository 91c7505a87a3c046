//! Digest rendering (notify/digest.rs): every channel's form within its provider's limits.

use std::collections::BTreeMap;

use super::*;
use crate::alerts::AlertState;

fn snapshot(i: usize, level: Level) -> AlertSnapshot {
    AlertSnapshot {
        id: format!("ALR-{i}"),
        fingerprint: format!("{i:016x}"),
        episode: format!("{i:016x}-1"),
        monitor: "web".into(),
        code: "endpoint_down".into(),
        level,
        state: if i.is_multiple_of(2) {
            AlertState::Resolved
        } else {
            AlertState::Firing
        },
        title: format!("<b>shop{i}</b> & co is down"),
        summary: "x".repeat(500),
        labels: BTreeMap::new(),
        value: None,
        started_at: "2027-01-15T08:00:00Z".into(),
        resolved_at: None,
        runbook: None,
    }
}

/// A digest of `n` notifications with `per` alerts each.
fn digest(n: usize, per: usize) -> NotificationBody {
    let mut alerts = Vec::new();
    let mut entries = Vec::new();
    for e in 0..n {
        let mine: Vec<AlertSnapshot> = (0..per)
            .map(|k| {
                let level = if e == 3 {
                    Level::Emergency
                } else {
                    Level::Warning
                };
                snapshot(e * per + k + 1, level)
            })
            .collect();
        entries.push(DigestEntry {
            notification: e as i64 + 1,
            kind: if e.is_multiple_of(2) {
                NotificationKind::Firing
            } else {
                NotificationKind::Resolved
            },
            group_key: "web".into(),
            dedup_key: format!("k{e}"),
            created_at: "2027-01-15T08:00:01Z".into(),
            alert_ids: mine.iter().map(|a| a.id.clone()).collect(),
        });
        alerts.extend(mine);
    }
    NotificationBody {
        escalation: None,
        kind: NotificationKind::Digest,
        group_key: "digest/chat".into(),
        group_labels: BTreeMap::from([("channel".to_string(), "chat".to_string())]),
        dedup_key: "digest-chat-7".into(),
        alerts,
        digest: entries,
    }
}

#[test]
fn entries_pair_each_carried_notification_with_its_alerts() {
    let d = digest(3, 2);
    let e = entries(&d);
    assert_eq!(e.len(), 3);
    assert_eq!(
        e[1].1.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["ALR-3", "ALR-4"]
    );
    assert_eq!(e[1].0.kind, NotificationKind::Resolved);
    assert_eq!(counts(&d), "3 notifications (6 alerts, loudest WARNING)");
    let t = text(&d);
    assert!(
        t.starts_with(
            "DIGEST: 3 notifications (6 alerts, loudest WARNING) held back by the rate \
             limit of channel chat\n"
        ),
        "{t}"
    );
    assert!(
        t.contains("2. RESOLVED web at 2027-01-15T08:00:01Z (2 alerts)\n"),
        "{t}"
    );
    assert!(
        t.contains("   ALR-4 [WARNING] resolved: <b>shop4</b> & co is down\n"),
        "{t}"
    );
}

#[test]
fn slack_keeps_to_40000_characters_and_50_blocks() {
    let d = digest(200, 30);
    let p = slack_payload(&d);
    let blocks = p["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), SLACK_BLOCKS_MAX);
    assert!(p["text"].as_str().unwrap().chars().count() <= SLACK_TEXT_MAX);
    for b in &blocks[1..49] {
        let s = b["text"]["text"].as_str().unwrap();
        assert!(s.chars().count() <= 3000, "{}", s.chars().count());
        assert!(!s.contains("<b>"), "mrkdwn escaped: {s}");
    }
    assert_eq!(
        blocks[49]["elements"][0]["text"],
        "…and 152 more notifications: `secops-mcp alerts list`"
    );
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("200 notifications (6000 alerts, loudest EMERGENCY)")
    );
    // A small digest lists everything, nothing cut.
    let small = slack_payload(&digest(2, 1));
    assert_eq!(small["blocks"].as_array().unwrap().len(), 3);
    assert!(small["text"].as_str().unwrap().contains("ALR-2 [WARNING]"));
}

#[test]
fn sms_keeps_the_first_ids_within_1600_characters() {
    let d = digest(400, 2);
    let s = sms_text(&d);
    assert!(s.chars().count() <= SMS_MAX, "{}", s.chars().count());
    assert!(
        s.starts_with(
            "DIGEST 400 notifications (800 alerts, loudest EMERGENCY): ALR-1, ALR-2, ALR-3"
        ),
        "{s}"
    );
    let listed = s.matches("ALR-").count();
    assert!(s.ends_with(&format!(" +{} more", 800 - listed)), "{s}");
    assert_eq!(
        sms_text(&digest(2, 1)),
        "DIGEST 2 notifications (2 alerts, loudest WARNING): ALR-1, ALR-2"
    );
}

#[test]
fn email_webhook_log_and_file_render_a_digest() {
    let d = digest(3, 1);
    assert_eq!(
        crate::notify::email_message::subject(&d),
        "[DIGEST] 3 notifications (3 alerts, loudest WARNING)"
    );
    assert_eq!(crate::notify::email_message::plain_body(&d), text(&d));
    let h = crate::notify::email_message::html_body(&d);
    assert!(h.contains("&lt;b&gt;shop1&lt;/b&gt; &amp; co"), "{h}");
    assert!(!h.contains("<b>shop"), "{h}");
    let am = crate::notify::webhook::alertmanager_payload("hook", &d, "");
    assert_eq!(am["digest"].as_array().unwrap().len(), 3);
    assert_eq!(am["digest"][1]["kind"], "resolved");
    assert_eq!(am["digest"][1]["alert_ids"][0], "ALR-2");
    assert_eq!(am["alerts"].as_array().unwrap().len(), 3);
    let line = crate::notify::log::json_line("log", &d);
    assert_eq!(line["kind"], "digest");
    assert_eq!(line["digest"][2]["notification"], 3);
    // A digest whose entries cannot all fit one file line loses alerts first, then entries.
    let big = digest(50, 4);
    let l = crate::notify::file::bounded_line("f", &big, 4_000).unwrap();
    assert!(l.len() <= 4_000);
    let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
    assert_eq!(v["truncated_alerts"], 200);
    // Not a digest: no `digest` key anywhere.
    let mut plain = digest(1, 1);
    plain.kind = NotificationKind::Firing;
    plain.digest.clear();
    assert!(
        crate::notify::log::json_line("log", &plain)
            .get("digest")
            .is_none()
    );
}
