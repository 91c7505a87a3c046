//! The server's own recent history for the `self` monitor kind: refused HTTP requests per
//! remote address (401 and 403 answers, and the 429s of the failed-auth throttle) and every
//! tool call's outcome and latency, each with its time from a [`Clock`]. Memory is bounded:
//! at most [`MAX_REMOTES`] addresses of [`MAX_BUCKETS`] one-second buckets each, at most
//! [`MAX_CALLS`] call samples, nothing older than [`HORIZON`]. The HTTP guards and the
//! tool-call path feed it; the `self` kind reads it over a window. No server types.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{Clock, Millis};

/// Nothing older than this is kept; the `self` kind's windows are at most this long.
pub const HORIZON: Duration = Duration::from_secs(3600);
/// Remote addresses remembered at once; beyond, the one whose last refusal is oldest goes.
pub const MAX_REMOTES: usize = 512;
/// One-second buckets per address (an address refused in more distinct seconds than this
/// within the horizon has its oldest seconds dropped: its count is then at least this).
pub const MAX_BUCKETS: usize = 1000;
/// Tool-call samples kept (beyond, the oldest go, so a window is the newest calls).
pub const MAX_CALLS: usize = 50_000;

/// Refused requests of one remote address in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCount {
    pub remote: IpAddr,
    pub refused: u64,
}

/// Tool calls in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct CallStats {
    pub calls: u64,
    pub errors: u64,
    /// The 95th percentile latency (nearest rank), None without calls.
    pub p95_ms: Option<f64>,
    /// Calls older than the window's start were dropped for the sample cap: the window is
    /// shorter than asked for.
    pub truncated: bool,
}

impl CallStats {
    /// Errors as a percentage of calls (0 without calls).
    pub fn error_percent(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.errors as f64 * 100.0 / self.calls as f64
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct CallSample {
    at_ms: Millis,
    latency_ms: f32,
    error: bool,
}

#[derive(Default)]
struct Remotes {
    /// (second since the epoch, refusals in it), oldest first.
    by_remote: HashMap<IpAddr, VecDeque<(i64, u32)>>,
}

#[derive(Default)]
struct Calls {
    samples: VecDeque<CallSample>,
    /// The newest sample dropped for the cap (not for age).
    dropped_until_ms: Option<Millis>,
}

/// The recorder (one per process, in the context).
pub struct SelfWatch {
    clock: Arc<dyn Clock>,
    remotes: Mutex<Remotes>,
    calls: Mutex<Calls>,
}

impl std::fmt::Debug for SelfWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfWatch").finish_non_exhaustive()
    }
}

fn horizon_ms() -> Millis {
    HORIZON.as_millis() as Millis
}

