//! The `pagerduty` channel: PagerDuty's Events API v2 (`POST {base_url}/v2/enqueue`, JSON).
//! One event per alert of a notification, keyed by the alert's episode (`dedup_key`), so a
//! firing (`trigger`), an acknowledgement (`acknowledge`) and the resolution (`resolve`)
//! of one episode act on one PagerDuty incident, and redeliveries deduplicate there. A
//! trigger carries `payload.summary` (at most 1,024 characters), `source`, `severity`
//! (emergency -> critical, critical -> error, warning -> warning, info -> info),
//! `timestamp`, `component`, `class` and `custom_details`. 202 is a delivery; 400 (an
//! invalid event) is not retried; 429 and 5xx are. A channel test triggers and then
//! resolves its own test incident. The routing key never appears in a [`Delivery`], an
//! error or a log.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::http::{Http, combine, provider_url};
use super::slack::{cut, location, next_step};
use super::{Channel, ChannelError, Delivery, Recipient};
use crate::alerts::{AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind};
use crate::config::Secret;

/// PagerDuty's limit on `payload.summary` (characters).
pub const SUMMARY_MAX: usize = 1024;
/// PagerDuty's limit on `dedup_key` (characters).
const DEDUP_MAX: usize = 255;

/// A PagerDuty channel's settings.
#[derive(Debug, Clone)]
pub struct PagerDutySettings {
    /// The Events API v2 integration (routing) key: a secret.
    pub routing_key: Secret,
    /// `payload.source`: where the problem is seen from (default: this host's name).
    pub source: String,
    /// `https://events.pagerduty.com` (http only to a loopback host).
    pub base_url: String,
    pub timeout_ms: u64,
}

/// One configured PagerDuty service integration.
pub struct PagerDutyChannel {
    name: String,
    endpoint: reqwest::Url,
    routing_key: Secret,
    source: String,
    http: Http,
}

impl std::fmt::Debug for PagerDutyChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDutyChannel")
            .field("name", &self.name)
            .field("routing_key", &super::http::MASK)
            .field("source", &self.source)
            .finish()
    }
}

/// Our level as PagerDuty's severity.
pub fn severity(level: Level) -> &'static str {
    match level {
        Level::Emergency => "critical",
        Level::Critical => "error",
        Level::Warning => "warning",
        Level::Info => "info",
    }
}

/// This host's name, for the default `source`.
pub fn default_source() -> String {
    sysinfo::System::host_name()
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "secops-mcp".to_string())
}

impl PagerDutyChannel {
    pub fn new(name: &str, s: PagerDutySettings) -> Result<Self, ChannelError> {
        let err = |reason: &str| ChannelError::new(name, reason);
        let key = s.routing_key.expose();
        if key.trim().is_empty() {
            return Err(err("the routing key is empty"));
        }
        if key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(err(
                "the routing key must be 1 to 64 letters and digits (an Events API v2 \
                 integration key)",
            ));
        }
        if s.source.trim().is_empty() || s.source.chars().count() > 255 {
            return Err(err("source must be 1 to 255 characters"));
        }
        let base = provider_url(name, "base_url", &s.base_url, false)?;
        let endpoint = base
            .join(&format!("{}/v2/enqueue", base.path().trim_end_matches('/')))
            .map_err(|_| err("base_url cannot take the /v2/enqueue path"))?;
        let http = Http::new(name, s.timeout_ms, vec![key.to_string()])?;
        Ok(Self {
            name: name.to_string(),
            endpoint,
            routing_key: s.routing_key,
            source: s.source,
            http,
        })
    }

    async fn event(&self, event: Value) -> Delivery {
        let req = self
            .http
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(event.to_string());
        let a = match self.http.exchange(req).await {
            Ok(a) => a,
            Err(d) => return d,
        };
        let said = match a.json() {
            Some(v) => {
                let mut s = format!(
                    "{}: {}",
                    v["status"].as_str().unwrap_or("-"),
                    v["message"].as_str().unwrap_or("-")
                );
                if let Some(errors) = v["errors"].as_array() {
                    let e: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
                    s.push_str(&format!(" ({})", e.join("; ")));
                }
                s
            }
            None => String::from_utf8_lossy(&a.raw).into_owned(),
        };
        let said = self.http.excerpt(said.as_bytes());
        match a.status {
            // Only 202 is PagerDuty's "accepted"; another 2xx is not its answer.
            202 => Delivery::Delivered {
                status: Some(202),
                answer: said,
            },
            s @ 200..=299 => Delivery::Failed {
                status: Some(s),
                reason: format!("HTTP {s} is not PagerDuty's 202 (is base_url right?): {said}"),
            },
            s => Delivery::of_http(s, a.retry_after, said),
        }
    }

    async fn send_all(&self, body: &NotificationBody, to: Option<&Recipient>) -> Delivery {
        // An escalation triggers on the contact's own service, with their routing key.
        let key = match to {
            None => self.routing_key.expose(),
            Some(r) => match &r.pagerduty_routing_key {
                Some(k) => k.expose(),
                None => {
                    return super::unaddressable(r, "pagerduty", "PagerDuty routing key");
                }
            },
        };
        let mut parts = Vec::new();
        for a in &body.alerts {
            let action = action(body.kind, a);
            let mut ev = event(key, &self.source, body.kind, a, action);
            if let (Some(line), "trigger") = (super::escalation_line(body), action) {
                ev["payload"]["summary"] = json!(cut(&line, SUMMARY_MAX));
                ev["payload"]["custom_details"]["escalation"] = json!(body.escalation);
            }
            let d = self.event(ev).await;
            // A test incident is resolved straight away, so none stays open.
            let d = match (body.kind, d) {
                (NotificationKind::Test, Delivery::Delivered { status, answer }) => {
                    let ev = event(key, &self.source, body.kind, a, "resolve");
                    match self.event(ev).await {
                        Delivery::Delivered { answer: r, .. } => Delivery::Delivered {
                            status,
                            answer: format!("trigger {answer}; resolve {r}"),
                        },
                        other => other,
                    }
                }
                (_, d) => d,
            };
            parts.push((format!("{action} {}", a.id), d));
        }
        if parts.is_empty() {
            return Delivery::Delivered {
                status: None,
                answer: "not sent: the notification has no alerts".into(),
            };
        }
        let d = combine(parts);
        match to {
            // The channel scrubs its own key; a contact's is scrubbed here.
            Some(_) => scrub_delivery(d, key),
            None => d,
        }
    }
}

