//! The TCP connect-scan engine: bounded concurrency sized from the open-file limit with a
//! per-host cap, a per-connection timeout that adapts to measured round-trip times (RFC 6298
//! style SRTT + 4 x RTTVAR, clamped) unless fixed, states open / closed / filtered, one retry
//! for filtered ports, backoff on local resource errors (never a wrong answer), and an
//! inconclusive count so a result is never silently incomplete. Stops promptly on cancel.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// File descriptors kept free for everything else the server does.
const FD_HEADROOM: u64 = 256;
const MAX_CONCURRENCY: usize = 8192;
/// Default per-host cap: a single host may use the whole budget (a full-range scan of one
/// filtering host needs it); with many hosts the interleaved order spreads the load.
const PER_HOST: usize = 8192;
/// How often a pending connect re-reads the adaptive timeout (which shrinks as soon as the
/// first answers arrive, also for probes already in flight).
const RECHECK: Duration = Duration::from_millis(50);
const INITIAL_TIMEOUT: Duration = Duration::from_millis(1000);
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_millis(3000);
/// Attempts after a local resource error (EMFILE, EADDRNOTAVAIL, ENOBUFS) before giving up.
const RESOURCE_RETRIES: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortState {
    /// The handshake completed.
    Open,
    /// Refused (RST).
    Closed,
    /// No answer within the timeout, or the network said unreachable.
    Filtered,
    /// Could not be decided (local resources exhausted, or cancelled first).
    Inconclusive,
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Fixed per-connection timeout; `None` adapts to measured RTTs.
    pub timeout: Option<Duration>,
    pub concurrency: usize,
    pub per_host: usize,
    /// Extra attempts for filtered ports.
    pub filtered_retries: u32,
    /// Connection budget shared with concurrent scans; `None`: `concurrency` for this scan.
    pub budget: Option<Arc<Semaphore>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            timeout: None,
            concurrency: default_concurrency(),
            per_host: PER_HOST,
            filtered_retries: 1,
            budget: None,
        }
    }
}

/// Raise the soft open-file limit to the hard one and size concurrency from it.
pub fn default_concurrency() -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
        .unwrap_or(1024);
    (limit.saturating_sub(FD_HEADROOM).max(16) as usize).min(MAX_CONCURRENCY)
}

/// Smoothed RTT estimate shared by all probes of a scan.
#[derive(Debug)]
struct RttEstimator {
    srtt: Option<f64>,
    rttvar: f64,
}

