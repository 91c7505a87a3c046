//! Tests of the scheduler on a real store with a `ManualClock`: replicas and leases, slow
//! and timed-out runs, catch-up after downtime, status, and the shutdown of `run`.

use std::sync::atomic::AtomicUsize;

use tokio::sync::Semaphore;

use super::*;
use crate::clock::ManualClock;

const MINUTE: Duration = Duration::from_secs(60);
/// 2026-03-01T10:00:00Z.
const T0: Millis = 1_772_359_200_000;

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    (tmp, store)
}

fn every(name: &str, text: &str, job: Arc<dyn Job>) -> MonitorSpec {
    MonitorSpec {
        name: name.to_string(),
        schedule: Schedule::every("every", text).unwrap(),
        timeout: Duration::from_secs(30),
        job,
    }
}

/// A job that counts its runs and yields 3 observations, one a problem.
fn counting() -> (Arc<AtomicUsize>, Arc<dyn Job>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let job = job_fn(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(JobOutput {
                observations: 3,
                problems: 1,
            })
        }
    });
    (n, job)
}

fn scheduler(
    store: &Store,
    clock: &ManualClock,
    replica: &str,
    specs: Vec<MonitorSpec>,
) -> Scheduler {
    Scheduler::new(store.clone(), Arc::new(clock.clone()), replica, specs).unwrap()
}

#[tokio::test]
async fn two_replicas_on_one_store_never_run_a_monitor_twice_for_one_slot() {
    let (_t, store) = store();
    let clock = ManualClock::at(T0);
    let (count, job) = counting();
    let mut a = scheduler(
        &store,
        &clock,
        "a",
        vec![every("uptime", "60s", job.clone())],
    );
    let mut b = scheduler(&store, &clock, "b", vec![every("uptime", "60s", job)]);
    for round in 0..5 {
        // Alternate who comes first; both tick for every slot.
        let (first, second) = if round % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let r1 = first.tick();
        first.wait_idle().await;
        let r2 = second.tick();
        second.wait_idle().await;
        assert_eq!(r1.started, vec!["uptime"], "round {round}");
        assert!(r2.started.is_empty(), "round {round}: {r2:?}");
        assert_eq!(r2.claimed_elsewhere, vec!["uptime"]);
        // Ticking again within the slot starts nothing anywhere.
        assert_eq!(first.tick(), TickReport::default());
        assert_eq!(second.tick(), TickReport::default());
        clock.advance(MINUTE);
    }
    assert_eq!(count.load(Ordering::SeqCst), 5);
    let runs = store.monitor_runs("uptime", 100).unwrap();
    assert_eq!(runs.len(), 5);
    let slots: HashSet<Millis> = runs.iter().map(|r| r.scheduled_ms).collect();
    assert_eq!(slots.len(), 5, "one run per slot");
    let by: HashSet<&str> = runs.iter().map(|r| r.claimed_by.as_str()).collect();
    assert_eq!(by, HashSet::from(["a", "b"]));
    assert!(runs.iter().all(|r| r.outcome == Some(RunOutcome::Problems)));
    assert!(runs.iter().all(|r| r.observations == Some(3)));
}

#[tokio::test]
async fn a_slow_job_is_not_started_again_while_it_runs() {
    let (_t, store) = store();
    let clock = ManualClock::at(T0);
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), started.clone());
    let job = job_fn(move || {
        let (g, s) = (g.clone(), s.clone());
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            let _permit = g.acquire().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(1usize)
        }
    });
    // A lease (timeout + grace) longer than the three minutes the run takes here.
    let slow = MonitorSpec {
        timeout: Duration::from_secs(600),
        ..every("slow", "60s", job)
    };
    let mut sched = scheduler(&store, &clock, "a", vec![slow]);
    // Another replica, for the lease.
    let (other_count, other_job) = counting();
    let mut other = scheduler(&store, &clock, "b", vec![every("slow", "60s", other_job)]);
    assert_eq!(sched.tick().started, vec!["slow"]);
    tokio::task::yield_now().await;
    for _ in 0..3 {
        clock.advance(MINUTE);
        let r = sched.tick();
        assert_eq!(r.still_running, vec!["slow"]);
        assert!(r.started.is_empty());
        let r = other.tick();
        assert_eq!(
            r.still_running,
            vec!["slow"],
            "the lease holds on the other replica"
        );
        assert_eq!(sched.running(), 1);
    }
    gate.add_permits(1);
    sched.wait_idle().await;
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert_eq!(other_count.load(Ordering::SeqCst), 0);
    // The skipped slots are not made up for: the next run is at the next slot.
    assert_eq!(sched.tick(), TickReport::default());
    clock.advance(MINUTE);
    assert_eq!(sched.tick().started, vec!["slow"]);
    gate.add_permits(1);
    sched.wait_idle().await;
    let runs = store.monitor_runs("slow", 10).unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.outcome == Some(RunOutcome::Ok)));
    assert_eq!(runs[0].scheduled_ms - runs[1].scheduled_ms, 4 * 60_000);
}

