//! Tests of the kinds' mappings from constructed check reports to observations.

use serde_json::json;

use super::*;
use crate::alerts::Level;
use crate::checks::cert::CertReport;
use crate::checks::host::HostReport;
use crate::checks::scan::ScanReport;
use crate::checks::wazuh_health::HealthReport;

fn cert_result(target: &str, status: &str, findings: serde_json::Value) -> serde_json::Value {
    json!({"target": target, "status": status, "days_left": 5, "not_after": null,
        "hostname_match": true, "chain_valid": true, "verification_error": null,
        "tls_version": null, "cipher": null, "address": null, "chain": [], "bundle": null,
        "findings": findings})
}

#[test]
fn certificates_one_observation_per_problem_target_worst_code() {
    let report: CertReport = serde_json::from_value(json!({
        "results": [
            cert_result("good.example", "ok", json!([])),
            cert_result("soon.example", "critical", json!([
                {"severity": "warning", "code": "cert_weak_key", "message": "weak"},
                {"severity": "critical", "code": "cert_expires_soon", "message": "expires in 5 days",
                 "remediation": "Renew it."}
            ])),
            cert_result("down.example:993", "error", json!([
                {"severity": "critical", "code": "cert_connect_failed", "message": "refused"}
            ])),
        ],
        "summary": {"ok": 1, "warning": 0, "critical": 1, "error": 1},
        "trust_anchors": "system"
    }))
    .unwrap();
    let run = certificates::map_report(&report);
    assert!(run.complete);
    assert_eq!(run.observations.len(), 2, "{run:?}");
    let o = &run.observations[0];
    assert_eq!(o.code, "cert_expires_soon");
    assert_eq!(o.subject["target"], "soon.example");
    assert_eq!(o.level, Some(Level::Critical));
    assert_eq!(o.value.as_deref(), Some("5 days"));
    assert!(o.summary.contains("Renew it."));
    assert_eq!(run.observations[1].code, "cert_connect_failed");
    assert_eq!(run.observations[1].subject["target"], "down.example:993");
}

