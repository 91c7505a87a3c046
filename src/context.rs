//! The shared context every tool receives: validated config, the store, the check engines
//! built once at start (trust anchors for check_cert), the metrics registry, the `Deps`
//! each check and incident entry point borrows from it, and the incident ingest entry point
//! shared by incident_status and the background task. No server types.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;

use crate::checks::cert::{CertChecker, CertDeps, CertPolicy};
use crate::checks::containers::ContainersDeps;
use crate::checks::host::HostThresholds;
use crate::checks::scan::{ScanDeps, ScanLimiter, Scope};
use crate::checks::wazuh_health::HealthDeps;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::incidents::{IncidentDeps, IngestStatus};
use crate::metrics::Metrics;
use crate::selfwatch::SelfWatch;
use crate::shutdown::InFlight;
use crate::store::Store;
use crate::wazuh::{IndexerClient, ManagerClient, ManagerOptions};

pub struct AppContext {
    pub config: Config,
    pub store: Store,
    pub cert: CertChecker,
    /// The Wazuh manager API, when configured.
    pub wazuh: Option<ManagerClient>,
    /// The Wazuh indexer, when configured.
    pub indexer: Option<IndexerClient>,
    /// check_cert engines trusting the manager's and the indexer's CA files.
    pub wazuh_certs: Option<CertChecker>,
    pub indexer_certs: Option<CertChecker>,
    /// The Prometheus registry; shared with the monitoring engine (runs, sends) and, at
    /// scrape time, reading the store's alert and outbox counts.
    pub metrics: Arc<Metrics>,
    /// The server's own recent refusals and tool calls, read by the `self` monitor kind.
    pub selfwatch: SelfWatch,
    /// `serve --demo`: demo-friendly defaults and, later, the built-in Wazuh simulator.
    pub demo: bool,
    /// Tool calls in progress, so shutdown can let them finish.
    pub inflight: InFlight,
    /// scan_host: parsed scope, per-caller limit, and the connection budget all scans share.
    pub scan_scope: Scope,
    pub scan_limiter: ScanLimiter,
    pub scan_budget: Arc<Semaphore>,
    /// The remediation gate (policy, confirmation tokens, audit).
    pub gate: crate::remediation::Gate,
    /// Interrupted credential rotations are reconciled once per process.
    pub reconciled: tokio::sync::OnceCell<()>,
    /// One incident ingest or update at a time (tool calls and the background task).
    pub ingest_lock: tokio::sync::Mutex<()>,
    /// The uptime monitors' HTTP client (one connection pool for all of them), built on
    /// first use.
    uptime_prober: std::sync::OnceLock<Result<crate::checks::uptime::UptimeProber, String>>,
}

