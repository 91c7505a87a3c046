//! Silences: a person mutes the notifications of the alerts some matchers select, for a
//! bounded time, with a reason. [`create`] validates and stores one (`SIL-n`) and notes
//! `silenced` on the timeline of the open alerts it covers; [`expire`] (unsilence) ends one
//! now, keeping its history, and notes `unsilenced`. A silence never stops evaluation: the
//! alert still opens, fires and resolves, and alert_status shows why it is quiet. When a
//! silence ends while its alert still fires unacknowledged, the firing notification it
//! held goes out at the next evaluation (`alerts::lifecycle`).

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use super::matcher::{self, Matcher, mutes};
use super::parse_alert_id;
use crate::clock::{Clock, Millis, rfc3339};
use crate::store::silences::{NewSilence, SilenceChange, SilenceRow, parse_silence_id};
use crate::store::{Store, StoreError};

/// The longest silence.
pub const MAX_SILENCE: Duration = Duration::from_secs(90 * 86_400);
/// The longest comment.
pub const MAX_COMMENT_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// A bad argument: which one and why.
    #[error("{field}: {problem}")]
    Arg {
        field: &'static str,
        problem: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn arg(field: &'static str, problem: impl Into<String>) -> SilenceError {
    SilenceError::Arg {
        field,
        problem: problem.into(),
    }
}

/// What a person asks for.
#[derive(Debug, Clone, Default)]
pub struct SilenceRequest {
    /// The matchers' texts; or empty with `alert_id`.
    pub matchers: Vec<String>,
    /// Silence this alert (its monitor, code and fingerprint: this subject, also when it
    /// fires again within the silence).
    pub alert_id: Option<String>,
    pub comment: Option<String>,
    /// `2h`, `1d` (at most 90d) ...
    pub duration: Option<String>,
    /// ... or an RFC 3339 end.
    pub ends_at: Option<String>,
    /// An RFC 3339 start (default now).
    pub starts_at: Option<String>,
}

/// A silence as the tools show it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SilenceView {
    /// `SIL-3`.
    pub id: String,
    pub matchers: Vec<String>,
    pub author: String,
    pub comment: String,
    pub starts_at: String,
    pub ends_at: String,
    pub created_at: String,
    /// `active`, `pending` (starts later) or `ended`.
    pub state: String,
    /// Who ended it early (unsilence).
    pub removed_by: Option<String>,
}

impl SilenceView {
    pub fn of(s: &SilenceRow, now: Millis) -> Self {
        SilenceView {
            id: s.sil_id(),
            matchers: s.matchers.clone(),
            author: s.author.clone(),
            comment: s.comment.clone(),
            starts_at: rfc3339(s.starts_ms),
            ends_at: rfc3339(s.ends_ms),
            created_at: rfc3339(s.created_ms),
            state: if s.active_at(now) {
                "active"
            } else if s.starts_ms > now && s.removed_ms.is_none() {
                "pending"
            } else {
                "ended"
            }
            .into(),
            removed_by: s.removed_by.clone(),
        }
    }
}

fn parse_time(field: &'static str, text: &str) -> Result<Millis, SilenceError> {
    let t =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|_| {
                arg(
                    field,
                    format!(
                        "\"{}\" is not an RFC 3339 time (e.g. 2026-12-24T18:00:00Z)",
                        crate::util::quote_untrusted(text, 40)
                    ),
                )
            })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as Millis)
}

