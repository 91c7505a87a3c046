//! The layers behind Host/Origin: bearer auth with the failed-auth throttle, the per-caller
//! rate limit and body cap, then the `/mcp` messages layer (body deadline, JSON-RPC
//! precheck, session cap, duplicate in-flight ids, SSE lifetime and the shutdown cut).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use tokio_util::sync::CancellationToken;

use super::{Guard, refuse};
use crate::server::Caller;
use crate::server::jsonrpc::{self, Rejection};

/// After the drain, how long a response stream still waits for its answer before it gets
/// the shutting-down error instead.
const CUT_GRACE: Duration = Duration::from_millis(500);

/// The caller key of every request when no tokens are configured (loopback only): one
/// budget, whichever loopback address a request comes from.
const ANONYMOUS: &str = "http:anonymous";

/// Auth, rate limit and body cap for `/mcp` and `/metrics`.
pub(super) async fn guard_layer(
    State(guard): State<Arc<Guard>>,
    mut req: Request,
    next: Next,
) -> Response {
    let remote = remote_ip(&req);
    let caller = match &guard.tokens {
        Some(tokens) => {
            if let Some(ip) = remote
                && let Some(resp) = guard.throttled_response(ip)
            {
                guard.ctx.selfwatch.refused(ip);
                return resp;
            }
            let presented = bearer(req.headers());
            match presented.and_then(|t| tokens.authenticate(t)) {
                Some(c) => c,
                None => {
                    let remote_text =
                        remote.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
                    // Never the token, only that one was (or was not) presented.
                    tracing::warn!(
                        remote = %remote_text,
                        token_presented = presented.is_some(),
                        path = %req.uri().path(),
                        "HTTP authentication failed"
                    );
                    if let Some(ip) = remote {
                        // The `self` monitor's burst detection counts 401s and throttled 429s.
                        guard.ctx.selfwatch.refused(ip);
                        if let Some(resp) = guard.count_auth_failure(ip) {
                            return resp;
                        }
                    }
                    guard.ctx.metrics.refused("unauthorized");
                    let challenge = if presented.is_some() {
                        r#"Bearer realm="secops-mcp", error="invalid_token""#
                    } else {
                        r#"Bearer realm="secops-mcp""#
                    };
                    let mut resp = (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(serde_json::json!({
                            "error": "unauthorized",
                            "message": "a valid bearer token is required (Authorization: Bearer <token>)",
                        })),
                    )
                        .into_response();
                    resp.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(challenge),
                    );
                    return resp;
                }
            }
        }
        None => Caller(ANONYMOUS.to_string()),
    };
    // Without tokens every caller is the one anonymous caller (loopback only): one budget,
    // whichever loopback address it comes from.
    let key = caller.0.clone();
    if let Err(not_until) = guard.limiter.check_key(&key) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut resp = refuse(
            &guard,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("rate limit exceeded for `{}`; retry in {secs} s", caller.0),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return resp;
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > guard.max_body
    {
        return refuse(
            &guard,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "request body of {len} bytes exceeds the {} byte limit",
                guard.max_body
            ),
        );
    }
    if guard.limiter.len() > 10_000 {
        guard.limiter.retain_recent();
    }
    req.extensions_mut().insert(caller);
    let is_delete = req.method() == axum::http::Method::DELETE;
    // Streamed bodies without Content-Length are capped by rmcp's own limit (same value).
    let resp = next.run(req).await;
    if is_delete && resp.status() == StatusCode::ACCEPTED {
        // A closed session (2025-11-25 era): rmcp answers 202, but clients (the official
        // Python SDK among them) expect 200 or 204 for a DELETE that succeeded.
        let (mut parts, _) = resp.into_parts();
        parts.status = StatusCode::NO_CONTENT;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    resp
}

impl Guard {
    /// `429` while `ip` is throttled for failed authentications.
    fn throttled_response(&self, ip: IpAddr) -> Option<Response> {
        let now = Instant::now();
        let until = {
            let mut t = self.throttled.lock().unwrap_or_else(|p| p.into_inner());
            match t.get(&ip) {
                Some(u) if *u > now => *u,
                Some(_) => {
                    t.remove(&ip);
                    return None;
                }
                None => return None,
            }
        };
        Some(self.auth_throttle(until - now))
    }

    /// Count a failed authentication from `ip`; past the budget the address is throttled
    /// and this failure already answered with `429`.
    fn count_auth_failure(&self, ip: IpAddr) -> Option<Response> {
        let Err(not_until) = self.auth_failures.check_key(&ip) else {
            return None;
        };
        // Throttled until the budget has room again, at least a few seconds.
        let wait = not_until
            .wait_time_from(DefaultClock::default().now())
            .max(Duration::from_secs(5));
        {
            let mut t = self.throttled.lock().unwrap_or_else(|p| p.into_inner());
            if t.len() > 10_000 {
                let now = Instant::now();
                t.retain(|_, u| *u > now);
            }
            t.insert(ip, Instant::now() + wait);
        }
        tracing::warn!(remote = %ip, wait_s = wait.as_secs(), "too many failed authentications; throttling the address");
        Some(self.auth_throttle(wait))
    }

