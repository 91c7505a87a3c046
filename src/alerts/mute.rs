//! What mutes an alert's notifications (firing, repeat, escalation) while it is still
//! evaluated and listed: a silence in force (`SIL-n`), an open maintenance window, or an
//! inhibition by another firing alert, checked in that order. [`Muter`] holds what one
//! evaluation, escalation round or status view needs, read once ([`Muter::read`]). `emergency`
//! alerts are muted only by matchers that name them explicitly (`alerts::matcher::mutes`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use schemars::JsonSchema;
use serde::Serialize;

use super::inhibit::{InhibitRule, Inhibition};
use super::matcher::{Matcher, mutes};
use crate::clock::{Millis, rfc3339};
use crate::config::MaintenanceWindow;
use crate::store::StoreError;
use crate::store::alerts::AlertRow;
use crate::store::silences::{MuteSource, SilenceRow};

/// The configured muting besides silences (from `Config::mute_rules`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MuteRules {
    pub maintenance: Vec<MaintenanceWindow>,
    pub inhibit: Vec<InhibitRule>,
}

/// What mutes an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionKind {
    Silence,
    Maintenance,
    Inhibition,
}

/// Why an alert's notifications are held.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Suppression {
    pub kind: SuppressionKind,
    /// The silence (`SIL-3`), the window's name, or the inhibiting alert (`ALR-7`).
    pub by: String,
    /// One line: `silenced by SIL-3 (alice, "renewal", until 2026-...)`,
    /// `in maintenance window sunday-patching until ...`, `inhibited by ALR-7 (...)`.
    pub reason: String,
    /// When it ends (RFC 3339), when that is known.
    pub until: Option<String>,
}

/// One evaluation's view of what mutes: the silences in force, the firing alerts (the
/// inhibition sources) and the rules, at `now`.
pub struct Muter<'r> {
    rules: &'r MuteRules,
    silences: Vec<(SilenceRow, Arc<Vec<Matcher>>)>,
    inhibition: Inhibition<'r>,
    now: Millis,
}

/// A stored silence's matchers never change, so each is parsed (its regexes compiled) once
/// per process, not at every evaluation; the cache is bounded (cleared when full).
fn parsed(s: &SilenceRow) -> Result<Arc<Vec<Matcher>>, super::matcher::MatcherError> {
    const MAX_CACHED: usize = 4096;
    type Cache = Mutex<HashMap<(i64, Vec<String>), Arc<Vec<Matcher>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let key = (s.id, s.matchers.clone());
    if let Some(m) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(m.clone());
    }
    let m: Arc<Vec<Matcher>> = Arc::new(
        s.matchers
            .iter()
            .map(|t| Matcher::parse(t))
            .collect::<Result<_, _>>()?,
    );
    let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
    if c.len() >= MAX_CACHED {
        c.clear();
    }
    c.insert(key, m.clone());
    Ok(m)
}

fn short(text: &str, max: usize) -> String {
    let clean = crate::util::sanitize_untrusted(text.as_bytes(), 4 * max);
    if clean.chars().count() <= max {
        clean
    } else {
        let cut: String = clean.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

impl<'r> Muter<'r> {
    /// From rows already read. A stored silence whose matchers no longer parse (they were
    /// checked when it was created) is skipped with a warning rather than muting anything.
    pub fn new(
        rules: &'r MuteRules,
        silences: Vec<SilenceRow>,
        firing: Vec<AlertRow>,
        now: Millis,
    ) -> Self {
        let silences = silences
            .into_iter()
            .filter_map(|s| {
                match parsed(&s) {
                    Ok(m) => Some((s, m)),
                    Err(e) => {
                        tracing::warn!(silence = %s.sil_id(), error = %e, "skipping a silence whose matchers do not parse");
                        None
                    }
                }
            })
            .collect();
        Muter {
            rules,
            silences,
            inhibition: Inhibition::new(&rules.inhibit, firing),
            now,
        }
    }

    /// Read what is in force at `now` from `src` (an evaluation's or an escalation
    /// round's transaction, or the store); the firing alerts only when a rule needs them.
    pub fn read(
        src: &impl MuteSource,
        rules: &'r MuteRules,
        now: Millis,
    ) -> Result<Self, StoreError> {
        let firing = if rules.inhibit.is_empty() {
            Vec::new()
        } else {
            src.firing_all()?
        };
        Ok(Self::new(rules, src.silences_active(now)?, firing, now))
    }

    /// What mutes `row` now, if anything: a silence, else a maintenance window, else an
    /// inhibition.
    pub fn check(&self, row: &AlertRow) -> Option<Suppression> {
        if let Some((s, _)) = self
            .silences
            .iter()
            .find(|(s, m)| s.active_at(self.now) && mutes(m, row))
        {
            let until = rfc3339(s.ends_ms);
            return Some(Suppression {
                kind: SuppressionKind::Silence,
                by: s.sil_id(),
                reason: format!(
                    "silenced by {} ({}, \"{}\", until {until})",
                    s.sil_id(),
                    short(&s.author, 60),
                    short(&s.comment, 80)
                ),
                until: Some(until),
            });
        }
        for w in &self.rules.maintenance {
            if let Some(end) = w.active_until(self.now)
                && mutes(&w.matchers, row)
            {
                let until = rfc3339(end);
                return Some(Suppression {
                    kind: SuppressionKind::Maintenance,
                    by: w.name.clone(),
                    reason: format!("in maintenance window {} until {until}", w.name),
                    until: Some(until),
                });
            }
        }
        let src = self.inhibition.inhibitor(row)?;
        Some(Suppression {
            kind: SuppressionKind::Inhibition,
            by: src.id(),
            reason: format!("inhibited by {} ({})", src.id(), short(&src.title, 80)),
            until: None,
        })
    }
}
