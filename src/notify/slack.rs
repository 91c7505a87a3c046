//! The `slack` channel: one JSON POST to a Slack incoming webhook per notification, a
//! plain `text` fallback (what notifications and old clients show) plus Block Kit `blocks`
//! (title, level, what, where, since when, the link or next step). Slack answers 200 with
//! the body `ok`; anything else is not a delivery (400 `invalid_payload`, 403/404/410 for a
//! revoked hook or channel: failed for good; 429 and 5xx retried, `Retry-After` honoured).
//! The webhook URL is the secret: it never appears in a [`Delivery`], an error or a log.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::http::{Http, provider_url};
use super::template::MessageTemplate;
use super::{Channel, ChannelError, Delivery};
use crate::alerts::{AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind};
use crate::config::Secret;

/// At most this many alerts get their own blocks; the rest are counted.
pub const MAX_ALERT_BLOCKS: usize = 10;
/// Slack's limits: header text 150 characters, section text 3000, a field 2000, the
/// `text` fallback (we keep it well under Slack's 40,000).
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const TEXT_MAX: usize = 3000;
/// Slack's own limit on `text`, for a templated one.
const TEMPLATE_TEXT_MAX: usize = 40_000;

/// A Slack channel's settings.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// The incoming webhook URL (`https://hooks.slack.com/services/...`): a secret.
    pub url: Secret,
    pub timeout_ms: u64,
    /// The `text` fallback and the first alert's section text as a template (escaped for
    /// mrkdwn and cut to Slack's limits); else our own text.
    pub template: Option<MessageTemplate>,
}

/// One configured Slack incoming webhook.
pub struct SlackChannel {
    name: String,
    url: reqwest::Url,
    http: Http,
    template: Option<MessageTemplate>,
}

impl std::fmt::Debug for SlackChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackChannel")
            .field("name", &self.name)
            .field("url", &super::http::MASK)
            .finish()
    }
}

impl SlackChannel {
    pub fn new(name: &str, s: SlackSettings) -> Result<Self, ChannelError> {
        let url = provider_url(name, "url", s.url.expose(), true)?;
        let mut redact = vec![s.url.expose().to_string()];
        if url.path().len() > 1 {
            redact.push(url.path().to_string());
            // Each path segment of a Slack hook (`T…/B…/secret`) is part of the secret.
            redact.extend(
                url.path_segments()
                    .into_iter()
                    .flatten()
                    .filter(|p| p.len() >= 8)
                    .map(str::to_string),
            );
        }
        if let Some(q) = url.query() {
            redact.push(q.to_string());
        }
        let http = Http::new(name, s.timeout_ms, redact)?;
        Ok(Self {
            name: name.to_string(),
            url,
            http,
            template: s.template,
        })
    }

    async fn post(&self, body: &NotificationBody) -> Delivery {
        // A digest always has the default text (notify::digest).
        let digest = super::digest::is_digest(body);
        let mut payload = if digest {
            super::digest::slack_payload(body)
        } else {
            payload(body)
        };
        if let Some(t) = self.template.as_ref().filter(|_| !digest) {
            templated(&mut payload, &t.render_or(&self.name, body, String::new()));
        }
        let req = self
            .http
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.to_string());
        let a = match self.http.exchange(req).await {
            Ok(a) => a,
            Err(d) => return d,
        };
        match a.status {
            200 if a.raw.trim_ascii() == b"ok" => Delivery::Delivered {
                status: Some(200),
                answer: "ok".into(),
            },
            200 => Delivery::Failed {
                status: Some(200),
                reason: format!(
                    "HTTP 200 without Slack's `ok` (is the URL a Slack incoming webhook?): {}",
                    a.excerpt
                ),
            },
            s => Delivery::of_http(s, a.retry_after, a.excerpt),
        }
    }
}

impl Channel for SlackChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "slack"
    }

    fn send<'a>(&'a self, body: &'a NotificationBody) -> BoxFuture<'a, Delivery> {
        Box::pin(self.post(body))
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped (they start links and mentions).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters, an ellipsis when cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn marker(level: Level) -> &'static str {
    match level {
        Level::Info => ":information_source:",
        Level::Warning => ":warning:",
        Level::Critical => ":red_circle:",
        Level::Emergency => ":rotating_light:",
    }
}

/// What a notification of this kind says about an alert ("FIRING", "RESOLVED", ...).
pub(crate) fn verb(kind: NotificationKind, a: &AlertSnapshot) -> &'static str {
    match kind {
        NotificationKind::Test => "TEST",
        NotificationKind::Acknowledged => "ACKNOWLEDGED",
        NotificationKind::Escalation if a.state != AlertState::Resolved => "ESCALATED",
        _ if a.state == AlertState::Resolved => "RESOLVED",
        NotificationKind::Repeat => "STILL FIRING",
        _ => "FIRING",
    }
}

/// Where the alert is: its labels but the monitor's bookkeeping.
pub(crate) fn location(a: &AlertSnapshot) -> String {
    let parts: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if parts.is_empty() {
        format!("monitor {}", a.monitor)
    } else {
        format!("{} (monitor {})", parts.join(", "), a.monitor)
    }
}

/// The runbook, else how to look at it and acknowledge it.
pub(crate) fn next_step(a: &AlertSnapshot) -> String {
    match &a.runbook {
        Some(r) => format!("Runbook: {r}"),
        None if a.state == AlertState::Resolved => {
            format!("Timeline: `secops-mcp alerts show {}`", a.id)
        }
        None => format!(
            "Next: `secops-mcp alerts show {id}`, then `secops-mcp alerts ack {id}` (or alert_update)",
            id = a.id
        ),
    }
}