    fn auth_throttle(&self, wait: Duration) -> Response {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut resp = refuse(
            self,
            StatusCode::TOO_MANY_REQUESTS,
            "auth_throttled",
            format!(
                "too many failed authentications from this address \
                 (http.auth_failures_per_minute = {}); retry in {secs} s",
                self.limits.auth_failures_per_minute
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        resp
    }
}

/// `/mcp` POST bodies: read whole within `body_timeout_secs`, checked so every request gets
/// a JSON-RPC answer (see the module doc), then handed to rmcp.
pub(super) async fn messages_layer(
    State(guard): State<Arc<Guard>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == axum::http::Method::GET {
        // A standalone SSE stream ends after `sse_max_secs` (the client reconnects), so a
        // stream nobody reads cannot hold a connection forever.
        let resp = next.run(req).await;
        if !is_sse(&resp) {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let limit = tokio::time::sleep(Duration::from_secs(guard.limits.sse_max_secs));
        let stream = body.into_data_stream().take_until(limit);
        return Response::from_parts(parts, axum::body::Body::from_stream(stream));
    }
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let timeout = Duration::from_secs(guard.limits.body_timeout_secs);
    let bytes =
        match tokio::time::timeout(timeout, axum::body::to_bytes(body, guard.max_body)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => {
                return refuse(
                    &guard,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!(
                        "request body exceeds the {} byte limit (or could not be read)",
                        guard.max_body
                    ),
                );
            }
            Err(_) => {
                return refuse(
                    &guard,
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "the request body did not arrive within {} s (http.body_timeout_secs)",
                        guard.limits.body_timeout_secs
                    ),
                );
            }
        };
    let incoming = match jsonrpc::precheck(&bytes) {
        Ok(i) => i,
        Err(r) => {
            guard.ctx.metrics.refused("invalid_jsonrpc");
            let status = if r.code == jsonrpc::INVALID_PARAMS {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            return jsonrpc_response(status, &r);
        }
    };
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if session.is_none() && incoming.method.as_deref() == Some("initialize") {
        let open = guard.sessions.sessions.read().await.len();
        if open >= guard.limits.max_sessions {
            guard.ctx.metrics.refused("too_many_sessions");
            let r = Rejection::new(
                jsonrpc::REFUSED,
                format!(
                    "too many open MCP sessions ({open}, the cap is {}: http.max_sessions); \
                     close idle sessions (DELETE /mcp) or retry later",
                    guard.limits.max_sessions
                ),
                incoming.id.clone().unwrap_or(serde_json::Value::Null),
            );
            return jsonrpc_response(StatusCode::SERVICE_UNAVAILABLE, &r);
        }
    }
    // One answer per request: rmcp routes a session's responses by id, so a second request
    // with an id still in flight would lose its answer (or the first's).
    let in_flight = match (&session, &incoming.id, &incoming.method) {
        (Some(sid), Some(id), Some(_)) => {
            let key = (sid.clone(), id.to_string());
            let fresh = guard
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.clone());
            if !fresh {
                guard.ctx.metrics.refused("duplicate_id");
                let r = Rejection::new(
                    jsonrpc::REFUSED,
                    format!(
                        "a request with id {} is already in flight in this session; give \
                         every request its own id",
                        crate::util::sanitize_untrusted(id.to_string().as_bytes(), 80)
                    ),
                    id.clone(),
                );
                return jsonrpc_response(StatusCode::OK, &r);
            }
            Some(InFlightId {
                guard: guard.clone(),
                key,
            })
        }
        _ => None,
    };
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let resp = next.run(req).await;
    if resp.status() == StatusCode::INTERNAL_SERVER_ERROR
        && guard.shutting_down.load(Ordering::SeqCst)
        && let Some(id) = &incoming.id
    {
        let r = Rejection::new(
            jsonrpc::SHUTTING_DOWN,
            "the server is shutting down; the call was stopped before it finished",
            id.clone(),
        );
        return jsonrpc_response(StatusCode::OK, &r);
    }
    if !is_sse(&resp) {
        return resp;
    }
    // A request's SSE stream: it holds the in-flight id until it is sent or dropped, and if
    // shutdown cuts it before the answer, it ends with a JSON-RPC error for that id.
    let (parts, body) = resp.into_parts();
    let cut_error = incoming.id.clone().map(|id| {
        let body = jsonrpc::error_body(
            &id,
            jsonrpc::SHUTTING_DOWN,
            "the server is shutting down; the call was stopped before it finished",
        );
        axum::body::Bytes::from(format!("event: message\ndata: {body}\n\n"))
    });
    let state = SseState {
        inner: Some(body.into_data_stream()),
        cut: guard.cut.clone(),
        cut_error,
        _held: in_flight,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        let mut inner = st.inner.take()?;
        // After the cut, a call that just finished still gets a moment to send its answer.
        let cut = async {
            st.cut.cancelled().await;
            tokio::time::sleep(CUT_GRACE).await;
        };
        tokio::select! {
            biased;
            item = inner.next() => {
                let item = item?;
                st.inner = Some(inner);
                Some((item, st))
            }
            _ = cut => {
                let last = st.cut_error.take()?;
                Some((Ok(last), st))
            }
        }
    });
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

struct SseState {
    inner: Option<axum::body::BodyDataStream>,
    cut: CancellationToken,
    cut_error: Option<axum::body::Bytes>,
    _held: Option<InFlightId>,
}

fn is_sse(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// A (session, id) in flight; freed on drop.
struct InFlightId {
    guard: Arc<Guard>,
    key: (String, String),
}

impl Drop for InFlightId {
    fn drop(&mut self) {
        self.guard
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

fn jsonrpc_response(status: StatusCode, r: &Rejection) -> Response {
    (status, axum::Json(r.body())).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub(super) fn remote_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}
