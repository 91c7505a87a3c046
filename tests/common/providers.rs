//! Fakes of the public notification APIs, on one real HTTP server on 127.0.0.1:0 (axum):
//! Slack incoming webhooks (`POST /services/...`), Twilio's Messages API (`POST
//! /2010-04-01/Accounts/{sid}/Messages.json`) and PagerDuty's Events API v2 (`POST
//! /v2/enqueue`). Each checks the exact request shape (method, path, content type, field
//! names, auth) and answers like the provider does, error answers included; a script can
//! force the next answers (429, 5xx). Every request is recorded with what the fake made of
//! it, and every shape violation is kept in `violations()`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::sinks::{Answer, Received};

pub const SLACK_PATH: &str = "/services/T0TEST/B0TEST/sl4ckHookS3cret";
pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "tw1l10AuthT0kenS3cret";
pub const PD_KEY: &str = "pdR0ut1ngKeyS3cret00000000000000";

/// Which provider a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Provider {
    Slack,
    Twilio,
    PagerDuty,
}

#[derive(Default)]
struct State {
    scripts: BTreeMap<Provider, VecDeque<Answer>>,
    received: Vec<(Provider, Received)>,
    violations: Vec<String>,
    /// Twilio answers 21211 for these `To` numbers.
    invalid_to: BTreeSet<String>,
}

/// The fake providers; stops when dropped.
pub struct Providers {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Providers {
    pub async fn start() -> Providers {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the providers");
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move { handle(st, method, uri, headers, body) }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Providers { addr, state, task }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn slack_url(&self) -> String {
        format!("{}{SLACK_PATH}", self.base())
    }

    /// Force the next answers of one provider (before any check).
    pub fn push(&self, p: Provider, answers: impl IntoIterator<Item = Answer>) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .entry(p)
            .or_default()
            .extend(answers);
    }

    pub fn invalid_to(&self, number: &str) {
        self.state
            .lock()
            .unwrap()
            .invalid_to
            .insert(number.to_string());
    }

    pub fn received(&self, p: Provider) -> Vec<Received> {
        let st = self.state.lock().unwrap();
        st.received
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Every way a request differed from the provider's API.
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

impl Drop for Providers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `application/x-www-form-urlencoded` into pairs, in order.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                    out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn text(status: u16, body: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "text/html")],
        body.to_string(),
    )
        .into_response()
}

fn json_answer(status: u16, v: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn forced(a: Answer) -> Response {
    match a {
        Answer::Status(s, b) => text(s, &b),
        Answer::TooMany(after) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", after.as_str())],
            "rate_limited",
        )
            .into_response(),
        Answer::Hang => text(500, "hang is not supported by the providers fake"),
    }
}

