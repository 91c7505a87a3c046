//! incident_update: one lifecycle change (acknowledge, assign, phase, status, note,
//! resolve), checked against the incident's state, audited before it is saved.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::model::{Action, Phase, Resolution, Status, incident_id, name, parse_name};
use super::status::{IncidentView, load, view};
use super::{IncidentDeps, IncidentError};
use crate::checks::{ArgError, Summary};
use crate::config::IncidentsConfig;
use crate::store::{AuditEntry, IncidentRow, Note, Store, StoreError, audit};
use crate::util::{rfc3339, sanitize_untrusted};

const MAX_NOTES: usize = 100;

/// incident_update arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// e.g. `INC-000001`.
    pub incident_id: String,
    /// `acknowledge`, `assign` (needs `assignee`), `set_phase` (needs `phase`), `set_status`
    /// (needs `status`), `note` (needs `note`) or `resolve` (needs `resolution`).
    pub action: Action,
    /// For `assign` (and optionally `acknowledge`).
    pub assignee: Option<String>,
    /// For `set_phase`.
    pub phase: Option<Phase>,
    /// For `set_status`: `acknowledged`, `contained`, or `open` to reopen a resolved incident.
    pub status: Option<Status>,
    /// Required for `note`; allowed with every action.
    pub note: Option<String>,
    /// For `resolve`.
    pub resolution: Option<Resolution>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct UpdateReport {
    /// What changed, in words (also written to the audit log).
    pub change: String,
    pub audit_id: i64,
    pub incident: IncidentView,
}

fn required<T: Copy>(v: Option<T>, arg: &str, action: &str, allowed: &str) -> Result<T, ArgError> {
    v.ok_or_else(|| {
        ArgError::new(
            arg,
            format!("is required for action `{action}`; allowed: {allowed}"),
        )
    })
}

fn text_arg(v: &Option<String>, arg: &str, max: usize) -> Result<Option<String>, ArgError> {
    match v.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Err(ArgError::new(arg, "must not be empty")),
        Some(s) if s.chars().count() > max => Err(ArgError::new(
            arg,
            format!("must be at most {max} characters"),
        )),
        Some(s) => Ok(Some(sanitize_untrusted(s.as_bytes(), max))),
    }
}

/// Apply one lifecycle change, append it to the audit log (before saving: fail closed)
/// and return the incident as it is now.
pub fn update(
    store: &Store,
    cfg: &IncidentsConfig,
    caller: &str,
    args: &UpdateArgs,
    now: OffsetDateTime,
) -> Result<UpdateReport, IncidentError> {
    let act = name(&args.action);
    refuse_unused(args, &act)?;
    let texts = Texts {
        assignee: text_arg(&args.assignee, "assignee", 100)?,
        note: text_arg(&args.note, "note", 2000)?,
    };
    let mut row = load(store, &args.incident_id)?;
    let mut edit = Edit {
        status: parse_name(&row.status).unwrap_or(Status::Open),
        id: incident_id(row.seq),
        ts: rfc3339(now),
        row: &mut row,
    };
    let change = edit.apply(args, &act, &texts)?;
    if let Some(n) = &texts.note {
        edit.add_note(n, caller);
    }
    edit.row.updated_at = edit.ts.clone();
    let id = edit.id;
    let audit_id = audit_change(store, caller, &act, &id, &change, args, &texts)?;
    store.incident_save(&mut row)?;
    Ok(UpdateReport {
        change,
        audit_id,
        incident: view(&row, cfg, now),
    })
}

/// Arguments that the action does not use are refused rather than ignored.
fn refuse_unused(args: &UpdateArgs, act: &str) -> Result<(), ArgError> {
    let uses: &[&str] = match args.action {
        Action::Acknowledge => &["assignee"],
        Action::Assign => &["assignee"],
        Action::SetPhase => &["phase"],
        Action::SetStatus => &["status"],
        Action::Note => &[],
        Action::Resolve => &["resolution"],
    };
    for (arg, given) in [
        ("assignee", args.assignee.is_some()),
        ("phase", args.phase.is_some()),
        ("status", args.status.is_some()),
        ("resolution", args.resolution.is_some()),
    ] {
        if given && !uses.contains(&arg) {
            return Err(ArgError::new(arg, format!("is not used by action `{act}`")));
        }
    }
    Ok(())
}

