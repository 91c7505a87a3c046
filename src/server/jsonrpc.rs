//! What the server answers before rmcp sees a message: every request gets an answer, even
//! one rmcp would drop. A message that is not JSON gets -32700 (parse error), one that is
//! JSON but not a single JSON-RPC 2.0 message (a batch, a wrong `jsonrpc`, no `method`)
//! -32600 (invalid request), and a `tools/call` whose `arguments` is not an object -32602
//! (invalid params), each with the request's `id` when it can be read, else `null`. Used by
//! the stdio filter and the HTTP layer alike.

use rmcp::model::ClientJsonRpcMessage;
use serde_json::{Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;
/// Server-defined: the server is shutting down (JSON-RPC reserves -32000..-32099).
pub const SHUTTING_DOWN: i64 = -32000;
/// Server-defined: a limit (sessions, duplicate in-flight id) refused the request.
pub const REFUSED: i64 = -32001;

/// A message rmcp may handle.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The request id (absent for notifications and responses).
    pub id: Option<Value>,
    pub method: Option<String>,
}

/// A message answered here with a JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: i64,
    pub message: String,
    pub id: Value,
}

impl Rejection {
    pub fn new(code: i64, message: impl Into<String>, id: Value) -> Self {
        Self {
            code,
            message: message.into(),
            id,
        }
    }

    /// The JSON-RPC error response.
    pub fn body(&self) -> Value {
        error_body(&self.id, self.code, &self.message)
    }
}

pub fn error_body(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// Check one message (one stdio line, or one HTTP body).
pub fn precheck(bytes: &[u8]) -> Result<Incoming, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::new(
            PARSE_ERROR,
            format!("parse error: the message is not valid UTF-8 ({e})"),
            Value::Null,
        )
    })?;
    // serde_json refuses nesting deeper than 128 levels, which lands here too.
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            PARSE_ERROR,
            format!("parse error: the message is not valid JSON ({e})"),
            Value::Null,
        )
    })?;
    let Value::Object(obj) = &value else {
        let what = if value.is_array() {
            "batches are not supported; send one JSON-RPC message at a time"
        } else {
            "a JSON-RPC message must be a JSON object"
        };
        return Err(Rejection::new(
            INVALID_REQUEST,
            format!("invalid request: {what}"),
            Value::Null,
        ));
    };
    // Only a string, a number or null is an id; anything else is answered with null.
    let id = obj
        .get("id")
        .filter(|v| v.is_string() || v.is_number() || v.is_null())
        .cloned();
    let reply_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Rejection::new(
            INVALID_REQUEST,
            "invalid request: `jsonrpc` must be \"2.0\"",
            reply_id,
        ));
    }
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    if obj.contains_key("method") && method.is_none() {
        return Err(Rejection::new(
            INVALID_REQUEST,
            "invalid request: `method` must be a string",
            reply_id,
        ));
    }
    if obj.contains_key("id") && id.is_none() {
        return Err(Rejection::new(
            INVALID_REQUEST,
            "invalid request: `id` must be a string, a number or null",
            Value::Null,
        ));
    }
    if method.as_deref() == Some("tools/call")
        && let Some(args) = obj.get("params").and_then(|p| p.get("arguments"))
        && !args.is_object()
        && !args.is_null()
    {
        return Err(Rejection::new(
            INVALID_PARAMS,
            "invalid params: `arguments` must be an object mapping argument names to values",
            reply_id,
        ));
    }
    if method.is_none() && !obj.contains_key("result") && !obj.contains_key("error") {
        return Err(Rejection::new(
            INVALID_REQUEST,
            "invalid request: a JSON-RPC request needs a `method`",
            reply_id,
        ));
    }
    // Anything rmcp cannot read would get no answer at all: answer it here.
    if serde_json::from_value::<ClientJsonRpcMessage>(value.clone()).is_err() {
        let (code, what) = match &method {
            Some(m) => (INVALID_PARAMS, format!("invalid params for `{}`", clip(m))),
            None => (INVALID_REQUEST, "invalid request".to_string()),
        };
        // A message without an id is a notification: nothing may answer it.
        if id.is_some() || method.is_none() {
            return Err(Rejection::new(code, what, reply_id));
        }
    }
    Ok(Incoming { id, method })
}

fn clip(s: &str) -> String {
    crate::util::sanitize_untrusted(s.as_bytes(), 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &[u8]) -> i64 {
        precheck(raw).unwrap_err().code
    }

    #[test]
    fn every_malformed_message_gets_its_error_code() {
        assert_eq!(code(b"{not json"), PARSE_ERROR);
        assert_eq!(
            code(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\""),
            PARSE_ERROR
        );
        assert_eq!(code(b"\xff\xfe{}"), PARSE_ERROR);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(code(deep.as_bytes()), PARSE_ERROR);
        assert_eq!(
            code(b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]"),
            INVALID_REQUEST
        );
        assert_eq!(code(b"42"), INVALID_REQUEST);
        let e = precheck(br#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#).unwrap_err();
        assert_eq!((e.code, e.id), (INVALID_REQUEST, json!(7)));
        let e = precheck(
            br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"host_metrics","arguments":"x"}}"#,
        )
        .unwrap_err();
        assert_eq!((e.code, e.id), (INVALID_PARAMS, json!("a")));
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1}"#), INVALID_REQUEST);
    }

    #[test]
    fn good_messages_pass() {
        let ok = precheck(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert_eq!(ok.id, Some(json!(1)));
        assert_eq!(ok.method.as_deref(), Some("tools/list"));
        let n = precheck(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.id, None);
        precheck(
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"check_cert","arguments":{"targets":[]}}}"#,
        )
        .unwrap();
    }
}
