//! The `[monitoring]` section: engine-wide settings of the monitors and their delivery
//! (how long finished runs, resolved alerts and delivered notifications are kept; how many
//! times a notification is tried before it is dead-lettered).

use serde::Serialize;

use super::ConfigError;
use super::env::{Key, within};
use super::file::FileMonitoring;

/// Engine-wide monitoring settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitoringConfig {
    /// Monitor runs, resolved alerts and delivered notifications older than this many days
    /// are deleted by the daily clean-up (the audit log never is).
    pub retention_days: u32,
    /// A notification is dead-lettered after this many attempts.
    pub max_attempts: u32,
    /// At most this many monitor runs at once; due monitors beyond it wait their turn.
    pub max_concurrent_runs: u32,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            retention_days: 30,
            max_attempts: 10,
            max_concurrent_runs: crate::monitor::scheduler::DEFAULT_MAX_RUNNING as u32,
        }
    }
}

pub(super) fn load(f: FileMonitoring) -> Result<MonitoringConfig, ConfigError> {
    let d = MonitoringConfig::default();
    Ok(MonitoringConfig {
        retention_days: within(
            Key::file("monitoring.retention_days"),
            f.retention_days.unwrap_or(d.retention_days),
            1..=3650,
        )?,
        max_attempts: within(
            Key::file("monitoring.max_attempts"),
            f.max_attempts.unwrap_or(d.max_attempts),
            1..=100,
        )?,
        max_concurrent_runs: within(
            Key::file("monitoring.max_concurrent_runs"),
            f.max_concurrent_runs.unwrap_or(d.max_concurrent_runs),
            1..=1000,
        )?,
    })
}
