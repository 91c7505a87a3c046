//! Container health through the Docker Engine API (bollard): containers whose name matches
//! a filter (default `wazuh`) with state, health, exit code, OOM kill and restart count, and
//! findings for restarting, unhealthy, OOM-killed and non-zero exits. No Docker socket is
//! an answer (`available: false` with the reason), not an error.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Finding, NoArgs, Severity, Summary};
use crate::config::HealthConfig;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ContainerInfo {
    pub name: String,
    pub image: Option<String>,
    /// `running`, `restarting`, `exited`, `created`, `paused`, `dead`.
    pub state: String,
    // Docker marks the health of every container that stops `unhealthy`, whatever its probe
    // said, so a stopped container's health is left out.
    /// `healthy`, `unhealthy` or `starting`; null without a health check or when not running.
    pub health: Option<String>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub restart_count: i64,
    pub started_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ContainersReport {
    pub available: bool,
    /// Why containers could not be listed (no socket, permission, ...).
    pub reason: Option<String>,
    pub engine_api_version: Option<String>,
    pub name_filter: String,
    pub containers: Vec<ContainerInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

impl ContainersReport {
    fn unavailable(filter: &str, reason: String) -> Self {
        ContainersReport {
            available: false,
            reason: Some(reason),
            engine_api_version: None,
            name_filter: filter.to_string(),
            containers: Vec::new(),
            findings: Vec::new(),
        }
    }
}

/// Where container_status looks: the Docker address (`None`: `DOCKER_HOST` or the default
/// socket), the name filter, and the time the Engine API gets.
pub struct ContainersDeps<'a> {
    pub docker_host: Option<&'a str>,
    pub name_filter: &'a str,
    pub timeout: Duration,
}

impl<'a> From<&'a HealthConfig> for ContainersDeps<'a> {
    fn from(h: &'a HealthConfig) -> Self {
        Self {
            docker_host: h.docker_host.as_deref(),
            name_filter: &h.container_filter,
            timeout: Duration::from_millis(h.timeout_ms),
        }
    }
}

/// container_status. No Docker is an answer (`available: false`), so this never fails.
pub async fn run(
    deps: &ContainersDeps<'_>,
    _args: &NoArgs,
) -> Result<ContainersReport, std::convert::Infallible> {
    Ok(check(deps.docker_host, deps.name_filter, deps.timeout).await)
}

impl Summary for ContainersReport {
    fn summary(&self) -> String {
        if self.available {
            format!(
                "{} matching `{}`; {}.",
                crate::util::count(self.containers.len() as u64, "container", "containers"),
                self.name_filter,
                crate::util::count(self.findings.len() as u64, "finding", "findings")
            )
        } else {
            format!(
                "Containers not available: {}",
                self.reason.as_deref().unwrap_or("unknown reason")
            )
        }
    }
}

/// List and judge containers matching `name_filter` (empty: all). `docker_host` is a
/// `unix://` or `tcp://` address; `None` uses `DOCKER_HOST` or the default socket.
pub async fn check(
    docker_host: Option<&str>,
    name_filter: &str,
    timeout: Duration,
) -> ContainersReport {
    match tokio::time::timeout(timeout, check_inner(docker_host, name_filter, timeout)).await {
        Ok(r) => r,
        Err(_) => ContainersReport::unavailable(
            name_filter,
            format!(
                "Docker engine did not answer within {} ms",
                timeout.as_millis()
            ),
        ),
    }
}

async fn check_inner(
    docker_host: Option<&str>,
    name_filter: &str,
    timeout: Duration,
) -> ContainersReport {
    let connected = match docker_host {
        Some(host) => Docker::connect_with_host(host),
        None => Docker::connect_with_defaults(),
    };
    let docker = match connected.map(|d| d.with_timeout(timeout)) {
        Ok(d) => d,
        Err(e) => return ContainersReport::unavailable(name_filter, no_docker(&e)),
    };
    let docker = match docker.negotiate_version().await {
        Ok(d) => d,
        Err(e) => return ContainersReport::unavailable(name_filter, no_docker(&e)),
    };
    let version = docker.client_version().to_string();
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    if !name_filter.is_empty() {
        filters.insert("name".into(), vec![name_filter.to_string()]);
    }
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let list = match docker.list_containers(Some(opts)).await {
        Ok(l) => l,
        Err(e) => return ContainersReport::unavailable(name_filter, no_docker(&e)),
    };
    let mut containers = Vec::new();
    for summary in list {
        let Some(id) = summary.id.clone() else {
            continue;
        };
        let name = summary
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_else(|| id.chars().take(12).collect());
        // Inspect for health, exit code, OOM and restarts (not in the list summary).
        let info = match docker.inspect_container(&id, None).await {
            Ok(i) => {
                let st = i.state.clone().unwrap_or_default();
                let state = st
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into());
                // A stopped container's health is always `unhealthy` (set by the engine on
                // exit, not by a probe): only a running container's health is reported.
                let health = st
                    .health
                    .and_then(|h| h.status)
                    .map(|s| s.to_string())
                    .filter(|s| !s.is_empty() && s != "none" && state == "running");
                ContainerInfo {
                    name: clean(&name),
                    image: summary.image.as_deref().map(clean),
                    state,
                    health,
                    exit_code: st.exit_code,
                    oom_killed: st.oom_killed.unwrap_or(false),
                    restart_count: i.restart_count.unwrap_or(0),
                    started_at: st.started_at,
                }
            }
            Err(_) => ContainerInfo {
                name: clean(&name),
                image: summary.image.as_deref().map(clean),
                state: summary
                    .state
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                health: None,
                exit_code: None,
                oom_killed: false,
                restart_count: 0,
                started_at: None,
            },
        };
        containers.push(info);
    }
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    let findings = judge(&containers);
    ContainersReport {
        available: true,
        reason: None,
        engine_api_version: Some(version),
        name_filter: name_filter.to_string(),
        containers,
        findings,
    }
}

