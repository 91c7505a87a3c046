//! Monitor runs (table `monitor_runs`): a run is claimed by inserting its row with a lease
//! (`claimed_by`, `lease_until_ms`) in one `BEGIN IMMEDIATE` transaction, only when no
//! other run of the monitor holds an unexpired lease and the slot is not taken, so several
//! schedulers on one database never run a monitor twice for one slot; then finished with
//! its outcome. Also the last run and last outcome per monitor, a monitor's recent runs,
//! and retention.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{Store, StoreError};
use crate::clock::Millis;
use crate::monitor::RunOutcome;

/// The most characters of a run's error text kept.
pub const MAX_ERROR_CHARS: usize = 1000;
/// The most runs one listing returns.
pub const MAX_LIST: usize = 1000;
/// The error recorded for a run whose lease ran out before it finished.
pub const ABANDONED: &str =
    "abandoned: the lease expired before the run finished (the process that claimed it stopped)";

/// One stored run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    pub monitor: String,
    /// The slot the run is for.
    pub scheduled_ms: Millis,
    pub claimed_by: String,
    pub lease_until_ms: Millis,
    pub started_ms: Millis,
    /// None while running.
    pub finished_ms: Option<Millis>,
    pub outcome: Option<RunOutcome>,
    pub error: Option<String>,
    pub observations: Option<i64>,
}

impl RunRecord {
    pub fn duration_ms(&self) -> Option<Millis> {
        self.finished_ms.map(|f| f - self.started_ms)
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The run is ours: its row id.
    Claimed(i64),
    /// Another run of the monitor holds an unexpired lease.
    Busy {
        claimed_by: String,
        lease_until_ms: Millis,
    },
    /// A run for this slot (or a later one) already exists.
    SlotTaken { scheduled_ms: Millis },
}

/// What a finished run says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd<'a> {
    pub outcome: RunOutcome,
    pub error: Option<&'a str>,
    pub observations: usize,
    pub finished_ms: Millis,
}

/// One monitor's latest run and latest finished outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRunStatus {
    pub monitor: String,
    /// The newest run (maybe still running).
    pub last_run: RunRecord,
    /// The outcome of the newest finished run.
    pub last_outcome: Option<RunOutcome>,
    pub last_finished_ms: Option<Millis>,
}

const COLUMNS: &str = "id, monitor, scheduled_ms, claimed_by, lease_until_ms, started_ms, \
                       finished_ms, outcome, error, observations";

fn record(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let outcome: Option<String> = r.get(7)?;
    Ok(RunRecord {
        id: r.get(0)?,
        monitor: r.get(1)?,
        scheduled_ms: r.get(2)?,
        claimed_by: r.get(3)?,
        lease_until_ms: r.get(4)?,
        started_ms: r.get(5)?,
        finished_ms: r.get(6)?,
        outcome: outcome.as_deref().and_then(RunOutcome::parse),
        error: r.get(8)?,
        observations: r.get(9)?,
    })
}

