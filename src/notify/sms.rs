//! The `sms` channel: Twilio's Messages API (`POST {base_url}/2010-04-01/Accounts/{sid}/
//! Messages.json`, a form with `To`, `From` or `MessagingServiceSid` and `Body`, HTTP Basic
//! auth with the account SID and the auth token), one request per recipient. The body
//! starts with the alert's id and level and is cut to Twilio's 1,600 characters. 201 is a
//! delivery; Twilio's error answers (`{code, message, more_info, status}`) are shown as code
//! and message; 429 and 5xx are retried, other 4xx (21211 invalid `To`, 401 auth) are not.
//! A notification is delivered only when every recipient got it; otherwise the reason names
//! the recipients (by position and last digits) that did not, and a retry sends to every
//! recipient again (Twilio has no idempotency key, so those already reached get it twice).
//! The auth token never appears in a [`Delivery`], an error or a log.

use futures::future::BoxFuture;

use super::http::{Http, combine, provider_url};
use super::slack::{cut, verb};
use super::template::MessageTemplate;
use super::{Channel, ChannelError, Delivery, Recipient};
use crate::alerts::NotificationBody;
use crate::config::Secret;

/// Twilio's limit on one message's body (characters).
pub const BODY_MAX: usize = 1600;
/// At most this many recipients per channel.
pub const MAX_RECIPIENTS: usize = 20;

/// An SMS channel's settings.
#[derive(Debug, Clone)]
pub struct SmsSettings {
    /// `AC` and 32 hex digits.
    pub account_sid: String,
    pub auth_token: Secret,
    /// The sending number (E.164), or else a Messaging Service (`MG` and 32 hex digits).
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// E.164 numbers.
    pub to: Vec<String>,
    /// `https://api.twilio.com` (http only to a loopback host).
    pub base_url: String,
    pub timeout_ms: u64,
    /// The Body as a template (else [`message`]); cut to [`BODY_MAX`], the alert id first.
    pub template: Option<MessageTemplate>,
}

/// One configured Twilio sender.
pub struct SmsChannel {
    name: String,
    endpoint: reqwest::Url,
    account_sid: String,
    auth_token: Secret,
    sender: (&'static str, String),
    to: Vec<String>,
    http: Http,
    template: Option<MessageTemplate>,
}

impl std::fmt::Debug for SmsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsChannel")
            .field("name", &self.name)
            .field("account_sid", &self.account_sid)
            .field("to", &self.to.len())
            .finish()
    }
}