/// The free-text arguments, trimmed, bounded and sanitised.
struct Texts {
    assignee: Option<String>,
    note: Option<String>,
}

/// One change being applied to an incident row: its status before the change, its id and
/// the time of the change.
struct Edit<'a> {
    row: &'a mut IncidentRow,
    status: Status,
    id: String,
    ts: String,
}

impl Edit<'_> {
    /// Apply the action; the change in words, or why the incident's state refuses it.
    fn apply(&mut self, args: &UpdateArgs, act: &str, texts: &Texts) -> Result<String, ArgError> {
        match args.action {
            Action::Acknowledge => self.acknowledge(&texts.assignee),
            Action::Assign => self.assign(&texts.assignee),
            Action::SetPhase => self.set_phase(required(
                args.phase,
                "phase",
                act,
                "detection_analysis, containment, eradication_recovery, post_incident",
            )?),
            Action::SetStatus => self.set_status(required(
                args.status,
                "status",
                act,
                "open, acknowledged, contained",
            )?),
            Action::Note => {
                if texts.note.is_none() {
                    return Err(ArgError::new(
                        "note",
                        "is required for action `note`: the text to add",
                    ));
                }
                Ok("note added".to_string())
            }
            Action::Resolve => self.resolve(required(
                args.resolution,
                "resolution",
                act,
                "true_positive, false_positive, duplicate",
            )?),
        }
    }

    fn acknowledge(&mut self, assignee: &Option<String>) -> Result<String, ArgError> {
        let (row, id) = (&mut *self.row, &self.id);
        if self.status != Status::Open {
            return Err(ArgError::new(
                "action",
                format!(
                    "{id} is already {}; acknowledge applies to `open` incidents",
                    row.status
                ),
            ));
        }
        row.status = name(&Status::Acknowledged);
        row.acknowledged_at = Some(self.ts.clone());
        if let Some(a) = assignee {
            row.assignee = Some(a.clone());
        }
        Ok(format!(
            "status open -> acknowledged{}",
            assignee
                .as_ref()
                .map(|a| format!(", assigned to {a}"))
                .unwrap_or_default()
        ))
    }

    fn assign(&mut self, assignee: &Option<String>) -> Result<String, ArgError> {
        let a = assignee.clone().ok_or_else(|| {
            ArgError::new(
                "assignee",
                "is required for action `assign`: a person or team name",
            )
        })?;
        let old = self.row.assignee.replace(a.clone());
        Ok(format!(
            "assignee {} -> {a}",
            old.as_deref().unwrap_or("(none)")
        ))
    }

    fn set_phase(&mut self, p: Phase) -> Result<String, ArgError> {
        let (row, id) = (&mut *self.row, &self.id);
        if self.status == Status::Resolved && p != Phase::PostIncident {
            return Err(ArgError::new(
                "phase",
                format!(
                    "{id} is resolved: only `post_incident` is allowed (reopen it first with set_status open)"
                ),
            ));
        }
        let old = row.phase.clone();
        row.phase = name(&p);
        Ok(format!("phase {old} -> {}", row.phase))
    }

    fn set_status(&mut self, s: Status) -> Result<String, ArgError> {
        self.check_status_move(s)?;
        let (row, ts) = (&mut *self.row, &self.ts);
        let old = row.status.clone();
        row.status = name(&s);
        match s {
            Status::Open => {
                row.resolution = None;
                row.resolved_at = None;
                row.phase = name(&Phase::DetectionAnalysis);
            }
            Status::Acknowledged => {
                row.acknowledged_at.get_or_insert(ts.clone());
            }
            Status::Contained => {
                row.acknowledged_at.get_or_insert(ts.clone());
                row.contained_at = Some(ts.clone());
                if row.phase == name(&Phase::DetectionAnalysis) {
                    row.phase = name(&Phase::Containment);
                }
            }
            Status::Resolved => {}
        }
        Ok(format!("status {old} -> {}", row.status))
    }

    /// Status moves forward only; resolving takes `resolve`, and a resolved incident can
    /// only be reopened.
    fn check_status_move(&self, s: Status) -> Result<(), ArgError> {
        let (status, id) = (self.status, &self.id);
        let ok = match (status, s) {
            (_, Status::Resolved) => {
                return Err(ArgError::new(
                    "status",
                    "use action `resolve` with a `resolution` (true_positive, false_positive, duplicate) to resolve",
                ));
            }
            (Status::Resolved, Status::Open) => true,
            (Status::Resolved, _) => {
                return Err(ArgError::new(
                    "status",
                    format!("{id} is resolved; it can only be reopened with status `open`"),
                ));
            }
            (from, to) => to > from,
        };
        if !ok {
            return Err(ArgError::new(
                "status",
                format!(
                    "{id} is {}; status moves forward only (open -> acknowledged -> contained -> resolved); allowed now: {}",
                    self.row.status,
                    match status {
                        Status::Open => "acknowledged, contained",
                        Status::Acknowledged => "contained",
                        _ => "none (resolve it with action `resolve`)",
                    }
                ),
            ));
        }
        Ok(())
    }

    fn resolve(&mut self, r: Resolution) -> Result<String, ArgError> {
        let (row, id, ts) = (&mut *self.row, &self.id, &self.ts);
        if self.status == Status::Resolved {
            return Err(ArgError::new("action", format!("{id} is already resolved")));
        }
        let old = row.status.clone();
        row.status = name(&Status::Resolved);
        row.resolution = Some(name(&r));
        row.resolved_at = Some(ts.clone());
        row.phase = name(&Phase::PostIncident);
        Ok(format!("status {old} -> resolved ({})", name(&r)))
    }

    /// Keep the newest `MAX_NOTES` notes.
    fn add_note(&mut self, text: &str, caller: &str) {
        let notes = &mut self.row.body.notes;
        if notes.len() >= MAX_NOTES {
            notes.remove(0);
        }
        notes.push(Note {
            at: self.ts.clone(),
            by: caller.to_string(),
            text: text.to_string(),
        });
    }
}

