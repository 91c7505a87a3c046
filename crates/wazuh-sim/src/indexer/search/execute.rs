//! Running a parsed search: the general path (match, select the window, sort) and the fast
//! path over a cached order for searches paged by `timestamp` / `_id`; the response body.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::aggs::run_aggs;
use super::fields::Key;
use super::query::{matches, scoring};
use super::sort::{SortField, after_key, cmp_keys, sort_key, sort_value_json};
use super::source::filter_obj;
use super::{SearchError, SearchRequest, TrackTotal};
use crate::index::{AlertIndex, Doc};

impl SearchRequest {
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