/// `+` then 2 to 15 digits, the first not 0 (ITU-T E.164).
pub fn is_e164(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

/// A Twilio SID: two letters and 32 lower-case hex digits.
fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34
        && s.starts_with(prefix)
        && s[2..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// A recipient as we name it in reasons: its position and last four digits.
fn who(i: usize, number: &str) -> String {
    let tail = &number[number.len().saturating_sub(4)..];
    format!("to[{i}] (…{tail})")
}

impl SmsChannel {
    pub fn new(name: &str, s: SmsSettings) -> Result<Self, ChannelError> {
        let err = |reason: String| ChannelError::new(name, reason);
        if !is_sid(&s.account_sid, "AC") {
            return Err(err(
                "account_sid must be `AC` followed by 32 lower-case hex digits".into(),
            ));
        }
        if s.auth_token.expose().trim().is_empty() {
            return Err(err("the auth token is empty".into()));
        }
        let sender = match (&s.from, &s.messaging_service_sid) {
            (Some(_), Some(_)) => {
                return Err(err("set `from` or `messaging_service_sid`, not both".into()));
            }
            (None, None) => {
                return Err(err(
                    "an sms channel needs `from` (an E.164 number) or `messaging_service_sid`"
                        .into(),
                ));
            }
            (Some(f), None) if is_e164(f) => ("From", f.clone()),
            (Some(_), None) => {
                return Err(err(
                    "from must be an E.164 number: `+` and 2 to 15 digits, e.g. `+15005550006`"
                        .into(),
                ));
            }
            (None, Some(m)) if is_sid(m, "MG") => ("MessagingServiceSid", m.clone()),
            (None, Some(_)) => {
                return Err(err(
                    "messaging_service_sid must be `MG` followed by 32 lower-case hex digits"
                        .into(),
                ));
            }
        };
        if s.to.is_empty() || s.to.len() > MAX_RECIPIENTS {
            return Err(err(format!(
                "to must list 1 to {MAX_RECIPIENTS} E.164 numbers"
            )));
        }
        for (i, n) in s.to.iter().enumerate() {
            if !is_e164(n) {
                return Err(err(format!(
                    "to[{i}] `{}` is not an E.164 number (`+` and 2 to 15 digits, e.g. \
                     `+15005550006`)",
                    crate::util::sanitize_untrusted(n.as_bytes(), 24)
                )));
            }
            if s.to[..i].contains(n) {
                return Err(err(format!("to[{i}] repeats an earlier number")));
            }
        }
        let base = provider_url(name, "base_url", &s.base_url, false)?;
        let endpoint = base
            .join(&format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                base.path().trim_end_matches('/'),
                s.account_sid
            ))
            .map_err(|e| err(format!("base_url cannot take the Messages path ({e})")))?;
        let http = Http::new(name, s.timeout_ms, vec![s.auth_token.expose().to_string()])?;
        Ok(Self {
            name: name.to_string(),
            endpoint,
            account_sid: s.account_sid,
            auth_token: s.auth_token,
            sender,
            to: s.to,
            http,
            template: s.template,
        })
    }

    async fn send_one(&self, to: &str, text: &str) -> Delivery {
        let form = [("To", to), (self.sender.0, &self.sender.1), ("Body", text)];
        let req = self
            .http
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&form);
        let a = match self.http.exchange(req).await {
            Ok(a) => a,
            Err(d) => return d,
        };
        let json = a.json();
        let said = match &json {
            Some(v) if (200..300).contains(&a.status) => format!(
                "{} {}",
                v["sid"].as_str().unwrap_or("-"),
                v["status"].as_str().unwrap_or("-")
            ),
            Some(v) if v.get("code").is_some() || v.get("message").is_some() => format!(
                "Twilio error {}: {}",
                v["code"],
                v["message"].as_str().unwrap_or("-")
            ),
            _ => String::from_utf8_lossy(&a.raw).into_owned(),
        };
        Delivery::of_http(a.status, a.retry_after, self.http.excerpt(said.as_bytes()))
    }

    async fn send_all(&self, body: &NotificationBody, contact: Option<&Recipient>) -> Delivery {
        let text = match &self.template {
            _ if super::digest::is_digest(body) => super::digest::sms_text(body),
            Some(t) => templated(body, &t.render_or(&self.name, body, message(body))),
            None => message(body),
        };
        // An escalation goes to its contact's phone alone.
        if let Some(r) = contact {
            let Some(phone) = r.phone.as_deref() else {
                return super::unaddressable(r, "sms", "phone number");
            };
            let part = format!(
                "contact {} (…{})",
                r.name,
                &phone[phone.len().saturating_sub(4)..]
            );
            return combine(vec![(part, self.send_one(phone, &text).await)]);
        }
        let mut parts = Vec::with_capacity(self.to.len());
        for (i, to) in self.to.iter().enumerate() {
            parts.push((who(i, to), self.send_one(to, &text).await));
        }
        combine(parts)
    }
}

impl Channel for SmsChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "sms"
    }

    fn send<'a>(&'a self, body: &'a NotificationBody) -> BoxFuture<'a, Delivery> {
        Box::pin(self.send_all(body, None))
    }

    fn send_to<'a>(
        &'a self,
        body: &'a NotificationBody,
        to: Option<&'a Recipient>,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(self.send_all(body, to))
    }
}

/// A rendered template as a Body: the first alert's id at the start (added when the
/// template does not begin with it, so a reply can name the alert), cut to [`BODY_MAX`].
pub fn templated(body: &NotificationBody, rendered: &str) -> String {
    let rendered = rendered.trim();
    match body.alerts.first() {
        Some(a) if !rendered.starts_with(&a.id) => cut(&format!("{} {rendered}", a.id), BODY_MAX),
        _ => cut(rendered, BODY_MAX),
    }
}

