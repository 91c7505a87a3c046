//! Tolerant views of Wazuh responses. Real deployments return missing fields, nulls,
//! numbers as strings and agent ids above 999 across 4.x versions, so every type is read
//! field by field from JSON: a field that cannot be read is `None`, and an item that cannot
//! be read at all is counted as degraded instead of failing the whole call.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Field access that never fails: strings, numbers-as-strings, yes/no booleans.
#[derive(Clone, Copy)]
pub struct Obj<'a>(pub &'a Value);

impl<'a> Obj<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }
    pub fn obj(&self, key: &str) -> Obj<'a> {
        static NULL: Value = Value::Null;
        Obj(self.get(key).unwrap_or(&NULL))
    }
    /// A string, or a number rendered as a string.
    pub fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    /// A non-negative integer, from a number or a numeric string.
    pub fn u64(&self, key: &str) -> Option<u64> {
        as_u64(self.get(key)?)
    }
    /// `true`/`false`, `"yes"`/`"no"`, `"enabled"`/`"disabled"`, 1/0.
    pub fn flag(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_u64().map(|n| n != 0),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "enabled" | "running" | "1" => Some(true),
                "no" | "false" | "disabled" | "stopped" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }
}

pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `data.affected_items` parsed item by item.
#[derive(Debug, Clone)]
pub struct Items<T> {
    pub items: Vec<T>,
    pub total_affected: u64,
    pub failed: Vec<Value>,
    /// Items present but unreadable.
    pub degraded: usize,
}

impl<T> Items<T> {
    pub fn parse(data: &Value, mut f: impl FnMut(Obj<'_>) -> Option<T>) -> Self {
        let d = Obj(data);
        let raw = match d.get("affected_items") {
            Some(Value::Array(a)) => a.as_slice(),
            _ => &[],
        };
        let mut items = Vec::with_capacity(raw.len());
        let mut degraded = 0;
        for v in raw {
            match f(Obj(v)) {
                Some(t) => items.push(t),
                None => degraded += 1,
            }
        }
        let failed = match d.get("failed_items") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        Items {
            total_affected: d.u64("total_affected_items").unwrap_or(items.len() as u64),
            items,
            failed,
            degraded,
        }
    }
}

/// One entry of `data.failed_items` (Wazuh's `SimpleApiError`): the ids it concerns and
/// why they failed. The message is remote text: sanitise it before showing it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedItem {
    /// The failed ids, as strings (numbers and other values as their JSON text).
    pub ids: Vec<String>,
    pub code: Option<i64>,
    pub message: Option<String>,
}

impl FailedItem {
    pub fn parse(v: &Value) -> Self {
        FailedItem {
            ids: v
                .get("id")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|id| {
                    id.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| id.to_string())
                })
                .collect(),
            code: v.pointer("/error/code").and_then(Value::as_i64),
            message: v
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }

    /// Every entry of `data.failed_items`.
    pub fn list(data: &Value) -> Vec<Self> {
        match Obj(data).get("failed_items") {
            Some(Value::Array(a)) => a.iter().map(Self::parse).collect(),
            _ => Vec::new(),
        }
    }
}

/// `GET /`
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ApiInfo {
    pub api_version: Option<String>,
    pub revision: Option<String>,
    pub hostname: Option<String>,
    pub timestamp: Option<String>,
}

impl ApiInfo {
    pub fn parse(body: &Value) -> Self {
        // 4.x wraps it in `data`; very old versions did not.
        let o = if body.get("data").is_some() {
            Obj(body).obj("data")
        } else {
            Obj(body)
        };
        ApiInfo {
            api_version: o.str("api_version"),
            revision: o.str("revision"),
            hostname: o.str("hostname"),
            timestamp: o.str("timestamp"),
        }
    }
}

/// `GET /manager/info` (first item).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ManagerInfo {
    pub version: Option<String>,
    pub kind: Option<String>,
    pub tz_name: Option<String>,
    pub uuid: Option<String>,
}

impl ManagerInfo {
    pub fn parse(o: Obj<'_>) -> Option<Self> {
        o.0.is_object().then(|| ManagerInfo {
            version: o.str("version"),
            kind: o.str("type"),
            tz_name: o.str("tz_name"),
            uuid: o.str("uuid"),
        })
    }
}

