//! Client for the Wazuh manager API (port 55000): basic-auth login for a JWT that is cached
//! and refreshed before its `exp`, one re-login and retry on a 401, a client-side rate limit
//! below Wazuh's global 300 requests/minute, bounded backoff on 429, and a timeout on every
//! request. The password and tokens live in [`Secret`]s and never reach logs or errors.

use std::time::{Duration, Instant};

use base64::Engine;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::WazuhError;
use super::tls::http_client;
use super::types::{
    Agent, AgentsSummary, ApiInfo, ClusterStatus, ConfigValidation, Items, LogCounts, LogEntry,
    ManagerInfo, NodeHealth, Obj, parse_daemons, parse_log_summary,
};
use crate::config::{Secret, WazuhConfig};

/// Wazuh's default `auth_token_exp_timeout`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(900);

#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Timeout for one HTTP request.
    pub request_timeout: Duration,
    /// Attempts after a 429 before giving up.
    pub max_rate_limit_retries: u32,
    /// First backoff after a 429 (doubles each time, capped at 5 s).
    pub rate_limit_backoff: Duration,
    /// Our own ceiling, below Wazuh's global 300/min so we rarely meet a 429 at all.
    pub client_requests_per_minute: u32,
    /// Refresh the JWT this long before it expires.
    pub refresh_margin: Duration,
    pub insecure: bool,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_rate_limit_retries: 3,
            rate_limit_backoff: Duration::from_millis(500),
            client_requests_per_minute: 240,
            refresh_margin: Duration::from_secs(60),
            insecure: false,
        }
    }
}

struct CachedToken {
    jwt: Secret,
    refresh_at: Instant,
}

pub struct ManagerClient {
    base: String,
    user: String,
    password: std::sync::RwLock<Option<Secret>>,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    limiter: DefaultDirectRateLimiter,
    /// After a 429 every request waits until this instant, so concurrent callers back off
    /// together instead of each discovering the limit with a refused request.
    paused_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    opts: ManagerOptions,
}

