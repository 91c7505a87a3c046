//! The query DSL subset (`bool`, `range` with date math, `term`, `terms`, `exists`, `ids`,
//! `match_all`, `constant_score`): parsing into [`Query`] and matching a document.

use std::cmp::Ordering;

use serde_json::Value;

use super::SearchError;
use super::fields::{FieldType, Key, doc_keys, field_type, keys, typed, values};
use crate::clock;
use crate::index::Doc;

#[derive(Debug, Clone)]
pub(super) enum Bound {
    Gte(Key),
    Gt(Key),
    Lte(Key),
    Lt(Key),
}

#[derive(Debug, Clone)]
pub(super) enum Query {
    MatchAll,
    MatchNone,
    Bool {
        must: Vec<Query>,
        filter: Vec<Query>,
        should: Vec<Query>,
        must_not: Vec<Query>,
        min_should: usize,
    },
    Range {
        field: String,
        bounds: Vec<Bound>,
    },
    Terms {
        field: String,
        values: Vec<Key>,
        lowercase: bool,
    },
    Exists {
        field: String,
    },
    Ids {
        ids: Vec<String>,
    },
}

const KNOWN_QUERIES: &[&str] = &[
    "match",
    "match_phrase",
    "match_phrase_prefix",
    "multi_match",
    "query_string",
    "simple_query_string",
    "wildcard",
    "prefix",
    "regexp",
    "fuzzy",
    "nested",
    "has_child",
    "has_parent",
    "script",
    "function_score",
    "dis_max",
    "boosting",
    "geo_distance",
    "geo_bounding_box",
    "geo_shape",
    "more_like_this",
    "intervals",
    "terms_set",
    "span_term",
    "match_bool_prefix",
    "combined_fields",
    "script_score",
    "wrapper",
    "distance_feature",
    "rank_feature",
    "percolate",
    "neural",
    "knn",
];

fn one_key<'a>(v: &'a Value, ctx: &str) -> Result<(&'a String, &'a Value), SearchError> {
    let m = v.as_object().ok_or_else(|| {
        SearchError::parsing(format!(
            "[{ctx}] query malformed, no start_object after query name"
        ))
    })?;
    let mut it = m.iter().filter(|(k, _)| *k != "boost" && *k != "_name");
    let first = it
        .next()
        .ok_or_else(|| SearchError::parsing(format!("[{ctx}] query malformed, no field")))?;
    if it.next().is_some() {
        return Err(SearchError::parsing(format!(
            "[{ctx}] query doesn't support multiple fields, found [{}] and more",
            first.0
        )));
    }
    Ok(first)
}

fn query_value(
    ft: FieldType,
    field: &str,
    v: &Value,
    now_ms: i64,
    round_up: bool,
    fmt_millis: bool,
) -> Result<Key, SearchError> {
    let bad = || SearchError::parsing(format!("failed to parse value [{v}] for field [{field}]"));
    match ft {
        FieldType::Date => match v {
            Value::Number(n) => n.as_f64().map(Key::Num).ok_or_else(bad),
            Value::String(s)
                if fmt_millis && s.bytes().all(|c| c.is_ascii_digit()) && !s.is_empty() =>
            {
                s.parse::<f64>().map(Key::Num).map_err(|_| bad())
            }
            Value::String(s) => clock::resolve_date(s, now_ms, round_up)
                .map(|m| Key::Num(m as f64))
                .map_err(|reason| SearchError {
                    status: 400,
                    kind: "parse_exception",
                    reason,
                }),
            _ => Err(bad()),
        },
        FieldType::Long => match v {
            Value::Number(n) => n.as_f64().map(Key::Num).ok_or_else(bad),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map(Key::Num)
                .map_err(|_| SearchError {
                    status: 400,
                    kind: "number_format_exception",
                    reason: format!("For input string: \"{s}\""),
                }),
            _ => Err(bad()),
        },
        _ => typed(ft, v).ok_or_else(bad),
    }
}