/// The message: `ALR-3 CRITICAL FIRING: title. summary (+2 more: ALR-4, ALR-5)`, cut to
/// [`BODY_MAX`] characters from the end, so the id and level at the start always stay.
pub fn message(body: &NotificationBody) -> String {
    let Some(first) = body.alerts.first() else {
        return cut(
            &format!("secops-mcp: empty notification ({})", body.group_key),
            BODY_MAX,
        );
    };
    let (head, mut rest) = match super::escalation_line(body) {
        // "ALR-3 CRITICAL ESCALATED to security lead (Alice): <title> unacknowledged ...".
        Some(line) => (
            format!("{} {} ", first.id, first.level.as_str().to_uppercase()),
            line,
        ),
        None => (
            format!(
                "{} {} {}: ",
                first.id,
                first.level.as_str().to_uppercase(),
                verb(body.kind, first)
            ),
            first.title.clone(),
        ),
    };
    if !first.summary.is_empty() {
        rest.push_str(". ");
        rest.push_str(&first.summary);
    }
    if let Some(v) = &first.value {
        rest.push_str(&format!(" (value {v})"));
    }
    if body.alerts.len() > 1 {
        let others: Vec<&str> = body.alerts[1..].iter().map(|a| a.id.as_str()).collect();
        let tail = format!(" (+{} more: {})", others.len(), others.join(", "));
        // The other ids go right after the head when the message is long.
        let budget = BODY_MAX.saturating_sub(head.chars().count());
        if rest.chars().count() + tail.chars().count() > budget {
            let tail = cut(&tail, budget / 2);
            let keep = budget.saturating_sub(tail.chars().count());
            return format!("{head}{}{tail}", cut(&rest, keep));
        }
        rest.push_str(&tail);
    }
    let keep = BODY_MAX.saturating_sub(head.chars().count());
    format!("{head}{}", cut(&rest, keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn settings() -> SmsSettings {
        SmsSettings {
            account_sid: format!("AC{}", "0123456789abcdef".repeat(2)),
            auth_token: Secret::new("tw1l10-t0ken-s3cret"),
            from: Some("+15005550006".into()),
            messaging_service_sid: None,
            to: vec!["+15551230001".into()],
            base_url: "https://api.twilio.com".into(),
            timeout_ms: 1000,
            template: None,
        }
    }

    #[test]
    fn numbers_and_sids_are_validated_and_errors_name_the_key() {
        assert!(is_e164("+15551230001") && is_e164("+44"));
        for bad in ["15551230001", "+0555", "+1", "+1555123000123456", "+1 555"] {
            assert!(!is_e164(bad), "{bad}");
        }
        let c = SmsChannel::new("pager", settings()).unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            format!(
                "https://api.twilio.com/2010-04-01/Accounts/AC{}/Messages.json",
                "0123456789abcdef".repeat(2)
            )
        );
        let mut s = settings();
        s.base_url = "http://127.0.0.1:9/prefix/".into();
        let c = SmsChannel::new("pager", s).unwrap();
        assert!(
            c.endpoint
                .as_str()
                .starts_with("http://127.0.0.1:9/prefix/2010-04-01/")
        );
        type Change = Box<dyn Fn(&mut SmsSettings)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|s| s.account_sid = "AC12".into()), "account_sid"),
            (Box::new(|s| s.to = vec!["555-1234".into()]), "to[0]"),
            (Box::new(|s| s.to = vec![]), "to must list"),
            (
                Box::new(|s| s.to = vec!["+15551230001".into(), "+15551230001".into()]),
                "to[1] repeats",
            ),
            (Box::new(|s| s.from = Some("Acme".into())), "from must be"),
            (
                Box::new(|s| s.messaging_service_sid = Some("MGx".into())),
                "not both",
            ),
            (
                Box::new(|s| {
                    s.from = None;
                    s.messaging_service_sid = Some("MGx".into())
                }),
                "messaging_service_sid must be",
            ),
            (Box::new(|s| s.from = None), "needs `from`"),
            (
                Box::new(|s| s.base_url = "http://api.twilio.example".into()),
                "base_url",
            ),
            (Box::new(|s| s.timeout_ms = 0), "timeout_ms"),
        ];
        for (change, want) in cases {
            let mut s = settings();
            change(&mut s);
            let e = SmsChannel::new("pager", s).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert!(!format!("{:?}", SmsChannel::new("p", settings()).unwrap()).contains("s3cret"));
    }

    #[test]
    fn who_names_a_recipient_by_position_and_last_digits() {
        assert_eq!(who(1, "+15551230001"), "to[1] (…0001)");
    }
}
