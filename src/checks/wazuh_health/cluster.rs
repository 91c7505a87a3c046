//! The `cluster` component: whether the cluster runs and every node checked in recently.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use time::OffsetDateTime;

use super::request::{bounded, ready};
use super::{ComponentStatus, HealthDeps, parse_loose_time, status_of};
use crate::checks::{Finding, Severity};
use crate::wazuh::types::NodeHealth;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ClusterSection {
    pub check: ComponentStatus,
    pub enabled: Option<bool>,
    pub running: Option<bool>,
    pub nodes: Vec<NodeHealth>,
    pub error: Option<String>,
}

pub(super) async fn check(
    deps: &HealthDeps<'_>,
    timeout: Duration,
) -> (ClusterSection, Vec<Finding>) {
    let mut s = ClusterSection {
        check: ComponentStatus::NotConfigured,
        enabled: None,
        running: None,
        nodes: Vec::new(),
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
    let status = match bounded(timeout, "GET /cluster/status", m.cluster_status()).await {
        Ok(st) => st,
        Err(e) => {
            s.check = ComponentStatus::Error;
            s.error = Some(e.into());
            return (s, f);
        }
    };
    s.enabled = status.enabled;
    s.running = status.running;
    if status.enabled == Some(true) {
        if status.running != Some(true) {
            f.push(
                Finding::new(
                    Severity::Critical,
                    "cluster_not_running",
                    "the cluster is enabled but wazuh-clusterd is not running",
                )
                .with_remediation("Check /var/ossec/logs/cluster.log; the cluster key and node names must match on every node, and port 1516 must be open between nodes."),
            );
        } else {
            match bounded(timeout, "GET /cluster/healthcheck", m.cluster_healthcheck()).await {
                Ok(nodes) => {
                    let now = OffsetDateTime::now_utc();
                    for n in &nodes.items {
                        if let Some(ts) = n.last_keep_alive.as_deref().and_then(parse_loose_time) {
                            let age = now - ts;
                            if age > time::Duration::minutes(5) {
                                f.push(
                                    Finding::new(
                                        Severity::Warning,
                                        "cluster_node_stale",
                                        format!(
                                            "cluster node {} last checked in {} minutes ago",
                                            n.name,
                                            age.whole_minutes()
                                        ),
                                    )
                                    .with_remediation("Check the node's wazuh-clusterd and the network between nodes (port 1516)."),
                                );
                            }
                        }
                    }
                    s.nodes = nodes.items;
                }
                Err(e) => s.error = Some(e.into()),
            }
        }
    }
    s.check = status_of(&f);
    (s, f)
}