/// `GET /manager/status`: daemon name -> state (`running`, `stopped`, `failed`, ...).
pub fn parse_daemons(data: &Value) -> (BTreeMap<String, String>, usize) {
    let mut out = BTreeMap::new();
    let mut degraded = 0;
    if let Some(Value::Array(items)) = data.get("affected_items") {
        for item in items {
            match item.as_object() {
                Some(map) => {
                    for (name, state) in map {
                        match state {
                            Value::String(s) => {
                                out.insert(name.clone(), s.clone());
                            }
                            _ => degraded += 1,
                        }
                    }
                }
                None => degraded += 1,
            }
        }
    }
    (out, degraded)
}

/// One node of `GET /manager/configuration/validation`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ConfigValidation {
    pub name: String,
    pub status: String,
    pub details: Vec<String>,
}

impl ConfigValidation {
    pub fn parse(o: Obj<'_>) -> Option<Self> {
        Some(ConfigValidation {
            name: o.str("name").unwrap_or_else(|| "manager".to_string()),
            status: o.str("status")?,
            details: o.strings("details"),
        })
    }
    pub fn ok(&self) -> bool {
        self.status.eq_ignore_ascii_case("OK")
    }
}

/// `GET /cluster/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ClusterStatus {
    pub enabled: Option<bool>,
    pub running: Option<bool>,
}

impl ClusterStatus {
    pub fn parse(data: &Value) -> Self {
        let o = Obj(data);
        ClusterStatus {
            enabled: o.flag("enabled"),
            running: o.flag("running"),
        }
    }
}

/// One node of `GET /cluster/healthcheck`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NodeHealth {
    pub name: String,
    pub node_type: Option<String>,
    pub version: Option<String>,
    pub ip: Option<String>,
    pub active_agents: Option<u64>,
    pub last_keep_alive: Option<String>,
}

impl NodeHealth {
    pub fn parse(o: Obj<'_>) -> Option<Self> {
        let info = o.obj("info");
        Some(NodeHealth {
            name: info.str("name")?,
            node_type: info.str("type"),
            version: info.str("version"),
            ip: info.str("ip"),
            active_agents: info.u64("n_active_agents"),
            last_keep_alive: o.obj("status").str("last_keep_alive"),
        })
    }
}

/// `GET /agents/summary/status` (the `connection` part; flat in older 4.x).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentsSummary {
    pub active: u64,
    pub disconnected: u64,
    pub never_connected: u64,
    pub pending: u64,
    pub total: u64,
}

impl AgentsSummary {
    pub fn parse(data: &Value) -> Option<Self> {
        let d = Obj(data);
        let c = if d.get("connection").is_some() {
            d.obj("connection")
        } else {
            d
        };
        let active = c.u64("active")?;
        let disconnected = c.u64("disconnected").unwrap_or(0);
        let never_connected = c.u64("never_connected").unwrap_or(0);
        let pending = c.u64("pending").unwrap_or(0);
        Some(AgentsSummary {
            active,
            disconnected,
            never_connected,
            pending,
            total: c
                .u64("total")
                .unwrap_or(active + disconnected + never_connected + pending),
        })
    }
}

/// One agent of `GET /agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Agent {
    /// Zero-padded as Wazuh prints it (`001`, `1001`).
    pub id: String,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub status: Option<String>,
    pub version: Option<String>,
    pub last_keep_alive: Option<String>,
    pub os: Option<String>,
    pub node_name: Option<String>,
    pub groups: Vec<String>,
}

impl Agent {
    pub fn parse(o: Obj<'_>) -> Option<Self> {
        let id = match o.get("id")? {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => format!("{:03}", n.as_u64()?),
            _ => return None,
        };
        let os = o.obj("os");
        let os_text = match (os.str("name"), os.str("version")) {
            (Some(n), Some(v)) => Some(format!("{n} {v}")),
            (Some(n), None) => Some(n),
            _ => os.str("platform"),
        };
        Some(Agent {
            id,
            name: o.str("name"),
            ip: o.str("ip"),
            status: o.str("status"),
            version: o.str("version"),
            last_keep_alive: o.str("lastKeepAlive"),
            os: os_text,
            node_name: o.str("node_name"),
            groups: o.strings("group"),
        })
    }
}

/// Counts per level for one log tag (`GET /manager/logs/summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogCounts {
    pub all: u64,
    pub info: u64,
    pub warning: u64,
    pub error: u64,
    pub critical: u64,
    pub debug: u64,
}

