//! How channels render a digest (kind `digest`: what a channel's rate limit held back,
//! gathered into one notification by the outbox): a heading with the counts and the
//! loudest level, then one entry per carried notification (its kind, its group, its
//! alerts' ids, levels and titles). A digest always uses this default text, never the
//! channel's message template: a template describes one notification's alerts, and a
//! digest must list every carried notification within the provider's limits. Slack: one
//! message, `text` up to 40,000 characters and at most 50 blocks; SMS: the counts and the
//! alert ids, at most 1,600 characters, the first ids kept; email: the subject
//! `[DIGEST] N notifications ...`; webhook, log and file carry the entries as structured
//! data (`digest`).

use serde_json::{Value, json};

use crate::alerts::{AlertSnapshot, DigestEntry, Level, NotificationBody, NotificationKind};

/// Slack's limits for one message.
pub const SLACK_TEXT_MAX: usize = 40_000;
pub const SLACK_BLOCKS_MAX: usize = 50;
const SLACK_SECTION_MAX: usize = 3_000;
const SLACK_HEADER_MAX: usize = 150;
/// Twilio's limit on one message's body.
pub const SMS_MAX: usize = 1_600;
/// Alerts listed per entry in the plain text before "and N more".
const ALERTS_PER_ENTRY: usize = 20;

/// Each carried notification with its own alerts (the body lists them in entry order).
pub fn entries(body: &NotificationBody) -> Vec<(&DigestEntry, &[AlertSnapshot])> {
    let mut at = 0;
    body.digest
        .iter()
        .map(|e| {
            let end = (at + e.alert_ids.len()).min(body.alerts.len());
            let alerts = &body.alerts[at.min(end)..end];
            at = end;
            (e, alerts)
        })
        .collect()
}

fn loudest(body: &NotificationBody) -> Option<Level> {
    body.alerts.iter().map(|a| a.level).max()
}

/// `9 notifications (12 alerts, loudest CRITICAL)`.
pub fn counts(body: &NotificationBody) -> String {
    let n = body.digest.len();
    let mut s = format!("{n} notification{}", if n == 1 { "" } else { "s" });
    let a = body.alerts.len();
    match loudest(body) {
        Some(l) => s.push_str(&format!(
            " ({a} alert{}, loudest {})",
            if a == 1 { "" } else { "s" },
            l.as_str().to_uppercase()
        )),
        None => s.push_str(" (no alerts)"),
    }
    s
}

fn channel(body: &NotificationBody) -> &str {
    body.group_labels
        .get("channel")
        .map(String::as_str)
        .unwrap_or("?")
}

/// The heading: `DIGEST: 9 notifications (12 alerts, loudest CRITICAL) held back by the
/// rate limit of channel chat`.
pub fn heading(body: &NotificationBody) -> String {
    format!(
        "DIGEST: {} held back by the rate limit of channel {}",
        counts(body),
        channel(body)
    )
}

/// The email subject: `[DIGEST] 9 notifications (12 alerts, loudest CRITICAL)`.
pub fn subject(body: &NotificationBody) -> String {
    format!("[DIGEST] {}", counts(body))
}

fn alert_line(a: &AlertSnapshot) -> String {
    format!(
        "{} [{}] {} {}",
        a.id,
        a.level.as_str().to_uppercase(),
        if a.state == crate::alerts::AlertState::Resolved {
            "resolved:"
        } else {
            "firing:"
        },
        one_line(&a.title, 200)
    )
}

fn one_line(s: &str, max: usize) -> String {
    super::template::one_line(s, max)
}

/// One entry's first line: `3. RESOLVED certs at 2026-01-01T00:00:00Z (2 alerts)`.
fn entry_line(i: usize, e: &DigestEntry, alerts: &[AlertSnapshot]) -> String {
    format!(
        "{}. {} {} at {} ({} alert{})",
        i + 1,
        e.kind.as_str().to_uppercase(),
        one_line(&e.group_key, 120),
        e.created_at,
        alerts.len(),
        if alerts.len() == 1 { "" } else { "s" }
    )
}

