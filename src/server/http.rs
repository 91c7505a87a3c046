//! The streamable HTTP transport: rmcp's `StreamableHttpService` under axum at `/mcp`, plus
//! `/healthz` (no auth, no details) and `/metrics` (Prometheus text, behind auth). Guards run
//! in this order: Host allowlist, Origin allowlist, bearer auth, per-caller rate limit,
//! body size cap. Sockets get TCP_NODELAY. Shutdown drains in-flight tool calls first.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::auth::TokenSet;
use super::{Caller, SecopsServer};
use crate::context::AppContext;

/// How long shutdown waits for in-flight tool calls before closing streams anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// After the last call finished, how long responses get to flush before streams close.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

struct Guard {
    ctx: Arc<AppContext>,
    tokens: Option<TokenSet>,
    allowed_hosts: Vec<String>,
    origins: Vec<OriginPattern>,
    limiter: KeyedLimiter,
    max_body: usize,
}

/// A bound, ready-to-run HTTP server.
pub struct HttpServer {
    listener: TcpListener,
    app: Router,
    ctx: Arc<AppContext>,
    mcp_ct: CancellationToken,
}

impl HttpServer {
    /// Validate the transport settings and bind. Refuses a non-loopback address without
    /// bearer tokens.
    pub async fn bind(ctx: Arc<AppContext>, addr: SocketAddr) -> anyhow::Result<Self> {
        let http = &ctx.config.http;
        let tokens = match &http.tokens_file {
            Some(path) => Some(TokenSet::load(path).map_err(anyhow::Error::msg)?),
            None => None,
        };
        if tokens.is_none() && !addr.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve MCP on non-loopback address {addr} without authentication: \
                 set SECOPS_HTTP_TOKENS_FILE to a file with one bearer token per line \
                 (e.g. `openssl rand -hex 32 > tokens`), or bind 127.0.0.1"
            );
        }
        let origins = http
            .allowed_origins
            .iter()
            .map(|o| OriginPattern::parse(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let mut allowed_hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !addr.ip().is_unspecified() {
            allowed_hosts.push(addr.ip().to_string());
        }
        allowed_hosts.extend(http.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
        let per_minute = NonZeroU32::new(http.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        let guard = Arc::new(Guard {
            ctx: ctx.clone(),
            tokens,
            allowed_hosts,
            origins,
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            max_body: http.max_body_bytes,
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
            Arc::new(LocalSessionManager::default()),
            mcp_config,
        );

        let protected = Router::new()
            .route("/metrics", get(metrics))
            .nest_service("/mcp", mcp)
            .layer(middleware::from_fn_with_state(guard.clone(), guard_layer));
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .merge(protected)
            .layer(middleware::from_fn_with_state(
                guard.clone(),
                host_origin_layer,
            ))
            .with_state(guard);

        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e}"))?;
        Ok(Self {
            listener,
            app,
            ctx,
            mcp_ct,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` is cancelled, then stop accepting, let in-flight tool calls
    /// finish (up to [`DRAIN_TIMEOUT`]), close MCP streams and return.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let listener = self.listener.tap_io(|tcp| {
            // Without this each small SSE write waits for the peer's delayed ACK (~40 ms).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let stop_accepting = shutdown.clone();
        let server = axum::serve(
            listener,
            self.app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop_accepting.cancelled().await });
        let server = tokio::spawn(server.into_future());

        shutdown.cancelled().await;
        tracing::info!("shutting down: draining in-flight tool calls");
        if !self.ctx.inflight.wait_idle(DRAIN_TIMEOUT).await {
            tracing::warn!("in-flight tool calls still running after drain timeout");
        }
        // Let the finished calls' responses reach their clients: connections that carry no
        // long-lived stream close by themselves. Then end the remaining MCP streams
        // (legacy sessions keep a GET stream open) so the server can stop.
        let mut server = server;
        if tokio::time::timeout(FLUSH_GRACE, &mut server).await.is_ok() {
            self.ctx.store.flush();
            return Ok(());
        }
        self.mcp_ct.cancel();
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server error at shutdown"),
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
            Err(_) => tracing::warn!("HTTP connections still open after shutdown; closing"),
        }
        self.ctx.store.flush();
        Ok(())
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
    let caller = match &guard.tokens {
        Some(tokens) => {
            let presented = bearer(req.headers());
            match presented.and_then(|t| tokens.authenticate(t)) {
                Some(c) => c,
                None => {
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
        None => Caller("http:anonymous".to_string()),
    };
    // Without tokens every caller is anonymous: limit per remote address instead.
    let key = if guard.tokens.is_some() {
        caller.0.clone()
    } else {
        remote_ip(&req).map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
    };
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
struct OriginPattern {
    scheme: String,
    host: String,
    /// None: any port.
    port: Option<u16>,
    null: bool,
}

impl OriginPattern {
    fn parse(p: &str) -> Result<Self, String> {
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