fn check_comment(comment: Option<&str>) -> Result<String, SilenceError> {
    let c = comment.map(str::trim).unwrap_or("");
    if c.is_empty() {
        return Err(arg(
            "comment",
            "is required: say why the alerts are silenced",
        ));
    }
    if c.chars().count() > MAX_COMMENT_CHARS {
        return Err(arg(
            "comment",
            format!("must be at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    if c.chars().any(char::is_control) {
        return Err(arg("comment", "must not contain control characters"));
    }
    Ok(c.to_string())
}

/// The matchers of a request: as written, or the alert's own.
fn request_matchers(store: &Store, req: &SilenceRequest) -> Result<Vec<Matcher>, SilenceError> {
    match (&req.alert_id, req.matchers.is_empty()) {
        (Some(_), false) => Err(arg(
            "matchers",
            "give either `matchers` or `alert_id`, not both",
        )),
        (None, true) => Err(arg(
            "matchers",
            "give `matchers` (e.g. [\"monitor=certs\"]) or the `alert_id` to silence",
        )),
        (None, false) => matcher::parse_list("matchers", &req.matchers)
            .map_err(|(k, p)| arg("matchers", format!("{k}: {p}"))),
        (Some(id), true) => {
            let seq = parse_alert_id(id.trim()).ok_or_else(|| {
                arg(
                    "alert_id",
                    "write an alert id as alert_status lists it, e.g. `ALR-12`",
                )
            })?;
            let row = store
                .alert_get(seq)?
                .ok_or_else(|| arg("alert_id", format!("no alert {}", id.trim())))?;
            [
                format!("monitor={}", row.monitor),
                format!("code={}", row.code),
                format!("fingerprint={}", row.fingerprint),
            ]
            .iter()
            .map(|t| Matcher::parse(t).map_err(|e| arg("alert_id", e.to_string())))
            .collect()
        }
    }
}

/// Create a silence for `actor`; returns it and the open alerts it covers now.
pub fn create(
    store: &Store,
    clock: &dyn Clock,
    actor: &str,
    req: &SilenceRequest,
) -> Result<(SilenceRow, Vec<String>), SilenceError> {
    let now = clock.now_ms();
    let matchers = request_matchers(store, req)?;
    let comment = check_comment(req.comment.as_deref())?;
    let starts = match &req.starts_at {
        Some(t) => parse_time("starts_at", t)?,
        None => now,
    };
    let max = MAX_SILENCE.as_millis() as Millis;
    if starts > now + max {
        return Err(arg("starts_at", "must be within 90 days from now"));
    }
    let ends = match (&req.duration, &req.ends_at) {
        (Some(_), Some(_)) => {
            return Err(arg(
                "duration",
                "give either `duration` or `ends_at`, not both",
            ));
        }
        (None, None) => {
            return Err(arg(
                "duration",
                "is required (e.g. \"2h\", at most \"90d\"), or give `ends_at`",
            ));
        }
        (Some(d), None) => {
            let d = crate::monitor::parse_duration("duration", d).map_err(|e| {
                let crate::monitor::ScheduleError::Invalid { reason, .. } = e;
                arg("duration", reason)
            })?;
            if d.is_zero() || d > MAX_SILENCE {
                return Err(arg("duration", "must be longer than 0 and at most 90d"));
            }
            starts + d.as_millis() as Millis
        }
        (None, Some(t)) => {
            let end = parse_time("ends_at", t)?;
            if end <= starts.max(now) {
                return Err(arg("ends_at", "must be later than the start and than now"));
            }
            if end - starts > max {
                return Err(arg("ends_at", "a silence lasts at most 90 days"));
            }
            end
        }
    };
    if ends <= now {
        return Err(arg(
            "starts_at",
            format!(
                "the silence would be over already (it would end at {}); start it later or make it longer",
                rfc3339(ends)
            ),
        ));
    }
    let texts: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
    let new = NewSilence {
        matchers: &texts,
        author: actor,
        comment: &comment,
        starts_ms: starts,
        ends_ms: ends,
    };
    let out = store.alerts_tx(|tx| {
        let row = tx.silence_insert(&new, now)?;
        let mut covered = Vec::new();
        if row.active_at(now) {
            let detail = format!(
                "{} until {}: {}",
                row.sil_id(),
                rfc3339(row.ends_ms),
                row.comment
            );
            for a in tx.open_all()? {
                if mutes(&matchers, &a) {
                    tx.event_by(a.seq, now, "silenced", actor, Some(&detail))?;
                    covered.push(a.id());
                }
            }
        }
        Ok::<_, SilenceError>((row, covered))
    })?;
    Ok(out)
}

/// End a silence now for `actor` (unsilence); returns it and the open alerts it covered.
pub fn expire(
    store: &Store,
    clock: &dyn Clock,
    actor: &str,
    id: &str,
) -> Result<(SilenceRow, Vec<String>), SilenceError> {
    let now = clock.now_ms();
    let n = parse_silence_id(id)
        .ok_or_else(|| arg("silence_id", "write a silence id as listed, e.g. `SIL-3`"))?;
    store.alerts_tx(|tx| {
        let row = match tx.silence_expire(n, actor, now)? {
            SilenceChange::Done(row) => *row,
            SilenceChange::NotFound => {
                return Err(arg("silence_id", format!("no silence {}", id.trim())));
            }
            SilenceChange::AlreadyEnded {
                ends_ms,
                removed_by,
            } => {
                return Err(SilenceError::Refused(format!(
                    "silence {} already ended at {}{}",
                    id.trim(),
                    rfc3339(ends_ms),
                    removed_by
                        .map(|b| format!(" (ended by {b})"))
                        .unwrap_or_default()
                )));
            }
        };
        let matchers: Vec<Matcher> = row
            .matchers
            .iter()
            .filter_map(|t| Matcher::parse(t).ok())
            .collect();
        let mut covered = Vec::new();
        if !matchers.is_empty() {
            let detail = format!("{} ended early", row.sil_id());
            for a in tx.open_all()? {
                if mutes(&matchers, &a) {
                    tx.event_by(a.seq, now, "unsilenced", actor, Some(&detail))?;
                    covered.push(a.id());
                }
            }
        }
        Ok((row, covered))
    })
}

/// Silences for listing: those not ended (or all), newest first.
pub fn list(
    store: &Store,
    clock: &dyn Clock,
    include_ended: bool,
) -> Result<Vec<SilenceView>, StoreError> {
    let now = clock.now_ms();
    Ok(store
        .silences_list(include_ended, now, 500)?
        .iter()
        .map(|s| SilenceView::of(s, now))
        .collect())
}

#[cfg(test)]
#[path = "silence_tests.rs"]
mod tests;
