//! Per-channel rate limits of the outbox: [`RateLimit`] (`"1/s"`, `"10/h"`, `"60/h"`,
//! `"none"`; the defaults by channel kind: slack 1/s, sms 10/h, email 60/h, every other
//! kind unlimited) and [`Limiter`], governor's GCRA over our own [`Clock`] (through
//! [`GovernorClock`]), so tests drive it with a `ManualClock`. A limit of `N/period`
//! allows a burst of N, then one more every period/N. What the limit holds back is never
//! dropped: the outbox gathers it into one digest (alerts/outbox_rate.rs). Limits live in
//! the sender's memory: each sender process (replica) has its own, and a restart starts
//! with a full burst.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Serialize, Serializer};

use crate::clock::{Clock, Millis};

/// The largest N in `N/period`.
pub const MAX_COUNT: u32 = 10_000;

/// What a rate limit may be written as, for errors.
pub const ALLOWED: &str = "`N/s`, `N/m`, `N/h` or `N/d` with N from 1 to 10000 (e.g. `1/s`, \
                           `10/h`, `60/h`), or `none`";

/// The period of a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
    Hour,
    Day,
}

impl Per {
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Per::Second => 1,
            Per::Minute => 60,
            Per::Hour => 3600,
            Per::Day => 86_400,
        })
    }

    fn unit(self) -> &'static str {
        match self {
            Per::Second => "s",
            Per::Minute => "m",
            Per::Hour => "h",
            Per::Day => "d",
        }
    }
}

/// A channel's rate limit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// Every notification is sent as itself.
    Unlimited,
    /// At most `count` per `per` (a burst of `count`, then one every `per / count`).
    Limited { count: u32, per: Per },
}

impl RateLimit {
    /// The default of a channel kind (`slack` 1/s, `sms` 10/h, `email` 60/h; others none).
    pub fn default_for(kind: &str) -> RateLimit {
        let limited = |count, per| RateLimit::Limited { count, per };
        match kind {
            "slack" => limited(1, Per::Second),
            "sms" => limited(10, Per::Hour),
            "email" => limited(60, Per::Hour),
            _ => RateLimit::Unlimited,
        }
    }

    /// Parse `N/s`, `N/m`, `N/h`, `N/d` (also `N/second`, `N/minute`, `N/hour`, `N/day`)
    /// or `none`. The error says what is wrong and what is allowed (the caller names the
    /// key).
    pub fn parse(s: &str) -> Result<RateLimit, String> {
        let shown = crate::util::sanitize_untrusted(s.as_bytes(), 40);
        let t = s.trim();
        if t.eq_ignore_ascii_case("none") {
            return Ok(RateLimit::Unlimited);
        }
        let Some((n, unit)) = t.split_once('/') else {
            return Err(format!("`{shown}` is not a rate limit; allowed: {ALLOWED}"));
        };
        let per = match unit.trim() {
            "s" | "sec" | "second" => Per::Second,
            "m" | "min" | "minute" => Per::Minute,
            "h" | "hour" => Per::Hour,
            "d" | "day" => Per::Day,
            _ => {
                return Err(format!(
                    "`{shown}` has an unknown period; allowed: {ALLOWED}"
                ));
            }
        };
        let count = match n.trim().parse::<u32>() {
            Ok(c) if (1..=MAX_COUNT).contains(&c) => c,
            Ok(0) => {
                return Err(format!(
                    "`{shown}` allows nothing (to send nothing, route no level to the \
                     channel); allowed: {ALLOWED}"
                ));
            }
            _ => {
                return Err(format!(
                    "`{shown}` needs a count from 1 to {MAX_COUNT} before `/`; allowed: \
                     {ALLOWED}"
                ));
            }
        };
        Ok(RateLimit::Limited { count, per })
    }

    pub fn is_limited(self) -> bool {
        matches!(self, RateLimit::Limited { .. })
    }
}

/// `1/s`, `10/h`, `none`: the form `parse` reads.
impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimit::Unlimited => f.write_str("none"),
            RateLimit::Limited { count, per } => write!(f, "{count}/{}", per.unit()),
        }
    }
}

/// `RateLimit(1/s)`: the written form (and no field names `config show` lacks).
impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateLimit({self})")
    }
}

/// Shown (config show) as written: `"1/s"`, `"none"`.
impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// governor's clock over ours: nanoseconds since the adapter was made (so an epoch-based
/// clock fits governor's `u64` nanoseconds), never going back before that origin.
#[derive(Clone)]
pub struct GovernorClock {
    clock: Arc<dyn Clock>,
    origin_ms: Millis,
}

impl GovernorClock {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let origin_ms = clock.now_ms();
        Self { clock, origin_ms }
    }

    /// The epoch milliseconds of one of this clock's instants (rounded up: never early).
    pub fn to_ms(&self, t: Nanos) -> Millis {
        self.origin_ms + t.as_u64().div_ceil(1_000_000) as Millis
    }
}

