//! The incident vocabulary: severity buckets, lifecycle status, phase, resolution and
//! action enums, incident ids, and the small conversions the other files share.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

// An incident's severity (a finding's is `checks::Severity`); the schemas keep the
// published name `Severity`, and the doc line below is the schema's description.
/// Wazuh's rule-level buckets.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Severity")]
pub enum IncidentSeverity {
    Low,
    Medium,
    High,
    Critical,
}

impl IncidentSeverity {
    pub const ALL: [IncidentSeverity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The name as written in settings and outputs (`high`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn from_level(level: u32) -> Self {
        match level {
            0..=6 => Self::Low,
            7..=11 => Self::Medium,
            12..=14 => Self::High,
            _ => Self::Critical,
        }
    }
}

/// Lifecycle status; moves forward only (a resolved incident may be reopened to `open`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    Acknowledged,
    Contained,
    Resolved,
}

/// The incident-response runbook's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    DetectionAnalysis,
    Containment,
    EradicationRecovery,
    PostIncident,
}

/// Why an incident was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    TruePositive,
    FalsePositive,
    Duplicate,
}

/// What incident_update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Acknowledge,
    Assign,
    SetPhase,
    SetStatus,
    Note,
    Resolve,
}

/// The snake_case name serde gives a unit variant.
pub(super) fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn parse_name<T: for<'de> Deserialize<'de>>(s: &str) -> Option<T> {
    serde_json::from_value(Value::String(s.to_string())).ok()
}

pub(super) fn ms_to_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn incident_id(seq: i64) -> String {
    format!("INC-{seq:06}")
}

/// `INC-000042` -> 42; `None` for anything else.
pub fn parse_incident_id(id: &str) -> Option<i64> {
    let n = id.trim().strip_prefix("INC-")?;
    if n.is_empty() || n.len() > 12 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_buckets_follow_wazuh() {
        for (l, s) in [
            (0, IncidentSeverity::Low),
            (6, IncidentSeverity::Low),
            (7, IncidentSeverity::Medium),
            (11, IncidentSeverity::Medium),
            (12, IncidentSeverity::High),
            (14, IncidentSeverity::High),
            (15, IncidentSeverity::Critical),
            (16, IncidentSeverity::Critical),
        ] {
            assert_eq!(IncidentSeverity::from_level(l), s, "level {l}");
        }
        for s in IncidentSeverity::ALL {
            assert_eq!(name(&s), s.as_str(), "the serde name");
            assert_eq!(IncidentSeverity::parse(s.as_str()), Some(s));
        }
        assert_eq!(IncidentSeverity::parse("High"), None);
    }
}
