//! `_search` and `_count` over the alert store: the query DSL subset (`bool`, `range` with
//! date math, `term`, `terms`, `exists`, `ids`, `match_all`, `constant_score`), `sort` with
//! `search_after`, `from`/`size`, `_source` filtering and `terms`/metric aggregations.
//! Anything else is refused with an OpenSearch-style 400, never answered approximately.

mod aggs;
mod execute;
mod fields;
mod query;
mod request;
mod sort;
mod source;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use aggs::Agg;
use fields::Key;
use query::Query;
pub use request::SEARCH_URL_PARAMS;
use sort::Sort;
use source::SourceFilter;

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