/// `d` with every occurrence of `secret` masked.
fn scrub_delivery(d: Delivery, secret: &str) -> Delivery {
    d.map_text(|s| s.replace(secret, super::http::MASK))
}

impl Channel for PagerDutyChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn wants(&self, _kind: NotificationKind) -> bool {
        true
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

/// The event action a notification of `kind` about `a` is.
pub fn action(kind: NotificationKind, a: &AlertSnapshot) -> &'static str {
    match kind {
        NotificationKind::Acknowledged => "acknowledge",
        NotificationKind::Resolved => "resolve",
        _ if a.state == AlertState::Resolved => "resolve",
        _ => "trigger",
    }
}

/// One Events API v2 event. Acknowledge and resolve carry only the key and `dedup_key`.
pub fn event(
    routing_key: &str,
    source: &str,
    kind: NotificationKind,
    a: &AlertSnapshot,
    action: &str,
) -> Value {
    let dedup_key = cut(&a.episode, DEDUP_MAX);
    if action != "trigger" {
        return json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        });
    }
    let mut details = json!({
        "alert_id": a.id,
        "monitor": a.monitor,
        "code": a.code,
        "level": a.level.as_str(),
        "what": a.summary,
        "where": location(a),
        "since": a.started_at,
        "labels": a.labels,
        "next_step": next_step(a),
        "notification": kind.as_str(),
    });
    if let Some(v) = &a.value {
        details["value"] = json!(v);
    }
    let mut ev = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "secops-mcp",
        "payload": {
            "summary": cut(&format!("[{}] {}: {}", a.level.as_str().to_uppercase(), a.id, a.title), SUMMARY_MAX),
            "source": source,
            "severity": severity(a.level),
            "timestamp": a.started_at,
            "component": a.monitor,
            "class": a.code,
            "custom_details": details,
        },
    });
    if let Some(r) = a
        .runbook
        .as_deref()
        .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
    {
        ev["links"] = json!([{"href": r, "text": "Runbook"}]);
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PagerDutySettings {
        PagerDutySettings {
            routing_key: Secret::new("R0UT1NGKEYs3cret0123456789abcdef"),
            source: "host-a".into(),
            base_url: "https://events.pagerduty.com".into(),
            timeout_ms: 1000,
        }
    }

    #[test]
    fn levels_map_to_pagerduty_severities() {
        assert_eq!(
            Level::ALL.map(severity),
            ["info", "warning", "error", "critical"]
        );
    }

    #[test]
    fn settings_are_checked_and_the_key_never_shown() {
        let c = PagerDutyChannel::new("pd", settings()).unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "https://events.pagerduty.com/v2/enqueue"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let mut s = settings();
        s.routing_key = Secret::new("bad key s3cret");
        let e = PagerDutyChannel::new("pd", s).unwrap_err().to_string();
        assert!(
            e.contains("routing key must be") && !e.contains("s3cret"),
            "{e}"
        );
        let mut s = settings();
        s.base_url = "http://events.pagerduty.com".into();
        let e = PagerDutyChannel::new("pd", s).unwrap_err().to_string();
        assert!(e.contains("base_url"), "{e}");
        let mut s = settings();
        s.source = String::new();
        assert!(
            PagerDutyChannel::new("pd", s)
                .unwrap_err()
                .to_string()
                .contains("source")
        );
        assert!(!default_source().is_empty());
    }
}
