//! The `host` monitor kind: host_metrics against CPU / memory / disk thresholds (80 / 85 /
//! 90 % by default), one observation per metric (per mount for disks), fine metrics
//! included so their alerts count towards resolving. Each metric has its own `for`
//! (CPU 15m, memory 10m, disk 0), exposed per code by [`HostSettings::for_by_code`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{KeyError, KindKeys, KindRun, ser_duration, subject};
use crate::alerts::{Level, Observation};
use crate::checks::host::{self, HostReport, HostThresholds};

pub const CPU: &str = "host_cpu_high";
pub const MEMORY: &str = "host_memory_high";
pub const DISK: &str = "host_disk_high";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostSettings {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
    #[serde(serialize_with = "ser_duration")]
    pub cpu_for: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub memory_for: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub disk_for: Duration,
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            cpu_percent: 80.0,
            memory_percent: 85.0,
            disk_percent: 90.0,
            cpu_for: Duration::from_secs(15 * 60),
            memory_for: Duration::from_secs(10 * 60),
            disk_for: Duration::ZERO,
        }
    }
}

impl HostSettings {
    pub fn parse(k: &mut KindKeys) -> Result<Self, KeyError> {
        let d = HostSettings::default();
        Ok(HostSettings {
            cpu_percent: k.percent("cpu_percent")?.unwrap_or(d.cpu_percent),
            memory_percent: k.percent("memory_percent")?.unwrap_or(d.memory_percent),
            disk_percent: k.percent("disk_percent")?.unwrap_or(d.disk_percent),
            cpu_for: k.duration("cpu_for")?.unwrap_or(d.cpu_for),
            memory_for: k.duration("memory_for")?.unwrap_or(d.memory_for),
            disk_for: k.duration("disk_for")?.unwrap_or(d.disk_for),
        })
    }

    pub fn for_by_code(&self) -> BTreeMap<String, Duration> {
        BTreeMap::from([
            (CPU.to_string(), self.cpu_for),
            (MEMORY.to_string(), self.memory_for),
            (DISK.to_string(), self.disk_for),
        ])
    }
}

pub async fn observe(s: &HostSettings) -> Result<KindRun, String> {
    let th = HostThresholds {
        cpu_warn: s.cpu_percent,
        memory_warn: s.memory_percent,
        disk_warn: s.disk_percent,
    };
    let report = host::measure(th).await?;
    Ok(map_report(&report, s))
}

/// Warning at the threshold, critical halfway from it to 100 %.
fn level(value: f64, warn: f64) -> Option<Level> {
    if value < warn {
        None
    } else if value >= warn + (100.0 - warn) / 2.0 {
        Some(Level::Critical)
    } else {
        Some(Level::Warning)
    }
}

pub fn map_report(r: &HostReport, s: &HostSettings) -> KindRun {
    let host = r.hostname.clone().unwrap_or_else(|| "this host".into());
    let one = |code: &str, subj: BTreeMap<String, String>, what: String, value: f64, warn: f64| {
        let level = level(value, warn);
        Observation {
            code: code.to_string(),
            subject: subj,
            level,
            title: format!("{what} on {host} at {value:.1} %"),
            summary: format!(
                "{what} on {host} is {value:.1} % (threshold {warn:.0} %){}",
                if level.is_some() {
                    "."
                } else {
                    ", within bounds."
                }
            ),
            value: Some(format!("{value:.1} %")),
        }
    };
    let mut observations = vec![
        one(
            CPU,
            BTreeMap::new(),
            "CPU usage".into(),
            r.cpu_percent,
            s.cpu_percent,
        ),
        one(
            MEMORY,
            BTreeMap::new(),
            "Memory usage".into(),
            r.memory_percent,
            s.memory_percent,
        ),
    ];
    for d in &r.disks {
        observations.push(one(
            DISK,
            subject("mount", &d.mount),
            format!("Disk usage of {}", d.mount),
            d.used_percent,
            s.disk_percent,
        ));
    }
    KindRun {
        observations,
        complete: true,
    }
}
