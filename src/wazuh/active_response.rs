//! Typed call of the manager's active response (`PUT /active-response`): run a command on a
//! list of agents or on every agent, and read which agents took it and which failed.

use reqwest::Method;
use serde_json::{Value, json};

use super::manager::data;
use super::types::FailedItem;
use super::{ManagerClient, WazuhError};

/// What the manager answered: the agents the command was sent to and the failed items
/// (agent missing, not active, ...). HTTP 200 even when some or all failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveResponseResult {
    pub affected: Vec<String>,
    pub failed: Vec<FailedItem>,
}

impl ActiveResponseResult {
    pub fn parse(body: &Value) -> Self {
        let data = data(body);
        let affected = data
            .get("affected_items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.get("id")?.as_str().map(str::to_string))
            })
            .collect();
        ActiveResponseResult {
            affected,
            failed: FailedItem::list(&data),
        }
    }
}

impl ManagerClient {
    /// `PUT /active-response`: run `command` with `arguments` and `alert.data` on `agents`
    /// (`None`: every agent).
    pub async fn run_active_response(
        &self,
        agents: Option<&[String]>,
        command: &str,
        arguments: &[String],
        alert_data: Value,
    ) -> Result<ActiveResponseResult, WazuhError> {
        let mut query = Vec::new();
        if let Some(a) = agents {
            query.push(("agents_list", a.join(",")));
        }
        let body = json!({
            "command": command,
            "arguments": arguments,
            "alert": {"data": alert_data},
        });
        let resp = self
            .request(Method::PUT, "/active-response", &query, Some(&body))
            .await?;
        Ok(ActiveResponseResult::parse(&resp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affected_and_failed_agents_are_read_in_every_shape() {
        let r = ActiveResponseResult::parse(&json!({"data": {
            "affected_items": ["001", {"id": "002"}, 3],
            "failed_items": [{"error": {"code": 1701, "message": "Agent does not exist"},
                              "id": ["999", 1000]}],
            "total_affected_items": 2, "total_failed_items": 2}}));
        assert_eq!(r.affected, vec!["001", "002"]);
        assert_eq!(r.failed[0].ids, vec!["999", "1000"]);
        assert_eq!(r.failed[0].code, Some(1701));
        assert!(
            ActiveResponseResult::parse(&json!({"error": 0}))
                .affected
                .is_empty()
        );
    }
}
