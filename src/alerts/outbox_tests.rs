//! The sender's unit tests (alerts/outbox.rs, alerts/outbox_rate.rs).
use super::*;
use crate::clock::ManualClock;

fn outbox(settings: OutboxSettings) -> (tempfile::TempDir, Outbox) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at(0));
    (tmp, Outbox::new(store, BTreeMap::new(), clock, settings))
}

#[test]
fn backoff_doubles_with_jitter_and_stops_at_the_cap() {
    let (_t, o) = outbox(OutboxSettings {
        min_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        ..Default::default()
    });
    for _ in 0..20 {
        for (n, lo) in [(1u32, 1u64), (2, 2), (3, 4), (4, 8), (5, 16)] {
            let d = o.backoff(n);
            assert!(
                d >= Duration::from_secs(lo) && d < Duration::from_secs(2 * lo),
                "{n}: {d:?}"
            );
        }
        assert!(o.backoff(7) <= Duration::from_secs(60));
        assert_eq!(o.backoff(30), Duration::from_secs(60));
    }
}

#[test]
fn channel_failing_names_the_channel_and_is_critical() {
    let b = failing_body("ops-hook", "webhook", "HTTP 400: bad request", 5_000);
    assert_eq!(b.alerts.len(), 1);
    let a = &b.alerts[0];
    assert_eq!(
        (a.code.as_str(), a.level),
        (CHANNEL_FAILING, Level::Critical)
    );
    assert_eq!(a.labels["channel"], "ops-hook");
    assert!(a.summary.contains("HTTP 400"), "{}", a.summary);
    assert_eq!(b.dedup_key, a.episode);
    // The same channel is the same alert.
    assert_eq!(
        failing_body("ops-hook", "webhook", "x", 9).alerts[0].fingerprint,
        a.fingerprint
    );
}