impl std::fmt::Debug for ManagerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerClient")
            .field("base", &self.base)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ManagerClient {
    pub fn new(cfg: &WazuhConfig, opts: ManagerOptions) -> Result<Self, WazuhError> {
        let http = http_client(
            "Wazuh manager API",
            cfg.ca_file.as_deref(),
            opts.insecure,
            opts.request_timeout,
        )?;
        let per_minute = std::num::NonZeroU32::new(opts.client_requests_per_minute.max(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        Ok(Self {
            base: cfg.url.trim_end_matches('/').to_string(),
            user: cfg.login.user.clone(),
            password: std::sync::RwLock::new(cfg.login.password.clone()),
            http,
            token: tokio::sync::Mutex::new(None),
            limiter: RateLimiter::direct(Quota::per_minute(per_minute)),
            paused_until: std::sync::Mutex::new(None),
            opts,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// Switch to a new password (after a rotation) and drop the cached token.
    pub async fn set_password(&self, password: Secret) {
        *self.password.write().unwrap_or_else(|p| p.into_inner()) = Some(password);
        *self.token.lock().await = None;
    }

    /// Forget the cached token (the next request logs in again).
    pub async fn invalidate_token(&self) {
        *self.token.lock().await = None;
    }

    /// A valid JWT, logging in when there is none or it is about to expire. Concurrent
    /// callers share one login.
    async fn token(&self) -> Result<Secret, WazuhError> {
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.jwt.clone());
        }
        let jwt = self.login().await?;
        let lifetime = jwt_lifetime(jwt.expose()).unwrap_or(DEFAULT_TOKEN_LIFETIME);
        let margin = self.opts.refresh_margin.min(lifetime / 2);
        *guard = Some(CachedToken {
            jwt: jwt.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(jwt)
    }

    /// Make sure a valid token is cached, logging in when there is none (concurrent callers
    /// share one login). True when this call logged in.
    pub async fn authenticate(&self) -> Result<bool, WazuhError> {
        {
            let guard = self.token.lock().await;
            if guard
                .as_ref()
                .is_some_and(|t| Instant::now() < t.refresh_at)
            {
                return Ok(false);
            }
        }
        self.token().await.map(|_| true)
    }

    /// `POST /security/user/authenticate` with basic auth.
    pub async fn login(&self) -> Result<Secret, WazuhError> {
        let what = "Wazuh login (POST /security/user/authenticate)";
        let password = self
            .password
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| WazuhError::Config {
                what: what.to_string(),
                reason: "no password configured; set SECOPS_WAZUH_PASSWORD or \
                         SECOPS_WAZUH_PASSWORD_FILE"
                    .to_string(),
            })?;
        let url = format!("{}/security/user/authenticate", self.base);
        let body = self
            .send_with_backoff(what, || {
                self.http
                    .post(&url)
                    .basic_auth(&self.user, Some(password.expose()))
            })
            .await?;
        let token = Obj(&body)
            .obj("data")
            .str("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WazuhError::Decode {
                what: what.to_string(),
                reason: "no data.token in the login response".to_string(),
            })?;
        Ok(Secret::new(token))
    }

    /// GET a path (with URL-encoded query) and return the JSON body of a 2xx answer.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, WazuhError> {
        self.request(Method::GET, path, query, None).await
    }

    /// Any method, with an optional JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, WazuhError> {
        let what = format!("Wazuh API {method} {path}");
        let url = format!("{}{}", self.base, path);
        let mut relogged = false;
        loop {
            let token = self.token().await?;
            let result = self
                .send_with_backoff(&what, || {
                    let mut rb = self
                        .http
                        .request(method.clone(), &url)
                        .bearer_auth(token.expose())
                        .query(query);
                    if let Some(b) = body {
                        rb = rb.json(b);
                    }
                    rb
                })
                .await;
            match result {
                // A token can expire or be revoked (password change) at any time: log in
                // again once and retry.
                Err(WazuhError::Unauthorized { .. }) if !relogged => {
                    relogged = true;
                    self.invalidate_token().await;
                    tracing::debug!(%what, "token rejected; logging in again");
                }
                other => return other,
            }
        }
    }

    /// Send, waiting for our own rate limiter, and retry 429s with bounded backoff.
    async fn send_with_backoff(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, WazuhError> {
        let mut attempt = 0u32;
        loop {
            if tokio::time::timeout(self.opts.request_timeout, self.limiter.until_ready())
                .await
                .is_err()
            {
                return Err(WazuhError::RateLimited {
                    what: what.to_string(),
                    attempts: attempt,
                });
            }
            attempt += 1;
            let resp = build()
                .send()
                .await
                .map_err(|e| WazuhError::from_reqwest(what, &e, self.opts.request_timeout))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| WazuhError::from_reqwest(what, &e, self.opts.request_timeout))?;
            if status == StatusCode::TOO_MANY_REQUESTS {
                if attempt > self.opts.max_rate_limit_retries {
                    return Err(WazuhError::RateLimited {
                        what: what.to_string(),
                        attempts: attempt,
                    });
                }
                let backoff = self
                    .opts
                    .rate_limit_backoff
                    .saturating_mul(1 << (attempt - 1).min(8))
                    .min(Duration::from_secs(5));
                let wait = retry_after.map_or(backoff, |r| r.min(Duration::from_secs(5)));
                {
                    let until = tokio::time::Instant::now() + wait;
                    let mut p = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
                    if p.is_none_or(|cur| cur < until) {
                        *p = Some(until);
                    }
                }
                tracing::warn!(%what, attempt, wait_ms = wait.as_millis() as u64, "Wazuh rate limit (429); backing off");
                crate::calllog::note(
                    crate::calllog::Level::Warning,
                    "wazuh",
                    format!(
                        "{what}: Wazuh rate limit reached (429); waiting {} ms before retry {attempt} of {}",
                        wait.as_millis(),
                        self.opts.max_rate_limit_retries
                    ),
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return decode(what, status, &bytes);
        }
    }

    // ----- typed endpoints -----

    /// `GET /`: API version and host.
    pub async fn api_info(&self) -> Result<ApiInfo, WazuhError> {
        Ok(ApiInfo::parse(&self.get("/", &[]).await?))
    }

    /// `GET /manager/status`: daemon -> state, and how many entries could not be read.
    pub async fn daemons(
        &self,
    ) -> Result<(std::collections::BTreeMap<String, String>, usize), WazuhError> {
        let body = self.get("/manager/status", &[]).await?;
        Ok(parse_daemons(&data(&body)))
    }

    pub async fn manager_info(&self) -> Result<Option<ManagerInfo>, WazuhError> {
        let body = self.get("/manager/info", &[]).await?;
        Ok(Items::parse(&data(&body), ManagerInfo::parse)
            .items
            .into_iter()
            .next())
    }

    pub async fn config_validation(&self) -> Result<Items<ConfigValidation>, WazuhError> {
        let body = self.get("/manager/configuration/validation", &[]).await?;
        Ok(Items::parse(&data(&body), ConfigValidation::parse))
    }

    pub async fn cluster_status(&self) -> Result<ClusterStatus, WazuhError> {
        let body = self.get("/cluster/status", &[]).await?;
        Ok(ClusterStatus::parse(&data(&body)))
    }

    pub async fn cluster_healthcheck(&self) -> Result<Items<NodeHealth>, WazuhError> {
        let body = self.get("/cluster/healthcheck", &[]).await?;
        Ok(Items::parse(&data(&body), NodeHealth::parse))
    }

    pub async fn agents_summary(&self) -> Result<AgentsSummary, WazuhError> {
        let what = "Wazuh API GET /agents/summary/status";
        let body = self.get("/agents/summary/status", &[]).await?;
        AgentsSummary::parse(&data(&body)).ok_or_else(|| WazuhError::Decode {
            what: what.to_string(),
            reason: "no agent counts in the response".to_string(),
        })
    }

    /// One page of `GET /agents` (optionally filtered by status).
    pub async fn agents_page(
        &self,
        status: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<Items<Agent>, WazuhError> {
        let mut q = vec![
            ("limit", limit.to_string()),
            ("offset", offset.to_string()),
            ("sort", "+id".to_string()),
        ];
        if let Some(s) = status {
            q.push(("status", s.to_string()));
        }
        let body = self.get("/agents", &q).await?;
        Ok(Items::parse(&data(&body), Agent::parse))
    }

    /// All agents (optionally by status), page by page, at most `max` of them.
    pub async fn agents(&self, status: Option<&str>, max: usize) -> Result<Vec<Agent>, WazuhError> {
        const PAGE: u32 = 500;
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let page = self.agents_page(status, PAGE, offset).await?;
            let got = page.items.len() + page.degraded;
            out.extend(page.items);
            offset += got as u64;
            if got == 0 || offset >= page.total_affected || out.len() >= max {
                break;
            }
        }
        out.truncate(max);
        Ok(out)
    }

    pub async fn logs_summary(
        &self,
    ) -> Result<(std::collections::BTreeMap<String, LogCounts>, usize), WazuhError> {
        let body = self.get("/manager/logs/summary", &[]).await?;
        Ok(parse_log_summary(&data(&body)))
    }

    /// Recent log entries at `level` (`error`, `critical`, `warning`, ...), newest first.
    pub async fn logs(
        &self,
        level: Option<&str>,
        limit: u32,
    ) -> Result<Items<LogEntry>, WazuhError> {
        let mut q = vec![
            ("limit", limit.to_string()),
            ("sort", "-timestamp".to_string()),
        ];
        if let Some(l) = level {
            q.push(("level", l.to_string()));
        }
        let body = self.get("/manager/logs", &q).await?;
        Ok(Items::parse(&data(&body), LogEntry::parse))
    }
}

/// `data` of a response envelope (`null` when absent).
pub(super) fn data(body: &Value) -> Value {
    body.get("data").cloned().unwrap_or(Value::Null)
}

/// Turn a response into the JSON body (2xx) or a typed error carrying Wazuh's own
/// `title`/`detail`/`remediation` (sanitised: it is remote text).
fn decode(what: &str, status: StatusCode, bytes: &[u8]) -> Result<Value, WazuhError> {
    let parsed: Result<Value, _> = serde_json::from_slice(bytes);
    if status.is_success() {
        let body = parsed.map_err(|e| WazuhError::Decode {
            what: what.to_string(),
            reason: format!("invalid JSON ({e})"),
        })?;
        // HTTP 200 with `error: 1/2` means some or all items failed; callers see
        // `failed_items`. A bare error without data is an API error.
        if body.get("data").is_none() && Obj(&body).u64("error").unwrap_or(0) != 0 {
            return Err(api_error(what, status, &body));
        }
        return Ok(body);
    }
    let body = parsed.unwrap_or(Value::Null);
    match status {
        StatusCode::UNAUTHORIZED => Err(WazuhError::Unauthorized {
            what: what.to_string(),
            detail: clean(
                Obj(&body)
                    .str("detail")
                    .as_deref()
                    .unwrap_or("401 Unauthorized"),
            ),
        }),
        StatusCode::FORBIDDEN => Err(WazuhError::Forbidden {
            what: what.to_string(),
            detail: clean(
                Obj(&body)
                    .str("detail")
                    .as_deref()
                    .unwrap_or("403 Forbidden"),
            ),
        }),
        _ => Err(api_error(what, status, &body)),
    }
}

fn api_error(what: &str, status: StatusCode, body: &Value) -> WazuhError {
    let o = Obj(body);
    WazuhError::Api {
        what: what.to_string(),
        status: status.as_u16(),
        code: o
            .get("error")
            .or_else(|| o.get("code"))
            .and_then(super::types::as_u64)
            .map(|c| c as i64),
        title: clean(
            o.str("title")
                .as_deref()
                .unwrap_or(status.canonical_reason().unwrap_or("error")),
        ),
        detail: clean(o.str("detail").as_deref().unwrap_or("")),
        remediation: o.str("remediation").map(|r| clean(&r)),
    }
}

fn clean(s: &str) -> String {
    crate::util::sanitize_untrusted(s.as_bytes(), 300)
}

/// Lifetime left in a JWT, from its (unverified) `exp` claim.
fn jwt_lifetime(jwt: &str) -> Option<Duration> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = super::types::as_u64(claims.get("exp")?)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    Some(Duration::from_secs(exp.saturating_sub(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_lifetime_reads_exp() {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        let claims = serde_json::json!({"exp": now + 900, "sub": "wazuh"});
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = format!("{}.{}.sig", b64(b"{}"), b64(claims.to_string().as_bytes()));
        let left = jwt_lifetime(&jwt).unwrap();
        assert!(left > Duration::from_secs(890) && left <= Duration::from_secs(900));
        assert!(jwt_lifetime("not-a-jwt").is_none());
    }

    #[test]
    fn error_bodies_become_typed_errors() {
        let body = br#"{"title":"Wazuh Error","detail":"Maximum number of requests per minute reached","remediation":"raise the limit","error":6001}"#;
        let e = decode("x", StatusCode::INTERNAL_SERVER_ERROR, body).unwrap_err();
        match e {
            WazuhError::Api { code, detail, .. } => {
                assert_eq!(code, Some(6001));
                assert!(detail.contains("Maximum"));
            }
            other => panic!("{other:?}"),
        }
        let e = decode(
            "x",
            StatusCode::UNAUTHORIZED,
            br#"{"title":"Unauthorized","detail":"Invalid token"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(e, WazuhError::Unauthorized { ref detail, .. } if detail == "Invalid token")
        );
        let e = decode("x", StatusCode::OK, b"{not json").unwrap_err();
        assert!(matches!(e, WazuhError::Decode { .. }));
    }
}
