//! The manager's daemons: which must run, which are normally stopped, and the findings for
//! a stopped, failed or missing one.

use std::collections::BTreeMap;

use crate::checks::{Finding, Severity};

/// Daemons a default install runs; one of them stopped is critical.
const CORE_DAEMONS: &[&str] = &[
    "wazuh-analysisd",
    "wazuh-remoted",
    "wazuh-db",
    "wazuh-execd",
    "wazuh-modulesd",
    "wazuh-apid",
    "wazuh-authd",
    "wazuh-monitord",
    "wazuh-logcollector",
    "wazuh-syscheckd",
];

/// Daemons that are normally stopped on a default install.
const OPTIONAL_DAEMONS: &[&str] = &[
    "wazuh-maild",
    "wazuh-reportd",
    "wazuh-csyslogd",
    "wazuh-agentlessd",
    "wazuh-integratord",
];

/// Findings for the daemons the manager listed (name -> state): a core daemon not running
/// is critical, a failed one a warning, a core daemon missing from the list a warning.
pub(super) fn judge(daemons: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut f = Vec::new();
    for (name, state) in daemons {
        let running = state == "running";
        if CORE_DAEMONS.contains(&name.as_str()) && !running {
            f.push(
                Finding::new(
                    Severity::Critical,
                    "daemon_stopped",
                    format!("core daemon {name} is {state}"),
                )
                .with_remediation(format!(
                    "Read /var/ossec/logs/ossec.log for {name}'s last errors, then restart the manager (systemctl restart wazuh-manager)."
                )),
            );
        } else if OPTIONAL_DAEMONS.contains(&name.as_str()) && state == "failed" {
            f.push(Finding::new(
                Severity::Warning,
                "daemon_failed",
                format!("optional daemon {name} has failed"),
            ));
        } else if !CORE_DAEMONS.contains(&name.as_str())
            && !OPTIONAL_DAEMONS.contains(&name.as_str())
            && state == "failed"
        {
            f.push(Finding::new(
                Severity::Warning,
                "daemon_failed",
                format!("daemon {name} has failed"),
            ));
        }
    }
    for core in CORE_DAEMONS {
        if !daemons.is_empty() && !daemons.contains_key(*core) {
            f.push(Finding::new(
                Severity::Warning,
                "daemon_missing",
                format!("core daemon {core} is not listed by the manager"),
            ));
        }
    }
    f
}
