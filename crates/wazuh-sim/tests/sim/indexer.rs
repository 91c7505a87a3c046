//! The indexer: basic auth, health colours and the search subset (paging with
//! `search_after`, aggregations, refusals in OpenSearch's words).

use super::*;

#[tokio::test]
async fn indexer_requires_basic_auth_and_reports_health_colours() {
    let h = Harness::default().await;
    let r = h.http.get(h.idx("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = h
        .http
        .get(h.idx("/_cluster/health"))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let get = |path: &'static str| {
        h.http
            .get(h.idx(path))
            .basic_auth("admin", Some("Indexer-Sim-Pass1!"))
            .send()
    };
    let v: Value = get("/").await.unwrap().json().await.unwrap();
    assert_eq!(v["version"]["distribution"], "opensearch");
    for (colour, unassigned) in [("green", false), ("yellow", true), ("red", true)] {
        h.sim.faults().set_indexer_status(colour).unwrap();
        let v: Value = get("/_cluster/health").await.unwrap().json().await.unwrap();
        assert_eq!(v["status"], colour);
        assert_eq!(v["unassigned_shards"].as_u64().unwrap() > 0, unassigned);
        assert_eq!(v["cluster_name"], "wazuh-cluster");
        assert!(v["active_shards_percent_as_number"].is_f64());
        if colour == "green" {
            assert_eq!(v["active_shards_percent_as_number"], 100.0);
        }
    }
    assert!(h.sim.faults().set_indexer_status("blue").is_err());

    h.sim
        .faults()
        .set_indexer_latency(Duration::from_millis(200));
    let start = Instant::now();
    get("/").await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200));
    h.sim.faults().set_indexer_latency(Duration::ZERO);

    h.sim.faults().indexer_down(true);
    assert!(get("/").await.is_err());
    h.sim.faults().indexer_down(false);
    assert!(get("/").await.unwrap().status().is_success());
}

#[tokio::test]
async fn search_after_pages_return_every_matching_alert_exactly_once() {
    let h = Harness::default().await;
    let now = time::OffsetDateTime::now_utc();
    let mut g = h.sim.alerts();
    let injected = g.ssh_brute_force(
        "203.0.113.200",
        &["001", "002", "1001"],
        45,
        now - time::Duration::minutes(30),
    );
    let n = injected.len();
    assert_eq!(h.sim.inject_alerts(injected), n);

    let mut seen = Vec::new();
    let mut after: Option<Value> = None;
    let mut last_ts = 0i64;
    loop {
        let mut body = json!({
            "size": 7,
            "query": {"bool": {"filter": [
                {"range": {"timestamp": {"gte": "now-24h", "lte": "now"}}},
                {"terms": {"data.srcip": ["203.0.113.200"]}},
                {"range": {"rule.level": {"gte": 5}}},
            ]}},
            "sort": [{"timestamp": {"order": "asc"}}, {"_id": "asc"}],
        });
        if let Some(a) = &after {
            body["search_after"] = a.clone();
        }
        let (s, v) = h.search("wazuh-alerts-*", body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["hits"]["total"]["value"].as_u64().unwrap() as usize, n);
        let hits = v["hits"]["hits"].as_array().unwrap();
        if hits.is_empty() {
            break;
        }
        for hit in hits {
            assert!(
                hit["_index"]
                    .as_str()
                    .unwrap()
                    .starts_with("wazuh-alerts-4.x-")
            );
            let ts = hit["sort"][0].as_i64().unwrap();
            assert!(ts >= last_ts);
            last_ts = ts;
            seen.push(hit["_id"].as_str().unwrap().to_string());
        }
        after = Some(hits.last().unwrap()["sort"].clone());
    }
    assert_eq!(seen.len(), n);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), n);
}

#[tokio::test]
async fn the_whole_seeded_day_pages_out_exactly_once_newest_first() {
    let h = Harness::default().await;
    let total = h.sim.alert_count();
    assert!((200..1000).contains(&total), "{total}");
    let mut seen = HashSet::new();
    let mut after: Option<Value> = None;
    loop {
        let mut body = json!({
            "size": 100,
            "query": {"range": {"timestamp": {"gte": "now-25h"}}},
            "sort": [{"timestamp": "desc"}, {"_id": "desc"}],
            "_source": ["rule.level", "agent.id"],
        });
        if let Some(a) = &after {
            body["search_after"] = a.clone();
        }
        let (_, v) = h.search("wazuh-alerts-4.x-*", body).await;
        let hits = v["hits"]["hits"].as_array().unwrap().clone();
        if hits.is_empty() {
            break;
        }
        for hit in &hits {
            assert!(seen.insert(hit["_id"].as_str().unwrap().to_string()));
            assert!(hit["_source"].get("full_log").is_none());
        }
        after = Some(hits.last().unwrap()["sort"].clone());
    }
    assert_eq!(seen.len(), total);

    // The seeded day has a level-15 alert, brute-force correlations and FIM events.
    let (_, v) = h
        .search(
            "wazuh-alerts-*",
            json!({"size": 0, "query": {"range": {"rule.level": {"gte": 15}}}}),
        )
        .await;
    assert!(v["hits"]["total"]["value"].as_u64().unwrap() >= 1);
    let (_, v) = h
        .search(
            "wazuh-alerts-*",
            json!({"size": 0, "query": {"term": {"rule.groups": "authentication_failures"}}}),
        )
        .await;
    assert!(v["hits"]["total"]["value"].as_u64().unwrap() >= 3);
}