impl SelfWatch {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        SelfWatch {
            clock,
            remotes: Mutex::new(Remotes::default()),
            calls: Mutex::new(Calls::default()),
        }
    }

    /// A request from `remote` was refused: 401 (no or a wrong token), 403 (Host or
    /// Origin not allowed), or 429 because the address is throttled for failed
    /// authentications.
    pub fn refused(&self, remote: IpAddr) {
        let now = self.clock.now_ms();
        let sec = now.div_euclid(1000);
        let oldest_kept = (now - horizon_ms()).div_euclid(1000);
        let mut r = self.remotes.lock().unwrap_or_else(|p| p.into_inner());
        if !r.by_remote.contains_key(&remote) && r.by_remote.len() >= MAX_REMOTES {
            // Forget what is past the horizon first, then the quietest address.
            r.by_remote
                .retain(|_, b| b.back().is_some_and(|(s, _)| *s >= oldest_kept));
            if r.by_remote.len() >= MAX_REMOTES
                && let Some(quietest) = r
                    .by_remote
                    .iter()
                    .min_by_key(|(_, b)| b.back().map_or(i64::MIN, |(s, _)| *s))
                    .map(|(ip, _)| *ip)
            {
                r.by_remote.remove(&quietest);
            }
        }
        let buckets = r.by_remote.entry(remote).or_default();
        while buckets.front().is_some_and(|(s, _)| *s < oldest_kept) {
            buckets.pop_front();
        }
        match buckets.back_mut() {
            // A clock that stepped back counts in the newest bucket, so the order holds.
            Some((s, n)) if *s >= sec => *n = n.saturating_add(1),
            _ => {
                if buckets.len() >= MAX_BUCKETS {
                    buckets.pop_front();
                }
                buckets.push_back((sec, 1));
            }
        }
    }

    /// Refused requests per remote address within the last `window`, most first (ties by
    /// address); addresses without any are left out.
    pub fn refused_by_remote(&self, window: Duration) -> Vec<RemoteCount> {
        let now = self.clock.now_ms();
        let window = (window.as_millis() as Millis).min(horizon_ms());
        // Buckets are whole seconds: a bucket counts when its second starts within the
        // window.
        let from_sec = (now - window).div_euclid(1000) + i64::from((now - window) % 1000 != 0);
        let r = self.remotes.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<RemoteCount> = r
            .by_remote
            .iter()
            .map(|(ip, b)| RemoteCount {
                remote: *ip,
                refused: b
                    .iter()
                    .rev()
                    .take_while(|(s, _)| *s >= from_sec)
                    .map(|(_, n)| u64::from(*n))
                    .sum(),
            })
            .filter(|c| c.refused > 0)
            .collect();
        out.sort_by(|a, b| b.refused.cmp(&a.refused).then(a.remote.cmp(&b.remote)));
        out
    }

    /// A tool call finished after `latency`; `error` when the tool failed (not when the
    /// caller's arguments were invalid).
    pub fn tool_call(&self, error: bool, latency: Duration) {
        let now = self.clock.now_ms();
        let mut c = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let oldest_kept = now - horizon_ms();
        while c.samples.front().is_some_and(|s| s.at_ms < oldest_kept) {
            c.samples.pop_front();
        }
        if c.samples.len() >= MAX_CALLS
            && let Some(old) = c.samples.pop_front()
        {
            c.dropped_until_ms = Some(old.at_ms);
        }
        // Keep the order when the clock steps back.
        let at_ms = c.samples.back().map_or(now, |s| s.at_ms.max(now));
        c.samples.push_back(CallSample {
            at_ms,
            latency_ms: (latency.as_secs_f64() * 1000.0) as f32,
            error,
        });
    }

    /// Tool calls within the last `window` (at most [`HORIZON`]).
    pub fn calls(&self, window: Duration) -> CallStats {
        let now = self.clock.now_ms();
        let from = now - (window.as_millis() as Millis).min(horizon_ms());
        let c = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let mut latencies = Vec::new();
        let mut errors = 0;
        for s in c.samples.iter().rev().take_while(|s| s.at_ms >= from) {
            latencies.push(s.latency_ms);
            errors += u64::from(s.error);
        }
        let truncated = c.dropped_until_ms.is_some_and(|t| t >= from);
        drop(c);
        CallStats {
            calls: latencies.len() as u64,
            errors,
            p95_ms: percentile(&mut latencies, 95),
            truncated,
        }
    }
}

