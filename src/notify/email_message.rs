//! What the `email` channel sends: the subject (`[CRITICAL] <title>`, `[CRITICAL] 3 alerts
//! from <monitor>`, `[RESOLVED] ...`), a multipart/alternative message with a plain-text
//! and an HTML body (everything from alerts is untrusted: control characters removed,
//! HTML-escaped), the `X-Secops-Dedup-Key` header and a `Message-ID` that is the same for
//! every redelivery of one notification.

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use crate::alerts::{AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind};

/// The header carrying the notification's dedup key (the webhook's header name too).
pub const DEDUP_HEADER: &str = "X-Secops-Dedup-Key";
/// At most this many alerts are written out in one message; the rest are counted.
pub const MAX_LISTED: usize = 50;
/// Subjects are cut to this many characters.
const SUBJECT_MAX: usize = 200;
/// Each untrusted field (title, summary, label value) is cut to this many characters.
const FIELD_MAX: usize = 2_000;

/// The subject: the level (or `RESOLVED`) in brackets, then the title of a single alert or
/// the count and monitor of a group.
pub fn subject(body: &NotificationBody) -> String {
    if super::digest::is_digest(body) {
        return clean(&super::digest::subject(body), SUBJECT_MAX);
    }
    let tag = match body.kind {
        NotificationKind::Resolved => "RESOLVED".to_string(),
        _ => top_level(body).as_str().to_ascii_uppercase(),
    };
    if let Some(line) = super::escalation_line(body) {
        return clean(&format!("[{tag}] {line}"), SUBJECT_MAX);
    }
    let what = match body.alerts.as_slice() {
        [] => format!("notification {}", body.dedup_key),
        [one] => one.title.clone(),
        many => {
            let monitor = &many[0].monitor;
            format!("{} alerts from {monitor}", many.len())
        }
    };
    let repeat = if body.kind == NotificationKind::Repeat {
        " (still firing)"
    } else {
        ""
    };
    clean(&format!("[{tag}] {what}{repeat}"), SUBJECT_MAX)
}

/// The highest level in the notification (info when it holds no alert).
fn top_level(body: &NotificationBody) -> Level {
    body.alerts
        .iter()
        .map(|a| a.level)
        .max()
        .unwrap_or(Level::Info)
}

/// One line of untrusted text: printable characters only (any script), whitespace runs as
/// one space, at most `max` characters.
fn clean(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if n >= max {
            out.push('…');
            break;
        }
        if space {
            out.push(' ');
            n += 1;
            space = false;
        }
        out.push(c);
        n += 1;
    }
    out
}

/// Multi-line untrusted text (a summary): control characters other than newlines removed,
/// at most `max` characters.
fn clean_block(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out.trim().to_string()
}

/// `&`, `<`, `>`, `"` and `'` as HTML entities.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn state_word(a: &AlertSnapshot) -> &'static str {
    match a.state {
        AlertState::Resolved => "RESOLVED",
        AlertState::Firing => "FIRING",
        AlertState::Pending => "PENDING",
    }
}

/// The facts shown for one alert, as (name, value) pairs, values cleaned.
fn facts(a: &AlertSnapshot) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Alert", clean(&a.id, 64)),
        ("Level", a.level.as_str().to_string()),
        ("State", a.state.as_str().to_string()),
        ("Monitor", clean(&a.monitor, 200)),
        ("Code", clean(&a.code, 200)),
        ("Since", clean(&a.started_at, 64)),
    ];
    if let Some(r) = &a.resolved_at {
        f.push(("Resolved at", clean(r, 64)));
    }
    if let Some(v) = &a.value {
        f.push(("Value", clean(v, 200)));
    }
    if !a.labels.is_empty() {
        let labels: Vec<String> = a
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", clean(k, 100), clean(v, 200)))
            .collect();
        f.push(("Labels", clean(&labels.join(", "), FIELD_MAX)));
    }
    if let Some(r) = &a.runbook {
        f.push(("Runbook", clean(r, 500)));
    }
    f.push(("Episode", clean(&a.episode, 100)));
    f
}

