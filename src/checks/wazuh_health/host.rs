//! The `host` component: host_metrics under the component timeout.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::{ComponentStatus, HealthDeps, status_of};
use crate::checks::Finding;
use crate::checks::host::{HostReport, HostThresholds};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HostSection {
    pub check: ComponentStatus,
    #[serde(flatten)]
    pub metrics: Option<HostReport>,
    pub error: Option<String>,
}

pub(super) async fn check(deps: &HealthDeps<'_>, timeout: Duration) -> (HostSection, Vec<Finding>) {
    let th = HostThresholds::from(deps.settings);
    match tokio::time::timeout(timeout, crate::checks::host::measure(th)).await {
        Ok(Ok(mut r)) => {
            let f = std::mem::take(&mut r.findings);
            (
                HostSection {
                    check: status_of(&f),
                    metrics: Some(r),
                    error: None,
                },
                f,
            )
        }
        Ok(Err(e)) => (
            HostSection {
                check: ComponentStatus::Error,
                metrics: None,
                error: Some(e),
            },
            Vec::new(),
        ),
        Err(_) => (
            HostSection {
                check: ComponentStatus::Error,
                metrics: None,
                error: Some(format!("no answer within {} ms", timeout.as_millis())),
            },
            Vec::new(),
        ),
    }
}
