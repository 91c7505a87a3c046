//! The shared context every tool receives: validated config, the store, the check engines
//! built once at start (trust anchors for check_cert), and the metrics registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::checks::cert::CertChecker;
use crate::config::Config;
use crate::server::metrics::Metrics;
use crate::store::Store;

pub struct AppContext {
    pub config: Config,
    pub store: Store,
    pub cert: CertChecker,
    pub metrics: Metrics,
    /// `serve --demo`: demo-friendly defaults and, later, the built-in Wazuh simulator.
    pub demo: bool,
    /// Tool calls in progress, so shutdown can let them finish.
    pub inflight: InFlight,
}

impl AppContext {
    /// Build everything that can fail at start, so a bad setting stops the server with a
    /// clear message instead of failing on the first call.
    pub fn new(config: Config, demo: bool) -> anyhow::Result<Arc<Self>> {
        let store = Store::open(&config.state_dir)?;
        let cert = CertChecker::new(config.extra_ca_file.as_deref())?;
        Ok(Arc::new(Self {
            config,
            store,
            cert,
            metrics: Metrics::new(),
            demo,
            inflight: InFlight::default(),
        }))
    }
}

/// Counts tool calls in progress; shutdown waits for zero.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Held for the duration of one call.
pub struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self)
    }

    pub fn current(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Wait until no call is in flight; false if `timeout` passed first.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.current() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.current() == 0;
            }
        }
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
