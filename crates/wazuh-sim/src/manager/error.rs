//! Wazuh API error bodies: `{"title","detail","remediation"?,"error"?,"dapi_errors"?}` served
//! as `application/problem+json`, plus the failed-item shape of the success envelope. Codes,
//! messages and statuses follow the 4.14 server (`WazuhException` and its error handlers).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

const DOCS: &str = "https://documentation.wazuh.com/4.14";

/// A problem response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

/// Message, remediation and HTTP status of a Wazuh error code.
fn info(code: u32) -> (String, Option<String>, StatusCode, &'static str) {
    let bad = StatusCode::BAD_REQUEST;
    let (msg, rem, status, title): (&str, Option<String>, StatusCode, &str) = match code {
        1000 => (
            "Wazuh Internal Error",
            Some("Please, check `WAZUH_HOME/logs/ossec.log`, `WAZUH_HOME/logs/cluster.log` and `WAZUH_HOME/logs/api.log` to get more information about the error".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
            "Wazuh Internal Error",
        ),
        1403 => (
            "Not a valid sort field ",
            Some("Please, use only allowed sort fields".into()),
            bad,
            "Bad Request",
        ),
        1407 => ("Query does not match expected format", None, bad, "Bad Request"),
        1408 => ("Field does not exist.", None, bad, "Bad Request"),
        1411 => ("TimeFrame is not valid", None, bad, "Bad Request"),
        1650 => ("Active response - Command not specified", None, bad, "Bad Request"),
        1701 => (
            "Agent does not exist",
            Some("Please, use `GET /agents?select=id,name` to find all available agents".into()),
            bad,
            "Bad Request",
        ),
        1703 => (
            "Action not available for Manager (agent 000)",
            Some("Please, use `GET /agents?select=id,name` to find all available agents and make sure you select an agent other than 000".into()),
            bad,
            "Bad Request",
        ),
        1707 => (
            "Cannot send request, agent is not active",
            Some(format!("Please, check non-active agents connection and try again. Visit {DOCS}/user-manual/agent/agent-enrollment/index.html to obtain more information on registering and connecting agents")),
            bad,
            "Bad Request",
        ),
        1724 => (
            "Not a valid select field",
            Some("Please, use only allowed select fields".into()),
            bad,
            "Bad Request",
        ),
        1730 => (
            "Node does not exist",
            Some("Make sure the name is correct and that the node is up. You can check it using `cluster_control -l`".into()),
            bad,
            "Bad Request",
        ),
        1908 => (
            "Error validating configuration",
            Some("Please, fix the corrupted files".into()),
            bad,
            "Bad Request",
        ),
        2005 => ("Body request is not a valid JSON", None, bad, "Bad Request"),
        3013 => (
            "Cluster is not running, it might be disabled in `WAZUH_HOME/etc/ossec.conf`",
            Some(format!("Please, visit the official documentation ({DOCS}/user-manual/configuring-cluster/index.html) to get more information about how to configure a cluster")),
            bad,
            "Bad Request",
        ),
        4001 => (
            "The body of the request is empty, you must specify what you want to modify",
            None,
            bad,
            "Bad Request",
        ),
        5001 => (
            "The user does not exist",
            Some("The user can be created with the endpoint POST /security/users".into()),
            bad,
            "Bad Request",
        ),
        5007 => (
            "Insecure user password provided",
            Some("The password must contain at least one upper and lower case letter, a number and a symbol.".into()),
            bad,
            "Bad Request",
        ),
        5009 => (
            "Insecure user password provided",
            Some("The password must contain a length between 8 and 64 characters.".into()),
            bad,
            "Bad Request",
        ),
        5011 => (
            "Administrator users can only be modified by themselves",
            Some("Log in as administrator and try again".into()),
            bad,
            "Bad Request",
        ),
        6000 => (
            "Limit of login attempts reached. The current IP has been blocked due to a high number of login attempts",
            None,
            StatusCode::FORBIDDEN,
            "Permission Denied",
        ),
        6001 => (
            "Maximum number of requests per minute reached",
            Some(format!("This limit can be changed in api.yaml file. More information here: {DOCS}/user-manual/api/configuration.html#configuration-file")),
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
        ),
        _ => ("Wazuh Internal Error", None, StatusCode::INTERNAL_SERVER_ERROR, "Wazuh Internal Error"),
    };
    (msg.to_string(), rem, status, title)
}

fn with_extra(message: &str, extra: Option<&str>) -> String {
    match extra {
        Some(e) if !e.is_empty() => format!("{message}: {e}"),
        _ => message.to_string(),
    }
}

impl ApiError {
    fn problem(status: StatusCode, title: &str, detail: &str) -> Self {
        Self {
            status,
            body: json!({"title": title, "detail": detail}),
        }
    }

    /// A Wazuh framework error (`WazuhError`, `WazuhInternalError`, ...) by code.
    pub fn wazuh(code: u32, extra: Option<&str>) -> Self {
        let (msg, rem, status, title) = info(code);
        let mut body = Map::new();
        body.insert("title".into(), json!(title));
        body.insert("detail".into(), json!(with_extra(&msg, extra)));
        if let Some(r) = rem {
            body.insert("remediation".into(), json!(r));
        }
        body.insert("error".into(), json!(code));
        Self {
            status,
            body: Value::Object(body),
        }
    }

    /// Request validation failed (what connexion reports for a bad parameter or body).
    pub fn bad_request(detail: impl AsRef<str>) -> Self {
        Self::problem(StatusCode::BAD_REQUEST, "Bad Request", detail.as_ref())
    }

    /// Missing, malformed, expired or revoked token: the 4.14 handler answers the same
    /// detail for all of them.
    pub fn no_token() -> Self {
        Self::problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "No authorization token provided",
        )
    }

    pub fn invalid_credentials() -> Self {
        Self::problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Invalid credentials",
        )
    }

    pub fn not_found() -> Self {
        Self::problem(StatusCode::NOT_FOUND, "Not Found", "404: Not Found")
    }

    pub fn method_not_allowed() -> Self {
        Self::problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            "405: Method Not Allowed",
        )
    }

    pub fn unsupported_media_type(got: &str) -> Self {
        Self::problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            &format!("Invalid Content-type ({got}), expected ['application/json']"),
        )
    }

    /// An internal error with the node it happened on, as the distributed API reports it.
    pub fn internal(node: &str) -> Self {
        let mut e = Self::wazuh(1000, None);
        if let Some(b) = e.body.as_object_mut() {
            b.insert(
                "dapi_errors".into(),
                json!({node: {"error": "Wazuh Internal Error", "logfile": "WAZUH_HOME/logs/api.log"}}),
            );
        }
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}

