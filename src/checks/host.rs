//! Host metrics with sysinfo: CPU, memory, swap, disk per mount, load and uptime, judged
//! against the operations manual's thresholds (CPU warn 80 %, memory warn 85 %, disk warn
//! 85 %). Used by wazuh_health's `host` section and the `host_metrics` tool.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Finding, NoArgs, Severity, Summary};
use crate::config::HealthConfig;

/// Thresholds in percent; critical is halfway between warning and 100 unless configured.
#[derive(Debug, Clone, Copy)]
pub struct HostThresholds {
    pub cpu_warn: f64,
    pub memory_warn: f64,
    pub disk_warn: f64,
}

impl From<&HealthConfig> for HostThresholds {
    fn from(h: &HealthConfig) -> Self {
        Self {
            cpu_warn: h.cpu_warn_percent,
            memory_warn: h.memory_warn_percent,
            disk_warn: h.disk_warn_percent,
        }
    }
}

impl Default for HostThresholds {
    fn default() -> Self {
        Self {
            cpu_warn: 80.0,
            memory_warn: 85.0,
            disk_warn: 85.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DiskUsage {
    pub mount: String,
    pub filesystem: String,
    pub total_bytes: u64,
    pub used_percent: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HostReport {
    pub hostname: Option<String>,
    pub cpu_percent: f64,
    pub cpu_count: usize,
    pub memory_percent: f64,
    pub memory_total_bytes: u64,
    pub swap_percent: f64,
    /// Highest usage among real filesystems.
    pub disk_percent: f64,
    pub disks: Vec<DiskUsage>,
    pub load_1m: f64,
    pub load_5m: f64,
    pub load_15m: f64,
    pub uptime_secs: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

/// Filesystems that are not storage.
const PSEUDO_FS: &[&str] = &[
    "tmpfs",
    "devtmpfs",
    "squashfs",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "nsfs",
    "efivarfs",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "fusectl",
    "configfs",
    "hugetlbfs",
    "ramfs",
    "autofs",
    "binfmt_misc",
    "rpc_pipefs",
    "nfsd",
];

fn pct(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        round1(used as f64 * 100.0 / total as f64)
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// host_metrics: measure the host and judge it against the thresholds.
pub async fn run(th: &HostThresholds, _args: &NoArgs) -> Result<HostReport, String> {
    measure(*th).await
}

impl Summary for HostReport {
    fn summary(&self) -> String {
        format!(
            "CPU {:.1} %, memory {:.1} %, fullest disk {:.1} %, load {:.2}; {}.",
            self.cpu_percent,
            self.memory_percent,
            self.disk_percent,
            self.load_1m,
            crate::util::count(self.findings.len() as u64, "finding", "findings")
        )
    }
}

/// Measure the host. CPU usage needs two samples, so this takes about 250 ms; it runs on a
/// blocking thread.
pub async fn measure(th: HostThresholds) -> Result<HostReport, String> {
    tokio::task::spawn_blocking(move || measure_blocking(th))
        .await
        .map_err(|e| format!("host metrics task failed: {e}"))?
}

fn measure_blocking(th: HostThresholds) -> Result<HostReport, String> {
    use sysinfo::{Disks, System};
    let mut sys = System::new().map_err(|e| format!("cannot read system metrics: {e}"))?;
    sys.refresh_cpu_usage();
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(200)));
    sys.refresh_cpu_usage();
    sys.refresh_memory();
    let cpu_percent = round1(sys.global_cpu_usage() as f64);
    let memory_percent = pct(sys.used_memory(), sys.total_memory());
    let swap_percent = pct(sys.used_swap(), sys.total_swap());
    let mut disks = Vec::new();
    if let Ok(list) = Disks::new_with_refreshed_list() {
        for d in list.iter() {
            let fs = d.file_system().to_string_lossy().to_string();
            if d.total_space() == 0 || PSEUDO_FS.contains(&fs.as_str()) {
                continue;
            }
            let used = d.total_space().saturating_sub(d.available_space());
            disks.push(DiskUsage {
                mount: d.mount_point().display().to_string(),
                filesystem: fs,
                total_bytes: d.total_space(),
                used_percent: pct(used, d.total_space()),
            });
        }
    }
    disks.sort_by(|a, b| a.mount.cmp(&b.mount));
    disks.dedup_by(|a, b| a.mount == b.mount);
    let disk_percent = disks.iter().map(|d| d.used_percent).fold(0.0, f64::max);
    let load = System::load_average().ok();
    let mut r = HostReport {
        hostname: System::host_name().ok(),
        cpu_percent,
        cpu_count: sys.cpus().len(),
        memory_percent,
        memory_total_bytes: sys.total_memory(),
        swap_percent,
        disk_percent,
        disks,
        load_1m: load.as_ref().map_or(0.0, |l| round1(l.one)),
        load_5m: load.as_ref().map_or(0.0, |l| round1(l.five)),
        load_15m: load.as_ref().map_or(0.0, |l| round1(l.fifteen)),
        uptime_secs: System::uptime().unwrap_or(0),
        findings: Vec::new(),
    };
    r.findings = judge(&r, th);
    Ok(r)
}

fn critical_of(warn: f64) -> f64 {
    warn + (100.0 - warn) / 2.0
}

/// Findings for a measured host (pure, so thresholds are unit-tested).
pub fn judge(r: &HostReport, th: HostThresholds) -> Vec<Finding> {
    let mut f = Vec::new();
    let mut check = |value: f64, warn: f64, code: &str, what: &str, remedy: &str| {
        if value >= warn {
            let sev = if value >= critical_of(warn) {
                Severity::Critical
            } else {
                Severity::Warning
            };
            f.push(
                Finding::new(
                    sev,
                    code,
                    format!("{what} at {value:.1} % (warning at {warn:.0} %)"),
                )
                .with_remediation(remedy),
            );
        }
    };
    check(
        r.cpu_percent,
        th.cpu_warn,
        "host_cpu_high",
        "CPU usage",
        "Find the busy process (top); on a Wazuh manager check analysisd's event queue and noisy rules or agents.",
    );
    check(
        r.memory_percent,
        th.memory_warn,
        "host_memory_high",
        "Memory usage",
        "Check the indexer JVM heap (at most half of RAM) and wazuh-db; add memory or reduce retention.",
    );
    for d in &r.disks {
        check(
            d.used_percent,
            th.disk_warn,
            "host_disk_high",
            &format!("Disk usage of {}", d.mount),
            "Free space: rotate or delete old alert indices (ISM policy), clean /var/ossec/logs archives.",
        );
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(cpu: f64, mem: f64, disk: f64) -> HostReport {
        HostReport {
            hostname: None,
            cpu_percent: cpu,
            cpu_count: 2,
            memory_percent: mem,
            memory_total_bytes: 1,
            swap_percent: 0.0,
            disk_percent: disk,
            disks: vec![DiskUsage {
                mount: "/".into(),
                filesystem: "ext4".into(),
                total_bytes: 1,
                used_percent: disk,
            }],
            load_1m: 0.0,
            load_5m: 0.0,
            load_15m: 0.0,
            uptime_secs: 0,
            findings: vec![],
        }
    }

    #[test]
    fn thresholds_follow_the_operations_manual() {
        let th = HostThresholds::default();
        assert!(judge(&report(79.9, 84.9, 84.9), th).is_empty());
        let f = judge(&report(80.0, 85.0, 86.0), th);
        let codes: Vec<_> = f.iter().map(|f| (f.code.as_str(), f.severity)).collect();
        assert_eq!(
            codes,
            vec![
                ("host_cpu_high", Severity::Warning),
                ("host_memory_high", Severity::Warning),
                ("host_disk_high", Severity::Warning)
            ]
        );
        let f = judge(&report(95.0, 50.0, 99.0), th);
        assert!(f.iter().all(|f| f.severity == Severity::Critical));
    }

    #[tokio::test]
    async fn measures_this_host() {
        let r = measure(HostThresholds::default()).await.unwrap();
        assert!(r.cpu_count >= 1);
        assert!(r.memory_total_bytes > 0);
        assert!((0.0..=100.0).contains(&r.memory_percent));
        assert!((0.0..=100.0).contains(&r.cpu_percent));
    }
}
