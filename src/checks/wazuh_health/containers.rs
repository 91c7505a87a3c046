//! The `containers` component: container_status for the Wazuh containers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::{ComponentStatus, HealthDeps, status_of};
use crate::checks::Finding;
use crate::checks::containers::ContainersReport;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ContainersSection {
    pub check: ComponentStatus,
    #[serde(flatten)]
    pub report: ContainersReport,
}

pub(super) async fn check(
    deps: &HealthDeps<'_>,
    timeout: Duration,
) -> (ContainersSection, Vec<Finding>) {
    let mut r = crate::checks::containers::check(
        deps.settings.docker_host.as_deref(),
        &deps.settings.container_filter,
        timeout,
    )
    .await;
    let f = std::mem::take(&mut r.findings);
    let check = if r.available {
        status_of(&f)
    } else {
        ComponentStatus::NotConfigured
    };
    (ContainersSection { check, report: r }, f)
}