/// One entry of `failed_items`: the error (with an optional detail) and the ids that hit it.
pub fn failed_item(code: u32, extra: Option<&str>, ids: Vec<Value>) -> Value {
    let (msg, rem, _, _) = info(code);
    let mut err = Map::new();
    err.insert("code".into(), json!(code));
    err.insert("message".into(), json!(with_extra(&msg, extra)));
    if let Some(r) = rem {
        err.insert("remediation".into(), json!(r));
    }
    json!({"error": Value::Object(err), "id": ids})
}

/// `failed_items` and `total_failed_items`: failures grouped by code, and how many ids
/// they name in all.
pub fn failed_items(failures: Vec<(u32, Value)>) -> (Vec<Value>, usize) {
    let failed = group_failures(failures);
    let total = failed
        .iter()
        .map(|f| f["id"].as_array().map_or(0, Vec::len))
        .sum();
    (failed, total)
}

/// Group failures by code into `failed_items`, keeping first-seen order.
pub fn group_failures(failures: Vec<(u32, Value)>) -> Vec<Value> {
    let mut groups: Vec<(u32, Vec<Value>)> = Vec::new();
    for (code, id) in failures {
        match groups.iter_mut().find(|g| g.0 == code) {
            Some(g) => g.1.push(id),
            None => groups.push((code, vec![id])),
        }
    }
    groups
        .into_iter()
        .map(|(code, ids)| failed_item(code, None, ids))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_body_matches_the_server() {
        let e = ApiError::wazuh(6001, None);
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.body["error"], 6001);
        assert_eq!(e.body["title"], "Too Many Requests");
        assert_eq!(
            e.body["detail"],
            "Maximum number of requests per minute reached"
        );
        assert!(e.body["remediation"].as_str().unwrap().contains("api.yaml"));
    }

    #[test]
    fn failures_group_by_code() {
        let items = group_failures(vec![
            (1701, json!("999")),
            (1707, json!("004")),
            (1701, json!("998")),
        ]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["id"], json!(["999", "998"]));
        assert_eq!(items[1]["error"]["code"], 1707);
    }
}