/// Claim the run of `monitor` for `scheduled_ms`, leased to `claimed_by` until
/// `lease_until_ms`. Runs whose lease expired unfinished are closed as abandoned first.
pub fn claim(
    conn: &mut Connection,
    monitor: &str,
    scheduled_ms: Millis,
    claimed_by: &str,
    now_ms: Millis,
    lease_until_ms: Millis,
) -> Result<Claim, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "UPDATE monitor_runs SET finished_ms = lease_until_ms, outcome = 'error', error = ?3
         WHERE monitor = ?1 AND finished_ms IS NULL AND lease_until_ms <= ?2",
        params![monitor, now_ms, ABANDONED],
    )?;
    let busy: Option<(String, Millis)> = tx
        .query_row(
            "SELECT claimed_by, lease_until_ms FROM monitor_runs
             WHERE monitor = ?1 AND finished_ms IS NULL ORDER BY id DESC LIMIT 1",
            [monitor],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((claimed_by, lease_until_ms)) = busy {
        tx.commit()?; // keeps the abandoned runs closed
        return Ok(Claim::Busy {
            claimed_by,
            lease_until_ms,
        });
    }
    // Abandoned runs do not take their slot: the slot is run again.
    let taken: Option<Millis> = tx
        .query_row(
            "SELECT MAX(scheduled_ms) FROM monitor_runs
             WHERE monitor = ?1 AND scheduled_ms >= ?2 AND (error IS NULL OR error != ?3)",
            params![monitor, scheduled_ms, ABANDONED],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if let Some(scheduled_ms) = taken {
        tx.commit()?;
        return Ok(Claim::SlotTaken { scheduled_ms });
    }
    tx.execute(
        "INSERT INTO monitor_runs (monitor, scheduled_ms, claimed_by, lease_until_ms, started_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![monitor, scheduled_ms, claimed_by, lease_until_ms, now_ms],
    )?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(Claim::Claimed(id))
}

/// Record the end of run `id` (claimed by `claimed_by`). False when the run is no longer
/// ours to finish (already finished, or closed as abandoned after its lease expired).
pub fn finish(
    conn: &Connection,
    id: i64,
    claimed_by: &str,
    end: &RunEnd<'_>,
) -> Result<bool, StoreError> {
    let error = end
        .error
        .map(|e| crate::util::sanitize_untrusted(e.as_bytes(), MAX_ERROR_CHARS));
    let n = conn.execute(
        "UPDATE monitor_runs SET finished_ms = ?3, outcome = ?4, error = ?5, observations = ?6
         WHERE id = ?1 AND claimed_by = ?2 AND finished_ms IS NULL",
        params![
            id,
            claimed_by,
            end.finished_ms,
            end.outcome.as_str(),
            error,
            end.observations as i64
        ],
    )?;
    Ok(n == 1)
}

/// The newest run of `monitor`.
pub fn last(conn: &Connection, monitor: &str) -> Result<Option<RunRecord>, StoreError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM monitor_runs WHERE monitor = ?1 ORDER BY id DESC LIMIT 1"
            ),
            [monitor],
            record,
        )
        .optional()?)
}

/// The slot of the newest run of `monitor` that counts as done or in progress at
/// `now_ms`: abandoned runs, and unfinished runs whose lease has expired, do not count (a
/// scheduler starting after a crash runs that slot again).
pub fn last_slot(
    conn: &Connection,
    monitor: &str,
    now_ms: Millis,
) -> Result<Option<Millis>, StoreError> {
    Ok(conn.query_row(
        "SELECT MAX(scheduled_ms) FROM monitor_runs
         WHERE monitor = ?1 AND (error IS NULL OR error != ?2)
           AND NOT (finished_ms IS NULL AND lease_until_ms <= ?3)",
        params![monitor, ABANDONED, now_ms],
        |r| r.get(0),
    )?)
}

/// Runs of `monitor`, newest first, at most `limit` (capped at [`MAX_LIST`]).
pub fn of_monitor(
    conn: &Connection,
    monitor: &str,
    limit: usize,
) -> Result<Vec<RunRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM monitor_runs WHERE monitor = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![monitor, limit.min(MAX_LIST) as i64], record)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// For every monitor with a stored run: its newest run and newest finished outcome, by
/// monitor name.
pub fn status(conn: &Connection) -> Result<Vec<MonitorRunStatus>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM monitor_runs WHERE id IN
           (SELECT MAX(id) FROM monitor_runs GROUP BY monitor)
         ORDER BY monitor"
    ))?;
    let latest = stmt.query_map([], record)?.collect::<Result<Vec<_>, _>>()?;
    let mut finished = conn.prepare_cached(
        "SELECT outcome, finished_ms FROM monitor_runs
         WHERE monitor = ?1 AND finished_ms IS NOT NULL ORDER BY id DESC LIMIT 1",
    )?;
    let mut out = Vec::with_capacity(latest.len());
    for last_run in latest {
        let (outcome, finished_ms): (Option<String>, Option<Millis>) = finished
            .query_row([&last_run.monitor], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((None, None));
        out.push(MonitorRunStatus {
            monitor: last_run.monitor.clone(),
            last_run,
            last_outcome: outcome.as_deref().and_then(RunOutcome::parse),
            last_finished_ms: finished_ms,
        });
    }
    Ok(out)
}

