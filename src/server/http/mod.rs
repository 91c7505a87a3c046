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
//!
//! `accept.rs` owns the accept loop and shutdown, `guards.rs` the auth, rate-limit and
//! JSON-RPC layers, `origin.rs` the Host and Origin allowlists; this file binds and routes.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::auth::TokenSet;
use super::{Caller, SecopsServer};
use crate::config::{HttpConfig, HttpLimits};
use crate::context::AppContext;

mod accept;
mod guards;
mod origin;

pub use accept::trim_heap;
pub use origin::OriginPattern;

use accept::raise_open_file_limit;
use guards::{guard_layer, messages_layer};
use origin::host_origin_layer;

/// How long shutdown waits for in-flight tool calls before closing streams anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;
type IpLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

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
}

async fn metrics(State(guard): State<Arc<Guard>>) -> Response {
    // The monitoring gauges read SQLite: off the async threads.
    let ctx = guard.ctx.clone();
    let text = match tokio::task::spawn_blocking(move || ctx.metrics.encode()).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "/metrics: encoding stopped");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn refuse(guard: &Guard, status: StatusCode, reason: &'static str, message: String) -> Response {
    guard.ctx.metrics.refused(reason);
    let body = serde_json::json!({ "error": reason, "message": message });
    (status, axum::Json(body)).into_response()
}
