//! The simulated Wazuh indexer (OpenSearch): Basic auth, `GET /` cluster info,
//! `GET /_cluster/health` with the colour from the fault knob, and `_search` / `_count` on
//! `wazuh-alerts-*` index patterns. Errors use OpenSearch's `{"error":{...},"status"}` shape.

mod search;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::Shared;
use super::clock;
use super::faults::HealthStatus;
use super::index::Doc;
pub use search::SearchCache;
use search::{SEARCH_URL_PARAMS, SearchError, SearchRequest};

pub const CLUSTER_NAME: &str = "wazuh-cluster";
const NODE_NAME: &str = "wazuh-indexer";
/// Primary shards of the indices other than the alert ones (security, dashboards,
/// statistics, monitoring, states...).
const SYSTEM_PRIMARIES: usize = 7;
/// Primary shards per alert index (the template's `index.number_of_shards`).
const SHARDS_PER_INDEX: usize = 3;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(info).head(info))
        .route("/_cluster/health", get(health))
        .route("/_cluster/health/{index}", get(health))
        .route("/_search", get(search_all).post(search_all))
        .route("/{index}/_search", get(search_index).post(search_index))
        .route("/_count", get(count_all).post(count_all))
        .route("/{index}/_count", get(count_index).post(count_index))
        .fallback(no_handler)
        .method_not_allowed_fallback(no_handler)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

fn error_response(e: &SearchError) -> Response {
    json_response(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        e.body(),
    )
}

async fn no_handler(method: Method, uri: axum::http::Uri) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": format!("no handler found for uri [{}] and method [{method}]", uri.path()), "status": 400}),
    )
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, rest)) = v.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
        return false;
    };
    let expected = format!(
        "{}:{}",
        shared.cfg.indexer_user, shared.cfg.indexer_password
    );
    bool::from(raw.as_slice().ct_eq(expected.as_bytes()))
}

async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    shared
        .indexer_requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let latency = shared.faults.indexer_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if !authorized(&shared, req.headers()) {
        // The security plugin's answer: plain text and a Basic challenge.
        let mut resp = (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"OpenSearch Security\""),
        );
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        return resp;
    }
    next.run(req).await
}

async fn info(State(shared): State<Arc<Shared>>) -> Response {
    let uuid = format!(
        "{:016x}",
        shared.cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    );
    json_response(
        StatusCode::OK,
        json!({
            "name": NODE_NAME,
            "cluster_name": CLUSTER_NAME,
            "cluster_uuid": format!("sim{}", &uuid[..16.min(uuid.len())]),
            "version": {
                "distribution": "opensearch",
                "number": "2.19.2",
                "build_type": "rpm",
                "build_hash": "0000000000000000000000000000000000000000",
                "build_date": "2025-06-01T00:00:00.000000Z",
                "build_snapshot": false,
                "lucene_version": "9.12.1",
                "minimum_wire_compatibility_version": "7.10.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "The OpenSearch Project: https://opensearch.org/",
        }),
    )
}

fn url_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_params(
    path: &str,
    params: &[(String, String)],
    allowed: &[&str],
) -> Result<(), SearchError> {
    match params.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(SearchError::illegal(format!(
            "request [{path}] contains unrecognized parameter: [{k}]"
        ))),
        None => Ok(()),
    }
}

