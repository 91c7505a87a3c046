//! The `logs` component: the manager's error and critical log entries in the window,
//! counted by their own level and tag, critical only when recent.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::request::{bounded, ready};
use super::{ComponentStatus, HealthDeps, parse_loose_time, status_of};
use crate::checks::{Finding, Severity};
use crate::wazuh::types::LogEntry;

/// How many recent error lines are quoted.
const MAX_RECENT_LOGS: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LogsSection {
    pub check: ComponentStatus,
    /// Start of the window (argument `since`, default 24 h ago): entries at or after it are
    /// counted. The verdict depends on the window only, never on who asked before.
    pub since: String,
    /// Critical entries at or after this time make the component critical.
    pub critical_since: String,
    /// Entries in the window by their own `level` (`error`, `critical`).
    pub by_level: BTreeMap<String, u64>,
    pub errors_by_tag: BTreeMap<String, u64>,
    pub critical_by_tag: BTreeMap<String, u64>,
    /// Critical entries since `critical_since`.
    pub recent_critical: u64,
    /// The newest error and critical lines in the window (sanitised: log text is
    /// untrusted).
    pub recent: Vec<LogEntry>,
    /// Entries returned with another level than the one asked for (a proxy or manager that
    /// ignores the filter): not counted.
    pub ignored_other_level: u64,
    /// True when a level had more entries in the window than one read returns (500): the
    /// counts are lower bounds.
    pub truncated: bool,
    pub error: Option<String>,
}

/// The logs component's window: counted from `since`; critical when critical entries are
/// at or after `critical_since`.
pub struct LogWindow {
    pub since: OffsetDateTime,
    pub critical_since: OffsetDateTime,
}

/// Entries read per level (the API's maximum page).
const LOG_PAGE: u32 = 500;

pub(super) async fn check(
    deps: &HealthDeps<'_>,
    timeout: Duration,
    window: &LogWindow,
) -> (LogsSection, Vec<Finding>) {
    let mut s = LogsSection {
        check: ComponentStatus::NotConfigured,
        since: crate::util::rfc3339(window.since),
        critical_since: crate::util::rfc3339(window.critical_since),
        by_level: BTreeMap::new(),
        errors_by_tag: BTreeMap::new(),
        critical_by_tag: BTreeMap::new(),
        recent_critical: 0,
        recent: Vec::new(),
        ignored_other_level: 0,
        truncated: false,
        error: None,
    };
    let m = match ready(deps, timeout).await {
        Ok(m) => m,
        Err(stop) => {
            (s.check, s.error) = (stop.check, Some(stop.error));
            return (s, Vec::new());
        }
    };
    let mut f = Vec::new();
    let (errors, criticals) = tokio::join!(
        bounded(
            timeout,
            "GET /manager/logs?level=error",
            m.logs(Some("error"), LOG_PAGE)
        ),
        bounded(
            timeout,
            "GET /manager/logs?level=critical",
            m.logs(Some("critical"), LOG_PAGE)
        ),
    );
    let (errors, criticals) = match (errors, criticals) {
        (Ok(e), Ok(c)) => (e, c),
        (Err(e), _) | (_, Err(e)) => {
            s.check = ComponentStatus::Error;
            s.error = Some(e.into());
            return (s, f);
        }
    };
    let mut recent = Vec::new();
    for (asked, entries, by_tag) in [
        ("error", &errors.items, &mut s.errors_by_tag),
        ("critical", &criticals.items, &mut s.critical_by_tag),
    ] {
        let mut oldest_in_window = true;
        for e in entries {
            // Counted by the entry's own level: a server that ignores the filter must not
            // turn info lines into criticals.
            let level = e.level.as_deref().map(|l| l.trim().to_ascii_lowercase());
            if level.as_deref() != Some(asked) {
                s.ignored_other_level += 1;
                continue;
            }
            // An unparsable timestamp counts as in the window: better counted than missed.
            let at = e.timestamp.as_deref().and_then(parse_loose_time);
            oldest_in_window = at.is_none_or(|t| t >= window.since);
            if !oldest_in_window {
                continue;
            }
            if asked == "critical" && at.is_some_and(|t| t >= window.critical_since) {
                s.recent_critical += 1;
            }
            let tag = crate::util::sanitize_untrusted(
                e.tag.as_deref().unwrap_or("unknown").as_bytes(),
                64,
            );
            *by_tag.entry(tag).or_default() += 1;
            *s.by_level.entry(asked.to_string()).or_default() += 1;
            recent.push(e.clone());
        }
        // A full page whose oldest entry is still in the window: there may be more.
        if entries.len() >= LOG_PAGE as usize && oldest_in_window {
            s.truncated = true;
        }
    }
    recent.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
    recent.truncate(MAX_RECENT_LOGS);
    s.recent = recent
        .into_iter()
        .map(|mut e| {
            e.description = crate::util::sanitize_untrusted(e.description.as_bytes(), 300);
            e.tag = e
                .tag
                .map(|t| crate::util::sanitize_untrusted(t.as_bytes(), 64));
            e.level = e
                .level
                .map(|t| crate::util::sanitize_untrusted(t.as_bytes(), 16));
            e
        })
        .collect();
    let at_least = if s.truncated { "at least " } else { "" };
    let n_err: u64 = s.errors_by_tag.values().sum();
    let n_crit: u64 = s.critical_by_tag.values().sum();
    let entries = |n: u64| crate::util::plural(n, "entry", "entries");
    if s.recent_critical > 0 {
        let n = s.recent_critical;
        f.push(
            Finding::new(
                Severity::Critical,
                "logs_critical",
                format!(
                    "{n} critical log {} since {}",
                    entries(n),
                    s.critical_since
                ),
            )
            .with_remediation("Read them in /var/ossec/logs/ossec.log (grep CRITICAL) and act before they cascade."),
        );
    } else if n_crit > 0 {
        f.push(
            Finding::new(
                Severity::Warning,
                "logs_critical_earlier",
                format!(
                    "{at_least}{n_crit} critical log {} since {}, none since {} ({})",
                    entries(n_crit),
                    s.since,
                    s.critical_since,
                    top_tags(&s.critical_by_tag)
                ),
            )
            .with_remediation("Check that what they reported was fixed (/var/ossec/logs/ossec.log, grep CRITICAL)."),
        );
    }
    if n_err > 0 {
        f.push(
            Finding::new(
                Severity::Warning,
                "logs_errors",
                format!(
                    "{at_least}{n_err} error log {} since {} ({})",
                    entries(n_err),
                    s.since,
                    top_tags(&s.errors_by_tag)
                ),
            )
            .with_remediation("Group them by daemon (tag); recurring errors from one daemon usually point at its configuration or a full disk."),
        );
    }
    if s.ignored_other_level > 0 {
        f.push(Finding::new(
            Severity::Info,
            "logs_level_mismatch",
            format!(
                "the manager returned {} log {} at a level that was not asked for; they were not counted",
                s.ignored_other_level,
                entries(s.ignored_other_level)
            ),
        ));
    }
    s.check = status_of(&f);
    (s, f)
}

fn top_tags(by_tag: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = by_tag.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .take(3)
        .map(|(t, n)| format!("{t}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
