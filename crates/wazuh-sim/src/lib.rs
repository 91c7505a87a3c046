//! Built-in Wazuh simulator: the manager API (port 55000 in real life) and the indexer's
//! search subset (9200), each on a loopback HTTPS port with a CA generated at start. Used by
//! secops-mcp's `--demo` and tests and by the `wazuh-sim` binary ([`cli`]); follows the
//! official 4.14 API spec for paths, envelopes and errors.

mod alerts;
pub mod cli;
mod clock;
mod faults;
mod index;
mod indexer;
mod manager;
mod rng;
mod seed;
mod state;
mod tls;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use alerts::{AlertAgent, AlertGen};
pub use faults::{DAEMONS, Faults, HealthStatus};
pub use seed::{WAZUH_USER_PASSWORD, WUI_PASSWORD};
pub use state::ActiveResponseRecord;

use index::AlertIndex;
use rng::SimRng;
use state::State;

/// How to start the simulator. `Default` gives the documented credentials and limits.
#[derive(Clone)]
pub struct SimConfig {
    /// Manager API port (0 = any free port).
    pub manager_port: u16,
    /// Indexer port (0 = any free port).
    pub indexer_port: u16,
    /// Seed for agents, logs and alerts.
    pub seed: u64,
    pub api_user: String,
    pub api_password: String,
    pub indexer_user: String,
    pub indexer_password: String,
    /// JWT lifetime (`auth_token_exp_timeout`, 900 s by default).
    pub token_ttl_secs: u64,
    /// Global manager API limit (`max_request_per_minute`, 300 by default; 0 = off).
    pub rate_limit_per_minute: u32,
    /// Failed logins from one IP before it is blocked (`max_login_attempts`, 50).
    pub max_login_attempts: u32,
    /// How long a blocked IP stays blocked (`block_time`, 300 s).
    pub block_time_secs: u64,
    /// Fill the alert index with a day of seeded alerts (true by default).
    pub seed_alerts: bool,
    pub bind: IpAddr,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            manager_port: 0,
            indexer_port: 0,
            seed: 42,
            api_user: "wazuh".into(),
            api_password: "Wazuh-Sim-Pass1!".into(),
            indexer_user: "admin".into(),
            indexer_password: "Indexer-Sim-Pass1!".into(),
            token_ttl_secs: 900,
            rate_limit_per_minute: 300,
            max_login_attempts: 50,
            block_time_secs: 300,
            seed_alerts: true,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("manager_port", &self.manager_port)
            .field("indexer_port", &self.indexer_port)
            .field("seed", &self.seed)
            .field("api_user", &self.api_user)
            .field("api_password", &"***")
            .field("indexer_user", &self.indexer_user)
            .field("indexer_password", &"***")
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("max_login_attempts", &self.max_login_attempts)
            .field("block_time_secs", &self.block_time_secs)
            .field("seed_alerts", &self.seed_alerts)
            .field("bind", &self.bind)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "cannot bind the simulated {server} on {addr}: {source} (choose another port, or 0 for any)"
    )]
    Bind {
        server: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("cannot create the simulator's TLS certificates: {0}")]
    Certificate(String),
    #[error("invalid value `{value}` for {knob}; allowed: {allowed}")]
    InvalidKnob {
        knob: &'static str,
        value: String,
        allowed: &'static str,
    },
}

/// The global request counter window of the manager API (Wazuh's own algorithm).
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    pub count: u64,
    pub start: Option<f64>,
}

