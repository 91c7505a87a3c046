//! API users: `GET /security/users`, `GET /security/users/me`, `PUT /security/users/{id}`
//! (password change with Wazuh's policy; the user's tokens are revoked and the new password
//! works at the next login) and `GET /security/config`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::super::Shared;
use super::super::clock;
use super::auth::Authed;
use super::error::{ApiError, failed_items, group_failures};
use super::params::{self, Params};
use super::{Messages, items_envelope, json_body, ok};

/// Users with ids below this are reserved (built in).
const MAX_RESERVED_ID: u32 = 99;

/// `GET /security/users`
pub async fn list_users(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(
        query.as_deref(),
        &[
            "user_ids",
            "limit",
            "offset",
            "pretty",
            "search",
            "select",
            "sort",
            "wait_for_complete",
            "q",
            "distinct",
        ],
    )?;
    let offset = p.int("offset", 0, 0, None)?;
    let limit = p.int("limit", 500, 1, Some(100_000))?;
    let (items, failures) = {
        let st = shared.state();
        match p.list("user_ids") {
            Some(ids) => {
                let mut items = Vec::new();
                let mut failures = Vec::new();
                for id in ids {
                    let n: u32 = id.parse().map_err(|_| {
                        ApiError::bad_request(format!("'{id}' is not a 'numbers' - 'user_ids'"))
                    })?;
                    match st.users.iter().find(|u| u.id == n) {
                        Some(u) => items.push(u.to_json()),
                        None => failures.push((5001, json!(n))),
                    }
                }
                (items, failures)
            }
            None => (st.users.iter().map(|u| u.to_json()).collect(), Vec::new()),
        }
    };
    let valid: Vec<String> = ["id", "username", "allow_run_as", "roles"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (page, total) = params::list_query(items, &p, &valid, &["id"], offset, limit)?;
    let (failed, total_failed) = failed_items(failures);
    Ok(ok(items_envelope(
        page,
        total,
        failed,
        total_failed,
        &Messages {
            all: "All specified users were returned",
            some: "Some users were not returned",
            none: "No user was returned",
        },
    )))
}

fn administrator_role() -> Value {
    json!({
        "id": 1,
        "name": "administrator",
        "policies": [
            {"id": 1, "name": "agents_all_resourceless", "policy": {"actions": ["agent:create", "group:create"], "resources": ["*:*:*"], "effect": "allow"}},
            {"id": 2, "name": "agents_all_agents", "policy": {"actions": ["agent:read", "agent:delete", "agent:modify_group", "agent:reconnect", "agent:restart", "agent:upgrade"], "resources": ["agent:id:*", "agent:group:*"], "effect": "allow"}},
            {"id": 12, "name": "security_all_resourceless", "policy": {"actions": ["security:create", "security:create_user", "security:read_config", "security:update_config", "security:revoke", "security:edit_run_as"], "resources": ["*:*:*"], "effect": "allow"}},
        ],
        "users": [1, 2],
        "rules": [1, 2],
    })
}

/// `GET /security/users/me`
pub async fn me(
    State(_shared): State<Arc<Shared>>,
    auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), &["pretty", "wait_for_complete"])?;
    let roles: Vec<Value> = auth
        .user
        .roles
        .iter()
        .map(|r| {
            if *r == 1 {
                administrator_role()
            } else {
                json!({"id": r, "name": format!("role-{r}"), "policies": [], "users": [], "rules": []})
            }
        })
        .collect();
    let item = json!({
        "id": auth.user.id,
        "username": auth.user.username,
        "allow_run_as": auth.user.allow_run_as,
        "roles": roles,
    });
    Ok(ok(items_envelope(
        vec![item],
        1,
        vec![],
        0,
        &Messages {
            all: "Current user information was returned",
            some: "Current user information was returned",
            none: "Current user information was returned",
        },
    )))
}

/// Wazuh's policy: 8 to 64 characters (else 5009) with a lowercase and an uppercase
/// letter, a digit and a symbol (else 5007).
pub fn check_password(pw: &str) -> Result<(), ApiError> {
    let n = pw.chars().count();
    if !(8..=64).contains(&n) {
        return Err(ApiError::wazuh(5009, None));
    }
    let lower = pw.chars().any(|c| c.is_lowercase());
    let upper = pw.chars().any(|c| c.is_uppercase());
    let digit = pw.chars().any(|c| c.is_ascii_digit());
    let symbol = pw.chars().any(|c| !c.is_alphanumeric());
    if lower && upper && digit && symbol {
        Ok(())
    } else {
        Err(ApiError::wazuh(5007, None))
    }
}

/// `PUT /security/users/{user_id}`: change a password.
pub async fn update_user(
    State(shared): State<Arc<Shared>>,
    auth: Authed,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), &["pretty", "wait_for_complete"])?;
    let id: u32 = user_id.parse().map_err(|_| {
        ApiError::bad_request(format!("'{user_id}' is not a 'numbers' - 'user_id'"))
    })?;
    let body = json_body(&headers, &body)?;
    let password = match body.get("password") {
        None => return Err(ApiError::wazuh(4001, None)),
        Some(Value::String(p)) => p.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{other} is not of type 'string' - 'password'"
            )));
        }
    };
    check_password(&password)?;
    let msgs = Messages {
        all: "User was successfully updated",
        some: "Some users could not be updated",
        none: "User could not be updated",
    };
    let mut st = shared.state();
    let Some(user) = st.users.iter_mut().find(|u| u.id == id) else {
        return Ok(ok(items_envelope(
            vec![],
            0,
            group_failures(vec![(5001, json!(id))]),
            1,
            &msgs,
        )));
    };
    if user.id <= MAX_RESERVED_ID && user.id != auth.user.id && auth.user.id != 1 {
        return Err(ApiError::wazuh(5011, None));
    }
    if !shared.faults.take_ignore_password_change() {
        user.password = password;
        if shared.faults.take_fail_after_password_change() {
            shared.faults.fail_next(u64::MAX);
        }
    }
    user.tokens_valid_after = clock::unix_f64(clock::now());
    let item = user.to_json();
    Ok(ok(items_envelope(vec![item], 1, vec![], 0, &msgs)))
}

/// `GET /security/config`
pub async fn get_config(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), &["pretty", "wait_for_complete"])?;
    Ok(ok(json!({
        "data": {"auth_token_exp_timeout": shared.cfg.token_ttl_secs, "rbac_mode": "white"},
        "error": 0,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy_matches_wazuh() {
        assert!(check_password("Wazuh-Sim-Pass1!").is_ok());
        assert_eq!(check_password("Sh0rt!").unwrap_err().body["error"], 5009);
        assert_eq!(
            check_password(&format!("Aa1!{}", "x".repeat(61)))
                .unwrap_err()
                .body["error"],
            5009
        );
        assert_eq!(
            check_password("alllowercase1!").unwrap_err().body["error"],
            5007
        );
        assert_eq!(
            check_password("NoDigitsHere!").unwrap_err().body["error"],
            5007
        );
        assert_eq!(
            check_password("NoSymbols123").unwrap_err().body["error"],
            5007
        );
    }
}