fn no_docker(e: &bollard::errors::Error) -> String {
    let msg = crate::util::sanitize_untrusted(e.to_string().as_bytes(), 200);
    format!("no Docker engine reachable ({msg}); set DOCKER_HOST if it listens elsewhere")
}

fn clean(s: &str) -> String {
    crate::util::sanitize_untrusted(s.as_bytes(), 128)
}

/// Findings for a set of containers (pure, unit-tested).
pub fn judge(containers: &[ContainerInfo]) -> Vec<Finding> {
    let mut f = Vec::new();
    for c in containers {
        // Only the engine's `restarting` is a crash loop in progress. A container that has
        // restarted and is now exited (its restart policy gave up, or someone stopped it)
        // keeps its count but is not restarting: that is `container_restarted` (and
        // `container_exited` for a non-zero exit), like a running one.
        if c.state == "restarting" {
            f.push(
                Finding::new(
                    Severity::Critical,
                    "container_restarting",
                    format!("container {} is restarting (restart count {})", c.name, c.restart_count),
                )
                .with_remediation("Read its last logs (docker logs --tail 100 NAME): a crash loop usually means bad configuration, a missing certificate or not enough memory."),
            );
        } else if c.restart_count >= 3 {
            f.push(Finding::new(
                Severity::Warning,
                "container_restarted",
                format!(
                    "container {} has restarted {} times",
                    c.name, c.restart_count
                ),
            ));
        }
        // Health probes run only in a running container; the engine writes `unhealthy`
        // into any container that stops, which is no failed probe.
        if c.state == "running" && c.health.as_deref() == Some("unhealthy") {
            f.push(
                Finding::new(
                    Severity::Critical,
                    "container_unhealthy",
                    format!("container {} fails its health check", c.name),
                )
                .with_remediation("docker inspect --format '{{json .State.Health}}' NAME shows the failing probe output."),
            );
        }
        if c.oom_killed {
            f.push(
                Finding::new(
                    Severity::Critical,
                    "container_oom_killed",
                    format!("container {} was killed for running out of memory", c.name),
                )
                .with_remediation(
                    "Raise its memory limit or lower the indexer heap (-Xmx) to leave headroom.",
                ),
            );
        }
        if c.state == "exited" && c.exit_code.unwrap_or(0) != 0 {
            f.push(
                Finding::new(
                    Severity::Critical,
                    "container_exited",
                    format!(
                        "container {} exited with code {}",
                        c.name,
                        c.exit_code.unwrap_or_default()
                    ),
                )
                .with_remediation(
                    "Read docker logs NAME for the cause, fix it, then docker start NAME.",
                ),
            );
        }
        if c.state == "dead" {
            f.push(Finding::new(
                Severity::Critical,
                "container_dead",
                format!("container {} is dead", c.name),
            ));
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(state: &str, health: Option<&str>, exit: i64, restarts: i64, oom: bool) -> ContainerInfo {
        ContainerInfo {
            name: "wazuh.manager".into(),
            image: None,
            state: state.into(),
            health: health.map(str::to_string),
            exit_code: Some(exit),
            oom_killed: oom,
            restart_count: restarts,
            started_at: None,
        }
    }

    #[test]
    fn judges_each_bad_state() {
        let codes =
            |c: ContainerInfo| -> Vec<String> { judge(&[c]).into_iter().map(|f| f.code).collect() };
        assert!(codes(c("running", Some("healthy"), 0, 0, false)).is_empty());
        assert_eq!(
            codes(c("running", Some("unhealthy"), 0, 0, false)),
            vec!["container_unhealthy"]
        );
        assert_eq!(
            codes(c("exited", None, 137, 0, true)),
            vec!["container_oom_killed", "container_exited"]
        );
        assert!(codes(c("exited", None, 0, 0, false)).is_empty());
        // Docker sets a stopped container's health to `unhealthy` without any probe.
        assert!(codes(c("exited", Some("unhealthy"), 0, 0, false)).is_empty());
        assert_eq!(
            codes(c("exited", Some("unhealthy"), 137, 0, false)),
            vec!["container_exited"]
        );
        assert_eq!(
            codes(c("restarting", None, 1, 5, false)),
            vec!["container_restarting"]
        );
        assert_eq!(
            codes(c("restarting", Some("unhealthy"), 1, 5, false)),
            vec!["container_restarting"]
        );
        // `--restart on-failure:3` after its last try: exited, no longer restarting.
        assert_eq!(
            codes(c("exited", None, 1, 3, false)),
            vec!["container_restarted", "container_exited"]
        );
        assert_eq!(
            codes(c("running", None, 0, 3, false)),
            vec!["container_restarted"]
        );
        assert!(codes(c("running", None, 0, 2, false)).is_empty());
    }

    #[tokio::test]
    async fn no_engine_is_an_answer_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}", dir.path().join("nope.sock").display());
        let r = check(Some(&host), "wazuh", Duration::from_secs(2)).await;
        assert!(!r.available);
        assert!(r.reason.unwrap().contains("no Docker engine"));
    }
}