#[test]
fn wazuh_findings_name_their_subject_and_a_failed_component_makes_the_run_partial() {
    let report: HealthReport = serde_json::from_value(json!({
        "status": "critical", "checked_at": "2026-12-01T00:00:00Z", "duration_ms": 3,
        "findings": [
            {"severity": "critical", "code": "daemon_stopped", "message": "core daemon wazuh-analysisd is stopped"},
            {"severity": "critical", "code": "daemon_stopped", "message": "core daemon wazuh-remoted is stopped"},
            {"severity": "warning", "code": "agents_disconnected", "message": "7 % of agents are disconnected"}
        ],
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let run = wazuh::map_report(&report);
    assert_eq!(run.observations.len(), 3);
    assert_eq!(run.observations[0].subject["daemon"], "wazuh-analysisd");
    assert_eq!(run.observations[1].subject["daemon"], "wazuh-remoted");
    assert!(run.observations[2].subject.is_empty());
    assert_eq!(run.observations[2].level, Some(Level::Warning));
    assert!(run.complete);
    assert!(wazuh::failed_component(
        &json!({"manager": {"check": "critical"}, "logs": {"check": "error"}})
    ));
    assert!(!wazuh::failed_component(
        &json!({"manager": {"check": "critical"}, "status": "critical"})
    ));
    // Logged in, but a request failed after: what it would have read is unknown.
    assert!(wazuh::failed_component(
        &json!({"manager": {"check": "critical", "error": "GET /manager/status: connection refused"}})
    ));
    assert!(wazuh::failed_component(
        &json!({"manager": {"check": "warning", "timed_out": ["GET /manager/status"]}})
    ));
    // A component that is not configured says why, and that is not a failure.
    assert!(!wazuh::failed_component(
        &json!({"indexer": {"check": "not_configured", "error": "set SECOPS_INDEXER_URL"},
                "manager": {"check": "ok", "error": null, "timed_out": []}})
    ));
    assert_eq!(
        wazuh::subject_of("cluster node worker-2 is disconnected.")["node"],
        "worker-2"
    );
    assert!(wazuh::subject_of("CPU at 91 %").is_empty());
}

fn host_report(cpu: f64, mem: f64, disks: &[(&str, f64)]) -> HostReport {
    serde_json::from_value(json!({
        "hostname": "h1", "cpu_percent": cpu, "cpu_count": 2, "memory_percent": mem,
        "memory_total_bytes": 1, "swap_percent": 0.0, "disk_percent": 0.0,
        "disks": disks.iter().map(|(m, p)| json!({"mount": m, "filesystem": "ext4",
            "total_bytes": 1, "used_percent": p})).collect::<Vec<_>>(),
        "load_1m": 0.0, "load_5m": 0.0, "load_15m": 0.0, "uptime_secs": 1
    }))
    .unwrap()
}

#[test]
fn host_one_observation_per_metric_fine_ones_included() {
    let s = HostSettings::default();
    let run = host::map_report(&host_report(85.0, 99.0, &[("/", 50.0), ("/var", 91.0)]), &s);
    let by = |code: &str, mount: Option<&str>| {
        run.observations
            .iter()
            .find(|o| o.code == code && o.subject.get("mount").map(String::as_str) == mount)
            .unwrap_or_else(|| panic!("{code} {mount:?}: {run:?}"))
    };
    assert_eq!(run.observations.len(), 4);
    assert_eq!(by(host::CPU, None).level, Some(Level::Warning));
    assert_eq!(by(host::MEMORY, None).level, Some(Level::Critical));
    assert_eq!(by(host::DISK, Some("/")).level, None);
    assert_eq!(by(host::DISK, Some("/var")).level, Some(Level::Warning));
    assert_eq!(by(host::CPU, None).value.as_deref(), Some("85.0 %"));
}

#[test]
fn scan_opened_ports_warn_or_are_critical_when_risky_and_closed_ports_are_info() {
    let report: ScanReport = serde_json::from_value(json!({
        "target": "127.0.0.1", "addresses": ["127.0.0.1"], "ports": "top100",
        "ports_scanned": 100, "duration_ms": 5, "timeout_ms": 100, "complete": true,
        "hosts": [{"address": "127.0.0.1", "open": [
            {"port": 8080, "service": "http", "banner": null, "tls": null, "risk": null},
            {"port": 6379, "service": "redis", "banner": null, "tls": null, "risk": "data store without authentication"}
        ], "closed_count": 0, "filtered": "", "filtered_count": 0, "inconclusive_count": 0}],
        "changes_since_last": {
            "opened": [{"address": "127.0.0.1", "port": 8080}, {"address": "127.0.0.1", "port": 6379}],
            "closed": [{"address": "127.0.0.1", "port": 22}],
            "previous_scan_at": "2026-11-30T02:00:00Z"
        },
        "findings": []
    }))
    .unwrap();
    let run = scan::map_report(&report);
    assert!(run.complete);
    let levels: Vec<_> = run
        .observations
        .iter()
        .map(|o| (o.code.as_str(), o.subject["port"].as_str(), o.level))
        .collect();
    assert_eq!(
        levels,
        vec![
            ("port_opened", "8080", Some(Level::Warning)),
            ("port_opened", "6379", Some(Level::Critical)),
            ("port_closed", "22", Some(Level::Info)),
        ]
    );
    let mut no_baseline = report.clone();
    no_baseline.changes_since_last = None;
    no_baseline.complete = false;
    let run = scan::map_report(&no_baseline);
    assert!(run.observations.is_empty() && !run.complete);
}

#[test]
fn unknown_kind_and_leftover_keys_are_refused() {
    let scope = Scope::parse(&["127.0.0.0/8".to_string()]).unwrap();
    let cx = KindContext { scan_scope: &scope };
    let mut t = toml::Table::new();
    t.insert("zzz".into(), toml::Value::Integer(1));
    let mut k = KindKeys::new("monitors[3]", t);
    let e = KindSettings::parse("bogus", &mut k, &cx).unwrap_err();
    assert_eq!(e.key, "monitors[3].kind");
    let s = KindSettings::parse("host", &mut k, &cx).unwrap();
    assert_eq!(s.kind(), "host");
    assert_eq!(k.finish().unwrap_err().key, "monitors[3].zzz");
    for kind in KINDS {
        assert!(defaults(kind).is_some(), "{kind}");
    }
    assert_eq!(defaults("uptime").unwrap().failure_threshold, 3);
    assert_eq!(defaults("scan").unwrap().schedule, Some("0 2 * * *"));
}
