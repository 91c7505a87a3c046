//! The `self` monitor kind: secops-mcp's own security and health from the in-process
//! recorder ([`crate::selfwatch`]): a burst of refused HTTP requests (401, 403, and the
//! failed-auth throttle's 429) from one remote address (`auth_failure_burst`, subject
//! `remote`; warning at `auth_failures` within `auth_window`, critical at 5 times that),
//! the tool error rate over `error_window` (`tool_error_rate`, warning) and the p95 tool
//! latency over the same window (`tool_latency_p95`, warning), both only once the window
//! holds `min_calls` calls. Each run is complete: an address no longer bursting resolves.

use std::time::Duration;

use serde::Serialize;

use super::{KeyError, KindKeys, KindRun, ser_duration, subject};
use crate::alerts::{Level, Observation};
use crate::selfwatch::{CallStats, HORIZON, RemoteCount, SelfWatch};

pub const AUTH_BURST: &str = "auth_failure_burst";
pub const ERROR_RATE: &str = "tool_error_rate";
pub const LATENCY: &str = "tool_latency_p95";
/// A burst this many times the threshold is critical.
pub const CRITICAL_FACTOR: u64 = 5;
/// At most this many addresses are reported in one run (the loudest).
pub const MAX_REMOTES_REPORTED: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfSettings {
    /// Refused requests from one address within `auth_window` that make a burst.
    pub auth_failures: u64,
    #[serde(serialize_with = "ser_duration")]
    pub auth_window: Duration,
    /// The share of tool calls that failed, in percent, above which it alerts.
    pub error_rate_percent: f64,
    #[serde(serialize_with = "ser_duration")]
    pub error_window: Duration,
    /// Fewer calls than this in the window say nothing about the rate or the latency.
    pub min_calls: u64,
    /// The p95 tool latency above which it alerts.
    pub p95_latency_ms: u64,
}

impl Default for SelfSettings {
    fn default() -> Self {
        SelfSettings {
            auth_failures: 20,
            auth_window: Duration::from_secs(300),
            error_rate_percent: 5.0,
            error_window: Duration::from_secs(300),
            min_calls: 20,
            p95_latency_ms: 5000,
        }
    }
}

impl SelfSettings {
    pub fn parse(k: &mut KindKeys) -> Result<Self, KeyError> {
        let d = SelfSettings::default();
        let window = |k: &mut KindKeys, key: &str, default: Duration| {
            let w = k.duration(key)?.unwrap_or(default);
            if w.is_zero() || w > HORIZON {
                return Err(k.error(
                    key,
                    "must be more than 0 and at most 1h (the server keeps one hour of its own \
                     history)",
                ));
            }
            Ok(w)
        };
        let max_auth = crate::selfwatch::MAX_BUCKETS as i64;
        Ok(SelfSettings {
            auth_failures: k
                .integer_in("auth_failures", 1..=max_auth)?
                .map_or(d.auth_failures, |v| v as u64),
            auth_window: window(k, "auth_window", d.auth_window)?,
            error_rate_percent: k
                .percent("error_rate_percent")?
                .unwrap_or(d.error_rate_percent),
            error_window: window(k, "error_window", d.error_window)?,
            min_calls: k
                .integer_in("min_calls", 1..=1_000_000)?
                .map_or(d.min_calls, |v| v as u64),
            p95_latency_ms: k
                .integer_in("p95_latency_ms", 1..=3_600_000)?
                .map_or(d.p95_latency_ms, |v| v as u64),
        })
    }
}

pub async fn observe(watch: &SelfWatch, s: &SelfSettings) -> Result<KindRun, String> {
    let remotes = watch.refused_by_remote(s.auth_window);
    let calls = watch.calls(s.error_window);
    Ok(map(&remotes, &calls, s))
}

