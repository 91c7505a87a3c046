//! The alert store behind the simulated indexer: documents of the daily
//! `wazuh-alerts-4.x-YYYY.MM.DD` indices (chosen by the alert timestamp) with their `_id`, in
//! insertion order (which also plays the part of Lucene's doc order).

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::clock;
use super::indexer::SearchCache;
use super::rng::SimRng;

pub const ALERTS_PREFIX: &str = "wazuh-alerts-4.x-";

#[derive(Debug, Clone)]
pub struct Doc {
    pub index: String,
    pub id: String,
    pub source: Value,
    /// `timestamp` in epoch milliseconds, parsed once at insert (ranges and sorts on it
    /// read this instead of re-parsing the string for every document of every query).
    pub ts_ms: Option<i64>,
}

pub struct AlertIndex {
    /// Append-only: [`AlertIndex::insert`] is the only writer (it also resets `search_cache`).
    pub docs: Vec<Doc>,
    /// Sort orders and totals the search derived from `docs`; emptied on every insert.
    pub search_cache: Mutex<SearchCache>,
    /// The indices of `docs`, kept on insert (every search resolves its targets from them).
    names: BTreeSet<String>,
    rng: SimRng,
}

impl AlertIndex {
    pub fn new(seed: u64) -> Self {
        Self {
            docs: Vec::new(),
            search_cache: Mutex::default(),
            names: BTreeSet::new(),
            rng: SimRng::new(seed ^ 0x1D5),
        }
    }

    /// Index one alert (objects only); an alert without `timestamp` gets "now".
    pub fn insert(&mut self, mut source: Value) -> bool {
        let Some(obj) = source.as_object_mut() else {
            return false;
        };
        if !obj.contains_key("timestamp") {
            obj.insert("timestamp".into(), json!(clock::alert_ts(clock::now())));
        }
        let ts = obj
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(clock::parse_date_millis);
        let day = clock::index_day(ts.map(clock::from_millis).unwrap_or_else(clock::now));
        *self
            .search_cache
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = SearchCache::default();
        let index = format!("{ALERTS_PREFIX}{day}");
        if !self.names.contains(&index) {
            self.names.insert(index.clone());
        }
        self.docs.push(Doc {
            index,
            id: self.rng.doc_id(),
            source,
            ts_ms: ts,
        });
        true
    }

    pub fn index_names(&self) -> BTreeSet<String> {
        self.names.clone()
    }
}