#[tokio::test]
async fn due_monitors_beyond_max_running_wait_for_a_free_run_and_none_is_lost() {
    let (_t, store) = store();
    let clock = ManualClock::at(T0);
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (g, st) = (gate.clone(), started.clone());
    let job = job_fn(move || {
        let (g, st) = (g.clone(), st.clone());
        async move {
            st.fetch_add(1, Ordering::SeqCst);
            // Each run consumes its permit: one permit, one finished run.
            g.acquire().await.map_err(|e| e.to_string())?.forget();
            Ok::<_, String>(1usize)
        }
    });
    let specs = (0..5)
        .map(|i| MonitorSpec {
            timeout: Duration::from_secs(600),
            ..every(&format!("m{i}"), "60s", job.clone())
        })
        .collect();
    let mut sched = scheduler(&store, &clock, "a", specs);
    sched.set_max_running(2);
    let r = sched.tick();
    assert_eq!(r.started.len(), 2, "{r:?}");
    assert_eq!(r.deferred.len(), 3, "{r:?}");
    tokio::task::yield_now().await;
    assert_eq!(sched.running(), 2);
    // Nothing more starts while both runs go on, at any tick.
    let r = sched.tick();
    assert!(r.started.is_empty() && r.deferred.len() == 3, "{r:?}");
    // One finishes: one more starts; then the rest, each for the same (first) slot.
    gate.add_permits(1);
    while sched.running() == 2 {
        tokio::task::yield_now().await;
    }
    let r = sched.tick();
    assert_eq!((r.started.len(), r.deferred.len()), (1, 2), "{r:?}");
    gate.add_permits(10);
    sched.wait_idle().await;
    let r = sched.tick();
    assert_eq!(r.started.len(), 2, "{r:?}");
    sched.wait_idle().await;
    assert_eq!(started.load(Ordering::SeqCst), 5);
    for i in 0..5 {
        let runs = store.monitor_runs(&format!("m{i}"), 10).unwrap();
        assert_eq!(runs.len(), 1, "m{i}: one run for its slot");
        assert_eq!(runs[0].outcome, Some(RunOutcome::Ok));
    }
    assert_eq!(sched.tick(), TickReport::default(), "all caught up");
}

#[tokio::test]
async fn a_run_past_its_timeout_is_cancelled_and_recorded_as_timeout() {
    let (_t, store) = store();
    let clock = ManualClock::at(T0);
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let hang = job_fn(move || {
        let guard = ResetOnDrop(d.clone()); // sets false on drop; start at true below
        d.store(true, Ordering::SeqCst);
        async move {
            let _g = guard;
            std::future::pending::<Result<usize, String>>().await
        }
    });
    let failing =
        job_fn(|| async { Err::<usize, _>("connection refused by 127.0.0.1:9".to_string()) });
    let panicking = job_fn(|| async {
        if true {
            panic!("boom");
        }
        Ok::<usize, String>(0)
    });
    let quick = |name: &str, job| MonitorSpec {
        timeout: Duration::from_millis(50),
        ..every(name, "60s", job)
    };
    let mut sched = scheduler(
        &store,
        &clock,
        "a",
        vec![
            quick("hang", hang),
            quick("fail", failing),
            quick("panic", panicking),
        ],
    );
    assert_eq!(sched.tick().started.len(), 3);
    sched.wait_idle().await;
    assert!(
        !dropped.load(Ordering::SeqCst),
        "the hung job's future was dropped"
    );
    let last = |m: &str| store.last_monitor_run(m).unwrap().unwrap();
    let hang = last("hang");
    assert_eq!(hang.outcome, Some(RunOutcome::Timeout));
    assert_eq!(
        hang.error.as_deref(),
        Some("cancelled after the run timeout of 50ms")
    );
    let fail = last("fail");
    assert_eq!(fail.outcome, Some(RunOutcome::Error));
    assert_eq!(
        fail.error.as_deref(),
        Some("connection refused by 127.0.0.1:9")
    );
    let panic = last("panic");
    assert_eq!(panic.outcome, Some(RunOutcome::Error));
    assert_eq!(panic.error.as_deref(), Some("the run panicked"));
    assert_eq!(
        sched.running(),
        0,
        "a panic does not leave the monitor marked running"
    );
    let next = sched.next_runs().unwrap();
    assert_eq!(next[0].last_outcome, Some(RunOutcome::Timeout));
    assert!(!next[0].running);
}

