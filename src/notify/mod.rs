//! Notification channels: one file per channel behind the small [`Channel`] trait. A
//! channel renders a [`NotificationBody`] for its receiver, sends it once, and says how it
//! went ([`Delivery`]); retries, backoff and rate limits are the outbox's, not a channel's.
//! Only the outbox calls a channel. A channel never puts its URL or secrets in a `Delivery`.

pub mod digest;
pub mod email;
pub mod email_message;
pub mod file;
pub(crate) mod http;
pub mod log;
pub mod pagerduty;
pub mod slack;
pub mod sms;
pub mod template;
pub mod webhook;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::alerts::{NotificationBody, NotificationKind};

pub use email::{EmailChannel, EmailSettings, TlsMode};
pub use file::{FileChannel, FileSettings};
pub use log::LogChannel;
pub use pagerduty::{PagerDutyChannel, PagerDutySettings};
pub use slack::{SlackChannel, SlackSettings};
pub use sms::{SmsChannel, SmsSettings};
pub use webhook::{SIGNATURE_HEADER, WebhookChannel, WebhookSettings};

/// A channel's settings cannot work: names the channel and the setting, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel {channel}: {reason}")]
pub struct ChannelError {
    pub channel: String,
    pub reason: String,
}

impl ChannelError {
    pub fn new(channel: &str, reason: impl Into<String>) -> Self {
        Self {
            channel: channel.to_string(),
            reason: reason.into(),
        }
    }
}

/// How one delivery attempt went.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The receiver took it (`status`: the HTTP status, when there is one; `answer`: a
    /// short, sanitised excerpt of what it said).
    Delivered { status: Option<u16>, answer: String },
    /// Try again later (timeouts, 5xx, 429), no sooner than `after` when the receiver said
    /// so (`Retry-After`).
    Retry {
        status: Option<u16>,
        reason: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help (other 4xx, a refused configuration): dead-letter it.
    Failed { status: Option<u16>, reason: String },
}

impl Delivery {
    /// The same outcome with its text (the answer, or the reason) passed through `f`.
    pub fn map_text(self, f: impl FnOnce(String) -> String) -> Delivery {
        match self {
            Delivery::Delivered { status, answer } => Delivery::Delivered {
                status,
                answer: f(answer),
            },
            Delivery::Retry {
                status,
                reason,
                after,
            } => Delivery::Retry {
                status,
                reason: f(reason),
                after,
            },
            Delivery::Failed { status, reason } => Delivery::Failed {
                status,
                reason: f(reason),
            },
        }
    }

    /// The shared classification of an HTTP answer: 2xx delivered; 5xx, 408 and 429 retried
    /// (honouring `Retry-After`); other statuses failed for good.
    pub fn of_http(status: u16, retry_after: Option<Duration>, answer: String) -> Delivery {
        match status {
            200..=299 => Delivery::Delivered {
                status: Some(status),
                answer,
            },
            408 | 429 | 500..=599 => Delivery::Retry {
                status: Some(status),
                reason: format!("HTTP {status}: {answer}"),
                after: retry_after,
            },
            _ => Delivery::Failed {
                status: Some(status),
                reason: format!("HTTP {status}: {answer}"),
            },
        }
    }
}

/// Whom an escalation row is for: a `[[contacts]]` entry as the outbox hands it to a
/// channel. Email sends To the contact's address, sms to their phone, PagerDuty with their
/// routing key; the other kinds send to their usual target and name the contact in the
/// message (the body's `escalation`). The routing key is a [`Secret`](crate::config::Secret):
/// never in a body, the store or a [`Delivery`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    pub name: String,
    pub role: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub pagerduty_routing_key: Option<crate::config::Secret>,
}

impl Recipient {
    /// "security lead (Alice)", or the name alone.
    pub fn shown(&self) -> String {
        match &self.role {
            Some(r) => format!("{r} ({})", self.name),
            None => self.name.clone(),
        }
    }
}

/// The line every channel leads an escalation with: "ESCALATED to security lead (Alice):
/// `<title>` unacknowledged for 15 min (rule critical-15m)". None for other notifications.
pub fn escalation_line(body: &NotificationBody) -> Option<String> {
    let e = body.escalation.as_ref()?;
    let title = body.alerts.first().map_or("", |a| a.title.as_str());
    let who = match &e.role {
        Some(r) => format!("{r} ({})", e.contact),
        None => e.contact.clone(),
    };
    Some(format!(
        "ESCALATED to {who}: {title} unacknowledged {} (rule {})",
        e.waited, e.rule
    ))
}