/// The plain-text body.
pub fn plain_body(body: &NotificationBody) -> String {
    if super::digest::is_digest(body) {
        return super::digest::text(body);
    }
    let mut out = String::new();
    out.push_str(&subject(body));
    out.push_str("\n\n");
    for a in body.alerts.iter().take(MAX_LISTED) {
        out.push_str(&format!(
            "{} {}: {}\n",
            state_word(a),
            a.level.as_str().to_ascii_uppercase(),
            clean(&a.title, FIELD_MAX)
        ));
        let summary = clean_block(&a.summary, FIELD_MAX);
        if !summary.is_empty() {
            out.push_str(&summary);
            out.push('\n');
        }
        for (k, v) in facts(a) {
            out.push_str(&format!("  {k}: {v}\n"));
        }
        out.push('\n');
    }
    if body.alerts.len() > MAX_LISTED {
        out.push_str(&format!(
            "... and {} more alerts (see alert_status)\n\n",
            body.alerts.len() - MAX_LISTED
        ));
    }
    out.push_str(&format!(
        "Dedup key: {}\n-- \nsent by secops-mcp ({} notification)\n",
        clean(&body.dedup_key, 200),
        body.kind.as_str()
    ));
    out
}

/// The HTML body: the same content, every value escaped.
pub fn html_body(body: &NotificationBody) -> String {
    if super::digest::is_digest(body) {
        return super::digest::html(body);
    }
    let e = |s: &str| html_escape(s);
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body style=\"font-family: sans-serif\">\n",
    );
    out.push_str(&format!("<h2>{}</h2>\n", e(&subject(body))));
    for a in body.alerts.iter().take(MAX_LISTED) {
        out.push_str(&format!(
            "<h3>{} {}: {}</h3>\n",
            state_word(a),
            a.level.as_str().to_ascii_uppercase(),
            e(&clean(&a.title, FIELD_MAX))
        ));
        let summary = clean_block(&a.summary, FIELD_MAX);
        if !summary.is_empty() {
            out.push_str(&format!("<p>{}</p>\n", e(&summary).replace('\n', "<br>\n")));
        }
        out.push_str("<table>\n");
        for (k, v) in facts(a) {
            out.push_str(&format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
                e(k),
                e(&v)
            ));
        }
        out.push_str("</table>\n");
    }
    if body.alerts.len() > MAX_LISTED {
        out.push_str(&format!(
            "<p>... and {} more alerts (see alert_status)</p>\n",
            body.alerts.len() - MAX_LISTED
        ));
    }
    out.push_str(&format!(
        "<p><small>Dedup key: {}<br>sent by secops-mcp ({} notification)</small></p>\n</body></html>\n",
        e(&clean(&body.dedup_key, 200)),
        body.kind.as_str()
    ));
    out
}

/// The `Message-ID`: a digest of the notification itself (so a redelivery has the same
/// one and mail clients show it once) at the sender's domain.
pub fn message_id(body: &NotificationBody, from: &Mailbox) -> String {
    let json = serde_json::to_vec(body).unwrap_or_default();
    let digest = hex::encode(&Sha256::digest(&json)[..16]);
    format!("<secops.{digest}@{}>", from.email.domain())
}

/// A channel's rendered templates (notify::template): the subject, made one line of at most
/// 200 characters here (no header injection), and the plain body, which makes the message a
/// single text/plain part (templates are plain text only; no HTML part is templated).
#[derive(Debug, Default, Clone)]
pub struct Rendered {
    pub subject: Option<String>,
    pub plain: Option<String>,
}

/// The longest templated plain body (characters).
pub const TEMPLATE_BODY_MAX: usize = 100_000;

