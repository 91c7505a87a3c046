//! `_search` and `_count` over the alert store: the query DSL subset (`bool`, `range` with
//! date math, `term`, `terms`, `exists`, `ids`, `match_all`, `constant_score`), `sort` with
//! `search_after`, `from`/`size`, `_source` filtering and `terms`/metric aggregations.
//! Anything else is refused with an OpenSearch-style 400, never answered approximately.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::super::clock;
use super::super::index::{AlertIndex, Doc};

/// Largest `from + size` (OpenSearch's `index.max_result_window`).
pub const MAX_RESULT_WINDOW: i64 = 10_000;

/// An OpenSearch error: HTTP status, exception type and reason.
#[derive(Debug, Clone)]
pub struct SearchError {
    pub status: u16,
    pub kind: &'static str,
    pub reason: String,
}

impl SearchError {
    pub fn parsing(reason: impl Into<String>) -> Self {
        Self {
            status: 400,
            kind: "parsing_exception",
            reason: reason.into(),
        }
    }
    pub fn illegal(reason: impl Into<String>) -> Self {
        Self {
            status: 400,
            kind: "illegal_argument_exception",
            reason: reason.into(),
        }
    }
    fn unsupported(what: &str) -> Self {
        Self::parsing(format!(
            "[wazuh-sim] {what} is not supported by the simulator (it implements the subset secops-mcp uses)"
        ))
    }
    pub fn body(&self) -> Value {
        json!({
            "error": {
                "root_cause": [{"type": self.kind, "reason": self.reason}],
                "type": self.kind,
                "reason": self.reason,
            },
            "status": self.status,
        })
    }
}

/// Field types of the `wazuh-alerts-4.x` template that matter here; other strings are
/// keywords (the template's `string_as_keyword` dynamic mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Date,
    Long,
    Bool,
    Keyword,
    Text,
}

pub fn field_type(field: &str) -> FieldType {
    match field {
        "timestamp"
        | "@timestamp"
        | "syscheck.mtime_after"
        | "syscheck.mtime_before"
        | "data.timestamp" => FieldType::Date,
        "rule.level"
        | "rule.frequency"
        | "rule.firedtimes"
        | "syscheck.size_after"
        | "syscheck.size_before"
        | "decoder.fts"
        | "decoder.accumulate" => FieldType::Long,
        "rule.mail" => FieldType::Bool,
        "full_log" | "previous_log" | "message" | "@version" | "type" => FieldType::Text,
        _ => FieldType::Keyword,
    }
}

/// A comparable value of a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Num(f64),
    Str(String),
}

impl Key {
    fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Key::Str(a), Key::Str(b)) => a.cmp(b),
            (Key::Num(_), Key::Str(_)) => Ordering::Less,
            (Key::Str(_), Key::Num(_)) => Ordering::Greater,
        }
    }

    fn to_json(&self, ft: FieldType) -> Value {
        match self {
            Key::Num(n) if ft == FieldType::Date || ft == FieldType::Long => json!(*n as i64),
            Key::Num(n) => json!(n),
            Key::Str(s) => json!(s),
        }
    }
}

/// The typed value of a document value (None when it cannot be read as the field's type).
fn typed(ft: FieldType, v: &Value) -> Option<Key> {
    match ft {
        FieldType::Date => match v {
            Value::String(s) => clock::parse_date_millis(s).map(|m| Key::Num(m as f64)),
            Value::Number(n) => n.as_f64().map(Key::Num),
            _ => None,
        },
        FieldType::Long => match v {
            Value::Number(n) => n.as_f64().map(Key::Num),
            Value::String(s) => s.trim().parse::<f64>().ok().map(Key::Num),
            _ => None,
        },
        FieldType::Bool => match v {
            Value::Bool(b) => Some(Key::Str(b.to_string())),
            Value::String(s) if s == "true" || s == "false" => Some(Key::Str(s.clone())),
            _ => None,
        },
        FieldType::Keyword | FieldType::Text => match v {
            Value::String(s) => Some(Key::Str(s.clone())),
            Value::Number(n) => Some(Key::Str(n.to_string())),
            Value::Bool(b) => Some(Key::Str(b.to_string())),
            _ => None,
        },
    }
}

