//! The simulated manager API: routes for the operations secops-mcp uses, and the gate every
//! request passes first (request counter, hang, latency, the global rate limit, injected
//! 500s and broken JSON, `pretty`, security headers), in the order the real API applies them.

mod agents;
mod auth;
mod error;
mod info;
mod params;
mod security;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};

use super::Shared;
use super::clock;
use super::state::MASTER_NODE;
pub use error::ApiError;

/// Largest response body the gate buffers to pretty-print or truncate.
const MAX_BODY: usize = 64 * 1024 * 1024;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(info::api_info))
        .route(
            "/security/user/authenticate",
            get(auth::login).post(auth::login).delete(auth::logout),
        )
        .route("/security/user/revoke", put(auth::revoke_all))
        .route("/security/users", get(security::list_users))
        .route("/security/users/me", get(security::me))
        .route("/security/users/{user_id}", put(security::update_user))
        .route("/security/config", get(security::get_config))
        .route("/manager/status", get(info::status))
        .route("/manager/info", get(info::manager_info))
        .route("/manager/configuration/validation", get(info::validation))
        .route("/manager/logs", get(info::logs))
        .route("/manager/logs/summary", get(info::logs_summary))
        .route("/cluster/status", get(info::cluster_status))
        .route("/cluster/healthcheck", get(info::healthcheck))
        .route("/agents", get(agents::list))
        .route("/agents/summary/status", get(agents::summary))
        .route("/active-response", put(agents::active_response))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

/// Wazuh's global limit: a counter over a window that starts at the first request and
/// restarts (at zero) with the first request after 60 s; over the limit is refused.
fn rate_limited(shared: &Shared) -> bool {
    let max = shared.faults.rate_limit();
    if max == 0 {
        return false;
    }
    let now = clock::unix_f64(clock::now());
    let mut w = shared.rate.lock().unwrap_or_else(|e| e.into_inner());
    let start = *w.start.get_or_insert(now);
    if now - shared.faults.rate_window_secs() <= start {
        w.count += 1;
    } else {
        w.count = 0;
        w.start = Some(now);
    }
    w.count > u64::from(max)
}

fn wants_pretty(req: &Request) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.eq_ignore_ascii_case("pretty=true")))
}

async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    shared
        .manager_requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let pretty = wants_pretty(&req);
    if shared.faults.is_manager_hung() {
        // The request is read and never answered; the client's timeout has to fire.
        std::future::pending::<()>().await;
    }
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resp = if rate_limited(&shared) {
        ApiError::wazuh(6001, None).into_response()
    } else if shared.faults.take_fail() {
        ApiError::internal(MASTER_NODE).into_response()
    } else {
        next.run(req).await
    };
    let resp = if shared.faults.take_invalid_json() {
        truncate(resp).await
    } else if pretty {
        prettify(resp).await
    } else {
        resp
    };
    with_security_headers(resp)
}

async fn body_bytes(resp: Response) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    (parts, bytes)
}

/// Cut the body in half and answer 200 `application/json`: what a client sees when a proxy
/// or the API dies mid-response.
async fn truncate(resp: Response) -> Response {
    let (mut parts, bytes) = body_bytes(resp).await;
    let cut = if bytes.len() > 1 {
        bytes.slice(..bytes.len() / 2)
    } else {
        Bytes::from_static(b"{\"data\": ")
    };
    parts.status = StatusCode::OK;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(cut))
}

/// `pretty=true`: indent JSON bodies (the API indents by 3 spaces).
async fn prettify(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if !is_json {
        return resp;
    }
    let (mut parts, bytes) = body_bytes(resp).await;
    let out = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            match serde::Serialize::serialize(&v, &mut ser) {
                Ok(()) => Bytes::from(buf),
                Err(_) => bytes,
            }
        }
        Err(_) => bytes,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

fn with_security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("content-security-policy", "none"),
        ("cache-control", "no-store"),
        (
            "referrer-policy",
            "no-referrer, strict-origin-when-cross-origin",
        ),
        (
            "strict-transport-security",
            "max-age=63072000; includeSubdomains",
        ),
        ("server", "Wazuh"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    resp
}

/// A 200 JSON response.
pub fn ok(body: Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// Messages of an affected-items result: all succeeded / some failed / none succeeded.
pub struct Messages {
    pub all: &'static str,
    pub some: &'static str,
    pub none: &'static str,
}

/// The standard envelope: `error` is 0 (no failures), 2 (some) or 1 (all failed).
pub fn items_envelope(
    affected: Vec<Value>,
    total_affected: usize,
    failed: Vec<Value>,
    total_failed: usize,
    msgs: &Messages,
) -> Value {
    let (message, error) = if total_failed == 0 {
        (msgs.all, 0)
    } else if total_affected > 0 {
        (msgs.some, 2)
    } else {
        (msgs.none, 1)
    };
    json!({
        "data": {
            "affected_items": affected,
            "total_affected_items": total_affected,
            "total_failed_items": total_failed,
            "failed_items": failed,
        },
        "message": message,
        "error": error,
    })
}

/// Parse a JSON request body, refusing other content types as the API does (415).
pub fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if body.is_empty() && ct.is_empty() {
        return Ok(json!({}));
    }
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::unsupported_media_type(if ct.is_empty() {
            "None"
        } else {
            ct
        }));
    }
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|_| ApiError::wazuh(2005, None))
}