pub fn parse_log_summary(data: &Value) -> (BTreeMap<String, LogCounts>, usize) {
    let mut out = BTreeMap::new();
    let mut degraded = 0;
    if let Some(Value::Array(items)) = data.get("affected_items") {
        for item in items {
            let Some(map) = item.as_object() else {
                degraded += 1;
                continue;
            };
            for (tag, counts) in map {
                if !counts.is_object() {
                    degraded += 1;
                    continue;
                }
                let c = Obj(counts);
                out.insert(
                    tag.clone(),
                    LogCounts {
                        all: c.u64("all").unwrap_or(0),
                        info: c.u64("info").unwrap_or(0),
                        warning: c.u64("warning").unwrap_or(0),
                        error: c.u64("error").unwrap_or(0),
                        critical: c.u64("critical").unwrap_or(0),
                        debug: c.u64("debug").unwrap_or(0),
                    },
                );
            }
        }
    }
    (out, degraded)
}

/// One entry of `GET /manager/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogEntry {
    pub timestamp: Option<String>,
    pub tag: Option<String>,
    pub level: Option<String>,
    pub description: String,
}

impl LogEntry {
    pub fn parse(o: Obj<'_>) -> Option<Self> {
        Some(LogEntry {
            timestamp: o.str("timestamp"),
            tag: o.str("tag"),
            level: o.str("level"),
            description: o.str("description")?.trim().to_string(),
        })
    }
}

/// `GET /_cluster/health` of the indexer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct IndexerHealth {
    pub cluster_name: Option<String>,
    pub status: Option<String>,
    pub number_of_nodes: Option<u64>,
    pub unassigned_shards: Option<u64>,
    pub active_shards_percent: Option<f64>,
}

impl IndexerHealth {
    pub fn parse(body: &Value) -> Self {
        let o = Obj(body);
        IndexerHealth {
            cluster_name: o.str("cluster_name"),
            status: o.str("status").map(|s| s.to_ascii_lowercase()),
            number_of_nodes: o.u64("number_of_nodes"),
            unassigned_shards: o.u64("unassigned_shards"),
            active_shards_percent: o
                .get("active_shards_percent_as_number")
                .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agents_tolerate_numbers_strings_nulls_and_big_ids() {
        let data = json!({"affected_items": [
            {"id": "000", "name": "wazuh-manager", "status": "active", "os": {"name": "Ubuntu", "version": "22.04"}},
            {"id": 1001, "name": null, "status": "disconnected", "group": "default"},
            {"id": 7, "ip": 10},
            {"name": "no id"},
            "garbage"
        ], "total_affected_items": "5", "failed_items": [], "total_failed_items": 0});
        let items = Items::parse(&data, Agent::parse);
        assert_eq!(items.items.len(), 3);
        assert_eq!(items.degraded, 2);
        assert_eq!(items.total_affected, 5);
        assert_eq!(items.items[0].os.as_deref(), Some("Ubuntu 22.04"));
        assert_eq!(items.items[1].id, "1001");
        assert_eq!(items.items[1].name, None);
        assert_eq!(items.items[1].groups, vec!["default"]);
        assert_eq!(items.items[2].id, "007");
        assert_eq!(items.items[2].ip.as_deref(), Some("10"));
    }

    #[test]
    fn summary_accepts_nested_and_flat_shapes() {
        let nested = json!({"connection": {"active": "8", "disconnected": 1, "never_connected": 3, "pending": 0, "total": 12}});
        let flat = json!({"active": 8, "disconnected": 1, "never_connected": 3});
        let a = AgentsSummary::parse(&nested).unwrap();
        let b = AgentsSummary::parse(&flat).unwrap();
        assert_eq!(a.active, 8);
        assert_eq!(a.total, 12);
        assert_eq!(b.total, 12);
        assert!(AgentsSummary::parse(&json!({"connection": {}})).is_none());
    }

    #[test]
    fn daemons_and_log_summary_skip_bad_entries() {
        let (d, bad) = parse_daemons(
            &json!({"affected_items": [{"wazuh-db": "running", "wazuh-maild": "stopped", "x": 3}]}),
        );
        assert_eq!(d.len(), 2);
        assert_eq!(bad, 1);
        let (s, bad) = parse_log_summary(&json!({"affected_items": [
            {"wazuh-db": {"all": "4", "error": 3, "info": 1}},
            {"wazuh-remoted": null}
        ]}));
        assert_eq!(s["wazuh-db"].error, 3);
        assert_eq!(s["wazuh-db"].all, 4);
        assert_eq!(bad, 1);
    }

    #[test]
    fn cluster_flags_read_yes_no() {
        let c = ClusterStatus::parse(&json!({"enabled": "yes", "running": "no"}));
        assert_eq!(c.enabled, Some(true));
        assert_eq!(c.running, Some(false));
    }
}