fn handle(
    st: Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let provider = if path.starts_with("/services/") {
        Provider::Slack
    } else if path.starts_with("/2010-04-01/") {
        Provider::Twilio
    } else if path.starts_with("/v2/") {
        Provider::PagerDuty
    } else {
        st.lock()
            .unwrap()
            .violations
            .push(format!("unknown path {path}"));
        return text(404, "no such API");
    };
    let rec = Received {
        method: method.to_string(),
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let mut s = st.lock().unwrap();
    s.received.push((provider, rec.clone()));
    let mut bad = Vec::new();
    if rec.method != "POST" {
        bad.push(format!("{provider:?}: method {}", rec.method));
    }
    let forced_answer = s.scripts.get_mut(&provider).and_then(VecDeque::pop_front);
    let resp = match provider {
        Provider::Slack => slack(&rec, &mut bad),
        Provider::Twilio => twilio(&rec, &s.invalid_to, &mut bad),
        Provider::PagerDuty => pagerduty(&rec, &mut bad),
    };
    s.violations.extend(bad);
    match forced_answer {
        Some(a) => forced(a),
        None => resp,
    }
}

fn slack(r: &Received, bad: &mut Vec<String>) -> Response {
    if r.path != SLACK_PATH {
        return text(404, "no_service");
    }
    if r.header("content-type") != Some("application/json") {
        bad.push(format!(
            "slack: content-type {:?}",
            r.header("content-type")
        ));
        return text(400, "invalid_payload");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
        bad.push("slack: body is not JSON".into());
        return text(400, "invalid_payload");
    };
    let mut problems = Vec::new();
    if v["text"].as_str().is_none_or(|t| t.is_empty()) {
        problems.push("text".to_string());
    }
    match v["blocks"].as_array() {
        Some(blocks) if !blocks.is_empty() && blocks.len() <= 50 => {
            for (i, b) in blocks.iter().enumerate() {
                let ok = match b["type"].as_str() {
                    Some("header") => {
                        b["text"]["type"] == "plain_text"
                            && b["text"]["text"]
                                .as_str()
                                .is_some_and(|t| t.chars().count() <= 150)
                    }
                    Some("section") => {
                        b["text"]["type"] == "mrkdwn"
                            && b["text"]["text"]
                                .as_str()
                                .is_some_and(|t| t.chars().count() <= 3000)
                            && b["fields"].as_array().is_none_or(|f| {
                                f.len() <= 10
                                    && f.iter().all(|f| {
                                        f["type"] == "mrkdwn"
                                            && f["text"]
                                                .as_str()
                                                .is_some_and(|t| t.chars().count() <= 2000)
                                    })
                            })
                    }
                    Some("context") => b["elements"].as_array().is_some_and(|e| !e.is_empty()),
                    Some("divider") => true,
                    _ => false,
                };
                if !ok {
                    problems.push(format!("blocks[{i}]"));
                }
            }
        }
        _ => problems.push("blocks".into()),
    }
    if let Some(obj) = v.as_object() {
        for k in obj.keys() {
            if !["text", "blocks"].contains(&k.as_str()) {
                problems.push(format!("unexpected field {k}"));
            }
        }
    }
    if !problems.is_empty() {
        bad.push(format!("slack: {}", problems.join(", ")));
        return text(400, "invalid_payload");
    }
    text(200, "ok")
}

fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    json_answer(
        status,
        json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

fn twilio(r: &Received, invalid_to: &BTreeSet<String>, bad: &mut Vec<String>) -> Response {
    let want_path = format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json");
    if r.path != want_path {
        bad.push(format!("twilio: path {}", r.path));
        return twilio_error(404, 20404, "The requested resource was not found");
    }
    let want_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
    );
    if r.header("authorization") != Some(want_auth.as_str()) {
        return twilio_error(401, 20003, "Authenticate");
    }
    if r.header("content-type") != Some("application/x-www-form-urlencoded") {
        bad.push(format!(
            "twilio: content-type {:?}",
            r.header("content-type")
        ));
        return twilio_error(
            400,
            21603,
            "A 'From' or 'MessagingServiceSid' parameter is required.",
        );
    }
    let pairs = form_pairs(&r.body);
    let fields: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if fields.len() != pairs.len() {
        bad.push("twilio: a repeated field".into());
    }
    for k in fields.keys() {
        if !["To", "From", "MessagingServiceSid", "Body"].contains(k) {
            bad.push(format!("twilio: unexpected field {k}"));
        }
    }
    let Some(to) = fields.get("To") else {
        bad.push("twilio: no To".into());
        return twilio_error(400, 21604, "A 'To' phone number is required.");
    };
    match (fields.get("From"), fields.get("MessagingServiceSid")) {
        (Some(_), None) | (None, Some(_)) => {}
        _ => {
            bad.push("twilio: From xor MessagingServiceSid".into());
            return twilio_error(
                400,
                21603,
                "A 'From' or 'MessagingServiceSid' parameter is required.",
            );
        }
    }
    let Some(body) = fields.get("Body").filter(|b| !b.is_empty()) else {
        bad.push("twilio: no Body".into());
        return twilio_error(400, 21602, "Message body is required.");
    };
    if body.chars().count() > 1600 {
        bad.push("twilio: Body over 1600".into());
        return twilio_error(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }
    if invalid_to.contains(*to) {
        return twilio_error(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    json_answer(
        201,
        json!({
            "sid": "SM0123456789abcdef0123456789abcdef",
            "account_sid": TWILIO_SID,
            "to": to,
            "from": fields.get("From"),
            "messaging_service_sid": fields.get("MessagingServiceSid"),
            "body": body,
            "status": "queued",
            "num_segments": "1",
            "error_code": null,
            "error_message": null,
        }),
    )
}

fn pd_invalid(errors: Vec<String>) -> Response {
    json_answer(
        400,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
}

fn pagerduty(r: &Received, bad: &mut Vec<String>) -> Response {
    if r.path != "/v2/enqueue" {
        bad.push(format!("pagerduty: path {}", r.path));
        return json_answer(404, json!({"status": "Not found"}));
    }
    if r.header("content-type") != Some("application/json") {
        bad.push(format!(
            "pagerduty: content-type {:?}",
            r.header("content-type")
        ));
        return pd_invalid(vec!["Content-Type must be application/json".into()]);
    }
    let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
        bad.push("pagerduty: body is not JSON".into());
        return pd_invalid(vec!["Body is not JSON".into()]);
    };
    // A wrong key is the caller's data, not a shape violation.
    if v["routing_key"] != PD_KEY {
        return pd_invalid(vec!["'routing_key' is invalid".into()]);
    }
    let mut errors = Vec::new();
    let action = v["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push("'event_action' is invalid".into());
    }
    let dedup = v["dedup_key"].as_str().unwrap_or("");
    if dedup.is_empty() || dedup.chars().count() > 255 {
        errors.push("'dedup_key' is missing or too long".into());
    }
    if action == "trigger" {
        let p = &v["payload"];
        if !p["summary"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && s.chars().count() <= 1024)
        {
            errors.push("'payload.summary' is missing or too long".into());
        }
        if p["source"].as_str().is_none_or(|s| s.is_empty()) {
            errors.push("'payload.source' is missing".into());
        }
        if !["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap_or(""))
        {
            errors.push("'payload.severity' is invalid".into());
        }
        if !p["custom_details"].is_object() {
            errors.push("'payload.custom_details' is not an object".into());
        }
        if let Some(obj) = p.as_object() {
            for k in obj.keys() {
                if ![
                    "summary",
                    "source",
                    "severity",
                    "timestamp",
                    "component",
                    "group",
                    "class",
                    "custom_details",
                ]
                .contains(&k.as_str())
                {
                    errors.push(format!("'payload.{k}' is not a payload field"));
                }
            }
        }
    }
    if let Some(obj) = v.as_object() {
        for k in obj.keys() {
            if ![
                "routing_key",
                "event_action",
                "dedup_key",
                "payload",
                "client",
                "client_url",
                "links",
                "images",
            ]
            .contains(&k.as_str())
            {
                errors.push(format!("'{k}' is not an event field"));
            }
        }
    }
    if !errors.is_empty() {
        bad.push(format!("pagerduty: {}", errors.join(", ")));
        return pd_invalid(errors);
    }
    json_answer(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": dedup}),
    )
}