/// Append the change to the audit log; its id.
fn audit_change(
    store: &Store,
    caller: &str,
    act: &str,
    id: &str,
    change: &str,
    args: &UpdateArgs,
    texts: &Texts,
) -> Result<i64, StoreError> {
    let (assignee, note) = (&texts.assignee, &texts.note);
    let detail = match note {
        Some(n) => format!("{change}; note: {}", sanitize_untrusted(n.as_bytes(), 300)),
        None => change.to_string(),
    };
    let digest_args = serde_json::json!({
        "incident_id": id, "action": act, "assignee": assignee, "phase": args.phase,
        "status": args.status, "note": note, "resolution": args.resolution,
    });
    let rec = store.audit_append(&AuditEntry {
        caller: caller.to_string(),
        tool: "incident_update".into(),
        action: act.to_string(),
        args_digest: Some(audit::canonical_digest(&digest_args)),
        outcome: "ok".into(),
        detail: Some(detail),
        incident_id: Some(id.to_string()),
    })?;
    Ok(rec.id)
}

impl Summary for UpdateReport {
    fn summary(&self) -> String {
        format!("{}: {}.", self.incident.id, self.change)
    }
}

/// incident_update, serialised with ingestion (both read-modify-write the incident row).
pub async fn run(
    deps: &IncidentDeps<'_>,
    caller: &str,
    args: &UpdateArgs,
) -> Result<UpdateReport, IncidentError> {
    let _one = deps.lock.lock().await;
    update(
        deps.store,
        deps.settings,
        caller,
        args,
        OffsetDateTime::now_utc(),
    )
}
