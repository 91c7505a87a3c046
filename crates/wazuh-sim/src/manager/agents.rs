//! Agents: `GET /agents` (filters, `q`, `search`, `select`, `sort`, paging),
//! `GET /agents/summary/status`, and `PUT /active-response`, which records the command for
//! tests and answers per agent the way the API does (sent, not found, not active).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::super::Shared;
use super::super::clock;
use super::super::state::{ActiveResponseRecord, AgentStatus};
use super::auth::Authed;
use super::error::{ApiError, failed_items};
use super::params::{self, Params};
use super::{Messages, items_envelope, json_body, ok};

const STATUSES: &[&str] = &["active", "pending", "never_connected", "disconnected"];

/// Every field an agent can have (select/sort/q accept these).
const AGENT_FIELDS: &[&str] = &[
    "id",
    "name",
    "ip",
    "registerIP",
    "status",
    "status_code",
    "os",
    "os.arch",
    "os.codename",
    "os.major",
    "os.minor",
    "os.name",
    "os.platform",
    "os.uname",
    "os.version",
    "version",
    "node_name",
    "manager",
    "dateAdd",
    "lastKeepAlive",
    "group",
    "configSum",
    "mergedSum",
    "group_config_status",
];

fn check_ids(ids: &[String]) -> Result<(), ApiError> {
    for id in ids {
        if id.len() < 3 {
            return Err(ApiError::bad_request(format!(
                "'{id}' is too short - 'agents_list'"
            )));
        }
        if !id.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ApiError::bad_request(format!(
                "'{id}' is not a 'numbers' - 'agents_list'"
            )));
        }
    }
    Ok(())
}

/// `older_than`: seconds, or `Nd`, `Nh`, `Nm`, `Ns`.
fn timeframe(v: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::wazuh(1411, Some(v));
    let (num, mult) = match v.as_bytes().last() {
        Some(b'd') => (&v[..v.len() - 1], 86_400),
        Some(b'h') => (&v[..v.len() - 1], 3_600),
        Some(b'm') => (&v[..v.len() - 1], 60),
        Some(b's') => (&v[..v.len() - 1], 1),
        _ => (v, 1),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| n * mult)
        .ok_or_else(bad)
}

fn normalize_version(v: &str) -> String {
    let v = v.trim().to_ascii_lowercase();
    let v = v.strip_prefix("wazuh ").unwrap_or(&v);
    let v = v.strip_prefix('v').unwrap_or(v);
    format!("wazuh v{v}")
}

/// `GET /agents`
pub async fn list(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(
        query.as_deref(),
        &[
            "pretty",
            "wait_for_complete",
            "agents_list",
            "offset",
            "limit",
            "select",
            "sort",
            "search",
            "status",
            "q",
            "older_than",
            "os.platform",
            "os.version",
            "os.name",
            "manager",
            "version",
            "group",
            "node_name",
            "name",
            "ip",
            "registerIP",
            "group_config_status",
            "distinct",
        ],
    )?;
    let offset = p.int("offset", 0, 0, None)?;
    let limit = p.int("limit", 500, 1, Some(100_000))?;
    let statuses = p.enum_list("status", STATUSES)?;
    if let Some(g) = p.get("group_config_status")
        && g != "synced"
        && g != "not synced"
    {
        return Err(ApiError::bad_request(format!(
            "'{g}' is not one of ['synced', 'not synced'] - 'group_config_status'"
        )));
    }
    let older_than = p.get("older_than").map(timeframe).transpose()?;
    let now = clock::now();
    let (mut items, failures) = {
        let st = shared.state();
        let mut failures = Vec::new();
        let selected: Vec<&super::super::state::Agent> = match p.list("agents_list") {
            Some(ids) => {
                check_ids(&ids)?;
                let mut out = Vec::new();
                for id in &ids {
                    match st.agents.iter().find(|a| &a.id == id) {
                        Some(a) => out.push(a),
                        None => failures.push((1701, json!(id))),
                    }
                }
                out
            }
            None => st.agents.iter().collect(),
        };
        let items: Vec<Value> = selected
            .into_iter()
            .filter(|a| older_than.is_none_or(|secs| a.id != "000" && a.quiet_secs(now) >= secs))
            .map(|a| a.to_json(now))
            .collect();
        (items, failures)
    };
    let eq_filters = [
        "os.platform",
        "os.version",
        "os.name",
        "manager",
        "node_name",
        "name",
        "ip",
        "registerIP",
        "group_config_status",
    ];
    for f in eq_filters {
        if let Some(want) = p.get(f) {
            items.retain(|i| params::get_path(i, f).and_then(Value::as_str) == Some(want));
        }
    }
    if let Some(st) = &statuses {
        items.retain(|i| {
            i["status"]
                .as_str()
                .is_some_and(|s| st.iter().any(|w| w == s))
        });
    }
    if let Some(g) = p.get("group") {
        items.retain(|i| {
            i["group"]
                .as_array()
                .is_some_and(|gs| gs.iter().any(|x| x == g))
        });
    }
    if let Some(v) = p.get("version") {
        let want = normalize_version(v);
        items.retain(|i| {
            i["version"]
                .as_str()
                .is_some_and(|have| have.to_ascii_lowercase() == want)
        });
    }
    let valid: Vec<String> = AGENT_FIELDS.iter().map(|s| s.to_string()).collect();
    let (page, total) = params::list_query(items, &p, &valid, &["id"], offset, limit)?;
    let (failed, total_failed) = failed_items(failures);
    Ok(ok(items_envelope(
        page,
        total,
        failed,
        total_failed,
        &Messages {
            all: "All selected agents information was returned",
            some: "Some agents information was not returned",
            none: "No agent information was returned",
        },
    )))
}

