//! Fault knobs shared with the running servers: daemon states, indexer health colour,
//! latency, injected 500s and broken JSON, token expiry, rate-limit pressure, a crashed or
//! hung API, cluster on/off and a failing configuration check. All interior-mutable.

use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::SimError;
use super::clock;

/// The daemons `GET /manager/status` reports, in the order the API lists them.
pub const DAEMONS: [&str; 16] = [
    "wazuh-agentlessd",
    "wazuh-analysisd",
    "wazuh-authd",
    "wazuh-csyslogd",
    "wazuh-monitord",
    "wazuh-execd",
    "wazuh-integratord",
    "wazuh-logcollector",
    "wazuh-maild",
    "wazuh-remoted",
    "wazuh-reportd",
    "wazuh-syscheckd",
    "wazuh-clusterd",
    "wazuh-modulesd",
    "wazuh-db",
    "wazuh-apid",
];

/// Stopped on a default install (nothing configures them).
const STOPPED_BY_DEFAULT: [&str; 5] = [
    "wazuh-agentlessd",
    "wazuh-csyslogd",
    "wazuh-integratord",
    "wazuh-maild",
    "wazuh-reportd",
];

/// OpenSearch cluster health colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Green,
    Yellow,
    Red,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Green => "green",
            Self::Yellow => "yellow",
            Self::Red => "red",
        }
    }
}

impl FromStr for HealthStatus {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s {
            "green" => Ok(Self::Green),
            "yellow" => Ok(Self::Yellow),
            "red" => Ok(Self::Red),
            other => Err(SimError::InvalidKnob {
                knob: "indexer_status",
                value: other.to_string(),
                allowed: "green, yellow, red",
            }),
        }
    }
}

/// The knobs. Get them from [`super::Simulator::faults`]; every change applies to the next
/// request (or, for `*_down`, also to connections already open).
pub struct Faults {
    daemons: Mutex<Vec<(&'static str, bool)>>,
    indexer_status: Mutex<HealthStatus>,
    latency_ms: AtomicU64,
    indexer_latency_ms: AtomicU64,
    fail_next: AtomicU64,
    invalid_json_next: AtomicU64,
    ignore_password_changes: AtomicU64,
    fail_after_password_change: AtomicBool,
    tokens_valid_after_us: AtomicU64,
    rate_limit: AtomicU32,
    /// Length of the rate-limit window in milliseconds (Wazuh: 60 s).
    rate_window_ms: std::sync::atomic::AtomicU64,
    manager_down: AtomicBool,
    manager_hang: AtomicBool,
    indexer_down: AtomicBool,
    cluster_enabled: AtomicBool,
    config_invalid: AtomicBool,
    ignore_log_level: AtomicBool,
    manager_conns: Mutex<CancellationToken>,
    indexer_conns: Mutex<CancellationToken>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accept `wazuh-maild` or `maild`.
fn daemon_name(name: &str) -> Option<&'static str> {
    let full = if name.starts_with("wazuh-") {
        name.to_string()
    } else {
        format!("wazuh-{name}")
    };
    DAEMONS.iter().copied().find(|d| *d == full)
}

impl Faults {
    pub(crate) fn new(rate_limit_per_minute: u32) -> Self {
        Self {
            daemons: Mutex::new(
                DAEMONS
                    .iter()
                    .map(|d| (*d, !STOPPED_BY_DEFAULT.contains(d)))
                    .collect(),
            ),
            indexer_status: Mutex::new(HealthStatus::Green),
            latency_ms: AtomicU64::new(0),
            indexer_latency_ms: AtomicU64::new(0),
            fail_next: AtomicU64::new(0),
            invalid_json_next: AtomicU64::new(0),
            ignore_password_changes: AtomicU64::new(0),
            fail_after_password_change: AtomicBool::new(false),
            tokens_valid_after_us: AtomicU64::new(0),
            rate_limit: AtomicU32::new(rate_limit_per_minute),
            rate_window_ms: std::sync::atomic::AtomicU64::new(60_000),
            manager_down: AtomicBool::new(false),
            manager_hang: AtomicBool::new(false),
            indexer_down: AtomicBool::new(false),
            cluster_enabled: AtomicBool::new(true),
            config_invalid: AtomicBool::new(false),
            ignore_log_level: AtomicBool::new(false),
            manager_conns: Mutex::new(CancellationToken::new()),
            indexer_conns: Mutex::new(CancellationToken::new()),
        }
    }

