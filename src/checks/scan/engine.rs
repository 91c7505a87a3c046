//! The TCP connect-scan engine: bounded concurrency sized from the open-file limit with a
//! per-host cap, a per-connection timeout that adapts to measured round-trip times (RFC 6298
//! style SRTT + 4 x RTTVAR, clamped) unless fixed, states open / closed / filtered, one retry
//! for filtered ports, backoff on local resource errors (never a wrong answer), and an
//! inconclusive count so a result is never silently incomplete. Stops promptly on cancel.

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// File descriptors kept free for everything else the server does.
const FD_HEADROOM: u64 = 256;
const MAX_CONCURRENCY: usize = 8192;
/// Default per-host cap: a single host may use the whole budget (a full-range scan of one
/// filtering host needs it); with many hosts the interleaved order spreads the load.
const PER_HOST: usize = 8192;
/// Connects a scan shard starts with in flight (see `run_shard`).
const INITIAL_WINDOW: usize = 64;
/// A full window that waits this long for an answer grows.
const GROW_AFTER: Duration = Duration::from_millis(2);
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

/// Raise the soft open-file limit to the hard one and size concurrency from it (once per
/// process: every scan's default options ask).
pub fn default_concurrency() -> usize {
    static CONCURRENCY: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CONCURRENCY.get_or_init(|| {
        let limit = rlimit::increase_nofile_limit(u64::MAX)
            .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
            .unwrap_or(1024);
        (limit.saturating_sub(FD_HEADROOM).max(16) as usize).min(MAX_CONCURRENCY)
    })
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
///
/// The probes are split into one shard per core, each a task driving its own window of
/// connects (no task per probe: on a fast network the per-probe cost is what limits a
/// full-range scan); shards share the connection budget, the RTT estimate and the
/// cancellation token.
pub async fn scan(
    addresses: &[IpAddr],
    ports: &[u16],
    opts: &EngineOptions,
    cancel: &CancellationToken,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> ScanOutcome {
    let total = addresses.len() * ports.len();
    let budget = opts
        .budget
        .clone()
        .unwrap_or_else(|| Arc::new(Semaphore::new(opts.concurrency.max(1))));
    let rtt = Arc::new(Mutex::new(RttEstimator {
        srtt: None,
        rttvar: 0.0,
    }));
    let shards = if total < 2048 {
        1
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8)
    };
    // Interleave hosts (port-major order) so one slow host does not hold the window.
    let order: Arc<Vec<(IpAddr, u16)>> = Arc::new(
        ports
            .iter()
            .flat_map(|&p| addresses.iter().map(move |&a| (a, p)))
            .collect(),
    );
    let done = Arc::new(AtomicUsize::new(0));
    let mut pending = Vec::with_capacity(shards);
    for shard in 0..shards {
        let shard_opts = ShardOptions {
            window: (opts.concurrency / shards).max(1),
            per_host: (opts.per_host / shards).max(1),
            timeout: opts.timeout,
            retries: opts.filtered_retries,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (order, budget, rtt, cancel, done) = (
            order.clone(),
            budget.clone(),
            rtt.clone(),
            cancel.clone(),
            done.clone(),
        );
        // Each shard is a plain thread driving its sockets with poll(2), as nmap does: no
        // task, timer or epoll registration per probe, which is what limits a full-range
        // scan of a host that answers at once.
        let spawned = std::thread::Builder::new()
            .name(format!("secops-scan-{shard}"))
            .spawn(move || {
                let part = run_shard(
                    &order,
                    shard,
                    shards,
                    &shard_opts,
                    &budget,
                    &rtt,
                    &cancel,
                    &done,
                );
                let _ = tx.send(part);
            });
        match spawned {
            Ok(_) => pending.push(rx),
            Err(e) => tracing::error!(error = %e, "cannot start a scan thread"),
        }
    }
    let mut results = HashMap::with_capacity(total.min(1 << 20));
    let mut last_reported = usize::MAX;
    let mut all = futures::future::join_all(pending);
    loop {
        tokio::select! {
            parts = &mut all => {
                for part in parts.into_iter().flatten() {
                    results.extend(part);
                }
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let d = done.load(AtomicOrdering::Relaxed);
        if d != last_reported {
            progress(d, total);
            last_reported = d;
        }
    }
    // Anything never probed (cancelled first, or a failed shard) is inconclusive.
    for &(addr, port) in order.iter() {
        results
            .entry((addr, port))
            .or_insert(PortState::Inconclusive);
    }
    if last_reported != total {
        progress(total, total);
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

struct ShardOptions {
    window: usize,
    per_host: usize,
    timeout: Option<Duration>,
    retries: u32,
}

/// One probe in flight: the job it runs, its socket and when it started.
struct Slot {
    job: Queued,
    socket: socket2::Socket,
    started: Instant,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// A probe waiting to be (re)started.
struct Queued {
    key: (IpAddr, u16),
    /// Earlier attempts that timed out (filtered).
    timeouts: u32,
    /// Earlier attempts that hit a local resource error.
    resource_errors: u32,
    not_before: Instant,
}

/// Probe every `shards`-th entry of `order`, starting at `shard`, keeping up to a window of
/// connects in flight (and `per_host` per address). The window starts small (answers that
/// come back at once need no more, and fewer live sockets are cheaper for the kernel) and
/// doubles whenever a full window has to wait for answers.
#[allow(clippy::too_many_arguments)]
fn run_shard(
    order: &[(IpAddr, u16)],
    shard: usize,
    shards: usize,
    opts: &ShardOptions,
    budget: &Arc<Semaphore>,
    rtt: &Mutex<RttEstimator>,
    cancel: &CancellationToken,
    done: &AtomicUsize,
) -> Vec<((IpAddr, u16), PortState)> {
    let mut out = Vec::with_capacity(order.len() / shards + 1);
    let mut slots: Vec<Slot> = Vec::new();
    let mut pollfds: Vec<libc::pollfd> = Vec::new();
    let mut retry: VecDeque<Queued> = VecDeque::new();
    let mut per_host: HashMap<IpAddr, usize> = HashMap::new();
    let mut next = shard;
    let mut window = INITIAL_WINDOW.min(opts.window);
    let current_timeout = || {
        opts.timeout
            .unwrap_or_else(|| rtt.lock().map(|r| r.timeout()).unwrap_or(INITIAL_TIMEOUT))
    };
    let finish = |out: &mut Vec<_>, key, state| {
        out.push((key, state));
        done.fetch_add(1, AtomicOrdering::Relaxed);
    };
    loop {
        if cancel.is_cancelled() {
            return out;
        }
        // Fill the window: retries that are due first, then new probes.
        let now = Instant::now();
        let mut budget_empty = false;
        while slots.len() < window {
            let job = match retry.front() {
                Some(q) if q.not_before <= now => retry.pop_front(),
                _ if next < order.len() => {
                    let key = order[next];
                    if per_host.get(&key.0).copied().unwrap_or(0) >= opts.per_host {
                        None
                    } else {
                        next += shards;
                        Some(Queued {
                            key,
                            timeouts: 0,
                            resource_errors: 0,
                            not_before: now,
                        })
                    }
                }
                _ => None,
            };
            let Some(job) = job else { break };
            let Ok(permit) = budget.clone().try_acquire_owned() else {
                retry.push_front(job);
                budget_empty = true;
                break;
            };
            match start_connect(job.key) {
                Ok(Some(socket)) => {
                    *per_host.entry(job.key.0).or_default() += 1;
                    pollfds.push(libc::pollfd {
                        fd: socket.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    });
                    slots.push(Slot {
                        job,
                        socket,
                        started: Instant::now(),
                        _permit: permit,
                    });
                }
                // Refused at once.
                Ok(None) => finish(&mut out, job.key, PortState::Closed),
                Err(e) => match classify(&e) {
                    Some(state) => finish(&mut out, job.key, state),
                    None => requeue_after_resource_error(&mut out, &mut retry, job, done),
                },
            }
        }
        if slots.is_empty() {
            if next >= order.len() && retry.is_empty() {
                return out;
            }
            // Waiting for a retry's backoff or for budget held by another scan.
            std::thread::sleep(Duration::from_millis(if budget_empty { 5 } else { 2 }));
            continue;
        }
        // Wait for answers, at most until the oldest probe's deadline (and never long, so
        // cancellation and a shrinking adaptive timeout are noticed).
        let timeout = current_timeout();
        let oldest = slots.iter().map(|s| s.started).min().unwrap_or(now);
        let until_deadline = (oldest + timeout).saturating_duration_since(Instant::now());
        let wait_ms = until_deadline.min(RECHECK).as_millis().max(1) as i32;
        let full = slots.len() >= window;
        let waiting = Instant::now();
        // SAFETY: `pollfds` is a valid, initialised array of `pollfds.len()` entries.
        let ready =
            unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, wait_ms) };
        if full && (ready == 0 || waiting.elapsed() >= GROW_AFTER) {
            window = (window * 2).min(opts.window);
        }
        // Collect answers and timeouts; swap_remove keeps `slots` and `pollfds` aligned.
        let now = Instant::now();
        let timeout = current_timeout();
        let mut i = 0;
        while i < slots.len() {
            let answered = ready > 0 && pollfds[i].revents != 0;
            let expired = now.duration_since(slots[i].started) >= timeout;
            if !answered && !expired {
                i += 1;
                continue;
            }
            let Slot {
                mut job,
                socket,
                started,
                ..
            } = slots.swap_remove(i);
            pollfds.swap_remove(i);
            if let Some(n) = per_host.get_mut(&job.key.0) {
                *n = n.saturating_sub(1);
            }
            if answered {
                let elapsed = now.duration_since(started);
                let state = match socket.take_error() {
                    Ok(None) => Some(PortState::Open),
                    Ok(Some(e)) | Err(e) => classify(&e),
                };
                match state {
                    Some(state) => {
                        if matches!(state, PortState::Open | PortState::Closed)
                            && let Ok(mut r) = rtt.lock()
                        {
                            r.observe(elapsed);
                        }
                        finish(&mut out, job.key, state);
                    }
                    None => requeue_after_resource_error(&mut out, &mut retry, job, done),
                }
            } else if job.timeouts < opts.retries {
                job.timeouts += 1;
                job.not_before = now;
                retry.push_back(job);
            } else {
                finish(&mut out, job.key, PortState::Filtered);
            }
        }
    }
}

/// Back off and try again after a local resource error; give up (inconclusive, never a
/// wrong answer) after `RESOURCE_RETRIES`.
fn requeue_after_resource_error(
    out: &mut Vec<((IpAddr, u16), PortState)>,
    retry: &mut VecDeque<Queued>,
    mut job: Queued,
    done: &AtomicUsize,
) {
    job.resource_errors += 1;
    if job.resource_errors > RESOURCE_RETRIES {
        out.push((job.key, PortState::Inconclusive));
        done.fetch_add(1, AtomicOrdering::Relaxed);
        return;
    }
    let backoff = Duration::from_millis(10u64 << job.resource_errors.min(6));
    job.not_before = Instant::now() + backoff.min(Duration::from_millis(500));
    retry.push_back(job);
}

/// Create a non-blocking socket and start connecting. `Ok(None)`: refused at once.
fn start_connect(key: (IpAddr, u16)) -> std::io::Result<Option<socket2::Socket>> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let sa = SocketAddr::new(key.0, key.1);
    let socket = Socket::new(
        Domain::for_address(sa),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    match socket.connect(&SockAddr::from(sa)) {
        Ok(()) => Ok(Some(socket)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(Some(socket)),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(None),
        Err(e) => Err(e),
    }
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
            &|done, total| {
                assert_eq!(total, 4);
                assert!(done <= total);
                calls.store(done, Ordering::Relaxed);
            },
        )
        .await;
        for p in &open {
            assert_eq!(out.results[&(ip, *p)], PortState::Open, "port {p}");
        }
        assert_eq!(out.results[&(ip, closed)], PortState::Closed);
        assert_eq!(
            calls.load(Ordering::Relaxed),
            4,
            "the last report is complete"
        );
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