impl governor::clock::Clock for GovernorClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let ms = (self.clock.now_ms() - self.origin_ms).max(0) as u64;
        Nanos::from(ms.saturating_mul(1_000_000))
    }
}

/// One channel's limiter.
pub struct Limiter {
    limit: RateLimit,
    clock: GovernorClock,
    gcra: RateLimiter<NotKeyed, InMemoryState, GovernorClock, NoOpMiddleware<Nanos>>,
}

impl Limiter {
    /// None for an unlimited channel.
    pub fn new(limit: RateLimit, clock: Arc<dyn Clock>) -> Option<Limiter> {
        let RateLimit::Limited { count, per } = limit else {
            return None;
        };
        let count = NonZeroU32::new(count.clamp(1, MAX_COUNT))?;
        let quota = Quota::with_period(per.duration() / count.get())?.allow_burst(count);
        let clock = GovernorClock::new(clock);
        let gcra = RateLimiter::direct_with_clock(quota, clock.clone());
        Some(Limiter { limit, clock, gcra })
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Take one send now: Ok, or Err with the epoch milliseconds when one is next allowed.
    pub fn take(&self) -> Result<(), Millis> {
        self.gcra
            .check()
            .map_err(|not| self.clock.to_ms(not.earliest_possible()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn limits_parse_and_print_back() {
        for (s, want) in [
            (
                "1/s",
                RateLimit::Limited {
                    count: 1,
                    per: Per::Second,
                },
            ),
            (
                "10/h",
                RateLimit::Limited {
                    count: 10,
                    per: Per::Hour,
                },
            ),
            (
                " 60 / hour ",
                RateLimit::Limited {
                    count: 60,
                    per: Per::Hour,
                },
            ),
            (
                "5/m",
                RateLimit::Limited {
                    count: 5,
                    per: Per::Minute,
                },
            ),
            (
                "100/d",
                RateLimit::Limited {
                    count: 100,
                    per: Per::Day,
                },
            ),
            ("none", RateLimit::Unlimited),
            ("NONE", RateLimit::Unlimited),
        ] {
            assert_eq!(RateLimit::parse(s), Ok(want), "{s}");
        }
        assert_eq!(RateLimit::parse("60/hour").unwrap().to_string(), "60/h");
        assert_eq!(RateLimit::Unlimited.to_string(), "none");
        assert_eq!(
            serde_json::to_value(RateLimit::parse("1/s").unwrap()).unwrap(),
            "1/s"
        );
    }

    #[test]
    fn bad_limits_say_what_is_wrong_and_what_is_allowed() {
        for (s, what) in [
            ("", "is not a rate limit"),
            ("fast", "is not a rate limit"),
            ("10", "is not a rate limit"),
            ("10/w", "unknown period"),
            ("0/s", "allows nothing"),
            ("-1/s", "needs a count"),
            ("x/s", "needs a count"),
            ("10001/s", "needs a count"),
        ] {
            let e = RateLimit::parse(s).unwrap_err();
            assert!(e.contains(what), "{s}: {e}");
            assert!(e.contains("`N/s`") && e.contains("`none`"), "{s}: {e}");
        }
        // Untrusted text is shown sanitised and short.
        let e = RateLimit::parse(&format!("\u{1b}[31m{}", "9".repeat(100))).unwrap_err();
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn defaults_by_kind() {
        assert_eq!(RateLimit::default_for("slack").to_string(), "1/s");
        assert_eq!(RateLimit::default_for("sms").to_string(), "10/h");
        assert_eq!(RateLimit::default_for("email").to_string(), "60/h");
        for k in ["webhook", "pagerduty", "log", "file"] {
            assert_eq!(RateLimit::default_for(k), RateLimit::Unlimited, "{k}");
        }
    }

    #[test]
    fn a_limiter_follows_the_manual_clock() {
        // An epoch-sized start: the adapter must not overflow governor's nanoseconds.
        let clock = ManualClock::at(1_767_225_600_000);
        let l = Limiter::new(
            RateLimit::parse("1/s").unwrap(),
            Arc::new(clock.clone()) as Arc<dyn Clock>,
        )
        .unwrap();
        assert_eq!(l.take(), Ok(()));
        assert_eq!(l.take(), Err(1_767_225_601_000));
        clock.advance(Duration::from_millis(999));
        assert_eq!(l.take(), Err(1_767_225_601_000));
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.take(), Ok(()));

        let sms = Limiter::new(
            RateLimit::parse("10/h").unwrap(),
            Arc::new(clock.clone()) as Arc<dyn Clock>,
        )
        .unwrap();
        let start = clock.now_ms();
        for i in 0..10 {
            assert_eq!(sms.take(), Ok(()), "{i}");
        }
        // Then one every 6 minutes.
        assert_eq!(sms.take(), Err(start + 360_000));
        clock.advance(Duration::from_secs(360));
        assert_eq!(sms.take(), Ok(()));
        assert_eq!(sms.take(), Err(start + 720_000));
        assert!(Limiter::new(RateLimit::Unlimited, Arc::new(clock)).is_none());
    }
}
