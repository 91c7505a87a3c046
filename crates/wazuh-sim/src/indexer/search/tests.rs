//! Tests of the search path end to end: parse a request, run it over a few documents (and
//! the fast path against the general one on a generated store).

use serde_json::{Map, Value, json};

use super::{SearchError, SearchRequest};
use crate::clock;
use crate::index::{AlertIndex, Doc};

fn doc(i: usize, ts: &str, level: u64, agent: &str, groups: &[&str]) -> Doc {
    Doc {
        index: "wazuh-alerts-4.x-2024.05.01".into(),
        id: format!("id{i:03}"),
        source: json!({"timestamp": ts, "rule": {"level": level, "groups": groups}, "agent": {"id": agent}, "full_log": "x"}),
        ts_ms: clock::parse_date_millis(ts),
    }
}

fn docs() -> Vec<Doc> {
    vec![
        doc(
            1,
            "2024-05-01T10:00:00.000+0000",
            5,
            "001",
            &["sshd", "authentication_failed"],
        ),
        doc(
            2,
            "2024-05-01T11:00:00.000+0000",
            10,
            "002",
            &["sshd", "authentication_failures"],
        ),
        doc(3, "2024-05-01T12:00:00.000+0000", 3, "001", &["pam"]),
        doc(
            4,
            "2024-05-01T12:00:00.000+0000",
            15,
            "003",
            &["web", "attack"],
        ),
    ]
}

fn run(body: Value) -> Result<Value, SearchError> {
    let now = clock::parse_date_millis("2024-05-01T13:00:00Z").unwrap();
    let docs = docs();
    let refs: Vec<&Doc> = docs.iter().collect();
    SearchRequest::parse(&body, &[], now, false)?.execute(&refs, 3, std::time::Instant::now())
}

fn ids(v: &Value) -> Vec<String> {
    v["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn range_terms_and_sort() {
    let r = run(json!({
        "query": {"bool": {"filter": [
            {"range": {"timestamp": {"gte": "now-2h"}}},
            {"range": {"rule.level": {"gte": 5}}},
        ]}},
        "sort": [{"timestamp": {"order": "desc"}}, {"_id": "asc"}],
    }))
    .unwrap();
    assert_eq!(ids(&r), ["id004", "id002"]);
    assert_eq!(r["hits"]["total"], json!({"value": 2, "relation": "eq"}));
    assert_eq!(r["hits"]["hits"][0]["sort"][0], json!(1_714_564_800_000i64));
    assert!(r["hits"]["hits"][0]["_score"].is_null());
    let r = run(json!({"query": {"terms": {"rule.groups": ["pam", "attack"]}}})).unwrap();
    assert_eq!(ids(&r), ["id003", "id004"]);
    let r = run(json!({"query": {"term": {"agent.id": "001"}}})).unwrap();
    assert_eq!(ids(&r), ["id001", "id003"]);
}

#[test]
fn search_after_pages_through_everything_once() {
    let mut seen = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let mut body = json!({"size": 1, "sort": [{"timestamp": "asc"}, {"_id": "asc"}]});
        if let Some(a) = &after {
            body["search_after"] = a.clone();
        }
        let r = run(body).unwrap();
        let hits = r["hits"]["hits"].as_array().unwrap().clone();
        if hits.is_empty() {
            break;
        }
        seen.extend(ids(&r));
        after = Some(hits.last().unwrap()["sort"].clone());
    }
    assert_eq!(seen, ["id001", "id002", "id003", "id004"]);
}

