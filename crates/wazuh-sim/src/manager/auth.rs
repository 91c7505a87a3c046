//! Login and tokens: Basic-auth login issuing an HS256 JWT with Wazuh's claims, the bearer
//! check every other operation runs, token revocation (logout, revoke, password change,
//! expiry knob) and blocking an IP after too many failed logins.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::super::Shared;
use super::super::clock;
use super::super::state::{TokenRecord, User};
use super::super::tls::Peer;
use super::error::ApiError;
use super::ok;
use super::params::Params;

pub const JWT_ISSUER: &str = "wazuh";
pub const JWT_AUDIENCE: &str = "Wazuh API REST";

/// The claims the Wazuh API puts in its tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub nbf: i64,
    pub exp: i64,
    pub sub: String,
    pub run_as: bool,
    pub rbac_roles: Vec<u32>,
    pub rbac_mode: String,
}

/// A request with a valid token: who sent it.
pub struct Authed {
    pub user: User,
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

fn issue_token(shared: &Shared, user: &User) -> Result<String, ApiError> {
    let now = clock::unix_f64(clock::now());
    let nbf = now.floor() as i64;
    let exp = nbf + shared.cfg.token_ttl_secs as i64;
    let claims = Claims {
        iss: JWT_ISSUER.into(),
        aud: JWT_AUDIENCE.into(),
        nbf,
        exp,
        sub: user.username.clone(),
        run_as: false,
        rbac_roles: user.roles.clone(),
        rbac_mode: "white".into(),
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&shared.jwt_secret),
    )
    .map_err(|_| ApiError::wazuh(1000, None))?;
    let mut st = shared.state();
    st.prune_tokens(now);
    st.tokens.insert(
        token.clone(),
        TokenRecord {
            user_id: user.id,
            issued_at: now,
            exp: exp as f64,
        },
    );
    Ok(token)
}

/// `GET|POST /security/user/authenticate` (`raw=true` answers the bare token).
pub async fn login(
    State(shared): State<Arc<Shared>>,
    Extension(Peer(peer)): Extension<Peer>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ip = peer.ip();
    let now = clock::unix_f64(clock::now());
    {
        let mut st = shared.state();
        let expired = st
            .failures
            .get(&ip)
            .is_some_and(|f| now - shared.cfg.block_time_secs as f64 >= f.first_at);
        if expired {
            st.failures.remove(&ip);
            st.blocked.remove(&ip);
        }
        if st.blocked.contains(&ip) {
            return Err(ApiError::wazuh(6000, None));
        }
    }
    let params = Params::parse(query.as_deref(), &["raw"])?;
    let raw = params.bool("raw")?;
    let user = basic_credentials(&headers).and_then(|(name, password)| {
        let st = shared.state();
        st.user_by_name(&name)
            .filter(|u| bool::from(u.password.as_bytes().ct_eq(password.as_bytes())))
            .cloned()
    });
    let Some(user) = user else {
        let mut st = shared.state();
        let f = st.failures.entry(ip).or_default();
        if f.attempts == 0 {
            f.first_at = now;
        }
        f.attempts += 1;
        if f.attempts >= shared.cfg.max_login_attempts {
            st.blocked.insert(ip);
        }
        return Err(ApiError::invalid_credentials());
    };
    let token = issue_token(&shared, &user)?;
    if raw {
        let mut resp = (StatusCode::OK, token).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(resp);
    }
    Ok(ok(json!({"data": {"token": token}, "error": 0})))
}

/// Validate a bearer token: signature, audience, expiry, and that neither the user's
/// tokens nor all tokens were revoked after it was issued.
pub fn check_token(shared: &Shared, headers: &HeaderMap) -> Result<User, ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::no_token)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.required_spec_claims = ["exp", "nbf", "aud", "sub"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    validation.set_audience(&[JWT_AUDIENCE]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(&shared.jwt_secret),
        &validation,
    )
    .map_err(|_| ApiError::no_token())?;
    let now = clock::unix_f64(clock::now());
    if now >= data.claims.exp as f64 {
        return Err(ApiError::no_token());
    }
    let st = shared.state();
    let record = st.tokens.get(token).ok_or_else(ApiError::no_token)?;
    let user = st
        .users
        .iter()
        .find(|u| u.id == record.user_id && u.username == data.claims.sub)
        .ok_or_else(ApiError::no_token)?;
    if record.issued_at <= user.tokens_valid_after
        || record.issued_at <= shared.faults.tokens_valid_after()
    {
        return Err(ApiError::no_token());
    }
    Ok(user.clone())
}

impl FromRequestParts<Arc<Shared>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        check_token(shared, &parts.headers).map(|user| Authed { user })
    }
}

/// `DELETE /security/user/authenticate`: revoke the caller's tokens.
pub async fn logout(
    State(shared): State<Arc<Shared>>,
    auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), &[])?;
    let now = clock::unix_f64(clock::now());
    let mut st = shared.state();
    if let Some(u) = st.users.iter_mut().find(|u| u.id == auth.user.id) {
        u.tokens_valid_after = now;
    }
    Ok(ok(json!({
        "message": format!("User {} was successfully logged out", auth.user.username),
        "error": 0,
    })))
}

/// `PUT /security/user/revoke`: revoke every token.
pub async fn revoke_all(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), &[])?;
    let now = clock::unix_f64(clock::now());
    for u in shared.state().users.iter_mut() {
        u.tokens_valid_after = now;
    }
    Ok(ok(
        json!({"message": "Tokens were successfully revoked", "error": 0}),
    ))
}
