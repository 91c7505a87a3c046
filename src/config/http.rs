//! The `[http]` section: the streamable HTTP transport's tokens file, Host and Origin
//! allowlists (origins parsed by the transport's own [`OriginPattern::parse`]), rate and body
//! limits, and the connection, session and authentication-failure limits.

use std::path::PathBuf;

use serde::Serialize;

use super::env::{Key, Layers, list, path};
use super::file::FileHttp;
use super::{ConfigError, Parsed};
use crate::server::http::OriginPattern;

pub const DEFAULT_ALLOWED_ORIGINS: &[&str] = &["http://localhost:*", "http://127.0.0.1:*"];

/// The streamable HTTP transport.
#[derive(Debug, Clone, Serialize)]
pub struct HttpConfig {
    pub tokens_file: Option<PathBuf>,
    pub allowed_origins: Parsed<Vec<OriginPattern>>,
    /// Extra `Host` values accepted besides loopback names and the bind address.
    pub allowed_hosts: Vec<String>,
    /// Requests per minute per caller (token principal, or remote IP without tokens).
    pub rate_limit_per_minute: u32,
    pub max_body_bytes: usize,
    /// Shown (and written in TOML) directly under `[http]`.
    #[serde(flatten)]
    pub limits: HttpLimits,
}

/// Connection, session and authentication-failure limits of the HTTP transport
/// (`[http]` in TOML).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpLimits {
    /// Open connections at once; more get `503` and are closed.
    pub max_connections: usize,
    /// A connection must send a complete request head within this many seconds of the
    /// server waiting for one (slow headers, and idle keep-alive connections alike).
    pub header_timeout_secs: u64,
    /// A request body must arrive completely within this many seconds.
    pub body_timeout_secs: u64,
    /// A write that makes no progress for this long (a client that stopped reading) drops
    /// the connection.
    pub write_timeout_secs: u64,
    /// A standalone SSE stream (`GET /mcp`) is ended after this long; clients reconnect. A
    /// stream nobody reads cannot be held forever.
    pub sse_max_secs: u64,
    /// At shutdown, how long in-flight tool calls may still finish.
    pub drain_timeout_secs: u64,
    /// MCP sessions (2025-11-25 era) at once; more `initialize` calls are refused.
    pub max_sessions: usize,
    /// A session without requests for this long is closed.
    pub session_idle_secs: u64,
    /// Failed authentications per remote address per minute before it gets `429`.
    pub auth_failures_per_minute: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            write_timeout_secs: 30,
            sse_max_secs: 300,
            drain_timeout_secs: 30,
            max_sessions: 200,
            session_idle_secs: 300,
            auth_failures_per_minute: 20,
        }
    }
}

const ALLOWED_ORIGINS: Key = Key::env("http.allowed_origins", "SECOPS_ALLOWED_ORIGINS");
const RATE_LIMIT: Key = Key::env("http.rate_limit_per_minute", "SECOPS_HTTP_RATE_LIMIT");
const MAX_BODY: Key = Key::env("http.max_body_bytes", "SECOPS_HTTP_MAX_BODY_BYTES");

pub(super) fn load(l: &Layers, fh: FileHttp) -> Result<HttpConfig, ConfigError> {
    let default_origins = DEFAULT_ALLOWED_ORIGINS.iter().map(|s| s.to_string());
    let origins = l.get(
        ALLOWED_ORIGINS,
        fh.allowed_origins,
        default_origins.collect(),
        list,
    )?;
    let allowed_origins = Parsed::parse(ALLOWED_ORIGINS, origins, |entries| {
        entries
            .iter()
            .map(|o| OriginPattern::parse(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                format!(
                    "{e}; write scheme://host[:port] (port may be `*`), e.g. \
                     https://app.example.com or http://localhost:*"
                )
            })
    })?;
    let d = HttpLimits::default();
    let file = Key::file;
    let limits = HttpLimits {
        max_connections: l.number(
            file("http.max_connections"),
            fh.max_connections,
            d.max_connections,
            1..=100_000,
        )?,
        header_timeout_secs: l.number(
            file("http.header_timeout_secs"),
            fh.header_timeout_secs,
            d.header_timeout_secs,
            1..=3600,
        )?,
        body_timeout_secs: l.number(
            file("http.body_timeout_secs"),
            fh.body_timeout_secs,
            d.body_timeout_secs,
            1..=3600,
        )?,
        write_timeout_secs: l.number(
            file("http.write_timeout_secs"),
            fh.write_timeout_secs,
            d.write_timeout_secs,
            1..=3600,
        )?,
        sse_max_secs: l.number(
            file("http.sse_max_secs"),
            fh.sse_max_secs,
            d.sse_max_secs,
            1..=86_400,
        )?,
        drain_timeout_secs: l.number(
            file("http.drain_timeout_secs"),
            fh.drain_timeout_secs,
            d.drain_timeout_secs,
            1..=3600,
        )?,
        max_sessions: l.number(
            file("http.max_sessions"),
            fh.max_sessions,
            d.max_sessions,
            1..=100_000,
        )?,
        session_idle_secs: l.number(
            file("http.session_idle_secs"),
            fh.session_idle_secs,
            d.session_idle_secs,
            1..=86_400,
        )?,
        auth_failures_per_minute: l.number(
            file("http.auth_failures_per_minute"),
            fh.auth_failures_per_minute,
            d.auth_failures_per_minute,
            1..=100_000,
        )?,
    };
    Ok(HttpConfig {
        allowed_origins,
        allowed_hosts: l.get(
            Key::env("http.allowed_hosts", "SECOPS_ALLOWED_HOSTS"),
            fh.allowed_hosts,
            Vec::new(),
            list,
        )?,
        rate_limit_per_minute: l.number(
            RATE_LIMIT,
            fh.rate_limit_per_minute,
            600,
            1..=1_000_000,
        )?,
        max_body_bytes: l.number(MAX_BODY, fh.max_body_bytes, 256 * 1024, 1024..=64 << 20)?,
        limits,
        tokens_file: l.layer(
            Key::env("http.tokens_file", "SECOPS_HTTP_TOKENS_FILE"),
            fh.tokens_file,
            path,
        )?,
    })
}
