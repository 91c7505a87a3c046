//! alert_update: a person acknowledges an alert (its repeats stop), adds a note, silences
//! alerts (by matchers, or one alert) for a bounded time with a comment, or ends a silence
//! (unsilence); each is written to the timeline of the alerts concerned and to the audit
//! log with the caller. Not destructive: nothing outside secops-mcp changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lifecycle::{LifecycleError, acknowledge, note};
use super::silence::{self, SilenceError, SilenceRequest, SilenceView};
use super::status::AlertView;
use crate::checks::{ArgError, Summary, keyword};
use crate::clock::Clock;
use crate::store::{AuditEntry, Store, StoreError};

const TOOL: &str = "alert_update";

/// alert_update arguments.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The alert, as alert_status lists it (`ALR-12`): required with `acknowledge` and
    /// `note`; with `silence`, silences that alert (instead of `matchers`).
    pub alert_id: Option<String>,
    /// `acknowledge` (stops repeated notifications), `note`, `silence` or `unsilence`.
    pub action: String,
    /// The note's text (with `note`; optional with `acknowledge`, added as a note).
    pub text: Option<String>,
    /// With `silence`: which alerts, e.g. [`monitor=certs`, `target=~.*\.example\.com`]
    /// (`=`, `!=`, `=~` regex, `!~`; over labels, `monitor`, `code`, `level`, `id`,
    /// `fingerprint`; all must match). `emergency` alerts are silenced only when named:
    /// `level=emergency`, `id=ALR-n` or their `fingerprint`.
    pub matchers: Option<Vec<String>>,
    /// With `silence` (required): why, at most 500 characters.
    pub comment: Option<String>,
    /// With `silence`: how long (`30m`, `2h`, `7d`; at most 90d), or give `ends_at`.
    pub duration: Option<String>,
    /// With `silence`: the end, RFC 3339 (instead of `duration`).
    pub ends_at: Option<String>,
    /// With `silence`: the start, RFC 3339 (default now).
    pub starts_at: Option<String>,
    /// With `unsilence`: the silence to end now (`SIL-3`).
    pub silence_id: Option<String>,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct UpdateReport {
    pub action: String,
    /// The alert acknowledged or noted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertView>,
    /// The silence created or ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence: Option<SilenceView>,
    /// The open alerts the silence covers (or covered, when ended).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub covered: Vec<String>,
    /// The audit row that records it.
    pub audit_id: i64,
}