/// All values at a dotted path, flattening arrays on the way.
fn values<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for c in cur {
            match c {
                Value::Object(m) => {
                    if let Some(x) = m.get(seg) {
                        next.push(x);
                    }
                }
                Value::Array(a) => {
                    for item in a {
                        if let Some(x) = item.get(seg) {
                            next.push(x);
                        }
                    }
                }
                _ => {}
            }
        }
        cur = next;
    }
    let mut out = Vec::new();
    for c in cur {
        match c {
            Value::Array(a) => out.extend(a.iter().filter(|x| !x.is_null())),
            Value::Null => {}
            other => out.push(other),
        }
    }
    out
}

/// Like [`keys`] on the document's source, with the pre-parsed `timestamp`.
fn doc_keys(doc: &Doc, field: &str) -> Vec<Key> {
    match doc.ts_ms {
        Some(ms) if field == "timestamp" => vec![Key::Num(ms as f64)],
        _ => keys(&doc.source, field),
    }
}

fn keys(doc: &Value, field: &str) -> Vec<Key> {
    let ft = field_type(field);
    values(doc, field)
        .into_iter()
        .filter_map(|v| typed(ft, v))
        .collect()
}

// ---- queries ----

#[derive(Debug, Clone)]
enum Bound {
    Gte(Key),
    Gt(Key),
    Lte(Key),
    Lt(Key),
}