/// Retention: delete finished runs that started before `cutoff_ms`, except the newest run
/// of each monitor (it is what the schedule resumes from). Returns how many were deleted.
pub fn delete_before(conn: &Connection, cutoff_ms: Millis) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM monitor_runs
         WHERE started_ms < ?1 AND finished_ms IS NOT NULL
           AND id NOT IN (SELECT MAX(id) FROM monitor_runs GROUP BY monitor)",
        [cutoff_ms],
    )?)
}

impl Store {
    /// See [`claim`].
    pub fn claim_monitor_run(
        &self,
        monitor: &str,
        scheduled_ms: Millis,
        claimed_by: &str,
        now_ms: Millis,
        lease_until_ms: Millis,
    ) -> Result<Claim, StoreError> {
        claim(
            &mut self.conn(),
            monitor,
            scheduled_ms,
            claimed_by,
            now_ms,
            lease_until_ms,
        )
    }

    /// See [`finish`].
    pub fn finish_monitor_run(
        &self,
        id: i64,
        claimed_by: &str,
        end: &RunEnd<'_>,
    ) -> Result<bool, StoreError> {
        finish(&self.conn(), id, claimed_by, end)
    }

    pub fn last_monitor_run(&self, monitor: &str) -> Result<Option<RunRecord>, StoreError> {
        last(&self.conn(), monitor)
    }

    /// See [`last_slot`].
    pub fn last_monitor_slot(
        &self,
        monitor: &str,
        now_ms: Millis,
    ) -> Result<Option<Millis>, StoreError> {
        last_slot(&self.conn(), monitor, now_ms)
    }

    pub fn monitor_runs(&self, monitor: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        of_monitor(&self.conn(), monitor, limit)
    }

    pub fn monitor_run_status(&self) -> Result<Vec<MonitorRunStatus>, StoreError> {
        status(&self.conn())
    }

    /// See [`delete_before`].
    pub fn delete_monitor_runs_before(&self, cutoff_ms: Millis) -> Result<usize, StoreError> {
        delete_before(&self.conn(), cutoff_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        (tmp, store)
    }

    fn end(outcome: RunOutcome, at: Millis) -> RunEnd<'static> {
        RunEnd {
            outcome,
            error: None,
            observations: 2,
            finished_ms: at,
        }
    }