/// Everything the two servers share.
pub(crate) struct Shared {
    pub cfg: SimConfig,
    pub faults: Faults,
    pub state: Mutex<State>,
    pub index: RwLock<AlertIndex>,
    pub manager_requests: AtomicU64,
    pub indexer_requests: AtomicU64,
    pub jwt_secret: [u8; 32],
    pub rate: Mutex<RateWindow>,
    pub generators: AtomicU64,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn index_read(&self) -> std::sync::RwLockReadGuard<'_, AlertIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn index_write(&self) -> std::sync::RwLockWriteGuard<'_, AlertIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running simulator. Dropping it stops the servers; [`Simulator::stop`] also waits.
pub struct Simulator {
    shared: Arc<Shared>,
    manager_addr: SocketAddr,
    indexer_addr: SocketAddr,
    ca_pem: String,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(server: &'static str, ip: IpAddr, port: u16) -> Result<TcpListener, SimError> {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind {
            server,
            addr,
            source,
        })
}

fn url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    };
    match ip {
        IpAddr::V4(v4) => format!("https://{v4}:{}", addr.port()),
        IpAddr::V6(v6) => format!("https://[{v6}]:{}", addr.port()),
    }
}

impl Simulator {
    /// Generate the CA, seed the world and start both servers.
    pub async fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        let certs = tls::make_certs()?;
        let now = clock::now();
        let mut rng = SimRng::new(cfg.seed);
        let agents = seed::agents(&mut rng.fork(1), now);
        let logs = seed::logs(&mut rng.fork(2), now, &agents);
        let users = seed::users(&cfg.api_user, &cfg.api_password);
        let mut index = AlertIndex::new(cfg.seed);
        if cfg.seed_alerts {
            let mut generator = AlertGen::new(cfg.seed, seed::alert_agents(&agents));
            for a in generator.seeded_day(now) {
                index.insert(a);
            }
        }
        let shared = Arc::new(Shared {
            faults: Faults::new(cfg.rate_limit_per_minute),
            state: Mutex::new(State {
                agents,
                users,
                tokens: Default::default(),
                failures: Default::default(),
                blocked: Default::default(),
                logs,
                active_responses: Vec::new(),
            }),
            index: RwLock::new(index),
            manager_requests: AtomicU64::new(0),
            indexer_requests: AtomicU64::new(0),
            jwt_secret: rand::random(),
            rate: Mutex::new(RateWindow::default()),
            generators: AtomicU64::new(0),
            cfg,
        });
        let manager_listener =
            bind("manager API", shared.cfg.bind, shared.cfg.manager_port).await?;
        let indexer_listener = bind("indexer", shared.cfg.bind, shared.cfg.indexer_port).await?;
        let manager_addr = manager_listener
            .local_addr()
            .map_err(|source| SimError::Bind {
                server: "manager API",
                addr: SocketAddr::new(shared.cfg.bind, shared.cfg.manager_port),
                source,
            })?;
        let indexer_addr = indexer_listener
            .local_addr()
            .map_err(|source| SimError::Bind {
                server: "indexer",
                addr: SocketAddr::new(shared.cfg.bind, shared.cfg.indexer_port),
                source,
            })?;
        let shutdown = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(tls::serve(
                manager_listener,
                certs.acceptor.clone(),
                manager::router(shared.clone()),
                tls::Kind::Manager,
                shared.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(tls::serve(
                indexer_listener,
                certs.acceptor,
                indexer::router(shared.clone()),
                tls::Kind::Indexer,
                shared.clone(),
                shutdown.clone(),
            )),
        ];
        tracing::info!(%manager_addr, %indexer_addr, "Wazuh simulator started");
        Ok(Simulator {
            shared,
            manager_addr,
            indexer_addr,
            ca_pem: certs.ca_pem,
            shutdown,
            tasks,
        })
    }

    /// `https://127.0.0.1:PORT` of the manager API.
    pub fn manager_url(&self) -> String {
        url_for(self.manager_addr)
    }

    /// `https://127.0.0.1:PORT` of the indexer.
    pub fn indexer_url(&self) -> String {
        url_for(self.indexer_addr)
    }

    pub fn manager_addr(&self) -> SocketAddr {
        self.manager_addr
    }

    pub fn indexer_addr(&self) -> SocketAddr {
        self.indexer_addr
    }

