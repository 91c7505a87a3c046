//! API, manager and cluster information: `GET /`, `/manager/status`, `/manager/info`,
//! `/manager/configuration/validation`, `/manager/logs`, `/manager/logs/summary`,
//! `/cluster/status` and `/cluster/healthcheck`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{Map, Value, json};
use time::Duration;

use super::super::Shared;
use super::super::clock;
use super::super::state::{
    API_VERSION, AgentStatus, MANAGER_HOST, MASTER_NODE, WAZUH_VERSION, WORKER_NODE,
};
use super::auth::Authed;
use super::error::{ApiError, failed_item};
use super::params::{self, Params};
use super::{Messages, items_envelope, ok};

const PW: &[&str] = &["pretty", "wait_for_complete"];

/// `GET /`
pub async fn api_info(
    State(_shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), &["pretty"])?;
    Ok(ok(json!({
        "data": {
            "title": "Wazuh API REST",
            "api_version": API_VERSION,
            "revision": "rc1",
            "license_name": "GPL 2.0",
            "license_url": format!("https://github.com/wazuh/wazuh/blob/{WAZUH_VERSION}/LICENSE"),
            "hostname": MANAGER_HOST,
            "timestamp": clock::wazuh_z(clock::now()),
        },
        "error": 0,
    })))
}

fn single(item: Value, message: &'static str) -> Value {
    items_envelope(
        vec![item],
        1,
        vec![],
        0,
        &Messages {
            all: message,
            some: message,
            none: message,
        },
    )
}

/// `GET /manager/status`: the 16 daemons and their states.
pub async fn status(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), PW)?;
    let mut daemons = Map::new();
    for (name, state) in shared.faults.daemon_states() {
        daemons.insert(name.into(), json!(state));
    }
    Ok(ok(single(
        Value::Object(daemons),
        "Processes status was successfully read in specified node",
    )))
}

/// `GET /manager/info`
pub async fn manager_info(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), PW)?;
    let s = shared.cfg.seed;
    let uuid = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        (s >> 32) as u32 ^ 0x5A17_C0DE,
        (s & 0xFFFF) as u16,
        (s >> 16) & 0xFFF,
        (s >> 28) & 0xFFF,
        s.wrapping_mul(0x9E37_79B9) & 0xFFFF_FFFF_FFFF
    );
    Ok(ok(single(
        json!({
            "path": "/var/ossec",
            "version": WAZUH_VERSION,
            "type": "server",
            "max_agents": "unlimited",
            "openssl_support": "yes",
            "tz_offset": "+0000",
            "tz_name": "UTC",
            "uuid": uuid,
        }),
        "Basic information was successfully read in specified node",
    )))
}

/// `GET /manager/configuration/validation`: OK, or a failed item (error 1908) while the
/// `config_invalid` knob is set.
pub async fn validation(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), PW)?;
    let msgs = Messages {
        all: "Validation was successfully checked in specified node",
        some: "Validation could not be checked in some nodes",
        none: "Validation could not be checked in specified node",
    };
    let body = if shared.faults.is_config_invalid() {
        items_envelope(
            vec![],
            0,
            vec![failed_item(
                1908,
                Some(
                    "(1230): Invalid element in the configuration: 'remote_port'. (1202): Configuration error at 'etc/ossec.conf'.",
                ),
                vec![json!(MASTER_NODE)],
            )],
            1,
            &msgs,
        )
    } else {
        items_envelope(
            vec![json!({"name": MASTER_NODE, "status": "OK"})],
            1,
            vec![],
            0,
            &msgs,
        )
    };
    Ok(ok(body))
}

const LOG_LEVELS: &[&str] = &["critical", "debug", "debug2", "error", "info", "warning"];

