//! The streamable HTTP transport: rmcp's `StreamableHttpService` under axum at `/mcp`, plus
//! `/healthz` (no auth, no details) and `/metrics` (Prometheus text, behind auth).
//!
//! Connections are accepted here (not by `axum::serve`) so each one is bounded: at most
//! `max_connections` at once (`503` beyond), a request head within `header_timeout_secs` of
//! the server waiting for one (slow headers and idle keep-alive alike), a write that stalls
//! for `write_timeout_secs` (a reader that stopped reading) drops the connection. Guards run
//! in this order: Host allowlist, Origin allowlist, failed-auth throttle per remote address,
//! bearer auth, per-caller rate limit, body size cap; then every `/mcp` POST body is read
//! whole within `body_timeout_secs` and checked ([`super::jsonrpc`]) so each request gets a
//! JSON-RPC answer: malformed ones, a duplicate id still in flight in the same session, an
//! `initialize` beyond `max_sessions`, and calls cut off by shutdown. Sockets get
//! TCP_NODELAY. Shutdown drains in-flight tool calls first.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::auth::TokenSet;
use super::jsonrpc::{self, Rejection};
use super::{Caller, SecopsServer};
use crate::config::{HttpConfig, HttpLimits};
use crate::context::AppContext;

/// How long shutdown waits for in-flight tool calls before closing streams anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// After the drain, how long a response stream still waits for its answer before it gets
/// the shutting-down error instead.
const CUT_GRACE: Duration = Duration::from_millis(500);
/// After the last call finished, how long responses get to flush before streams close.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;
type IpLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// The caller key of every request when no tokens are configured (loopback only): one
/// budget, whichever loopback address a request comes from.
const ANONYMOUS: &str = "http:anonymous";

struct Guard {
    ctx: Arc<AppContext>,
    tokens: Option<TokenSet>,
    allowed_hosts: Vec<String>,
    origins: Vec<OriginPattern>,
    limiter: KeyedLimiter,
    max_body: usize,
    limits: HttpLimits,
    /// Failed authentications per remote address.
    auth_failures: IpLimiter,
    /// Remote addresses refused until the instant, after too many failed authentications.
    throttled: std::sync::Mutex<HashMap<IpAddr, Instant>>,
    sessions: Arc<LocalSessionManager>,
    /// (session id, JSON-RPC id) of requests in flight in 2025-11-25 sessions.
    in_flight: std::sync::Mutex<HashSet<(String, String)>>,
    /// Set when the shutdown drain ended: cut-off calls get a JSON-RPC error.
    shutting_down: AtomicBool,
    /// Cancelled at the same moment: open response streams get that error and end.
    cut: CancellationToken,
}

/// A bound, ready-to-run HTTP server.
pub struct HttpServer {
    listener: TcpListener,
    app: Router,
    ctx: Arc<AppContext>,
    mcp_ct: CancellationToken,
    guard: Arc<Guard>,
}

/// The bearer tokens of `http.tokens_file`, if set. `bind` and `config check` both read
/// them here, so `config check` refuses a tokens file `serve --http` would refuse.
pub fn load_tokens(http: &HttpConfig) -> anyhow::Result<Option<TokenSet>> {
    match &http.tokens_file {
        Some(path) => Ok(Some(TokenSet::load(path).map_err(|e| {
            anyhow::anyhow!("http.tokens_file (SECOPS_HTTP_TOKENS_FILE): {e}")
        })?)),
        None => Ok(None),
    }
}