#[test]
fn aggregations_count_buckets() {
    let r = run(json!({"size": 0, "aggs": {
        "agents": {"terms": {"field": "agent.id", "size": 2}, "aggs": {"top": {"max": {"field": "rule.level"}}}},
        "n": {"value_count": {"field": "timestamp"}},
        "first": {"min": {"field": "timestamp"}},
    }})).unwrap();
    let a = &r["aggregations"];
    assert_eq!(
        a["agents"]["buckets"][0],
        json!({"key": "001", "doc_count": 2, "top": {"value": 5.0}})
    );
    assert_eq!(a["agents"]["sum_other_doc_count"], 1);
    assert_eq!(a["n"]["value"], 4);
    assert_eq!(a["first"]["value_as_string"], "2024-05-01T10:00:00.000Z");
    let r = run(json!({"size": 0, "aggs": {"l": {"terms": {"field": "rule.level"}}}})).unwrap();
    assert_eq!(r["aggregations"]["l"]["buckets"][0]["key"], json!(3));
}

#[test]
fn unsupported_and_invalid_requests_are_refused() {
    for body in [
        json!({"query": {"match": {"full_log": "x"}}}),
        json!({"query": {"bogus": {}}}),
        json!({"query": {"term": {"full_log": "x"}}}),
        json!({"aggs": {"h": {"date_histogram": {"field": "timestamp"}}}}),
        json!({"highlight": {}}),
        json!({"size": 10001}),
        json!({"search_after": [1]}),
        json!({"sort": ["full_log"]}),
        json!({"query": {"range": {"timestamp": {"gte": "yesterday"}}}}),
    ] {
        let e = run(body.clone())
            .err()
            .unwrap_or_else(|| panic!("{body} accepted"));
        assert_eq!(e.body()["status"], 400, "{body}");
        assert!(e.body()["error"]["root_cause"][0]["reason"].is_string());
    }
}

#[test]
fn source_filtering() {
    let r = run(json!({"_source": ["rule.level", "agent"], "size": 1})).unwrap();
    assert_eq!(
        r["hits"]["hits"][0]["_source"],
        json!({"rule": {"level": 5}, "agent": {"id": "001"}})
    );
    let r = run(json!({"_source": {"excludes": ["rule.*", "full_log"]}, "size": 1})).unwrap();
    assert_eq!(
        r["hits"]["hits"][0]["_source"],
        json!({"timestamp": "2024-05-01T10:00:00.000+0000", "rule": {}, "agent": {"id": "001"}})
    );
    let r = run(json!({"_source": false, "size": 1})).unwrap();
    assert!(r["hits"]["hits"][0].get("_source").is_none());
}

