//! Aggregations: `terms` buckets and the metric aggregations (`value_count`, `min`, `max`,
//! `avg`, `sum`, `cardinality`), parsed and run over the matching documents.

use serde_json::{Map, Value, json};

use super::SearchError;
use super::fields::{FieldType, Key, field_type, keys};
use crate::clock;
use crate::index::Doc;

#[derive(Debug, Clone)]
enum AggKind {
    Terms {
        field: String,
        size: usize,
        min_doc_count: u64,
        by_key: Option<bool>,
        count_asc: bool,
    },
    ValueCount(String),
    Min(String),
    Max(String),
    Avg(String),
    Sum(String),
    Cardinality(String),
}

#[derive(Debug, Clone)]
pub(super) struct Agg {
    name: String,
    kind: AggKind,
    subs: Vec<Agg>,
}

const KNOWN_AGGS: &[&str] = &[
    "date_histogram",
    "histogram",
    "range",
    "date_range",
    "filter",
    "filters",
    "top_hits",
    "stats",
    "extended_stats",
    "percentiles",
    "percentile_ranks",
    "significant_terms",
    "composite",
    "multi_terms",
    "rare_terms",
    "nested",
    "reverse_nested",
    "global",
    "missing",
    "sampler",
    "auto_date_histogram",
    "geo_distance",
    "geohash_grid",
    "scripted_metric",
    "weighted_avg",
    "median_absolute_deviation",
    "bucket_script",
    "bucket_selector",
    "bucket_sort",
    "cumulative_sum",
    "derivative",
    "moving_fn",
    "ip_range",
    "adjacency_matrix",
];

fn agg_field(body: &Value, kind: &str) -> Result<String, SearchError> {
    let o = body
        .as_object()
        .ok_or_else(|| SearchError::parsing(format!("[{kind}] aggregation malformed")))?;
    for k in o.keys() {
        if k != "field" {
            return Err(SearchError::unsupported(&format!(
                "[{kind}] aggregation option [{k}]"
            )));
        }
    }
    let f = o.get("field").and_then(Value::as_str).ok_or_else(|| {
        SearchError::illegal(format!(
            "Required one of fields [field, script], but none were specified. in [{kind}]"
        ))
    })?;
    if field_type(f) == FieldType::Text {
        return Err(SearchError::illegal(format!(
            "Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [{f}] in order to load field data by uninverting the inverted index. Note that this can use significant memory."
        )));
    }
    Ok(f.to_string())
}

pub(super) fn parse_aggs(v: &Value) -> Result<Vec<Agg>, SearchError> {
    let m = v
        .as_object()
        .ok_or_else(|| SearchError::parsing("Aggregation definition must be an object"))?;
    let mut out = Vec::new();
    for (name, def) in m {
        let d = def.as_object().ok_or_else(|| {
            SearchError::parsing(format!("Expected [START_OBJECT] under [{name}]"))
        })?;
        let mut kind = None;
        let mut subs = Vec::new();
        for (k, body) in d {
            match k.as_str() {
                "aggs" | "aggregations" => subs = parse_aggs(body)?,
                "meta" => {}
                "terms" => {
                    let o = body
                        .as_object()
                        .ok_or_else(|| SearchError::parsing("[terms] aggregation malformed"))?;
                    let mut field = None;
                    let mut size = 10usize;
                    let mut min_doc_count = 1u64;
                    let mut by_key = None;
                    let mut count_asc = false;
                    for (ok, ov) in o {
                        match ok.as_str() {
                            "field" => field = ov.as_str().map(str::to_string),
                            "size" | "shard_size" if ok == "shard_size" => {}
                            "size" => {
                                size = ov.as_u64().ok_or_else(|| {
                                    SearchError::illegal("[size] must be greater than 0.")
                                })? as usize;
                                if size == 0 {
                                    return Err(SearchError::illegal(
                                        "[size] must be greater than 0. Found [0] in [terms]",
                                    ));
                                }
                            }
                            "min_doc_count" => min_doc_count = ov.as_u64().unwrap_or(1),
                            "order" => {
                                let entries: Vec<&Value> = match ov {
                                    Value::Array(a) => a.iter().collect(),
                                    other => vec![other],
                                };
                                if entries.len() != 1 {
                                    return Err(SearchError::unsupported(
                                        "terms order with several criteria",
                                    ));
                                }
                                let (ok2, dir) = entries[0]
                                    .as_object()
                                    .and_then(|m| m.iter().next())
                                    .ok_or_else(|| SearchError::parsing("malformed terms order"))?;
                                let asc = match dir.as_str() {
                                    Some("asc") => true,
                                    Some("desc") => false,
                                    _ => {
                                        return Err(SearchError::illegal(format!(
                                            "Unknown terms order direction [{dir}]"
                                        )));
                                    }
                                };
                                match ok2.as_str() {
                                    "_count" => count_asc = asc,
                                    "_key" | "_term" => by_key = Some(asc),
                                    other => {
                                        return Err(SearchError::unsupported(&format!(
                                            "terms order by [{other}]"
                                        )));
                                    }
                                }
                            }
                            other => {
                                return Err(SearchError::unsupported(&format!(
                                    "[terms] aggregation option [{other}]"
                                )));
                            }
                        }
                    }
                    let field = field.ok_or_else(|| {
                        SearchError::illegal(
                            "Required one of fields [field, script], but none were specified.",
                        )
                    })?;
                    agg_field(&json!({"field": field}), "terms")?;
                    kind = Some(AggKind::Terms {
                        field,
                        size,
                        min_doc_count,
                        by_key,
                        count_asc,
                    });
                }
                "value_count" => kind = Some(AggKind::ValueCount(agg_field(body, k)?)),
                "min" => kind = Some(AggKind::Min(agg_field(body, k)?)),
                "max" => kind = Some(AggKind::Max(agg_field(body, k)?)),
                "avg" => kind = Some(AggKind::Avg(agg_field(body, k)?)),
                "sum" => kind = Some(AggKind::Sum(agg_field(body, k)?)),
                "cardinality" => kind = Some(AggKind::Cardinality(agg_field(body, k)?)),
                other if KNOWN_AGGS.contains(&other) => {
                    return Err(SearchError::unsupported(&format!("aggregation [{other}]")));
                }
                other => {
                    return Err(SearchError::parsing(format!(
                        "Unknown aggregation type [{other}] for [{name}]"
                    )));
                }
            }
        }
        let kind = kind.ok_or_else(|| {
            SearchError::parsing(format!("Missing definition for aggregation [{name}]"))
        })?;
        if !subs.is_empty() && !matches!(kind, AggKind::Terms { .. }) {
            return Err(SearchError::parsing(format!(
                "Aggregator [{name}] of type [metric] cannot accept sub-aggregations"
            )));
        }
        out.push(Agg {
            name: name.clone(),
            kind,
            subs,
        });
    }
    Ok(out)
}

