//! A monitor's [`MonitorPolicy`]: thresholds, durations, and where each level's
//! notifications go (channels, and channels addressed to contacts).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::LifecycleError;
use crate::alerts::Level;
use crate::alerts::mute::MuteRules;
use crate::store::alerts::Target;

/// What the lifecycle needs to know about one monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorPolicy {
    pub name: String,
    /// Added to every alert's labels and to the group's labels.
    pub labels: BTreeMap<String, String>,
    /// Consecutive failing observations before an alert fires (default 1).
    pub failure_threshold: u32,
    /// Consecutive fine observations before an alert resolves (default 1).
    pub success_threshold: u32,
    /// How long the condition must hold before firing (default 0).
    pub for_duration: Duration,
    /// A `for` per finding code that overrides `for_duration` (the host monitor: CPU 15 min,
    /// memory 10 min, disk 0).
    pub for_by_code: BTreeMap<String, Duration>,
    /// How often a firing, unacknowledged alert is announced again (default 4 h; 0: never).
    pub repeat_interval: Duration,
    /// How long a firing notification waits for more of the monitor's alerts (default 30 s).
    pub group_wait: Duration,
    /// Level -> the channels that are told.
    pub routes: BTreeMap<Level, Vec<String>>,
    /// Level -> channels addressed to one contact each (routes `contact:<name or role>`,
    /// resolved against `[[contacts]]` at config load): told like `routes`, row by row.
    pub contact_routes: BTreeMap<Level, Vec<Target>>,
    /// How long the outbox may keep trying a notification (default 24 h).
    pub delivery_deadline: Duration,
    /// Maintenance windows and inhibition rules (silences are in the store); see `held.rs`.
    pub mute: Arc<MuteRules>,
}

impl MonitorPolicy {
    /// A policy with the defaults and no routes.
    pub fn new(name: impl Into<String>) -> Self {
        MonitorPolicy {
            name: name.into(),
            labels: BTreeMap::new(),
            failure_threshold: 1,
            success_threshold: 1,
            for_duration: Duration::ZERO,
            for_by_code: BTreeMap::new(),
            repeat_interval: Duration::from_secs(4 * 3600),
            group_wait: Duration::from_secs(30),
            routes: BTreeMap::new(),
            contact_routes: BTreeMap::new(),
            delivery_deadline: Duration::from_secs(24 * 3600),
            mute: Arc::default(),
        }
    }

    /// Route a level to channels (builder style).
    pub fn route(mut self, level: Level, channels: &[&str]) -> Self {
        self.routes
            .insert(level, channels.iter().map(|c| c.to_string()).collect());
        self
    }

    /// Route a level to `contact` on `channel` too (builder style).
    pub fn route_contact(mut self, level: Level, channel: &str, contact: &str) -> Self {
        self.contact_routes
            .entry(level)
            .or_default()
            .push(Target::contact(channel, contact));
        self
    }

    /// Check the settings; the error names the field.
    pub fn validate(&self) -> Result<(), LifecycleError> {
        let bad = |field: &'static str, problem: &str| LifecycleError::Policy {
            monitor: self.name.clone(),
            field,
            problem: problem.to_string(),
        };
        if self.name.trim().is_empty() {
            return Err(bad("name", "must not be empty"));
        }
        if self.failure_threshold == 0 {
            return Err(bad("failure_threshold", "must be at least 1"));
        }
        if self.success_threshold == 0 {
            return Err(bad("success_threshold", "must be at least 1"));
        }
        if self.delivery_deadline.is_zero() {
            return Err(bad("delivery_deadline", "must be longer than 0"));
        }
        for (level, channels) in &self.routes {
            if channels.iter().any(|c| c.trim().is_empty()) {
                return Err(bad(
                    "routes",
                    &format!("{} has an empty channel name", level.as_str()),
                ));
            }
        }
        for (level, targets) in &self.contact_routes {
            if targets.iter().any(|t| {
                t.channel.trim().is_empty()
                    || t.contact.as_deref().is_none_or(|c| c.trim().is_empty())
            }) {
                return Err(bad(
                    "contact_routes",
                    &format!("{} needs a channel and a contact", level.as_str()),
                ));
            }
        }
        Ok(())
    }

    /// Everyone a level's notifications go to: the routed channels, then the contacts'
    /// (each once).
    pub(super) fn targets(&self, level: Level) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        let channels = self.routes.get(&level).into_iter().flatten();
        let contacts = self.contact_routes.get(&level).into_iter().flatten();
        for t in channels.map(Target::channel).chain(contacts.cloned()) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    pub(super) fn group_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        l.insert("monitor".into(), self.name.clone());
        l
    }
}
