//! Uptime history (table `uptime_samples`): one row per probe of an uptime monitor (when,
//! up or not, response time), the uptime percentage and p95 response time over a window,
//! and retention.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};
use crate::clock::Millis;

/// Uptime over one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct UptimeStats {
    /// Probes in the window.
    pub samples: u64,
    /// Of them, up (no problem).
    pub up: u64,
    /// `up / samples` in percent, two decimals; none without samples.
    pub uptime_percent: Option<f64>,
    /// 95th percentile of the response times measured (nearest rank); none without any.
    pub p95_ms: Option<u64>,
}

impl Store {
    /// Record one probe of `monitor`.
    pub fn uptime_record(
        &self,
        monitor: &str,
        at_ms: Millis,
        ok: bool,
        response_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO uptime_samples (monitor, at_ms, ok, response_ms) VALUES (?1, ?2, ?3, ?4)",
            params![monitor, at_ms, ok, response_ms.map(|v| v as i64)],
        )?;
        Ok(())
    }

    /// `monitor`'s probes at or after `since_ms`.
    pub fn uptime_stats(&self, monitor: &str, since_ms: Millis) -> Result<UptimeStats, StoreError> {
        let conn = self.conn();
        let (samples, up): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(ok), 0) FROM uptime_samples
             WHERE monitor = ?1 AND at_ms >= ?2",
            params![monitor, since_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut stmt = conn.prepare_cached(
            "SELECT response_ms FROM uptime_samples
             WHERE monitor = ?1 AND at_ms >= ?2 AND response_ms IS NOT NULL
             ORDER BY response_ms",
        )?;
        let times: Vec<i64> = stmt
            .query_map(params![monitor, since_ms], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let p95_ms = (!times.is_empty()).then(|| {
            // Nearest rank: the smallest value with at least 95 % of samples at or below it.
            let rank = (times.len() * 95).div_ceil(100).max(1);
            times[rank - 1] as u64
        });
        let uptime_percent =
            (samples > 0).then(|| (up as f64 * 10_000.0 / samples as f64).round() / 100.0);
        Ok(UptimeStats {
            samples: samples as u64,
            up: up as u64,
            uptime_percent,
            p95_ms,
        })
    }

    /// Retention: delete samples older than `cutoff_ms`.
    pub fn uptime_prune_before(&self, cutoff_ms: Millis) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM uptime_samples WHERE at_ms < ?1", [cutoff_ms])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_percent_and_p95_over_a_window() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(
            store.uptime_stats("web", 0).unwrap(),
            UptimeStats {
                samples: 0,
                up: 0,
                uptime_percent: None,
                p95_ms: None
            }
        );
        // 100 probes: response times 1..=100 ms; three down (one without a time).
        for i in 1..=100u64 {
            store
                .uptime_record("web", 1_000 + i as i64, i % 40 != 0, Some(i))
                .unwrap();
        }
        store.uptime_record("web", 1_200, false, None).unwrap();
        store
            .uptime_record("other", 1_200, true, Some(9_999))
            .unwrap();
        let s = store.uptime_stats("web", 0).unwrap();
        assert_eq!((s.samples, s.up), (101, 98));
        assert_eq!(s.uptime_percent, Some(97.03));
        assert_eq!(s.p95_ms, Some(95));
        // The window: only the last 10 probes with a time (91..=100) and the timeless one.
        let s = store.uptime_stats("web", 1_091).unwrap();
        assert_eq!((s.samples, s.up), (11, 10));
        assert_eq!(s.p95_ms, Some(100));
        assert_eq!(store.uptime_prune_before(1_051).unwrap(), 50);
        assert_eq!(store.uptime_stats("web", 0).unwrap().samples, 51);
    }
}