impl AppContext {
    /// Build everything that can fail at start, so a bad setting stops the server with a
    /// clear message instead of failing on the first call.
    pub fn new(config: Config, demo: bool) -> anyhow::Result<Arc<Self>> {
        // Errors name the setting, as configuration errors do (`config check` runs this too).
        let store = Store::open(&config.state_dir).context("state_dir (SECOPS_STATE_DIR)")?;
        // In demo mode check_cert trusts the simulator's CA like the Wazuh clients do, so
        // both tools agree about the same endpoint.
        let mut cert_cas: Vec<&std::path::Path> =
            config.extra_ca_file.iter().map(|p| p.as_path()).collect();
        if demo {
            cert_cas.extend(config.wazuh.iter().filter_map(|w| w.ca_file.as_deref()));
            cert_cas.extend(config.indexer.iter().filter_map(|i| i.ca_file.as_deref()));
        }
        // The tool reads files only under check_cert.file_roots and connects only where
        // check_cert.allow permits (never to a cloud metadata endpoint not listed exactly).
        let policy = CertPolicy::confined(config.cert.file_roots.clone(), &config.cert.allow);
        let cert = CertChecker::with_ca_files(&cert_cas)
            .context("tls.extra_ca_file (SECOPS_EXTRA_CA_FILE)")?
            .with_policy(policy);
        let timeout = Duration::from_millis(config.health.timeout_ms);
        let wazuh = match &config.wazuh {
            Some(w) => Some(
                ManagerClient::new(
                    w,
                    ManagerOptions {
                        request_timeout: timeout,
                        insecure: config.tls_insecure,
                        client_requests_per_minute: w.requests_per_minute,
                        ..Default::default()
                    },
                )
                .context("wazuh.ca_file (SECOPS_WAZUH_CA_FILE)")?,
            ),
            None => None,
        };
        let indexer = match &config.indexer {
            Some(i) => Some(
                IndexerClient::new(i, config.tls_insecure, timeout)
                    .context("indexer.ca_file (SECOPS_INDEXER_CA_FILE)")?,
            ),
            None => None,
        };
        let wazuh_certs = match &config.wazuh {
            Some(w) => Some(CertChecker::new(
                w.ca_file.as_deref().or(config.extra_ca_file.as_deref()),
            )?),
            None => None,
        };
        let indexer_certs = match &config.indexer {
            Some(i) => Some(CertChecker::new(
                i.ca_file.as_deref().or(config.extra_ca_file.as_deref()),
            )?),
            None => None,
        };
        let scan_scope = Scope::clone(&config.scan_allow);
        let scan_limiter = ScanLimiter::new(config.scan_rate_per_minute);
        let gate = crate::remediation::Gate::new(&config, store.clone());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let metrics = Arc::new(Metrics::new());
        let channels: Vec<String> = config
            .notify
            .channels
            .iter()
            .map(|c| c.name.clone())
            .collect();
        metrics.collect_monitoring(store.clone(), clock.clone(), channels);
        Ok(Arc::new(Self {
            scan_scope,
            scan_limiter,
            scan_budget: crate::checks::scan::connection_budget(),
            config,
            store,
            cert,
            wazuh,
            indexer,
            wazuh_certs,
            indexer_certs,
            metrics,
            selfwatch: SelfWatch::new(clock),
            demo,
            inflight: InFlight::default(),
            gate,
            reconciled: tokio::sync::OnceCell::new(),
            ingest_lock: tokio::sync::Mutex::new(()),
            uptime_prober: std::sync::OnceLock::new(),
        }))
    }
}

impl AppContext {
    /// The shared uptime prober (trusting the system roots, or `tls.extra_ca_file`).
    pub fn uptime_prober(&self) -> Result<&crate::checks::uptime::UptimeProber, String> {
        self.uptime_prober
            .get_or_init(|| {
                crate::checks::uptime::UptimeProber::new(self.config.extra_ca_file.as_deref())
                    .map_err(|e| format!("uptime prober (tls.extra_ca_file): {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// What check_cert needs, borrowed from the context.
    pub fn cert_deps(&self) -> CertDeps<'_> {
        CertDeps {
            checker: &self.cert,
            defaults: &self.config.cert,
        }
    }

    /// host_metrics' thresholds.
    pub fn host_deps(&self) -> HostThresholds {
        HostThresholds::from(&self.config.health)
    }

    /// Where container_status looks.
    pub fn containers_deps(&self) -> ContainersDeps<'_> {
        ContainersDeps::from(&self.config.health)
    }

    /// What ingestion, incident_status and incident_update need, borrowed from the context.
    pub fn incident_deps(&self) -> IncidentDeps<'_> {
        IncidentDeps {
            indexer: self.indexer.as_ref(),
            store: &self.store,
            settings: &self.config.incidents,
            lock: &self.ingest_lock,
        }
    }

    /// What scan_host needs, borrowed from the context.
    pub fn scan_deps(&self) -> ScanDeps<'_> {
        ScanDeps {
            scope: &self.scan_scope,
            store: Some(&self.store),
            cert: &self.cert,
            budget: self.scan_budget.clone(),
        }
    }

    /// What wazuh_health needs, borrowed from the context.
    pub fn health_deps(&self) -> HealthDeps<'_> {
        HealthDeps {
            manager: self.wazuh.as_ref(),
            indexer: self.indexer.as_ref(),
            manager_certs: self.wazuh_certs.as_ref(),
            indexer_certs: self.indexer_certs.as_ref(),
            store: &self.store,
            settings: &self.config.health,
        }
    }
}

impl AppContext {
    /// Ingest new alerts into incidents (serialised); first run reaches back to `bootstrap`.
    pub async fn ingest_incidents(&self, bootstrap: time::OffsetDateTime) -> IngestStatus {
        crate::incidents::ingest_locked(&self.incident_deps(), bootstrap).await
    }
}
