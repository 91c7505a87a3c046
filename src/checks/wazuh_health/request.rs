//! One bounded request to Wazuh for a health component: its own timeout, and a
//! [`Failure`] that says which request failed and whether the service was reachable at all;
//! and the start the manager components share ([`ready`]).

use std::future::Future;
use std::time::Duration;

use super::{ComponentStatus, HealthDeps, NOT_CONFIGURED};
use crate::wazuh::{ManagerClient, WazuhError};

/// Why a component could not finish.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) message: String,
    /// The service could not be reached at all (timeout, refused, TLS), as opposed to
    /// answering with an error.
    pub(super) unreachable: bool,
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.message
    }
}

impl Failure {
    pub(super) fn timed_out(&self) -> bool {
        self.message.contains(NO_ANSWER)
    }
}

const NO_ANSWER: &str = "no answer within";

/// Run one request (`what`, e.g. `GET /manager/status`) under its own timeout; `Err` says
/// which request failed and why. Each request of a component gets the whole timeout, so a
/// slow but answering API is measured, not declared dead.
pub(super) async fn bounded<T>(
    timeout: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, WazuhError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure {
            unreachable: e.is_unreachable(),
            message: e.to_string(),
        }),
        Err(_) => {
            let message = format!("{what}: {NO_ANSWER} {} ms", timeout.as_millis());
            crate::calllog::note(crate::calllog::Level::Warning, "wazuh_health", &message);
            Err(Failure {
                message,
                unreachable: true,
            })
        }
    }
}

pub(super) const LOGIN: &str = "login (POST /security/user/authenticate)";

/// Log in (or reuse the cached token) under its own timeout, so the requests after it get
/// their whole timeout.
pub(super) async fn logged_in(m: &ManagerClient, timeout: Duration) -> Result<bool, Failure> {
    bounded(timeout, LOGIN, m.authenticate()).await
}

/// Why a manager component stops before its own requests: its status and error text.
pub(super) struct Stop {
    pub(super) check: ComponentStatus,
    pub(super) error: String,
}

/// The start of the cluster, agents and logs components: the manager client, logged in
/// (`not_configured` without a manager; `error` when the login fails).
pub(super) async fn ready<'a>(
    deps: &HealthDeps<'a>,
    timeout: Duration,
) -> Result<&'a ManagerClient, Stop> {
    let m = deps.manager.ok_or_else(|| Stop {
        check: ComponentStatus::NotConfigured,
        error: NOT_CONFIGURED.to_string(),
    })?;
    logged_in(m, timeout).await.map_err(|e| Stop {
        check: ComponentStatus::Error,
        error: e.into(),
    })?;
    Ok(m)
}