/// The whole message, ready for the SMTP envelope.
pub fn build(
    body: &NotificationBody,
    from: &Mailbox,
    to: &[Mailbox],
    rendered: &Rendered,
) -> Result<Message, lettre::error::Error> {
    let subject = match &rendered.subject {
        Some(s) => super::template::one_line(s, SUBJECT_MAX),
        None => subject(body),
    };
    let mut b = Message::builder()
        .from(from.clone())
        .subject(subject)
        .message_id(Some(message_id(body, from)))
        .user_agent(concat!("secops-mcp/", env!("CARGO_PKG_VERSION")).to_string())
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(DEDUP_HEADER),
            clean(&body.dedup_key, 200),
        ));
    for t in to {
        b = b.to(t.clone());
    }
    if let Some(p) = &rendered.plain {
        return b.singlepart(SinglePart::plain(super::slack::cut(p, TEMPLATE_BODY_MAX)));
    }
    b.multipart(
        MultiPart::alternative()
            .singlepart(SinglePart::plain(plain_body(body)))
            .singlepart(SinglePart::html(html_body(body))),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn alert(n: u32, level: Level, state: AlertState, title: &str) -> AlertSnapshot {
        AlertSnapshot {
            id: format!("ALR-{n}"),
            fingerprint: "fp".into(),
            episode: format!("fp-{n}"),
            monitor: "certs".into(),
            code: "cert_expiring".into(),
            level,
            state,
            title: title.into(),
            summary: "line one\nline <two>".into(),
            labels: BTreeMap::from([("target".into(), "mail.example".into())]),
            value: Some("5 days".into()),
            started_at: "2026-01-01T00:00:00Z".into(),
            resolved_at: None,
            runbook: None,
        }
    }

    fn body(kind: NotificationKind, alerts: Vec<AlertSnapshot>) -> NotificationBody {
        NotificationBody {
            kind,
            group_key: "certs".into(),
            group_labels: BTreeMap::new(),
            escalation: None,
            dedup_key: "fp-1".into(),
            alerts,
            digest: vec![],
        }
    }

    #[test]
    fn subjects_carry_level_or_resolved_and_the_title_or_the_count() {
        let one = body(
            NotificationKind::Firing,
            vec![alert(
                1,
                Level::Critical,
                AlertState::Firing,
                "Cert\r\nBcc: x",
            )],
        );
        assert_eq!(subject(&one), "[CRITICAL] Cert Bcc: x");
        let group = body(
            NotificationKind::Firing,
            vec![
                alert(1, Level::Warning, AlertState::Firing, "a"),
                alert(2, Level::Emergency, AlertState::Firing, "b"),
                alert(3, Level::Info, AlertState::Firing, "c"),
            ],
        );
        assert_eq!(subject(&group), "[EMERGENCY] 3 alerts from certs");
        let resolved = body(
            NotificationKind::Resolved,
            vec![alert(1, Level::Critical, AlertState::Resolved, "Cert ok")],
        );
        assert_eq!(subject(&resolved), "[RESOLVED] Cert ok");
        let long = body(
            NotificationKind::Repeat,
            vec![alert(1, Level::Info, AlertState::Firing, &"x".repeat(500))],
        );
        let s = subject(&long);
        assert!(
            s.starts_with("[INFO] xxx") && s.chars().count() <= SUBJECT_MAX + 1,
            "{s}"
        );
    }

    #[test]
    fn html_escapes_everything_from_alerts() {
        let b = body(
            NotificationKind::Firing,
            vec![alert(
                1,
                Level::Critical,
                AlertState::Firing,
                "<script>alert('x')</script> & co",
            )],
        );
        let html = html_body(&b);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"),
            "{html}"
        );
        assert!(html.contains("line one<br>\nline &lt;two&gt;"), "{html}");
        let plain = plain_body(&b);
        assert!(plain.contains("FIRING CRITICAL: <script>"), "{plain}");
        assert!(plain.contains("  Value: 5 days\n"), "{plain}");
    }

    #[test]
    fn the_message_id_is_stable_per_notification() {
        let from: Mailbox = "Secops <alerts@example.org>".parse().unwrap();
        let a = body(
            NotificationKind::Firing,
            vec![alert(1, Level::Critical, AlertState::Firing, "t")],
        );
        let mut b = a.clone();
        assert_eq!(message_id(&a, &from), message_id(&b, &from));
        b.kind = NotificationKind::Resolved;
        assert_ne!(message_id(&a, &from), message_id(&b, &from));
        assert!(message_id(&a, &from).ends_with("@example.org>"));
        let msg = build(
            &a,
            &from,
            &["ops@example.org".parse().unwrap()],
            &Rendered::default(),
        )
        .unwrap();
        let text = String::from_utf8(msg.formatted()).unwrap();
        assert!(text.contains("X-Secops-Dedup-Key: fp-1\r\n"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
    }

    #[test]
    fn a_templated_subject_is_one_line_and_a_templated_body_is_plain_text_only() {
        let from: Mailbox = "alerts@example.org".parse().unwrap();
        let b = body(
            NotificationKind::Firing,
            vec![alert(1, Level::Critical, AlertState::Firing, "Disk")],
        );
        let rendered = Rendered {
            subject: Some(format!("Disk\r\nBcc: evil@example.org {}", "z".repeat(300))),
            plain: Some("<b>literal</b> text".into()),
        };
        let msg = build(&b, &from, &["ops@example.org".parse().unwrap()], &rendered).unwrap();
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        let subject = msg.headers().get_raw("Subject").unwrap().to_string();
        assert!(
            subject.starts_with("Disk Bcc: evil@example.org zzz"),
            "{subject}"
        );
        assert_eq!(subject.chars().count(), SUBJECT_MAX, "{subject}");
        assert!(raw.contains("<b>literal</b> text"), "{raw}");
        assert!(
            !raw.contains("text/html") && !raw.contains("multipart"),
            "{raw}"
        );
    }
}