    /// Stop a daemon (`wazuh-analysisd` or `analysisd`). False when the name is unknown.
    pub fn stop_daemon(&self, name: &str) -> bool {
        self.set_daemon(name, false)
    }

    /// Start a daemon. False when the name is unknown.
    pub fn start_daemon(&self, name: &str) -> bool {
        self.set_daemon(name, true)
    }

    fn set_daemon(&self, name: &str, running: bool) -> bool {
        let Some(full) = daemon_name(name) else {
            return false;
        };
        for d in lock(&self.daemons).iter_mut() {
            if d.0 == full {
                d.1 = running;
            }
        }
        true
    }

    /// Whether a daemon is running (None for an unknown name).
    pub fn daemon_running(&self, name: &str) -> Option<bool> {
        let full = daemon_name(name)?;
        lock(&self.daemons)
            .iter()
            .find(|d| d.0 == full)
            .map(|d| d.1)
    }

    /// Every daemon with its state as the API reports it (`running` / `stopped`).
    /// `wazuh-clusterd` only runs while the cluster is enabled.
    pub fn daemon_states(&self) -> Vec<(&'static str, &'static str)> {
        let cluster = self.cluster_is_enabled();
        lock(&self.daemons)
            .iter()
            .map(|&(name, running)| {
                let running = running && (name != "wazuh-clusterd" || cluster);
                (name, if running { "running" } else { "stopped" })
            })
            .collect()
    }

    /// `green`, `yellow` (unassigned replicas) or `red` (unassigned primaries).
    pub fn set_indexer_status(&self, status: &str) -> Result<(), SimError> {
        *lock(&self.indexer_status) = status.parse()?;
        Ok(())
    }

    pub fn indexer_status(&self) -> HealthStatus {
        *lock(&self.indexer_status)
    }

    /// Delay every manager API response by `d`.
    pub fn set_latency(&self, d: Duration) {
        self.latency_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Delay every indexer response by `d`.
    pub fn set_indexer_latency(&self, d: Duration) {
        self.indexer_latency_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::SeqCst))
    }

    pub(crate) fn indexer_latency(&self) -> Duration {
        Duration::from_millis(self.indexer_latency_ms.load(Ordering::SeqCst))
    }

    /// The next `n` manager API requests answer HTTP 500 with Wazuh's internal error body.
    pub fn fail_next(&self, n: u64) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// The next `n` manager API responses are truncated JSON with status 200.
    pub fn invalid_json_next(&self, n: u64) {
        self.invalid_json_next.store(n, Ordering::SeqCst);
    }

    fn take(counter: &AtomicU64) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The next `n` password changes (`PUT /security/users/{id}`) answer success but do not
    /// take effect (as a cluster node that drops the change): the new password will not log in.
    pub fn ignore_next_password_changes(&self, n: u64) {
        self.ignore_password_changes.store(n, Ordering::SeqCst);
    }

    /// After the next password change takes effect, every manager API request answers 500
    /// (as a manager that dies right after the change) until `fail_next(0)`.
    pub fn fail_after_next_password_change(&self) {
        self.fail_after_password_change
            .store(true, Ordering::SeqCst);
    }

    pub(crate) fn take_fail_after_password_change(&self) -> bool {
        self.fail_after_password_change
            .swap(false, Ordering::SeqCst)
    }

    pub(crate) fn take_ignore_password_change(&self) -> bool {
        Self::take(&self.ignore_password_changes)
    }

    pub(crate) fn take_fail(&self) -> bool {
        Self::take(&self.fail_next)
    }

    pub(crate) fn take_invalid_json(&self) -> bool {
        Self::take(&self.invalid_json_next)
    }

    /// Every token issued until now is refused (401) from the next request on, as after a
    /// token expiry or a revocation; new logins work.
    pub fn expire_tokens(&self) {
        let now_us = (clock::unix_f64(clock::now()) * 1e6) as u64;
        self.tokens_valid_after_us.store(now_us, Ordering::SeqCst);
    }

    /// Tokens issued at or before this instant (seconds since the epoch) are invalid.
    pub(crate) fn tokens_valid_after(&self) -> f64 {
        self.tokens_valid_after_us.load(Ordering::SeqCst) as f64 / 1e6
    }

