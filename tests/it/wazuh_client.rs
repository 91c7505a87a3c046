//! The Wazuh client against the simulator over verified HTTPS: agent pagination (ids above
//! 999 included), and typed alert searches paged with `search_after` that return every
//! matching alert exactly once, with filters and `terms` aggregations.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::SimEnv;
use secops_mcp::wazuh::{AlertQuery, IndexerClient, ManagerClient, ManagerOptions};
use std::time::Duration;
use wazuh_sim::SimConfig;

async fn clients() -> (SimEnv, ManagerClient, IndexerClient) {
    let s = SimEnv::start(SimConfig::default()).await;
    let config = s.config("", &s.vars());
    let m = ManagerClient::new(config.wazuh.as_ref().unwrap(), ManagerOptions::default()).unwrap();
    let i = IndexerClient::new(
        config.indexer.as_ref().unwrap(),
        false,
        Duration::from_secs(5),
    )
    .unwrap();
    (s, m, i)
}

#[tokio::test]
async fn agents_are_paged_completely_including_big_ids() {
    let (s, m, _i) = clients().await;
    let summary = m.agents_summary().await.unwrap();
    let mut ids = Vec::new();
    let mut offset = 0;
    loop {
        let page = m.agents_page(None, 4, offset).await.unwrap();
        assert_eq!(page.degraded, 0);
        if page.items.is_empty() {
            break;
        }
        offset += page.items.len() as u64;
        ids.extend(page.items.into_iter().map(|a| a.id));
    }
    let unique: BTreeSet<_> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no agent twice");
    // The summary counts agents; /agents also lists the manager itself (000).
    assert!(
        ids.len() as u64 >= summary.total,
        "{} vs {}",
        ids.len(),
        summary.total
    );
    assert!(
        ids.iter().any(|id| id.len() > 3),
        "an id above 999: {ids:?}"
    );
    let all = m.agents(None, 10_000).await.unwrap();
    assert_eq!(all.len(), ids.len());
    let disconnected = m.agents(Some("disconnected"), 10_000).await.unwrap();
    assert_eq!(disconnected.len() as u64, summary.disconnected);
    assert!(
        disconnected
            .iter()
            .all(|a| a.status.as_deref() == Some("disconnected"))
    );
    s.sim.stop().await;
}

#[tokio::test]
async fn alert_search_pages_return_every_alert_once() {
    let (s, _m, i) = clients().await;
    let sim = &s.sim;
    let mut q = AlertQuery {
        since: Some("now-25h".into()),
        size: 37,
        ascending: true,
        terms: vec![("by_level".into(), "rule.level".into(), 50)],
        ..Default::default()
    };
    let first = i.search_alerts(&q).await.unwrap();
    let total = first.total();
    assert!(total > 100, "seeded day has alerts: {total}");
    let by_level: u64 = first.buckets("by_level").iter().map(|(_, n)| n).sum();
    assert_eq!(by_level, total, "aggregation covers every hit");
    let mut seen = BTreeSet::new();
    let mut last_ts = String::new();
    let mut page = first;
    loop {
        let hits = page.hits();
        if hits.is_empty() {
            break;
        }
        for (id, source, _) in &hits {
            assert!(seen.insert(id.clone()), "alert {id} returned twice");
            let ts = source["timestamp"].as_str().unwrap().to_string();
            assert!(ts >= last_ts, "ascending order");
            last_ts = ts;
        }
        q.search_after = Some(hits.last().unwrap().2.clone());
        q.terms.clear();
        page = i.search_alerts(&q).await.unwrap();
    }
    assert_eq!(seen.len() as u64, total);

    // Filters: level and group.
    let high = i
        .search_alerts(&AlertQuery {
            since: Some("now-25h".into()),
            min_level: Some(10),
            size: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        high.hits()
            .iter()
            .all(|(_, s, _)| s["rule"]["level"].as_u64().unwrap() >= 10)
    );
    let auth = i
        .search_alerts(&AlertQuery {
            since: Some("now-25h".into()),
            groups: vec!["authentication_failed".into()],
            size: 1000,
            terms: vec![("by_ip".into(), "data.srcip".into(), 20)],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(auth.total() > 0);
    for (_, s, _) in auth.hits() {
        let groups: Vec<&str> = s["rule"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g.as_str())
            .collect();
        assert!(groups.contains(&"authentication_failed"));
    }
    let ips: BTreeMap<String, u64> = auth.buckets("by_ip").into_iter().collect();
    assert!(!ips.is_empty());

    // Injected alerts are found.
    let now = time::OffsetDateTime::now_utc();
    let burst = sim.alerts().ssh_brute_force(
        "203.0.113.77",
        &["001", "002"],
        40,
        now - time::Duration::minutes(5),
    );
    let n = burst.len() as u64;
    sim.inject_alerts(burst);
    let found = i
        .search_alerts(&AlertQuery {
            since: Some("now-10m".into()),
            size: 1000,
            terms: vec![("by_ip".into(), "data.srcip".into(), 5)],
            ..Default::default()
        })
        .await
        .unwrap();
    let from_ip = found
        .buckets("by_ip")
        .into_iter()
        .find(|(ip, _)| ip == "203.0.113.77")
        .map(|(_, c)| c);
    assert_eq!(from_ip, Some(n));
    s.sim.stop().await;
}