    /// PEM of the CA that signed both servers' certificate (trust it in clients).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Write the CA PEM to `path` (e.g. for `SECOPS_WAZUH_CA_FILE`).
    pub fn write_ca(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// The fault knobs, shared with the running servers.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Add alerts to the index now (objects only; a missing `timestamp` becomes now).
    /// Returns how many were indexed.
    pub fn inject_alerts(&self, alerts: Vec<Value>) -> usize {
        let mut index = self.shared.index_write();
        alerts
            .into_iter()
            .filter(|a| index.insert(a.clone()))
            .count()
    }

    /// Append a line to the manager's log (`ossec.log`), `ago` before now. `level` is
    /// `info`, `warning`, `error` or `critical`; false when it is none of them.
    pub fn add_log(
        &self,
        tag: &'static str,
        level: &str,
        description: &str,
        ago: std::time::Duration,
    ) -> bool {
        use state::LogLevel;
        let level = match level {
            "info" => LogLevel::Info,
            "warning" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "critical" => LogLevel::Critical,
            _ => return false,
        };
        let at = time::OffsetDateTime::now_utc()
            - time::Duration::try_from(ago).unwrap_or(time::Duration::ZERO);
        let mut st = self.shared.state();
        st.logs.push(state::LogLine {
            at,
            tag,
            level,
            description: description.to_string(),
        });
        st.logs.sort_by_key(|l| l.at);
        true
    }

    /// A generator for scenario alerts about this simulator's agents. Each call gives a
    /// different (but seed-determined) stream; pass the result to [`Self::inject_alerts`].
    pub fn alerts(&self) -> AlertGen {
        let n = self.shared.generators.fetch_add(1, Ordering::SeqCst) + 1;
        let agents = seed::alert_agents(&self.shared.state().agents);
        AlertGen::new(self.shared.cfg.seed ^ n.wrapping_mul(0x9E37_79B9), agents)
    }

    /// Inject scenario `n` (cycling) now: an SSH brute-force burst from one IP across two
    /// agents, a level-15 exploit attempt, a slow file-integrity trickle, or noise below
    /// the incident threshold. Returns the scenario's name and the alerts indexed.
    pub fn inject_scenario(&self, n: u64) -> (&'static str, usize) {
        let now = clock::now();
        let mut g = self.alerts();
        let ip = format!("203.0.113.{}", 100 + n % 100);
        let (name, alerts) = match n % 4 {
            0 => (
                "ssh_brute_force",
                g.ssh_brute_force(&ip, &["001", "002"], 40, now - time::Duration::minutes(3)),
            ),
            1 => ("level15_attack", g.level15_attack(&ip, "001", now)),
            2 => (
                "fim_trickle",
                g.fim_trickle(
                    &["003"],
                    3,
                    now - time::Duration::minutes(2),
                    time::Duration::seconds(40),
                ),
            ),
            _ => (
                "noise",
                g.noise(&[], 20, now - time::Duration::minutes(1), now),
            ),
        };
        (name, self.inject_alerts(alerts))
    }

    /// Number of documents in the alert index.
    pub fn alert_count(&self) -> usize {
        self.shared.index_read().docs.len()
    }

    /// Manager API requests seen (including refused ones), for tests proving clients
    /// respect limits.
    pub fn request_count(&self) -> u64 {
        self.shared.manager_requests.load(Ordering::SeqCst)
    }

    /// Indexer requests seen.
    pub fn indexer_request_count(&self) -> u64 {
        self.shared.indexer_requests.load(Ordering::SeqCst)
    }

    /// Active-response commands received, oldest first.
    pub fn active_responses(&self) -> Vec<ActiveResponseRecord> {
        self.shared.state().active_responses.clone()
    }

    /// The current password of an API user (tests of credential rotation read it).
    pub fn user_password(&self, username: &str) -> Option<String> {
        self.shared
            .state()
            .user_by_name(username)
            .map(|u| u.password.clone())
    }

    /// Stop both servers and wait for their accept loops to end.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