/// The observations of one run from the recorder's counts.
pub fn map(remotes: &[RemoteCount], calls: &CallStats, s: &SelfSettings) -> KindRun {
    let auth_window = super::super::format_duration(s.auth_window);
    let mut observations: Vec<Observation> = remotes
        .iter()
        .filter(|r| r.refused >= s.auth_failures)
        .take(MAX_REMOTES_REPORTED)
        .map(|r| {
            let level = if r.refused >= s.auth_failures.saturating_mul(CRITICAL_FACTOR) {
                Level::Critical
            } else {
                Level::Warning
            };
            Observation {
                code: AUTH_BURST.into(),
                subject: subject("remote", &r.remote.to_string()),
                level: Some(level),
                title: format!(
                    "{} refused requests to secops-mcp from {} in {auth_window}",
                    r.refused, r.remote
                ),
                summary: format!(
                    "{} requests from {} were refused within {auth_window} (401 without a valid \
                     bearer token, 403 for a Host or Origin not allowed, or 429 while the address \
                     is throttled for failed authentications; threshold {}). This may be someone \
                     guessing tokens against secops-mcp or a client with a stale token. Check \
                     who uses that address; block it (block_ip) if it is not yours, or give the \
                     client a valid token.",
                    r.refused, r.remote, s.auth_failures
                ),
                value: Some(format!("{} in {auth_window}", r.refused)),
            }
        })
        .collect();
    let error_window = super::super::format_duration(s.error_window);
    let enough = calls.calls >= s.min_calls;
    let shown = if calls.truncated {
        format!("the newest {} calls", calls.calls)
    } else {
        error_window.clone()
    };
    let rate = calls.error_percent();
    let rate_level = (enough && rate > s.error_rate_percent).then_some(Level::Warning);
    observations.push(Observation {
        code: ERROR_RATE.into(),
        subject: Default::default(),
        level: rate_level,
        title: format!("Tool error rate {rate:.1} % over {shown}"),
        summary: if rate_level.is_some() {
            format!(
                "{} of {} tool calls failed over {shown} ({rate:.1} %, threshold {} %). The \
                 tool-call log (and the server's log) names the failing tools; wazuh_health \
                 shows whether Wazuh behind them is the cause.",
                calls.errors, calls.calls, s.error_rate_percent
            )
        } else if enough {
            format!(
                "{} of {} tool calls failed over {shown} ({rate:.1} %), within {} %.",
                calls.errors, calls.calls, s.error_rate_percent
            )
        } else {
            format!(
                "{} tool calls over {shown}, fewer than the {} needed to judge the error rate.",
                calls.calls, s.min_calls
            )
        },
        value: Some(format!("{rate:.1} %")),
    });
    let p95 = calls.p95_ms.unwrap_or(0.0);
    let slow_level = (enough && p95 > s.p95_latency_ms as f64).then_some(Level::Warning);
    observations.push(Observation {
        code: LATENCY.into(),
        subject: Default::default(),
        level: slow_level,
        title: format!("p95 tool latency {p95:.0} ms over {shown}"),
        summary: if slow_level.is_some() {
            format!(
                "The 95th percentile of {} tool calls over {shown} took {p95:.0} ms (threshold \
                 {} ms). Slow Wazuh or indexer answers, large scans or a busy host are the usual \
                 causes; host_metrics and wazuh_health show which.",
                calls.calls, s.p95_latency_ms
            )
        } else if enough {
            format!(
                "The 95th percentile of {} tool calls over {shown} took {p95:.0} ms, within {} ms.",
                calls.calls, s.p95_latency_ms
            )
        } else {
            format!(
                "{} tool calls over {shown}, fewer than the {} needed to judge the latency.",
                calls.calls, s.min_calls
            )
        },
        value: Some(format!("{p95:.0} ms")),
    });
    KindRun {
        observations,
        complete: true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    fn keys(toml: &str) -> KindKeys {
        KindKeys::new("monitors[0]", toml::from_str(toml).unwrap())
    }

    #[test]
    fn settings_have_defaults_and_refuse_bad_values_by_key() {
        let mut k = keys("");
        assert_eq!(
            SelfSettings::parse(&mut k).unwrap(),
            SelfSettings::default()
        );
        let mut k = keys(
            "auth_failures = 5\nauth_window = \"1m\"\nerror_rate_percent = 10\nmin_calls = 3\n\
             p95_latency_ms = 200\nerror_window = \"10m\"",
        );
        let s = SelfSettings::parse(&mut k).unwrap();
        k.finish().unwrap();
        assert_eq!(
            (
                s.auth_failures,
                s.auth_window,
                s.min_calls,
                s.p95_latency_ms
            ),
            (5, Duration::from_secs(60), 3, 200)
        );
        assert_eq!(s.error_window, Duration::from_secs(600));
        for (toml, key) in [
            ("auth_window = \"2h\"", "monitors[0].auth_window"),
            ("error_window = \"0s\"", "monitors[0].error_window"),
            ("auth_failures = 0", "monitors[0].auth_failures"),
            ("error_rate_percent = 150", "monitors[0].error_rate_percent"),
            ("min_calls = \"many\"", "monitors[0].min_calls"),
            ("auth_window = \"5\"", "monitors[0].auth_window"),
        ] {
            let e = SelfSettings::parse(&mut keys(toml)).unwrap_err();
            assert_eq!(e.key, key, "{toml}: {e:?}");
        }
    }

    #[test]
    fn a_burst_from_one_address_alerts_warning_then_critical_and_resolves_by_absence() {
        let clock = ManualClock::at(1_790_000_000_000);
        let w = SelfWatch::new(Arc::new(clock.clone()));
        let s = SelfSettings {
            auth_failures: 10,
            ..Default::default()
        };
        let ip: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..9 {
            w.refused(ip);
        }
        let run = map(
            &w.refused_by_remote(s.auth_window),
            &w.calls(s.error_window),
            &s,
        );
        assert!(run.complete);
        assert!(!run.observations.iter().any(|o| o.code == AUTH_BURST));
        w.refused(ip);
        let run = map(
            &w.refused_by_remote(s.auth_window),
            &w.calls(s.error_window),
            &s,
        );
        let o = &run.observations[0];
        assert_eq!(o.code, AUTH_BURST);
        assert_eq!(o.subject["remote"], "203.0.113.9");
        assert_eq!(o.level, Some(Level::Warning));
        assert_eq!(o.value.as_deref(), Some("10 in 5m"));
        for _ in 0..40 {
            w.refused(ip);
        }
        let run = map(
            &w.refused_by_remote(s.auth_window),
            &w.calls(s.error_window),
            &s,
        );
        assert_eq!(run.observations[0].level, Some(Level::Critical));
        // Past the window the address is not mentioned: the complete run resolves it.
        clock.advance(Duration::from_secs(301));
        let run = map(
            &w.refused_by_remote(s.auth_window),
            &w.calls(s.error_window),
            &s,
        );
        assert!(!run.observations.iter().any(|o| o.code == AUTH_BURST));
    }

    #[test]
    fn error_rate_and_latency_need_enough_calls_and_judge_the_window() {
        let clock = ManualClock::at(1_790_000_000_000);
        let w = SelfWatch::new(Arc::new(clock.clone()));
        let s = SelfSettings::default();
        let find = |run: &KindRun, code: &str| {
            run.observations
                .iter()
                .find(|o| o.code == code)
                .cloned()
                .unwrap()
        };
        // One error in two calls: too few calls to say anything.
        w.tool_call(true, Duration::from_secs(9));
        w.tool_call(false, Duration::from_secs(9));
        let run = map(&[], &w.calls(s.error_window), &s);
        assert_eq!(find(&run, ERROR_RATE).level, None);
        assert_eq!(find(&run, LATENCY).level, None);
        assert!(find(&run, ERROR_RATE).summary.contains("fewer than the 20"));
        // 40 calls with 2 errors, then one more error: 3 of 41 (7.3 %), p95 9 s: both alert.
        for i in 0..38 {
            w.tool_call(i == 0, Duration::from_secs(if i < 36 { 1 } else { 9 }));
        }
        let stats = w.calls(s.error_window);
        assert_eq!((stats.calls, stats.errors), (40, 2));
        w.tool_call(true, Duration::from_millis(10));
        let run = map(&[], &w.calls(s.error_window), &s);
        let rate = find(&run, ERROR_RATE);
        assert_eq!(rate.level, Some(Level::Warning), "{rate:?}");
        assert!(rate.summary.contains("3 of 41"), "{}", rate.summary);
        let slow = find(&run, LATENCY);
        assert_eq!(slow.level, Some(Level::Warning), "{slow:?}");
        assert_eq!(slow.value.as_deref(), Some("9000 ms"));
        // Five minutes of good calls later, both are fine.
        clock.advance(Duration::from_secs(301));
        for _ in 0..25 {
            w.tool_call(false, Duration::from_millis(20));
        }
        let run = map(&[], &w.calls(s.error_window), &s);
        assert_eq!(find(&run, ERROR_RATE).level, None);
        assert_eq!(find(&run, LATENCY).level, None);
        assert_eq!(find(&run, ERROR_RATE).value.as_deref(), Some("0.0 %"));
    }
}