impl HttpServer {
    /// Validate the transport settings and bind. Refuses a non-loopback address without
    /// bearer tokens.
    pub async fn bind(ctx: Arc<AppContext>, addr: SocketAddr) -> anyhow::Result<Self> {
        let http = &ctx.config.http;
        let tokens = load_tokens(http)?;
        if tokens.is_none() && !addr.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve MCP on non-loopback address {addr} without authentication: \
                 set SECOPS_HTTP_TOKENS_FILE to a file with one bearer token per line \
                 (e.g. `openssl rand -hex 32 > tokens`), or bind 127.0.0.1"
            );
        }
        let origins = http.allowed_origins.to_vec();
        let mut allowed_hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !addr.ip().is_unspecified() {
            allowed_hosts.push(addr.ip().to_string());
        }
        allowed_hosts.extend(http.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
        let per_minute = NonZeroU32::new(http.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        let limits = http.limits.clone();
        let failures = NonZeroU32::new(limits.auth_failures_per_minute).unwrap_or(NonZeroU32::MIN);
        // Every connection is a file descriptor: take the hard limit, as the scanner does.
        raise_open_file_limit();
        let mut session_manager = LocalSessionManager::default();
        session_manager.session_config.keep_alive =
            Some(Duration::from_secs(limits.session_idle_secs));
        let sessions = Arc::new(session_manager);
        let guard = Arc::new(Guard {
            ctx: ctx.clone(),
            tokens,
            allowed_hosts,
            origins,
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            max_body: http.max_body_bytes,
            limits,
            auth_failures: RateLimiter::keyed(Quota::per_minute(failures)),
            throttled: std::sync::Mutex::new(HashMap::new()),
            sessions: sessions.clone(),
            in_flight: std::sync::Mutex::new(HashSet::new()),
            shutting_down: AtomicBool::new(false),
            cut: CancellationToken::new(),
        });

        let mcp_ct = CancellationToken::new();
        let mcp_config = StreamableHttpServerConfig::default()
            // Our guard checks Host and Origin (with the configured lists) before rmcp runs.
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_max_request_body_bytes(http.max_body_bytes)
            .with_cancellation_token(mcp_ct.child_token());
        let handler_ctx = ctx.clone();
        let mcp = StreamableHttpService::new(
            move || {
                Ok(SecopsServer::new(
                    handler_ctx.clone(),
                    Caller("http:anonymous".into()),
                ))
            },
            sessions,
            mcp_config,
        );

        let protected = Router::new()
            .route("/metrics", get(metrics))
            .nest_service("/mcp", mcp)
            .layer(middleware::from_fn_with_state(
                guard.clone(),
                messages_layer,
            ))
            .layer(middleware::from_fn_with_state(guard.clone(), guard_layer));
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .merge(protected)
            .layer(middleware::from_fn_with_state(
                guard.clone(),
                host_origin_layer,
            ))
            .with_state(guard.clone());

        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e}"))?;
        Ok(Self {
            listener,
            app,
            ctx,
            mcp_ct,
            guard,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` is cancelled, then stop accepting, let in-flight tool calls
    /// finish (up to [`DRAIN_TIMEOUT`]), close MCP streams and return.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let limits = self.guard.limits.clone();
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(limits.header_timeout_secs))
            .keep_alive(true);
        let write_timeout = Duration::from_secs(limits.write_timeout_secs);
        let trim = spawn_memory_trim(self.guard.clone(), shutdown.clone());
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let (tcp, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Without this each small SSE write waits for the peer's delayed ACK (~40 ms).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                self.ctx.metrics.refused("too_many_connections");
                tokio::spawn(refuse_connection(tcp, limits.max_connections));
                continue;
            };
            let app = self.app.clone();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(remote));
                    let mut app = app.clone();
                    async move {
                        use tower::Service;
                        app.call(req.map(axum::body::Body::new)).await
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(StallTimeout::new(tcp, write_timeout));
            let conn = graceful.watch(http1.serve_connection(io, svc));
            tokio::spawn(async move {
                let _ = conn.await;
                drop(slot);
            });
        }
        drop(self.listener);
        let closed = tokio::spawn(graceful.shutdown());
        tracing::info!("shutting down: draining in-flight tool calls");
        let drain = Duration::from_secs(limits.drain_timeout_secs);
        if !self.ctx.inflight.wait_idle(drain).await {
            tracing::warn!("in-flight tool calls still running after drain timeout");
        }
        self.guard.shutting_down.store(true, Ordering::SeqCst);
        self.guard.cut.cancel();
        // Let the finished calls' responses reach their clients: connections that carry no
        // long-lived stream close by themselves. Then end the remaining MCP streams
        // (legacy sessions keep a GET stream open) so the server can stop.
        let mut closed = closed;
        if tokio::time::timeout(FLUSH_GRACE, &mut closed)
            .await
            .is_err()
        {
            self.mcp_ct.cancel();
            if tokio::time::timeout(Duration::from_secs(5), closed)
                .await
                .is_err()
            {
                tracing::warn!("HTTP connections still open after shutdown; closing");
            }
        }
        trim.abort();
        self.ctx.store.flush();
        Ok(())
    }
}

/// Beyond `max_connections`: a short `503` and close, without reading the request.
async fn refuse_connection(mut tcp: tokio::net::TcpStream, max: usize) {
    use tokio::io::AsyncWriteExt;
    let body = format!(
        "{{\"error\":\"too_many_connections\",\"message\":\"the server holds its maximum of {max} connections (http.max_connections); retry shortly\"}}"
    );
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = tcp.write_all(resp.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// Take the hard open-file limit as the soft one (idempotent; logged once).
fn raise_open_file_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    });
}

/// Return freed memory to the system after sessions close: glibc keeps freed heap in its
/// per-thread arenas, so without this RSS stays at its peak after a burst of sessions.
fn spawn_memory_trim(guard: Arc<Guard>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0usize;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = guard.sessions.sessions.read().await.len();
            if now < last {
                trim_heap();
            }
            last = now;
        }
    })
}

pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory back to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// An IO whose writes (and flushes) fail once they make no progress for `timeout`: a client
/// that stopped reading (an SSE stream, a large response) cannot hold the connection.
struct StallTimeout {
    inner: tokio::net::TcpStream,
    timeout: Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl StallTimeout {
    fn new(inner: tokio::net::TcpStream, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    fn check<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        use std::task::Poll;
        match polled {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl tokio::io::AsyncRead for StallTimeout {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StallTimeout {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, polled)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn metrics(State(guard): State<Arc<Guard>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        guard.ctx.metrics.encode(),
    )
        .into_response()
}

fn refuse(guard: &Guard, status: StatusCode, reason: &'static str, message: String) -> Response {
    guard.ctx.metrics.refused(reason);
    let body = serde_json::json!({ "error": reason, "message": message });
    (status, axum::Json(body)).into_response()
}

/// Host and Origin checks for every route (DNS rebinding and cross-site browser requests).
async fn host_origin_layer(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    if let Some(host) = request_host(&req)
        && !guard.allowed_hosts.iter().any(|h| h == &host)
    {
        return refuse(
            &guard,
            StatusCode::FORBIDDEN,
            "host",
            format!("Host `{host}` is not allowed; add it to SECOPS_ALLOWED_HOSTS"),
        );
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .ok()
            .is_some_and(|o| guard.origins.iter().any(|p| p.matches(o)));
        if !ok {
            return refuse(
                &guard,
                StatusCode::FORBIDDEN,
                "origin",
                "Origin is not allowed; add it to SECOPS_ALLOWED_ORIGINS".to_string(),
            );
        }
    }
    next.run(req).await
}

/// Auth, rate limit and body cap for `/mcp` and `/metrics`.
async fn guard_layer(State(guard): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let remote = remote_ip(&req);
    let caller = match &guard.tokens {
        Some(tokens) => {
            if let Some(resp) = remote.and_then(|ip| guard.throttled_response(ip)) {
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
                    if let Some(ip) = remote
                        && let Some(resp) = guard.count_auth_failure(ip)
                    {
                        return resp;
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
async fn messages_layer(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
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

fn remote_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The Host header's host part, lower-cased, without port or IPv6 brackets.
fn request_host(req: &Request) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))?;
    Some(strip_port(&raw).to_ascii_lowercase())
}

fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// `scheme://host[:port|:*]` or `null`.
#[derive(Debug, Clone)]
pub struct OriginPattern {
    scheme: String,
    host: String,
    /// None: any port.
    port: Option<u16>,
    null: bool,
}

impl OriginPattern {
    pub fn parse(p: &str) -> Result<Self, String> {
        if p == "null" {
            return Ok(Self {
                scheme: String::new(),
                host: String::new(),
                port: None,
                null: true,
            });
        }
        let (scheme, host, port) =
            split_origin(p).ok_or_else(|| format!("bad allowed origin `{p}`"))?;
        let port = match port {
            Some("*") => None,
            Some(n) => Some(n.parse().map_err(|_| format!("bad port in origin `{p}`"))?),
            None => Some(default_port(&scheme)),
        };
        Ok(Self {
            scheme,
            host,
            port,
            null: false,
        })
    }

    fn matches(&self, origin: &str) -> bool {
        if origin == "null" {
            return self.null;
        }
        let Some((scheme, host, port)) = split_origin(origin) else {
            return false;
        };
        let port = match port {
            Some(n) => match n.parse::<u16>() {
                Ok(n) => n,
                Err(_) => return false,
            },
            None => default_port(&scheme),
        };
        !self.null
            && scheme == self.scheme
            && host == self.host
            && self.port.is_none_or(|p| p == port)
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

fn split_origin(o: &str) -> Option<(String, String, Option<&str>)> {
    let (scheme, rest) = o.split_once("://")?;
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns_match_scheme_host_and_port() {
        let any = OriginPattern::parse("http://localhost:*").unwrap();
        assert!(any.matches("http://localhost:6274"));
        assert!(any.matches("http://localhost"));
        assert!(!any.matches("https://localhost:6274"));
        assert!(!any.matches("http://localhost.evil.com:80"));
        let exact = OriginPattern::parse("https://app.example.com").unwrap();
        assert!(exact.matches("https://app.example.com"));
        assert!(exact.matches("https://app.example.com:443"));
        assert!(!exact.matches("https://app.example.com:8443"));
        assert!(!exact.matches("null"));
        assert!(OriginPattern::parse("null").unwrap().matches("null"));
    }

    #[test]
    fn host_header_port_is_stripped() {
        assert_eq!(strip_port("localhost:8080"), "localhost");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("example.com"), "example.com");
    }
}