#[derive(Debug, Clone)]
enum Query {
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

fn parse_query(v: &Value, now_ms: i64) -> Result<Query, SearchError> {
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

fn matches(q: &Query, doc: &Doc) -> bool {
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
fn scoring(q: &Query) -> bool {
    match q {
        Query::Bool { must, should, .. } => !must.is_empty() || !should.is_empty(),
        _ => true,
    }
}

// ---- sort ----

#[derive(Debug, Clone)]
enum SortField {
    Score,
    Doc,
    Id,
    Field(String, FieldType),
}

#[derive(Debug, Clone)]
struct Sort {
    field: SortField,
    desc: bool,
    missing_first: bool,
}

fn parse_sort_entry(v: &Value) -> Result<Sort, SearchError> {
    let make = |name: &str, desc: Option<bool>, missing_first: bool| -> Result<Sort, SearchError> {
        let field = match name {
            "_score" => SortField::Score,
            "_doc" => SortField::Doc,
            "_id" => SortField::Id,
            f => {
                let ft = field_type(f);
                if ft == FieldType::Text {
                    return Err(SearchError::illegal(format!(
                        "Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [{f}] in order to load field data by uninverting the inverted index. Note that this can use significant memory."
                    )));
                }
                SortField::Field(f.to_string(), ft)
            }
        };
        let desc = desc.unwrap_or(matches!(field, SortField::Score));
        Ok(Sort {
            field,
            desc,
            missing_first,
        })
    };
    let order = |o: &Value| -> Result<bool, SearchError> {
        match o.as_str() {
            Some(s) if s.eq_ignore_ascii_case("desc") => Ok(true),
            Some(s) if s.eq_ignore_ascii_case("asc") => Ok(false),
            _ => Err(SearchError::illegal(format!("Unknown SortOrder [{o}]"))),
        }
    };
    match v {
        Value::String(s) => make(s, None, false),
        Value::Object(m) if m.len() == 1 => {
            let (name, spec) = m
                .iter()
                .next()
                .ok_or_else(|| SearchError::parsing("malformed sort"))?;
            match spec {
                Value::String(_) => make(name, Some(order(spec)?), false),
                Value::Object(o) => {
                    let mut desc = None;
                    let mut missing_first = false;
                    for (k, val) in o {
                        match k.as_str() {
                            "order" => desc = Some(order(val)?),
                            "missing" => match val.as_str() {
                                Some("_last") => missing_first = false,
                                Some("_first") => missing_first = true,
                                _ => {
                                    return Err(SearchError::unsupported(
                                        "sort missing value other than _first/_last",
                                    ));
                                }
                            },
                            "unmapped_type" => {}
                            other => {
                                return Err(SearchError::unsupported(&format!(
                                    "sort option [{other}]"
                                )));
                            }
                        }
                    }
                    make(name, desc, missing_first)
                }
                _ => Err(SearchError::parsing(format!("malformed sort for [{name}]"))),
            }
        }
        _ => Err(SearchError::parsing(
            "malformed sort: expected a field name or an object",
        )),
    }
}

fn parse_sort(v: &Value) -> Result<Vec<Sort>, SearchError> {
    match v {
        Value::Array(a) => a.iter().map(parse_sort_entry).collect(),
        other => Ok(vec![parse_sort_entry(other)?]),
    }
}

/// `sort=timestamp:desc,_id` in the URL.
fn parse_url_sort(s: &str) -> Result<Vec<Sort>, SearchError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.rsplit_once(':') {
            Some((f, o)) => parse_sort_entry(&json!({f: o})),
            None => parse_sort_entry(&json!(p)),
        })
        .collect()
}

/// The sort key of one document for one sort field (None = missing).
fn sort_key(s: &Sort, doc: &Doc, pos: usize, score: f64) -> Option<Key> {
    match &s.field {
        SortField::Score => Some(Key::Num(score)),
        SortField::Doc => Some(Key::Num(pos as f64)),
        SortField::Id => Some(Key::Str(doc.id.clone())),
        SortField::Field(f, _) => {
            let ks = doc_keys(doc, f);
            let pick = if s.desc {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            ks.into_iter()
                .reduce(|a, b| if b.cmp(&a) == pick { b } else { a })
        }
    }
}

fn cmp_one(s: &Sort, a: &Option<Key>, b: &Option<Key>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => {
            let o = x.cmp(y);
            if s.desc { o.reverse() } else { o }
        }
        (None, None) => Ordering::Equal,
        (None, Some(_)) => {
            if s.missing_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (Some(_), None) => {
            if s.missing_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

/// Compare two documents' sort keys field by field.
fn cmp_keys(sort: &[Sort], a: &[Option<Key>], b: &[Option<Key>]) -> Ordering {
    sort.iter()
        .zip(a.iter().zip(b.iter()))
        .fold(Ordering::Equal, |acc, (s, (x, y))| {
            acc.then_with(|| cmp_one(s, x, y))
        })
}

fn sort_value_json(s: &Sort, k: &Option<Key>) -> Value {
    match (&s.field, k) {
        (SortField::Score, Some(Key::Num(n))) => json!(n),
        (SortField::Doc, Some(Key::Num(n))) => json!(*n as i64),
        (SortField::Field(_, ft), Some(k)) => k.to_json(*ft),
        (_, Some(Key::Str(x))) => json!(x),
        (SortField::Field(_, FieldType::Date | FieldType::Long), None) => {
            json!(if s.desc { i64::MIN } else { i64::MAX })
        }
        _ => Value::Null,
    }
}

fn after_key(s: &Sort, v: &Value) -> Result<Option<Key>, SearchError> {
    if v.is_null() {
        return Ok(None);
    }
    let bad = || {
        SearchError::illegal(format!(
            "Failed to parse search_after value [{v}] for the sort"
        ))
    };
    Ok(Some(match &s.field {
        SortField::Score | SortField::Doc => Key::Num(v.as_f64().ok_or_else(bad)?),
        SortField::Id => Key::Str(v.as_str().ok_or_else(bad)?.to_string()),
        SortField::Field(_, ft @ (FieldType::Date | FieldType::Long)) => {
            // The placeholder OpenSearch prints for a missing value means "missing" again.
            if let Some(n) = v.as_i64()
                && (n == i64::MAX || n == i64::MIN)
            {
                return Ok(None);
            }
            typed(*ft, v).ok_or_else(bad)?
        }
        SortField::Field(_, ft) => typed(*ft, v).ok_or_else(bad)?,
    }))
}

// ---- aggregations ----

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
struct Agg {
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

fn parse_aggs(v: &Value) -> Result<Vec<Agg>, SearchError> {
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

fn run_aggs(aggs: &[Agg], docs: &[&Doc]) -> Value {
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

// ---- _source filtering ----

#[derive(Debug, Clone, Default)]
struct SourceFilter {
    disabled: bool,
    includes: Vec<String>,
    excludes: Vec<String>,
}

fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, rest)) => {
            if !s.starts_with(head) {
                return false;
            }
            let tail = &s[head.len()..];
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

fn covers(pats: &[String], path: &str) -> bool {
    pats.iter()
        .any(|p| glob(p, path) || path.starts_with(&format!("{p}.")))
}

fn may_contain(pats: &[String], path: &str) -> bool {
    let prefix = format!("{path}.");
    pats.iter().any(|p| {
        let lit = p.split('*').next().unwrap_or("");
        lit.starts_with(&prefix) || (p.contains('*') && prefix.starts_with(lit))
    })
}

fn filter_obj(m: &Map<String, Value>, prefix: &str, f: &SourceFilter) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in m {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if covers(&f.excludes, &path) {
            continue;
        }
        let included = f.includes.is_empty() || covers(&f.includes, &path);
        match v {
            Value::Object(child)
                if (!included || !f.excludes.is_empty())
                    && (included || may_contain(&f.includes, &path)) =>
            {
                let sub = filter_obj(
                    child,
                    &path,
                    &SourceFilter {
                        includes: if included { vec![] } else { f.includes.clone() },
                        ..f.clone()
                    },
                );
                if !sub.is_empty() || included {
                    out.insert(k.clone(), Value::Object(sub));
                }
            }
            _ if included => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    out
}

fn str_list(v: &Value) -> Result<Vec<String>, SearchError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| SearchError::parsing("[_source] entries must be strings"))
            })
            .collect(),
        _ => Err(SearchError::parsing("[_source] malformed")),
    }
}

fn parse_source(v: &Value) -> Result<SourceFilter, SearchError> {
    match v {
        Value::Bool(b) => Ok(SourceFilter {
            disabled: !b,
            ..Default::default()
        }),
        Value::Object(o) => {
            let mut f = SourceFilter::default();
            for (k, val) in o {
                match k.as_str() {
                    "includes" | "include" => f.includes = str_list(val)?,
                    "excludes" | "exclude" => f.excludes = str_list(val)?,
                    other => {
                        return Err(SearchError::parsing(format!(
                            "Unknown key for a START_OBJECT in [{other}]."
                        )));
                    }
                }
            }
            Ok(f)
        }
        other => Ok(SourceFilter {
            includes: str_list(other)?,
            ..Default::default()
        }),
    }
}

// ---- the request ----

#[derive(Debug, Clone, Copy)]
enum TrackTotal {
    Off,
    Upto(u64),
    Exact,
}

/// Every document's sort keys and position in the store, in sort order.
type SortedStore = Vec<(Vec<Option<Key>>, usize)>;

/// What searches derive from the store and reuse until the next insert (which resets it):
/// per sort (by `timestamp` / `_id`), every document's position in the store in sort order
/// with its sort keys; per (target indices, query), the number of matching documents.
#[derive(Default)]
pub struct SearchCache {
    orders: HashMap<String, Arc<SortedStore>>,
    totals: HashMap<String, usize>,
}

/// A parsed search (or count) request.
pub struct SearchRequest {
    query: Query,
    from: usize,
    size: usize,
    sort: Vec<Sort>,
    search_after: Option<Vec<Value>>,
    aggs: Vec<Agg>,
    source: SourceFilter,
    track_total: TrackTotal,
    track_scores: bool,
    total_as_int: bool,
}

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

    /// Documents matching the query, in index order.
    fn matching<'a>(&self, docs: &[&'a Doc]) -> Vec<(usize, &'a Doc)> {
        docs.iter()
            .copied()
            .enumerate()
            .filter(|(_, d)| matches(&self.query, d))
            .collect()
    }

