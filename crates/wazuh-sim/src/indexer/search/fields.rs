//! Field typing and values: the `wazuh-alerts-4.x` template's types that matter, and a
//! document's comparable values ([`Key`]) at a dotted path.

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::clock;
use crate::index::Doc;

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
    pub(super) fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Key::Str(a), Key::Str(b)) => a.cmp(b),
            (Key::Num(_), Key::Str(_)) => Ordering::Less,
            (Key::Str(_), Key::Num(_)) => Ordering::Greater,
        }
    }

    pub(super) fn to_json(&self, ft: FieldType) -> Value {
        match self {
            Key::Num(n) if ft == FieldType::Date || ft == FieldType::Long => json!(*n as i64),
            Key::Num(n) => json!(n),
            Key::Str(s) => json!(s),
        }
    }
}

/// The typed value of a document value (None when it cannot be read as the field's type).
pub(super) fn typed(ft: FieldType, v: &Value) -> Option<Key> {
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
pub(super) fn values<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
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
pub(super) fn doc_keys(doc: &Doc, field: &str) -> Vec<Key> {
    match doc.ts_ms {
        Some(ms) if field == "timestamp" => vec![Key::Num(ms as f64)],
        _ => keys(&doc.source, field),
    }
}

pub(super) fn keys(doc: &Value, field: &str) -> Vec<Key> {
    let ft = field_type(field);
    values(doc, field)
        .into_iter()
        .filter_map(|v| typed(ft, v))
        .collect()
}