#[tokio::test]
async fn after_a_long_gap_the_missed_run_happens_once() {
    let (_t, store) = store();
    let clock = ManualClock::at(T0);
    let (count, job) = counting();
    let (cron_count, cron_job) = counting();
    let nightly = MonitorSpec {
        name: "scan".into(),
        schedule: Schedule::cron("schedule", "0 2 * * *").unwrap(),
        timeout: Duration::from_secs(30),
        job: cron_job,
    };
    let specs = || vec![every("uptime", "60s", job.clone()), nightly.clone()];
    {
        let mut s = scheduler(&store, &clock, "a", specs());
        // The interval monitor runs at start; the cron one waits for 02:00.
        assert_eq!(s.tick().started, vec!["uptime"]);
        s.wait_idle().await;
        let next = s.next_runs().unwrap();
        assert_eq!(next[1].monitor, "scan");
        assert_eq!(
            next[1].next_due_ms,
            T0 + 16 * 3_600_000,
            "02:00 the next day"
        );
        // 02:00 comes: the cron monitor runs.
        clock.set(T0 + 16 * 3_600_000);
        assert_eq!(s.tick().started, vec!["uptime", "scan"]);
        s.wait_idle().await;
    }
    // Down for ten days; restart on the same store.
    clock.advance(Duration::from_secs(10 * 86_400 + 5 * 3600));
    let mut s = scheduler(&store, &clock, "a", specs());
    assert_eq!(
        s.tick().started,
        vec!["uptime", "scan"],
        "one catch-up run each"
    );
    s.wait_idle().await;
    assert_eq!(s.tick(), TickReport::default(), "not once per missed slot");
    clock.advance(MINUTE);
    assert_eq!(s.tick().started, vec!["uptime"], "then the regular cadence");
    s.wait_idle().await;
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert_eq!(cron_count.load(Ordering::SeqCst), 2);
    let next = s.next_runs().unwrap();
    let now = clock.now_ms();
    assert!(next[0].next_due_ms > now && next[0].next_due_ms <= now + 60_000);
    assert!(next[1].next_due_ms > now && next[1].next_due_ms <= now + 86_400_000);
    assert_eq!(
        (next[1].next_due_ms / 60_000) % (24 * 60),
        2 * 60,
        "at 02:00 UTC"
    );
    assert_eq!(next[0].last_outcome, Some(RunOutcome::Problems));
    assert_eq!(next[0].last_run_ms, Some(now));
}

#[tokio::test]
async fn a_run_left_unfinished_by_a_crash_is_run_again_after_its_lease() {
    let (_t, store) = store();
    let now = T0 + 20 * 60_000; // 10:20, well inside the hour's slot
    let clock = ManualClock::at(now);
    // A crashed process claimed the current slot and never finished.
    let slot = Schedule::every("every", "1h")
        .unwrap()
        .next_after("certs", now, None);
    let lease = now + 60_000;
    assert!(matches!(
        store
            .claim_monitor_run("certs", slot, "dead:1", now, lease)
            .unwrap(),
        Claim::Claimed(_)
    ));
    let (count, job) = counting();
    let mut s = scheduler(&store, &clock, "a", vec![every("certs", "1h", job.clone())]);
    assert_eq!(
        s.tick(),
        TickReport::default(),
        "its lease holds: the slot is in progress"
    );
    // Restarted after the lease ran out: the slot is owed.
    clock.set(lease + 1);
    let mut s = scheduler(&store, &clock, "a", vec![every("certs", "1h", job)]);
    assert_eq!(
        s.tick().started,
        vec!["certs"],
        "the abandoned slot runs again"
    );
    s.wait_idle().await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let runs = store.monitor_runs("certs", 10).unwrap();
    assert_eq!(runs[0].scheduled_ms, slot);
    assert_eq!(runs[0].outcome, Some(RunOutcome::Problems));
    assert_eq!(
        runs[1].error.as_deref(),
        Some(crate::store::monitor_runs::ABANDONED)
    );
}

#[tokio::test]
async fn bad_monitor_lists_are_refused() {
    let (_t, store) = store();
    let clock = ManualClock::at(T0);
    let (_, job) = counting();
    let dup = Scheduler::new(
        store.clone(),
        Arc::new(clock.clone()),
        "a",
        vec![
            every("x", "60s", job.clone()),
            every("x", "5m", job.clone()),
        ],
    );
    assert!(matches!(dup, Err(SchedulerError::DuplicateName(n)) if n == "x"));
    let zero = Scheduler::new(
        store,
        Arc::new(clock),
        "a",
        vec![MonitorSpec {
            timeout: Duration::ZERO,
            ..every("y", "60s", job)
        }],
    );
    let e = zero.err().unwrap().to_string();
    assert!(e.contains("\"y\"") && e.contains("timeout"), "{e}");
}

#[tokio::test]
async fn run_stops_on_shutdown_and_records_the_cancelled_run() {
    let (_t, store) = store();
    let started = Arc::new(tokio::sync::Notify::new());
    let s2 = started.clone();
    let job = job_fn(move || {
        let s2 = s2.clone();
        async move {
            s2.notify_one();
            std::future::pending::<Result<usize, String>>().await
        }
    });
    let mut sched = Scheduler::new(
        store.clone(),
        Arc::new(crate::clock::SystemClock),
        default_replica_id(),
        vec![every("forever", "1h", job)],
    )
    .unwrap();
    assert!(sched.replica().contains(':'));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let stopper = tokio::spawn(async move {
        started.notified().await;
        stop.cancel();
    });
    tokio::time::timeout(Duration::from_secs(10), sched.run(shutdown))
        .await
        .expect("run returns after shutdown");
    stopper.await.unwrap();
    let run = store.last_monitor_run("forever").unwrap().unwrap();
    assert_eq!(run.outcome, Some(RunOutcome::Error));
    assert_eq!(
        run.error.as_deref(),
        Some("cancelled: the scheduler is shutting down")
    );
}