    pub fn count(&self, docs: &[&Doc]) -> usize {
        self.matching(docs).len()
    }

    fn after_keys(&self) -> Result<Option<Vec<Option<Key>>>, SearchError> {
        self.search_after
            .as_ref()
            .map(|after| {
                self.sort
                    .iter()
                    .zip(after.iter())
                    .map(|(s, v)| after_key(s, v))
                    .collect::<Result<_, _>>()
            })
            .transpose()
    }

    /// Run the search; `shards` is reported in `_shards`. The general path: match every
    /// document, then select and sort the requested window.
    pub fn execute(
        &self,
        docs: &[&Doc],
        shards: usize,
        started: std::time::Instant,
    ) -> Result<Value, SearchError> {
        let hits = self.matching(docs);
        let score = if scoring(&self.query) { 1.0 } else { 0.0 };
        let total = hits.len();
        let sorted = !self.sort.is_empty();
        let mut keyed: Vec<(Vec<Option<Key>>, usize, &Doc)> = hits
            .iter()
            .map(|(pos, d)| {
                (
                    self.sort
                        .iter()
                        .map(|s| sort_key(s, d, *pos, score))
                        .collect(),
                    *pos,
                    *d,
                )
            })
            .collect();
        if let Some(after) = self.after_keys()? {
            keyed.retain(|k| cmp_keys(&self.sort, &k.0, &after) == Ordering::Greater);
        }
        if sorted {
            // Only the requested window needs full order: select it, then sort it (the
            // comparison is total, so this equals sorting everything).
            let order = |a: &(Vec<Option<Key>>, usize, &Doc),
                         b: &(Vec<Option<Key>>, usize, &Doc)| {
                cmp_keys(&self.sort, &a.0, &b.0).then(a.1.cmp(&b.1))
            };
            let window = self.from.saturating_add(self.size);
            if window > 0 && window < keyed.len() {
                keyed.select_nth_unstable_by(window - 1, order);
                keyed.truncate(window);
            }
            keyed.sort_by(order);
        }
        let aggs = if self.aggs.is_empty() {
            None
        } else {
            let docs: Vec<&Doc> = hits.iter().map(|(_, d)| *d).collect();
            Some(run_aggs(&self.aggs, &docs))
        };
        Ok(self.respond(total, &keyed, score, aggs, shards, started))
    }