/// A delivery for a contact the channel cannot address (a contact without the address
/// the channel's kind needs): failed for good, naming the contact and what is missing.
pub fn unaddressable(to: &Recipient, kind: &str, missing: &str) -> Delivery {
    Delivery::Failed {
        status: None,
        reason: format!(
            "contact {} has no {missing}, which a {kind} channel needs",
            to.name
        ),
    }
}

/// One configured channel (a webhook, the log, a file, ...).
pub trait Channel: Send + Sync {
    /// The channel's configured name (what routing refers to).
    fn name(&self) -> &str;
    /// Its kind (`webhook`, `log`, `file`, ...).
    fn kind(&self) -> &'static str;
    /// Whether the channel acts on notifications of this kind. By default every kind but
    /// `acknowledged` (only a channel with its own incident state, PagerDuty, takes
    /// acknowledgements). The outbox never calls `send` with a kind the channel does not
    /// want: it records the row as delivered with "not sent".
    fn wants(&self, kind: NotificationKind) -> bool {
        kind != NotificationKind::Acknowledged
    }
    /// Send one notification once, within the channel's own timeout.
    fn send<'a>(&'a self, body: &'a NotificationBody) -> BoxFuture<'a, Delivery>;
    /// Send one notification to `to` (an escalation's contact) instead of the channel's
    /// configured recipients. By default the channel's usual target (the contact is named
    /// in the body's `escalation`); email, sms and pagerduty address the contact.
    fn send_to<'a>(
        &'a self,
        body: &'a NotificationBody,
        to: Option<&'a Recipient>,
    ) -> BoxFuture<'a, Delivery> {
        let _ = to;
        self.send(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_leads_an_escalation_with_who_was_told() {
        let mut body = template::sample();
        assert_eq!(escalation_line(&body), None);
        body.kind = NotificationKind::Escalation;
        body.escalation = Some(crate::alerts::EscalationNote {
            rule: "critical-15m".into(),
            contact: "Alice".into(),
            role: Some("security lead".into()),
            waited: "for 15 min".into(),
            due_at: "2026-01-01T00:15:00Z".into(),
        });
        let title = body.alerts[0].title.clone();
        let line = format!(
            "ESCALATED to security lead (Alice): {title} unacknowledged for 15 min (rule \
             critical-15m)"
        );
        assert_eq!(escalation_line(&body).as_deref(), Some(line.as_str()));
        let slack = slack::payload(&body);
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .contains("ESCALATED to security lead (Alice)"),
            "{slack}"
        );
        assert!(
            slack["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("ESCALATED to security lead (Alice)"),
            "{slack}"
        );
        assert!(
            sms::message(&body).contains(&line),
            "{}",
            sms::message(&body)
        );
        assert!(email_message::subject(&body).contains("ESCALATED to security lead (Alice)"));
        let log = log::json_line("log", &body);
        assert_eq!(log["escalation"]["contact"], "Alice");
        assert_eq!(log["message"], line.as_str());
        let to = Recipient {
            name: "Bob".into(),
            role: None,
            email: None,
            phone: None,
            pagerduty_routing_key: None,
        };
        assert_eq!(to.shown(), "Bob");
        match unaddressable(&to, "sms", "phone number") {
            Delivery::Failed { reason, .. } => {
                assert_eq!(
                    reason,
                    "contact Bob has no phone number, which a sms channel needs"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn http_answers_are_classified_like_alertmanager_does() {
        assert!(matches!(
            Delivery::of_http(204, None, String::new()),
            Delivery::Delivered { .. }
        ));
        for s in [408, 429, 500, 502, 503] {
            assert!(
                matches!(
                    Delivery::of_http(s, None, String::new()),
                    Delivery::Retry { .. }
                ),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 410, 413] {
            assert!(
                matches!(
                    Delivery::of_http(s, None, String::new()),
                    Delivery::Failed { .. }
                ),
                "{s}"
            );
        }
        let after = Some(Duration::from_secs(7));
        assert_eq!(
            Delivery::of_http(429, after, "slow down".into()),
            Delivery::Retry {
                status: Some(429),
                reason: "HTTP 429: slow down".into(),
                after
            }
        );
    }
}