fn parse_list(v: Option<&Value>, now_ms: i64) -> Result<Vec<Query>, SearchError> {
    match v {
        None => Ok(vec![]),
        Some(Value::Array(a)) => a.iter().map(|q| parse_query(q, now_ms)).collect(),
        Some(q @ Value::Object(_)) => Ok(vec![parse_query(q, now_ms)?]),
        Some(other) => Err(SearchError::parsing(format!(
            "[bool] query does not support [{other}]"
        ))),
    }
}

pub(super) fn parse_query(v: &Value, now_ms: i64) -> Result<Query, SearchError> {
    let m = v
        .as_object()
        .ok_or_else(|| SearchError::parsing("query malformed, must start with start_object"))?;
    if m.len() != 1 {
        return Err(SearchError::parsing(format!(
            "[{}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]",
            m.keys().next().map(String::as_str).unwrap_or("query")
        )));
    }
    let (name, body) = m
        .iter()
        .next()
        .ok_or_else(|| SearchError::parsing("query malformed, empty clause"))?;
    match name.as_str() {
        "match_all" => Ok(Query::MatchAll),
        "match_none" => Ok(Query::MatchNone),
        "constant_score" => {
            let filter = body.get("filter").ok_or_else(|| {
                SearchError::parsing("[constant_score] requires a 'filter' element")
            })?;
            parse_query(filter, now_ms)
        }
        "bool" => {
            let b = body
                .as_object()
                .ok_or_else(|| SearchError::parsing("[bool] query malformed"))?;
            for k in b.keys() {
                if ![
                    "must",
                    "filter",
                    "should",
                    "must_not",
                    "minimum_should_match",
                    "boost",
                    "_name",
                    "adjust_pure_negative",
                ]
                .contains(&k.as_str())
                {
                    return Err(SearchError::parsing(format!(
                        "[bool] query does not support [{k}]"
                    )));
                }
            }
            let must = parse_list(b.get("must"), now_ms)?;
            let filter = parse_list(b.get("filter"), now_ms)?;
            let should = parse_list(b.get("should"), now_ms)?;
            let must_not = parse_list(b.get("must_not"), now_ms)?;
            let min_should = match b.get("minimum_should_match") {
                None => usize::from(must.is_empty() && filter.is_empty() && !should.is_empty()),
                Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
                Some(Value::String(s)) if s.parse::<usize>().is_ok() => s.parse().unwrap_or(0),
                Some(other) => {
                    return Err(SearchError::unsupported(&format!(
                        "minimum_should_match [{other}]"
                    )));
                }
            };
            Ok(Query::Bool {
                must,
                filter,
                should,
                must_not,
                min_should,
            })
        }
        "range" => {
            let (field, spec) = one_key(body, "range")?;
            let spec = spec.as_object().ok_or_else(|| {
                SearchError::parsing(format!("[range] query malformed after field [{field}]"))
            })?;
            let ft = field_type(field);
            let mut fmt_millis = false;
            if let Some(f) = spec.get("format") {
                let f = f.as_str().unwrap_or("");
                let ok = f.split("||").all(|p| {
                    [
                        "strict_date_optional_time",
                        "date_optional_time",
                        "epoch_millis",
                        "strict_date_optional_time_nanos",
                    ]
                    .contains(&p)
                });
                if !ok {
                    return Err(SearchError::unsupported(&format!("range format [{f}]")));
                }
                fmt_millis = f.contains("epoch_millis");
            }
            if let Some(tz) = spec.get("time_zone") {
                let tz = tz.as_str().unwrap_or("");
                if !["Z", "UTC", "+00:00", "Etc/UTC", "GMT"].contains(&tz) {
                    return Err(SearchError::unsupported(&format!("range time_zone [{tz}]")));
                }
            }
            let mut bounds = Vec::new();
            for (k, val) in spec {
                match k.as_str() {
                    "gte" => bounds.push(Bound::Gte(query_value(
                        ft, field, val, now_ms, false, fmt_millis,
                    )?)),
                    "gt" => bounds.push(Bound::Gt(query_value(
                        ft, field, val, now_ms, true, fmt_millis,
                    )?)),
                    "lte" => bounds.push(Bound::Lte(query_value(
                        ft, field, val, now_ms, true, fmt_millis,
                    )?)),
                    "lt" => bounds.push(Bound::Lt(query_value(
                        ft, field, val, now_ms, false, fmt_millis,
                    )?)),
                    "format" | "time_zone" | "boost" | "_name" => {}
                    other => {
                        return Err(SearchError::parsing(format!(
                            "[range] query does not support [{other}]"
                        )));
                    }
                }
            }
            Ok(Query::Range {
                field: field.clone(),
                bounds,
            })
        }
        "term" => {
            let (field, spec) = one_key(body, "term")?;
            let ft = field_type(field);
            if ft == FieldType::Text {
                return Err(SearchError::unsupported(&format!(
                    "term query on analyzed text field [{field}]"
                )));
            }
            let (value, lowercase) = match spec {
                Value::Object(o) => {
                    for k in o.keys() {
                        if !["value", "boost", "_name", "case_insensitive"].contains(&k.as_str()) {
                            return Err(SearchError::parsing(format!(
                                "[term] query does not support [{k}]"
                            )));
                        }
                    }
                    let v = o
                        .get("value")
                        .ok_or_else(|| SearchError::parsing("[term] query requires a value"))?;
                    (
                        v,
                        o.get("case_insensitive")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    )
                }
                other => (other, false),
            };
            Ok(Query::Terms {
                field: field.clone(),
                values: vec![query_value(ft, field, value, now_ms, false, false)?],
                lowercase,
            })
        }
        "terms" => {
            let (field, spec) = one_key(body, "terms")?;
            let ft = field_type(field);
            if ft == FieldType::Text {
                return Err(SearchError::unsupported(&format!(
                    "terms query on analyzed text field [{field}]"
                )));
            }
            let arr = spec.as_array().ok_or_else(|| {
                SearchError::unsupported("terms lookup (an object instead of a list of values)")
            })?;
            let values = arr
                .iter()
                .map(|v| query_value(ft, field, v, now_ms, false, false))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Query::Terms {
                field: field.clone(),
                values,
                lowercase: false,
            })
        }
        "exists" => {
            let field = body
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| SearchError::parsing("[exists] must be provided with a [field]"))?;
            Ok(Query::Exists {
                field: field.to_string(),
            })
        }
        "ids" => {
            let ids = body
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| SearchError::parsing("[ids] query requires [values]"))?;
            Ok(Query::Ids {
                ids: ids
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            })
        }
        other if KNOWN_QUERIES.contains(&other) => {
            Err(SearchError::unsupported(&format!("query [{other}]")))
        }
        other => Err(SearchError::parsing(format!("unknown query [{other}]"))),
    }
}

