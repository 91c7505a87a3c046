//! The vocabulary of our own alerts (a monitor's finding with a lifecycle, not a Wazuh
//! alert): levels, states, the observation a monitor run yields, an alert's identity
//! (fingerprint of monitor, code and subject labels) and episode (one firing of it, the
//! dedup key receivers see), and the snapshot a notification carries.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Millis;

/// How loud an alert is: the monitoring guide's alert levels.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Critical,
    Emergency,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::Info,
        Level::Warning,
        Level::Critical,
        Level::Emergency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Critical => "critical",
            Level::Emergency => "emergency",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds, but not yet for the failure threshold or the `for` duration.
    Pending,
    /// Announced (or being announced) to people.
    Firing,
    /// The condition stopped holding (for the success threshold).
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        [
            AlertState::Pending,
            AlertState::Firing,
            AlertState::Resolved,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// What one monitor run saw about one subject: a problem (`level` set) or that the subject
/// is fine (`level` None, which counts towards resolving its alert).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The finding code (`cert_expiring`, `endpoint_down`, `daemon_stopped`, ...).
    pub code: String,
    /// What the finding is about (`target`, `daemon`, `node`, `url`, ...): part of the
    /// alert's identity.
    pub subject: BTreeMap<String, String>,
    /// None: this subject is fine now.
    pub level: Option<Level>,
    /// A short title ("Certificate of mail.example.com expires in 5 days").
    pub title: String,
    /// One paragraph: what is wrong, where, what to do next.
    pub summary: String,
    /// The measured value, when there is one ("5 days", "3120 ms", "91 %").
    pub value: Option<String>,
}

/// An alert's identity: the same monitor, code and subject labels are the same alert.
pub fn fingerprint(monitor: &str, code: &str, subject: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for part in [monitor, code] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (k, v) in subject {
        h.update(k.as_bytes());
        h.update([1]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// One episode of an alert (from pending to resolved): the dedup key every notification
/// of that episode carries, so a receiver can deduplicate redeliveries.
pub fn episode_key(fingerprint: &str, first_seen_ms: Millis) -> String {
    format!("{fingerprint}-{first_seen_ms:x}")
}

/// What a notification says about one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AlertSnapshot {
    /// Our alert id (`ALR-<n>`).
    pub id: String,
    pub fingerprint: String,
    /// The dedup key of this episode.
    pub episode: String,
    pub monitor: String,
    pub code: String,
    pub level: Level,
    pub state: AlertState,
    pub title: String,
    pub summary: String,
    /// Subject labels plus the monitor's own labels.
    pub labels: BTreeMap<String, String>,
    pub value: Option<String>,
    /// RFC 3339: when it started firing (or was first seen, while pending).
    pub started_at: String,
    pub resolved_at: Option<String>,
    pub runbook: Option<String>,
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Firing,
    Repeat,
    Resolved,
    /// Someone acknowledged the alert (alert_update, `alerts ack`): only channels that
    /// take acknowledgements (PagerDuty) are sent one.
    Acknowledged,
    /// `secops-mcp channels test NAME`.
    Test,
    /// An unacknowledged alert (or an overdue incident) told to an escalation contact.
    Escalation,
    /// What a channel's rate limit held back, gathered into one notification.
    Digest,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Repeat => "repeat",
            NotificationKind::Resolved => "resolved",
            NotificationKind::Acknowledged => "acknowledged",
            NotificationKind::Test => "test",
            NotificationKind::Escalation => "escalation",
            NotificationKind::Digest => "digest",
        }
    }
}

/// The body of one notification row: one or more alerts of one group (one monitor's
/// alerts that started within `group_wait`), as stored in the outbox and rendered by each
/// channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationBody {
    pub kind: NotificationKind,
    /// The group (the monitor's name and its labels).
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    /// The stable dedup key of this notification (an episode, or a group of episodes).
    pub dedup_key: String,
    pub alerts: Vec<AlertSnapshot>,
    /// Set on an `escalation` notification: which step told whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<EscalationNote>,
    /// A digest only (kind `digest`): each notification the channel's rate limit held
    /// back, in order; `alerts` then holds all their alerts. Empty otherwise (and absent
    /// from stored JSON written before digests existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digest: Vec<DigestEntry>,
}

/// One notification a digest carries: what it was about (its kind) and its alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DigestEntry {
    /// The carried row's id in the outbox (its state is `digested`, `digest_id` the digest).
    pub notification: i64,
    pub kind: NotificationKind,
    pub group_key: String,
    pub dedup_key: String,
    /// RFC 3339: when the carried notification was enqueued.
    pub created_at: String,
    /// The ids (`ALR-<n>`) of its alerts, in `NotificationBody::alerts` order.
    pub alert_ids: Vec<String>,
}

/// Who an escalation notification is for and why (never an address or a key: the outbox
/// resolves the contact's address from the configuration when it sends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EscalationNote {
    /// The `[[escalation]]` rule (or `incident-sla-<severity>`).
    pub rule: String,
    /// The contact's name.
    pub contact: String,
    pub role: Option<String>,
    /// How long nobody acknowledged: "for 15 min", "until the next business day (...)".
    pub waited: String,
    /// RFC 3339: when the step was due.
    pub due_at: String,
}

/// The public id of an alert row.
pub fn alert_id(seq: i64) -> String {
    format!("ALR-{seq}")
}

pub fn parse_alert_id(id: &str) -> Option<i64> {
    id.strip_prefix("ALR-")?.parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_monitor_code_and_subject_and_nothing_else() {
        let s = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let a = fingerprint("certs", "cert_expiring", &s("target", "a.example"));
        assert_eq!(
            a,
            fingerprint("certs", "cert_expiring", &s("target", "a.example"))
        );
        assert_ne!(
            a,
            fingerprint("certs", "cert_expiring", &s("target", "b.example"))
        );
        assert_ne!(
            a,
            fingerprint("certs", "cert_expired", &s("target", "a.example"))
        );
        // No ambiguity from concatenation.
        assert_ne!(
            fingerprint("ab", "c", &BTreeMap::new()),
            fingerprint("a", "bc", &BTreeMap::new())
        );
        assert_eq!(a.len(), 16);
        assert_ne!(episode_key(&a, 1), episode_key(&a, 2));
    }

    #[test]
    fn levels_order_and_parse() {
        assert!(Level::Emergency > Level::Critical && Level::Warning > Level::Info);
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("Critical"), None);
        assert_eq!(parse_alert_id("ALR-12"), Some(12));
        assert_eq!(parse_alert_id("ALR-0"), None);
        assert_eq!(alert_id(3), "ALR-3");
    }
}