async fn health(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    uri: axum::http::Uri,
) -> Response {
    let params = url_params(query.as_deref());
    if let Err(e) = check_params(
        uri.path(),
        &params,
        &[
            "level",
            "local",
            "timeout",
            "master_timeout",
            "cluster_manager_timeout",
            "wait_for_status",
            "wait_for_nodes",
            "wait_for_active_shards",
            "wait_for_no_relocating_shards",
            "wait_for_no_initializing_shards",
            "wait_for_events",
            "pretty",
            "expand_wildcards",
        ],
    ) {
        return error_response(&e);
    }
    let alert_indices = shared.index_read().index_names().len();
    let primaries = SYSTEM_PRIMARIES + SHARDS_PER_INDEX * alert_indices;
    let replicas = SHARDS_PER_INDEX * alert_indices.max(1);
    let status = shared.faults.indexer_status();
    let (active_primary, active, unassigned) = match status {
        HealthStatus::Green => (primaries, primaries, 0),
        HealthStatus::Yellow => (primaries, primaries, replicas),
        HealthStatus::Red => (
            primaries - SHARDS_PER_INDEX,
            primaries - SHARDS_PER_INDEX,
            SHARDS_PER_INDEX + replicas,
        ),
    };
    let percent = active as f64 * 100.0 / (active + unassigned) as f64;
    let timed_out = params
        .iter()
        .any(|(k, v)| k == "wait_for_status" && (v == "green" && status != HealthStatus::Green));
    json_response(
        if timed_out {
            StatusCode::REQUEST_TIMEOUT
        } else {
            StatusCode::OK
        },
        json!({
            "cluster_name": CLUSTER_NAME,
            "status": status.as_str(),
            "timed_out": timed_out,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "discovered_master": true,
            "discovered_cluster_manager": true,
            "active_primary_shards": active_primary,
            "active_shards": active,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": unassigned,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": percent,
        }),
    )
}

fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, rest)) => {
            s.starts_with(head)
                && (head.len()..=s.len()).any(|i| s.is_char_boundary(i) && glob(rest, &s[i..]))
        }
    }
}

/// Resolve an index expression (`wazuh-alerts-*`, a list, a concrete name) to index names.
fn resolve(
    expr: &str,
    names: &[String],
    params: &[(String, String)],
) -> Result<Vec<String>, SearchError> {
    let ignore = params
        .iter()
        .any(|(k, v)| k == "ignore_unavailable" && v == "true");
    let mut out: Vec<String> = Vec::new();
    for part in expr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "_all" || part == "*" {
            out.extend(names.iter().cloned());
        } else if part.contains('*') {
            out.extend(names.iter().filter(|n| glob(part, n)).cloned());
        } else if names.iter().any(|n| n == part) {
            out.push(part.to_string());
        } else if !ignore {
            return Err(SearchError {
                status: 404,
                kind: "index_not_found_exception",
                reason: format!("no such index [{part}]"),
            });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn body_json(body: &Bytes) -> Result<Value, SearchError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| SearchError {
        status: 400,
        kind: "json_parse_exception",
        reason: format!("Unexpected character in request body: {e}"),
    })
}

fn run(
    shared: &Shared,
    expr: &str,
    query: Option<&str>,
    path: &str,
    body: &Bytes,
    count_only: bool,
) -> Result<Value, SearchError> {
    let started = std::time::Instant::now();
    let params = url_params(query);
    let allowed: &[&str] = if count_only {
        &[
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "pretty",
            "routing",
            "preference",
        ]
    } else {
        SEARCH_URL_PARAMS
    };
    check_params(path, &params, allowed)?;
    let body = body_json(body)?;
    let now_ms = clock::millis(clock::now());
    let req = SearchRequest::parse(&body, &params, now_ms, count_only)?;
    let index = shared.index_read();
    let names: Vec<String> = index.index_names().into_iter().collect();
    let targets = resolve(expr, &names, &params)?;
    let shards = targets.len() * SHARDS_PER_INDEX;
    if count_only {
        // Borrowed under the read lock (cloning 100k documents per page was the bottleneck).
        let docs: Vec<&Doc> = index
            .docs
            .iter()
            .filter(|d| targets.contains(&d.index))
            .collect();
        return Ok(json!({
            "count": req.count(&docs),
            "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
        }));
    }
    req.execute_on(&index, &targets, shards, started)
}

fn reply(result: Result<Value, SearchError>) -> Response {
    match result {
        Ok(v) => json_response(StatusCode::OK, v),
        Err(e) => error_response(&e),
    }
}

async fn search_all(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    reply(run(
        &shared,
        "_all",
        query.as_deref(),
        "/_search",
        &body,
        false,
    ))
}

async fn search_index(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let path = format!("/{index}/_search");
    reply(run(&shared, &index, query.as_deref(), &path, &body, false))
}

async fn count_all(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    reply(run(
        &shared,
        "_all",
        query.as_deref(),
        "/_count",
        &body,
        true,
    ))
}

async fn count_index(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let path = format!("/{index}/_count");
    reply(run(&shared, &index, query.as_deref(), &path, &body, true))
}
