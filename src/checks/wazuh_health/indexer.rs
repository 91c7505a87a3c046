//! The `indexer` component: the indexer's cluster health (green, yellow, red).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::request::bounded;
use super::{ComponentStatus, HealthDeps, status_of};
use crate::checks::{Finding, Severity};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IndexerSection {
    pub check: ComponentStatus,
    pub reachable: bool,
    pub url: Option<String>,
    /// `green`, `yellow` or `red`.
    pub status: Option<String>,
    pub unassigned_shards: Option<u64>,
    pub number_of_nodes: Option<u64>,
    pub error: Option<String>,
}

pub(super) async fn check(
    deps: &HealthDeps<'_>,
    timeout: Duration,
) -> (IndexerSection, Vec<Finding>) {
    let mut s = IndexerSection {
        check: ComponentStatus::NotConfigured,
        reachable: false,
        url: None,
        status: None,
        unassigned_shards: None,
        number_of_nodes: None,
        error: None,
    };
    let Some(ix) = deps.indexer else {
        s.error = Some(
            "Wazuh indexer not configured: set SECOPS_INDEXER_URL, SECOPS_INDEXER_USER and \
             SECOPS_INDEXER_PASSWORD (or _FILE)"
                .to_string(),
        );
        return (s, Vec::new());
    };
    s.url = Some(ix.base_url().to_string());
    let mut f = Vec::new();
    match bounded(timeout, "GET /_cluster/health", ix.health()).await {
        Ok(h) => {
            s.reachable = true;
            s.unassigned_shards = h.unassigned_shards;
            s.number_of_nodes = h.number_of_nodes;
            let shards = h.unassigned_shards.unwrap_or(0);
            match h.status.as_deref() {
                Some("green") => {}
                Some("yellow") => f.push(
                    Finding::new(
                        Severity::Warning,
                        "indexer_yellow",
                        format!("indexer cluster is yellow: {shards} unassigned shards (replicas not allocated)"),
                    )
                    .with_remediation("On a single-node indexer set number_of_replicas to 0 for wazuh-* indices; otherwise check that every indexer node is up and has disk below the watermarks."),
                ),
                Some("red") => f.push(
                    Finding::new(
                        Severity::Critical,
                        "indexer_red",
                        format!("indexer cluster is red: {shards} unassigned shards; some primary data is unavailable"),
                    )
                    .with_remediation("GET _cluster/allocation/explain shows why; usually a node is down or disk passed the flood-stage watermark."),
                ),
                other => f.push(Finding::new(
                    Severity::Warning,
                    "indexer_status_unknown",
                    format!(
                        "indexer reported status {}",
                        crate::util::sanitize_untrusted(other.unwrap_or("(none)").as_bytes(), 20)
                    ),
                )),
            }
            s.status = h.status;
        }
        Err(e) => {
            s.check = ComponentStatus::Error;
            f.push(
                Finding::new(
                    Severity::Critical,
                    "indexer_unreachable",
                    format!("Wazuh indexer cannot be used: {}", e.message),
                )
                .with_remediation("Check that wazuh-indexer is running (systemctl status wazuh-indexer), port 9200 is reachable, and the indexer credentials and CA file are right."),
            );
            s.error = Some(e.into());
            return (s, f);
        }
    }
    s.check = status_of(&f);
    (s, f)
}