fn alert_blocks(kind: NotificationKind, a: &AlertSnapshot) -> Vec<Value> {
    let since = match (&a.resolved_at, a.state) {
        (Some(r), AlertState::Resolved) => format!("{} until {r}", a.started_at),
        _ => a.started_at.clone(),
    };
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": cut(&format!("*Level*\n{}", a.level.as_str()), FIELD_MAX)}),
        json!({"type": "mrkdwn", "text": cut(&format!("*Alert*\n{} ({})", esc(&a.id), esc(&a.code)), FIELD_MAX)}),
        json!({"type": "mrkdwn", "text": cut(&format!("*Where*\n{}", esc(&location(a))), FIELD_MAX)}),
        json!({"type": "mrkdwn", "text": cut(&format!("*Since*\n{since}"), FIELD_MAX)}),
    ];
    if let Some(v) = &a.value {
        fields.push(
            json!({"type": "mrkdwn", "text": cut(&format!("*Value*\n{}", esc(v)), FIELD_MAX)}),
        );
    }
    vec![
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut(&format!(
                "{} *{}: {}*\n{}",
                marker(a.level),
                verb(kind, a),
                esc(&a.title),
                esc(&a.summary)
            ), SECTION_MAX)},
            "fields": fields,
        }),
        json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": cut(&esc(&next_step(a)), FIELD_MAX)}],
        }),
    ]
}

/// A rendered template in the payload: the `text` fallback (cut to Slack's 40,000) and the
/// first alert's section (3,000), escaped for mrkdwn. Empty (the template failed) changes
/// nothing.
pub fn templated(payload: &mut Value, rendered: &str) {
    let rendered = rendered.trim();
    if rendered.is_empty() {
        return;
    }
    let text = esc(rendered);
    payload["text"] = json!(cut(&text, TEMPLATE_TEXT_MAX));
    if let Some(section) = payload["blocks"]
        .as_array_mut()
        .and_then(|b| b.iter_mut().find(|b| b["type"] == "section"))
    {
        section["text"]["text"] = json!(cut(&text, SECTION_MAX));
    }
}

/// The webhook payload: `text` (the fallback) and `blocks`.
pub fn payload(body: &NotificationBody) -> Value {
    let n = body.alerts.len();
    let Some(first) = body.alerts.first() else {
        return json!({"text": format!("secops-mcp: empty notification ({})", body.group_key)});
    };
    let loudest = body
        .alerts
        .iter()
        .map(|a| a.level)
        .max()
        .unwrap_or(first.level);
    let header = if n == 1 {
        format!(
            "{} {}: {}",
            loudest.as_str().to_uppercase(),
            verb(body.kind, first),
            first.title
        )
    } else {
        format!(
            "{} {}: {n} alerts of {}",
            loudest.as_str().to_uppercase(),
            verb(body.kind, first),
            body.group_key
        )
    };
    let mut text = format!(
        "[{}] {} {}: {} ({})",
        first.level.as_str().to_uppercase(),
        first.id,
        verb(body.kind, first),
        first.title,
        first.summary
    );
    // An escalation leads with whom it is for.
    let header = match super::escalation_line(body) {
        Some(line) => {
            text = format!(
                "[{}] {} {line}",
                first.level.as_str().to_uppercase(),
                first.id
            );
            format!("{} {line}", loudest.as_str().to_uppercase())
        }
        None => header,
    };
    if n > 1 {
        text.push_str(&format!(" and {} more", n - 1));
    }
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&header, HEADER_MAX), "emoji": true},
    })];
    for (i, a) in body.alerts.iter().take(MAX_ALERT_BLOCKS).enumerate() {
        if i > 0 {
            blocks.push(json!({"type": "divider"}));
        }
        blocks.extend(alert_blocks(body.kind, a));
    }
    if n > MAX_ALERT_BLOCKS {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!(
                "…and {} more: `secops-mcp alerts list`", n - MAX_ALERT_BLOCKS
            )}],
        }));
    }
    json!({"text": cut(&esc(&text), TEXT_MAX), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slack(url: &str) -> Result<SlackChannel, ChannelError> {
        SlackChannel::new(
            "chat",
            SlackSettings {
                url: Secret::new(url),
                timeout_ms: 1000,
                template: None,
            },
        )
    }

    #[test]
    fn the_url_is_checked_and_never_shown() {
        let e = slack("http://hooks.slack.example/services/T000/B000/S3CRETS3CRET").unwrap_err();
        assert!(e.to_string().contains("url must use https"), "{e}");
        assert!(!e.to_string().contains("S3CRET"), "{e}");
        let c = slack("https://hooks.slack.com/services/T000/B000/S3CRETS3CRET").unwrap();
        assert!(!format!("{c:?}").contains("S3CRET"));
        assert_eq!(
            c.http
                .scrub("at /services/T000/B000/S3CRETS3CRET and S3CRETS3CRET"),
            "at *** and ***"
        );
    }

    #[test]
    fn a_template_sets_the_text_and_the_first_section_escaped_and_cut() {
        let body = crate::notify::template::sample();
        let mut p = payload(&body);
        let header = p["blocks"][0].clone();
        templated(&mut p, &format!("<!channel> {}", "y".repeat(50_000)));
        assert!(
            p["text"]
                .as_str()
                .unwrap()
                .starts_with("&lt;!channel&gt; yyy")
        );
        assert_eq!(
            p["text"].as_str().unwrap().chars().count(),
            TEMPLATE_TEXT_MAX
        );
        let section = p["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(section.chars().count(), SECTION_MAX);
        assert_eq!(p["blocks"][0], header);
        // A failed render (empty) leaves our own payload.
        let mut q = payload(&body);
        templated(&mut q, "  ");
        assert_eq!(q, payload(&body));
    }

    #[test]
    fn escaping_and_cutting_keep_slacks_limits() {
        assert_eq!(esc("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
