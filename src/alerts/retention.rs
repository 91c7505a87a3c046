//! Retention: the daily clean-up of what monitoring writes. Monitor runs, resolved alerts
//! (with their timelines) and delivered or dead-lettered notifications (with their
//! attempts) and uptime samples older than `retention_days` (default 30) are deleted; pending notifications,
//! open alerts, each monitor's newest run and the audit log are never pruned.

use serde::Serialize;

use crate::clock::Millis;
use crate::store::{Store, StoreError};

pub const DEFAULT_RETENTION_DAYS: u32 = 30;
const DAY_MS: Millis = 86_400_000;

/// What one clean-up deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub monitor_runs: usize,
    pub alerts: usize,
    pub notifications: usize,
    pub uptime_samples: usize,
}

/// Delete what finished more than `retention_days` before `now_ms`.
pub fn prune(store: &Store, now_ms: Millis, retention_days: u32) -> Result<Pruned, StoreError> {
    let cutoff = now_ms - Millis::from(retention_days) * DAY_MS;
    Ok(Pruned {
        monitor_runs: store.delete_monitor_runs_before(cutoff)?,
        notifications: store.outbox_prune_finished(cutoff)?,
        alerts: store.alerts_prune_resolved(cutoff)?,
        uptime_samples: store.uptime_prune_before(cutoff)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::alerts::lifecycle::{MonitorPolicy, evaluate};
    use crate::alerts::{Level, Observation};
    use crate::clock::{Clock, ManualClock};
    use crate::monitor::RunOutcome;
    use crate::store::AuditEntry;
    use crate::store::monitor_runs::{Claim, RunEnd};
    use crate::store::outbox::{Attempt, AttemptOutcome};

    const T0: Millis = 1_790_000_000_000;

    fn obs(level: Option<Level>) -> Observation {
        Observation {
            code: "endpoint_down".into(),
            subject: BTreeMap::from([("url".to_string(), "https://a.example/".to_string())]),
            level,
            title: "a is down".into(),
            summary: String::new(),
            value: None,
        }
    }

    fn one_run(store: &Store, at: Millis) {
        let Claim::Claimed(id) = store
            .claim_monitor_run("web", at, "t", at, at + 60_000)
            .unwrap()
        else {
            panic!("not claimed");
        };
        let end = RunEnd {
            outcome: RunOutcome::Ok,
            error: None,
            observations: 1,
            finished_ms: at + 10,
        };
        assert!(store.finish_monitor_run(id, "t", &end).unwrap());
    }

    #[test]
    fn old_finished_things_go_and_open_pending_and_audited_things_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let clock = ManualClock::at(T0);
        let mut p = MonitorPolicy::new("web").route(Level::Critical, &["log"]);
        p.group_wait = Duration::ZERO;
        store
            .audit_append(&AuditEntry {
                caller: "system".into(),
                tool: "monitor".into(),
                action: "test".into(),
                args_digest: None,
                outcome: "ok".into(),
                ..Default::default()
            })
            .unwrap();
        // 40 days ago: a run, an alert that fired (delivered) and resolved (one pending).
        one_run(&store, clock.now_ms());
        one_run(&store, clock.now_ms() + 1_000);
        store
            .uptime_record("web", clock.now_ms(), true, Some(12))
            .unwrap();
        store
            .uptime_record("web", clock.now_ms() + 39 * DAY_MS, true, Some(12))
            .unwrap();
        evaluate(&store, &clock, &p, &[obs(Some(Level::Critical))]).unwrap();
        let claimed = store.outbox_claim("t", clock.now_ms(), 60_000, 10).unwrap();
        assert_eq!(claimed.len(), 1);
        let delivered = Attempt {
            at_ms: clock.now_ms(),
            outcome: AttemptOutcome::Delivered,
            status: Some(200),
            detail: "ok".into(),
        };
        assert!(store.outbox_record(claimed[0].id, "t", &delivered).unwrap());
        clock.advance(Duration::from_secs(60));
        evaluate(&store, &clock, &p, &[obs(None)]).unwrap();
        // Today: a new, open alert of another subject.
        clock.set(T0 + 40 * DAY_MS);
        let mut open = obs(Some(Level::Critical));
        open.subject
            .insert("url".into(), "https://b.example/".into());
        evaluate(&store, &clock, &p, &[open]).unwrap();

        let pruned = prune(&store, clock.now_ms(), DEFAULT_RETENTION_DAYS).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                monitor_runs: 1,
                alerts: 1,
                notifications: 1,
                uptime_samples: 1,
            },
            "the newest run stays; the resolve notification is still pending"
        );
        assert_eq!(store.alerts_open().unwrap().len(), 1);
        assert_eq!(store.monitor_runs("web", 10).unwrap().len(), 1);
        assert_eq!(store.audit_verify().unwrap().rows, 1);
        // Nothing more to delete on a second pass.
        assert_eq!(
            prune(&store, clock.now_ms(), DEFAULT_RETENTION_DAYS).unwrap(),
            Pruned::default()
        );
    }
}