/// `GET /agents/summary/status`
pub async fn summary(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), &["pretty", "wait_for_complete"])?;
    let st = shared.state();
    let count = |s: AgentStatus| st.agents.iter().filter(|a| a.status == s).count();
    let not_synced = st
        .agents
        .iter()
        .filter(|a| a.group_config_status == Some("not synced"))
        .count();
    let total = st.agents.len();
    Ok(ok(json!({
        "data": {
            "connection": {
                "active": count(AgentStatus::Active),
                "disconnected": count(AgentStatus::Disconnected),
                "never_connected": count(AgentStatus::NeverConnected),
                "pending": count(AgentStatus::Pending),
                "total": total,
            },
            "configuration": {
                "synced": total - not_synced,
                "not_synced": not_synced,
                "total": total,
            },
        },
        "error": 0,
    })))
}

/// `PUT /active-response`: send a command to `agents_list` (all agents by default).
pub async fn active_response(
    State(shared): State<Arc<Shared>>,
    auth: Authed,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(
        query.as_deref(),
        &["agents_list", "pretty", "wait_for_complete"],
    )?;
    let body = json_body(&headers, &body)?;
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad_request(format!(
            "{body} is not of type 'object'"
        )));
    };
    let command = match obj.get("command") {
        None => {
            return Err(ApiError::bad_request("'command' is a required property"));
        }
        Some(Value::String(c)) if !c.trim().is_empty() => c.clone(),
        Some(Value::String(_)) => return Err(ApiError::wazuh(1650, None)),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{other} is not of type 'string' - 'command'"
            )));
        }
    };
    let arguments = match obj.get("arguments") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{other} is not of type 'array' of 'string' - 'arguments'"
            )));
        }
    };
    let alert = obj.get("alert").cloned();
    let wanted = p.list("agents_list");
    if let Some(ids) = &wanted {
        check_ids(ids)?;
    }
    let mut st = shared.state();
    let ids: Vec<String> = match wanted {
        Some(ids) => ids,
        None => st
            .agents
            .iter()
            .filter(|a| a.id != "000")
            .map(|a| a.id.clone())
            .collect(),
    };
    let mut sent = Vec::new();
    let mut failures = Vec::new();
    for id in ids {
        match st.agents.iter().find(|a| a.id == id) {
            None => failures.push((1701, json!(id))),
            Some(a) if a.id == "000" => failures.push((1703, json!(id))),
            Some(a) if a.status != AgentStatus::Active => failures.push((1707, json!(id))),
            Some(a) => sent.push(a.id.clone()),
        }
    }
    if !sent.is_empty() {
        st.active_responses.push(ActiveResponseRecord {
            command,
            arguments,
            alert,
            agents: sent.clone(),
            user: auth.user.username.clone(),
            at: clock::now(),
        });
    }
    let (failed, total_failed) = failed_items(failures);
    let n = sent.len();
    Ok(ok(items_envelope(
        sent.into_iter().map(Value::String).collect(),
        n,
        failed,
        total_failed,
        &Messages {
            all: "AR command was sent to all agents",
            some: "AR command was not sent to some agents",
            none: "AR command was not sent to any agent",
        },
    )))
}
