//! The `log` channel: each notification becomes one JSON line through `tracing` (target
//! `secops_mcp::notify`, field `notification`), so it lands wherever the server's logs go
//! (stderr, journald, a log collector). It cannot fail; the demo configuration uses it.

use futures::future::BoxFuture;
use serde_json::json;

use super::{Channel, Delivery};
use crate::alerts::NotificationBody;

/// One configured log channel.
#[derive(Debug, Clone)]
pub struct LogChannel {
    name: String,
}

impl LogChannel {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
        }
    }
}

/// The JSON line a notification becomes (shared with the `file` channel).
pub fn json_line(channel: &str, body: &NotificationBody) -> serde_json::Value {
    let mut v = json!({
        "channel": channel,
        "kind": body.kind,
        "dedup_key": body.dedup_key,
        "group_key": body.group_key,
        "group_labels": body.group_labels,
        "alerts": body.alerts,
    });
    // A digest's carried notifications (notify::digest).
    if !body.digest.is_empty() {
        v["digest"] = json!(body.digest);
    }
    // An escalation names its contact (never an address) and says so in one line.
    if let (Some(line), Some(e)) = (super::escalation_line(body), &body.escalation) {
        v["escalation"] = json!(e);
        v["message"] = json!(line);
    }
    v
}

impl Channel for LogChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "log"
    }

    fn send<'a>(&'a self, body: &'a NotificationBody) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let line = json_line(&self.name, body).to_string();
            tracing::info!(
                target: "secops_mcp::notify",
                channel = %self.name,
                kind = body.kind.as_str(),
                dedup_key = %body.dedup_key,
                notification = %line,
                "notification"
            );
            Delivery::Delivered {
                status: None,
                answer: "logged".into(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alerts::NotificationKind;

    #[tokio::test]
    async fn a_notification_is_one_json_line_and_always_delivered() {
        let body = NotificationBody {
            kind: NotificationKind::Resolved,
            group_key: "certs".into(),
            group_labels: BTreeMap::from([("monitor".into(), "certs".into())]),
            escalation: None,
            dedup_key: "fp-1".into(),
            alerts: vec![],
            digest: vec![],
        };
        let line = json_line("log", &body).to_string();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "resolved");
        assert_eq!(v["dedup_key"], "fp-1");
        assert_eq!(v["group_labels"]["monitor"], "certs");
        let ch = LogChannel::new("log");
        assert_eq!((ch.name(), ch.kind()), ("log", "log"));
        assert!(matches!(ch.send(&body).await, Delivery::Delivered { .. }));
    }
}