impl RttEstimator {
    fn observe(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64();
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(s) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (s - r).abs();
                self.srtt = Some(0.875 * s + 0.125 * r);
            }
        }
    }

    fn timeout(&self) -> Duration {
        match self.srtt {
            None => INITIAL_TIMEOUT,
            Some(s) => {
                Duration::from_secs_f64(s + 4.0 * self.rttvar).clamp(MIN_TIMEOUT, MAX_TIMEOUT)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScanOutcome {
    /// Every (address, port) probed, with its state.
    pub results: HashMap<(IpAddr, u16), PortState>,
    pub cancelled: bool,
    /// The timeout the scan ended with (adaptive) or was given.
    pub final_timeout: Duration,
}

/// Probe every port on every address. `progress(done, total)` is called as probes finish.
pub async fn scan(
    addresses: &[IpAddr],
    ports: &[u16],
    opts: &EngineOptions,
    cancel: &CancellationToken,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> ScanOutcome {
    let total = addresses.len() * ports.len();
    let global = opts
        .budget
        .clone()
        .unwrap_or_else(|| Arc::new(Semaphore::new(opts.concurrency.max(1))));
    let per_host: HashMap<IpAddr, Arc<Semaphore>> = addresses
        .iter()
        .map(|a| (*a, Arc::new(Semaphore::new(opts.per_host.max(1)))))
        .collect();
    let rtt = Arc::new(Mutex::new(RttEstimator {
        srtt: None,
        rttvar: 0.0,
    }));
    let mut done = 0usize;
    let mut results = HashMap::with_capacity(total.min(1 << 20));
    let mut tasks = tokio::task::JoinSet::new();
    let mut record = |joined: Result<((IpAddr, u16), PortState), tokio::task::JoinError>,
                      results: &mut HashMap<(IpAddr, u16), PortState>| {
        if let Ok((key, state)) = joined {
            results.insert(key, state);
        }
        done += 1;
        progress(done, total);
    };
    // Interleave hosts so one slow host does not hold the whole window. A task is spawned
    // only once a global permit is held, so memory stays bounded by the concurrency.
    'outer: for &port in ports {
        for &addr in addresses {
            let permit = tokio::select! {
                _ = cancel.cancelled() => break 'outer,
                p = global.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break 'outer,
                },
            };
            while let Some(joined) = tasks.try_join_next() {
                record(joined, &mut results);
            }
            let host = per_host[&addr].clone();
            let rtt = rtt.clone();
            let task_cancel = cancel.clone();
            let fixed = opts.timeout;
            let retries = opts.filtered_retries;
            tasks.spawn(async move {
                let _permit = permit;
                let state = tokio::select! {
                    _ = task_cancel.cancelled() => PortState::Inconclusive,
                    s = async {
                        let Ok(_h) = host.acquire_owned().await else { return PortState::Inconclusive };
                        probe_with_retries(SocketAddr::new(addr, port), fixed, retries, &rtt).await
                    } => s,
                };
                ((addr, port), state)
            });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        record(joined, &mut results);
    }
    // Anything never probed (cancelled before its task started) is inconclusive.
    for &port in ports {
        for &addr in addresses {
            results
                .entry((addr, port))
                .or_insert(PortState::Inconclusive);
        }
    }
    let final_timeout = opts
        .timeout
        .unwrap_or_else(|| rtt.lock().map(|r| r.timeout()).unwrap_or(INITIAL_TIMEOUT));
    ScanOutcome {
        results,
        cancelled: cancel.is_cancelled(),
        final_timeout,
    }
}

async fn probe_with_retries(
    sa: SocketAddr,
    fixed: Option<Duration>,
    filtered_retries: u32,
    rtt: &Mutex<RttEstimator>,
) -> PortState {
    let mut state = PortState::Inconclusive;
    for _ in 0..=filtered_retries {
        state = probe(sa, fixed, rtt).await;
        if state != PortState::Filtered {
            break;
        }
    }
    state
}

/// One connect attempt (with backoff and retry on local resource errors). The deadline
/// follows the adaptive estimate while the attempt is pending.
async fn probe(sa: SocketAddr, fixed: Option<Duration>, rtt: &Mutex<RttEstimator>) -> PortState {
    let current =
        || fixed.unwrap_or_else(|| rtt.lock().map(|r| r.timeout()).unwrap_or(INITIAL_TIMEOUT));
    let mut backoff = Duration::from_millis(10);
    for _ in 0..=RESOURCE_RETRIES {
        let started = Instant::now();
        let connect = TcpStream::connect(sa);
        tokio::pin!(connect);
        let answer = loop {
            let elapsed = started.elapsed();
            let timeout = current();
            if elapsed >= timeout {
                break None;
            }
            let wait = if fixed.is_some() {
                timeout - elapsed
            } else {
                (timeout - elapsed).min(RECHECK)
            };
            if let Ok(res) = tokio::time::timeout(wait, &mut connect).await {
                break Some(res);
            }
        };
        match answer {
            Some(Ok(stream)) => {
                if let Ok(mut r) = rtt.lock() {
                    r.observe(started.elapsed());
                }
                drop(stream);
                return PortState::Open;
            }
            Some(Err(e)) => match classify(&e) {
                Some(state) => {
                    if state == PortState::Closed
                        && let Ok(mut r) = rtt.lock()
                    {
                        r.observe(started.elapsed());
                    }
                    return state;
                }
                None => {
                    // Our own machine ran out of something: wait and try again.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            },
            None => return PortState::Filtered,
        }
    }
    PortState::Inconclusive
}

/// What a connect error says about the port; `None` for local resource errors.
fn classify(e: &std::io::Error) -> Option<PortState> {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const EADDRNOTAVAIL: i32 = 99;
    const EAGAIN: i32 = 11;
    const ENETUNREACH: i32 = 101;
    const EHOSTUNREACH: i32 = 113;
    if let Some(code) = e.raw_os_error() {
        match code {
            EMFILE | ENFILE | ENOBUFS | EADDRNOTAVAIL | EAGAIN => return None,
            ENETUNREACH | EHOSTUNREACH => return Some(PortState::Filtered),
            _ => {}
        }
    }
    Some(match e.kind() {
        ErrorKind::ConnectionRefused => PortState::Closed,
        ErrorKind::ConnectionReset => PortState::Closed,
        _ => PortState::Filtered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn rtt_estimate_adapts_and_is_clamped() {
        let mut r = RttEstimator {
            srtt: None,
            rttvar: 0.0,
        };
        assert_eq!(r.timeout(), INITIAL_TIMEOUT);
        for _ in 0..20 {
            r.observe(Duration::from_micros(100));
        }
        assert_eq!(r.timeout(), MIN_TIMEOUT);
        for _ in 0..50 {
            r.observe(Duration::from_secs(5));
        }
        assert_eq!(r.timeout(), MAX_TIMEOUT);
    }

    #[test]
    fn resource_errors_are_never_a_port_state() {
        for code in [24, 23, 105, 99, 11] {
            assert_eq!(classify(&std::io::Error::from_raw_os_error(code)), None);
        }
        assert_eq!(
            classify(&std::io::Error::from(ErrorKind::ConnectionRefused)),
            Some(PortState::Closed)
        );
        assert_eq!(
            classify(&std::io::Error::from_raw_os_error(113)),
            Some(PortState::Filtered)
        );
    }

    #[tokio::test]
    async fn finds_open_and_closed_ports_on_a_loopback_alias() {
        // 127.0.0.77 is ours alone: nothing else listens there.
        let ip: IpAddr = "127.0.0.77".parse().unwrap();
        let mut listeners = Vec::new();
        let mut open = Vec::new();
        for _ in 0..3 {
            let l = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
            open.push(l.local_addr().unwrap().port());
            listeners.push(l);
        }
        // Closed: bind, learn the port, release it.
        let closed = {
            let l = std::net::TcpListener::bind((ip, 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let mut ports = open.clone();
        ports.push(closed);
        let calls = AtomicUsize::new(0);
        let out = scan(
            &[ip],
            &ports,
            &EngineOptions::default(),
            &CancellationToken::new(),
            &|_, total| {
                assert_eq!(total, 4);
                calls.fetch_add(1, Ordering::Relaxed);
            },
        )
        .await;
        for p in &open {
            assert_eq!(out.results[&(ip, *p)], PortState::Open, "port {p}");
        }
        assert_eq!(out.results[&(ip, closed)], PortState::Closed);
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        assert!(!out.cancelled);
        drop(listeners);
    }

    #[tokio::test]
    async fn cancellation_stops_the_scan_promptly() {
        let ip: IpAddr = "127.0.0.78".parse().unwrap();
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c2.cancel();
        });
        let started = Instant::now();
        let ports: Vec<u16> = (1..=65535).collect();
        let out = scan(
            &[ip],
            &ports,
            &EngineOptions {
                concurrency: 64,
                ..EngineOptions::default()
            },
            &cancel,
            &|_, _| {},
        )
        .await;
        assert!(out.cancelled);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(out.results.len(), 65535, "every port accounted for");
        assert!(out.results.values().any(|s| *s == PortState::Inconclusive));
    }
}