    #[test]
    fn a_claim_is_refused_while_another_lease_holds_and_for_a_taken_slot() {
        let (_t, s) = store();
        let Claim::Claimed(a) = s
            .claim_monitor_run("certs", 1000, "r1", 1000, 5000)
            .unwrap()
        else {
            panic!("first claim must succeed")
        };
        // Another replica, a later slot, while r1's lease holds.
        assert_eq!(
            s.claim_monitor_run("certs", 2000, "r2", 2000, 6000)
                .unwrap(),
            Claim::Busy {
                claimed_by: "r1".into(),
                lease_until_ms: 5000
            }
        );
        // Another monitor is independent.
        assert!(matches!(
            s.claim_monitor_run("uptime", 1000, "r2", 1000, 5000)
                .unwrap(),
            Claim::Claimed(_)
        ));
        assert!(
            s.finish_monitor_run(a, "r1", &end(RunOutcome::Ok, 1500))
                .unwrap()
        );
        // Finishing twice, or by someone else, changes nothing.
        assert!(
            !s.finish_monitor_run(a, "r1", &end(RunOutcome::Error, 1600))
                .unwrap()
        );
        // The same slot once more (the other replica, late): taken.
        assert_eq!(
            s.claim_monitor_run("certs", 1000, "r2", 1700, 6000)
                .unwrap(),
            Claim::SlotTaken { scheduled_ms: 1000 }
        );
        assert!(matches!(
            s.claim_monitor_run("certs", 2000, "r2", 2000, 6000)
                .unwrap(),
            Claim::Claimed(_)
        ));
        let runs = s.monitor_runs("certs", 10).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].scheduled_ms, 2000, "newest first");
        assert_eq!(runs[1].outcome, Some(RunOutcome::Ok));
        assert_eq!(runs[1].duration_ms(), Some(500));
        assert_eq!(runs[1].observations, Some(2));
    }

    #[test]
    fn an_expired_lease_is_closed_as_abandoned_and_its_slot_runs_again() {
        let (_t, s) = store();
        let Claim::Claimed(a) = s.claim_monitor_run("m", 1000, "r1", 1000, 3000).unwrap() else {
            panic!()
        };
        let Claim::Claimed(b) = s.claim_monitor_run("m", 1000, "r2", 3000, 9000).unwrap() else {
            panic!("the lease expired at 3000; the slot is free again")
        };
        let old = s.monitor_runs("m", 10).unwrap().pop().unwrap();
        assert_eq!(old.id, a);
        assert_eq!(old.outcome, Some(RunOutcome::Error));
        assert_eq!(old.error.as_deref(), Some(ABANDONED));
        assert_eq!(old.finished_ms, Some(3000));
        // The first claimant waking up late cannot overwrite that.
        assert!(
            !s.finish_monitor_run(a, "r1", &end(RunOutcome::Ok, 3500))
                .unwrap()
        );
        assert!(
            s.finish_monitor_run(b, "r2", &end(RunOutcome::Problems, 3500))
                .unwrap()
        );
    }

    #[test]
    fn errors_are_bounded_and_status_has_the_last_run_and_outcome() {
        let (_t, s) = store();
        let Claim::Claimed(a) = s.claim_monitor_run("m", 1000, "r1", 1000, 9000).unwrap() else {
            panic!()
        };
        let long = "x".repeat(10_000) + "\u{1b}[31m";
        let e = RunEnd {
            outcome: RunOutcome::Error,
            error: Some(&long),
            observations: 0,
            finished_ms: 1100,
        };
        assert!(s.finish_monitor_run(a, "r1", &e).unwrap());
        let Claim::Claimed(_) = s.claim_monitor_run("m", 2000, "r1", 2000, 9000).unwrap() else {
            panic!()
        };
        let last = s.last_monitor_run("m").unwrap().unwrap();
        assert_eq!(last.scheduled_ms, 2000);
        assert_eq!(last.finished_ms, None);
        let first = s.monitor_runs("m", 10).unwrap().pop().unwrap();
        let err = first.error.unwrap();
        assert!(err.chars().count() <= MAX_ERROR_CHARS + 1, "{}", err.len());
        assert!(!err.contains('\u{1b}'));
        let st = s.monitor_run_status().unwrap();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].monitor, "m");
        assert_eq!(st[0].last_run.scheduled_ms, 2000, "the running one");
        assert_eq!(
            st[0].last_outcome,
            Some(RunOutcome::Error),
            "the finished one"
        );
        assert_eq!(st[0].last_finished_ms, Some(1100));
        assert_eq!(s.last_monitor_run("other").unwrap(), None);
    }

    #[test]
    fn retention_deletes_old_finished_runs_only_and_keeps_each_monitors_newest() {
        let (_t, s) = store();
        let day = 86_400_000;
        let run = |m: &str, at: Millis, finish: bool| {
            let Claim::Claimed(id) = s.claim_monitor_run(m, at, "r", at, at + 60_000).unwrap()
            else {
                panic!()
            };
            if finish {
                s.finish_monitor_run(id, "r", &end(RunOutcome::Ok, at + 10))
                    .unwrap();
            }
            id
        };
        for d in 0..5 {
            run("a", d * day, true);
        }
        // Monitor b ran only long ago: its one run stays.
        let b = run("b", day, true);
        let cutoff = 3 * day;
        assert_eq!(s.delete_monitor_runs_before(cutoff).unwrap(), 3);
        let a: Vec<Millis> = s
            .monitor_runs("a", 10)
            .unwrap()
            .iter()
            .map(|r| r.scheduled_ms)
            .collect();
        assert_eq!(a, vec![4 * day, 3 * day]);
        assert_eq!(s.last_monitor_run("b").unwrap().unwrap().id, b);
        assert_eq!(s.delete_monitor_runs_before(cutoff).unwrap(), 0);
    }
}
