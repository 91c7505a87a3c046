//! Typed calls of the manager's security API: its API users (`GET /security/users`, find
//! one by name) and changing a user's password (`PUT /security/users/{user_id}`).

use reqwest::Method;
use serde_json::json;

use super::manager::data;
use super::types::{FailedItem, Items, Obj};
use super::{ManagerClient, WazuhError};
use crate::config::Secret;

/// One API user of `GET /security/users`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiUser {
    /// Absent for some built-in users.
    pub id: Option<u64>,
    pub username: String,
    pub allow_run_as: Option<bool>,
}

impl ApiUser {
    pub fn parse(o: Obj<'_>) -> Option<Self> {
        Some(ApiUser {
            id: o.u64("id"),
            username: o.str("username")?,
            allow_run_as: o.flag("allow_run_as"),
        })
    }
}

/// What Wazuh answered to a password change: HTTP 200 can still carry failed items (e.g. a
/// password its policy refuses).
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordChange {
    pub total_failed: u64,
    pub failed: Vec<FailedItem>,
}

impl PasswordChange {
    pub fn parse(body: &serde_json::Value) -> Self {
        let data = data(body);
        let failed = FailedItem::list(&data);
        PasswordChange {
            total_failed: Obj(&data)
                .u64("total_failed_items")
                .unwrap_or(failed.len() as u64),
            failed,
        }
    }
}

impl ManagerClient {
    /// `GET /security/users?search=`: the API users matching `search`, at most `limit`.
    pub async fn users(&self, search: &str, limit: u32) -> Result<Items<ApiUser>, WazuhError> {
        let query = [("search", search.to_string()), ("limit", limit.to_string())];
        let body = self.get("/security/users", &query).await?;
        Ok(Items::parse(&data(&body), ApiUser::parse))
    }

    /// The id of the API user named exactly `name` (`None`: no such user, or it has no id).
    pub async fn user_id(&self, name: &str) -> Result<Option<u64>, WazuhError> {
        Ok(self
            .users(name, 500)
            .await?
            .items
            .into_iter()
            .find(|u| u.username == name)
            .and_then(|u| u.id))
    }

    /// `PUT /security/users/{id}`: set a user's password (Wazuh revokes the user's tokens).
    /// Not the same as [`ManagerClient::set_password`], which changes what this client logs
    /// in with.
    pub async fn change_user_password(
        &self,
        id: u64,
        password: &Secret,
    ) -> Result<PasswordChange, WazuhError> {
        let body = json!({ "password": password.expose() });
        let path = format!("/security/users/{id}");
        let resp = self.request(Method::PUT, &path, &[], Some(&body)).await?;
        Ok(PasswordChange::parse(&resp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_tolerate_a_missing_id_and_numbers_as_strings() {
        let data = json!({"affected_items": [
            {"id": 3, "username": "administrator", "allow_run_as": true},
            {"username": "python", "allow_run_as": true},
            {"id": "7", "username": "rbac"},
            {"id": 9}
        ], "total_affected_items": 4, "failed_items": [], "total_failed_items": 0});
        let users = Items::parse(&data, ApiUser::parse);
        assert_eq!(users.items.len(), 3);
        assert_eq!(users.degraded, 1);
        assert_eq!(users.items[0].id, Some(3));
        assert_eq!(users.items[1].id, None);
        assert_eq!(users.items[2].id, Some(7));
    }

    #[test]
    fn a_refused_password_change_names_why() {
        let ok = PasswordChange::parse(&json!({"data": {"affected_items": [{"id": 100}],
            "total_affected_items": 1, "total_failed_items": 0, "failed_items": []}}));
        assert_eq!(ok.total_failed, 0);
        let bad = PasswordChange::parse(&json!({"data": {"affected_items": [],
            "total_affected_items": 0, "total_failed_items": 1, "failed_items": [
                {"error": {"code": 5007, "message": "Insecure user password provided"}, "id": [100]}
            ]}, "error": 1}));
        assert_eq!(bad.total_failed, 1);
        assert_eq!(bad.failed[0].ids, vec!["100"]);
        assert_eq!(bad.failed[0].code, Some(5007));
        assert_eq!(
            bad.failed[0].message.as_deref(),
            Some("Insecure user password provided")
        );
    }
}
