//! The security-event rate against the simulator's indexer: a quiet window is below the
//! threshold, an injected SSH brute force over it (warning), and a level-15 attack in the
//! window makes it an emergency; the most frequent rules are named.

use crate::common::SimEnv;
use secops_mcp::alerts::Level;
use secops_mcp::checks::security_events::{RateSpec, run};
use secops_mcp::clock::{Clock, SystemClock};
use secops_mcp::wazuh::IndexerClient;
use time::{Duration, OffsetDateTime};
use wazuh_sim::SimConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_goes_over_the_rate_and_a_level_15_attack_makes_it_an_emergency() {
    let s = SimEnv::start(SimConfig {
        seed_alerts: false,
        ..Default::default()
    })
    .await;
    let config = s.config("", &s.indexer_vars());
    let indexer = IndexerClient::new(
        config.indexer.as_ref().unwrap(),
        false,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    // Five minutes, at least 5 alerts a minute, counting level 5 and above.
    let spec = RateSpec::parse("monitors[0]", Some(5), Some(5.0), Some(300_000)).unwrap();

    let quiet = run(&indexer, &spec, SystemClock.now_ms()).await.unwrap();
    assert_eq!((quiet.count, quiet.level()), (0, None), "{quiet:?}");

    let now = OffsetDateTime::now_utc();
    let mut g = s.sim.alerts();
    let burst = g.ssh_brute_force("203.0.113.9", &["001"], 40, now - Duration::minutes(4));
    let n = burst.len() as u64;
    s.sim.inject_alerts(burst);
    let r = run(&indexer, &spec, SystemClock.now_ms()).await.unwrap();
    assert_eq!(r.count, n, "{r:?}");
    assert_eq!(r.level(), Some(Level::Warning), "{r:?}");
    assert_eq!(r.emergency, 0);
    assert!(!r.top_rules.is_empty(), "{r:?}");
    let o = &r.observations()[0];
    assert_eq!(o.code, "security_event_rate");
    assert!(o.summary.contains("Most frequent"), "{}", o.summary);

    s.sim
        .inject_alerts(g.level15_attack("198.51.100.66", "002", now - Duration::minutes(1)));
    let r = run(&indexer, &spec, SystemClock.now_ms()).await.unwrap();
    assert!(r.emergency >= 1 && r.critical >= r.emergency, "{r:?}");
    assert_eq!(r.level(), Some(Level::Emergency));

    // Outside the window, the same alerts no longer count.
    let later = SystemClock.now_ms() + 3_600_000;
    let r = run(&indexer, &spec, later).await.unwrap();
    assert_eq!((r.count, r.level()), (0, None), "{r:?}");
}