#[tokio::test]
async fn aggregations_count_what_was_injected() {
    let h = Harness::start(SimConfig {
        seed_alerts: false,
        ..SimConfig::default()
    })
    .await;
    assert_eq!(h.sim.alert_count(), 0);
    let now = time::OffsetDateTime::now_utc();
    let mut g = h.sim.alerts();
    let mut alerts =
        g.ssh_brute_force("198.51.100.7", &["001"], 16, now - time::Duration::hours(1));
    alerts.extend(g.level15_attack("192.0.2.9", "002", now - time::Duration::minutes(5)));
    alerts.extend(g.fim_trickle(
        &["003"],
        3,
        now - time::Duration::hours(2),
        time::Duration::minutes(10),
    ));
    alerts.extend(g.noise(&["001", "007"], 10, now - time::Duration::hours(3), now));
    let n = h.sim.inject_alerts(alerts);
    assert_eq!(n, 16 + 2 + 2 + 3 + 10);

    let (s, v) = h
        .search(
            "wazuh-alerts-*",
            json!({
                "size": 0,
                "query": {"range": {"timestamp": {"gte": "now-24h"}}},
                "aggs": {
                    "by_level": {"terms": {"field": "rule.level", "size": 20}},
                    "by_srcip": {"terms": {"field": "data.srcip"}, "aggs": {"agents": {"terms": {"field": "agent.id"}}}},
                    "count": {"value_count": {"field": "timestamp"}},
                    "first": {"min": {"field": "timestamp"}},
                    "last": {"max": {"field": "timestamp"}},
                },
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let aggs = &v["aggregations"];
    assert_eq!(aggs["count"]["value"], n);
    let levels: std::collections::BTreeMap<i64, u64> = aggs["by_level"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["key"].as_i64().unwrap(), b["doc_count"].as_u64().unwrap()))
        .collect();
    assert_eq!(levels[&5], 16);
    assert_eq!(levels[&10], 2);
    assert_eq!(levels[&15], 1);
    assert_eq!(levels[&7], 3);
    assert_eq!(levels.values().sum::<u64>() as usize, n);
    let top = &aggs["by_srcip"]["buckets"][0];
    assert_eq!(top["key"], "198.51.100.7");
    assert_eq!(top["doc_count"], 18);
    assert_eq!(
        top["agents"]["buckets"][0],
        json!({"key": "001", "doc_count": 18})
    );
    assert!(aggs["first"]["value"].as_f64().unwrap() <= aggs["last"]["value"].as_f64().unwrap());
    assert!(
        aggs["last"]["value_as_string"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let (_, v) = h
        .search(
            "wazuh-alerts-*",
            json!({"query": {"bool": {"must": [{"term": {"agent.id": "002"}}, {"range": {"rule.level": {"gte": 12}}}]}}}),
        )
        .await;
    assert_eq!(v["hits"]["total"]["value"], 1);
    assert_eq!(
        v["hits"]["hits"][0]["_source"]["rule"]["mitre"]["id"],
        json!(["T1068", "T1190"])
    );
}

#[tokio::test]
async fn unsupported_search_constructs_are_refused_with_opensearch_errors() {
    let h = Harness::default().await;
    for body in [
        json!({"query": {"match": {"full_log": "sshd"}}}),
        json!({"query": {"query_string": {"query": "rule.level:>5"}}}),
        json!({"aggs": {"t": {"date_histogram": {"field": "timestamp", "fixed_interval": "1h"}}}}),
        json!({"size": 10001}),
        json!({"sort": [{"timestamp": "asc"}], "search_after": [1, 2]}),
        json!({"highlight": {"fields": {"full_log": {}}}}),
    ] {
        let (s, v) = h.search("wazuh-alerts-*", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(v["status"], 400);
        assert!(v["error"]["root_cause"][0]["type"].is_string(), "{v}");
        assert!(v["error"]["reason"].is_string());
    }
    let (s, v) = h.search("no-such-index", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["type"], "index_not_found_exception");
    let (s, v) = h.search("wazuh-archives-*", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["hits"]["total"]["value"], 0);
}
