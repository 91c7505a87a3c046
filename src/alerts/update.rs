//! alert_update: a person acknowledges an alert (its repeats stop) or adds a note; both are
//! written to the alert's timeline and to the audit log with the caller. Not destructive:
//! nothing outside secops-mcp changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lifecycle::{LifecycleError, acknowledge, note};
use super::status::AlertView;
use crate::checks::{ArgError, Summary, keyword};
use crate::clock::Clock;
use crate::store::{AuditEntry, Store, StoreError};

const TOOL: &str = "alert_update";

/// alert_update arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The alert, as alert_status lists it (`ALR-12`).
    pub alert_id: String,
    /// `acknowledge` (stops repeated notifications) or `note`.
    pub action: String,
    /// The note's text (with `note`; optional with `acknowledge`, added as a note).
    pub text: Option<String>,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct UpdateReport {
    pub action: String,
    pub alert: AlertView,
    /// The audit row that records it.
    pub audit_id: i64,
}

impl Summary for UpdateReport {
    fn summary(&self) -> String {
        format!(
            "{} {} ({}: {}); audit #{}.",
            match self.action.as_str() {
                "acknowledge" => "Acknowledged",
                _ => "Noted on",
            },
            self.alert.id,
            self.alert.state.as_str(),
            self.alert.title,
            self.audit_id
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Arg(#[from] ArgError),
    #[error("{0}")]
    Refused(String),
    #[error("the state database could not be written: {0}")]
    Store(#[from] StoreError),
}

impl From<LifecycleError> for UpdateError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::BadId(_) | LifecycleError::UnknownAlert(_) => {
                ArgError::new("alert_id", e.to_string()).into()
            }
            LifecycleError::BadInput { field, problem } => {
                ArgError::new(if field == "actor" { "caller" } else { "text" }, problem).into()
            }
            LifecycleError::Store(s) => UpdateError::Store(s),
            other => UpdateError::Refused(other.to_string()),
        }
    }
}

/// Apply one update for `caller`; an acknowledgement is passed on to `ack_channels` (the
/// configured channels that take acknowledgements: `NotifyConfig::acknowledging_channels`).
pub fn run(
    store: &Store,
    clock: &dyn Clock,
    caller: &str,
    args: &UpdateArgs,
    ack_channels: &[String],
) -> Result<UpdateReport, UpdateError> {
    let action = keyword("action", &args.action, &["acknowledge", "note"])?;
    let row = match action {
        "acknowledge" => {
            let row = acknowledge(store, clock, &args.alert_id, caller, ack_channels)?;
            match &args.text {
                Some(t) => note(store, clock, &args.alert_id, caller, t)?,
                None => row,
            }
        }
        _ => {
            let text = args
                .text
                .as_deref()
                .ok_or_else(|| ArgError::new("text", "required with action `note`"))?;
            note(store, clock, &args.alert_id, caller, text)?
        }
    };
    let audit = store.audit_append(&AuditEntry {
        caller: caller.to_string(),
        tool: TOOL.into(),
        action: action.into(),
        outcome: "ok".into(),
        detail: Some(format!("{}: {}", row.id(), row.title)),
        ..Default::default()
    })?;
    Ok(UpdateReport {
        action: action.into(),
        alert: AlertView::from(&row),
        audit_id: audit.id,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::alerts::lifecycle::{MonitorPolicy, evaluate};
    use crate::alerts::{Level, Observation};
    use crate::clock::ManualClock;

    #[test]
    fn acknowledge_and_note_are_audited_and_bad_input_names_the_argument() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let clock = ManualClock::at(1_790_000_000_000);
        let mut p = MonitorPolicy::new("web").route(Level::Critical, &["log"]);
        p.group_wait = Duration::ZERO;
        let o = Observation {
            code: "endpoint_down".into(),
            subject: BTreeMap::from([("url".into(), "https://a/".into())]),
            level: Some(Level::Critical),
            title: "a is down".into(),
            summary: String::new(),
            value: None,
        };
        let e = evaluate(&store, &clock, &p, &[o]).unwrap();
        let id = crate::alerts::alert_id(e.fired[0]);
        let args = |action: &str, text: Option<&str>| UpdateArgs {
            alert_id: id.clone(),
            action: action.into(),
            text: text.map(str::to_string),
        };
        let r = run(
            &store,
            &clock,
            "alice",
            &args("acknowledge", Some("on it")),
            &[],
        )
        .unwrap();
        assert_eq!(r.alert.acknowledged_by.as_deref(), Some("alice"));
        assert!(
            r.summary().starts_with("Acknowledged ALR-"),
            "{}",
            r.summary()
        );
        let again = run(&store, &clock, "bob", &args("acknowledge", None), &[]).unwrap_err();
        assert!(again.to_string().contains("alice"), "{again}");
        run(
            &store,
            &clock,
            "bob",
            &args("note", Some("root cause: DNS")),
            &[],
        )
        .unwrap();
        let audit = store.audit_recent(10).unwrap();
        assert_eq!(audit.iter().filter(|a| a.tool == TOOL).count(), 2);
        let e = run(&store, &clock, "bob", &args("Acknowledge", None), &[]).unwrap_err();
        assert!(e.to_string().contains("`action`"), "{e}");
        let e = run(&store, &clock, "bob", &args("note", None), &[]).unwrap_err();
        assert!(e.to_string().contains("`text`"), "{e}");
        let mut bad = args("note", Some("x"));
        bad.alert_id = "ALR-999".into();
        let e = run(&store, &clock, "bob", &bad, &[]).unwrap_err();
        assert!(e.to_string().contains("`alert_id`"), "{e}");
    }
}
