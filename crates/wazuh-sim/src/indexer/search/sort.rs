//! `sort` (body and URL forms) and `search_after`: sort specs, per-document sort keys and
//! their total order.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::SearchError;
use super::fields::{FieldType, Key, doc_keys, field_type, typed};
use crate::index::Doc;

#[derive(Debug, Clone)]
pub(super) enum SortField {
    Score,
    Doc,
    Id,
    Field(String, FieldType),
}

#[derive(Debug, Clone)]
pub(super) struct Sort {
    pub(super) field: SortField,
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

pub(super) fn parse_sort(v: &Value) -> Result<Vec<Sort>, SearchError> {
    match v {
        Value::Array(a) => a.iter().map(parse_sort_entry).collect(),
        other => Ok(vec![parse_sort_entry(other)?]),
    }
}

/// `sort=timestamp:desc,_id` in the URL.
pub(super) fn parse_url_sort(s: &str) -> Result<Vec<Sort>, SearchError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.rsplit_once(':') {
            Some((f, o)) => parse_sort_entry(&json!({f: o})),
            None => parse_sort_entry(&json!(p)),
        })
        .collect()
}

/// The sort key of one document for one sort field (None = missing).
pub(super) fn sort_key(s: &Sort, doc: &Doc, pos: usize, score: f64) -> Option<Key> {
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
pub(super) fn cmp_keys(sort: &[Sort], a: &[Option<Key>], b: &[Option<Key>]) -> Ordering {
    sort.iter()
        .zip(a.iter().zip(b.iter()))
        .fold(Ordering::Equal, |acc, (s, (x, y))| {
            acc.then_with(|| cmp_one(s, x, y))
        })
}

pub(super) fn sort_value_json(s: &Sort, k: &Option<Key>) -> Value {
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

pub(super) fn after_key(s: &Sort, v: &Value) -> Result<Option<Key>, SearchError> {
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
