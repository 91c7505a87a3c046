//! Request parsing: a `_search` / `_count` body and URL parameters into a [`SearchRequest`],
//! with OpenSearch's limits and its errors for unknown or unsupported options.

use serde_json::{Map, Value};

use super::aggs::parse_aggs;
use super::query::{Query, parse_query};
use super::sort::{parse_sort, parse_url_sort};
use super::source::{SourceFilter, parse_source};
use super::{MAX_RESULT_WINDOW, SearchError, SearchRequest, TrackTotal};

const UNSUPPORTED_TOP: &[&str] = &[
    "fields",
    "docvalue_fields",
    "stored_fields",
    "script_fields",
    "highlight",
    "collapse",
    "post_filter",
    "suggest",
    "rescore",
    "min_score",
    "terminate_after",
    "profile",
    "explain",
    "version",
    "seq_no_primary_term",
    "indices_boost",
    "stats",
    "pit",
    "slice",
    "runtime_mappings",
    "ext",
];

/// URL parameters of `_search` that are honoured (others are refused, as OpenSearch does
/// for unknown ones; `filter_path` and friends would change the output shape).
pub const SEARCH_URL_PARAMS: &[&str] = &[
    "size",
    "from",
    "sort",
    "track_total_hits",
    "ignore_unavailable",
    "allow_no_indices",
    "expand_wildcards",
    "pretty",
    "timeout",
    "rest_total_hits_as_int",
    "track_scores",
    "search_type",
    "typed_keys",
    "request_cache",
    "preference",
    "routing",
    "error_trace",
];

fn url_int(params: &[(String, String)], name: &str) -> Result<Option<i64>, SearchError> {
    match params.iter().rev().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => v.parse::<i64>().map(Some).map_err(|_| {
            SearchError::illegal(format!(
                "Failed to parse int parameter [{name}] with value [{v}]"
            ))
        }),
    }
}

impl SearchRequest {
    /// Parse a `_search` body (empty = match_all) and URL parameters.
    pub fn parse(
        body: &Value,
        params: &[(String, String)],
        now_ms: i64,
        count_only: bool,
    ) -> Result<Self, SearchError> {
        let empty = Map::new();
        let b = match body {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => return Err(SearchError::parsing("request body must be an object")),
        };
        let mut req = SearchRequest {
            query: Query::MatchAll,
            from: 0,
            size: 10,
            sort: Vec::new(),
            search_after: None,
            aggs: Vec::new(),
            source: SourceFilter::default(),
            track_total: TrackTotal::Upto(MAX_RESULT_WINDOW as u64),
            track_scores: false,
            total_as_int: params
                .iter()
                .any(|(k, v)| k == "rest_total_hits_as_int" && v != "false"),
        };
        let mut from = 0i64;
        let mut size = 10i64;
        for (k, v) in b {
            match k.as_str() {
                "query" => req.query = parse_query(v, now_ms)?,
                "size" if !count_only => {
                    size = v
                        .as_i64()
                        .ok_or_else(|| SearchError::parsing("[size] must be a number"))?
                }
                "from" if !count_only => {
                    from = v
                        .as_i64()
                        .ok_or_else(|| SearchError::parsing("[from] must be a number"))?
                }
                "sort" if !count_only => req.sort = parse_sort(v)?,
                "search_after" if !count_only => {
                    req.search_after =
                        Some(v.as_array().cloned().ok_or_else(|| {
                            SearchError::parsing("[search_after] must be an array")
                        })?)
                }
                "aggs" | "aggregations" if !count_only => req.aggs = parse_aggs(v)?,
                "_source" if !count_only => req.source = parse_source(v)?,
                "track_total_hits" if !count_only => {
                    req.track_total = match v {
                        Value::Bool(true) => TrackTotal::Exact,
                        Value::Bool(false) => TrackTotal::Off,
                        Value::Number(n) => match n.as_i64() {
                            Some(-1) => TrackTotal::Exact,
                            Some(x) if x >= 0 => TrackTotal::Upto(x as u64),
                            _ => {
                                return Err(SearchError::illegal(
                                    "[track_total_hits] parameter must be positive or equals to -1",
                                ));
                            }
                        },
                        _ => {
                            return Err(SearchError::parsing(
                                "[track_total_hits] must be a boolean or a number",
                            ));
                        }
                    }
                }
                "track_scores" if !count_only => req.track_scores = v.as_bool().unwrap_or(false),
                "timeout" => {}
                other if UNSUPPORTED_TOP.contains(&other) => {
                    return Err(SearchError::unsupported(&format!(
                        "search option [{other}]"
                    )));
                }
                other => {
                    return Err(SearchError::parsing(format!(
                        "Unknown key for a START_OBJECT in [{other}]."
                    )));
                }
            }
        }
        if let Some(s) = url_int(params, "size")? {
            size = s;
        }
        if let Some(f) = url_int(params, "from")? {
            from = f;
        }
        if let Some((_, s)) = params.iter().rev().find(|(k, _)| k == "sort") {
            req.sort = parse_url_sort(s)?;
        }
        if let Some((_, t)) = params.iter().rev().find(|(k, _)| k == "track_total_hits") {
            req.track_total = match t.as_str() {
                "true" => TrackTotal::Exact,
                "false" => TrackTotal::Off,
                n => TrackTotal::Upto(n.parse().map_err(|_| {
                    SearchError::illegal(format!(
                        "Failed to parse [track_total_hits] with value [{n}]"
                    ))
                })?),
            };
        }
        if size < 0 {
            return Err(SearchError::illegal(format!(
                "[size] parameter cannot be negative, found [{size}]"
            )));
        }
        if from < 0 {
            return Err(SearchError::illegal(format!(
                "[from] parameter cannot be negative but was [{from}]"
            )));
        }
        if from + size > MAX_RESULT_WINDOW {
            return Err(SearchError {
                status: 400,
                kind: "illegal_argument_exception",
                reason: format!(
                    "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.",
                    from + size
                ),
            });
        }
        if let Some(after) = &req.search_after {
            if req.sort.is_empty() {
                return Err(SearchError::illegal(
                    "Sort must contain at least one field.",
                ));
            }
            if after.len() != req.sort.len() {
                return Err(SearchError::illegal(format!(
                    "search_after has {} value(s) but sort has {}.",
                    after.len(),
                    req.sort.len()
                )));
            }
            if from > 0 {
                return Err(SearchError::illegal(
                    "`from` parameter must be set to 0 when `search_after` is used.",
                ));
            }
        }
        req.from = from as usize;
        req.size = size as usize;
        Ok(req)
    }
}