/// The plain text: the heading, then each entry and its alerts (the email body, the
/// Slack fallback).
pub fn text(body: &NotificationBody) -> String {
    let mut out = heading(body);
    out.push_str("\n\n");
    for (i, (e, alerts)) in entries(body).into_iter().enumerate() {
        out.push_str(&entry_line(i, e, alerts));
        out.push('\n');
        for a in alerts.iter().take(ALERTS_PER_ENTRY) {
            out.push_str("   ");
            out.push_str(&alert_line(a));
            out.push('\n');
        }
        if alerts.len() > ALERTS_PER_ENTRY {
            out.push_str(&format!(
                "   …and {} more\n",
                alerts.len() - ALERTS_PER_ENTRY
            ));
        }
    }
    out.push_str("\nEach alert: `secops-mcp alerts show ID`.\n");
    out
}

/// The HTML part of a digest email (everything escaped).
pub fn html(body: &NotificationBody) -> String {
    let e = super::email_message::html_escape;
    let mut out = format!("<html><body>\n<h2>{}</h2>\n<ol>\n", e(&heading(body)));
    for (entry, alerts) in entries(body) {
        out.push_str(&format!(
            "<li><b>{}</b> {} at {}<ul>\n",
            e(&entry.kind.as_str().to_uppercase()),
            e(&one_line(&entry.group_key, 120)),
            e(&entry.created_at)
        ));
        for a in alerts.iter().take(ALERTS_PER_ENTRY) {
            out.push_str(&format!("<li>{}</li>\n", e(&alert_line(a))));
        }
        if alerts.len() > ALERTS_PER_ENTRY {
            out.push_str(&format!(
                "<li>…and {} more</li>\n",
                alerts.len() - ALERTS_PER_ENTRY
            ));
        }
        out.push_str("</ul></li>\n");
    }
    out.push_str("</ol>\n</body></html>\n");
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack payload: the whole text as the fallback (at most 40,000 characters), a
/// header, one section per carried notification (at most 3,000 characters each) and, when
/// they do not all fit in 50 blocks, a last context block counting the rest.
pub fn slack_payload(body: &NotificationBody) -> Value {
    let cut = super::slack::cut;
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&format!("DIGEST: {}", counts(body)), SLACK_HEADER_MAX), "emoji": true},
    })];
    let all = entries(body);
    // The header and a possible last context block leave 48 sections.
    let room = SLACK_BLOCKS_MAX - 2;
    for (i, (e, alerts)) in all.iter().enumerate().take(room) {
        let mut s = format!("*{}*", esc(&entry_line(i, e, alerts)));
        for a in alerts.iter() {
            let line = format!("\n• {}", esc(&alert_line(a)));
            if s.chars().count() + line.chars().count() > SLACK_SECTION_MAX - 40 {
                s.push_str("\n• …and more: `secops-mcp alerts list`");
                break;
            }
            s.push_str(&line);
        }
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut(&s, SLACK_SECTION_MAX)},
        }));
    }
    if all.len() > room {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!(
                "…and {} more notifications: `secops-mcp alerts list`", all.len() - room
            )}],
        }));
    }
    json!({"text": cut(&esc(&text(body)), SLACK_TEXT_MAX), "blocks": blocks})
}

/// The SMS body: `DIGEST 9 notifications (12 alerts, loudest CRITICAL): ALR-2, ALR-3, ...`,
/// at most 1,600 characters; when the ids do not fit, the first ones are kept and the rest
/// counted (`+5 more`).
pub fn sms_text(body: &NotificationBody) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for a in &body.alerts {
        if !ids.contains(&a.id.as_str()) {
            ids.push(&a.id);
        }
    }
    let head = format!("DIGEST {}: ", counts(body));
    let mut out = head;
    for (i, id) in ids.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let rest = ids.len() - i - 1;
        // Room for this id and, if more follow, the longest "+N more" tail.
        let tail = if rest > 0 {
            format!(" +{} more", ids.len()).len()
        } else {
            0
        };
        if out.chars().count() + sep.len() + id.chars().count() + tail > SMS_MAX {
            out.push_str(&format!(" +{} more", ids.len() - i));
            return super::slack::cut(&out, SMS_MAX);
        }
        out.push_str(sep);
        out.push_str(id);
    }
    super::slack::cut(&out, SMS_MAX)
}

/// Whether `body` is a digest the channels render with this module.
pub fn is_digest(body: &NotificationBody) -> bool {
    body.kind == NotificationKind::Digest
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
