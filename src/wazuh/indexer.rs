//! Client for the Wazuh indexer (OpenSearch): basic auth on every request, cluster health,
//! and typed `_search` over `wazuh-alerts-*` with bounded page sizes.

use std::time::Duration;

use serde_json::Value;

use super::WazuhError;
use super::tls::http_client;
use super::types::{IndexerHealth, Obj};
use crate::config::{IndexerConfig, Secret};

/// The alerts index pattern of Wazuh 4.x.
pub const ALERTS_INDEX: &str = "wazuh-alerts-*";
/// Largest page we ask for (OpenSearch refuses more than 10,000 without scrolling).
pub const MAX_PAGE: usize = 1000;

pub struct IndexerClient {
    base: String,
    user: String,
    password: Option<Secret>,
    http: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for IndexerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexerClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A `_search` answer, kept as JSON with typed accessors.
#[derive(Debug, Clone)]
pub struct SearchResponse(pub Value);

impl SearchResponse {
    pub fn total(&self) -> u64 {
        let t = Obj(&self.0).obj("hits").obj("total");
        t.u64("value")
            .or_else(|| Obj(&self.0).obj("hits").u64("total"))
            .unwrap_or(0)
    }
    /// Each hit as (`_id`, `_source`, `sort`).
    pub fn hits(&self) -> Vec<(String, Value, Vec<Value>)> {
        match self.0.get("hits").and_then(|h| h.get("hits")) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|h| {
                    (
                        Obj(h).str("_id").unwrap_or_default(),
                        h.get("_source").cloned().unwrap_or(Value::Null),
                        match h.get("sort") {
                            Some(Value::Array(s)) => s.clone(),
                            _ => Vec::new(),
                        },
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }
    /// Buckets of a `terms` aggregation: (key, doc_count).
    pub fn buckets(&self, agg: &str) -> Vec<(String, u64)> {
        match self
            .0
            .get("aggregations")
            .and_then(|a| a.get(agg))
            .and_then(|a| a.get("buckets"))
        {
            Some(Value::Array(b)) => b
                .iter()
                .filter_map(|b| Some((Obj(b).str("key")?, Obj(b).u64("doc_count").unwrap_or(0))))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl IndexerClient {
    pub fn new(cfg: &IndexerConfig, insecure: bool, timeout: Duration) -> Result<Self, WazuhError> {
        Ok(Self {
            base: cfg.url.trim_end_matches('/').to_string(),
            user: cfg.login.user.clone(),
            password: cfg.login.password.clone(),
            http: http_client("Wazuh indexer", cfg.ca_file.as_deref(), insecure, timeout)?,
            timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn send(&self, what: &str, rb: reqwest::RequestBuilder) -> Result<Value, WazuhError> {
        let rb = rb.basic_auth(&self.user, self.password.as_ref().map(|p| p.expose()));
        let resp = rb
            .send()
            .await
            .map_err(|e| WazuhError::from_reqwest(what, &e, self.timeout))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| WazuhError::from_reqwest(what, &e, self.timeout))?;
        let body: Result<Value, _> = serde_json::from_slice(&bytes);
        if status.is_success() {
            return body.map_err(|e| WazuhError::Decode {
                what: what.to_string(),
                reason: format!("invalid JSON ({e})"),
            });
        }
        let body = body.unwrap_or(Value::Null);
        // OpenSearch errors: {"error": {"root_cause": [{"type","reason"}], "type", "reason"}, "status"}
        let err = Obj(&body).obj("error");
        let reason = err
            .str("reason")
            .or_else(|| {
                body.get("error")
                    .and_then(|e| e.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| status.to_string());
        let reason = crate::util::sanitize_untrusted(reason.as_bytes(), 300);
        match status.as_u16() {
            401 => Err(WazuhError::Unauthorized {
                what: what.to_string(),
                detail: reason,
            }),
            403 => Err(WazuhError::Forbidden {
                what: what.to_string(),
                detail: reason,
            }),
            s => Err(WazuhError::Api {
                what: what.to_string(),
                status: s,
                code: None,
                title: err
                    .str("type")
                    .unwrap_or_else(|| "indexer error".to_string()),
                detail: reason,
                remediation: None,
            }),
        }
    }

    /// `GET /_cluster/health`.
    pub async fn health(&self) -> Result<IndexerHealth, WazuhError> {
        let what = "Wazuh indexer GET /_cluster/health";
        let body = self
            .send(
                what,
                self.http.get(format!("{}/_cluster/health", self.base)),
            )
            .await?;
        Ok(IndexerHealth::parse(&body))
    }

    /// `POST /{index}/_search` with a query body (the caller bounds `size`).
    pub async fn search(&self, index: &str, body: &Value) -> Result<SearchResponse, WazuhError> {
        let what = format!("Wazuh indexer POST /{index}/_search");
        if body.get("size").and_then(|s| s.as_u64()).unwrap_or(10) > MAX_PAGE as u64 {
            return Err(WazuhError::Config {
                what,
                reason: format!("page size above {MAX_PAGE}; page with search_after instead"),
            });
        }
        let url = format!("{}/{}/_search", self.base, index);
        let v = self.send(&what, self.http.post(url).json(body)).await?;
        Ok(SearchResponse(v))
    }
}

/// A typed query over `wazuh-alerts-*`: a time range, a minimum rule level, agents and
/// rule groups, sorted by time (then `_id`) so pages can continue with `search_after`,
/// plus optional `terms` aggregations. Builds the OpenSearch body; nothing else.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// Inclusive lower bound: RFC 3339 or date math such as `now-24h`.
    pub since: Option<String>,
    /// Exclusive upper bound.
    pub until: Option<String>,
    pub min_level: Option<u32>,
    pub agent_ids: Vec<String>,
    /// Any of these rule groups.
    pub groups: Vec<String>,
    /// Page size (1..=MAX_PAGE; default 100).
    pub size: usize,
    /// Continue after this hit's `sort` values.
    pub search_after: Option<Vec<Value>>,
    /// `terms` aggregations: (name, field, number of buckets).
    pub terms: Vec<(String, String, usize)>,
    /// Oldest first (for ingesting) or newest first.
    pub ascending: bool,
}

impl AlertQuery {
    pub fn to_body(&self) -> Value {
        use serde_json::json;
        let mut filter = Vec::new();
        if self.since.is_some() || self.until.is_some() {
            let mut range = serde_json::Map::new();
            if let Some(s) = &self.since {
                range.insert("gte".into(), json!(s));
            }
            if let Some(u) = &self.until {
                range.insert("lt".into(), json!(u));
            }
            filter.push(json!({ "range": { "timestamp": range } }));
        }
        if let Some(l) = self.min_level {
            filter.push(json!({ "range": { "rule.level": { "gte": l } } }));
        }
        if !self.agent_ids.is_empty() {
            filter.push(json!({ "terms": { "agent.id": self.agent_ids } }));
        }
        if !self.groups.is_empty() {
            filter.push(json!({ "terms": { "rule.groups": self.groups } }));
        }
        let order = if self.ascending { "asc" } else { "desc" };
        let size = if self.size == 0 {
            100
        } else {
            self.size.min(MAX_PAGE)
        };
        let mut body = json!({
            "size": size,
            "query": { "bool": { "filter": filter } },
            "sort": [ { "timestamp": { "order": order } }, { "_id": { "order": order } } ],
            "track_total_hits": true,
        });
        if let Some(after) = &self.search_after {
            body["search_after"] = json!(after);
        }
        if !self.terms.is_empty() {
            let mut aggs = serde_json::Map::new();
            for (name, field, n) in &self.terms {
                aggs.insert(
                    name.clone(),
                    json!({ "terms": { "field": field, "size": n } }),
                );
            }
            body["aggs"] = Value::Object(aggs);
        }
        body
    }
}

impl IndexerClient {
    /// One page of alerts matching `q` from `wazuh-alerts-*`.
    pub async fn search_alerts(&self, q: &AlertQuery) -> Result<SearchResponse, WazuhError> {
        self.search(ALERTS_INDEX, &q.to_body()).await
    }
}