    /// The key of this request's sort in [`SearchCache`] when the fast path can answer it:
    /// sorted only by `timestamp` and `_id` (any order, any `missing`), no aggregations.
    fn fast_order_key(&self) -> Option<String> {
        if !self.aggs.is_empty() || self.sort.is_empty() {
            return None;
        }
        let mut key = String::new();
        for s in &self.sort {
            match &s.field {
                SortField::Field(f, _) if f == "timestamp" => {}
                SortField::Id => {}
                _ => return None,
            }
            key.push_str(&format!("{s:?};"));
        }
        Some(key)
    }

    /// Run the search over the documents of `targets` in `index`. Searches sorted by
    /// `timestamp` / `_id` (how alerts are paged) walk a cached order of the whole store from
    /// the `search_after` position and stop once the page is full; their total is counted once
    /// per store version. Same response as [`Self::execute`]; everything else goes there.
    pub fn execute_on(
        &self,
        index: &AlertIndex,
        targets: &[String],
        shards: usize,
        started: std::time::Instant,
    ) -> Result<Value, SearchError> {
        let Some(order_key) = self.fast_order_key() else {
            let docs: Vec<&Doc> = index
                .docs
                .iter()
                .filter(|d| targets.contains(&d.index))
                .collect();
            return self.execute(&docs, shards, started);
        };
        let lock = || index.search_cache.lock().unwrap_or_else(|e| e.into_inner());
        let cached = lock().orders.get(&order_key).cloned();
        let order = match cached {
            Some(o) => o,
            None => {
                // Sort keys do not depend on the score or (for these fields) the position.
                let mut entries: Vec<(Vec<Option<Key>>, usize)> = index
                    .docs
                    .iter()
                    .enumerate()
                    .map(|(pos, d)| {
                        (
                            self.sort.iter().map(|s| sort_key(s, d, pos, 0.0)).collect(),
                            pos,
                        )
                    })
                    .collect();
                // Keys, then insertion order: the general path's order (positions among the
                // targets' documents keep the relative order of positions in the store).
                entries.sort_by(|a, b| cmp_keys(&self.sort, &a.0, &b.0).then(a.1.cmp(&b.1)));
                let o = Arc::new(entries);
                lock().orders.insert(order_key, o.clone());
                o
            }
        };
        let score = if scoring(&self.query) { 1.0 } else { 0.0 };
        let start = match self.after_keys()? {
            Some(after) => {
                order.partition_point(|(k, _)| cmp_keys(&self.sort, k, &after) != Ordering::Greater)
            }
            None => 0,
        };
        let window = self.from.saturating_add(self.size);
        let mut page: Vec<(Vec<Option<Key>>, usize, &Doc)> = Vec::new();
        for (keys, pos) in &order[start..] {
            if page.len() >= window {
                break;
            }
            let d = &index.docs[*pos];
            if targets.contains(&d.index) && matches(&self.query, d) {
                page.push((keys.clone(), *pos, d));
            }
        }
        let total = if matches!(self.track_total, TrackTotal::Off) {
            0
        } else {
            let total_key = format!("{targets:?} {:?}", self.query);
            let cached = lock().totals.get(&total_key).copied();
            match cached {
                Some(t) => t,
                None => {
                    let t = index
                        .docs
                        .iter()
                        .filter(|d| targets.contains(&d.index) && matches(&self.query, d))
                        .count();
                    let mut c = lock();
                    if c.totals.len() >= 1024 {
                        c.totals.clear();
                    }
                    c.totals.insert(total_key, t);
                    t
                }
            }
        };
        Ok(self.respond(total, &page, score, None, shards, started))
    }