pub(super) fn matches(q: &Query, doc: &Doc) -> bool {
    match q {
        Query::MatchAll => true,
        Query::MatchNone => false,
        Query::Bool {
            must,
            filter,
            should,
            must_not,
            min_should,
        } => {
            must.iter().all(|c| matches(c, doc))
                && filter.iter().all(|c| matches(c, doc))
                && !must_not.iter().any(|c| matches(c, doc))
                && should.iter().filter(|c| matches(c, doc)).count() >= *min_should
        }
        Query::Range { field, bounds } => doc_keys(doc, field).iter().any(|k| {
            bounds.iter().all(|b| match b {
                Bound::Gte(x) => k.cmp(x) != Ordering::Less,
                Bound::Gt(x) => k.cmp(x) == Ordering::Greater,
                Bound::Lte(x) => k.cmp(x) != Ordering::Greater,
                Bound::Lt(x) => k.cmp(x) == Ordering::Less,
            })
        }),
        Query::Terms {
            field,
            values,
            lowercase,
        } => keys(&doc.source, field).iter().any(|k| {
            values.iter().any(|v| match (k, v, lowercase) {
                (Key::Str(a), Key::Str(b), true) => a.to_lowercase() == b.to_lowercase(),
                _ => k.cmp(v) == Ordering::Equal,
            })
        }),
        Query::Exists { field } => !values(&doc.source, field).is_empty(),
        Query::Ids { ids } => ids.contains(&doc.id),
    }
}

/// Whether the query scores (0.0 for a pure filter context, as OpenSearch prints).
pub(super) fn scoring(q: &Query) -> bool {
    match q {
        Query::Bool { must, should, .. } => !must.is_empty() || !should.is_empty(),
        _ => true,
    }
}