/// The `p`th percentile by nearest rank: the smallest value with at least p % of the
/// values at or below it.
fn percentile(values: &mut [f32], p: u32) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    let rank = (values.len() * p as usize).div_ceil(100).max(1);
    Some(f64::from(values[rank - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const T0: Millis = 1_790_000_000_000;

    fn watch() -> (ManualClock, SelfWatch) {
        let clock = ManualClock::at(T0);
        let w = SelfWatch::new(Arc::new(clock.clone()));
        (clock, w)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refusals_count_per_address_within_the_window_only() {
        let (clock, w) = watch();
        let five_min = Duration::from_secs(300);
        for _ in 0..10 {
            w.refused(ip("192.0.2.7"));
        }
        clock.advance(Duration::from_secs(120));
        for _ in 0..15 {
            w.refused(ip("192.0.2.7"));
        }
        w.refused(ip("2001:db8::1"));
        assert_eq!(
            w.refused_by_remote(five_min),
            vec![
                RemoteCount {
                    remote: ip("192.0.2.7"),
                    refused: 25
                },
                RemoteCount {
                    remote: ip("2001:db8::1"),
                    refused: 1
                },
            ]
        );
        // At exactly 5 minutes after the first ten they still count; a second later not.
        clock.advance(Duration::from_secs(180));
        assert_eq!(w.refused_by_remote(five_min)[0].refused, 25);
        clock.advance(Duration::from_secs(1));
        assert_eq!(w.refused_by_remote(five_min)[0].refused, 15);
        // A shorter window sees less; past the window nothing is left.
        assert_eq!(w.refused_by_remote(Duration::from_secs(60)), vec![]);
        clock.advance(Duration::from_secs(300));
        assert!(w.refused_by_remote(five_min).is_empty());
    }

    #[test]
    fn the_address_map_and_each_address_history_are_bounded() {
        let (clock, w) = watch();
        for i in 0..(MAX_REMOTES as u32 + 10) {
            w.refused(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
            clock.advance(Duration::from_secs(1));
        }
        let seen = w.refused_by_remote(HORIZON);
        assert_eq!(seen.len(), MAX_REMOTES);
        // The first (quietest) addresses were forgotten, the newest kept.
        assert!(!seen.iter().any(|c| c.remote == ip("10.0.0.0")));
        assert!(seen.iter().any(|c| c.remote == ip("10.0.2.9")));

        let busy = ip("198.51.100.1");
        for _ in 0..(MAX_BUCKETS + 50) {
            w.refused(busy);
            w.refused(busy);
            clock.advance(Duration::from_secs(1));
        }
        let n = w
            .refused_by_remote(HORIZON)
            .into_iter()
            .find(|c| c.remote == busy)
            .unwrap()
            .refused;
        assert_eq!(n, 2 * MAX_BUCKETS as u64);
        // A window longer than the horizon is the horizon.
        assert_eq!(
            w.refused_by_remote(Duration::from_secs(86_400)),
            w.refused_by_remote(HORIZON)
        );
    }

    #[test]
    fn a_clock_that_steps_back_counts_in_the_newest_second() {
        let (clock, w) = watch();
        w.refused(ip("192.0.2.1"));
        clock.set(T0 - 10_000);
        w.refused(ip("192.0.2.1"));
        clock.set(T0);
        assert_eq!(w.refused_by_remote(Duration::from_secs(60))[0].refused, 2);
    }

    #[test]
    fn call_stats_give_the_error_share_and_p95_of_the_window() {
        let (clock, w) = watch();
        let window = Duration::from_secs(300);
        assert_eq!(
            w.calls(window),
            CallStats {
                calls: 0,
                errors: 0,
                p95_ms: None,
                truncated: false
            }
        );
        // 100 calls of 1..=100 ms, 7 of them errors.
        for i in 1..=100u64 {
            w.tool_call(i % 14 == 0, Duration::from_millis(i));
        }
        let s = w.calls(window);
        assert_eq!((s.calls, s.errors), (100, 7));
        assert_eq!(s.p95_ms, Some(95.0));
        assert!((s.error_percent() - 7.0).abs() < 1e-9);
        // Six minutes later they are out of the window; new slow calls are what counts.
        clock.advance(Duration::from_secs(360));
        for _ in 0..3 {
            w.tool_call(false, Duration::from_secs(6));
        }
        let s = w.calls(window);
        assert_eq!((s.calls, s.errors), (3, 0));
        assert_eq!(s.p95_ms, Some(6000.0));
        // A longer window still reaches the first hundred.
        assert_eq!(w.calls(Duration::from_secs(600)).calls, 103);
        // 103 values: rank ceil(97.85) = 98, the 98th smallest.
        assert_eq!(w.calls(Duration::from_secs(600)).p95_ms, Some(98.0));
    }

    #[test]
    fn percentile_is_the_nearest_rank() {
        assert_eq!(percentile(&mut [], 95), None);
        assert_eq!(percentile(&mut [3.0], 95), Some(3.0));
        // 20 values: rank ceil(19) = 19 -> the 19th smallest.
        let mut v: Vec<f32> = (1..=20).rev().map(|i| i as f32).collect();
        assert_eq!(percentile(&mut v, 95), Some(19.0));
        let mut v = vec![1.0, 2.0];
        assert_eq!(percentile(&mut v, 95), Some(2.0));
    }

    #[test]
    fn the_call_samples_are_capped_and_say_when_the_window_was_cut() {
        let (clock, w) = watch();
        for _ in 0..(MAX_CALLS + 5) {
            w.tool_call(false, Duration::from_millis(1));
        }
        clock.advance(Duration::from_secs(1));
        let s = w.calls(Duration::from_secs(60));
        assert_eq!(s.calls, MAX_CALLS as u64);
        assert!(s.truncated);
        // Once the dropped ones are older than the window, it is whole again.
        clock.advance(Duration::from_secs(120));
        w.tool_call(false, Duration::from_millis(1));
        let s = w.calls(Duration::from_secs(60));
        assert_eq!((s.calls, s.truncated), (1, false));
    }
}