/// `GET /manager/logs`: newest first, filtered by `level`, `tag`, `search`, `q`.
pub async fn logs(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(
        query.as_deref(),
        &[
            "pretty",
            "wait_for_complete",
            "offset",
            "limit",
            "sort",
            "search",
            "tag",
            "level",
            "q",
            "select",
            "distinct",
        ],
    )?;
    let offset = p.int("offset", 0, 0, None)?;
    let limit = p.int("limit", 500, 1, Some(500))?;
    let level = p.get("level");
    if let Some(l) = level
        && !LOG_LEVELS.contains(&l)
    {
        return Err(ApiError::bad_request(format!(
            "'{l}' is not one of {LOG_LEVELS:?} - 'level'"
        )));
    }
    let tag = p.get("tag");
    let level = level.filter(|_| !shared.faults.ignores_log_level_filter());
    let items: Vec<Value> = {
        let st = shared.state();
        st.logs
            .iter()
            .rev()
            .filter(|l| level.is_none_or(|lv| l.level.as_str() == lv))
            .filter(|l| tag.is_none_or(|t| l.tag == t))
            .map(|l| l.to_json())
            .collect()
    };
    let valid: Vec<String> = ["timestamp", "tag", "level", "description"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (page, total) = params::list_query(items, &p, &valid, &[], offset, limit)?;
    Ok(ok(items_envelope(
        page,
        total,
        vec![],
        0,
        &Messages {
            all: "Logs were successfully read in specified node",
            some: "Could not read logs in some nodes",
            none: "Could not read logs in specified node",
        },
    )))
}

/// `GET /manager/logs/summary`: per tag, counts by level over the last 2000 lines.
pub async fn logs_summary(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), PW)?;
    let mut per_tag: BTreeMap<&str, [u64; 6]> = BTreeMap::new();
    {
        let st = shared.state();
        for l in st.logs.iter().rev().take(2000) {
            let c = per_tag.entry(l.tag).or_insert([0; 6]);
            c[0] += 1;
            let slot = match l.level.as_str() {
                "info" => 1,
                "error" => 2,
                "critical" => 3,
                "warning" => 4,
                _ => 5,
            };
            c[slot] += 1;
        }
    }
    let items: Vec<Value> = per_tag
        .into_iter()
        .map(|(tag, c)| {
            json!({tag: {
                "all": c[0], "info": c[1], "error": c[2], "critical": c[3], "warning": c[4], "debug": c[5],
            }})
        })
        .collect();
    let n = items.len();
    Ok(ok(items_envelope(
        items,
        n,
        vec![],
        0,
        &Messages {
            all: "Log was successfully summarized in specified node",
            some: "Could not summarize the log in some nodes",
            none: "Could not summarize the log in specified node",
        },
    )))
}

fn cluster_running(shared: &Shared) -> bool {
    shared.faults.cluster_is_enabled()
        && shared.faults.daemon_running("wazuh-clusterd") == Some(true)
}

/// `GET /cluster/status`
pub async fn cluster_status(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), PW)?;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    Ok(ok(json!({
        "data": {
            "enabled": yes_no(shared.faults.cluster_is_enabled()),
            "running": yes_no(cluster_running(&shared)),
        },
        "error": 0,
    })))
}

/// `GET /cluster/healthcheck`: the master and one worker with its synchronisation status.
pub async fn healthcheck(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(
        query.as_deref(),
        &["pretty", "wait_for_complete", "nodes_list"],
    )?;
    if !cluster_running(&shared) {
        return Err(ApiError::wazuh(3013, None));
    }
    let now = clock::now();
    let (master_agents, worker_agents) = {
        let st = shared.state();
        let count = |node: &str| {
            st.agents
                .iter()
                .filter(|a| a.id != "000" && a.status == AgentStatus::Active && a.node_name == node)
                .count()
        };
        (count(MASTER_NODE), count(WORKER_NODE))
    };
    let version = API_VERSION;
    let t = |secs: f64| clock::wazuh_micro_z(now - Duration::seconds_f64(secs));
    let master = json!({
        "info": {"name": MASTER_NODE, "type": "master", "version": version, "ip": "10.0.0.2", "n_active_agents": master_agents},
    });
    let worker = json!({
        "info": {"name": WORKER_NODE, "type": "worker", "version": version, "ip": "10.0.0.3", "n_active_agents": worker_agents},
        "status": {
            "sync_integrity_free": true,
            "last_check_integrity": {"date_start_master": t(8.4), "date_end_master": t(8.38)},
            "last_sync_integrity": {
                "date_start_master": t(128.2),
                "date_end_master": t(128.1),
                "total_extra_valid": 0,
                "total_files": {"missing": 0, "extra": 0, "extra_valid": 0, "shared": 2},
            },
            "sync_agent_info_free": true,
            "last_sync_agentinfo": {"date_start_master": t(6.2), "date_end_master": t(6.19), "n_synced_chunks": 1},
            "last_sync_agentgroup": {"date_start": t(14.5), "date_end": t(14.4), "n_synced_chunks": 1},
            "last_sync_full_agentgroup": {"date_start": t(3600.2), "date_end": t(3599.9), "n_synced_chunks": 2},
            "last_keep_alive": t(3.1),
        },
    });
    let mut items = vec![(MASTER_NODE, master), (WORKER_NODE, worker)];
    let mut failed = Vec::new();
    if let Some(wanted) = p.list("nodes_list") {
        items.retain(|(name, _)| wanted.iter().any(|w| w == name));
        for w in wanted
            .iter()
            .filter(|w| *w != MASTER_NODE && *w != WORKER_NODE)
        {
            failed.push(failed_item(1730, None, vec![json!(w)]));
        }
    }
    let items: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
    let (n, nf) = (items.len(), failed.len());
    Ok(ok(items_envelope(
        items,
        n,
        failed,
        nf,
        &Messages {
            all: "All selected nodes healthcheck information was returned",
            some: "Some nodes healthcheck information was not returned",
            none: "No healthcheck information was returned",
        },
    )))
}
