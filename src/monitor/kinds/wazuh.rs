//! The `wazuh` monitor kind: wazuh_health on an interval. Each finding becomes an
//! observation with the finding's severity; its subject is the daemon, node, index or
//! certificate the finding names, so two stopped daemons are two alerts. A run in which a
//! component could not be checked (timed out, unreachable) is partial: it does not resolve
//! alerts it could not see. Its alerts carry `manager = "<host>:<port>"` of `[wazuh].url`
//! (set at config load, `config/inhibit.rs`), so that the default inhibition rule lets an
//! unreachable manager (`manager_unreachable`) mute the rest of that manager's alerts.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{KeyError, KindKeys, KindRun, level_of};
use crate::alerts::Observation;
use crate::checks::Finding;
use crate::checks::wazuh_health::{self, HealthArgs, HealthReport};
use crate::context::AppContext;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WazuhSettings {
    /// The components checked (default all).
    pub include: Vec<String>,
}

impl WazuhSettings {
    pub fn parse(k: &mut KindKeys) -> Result<Self, KeyError> {
        let include = k.strings("include")?;
        let args = HealthArgs {
            include,
            since: None,
        };
        let include = args
            .components()
            .map_err(|e| k.error("include", e.reason))?;
        Ok(WazuhSettings {
            include: include.into_iter().map(str::to_string).collect(),
        })
    }
}

pub async fn observe(ctx: &AppContext, s: &WazuhSettings) -> Result<KindRun, String> {
    let args = HealthArgs {
        include: Some(s.include.clone()),
        since: None,
    };
    let report = wazuh_health::run(&ctx.health_deps(), &args)
        .await
        .map_err(|e| e.to_string())?;
    Ok(map_report(&report))
}

/// The findings as observations; complete unless a component could not be read in full
/// (its check is `error`, or a request of it failed or timed out): what a run could not
/// read must not count as fine.
pub fn map_report(r: &HealthReport) -> KindRun {
    let json = serde_json::to_value(r).unwrap_or_default();
    KindRun {
        observations: r.findings.iter().map(observation).collect(),
        complete: !failed_component(&json),
    }
}

/// Whether a component section of the report (as JSON) says its check is `error`, or (a
/// configured component) records a failed (`error`) or timed-out (`timed_out`) request.
pub(crate) fn failed_component(json: &serde_json::Value) -> bool {
    json.as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .any(|section| {
            let check = section.get("check").and_then(|c| c.as_str());
            check == Some("error")
                || check.is_some_and(|c| c != "not_configured")
                    && section
                        .get("error")
                        .and_then(|e| e.as_str())
                        .is_some_and(|e| !e.is_empty())
                || section
                    .get("timed_out")
                    .and_then(|t| t.as_array())
                    .is_some_and(|t| !t.is_empty())
        })
}

/// The subject a finding's message names: `daemon X`, `node X`, `index X`,
/// `certificate X` (the word after the noun), none otherwise (the code alone).
pub fn subject_of(message: &str) -> BTreeMap<String, String> {
    let words: Vec<&str> = message.split_whitespace().collect();
    for noun in [
        "daemon",
        "node",
        "index",
        "certificate",
        "container",
        "agent",
    ] {
        if let Some(i) = words.iter().position(|w| *w == noun)
            && let Some(name) = words.get(i + 1)
        {
            let name = name.trim_matches(|c: char| {
                matches!(c, ',' | '.' | ':' | ';' | '(' | ')' | '"' | '`' | '\'')
            });
            if !name.is_empty() && !name.chars().all(|c| c.is_ascii_digit()) {
                return BTreeMap::from([(
                    noun.to_string(),
                    crate::util::quote_untrusted(name, 120),
                )]);
            }
        }
    }
    BTreeMap::new()
}

fn observation(f: &Finding) -> Observation {
    let subject = subject_of(&f.message);
    let mut summary = f.message.clone();
    if let Some(fix) = &f.remediation {
        summary.push_str(". ");
        summary.push_str(fix);
    }
    Observation {
        code: f.code.clone(),
        subject,
        level: Some(level_of(f.severity)),
        title: format!("Wazuh: {}", f.message),
        summary,
        value: None,
    }
}