fn metric_value(field: &str, v: Option<f64>) -> Value {
    match v {
        None => json!({"value": null}),
        Some(x) if field_type(field) == FieldType::Date => {
            json!({"value": x, "value_as_string": clock::iso_millis(clock::from_millis(x as i64))})
        }
        Some(x) => json!({"value": x}),
    }
}

pub(super) fn run_aggs(aggs: &[Agg], docs: &[&Doc]) -> Value {
    let mut out = Map::new();
    for a in aggs {
        let nums = |f: &str| -> Vec<f64> {
            docs.iter()
                .flat_map(|d| keys(&d.source, f))
                .filter_map(|k| match k {
                    Key::Num(n) => Some(n),
                    Key::Str(_) => None,
                })
                .collect()
        };
        let v = match &a.kind {
            AggKind::ValueCount(f) => {
                json!({"value": docs.iter().map(|d| keys(&d.source, f).len()).sum::<usize>()})
            }
            AggKind::Min(f) => metric_value(f, nums(f).into_iter().reduce(f64::min)),
            AggKind::Max(f) => metric_value(f, nums(f).into_iter().reduce(f64::max)),
            AggKind::Sum(f) => json!({"value": nums(f).iter().sum::<f64>()}),
            AggKind::Avg(f) => {
                let n = nums(f);
                if n.is_empty() {
                    json!({"value": null})
                } else {
                    json!({"value": n.iter().sum::<f64>() / n.len() as f64})
                }
            }
            AggKind::Cardinality(f) => {
                let mut seen: Vec<Key> = Vec::new();
                for d in docs {
                    for k in keys(&d.source, f) {
                        if !seen.contains(&k) {
                            seen.push(k);
                        }
                    }
                }
                json!({"value": seen.len()})
            }
            AggKind::Terms {
                field,
                size,
                min_doc_count,
                by_key,
                count_asc,
            } => {
                let ft = field_type(field);
                let mut buckets: Vec<(Key, Vec<&Doc>)> = Vec::new();
                for d in docs {
                    let mut ks = keys(&d.source, field);
                    ks.dedup();
                    for k in ks {
                        match buckets.iter_mut().find(|b| b.0 == k) {
                            Some(b) => b.1.push(d),
                            None => buckets.push((k, vec![d])),
                        }
                    }
                }
                buckets.retain(|b| b.1.len() as u64 >= *min_doc_count);
                buckets.sort_by(|a, b| match by_key {
                    Some(asc) => {
                        let o = a.0.cmp(&b.0);
                        if *asc { o } else { o.reverse() }
                    }
                    None => {
                        let o = a.1.len().cmp(&b.1.len());
                        let o = if *count_asc { o } else { o.reverse() };
                        o.then_with(|| a.0.cmp(&b.0))
                    }
                });
                let other: usize = buckets.iter().skip(*size).map(|b| b.1.len()).sum();
                let rendered: Vec<Value> = buckets
                    .iter()
                    .take(*size)
                    .map(|(k, ds)| {
                        let mut b = Map::new();
                        b.insert("key".into(), k.to_json(ft));
                        if ft == FieldType::Date
                            && let Key::Num(n) = k
                        {
                            b.insert(
                                "key_as_string".into(),
                                json!(clock::iso_millis(clock::from_millis(*n as i64))),
                            );
                        }
                        b.insert("doc_count".into(), json!(ds.len()));
                        if let Value::Object(sub) = run_aggs(&a.subs, ds) {
                            b.extend(sub);
                        }
                        Value::Object(b)
                    })
                    .collect();
                json!({
                    "doc_count_error_upper_bound": 0,
                    "sum_other_doc_count": other,
                    "buckets": rendered,
                })
            }
        };
        out.insert(a.name.clone(), v);
    }
    Value::Object(out)
}