    /// The response for the sorted window `keyed` (from `from` on) of `total` matches.
    fn respond(
        &self,
        total: usize,
        keyed: &[(Vec<Option<Key>>, usize, &Doc)],
        score: f64,
        aggs: Option<Value>,
        shards: usize,
        started: std::time::Instant,
    ) -> Value {
        let sorted = !self.sort.is_empty();
        let page: Vec<Value> = keyed
            .iter()
            .skip(self.from)
            .take(self.size)
            .map(|(ks, _, d)| {
                let mut h = Map::new();
                h.insert("_index".into(), json!(d.index));
                h.insert("_id".into(), json!(d.id));
                h.insert(
                    "_score".into(),
                    if sorted && !self.track_scores {
                        Value::Null
                    } else {
                        json!(score)
                    },
                );
                if !self.source.disabled {
                    let src = match (
                        &d.source,
                        self.source.includes.is_empty() && self.source.excludes.is_empty(),
                    ) {
                        (s, true) => s.clone(),
                        (Value::Object(m), false) => Value::Object(filter_obj(m, "", &self.source)),
                        (s, false) => s.clone(),
                    };
                    h.insert("_source".into(), src);
                }
                if sorted {
                    h.insert(
                        "sort".into(),
                        Value::Array(
                            self.sort
                                .iter()
                                .zip(ks.iter())
                                .map(|(s, k)| sort_value_json(s, k))
                                .collect(),
                        ),
                    );
                }
                Value::Object(h)
            })
            .collect();
        let mut hits_obj = Map::new();
        match self.track_total {
            TrackTotal::Off => {}
            TrackTotal::Exact => {
                hits_obj.insert(
                    "total".into(),
                    if self.total_as_int {
                        json!(total)
                    } else {
                        json!({"value": total, "relation": "eq"})
                    },
                );
            }
            TrackTotal::Upto(n) => {
                let (v, rel) = if total as u64 > n {
                    (n as usize, "gte")
                } else {
                    (total, "eq")
                };
                hits_obj.insert(
                    "total".into(),
                    if self.total_as_int {
                        json!(v)
                    } else {
                        json!({"value": v, "relation": rel})
                    },
                );
            }
        }
        let max_score = if page.is_empty() || (sorted && !self.track_scores) {
            Value::Null
        } else {
            json!(score)
        };
        hits_obj.insert("max_score".into(), max_score);
        hits_obj.insert("hits".into(), Value::Array(page));
        let mut out = Map::new();
        out.insert("took".into(), json!(started.elapsed().as_millis() as u64));
        out.insert("timed_out".into(), json!(false));
        out.insert(
            "_shards".into(),
            json!({"total": shards, "successful": shards, "skipped": 0, "failed": 0}),
        );
        out.insert("hits".into(), Value::Object(hits_obj));
        if let Some(aggs) = aggs {
            out.insert("aggregations".into(), aggs);
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        use super::super::super::rng::SimRng;
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
}