/// The fast path (cached `timestamp` / `_id` order, walk from `search_after`, cached
/// totals) against the general path on random stores, queries and injections: same hits,
/// same order, same sort values, same totals. Timestamps come from a few values (ties), some
/// documents have a numeric or unparsable timestamp or several, ids collide.
#[test]
fn fast_path_equals_general_path() {
    use crate::rng::SimRng;
    let mut rng = SimRng::new(42);
    let stamp = |rng: &mut SimRng| -> Value {
        let (day, hour) = (rng.range(1, 3), rng.range(10, 14));
        let ts = format!("2024-05-0{day}T{hour}:00:00.000+0000");
        match rng.range(0, 20) {
            0 => json!("not a date"),
            1 => json!(clock::parse_date_millis(&ts).unwrap()),
            2 => json!([ts, "2024-05-01T09:30:00.000+0000"]),
            _ => json!(ts),
        }
    };
    let alert = |rng: &mut SimRng| -> Value {
        let mut a =
            json!({"timestamp": stamp(rng), "agent": {"id": format!("00{}", rng.range(1, 4))}});
        if rng.range(0, 10) > 0 {
            a["rule"] = json!({"level": rng.range(0, 16)});
        }
        a
    };
    let now = clock::parse_date_millis("2024-05-03T00:00:00Z").unwrap();
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("took");
        v
    };
    for round in 0..40 {
        let mut index = AlertIndex::new(round);
        for _ in 0..rng.range(0, 120) {
            index.insert(alert(&mut rng));
        }
        // Collide some ids so that the last tie-breaker (insertion order) is exercised.
        if index.docs.len() > 4 {
            let id = index.docs[0].id.clone();
            index.docs[3].id = id;
        }
        for _ in 0..6 {
            let mut filter = Vec::new();
            let mut range = Map::new();
            for op in ["gte", "gt", "lte", "lt"] {
                if rng.chance(0.3) {
                    let h = rng.range(9, 15);
                    range.insert(
                        op.into(),
                        json!(format!("2024-05-0{}T{h:02}:00:00Z", rng.range(1, 3))),
                    );
                }
            }
            if !range.is_empty() {
                filter.push(json!({"range": {"timestamp": range}}));
            }
            if rng.chance(0.5) {
                filter.push(json!({"range": {"rule.level": {"gte": rng.range(0, 12)}}}));
            }
            if rng.chance(0.2) {
                filter.push(json!({"term": {"agent.id": "002"}}));
            }
            let dir = |rng: &mut SimRng| if rng.chance(0.5) { "asc" } else { "desc" };
            let mut ts_sort = json!({"order": dir(&mut rng)});
            if rng.chance(0.3) {
                ts_sort["missing"] = json!("_first");
            }
            let mut sort = vec![json!({"timestamp": ts_sort})];
            if rng.chance(0.8) {
                sort.push(json!({"_id": {"order": dir(&mut rng)}}));
            }
            let mut body = json!({
                "query": {"bool": {"filter": filter}},
                "size": rng.range(0, 8),
                "sort": sort,
                "_source": ["agent.id"],
            });
            match rng.range(0, 4) {
                0 => body["track_total_hits"] = json!(true),
                1 => body["track_total_hits"] = json!(false),
                2 => body["track_total_hits"] = json!(rng.range(1, 10)),
                _ => {}
            }
            let targets: Vec<String> = index
                .index_names()
                .into_iter()
                .filter(|_| rng.chance(0.8))
                .collect();
            if rng.chance(0.3) {
                body["from"] = json!(rng.range(0, 5));
            } else if rng.chance(0.3) && !index.docs.is_empty() {
                // search_after an existing document's values, or a tie on its timestamp.
                let d = index.docs[rng.range(0, index.docs.len() as u64 - 1) as usize].clone();
                let req = SearchRequest::parse(&body, &[], now, false).unwrap();
                let refs = [&d];
                let mut after =
                    req.execute(&refs, 1, std::time::Instant::now()).unwrap()["hits"]["hits"]
                        [0]["sort"]
                        .clone();
                if after.is_array() {
                    if after.as_array().unwrap().len() == 2 && rng.chance(0.5) {
                        after[1] = json!(if rng.chance(0.5) { "" } else { "~" });
                    }
                    body["search_after"] = after;
                }
            }
            let mut pages = 0;
            loop {
                let req = SearchRequest::parse(&body, &[], now, false).unwrap();
                let docs: Vec<&Doc> = index
                    .docs
                    .iter()
                    .filter(|d| targets.contains(&d.index))
                    .collect();
                let general = strip(req.execute(&docs, 1, std::time::Instant::now()).unwrap());
                let fast = strip(
                    req.execute_on(&index, &targets, 1, std::time::Instant::now())
                        .unwrap(),
                );
                assert_eq!(fast, general, "round {round}, {body}");
                // Again, from the cache.
                let again = strip(
                    req.execute_on(&index, &targets, 1, std::time::Instant::now())
                        .unwrap(),
                );
                assert_eq!(again, general, "round {round}, {body} (cached)");
                let hits = general["hits"]["hits"].as_array().unwrap().clone();
                pages += 1;
                if hits.is_empty() || pages > 60 || body.get("from").is_some() {
                    break;
                }
                body["search_after"] = hits.last().unwrap()["sort"].clone();
                // Alerts arrive while paging, in any time order.
                if rng.chance(0.3) {
                    for _ in 0..rng.range(1, 4) {
                        index.insert(alert(&mut rng));
                    }
                }
            }
        }
    }
}