    /// The global request limit per minute (0 disables it, as in Wazuh).
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.rate_limit.store(per_minute, Ordering::SeqCst);
    }

    /// Shorten the rate-limit window (Wazuh counts per 60 s) so tests can see it reset.
    pub fn set_rate_window(&self, window: Duration) {
        self.rate_window_ms
            .store(window.as_millis().max(1) as u64, Ordering::SeqCst);
    }

    pub(crate) fn rate_window_secs(&self) -> f64 {
        self.rate_window_ms.load(Ordering::SeqCst) as f64 / 1000.0
    }

    pub(crate) fn rate_limit(&self) -> u32 {
        self.rate_limit.load(Ordering::SeqCst)
    }

    /// A crashed API: new connections are closed at once, open ones are dropped.
    pub fn manager_down(&self, down: bool) {
        self.manager_down.store(down, Ordering::SeqCst);
        if down {
            let mut t = lock(&self.manager_conns);
            t.cancel();
            *t = CancellationToken::new();
        }
    }

    /// A misbehaving API (or a proxy) that ignores `GET /manager/logs`'s `level` filter and
    /// returns every level.
    pub fn ignore_log_level_filter(&self, ignore: bool) {
        self.ignore_log_level.store(ignore, Ordering::SeqCst);
    }

    pub(crate) fn ignores_log_level_filter(&self) -> bool {
        self.ignore_log_level.load(Ordering::SeqCst)
    }

    /// A hung API: requests are read and never answered (clients must time out).
    pub fn manager_hang(&self, hang: bool) {
        self.manager_hang.store(hang, Ordering::SeqCst);
    }

    /// A crashed indexer: new connections are closed at once, open ones are dropped.
    pub fn indexer_down(&self, down: bool) {
        self.indexer_down.store(down, Ordering::SeqCst);
        if down {
            let mut t = lock(&self.indexer_conns);
            t.cancel();
            *t = CancellationToken::new();
        }
    }

    pub(crate) fn is_manager_down(&self) -> bool {
        self.manager_down.load(Ordering::SeqCst)
    }

    pub(crate) fn is_manager_hung(&self) -> bool {
        self.manager_hang.load(Ordering::SeqCst)
    }

    pub(crate) fn is_indexer_down(&self) -> bool {
        self.indexer_down.load(Ordering::SeqCst)
    }

    /// A token cancelled when the server goes down, for connections opened now.
    pub(crate) fn manager_conn_token(&self) -> CancellationToken {
        lock(&self.manager_conns).clone()
    }

    pub(crate) fn indexer_conn_token(&self) -> CancellationToken {
        lock(&self.indexer_conns).clone()
    }

    /// Cluster enabled in ossec.conf (master + one worker) or a standalone manager.
    pub fn cluster_enabled(&self, enabled: bool) {
        self.cluster_enabled.store(enabled, Ordering::SeqCst);
    }

    pub(crate) fn cluster_is_enabled(&self) -> bool {
        self.cluster_enabled.load(Ordering::SeqCst)
    }

    /// `GET /manager/configuration/validation` reports an invalid ossec.conf.
    pub fn config_invalid(&self, invalid: bool) {
        self.config_invalid.store(invalid, Ordering::SeqCst);
    }

    pub(crate) fn is_config_invalid(&self) -> bool {
        self.config_invalid.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_install_has_five_stopped_daemons() {
        let f = Faults::new(300);
        let states = f.daemon_states();
        assert_eq!(states.len(), 16);
        let stopped: Vec<_> = states.iter().filter(|s| s.1 == "stopped").collect();
        assert_eq!(stopped.len(), 5);
        assert!(f.stop_daemon("analysisd"));
        assert_eq!(f.daemon_running("wazuh-analysisd"), Some(false));
        assert!(!f.stop_daemon("wazuh-nonsense"));
        f.cluster_enabled(false);
        assert!(f.daemon_states().contains(&("wazuh-clusterd", "stopped")));
    }

    #[test]
    fn counters_run_down_to_zero() {
        let f = Faults::new(300);
        f.fail_next(2);
        assert!(f.take_fail());
        assert!(f.take_fail());
        assert!(!f.take_fail());
        assert!(f.set_indexer_status("purple").is_err());
        f.set_indexer_status("red").unwrap();
        assert_eq!(f.indexer_status(), HealthStatus::Red);
    }
}