impl Summary for UpdateReport {
    fn summary(&self) -> String {
        if let Some(s) = &self.silence {
            let covered = if self.covered.is_empty() {
                "no open alert matches it now".to_string()
            } else {
                format!("it covers {}", self.covered.join(", "))
            };
            return match self.action.as_str() {
                "silence" => format!(
                    "Created {} ({}) from {} until {}; {covered}; audit #{}.",
                    s.id,
                    s.matchers.join(", "),
                    s.starts_at,
                    s.ends_at,
                    self.audit_id
                ),
                _ => format!(
                    "Ended {} ({}); held firing notifications of the alerts it covered go out at their next evaluation; audit #{}.",
                    s.id,
                    s.matchers.join(", "),
                    self.audit_id
                ),
            };
        }
        match &self.alert {
            Some(a) => format!(
                "{} {} ({}: {}); audit #{}.",
                match self.action.as_str() {
                    "acknowledge" => "Acknowledged",
                    _ => "Noted on",
                },
                a.id,
                a.state.as_str(),
                a.title,
                self.audit_id
            ),
            None => format!("{}; audit #{}.", self.action, self.audit_id),
        }
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

impl From<SilenceError> for UpdateError {
    fn from(e: SilenceError) -> Self {
        match e {
            SilenceError::Arg { field, problem } => ArgError::new(field, problem).into(),
            SilenceError::Refused(why) => UpdateError::Refused(why),
            SilenceError::Store(s) => UpdateError::Store(s),
        }
    }
}

/// Arguments that belong to other actions are refused, naming them.
fn only_with(args: &UpdateArgs, action: &str) -> Result<(), ArgError> {
    let given = [
        ("text", args.text.is_some(), &["acknowledge", "note"][..]),
        ("matchers", args.matchers.is_some(), &["silence"][..]),
        ("comment", args.comment.is_some(), &["silence"][..]),
        ("duration", args.duration.is_some(), &["silence"][..]),
        ("ends_at", args.ends_at.is_some(), &["silence"][..]),
        ("starts_at", args.starts_at.is_some(), &["silence"][..]),
        ("silence_id", args.silence_id.is_some(), &["unsilence"][..]),
        (
            "alert_id",
            args.alert_id.is_some(),
            &["acknowledge", "note", "silence"][..],
        ),
    ];
    for (name, set, actions) in given {
        if set && !actions.contains(&action) {
            return Err(ArgError::new(
                name,
                format!(
                    "does not apply to action `{action}` (only to {})",
                    actions
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
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
    let action = keyword(
        "action",
        &args.action,
        &["acknowledge", "note", "silence", "unsilence"],
    )?;
    only_with(args, action)?;
    if matches!(action, "silence" | "unsilence") {
        return silence_update(store, clock, caller, args, action);
    }
    let alert_id = args
        .alert_id
        .as_deref()
        .ok_or_else(|| ArgError::new("alert_id", format!("required with action `{action}`")))?;
    let row = match action {
        "acknowledge" => {
            let row = acknowledge(store, clock, alert_id, caller, ack_channels)?;
            match &args.text {
                Some(t) => note(store, clock, alert_id, caller, t)?,
                None => row,
            }
        }
        _ => {
            let text = args
                .text
                .as_deref()
                .ok_or_else(|| ArgError::new("text", "required with action `note`"))?;
            note(store, clock, alert_id, caller, text)?
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
        alert: Some(AlertView::from(&row)),
        silence: None,
        covered: Vec::new(),
        audit_id: audit.id,
    })
}

/// `silence` / `unsilence`, audited like an acknowledgement.
fn silence_update(
    store: &Store,
    clock: &dyn Clock,
    caller: &str,
    args: &UpdateArgs,
    action: &'static str,
) -> Result<UpdateReport, UpdateError> {
    if caller.trim().is_empty() || caller.len() > 200 || caller.chars().any(char::is_control) {
        return Err(ArgError::new("caller", "must be 1-200 printable characters").into());
    }
    let (row, covered) = if action == "silence" {
        let req = SilenceRequest {
            matchers: args.matchers.clone().unwrap_or_default(),
            alert_id: args.alert_id.clone(),
            comment: args.comment.clone(),
            duration: args.duration.clone(),
            ends_at: args.ends_at.clone(),
            starts_at: args.starts_at.clone(),
        };
        silence::create(store, clock, caller, &req)?
    } else {
        let id = args.silence_id.as_deref().ok_or_else(|| {
            ArgError::new(
                "silence_id",
                "required with action `unsilence` (e.g. `SIL-3`)",
            )
        })?;
        silence::expire(store, clock, caller, id)?
    };
    let view = SilenceView::of(&row, clock.now_ms());
    let audit = store.audit_append(&AuditEntry {
        caller: caller.to_string(),
        tool: TOOL.into(),
        action: action.into(),
        outcome: "ok".into(),
        detail: Some(format!(
            "{} ({}) {} to {}; {} open alert(s) covered",
            view.id,
            view.matchers.join(", "),
            view.starts_at,
            view.ends_at,
            covered.len()
        )),
        ..Default::default()
    })?;
    Ok(UpdateReport {
        action: action.into(),
        alert: None,
        silence: Some(view),
        covered,
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
            alert_id: Some(id.clone()),
            action: action.into(),
            text: text.map(str::to_string),
            ..Default::default()
        };
        let r = run(
            &store,
            &clock,
            "alice",
            &args("acknowledge", Some("on it")),
            &[],
        )
        .unwrap();
        assert_eq!(
            r.alert.as_ref().unwrap().acknowledged_by.as_deref(),
            Some("alice")
        );
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
        bad.alert_id = Some("ALR-999".into());
        let e = run(&store, &clock, "bob", &bad, &[]).unwrap_err();
        assert!(e.to_string().contains("`alert_id`"), "{e}");
    }

    #[test]
    fn silence_and_unsilence_are_audited_with_the_caller_and_misplaced_arguments_named() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let clock = ManualClock::at(1_790_000_000_000);
        let silence = UpdateArgs {
            action: "silence".into(),
            matchers: Some(vec!["monitor=certs".into()]),
            comment: Some("renewal".into()),
            duration: Some("2h".into()),
            ..Default::default()
        };
        let r = run(&store, &clock, "alice", &silence, &[]).unwrap();
        let s = r.silence.as_ref().unwrap();
        assert_eq!(
            (s.id.as_str(), s.author.as_str(), s.state.as_str()),
            ("SIL-1", "alice", "active")
        );
        assert!(
            r.summary().starts_with("Created SIL-1 (monitor=certs)"),
            "{}",
            r.summary()
        );
        let unsilence = UpdateArgs {
            action: "unsilence".into(),
            silence_id: Some("SIL-1".into()),
            ..Default::default()
        };
        let r = run(&store, &clock, "bob", &unsilence, &[]).unwrap();
        assert_eq!(
            r.silence.as_ref().unwrap().removed_by.as_deref(),
            Some("bob")
        );
        let audit = store.audit_recent(10).unwrap();
        let rows: Vec<(&str, &str)> = audit
            .iter()
            .filter(|a| a.tool == TOOL)
            .map(|a| (a.action.as_str(), a.caller.as_str()))
            .collect();
        assert!(
            rows.contains(&("silence", "alice")) && rows.contains(&("unsilence", "bob")),
            "{rows:?}"
        );
        let e = run(&store, &clock, "bob", &unsilence, &[]).unwrap_err();
        assert!(matches!(e, UpdateError::Refused(_)), "{e}");
        let e = run(
            &store,
            &clock,
            "bob",
            &UpdateArgs {
                silence_id: Some("SIL-1".into()),
                ..silence.clone()
            },
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("`silence_id`"), "{e}");
        let e = run(
            &store,
            &clock,
            "bob",
            &UpdateArgs {
                comment: None,
                ..silence.clone()
            },
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("`comment`"), "{e}");
        let e = run(
            &store,
            &clock,
            "bob",
            &UpdateArgs {
                action: "acknowledge".into(),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("`alert_id`"), "{e}");
    }
}
