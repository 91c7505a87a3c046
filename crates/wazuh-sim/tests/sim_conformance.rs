//! Conformance of the simulator to the official Wazuh API spec (v4.14.7 OpenAPI, read from
//! `SECOPS_WAZUH_SPEC_DIR`, by default `../shared/reference/wazuh/` beside the repository):
//! every response body the simulator
//! gives for the operations secops-mcp uses is validated against the schema the spec
//! declares for that path, method and status, and every object key must be declared there
//! (a short, documented allowlist covers where the spec's own schemas disagree with its
//! examples). Without the spec the test prints `SKIP:` and passes, except under CI or with
//! `SECOPS_REQUIRE_SPEC=1`, where a missing spec fails it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use wazuh_sim::{SimConfig, Simulator};

const USER: &str = "wazuh";
const PASS: &str = "Wazuh-Sim-Pass1!";

/// The official spec: `wazuh-api-spec.yaml` in `SECOPS_WAZUH_SPEC_DIR`, by default the
/// workplace's reference folder beside the repository (GPL-2.0, so never copied into it).
/// The repository (the workspace root) is two levels above this crate's manifest.
fn spec_path() -> PathBuf {
    let dir = std::env::var_os("SECOPS_WAZUH_SPEC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/wazuh")
        });
    dir.join("wazuh-api-spec.yaml")
}

/// CI (or `SECOPS_REQUIRE_SPEC=1`) must run the conformance test, never skip it.
fn spec_required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var_os("SECOPS_REQUIRE_SPEC").is_some_and(|v| v == "1")
}

// ---------- the spec ----------

fn pointer<'a>(root: &'a Value, r: &str) -> Option<&'a Value> {
    let p = r.strip_prefix('#')?;
    root.pointer(p)
}

/// Inline every local `$ref` (a reference cycle becomes `{}` and is reported).
fn resolve(root: &Value, v: &Value, stack: &mut Vec<String>) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                if stack.contains(r) {
                    eprintln!("note: reference cycle at {r}");
                    return json!({});
                }
                let target = pointer(root, r).unwrap_or_else(|| panic!("unresolvable $ref {r}"));
                stack.push(r.clone());
                let out = resolve(root, target, stack);
                stack.pop();
                return out;
            }
            Value::Object(
                m.iter()
                    .map(|(k, c)| (k.clone(), resolve(root, c, stack)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(|c| resolve(root, c, stack)).collect()),
        other => other.clone(),
    }
}

/// OpenAPI 3.0 schema object → JSON Schema draft 4: `nullable` becomes a `null` type, and
/// OpenAPI-only keywords (`example`, `x-*`, `discriminator`, ...) are dropped.
fn to_json_schema(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, c) in m {
        match k.as_str() {
            "example" | "examples" | "discriminator" | "xml" | "externalDocs" | "deprecated"
            | "readOnly" | "writeOnly" | "nullable" => {}
            k if k.starts_with("x-") => {}
            "properties" => {
                let props = c
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(name, s)| (name.clone(), to_json_schema(s)))
                            .collect::<Map<_, _>>()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(k.clone(), to_json_schema(c));
            }
            "allOf" | "anyOf" | "oneOf" => {
                out.insert(
                    k.clone(),
                    Value::Array(
                        c.as_array()
                            .into_iter()
                            .flatten()
                            .map(to_json_schema)
                            .collect(),
                    ),
                );
            }
            _ => {
                out.insert(k.clone(), c.clone());
            }
        }
    }
    if m.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert("type".into(), json!([t, "null"]));
    }
    Value::Object(out)
}

/// Whether the schema constrains object members anywhere (a bare `type: object` does not).
fn non_trivial(s: &Value) -> bool {
    match s {
        Value::Object(m) => {
            m.get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty())
                || m.values().any(non_trivial)
        }
        Value::Array(a) => a.iter().any(non_trivial),
        _ => false,
    }
}

/// Declared properties (merged over `allOf`/`anyOf`/`oneOf`) and whether extra keys are allowed.
fn declared(s: &Value, props: &mut Vec<(String, Value)>, open: &mut bool, items: &mut Vec<Value>) {
    let Value::Object(m) = s else { return };
    if let Some(p) = m.get("properties").and_then(Value::as_object) {
        for (k, v) in p {
            props.push((k.clone(), v.clone()));
        }
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(false)) | None => {}
        Some(_) => *open = true,
    }
    if let Some(i) = m.get("items") {
        items.push(i.clone());
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for sub in m.get(key).and_then(Value::as_array).into_iter().flatten() {
            declared(sub, props, open, items);
        }
    }
}

/// Keys present in the body that the schema does not declare, as JSON paths.
fn undeclared_keys(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let mut props = Vec::new();
    let mut open = false;
    let mut items = Vec::new();
    declared(schema, &mut props, &mut open, &mut items);
    match value {
        Value::Object(m) => {
            for (k, child) in m {
                let here = format!("{path}.{k}");
                let schemas: Vec<&Value> = props
                    .iter()
                    .filter(|(n, _)| n == k)
                    .map(|(_, s)| s)
                    .collect();
                if schemas.is_empty() {
                    if !props.is_empty() && !open {
                        out.push(here);
                    }
                    continue;
                }
                for s in schemas {
                    undeclared_keys(s, child, &here, out);
                }
            }
        }
        Value::Array(a) => {
            for child in a {
                for s in &items {
                    undeclared_keys(s, child, &format!("{path}[]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Where the spec's schemas omit keys the real API sends (and the spec's own examples show).
const ALLOWED_UNDECLARED: &[(&str, &str, &str)] = &[
    (
        "*",
        "$.error",
        "every envelope and problem body carries `error`; ApiResponse declares only `message`, ApiError names it `code`",
    ),
    (
        "*",
        "$.remediation",
        "RequestError omits `remediation`, which Wazuh errors carry (TooManyRequestsResponse's example shows it)",
    ),
    (
        "*",
        "$.dapi_errors",
        "RequestError omits `dapi_errors` (ApiError declares it)",
    ),
    (
        "GET /manager/configuration/validation",
        "$.data",
        "ConfigurationValidation describes an item, not the envelope its example shows (items are checked against it)",
    ),
    ("GET /manager/configuration/validation", "$.message", "same"),
    (
        "GET /manager/configuration/validation",
        "$.data.affected_items[].name",
        "the item schema declares only `status`; its example has `name`",
    ),
    (
        "GET /cluster/healthcheck",
        "$.data.affected_items[].info",
        "NodeHealthcheck nests info/status under `name`; its example puts them on the item",
    ),
    (
        "GET /cluster/healthcheck",
        "$.data.affected_items[].status",
        "same",
    ),
    (
        "PUT /active-response",
        "$.data",
        "the 200 schema is bare ApiResponse while its example has data.affected_items",
    ),
    (
        "GET /security/config",
        "$.data",
        "the 200 schema is bare ApiResponse while its example has data",
    ),
];

/// Operations whose 200 schema describes one item where the API (and the spec's own
/// example) answers the affected-items envelope: the envelope is checked against
/// `AllItemsResponse`, and each item against the schema the spec gives (the `data`
/// property, or the whole schema for configuration validation).
const ITEM_SCHEMA_OPS: &[(&str, bool)] = &[
    ("GET /manager/status", false),
    ("GET /manager/info", false),
    ("GET /manager/logs/summary", false),
    ("GET /manager/configuration/validation", true),
];

const ENVELOPE_KEYS: &[&str] = &[
    "$.data.affected_items",
    "$.data.failed_items",
    "$.data.total_affected_items",
    "$.data.total_failed_items",
];

fn allowed(op: &str, path: &str) -> bool {
    if ITEM_SCHEMA_OPS.iter().any(|(o, _)| *o == op) && ENVELOPE_KEYS.contains(&path) {
        return true;
    }
    ALLOWED_UNDECLARED
        .iter()
        .any(|(o, p, _)| (*o == "*" || *o == op) && *p == path)
}

// ---------- observing the simulator ----------

struct Observed {
    method: &'static str,
    template: &'static str,
    status: u16,
    content_type: String,
    body: String,
    label: &'static str,
}

struct Client {
    sim: Simulator,
    http: reqwest::Client,
    seen: Vec<Observed>,
}

impl Client {
    /// One request, recorded with the operation it exercises and why.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &mut self,
        method: &'static str,
        template: &'static str,
        url_path: &str,
        token: Option<&str>,
        basic: Option<(&str, &str)>,
        body: Option<(&str, String)>,
        label: &'static str,
    ) -> (u16, Value) {
        let url = format!("{}{url_path}", self.sim.manager_url());
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((u, p)) = basic {
            req = req.basic_auth(u, Some(p));
        }
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = r.text().await.unwrap();
        let parsed = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.seen.push(Observed {
            method,
            template,
            status,
            content_type,
            body: text,
            label,
        });
        (status, parsed)
    }

    async fn get(
        &mut self,
        template: &'static str,
        path: &str,
        token: &str,
        label: &'static str,
    ) -> (u16, Value) {
        self.call("GET", template, path, Some(token), None, None, label)
            .await
    }

    async fn put(
        &mut self,
        template: &'static str,
        path: &str,
        token: &str,
        body: Value,
        label: &'static str,
    ) -> (u16, Value) {
        self.call(
            "PUT",
            template,
            path,
            Some(token),
            None,
            Some(("application/json", body.to_string())),
            label,
        )
        .await
    }
}

const LOGIN: &str = "/security/user/authenticate";

async fn exercise(c: &mut Client) {
    let (_, v) = c
        .call(
            "POST",
            LOGIN,
            LOGIN,
            None,
            Some((USER, PASS)),
            None,
            "json token",
        )
        .await;
    let t = v["data"]["token"].as_str().unwrap().to_string();
    let t = t.as_str();
    c.call(
        "POST",
        LOGIN,
        &format!("{LOGIN}?raw=true"),
        None,
        Some((USER, PASS)),
        None,
        "raw token",
    )
    .await;
    c.call(
        "POST",
        LOGIN,
        LOGIN,
        None,
        Some((USER, "Wrong-Pass-1!")),
        None,
        "bad password",
    )
    .await;
    c.call(
        "POST",
        LOGIN,
        &format!("{LOGIN}?bogus=1"),
        None,
        Some((USER, PASS)),
        None,
        "extra parameter",
    )
    .await;

    c.get("/", "/", t, "api info").await;
    c.call("GET", "/", "/", None, None, None, "no token").await;
    c.get("/manager/status", "/manager/status", t, "daemons")
        .await;
    c.get(
        "/manager/status",
        "/manager/status?limit=1",
        t,
        "extra parameter",
    )
    .await;
    c.call(
        "GET",
        "/manager/status",
        "/manager/status",
        Some("not-a-jwt"),
        None,
        None,
        "invalid token",
    )
    .await;
    c.call(
        "PATCH",
        "/manager/status",
        "/manager/status",
        Some(t),
        None,
        None,
        "wrong method",
    )
    .await;
    c.get("/manager/info", "/manager/info", t, "manager info")
        .await;
    c.get(
        "/manager/configuration/validation",
        "/manager/configuration/validation",
        t,
        "valid",
    )
    .await;
    c.sim.faults().config_invalid(true);
    c.get(
        "/manager/configuration/validation",
        "/manager/configuration/validation",
        t,
        "invalid ossec.conf",
    )
    .await;
    c.sim.faults().config_invalid(false);
    c.get("/cluster/status", "/cluster/status", t, "cluster status")
        .await;
    c.get(
        "/cluster/healthcheck",
        "/cluster/healthcheck",
        t,
        "healthcheck",
    )
    .await;
    c.sim.faults().cluster_enabled(false);
    c.get(
        "/cluster/healthcheck",
        "/cluster/healthcheck",
        t,
        "cluster disabled",
    )
    .await;
    c.sim.faults().cluster_enabled(true);
    c.get("/agents", "/agents", t, "all agents").await;
    c.get(
        "/agents",
        "/agents?status=disconnected,never_connected,pending&sort=-id",
        t,
        "status filter",
    )
    .await;
    c.get(
        "/agents",
        "/agents?select=name,os.platform,lastKeepAlive&limit=5&offset=3",
        t,
        "select + page",
    )
    .await;
    c.get("/agents", "/agents?agents_list=001,999", t, "unknown agent")
        .await;
    c.get("/agents", "/agents?limit=0", t, "bad limit").await;
    c.sim.faults().fail_next(1);
    c.get("/agents", "/agents", t, "injected 500").await;
    c.get(
        "/agents/summary/status",
        "/agents/summary/status",
        t,
        "summary",
    )
    .await;
    c.get("/manager/logs", "/manager/logs?limit=20", t, "logs")
        .await;
    c.get(
        "/manager/logs",
        "/manager/logs?level=error&tag=indexer-connector",
        t,
        "filtered logs",
    )
    .await;
    c.get(
        "/manager/logs",
        "/manager/logs?limit=501",
        t,
        "limit over 500",
    )
    .await;
    c.get(
        "/manager/logs/summary",
        "/manager/logs/summary",
        t,
        "logs summary",
    )
    .await;
    c.get("/security/users", "/security/users", t, "users")
        .await;
    c.get(
        "/security/users",
        "/security/users?user_ids=1,77",
        t,
        "unknown user",
    )
    .await;
    c.get("/security/users/me", "/security/users/me", t, "me")
        .await;
    c.get("/security/config", "/security/config", t, "security config")
        .await;
    c.put(
        "/security/users/{user_id}",
        "/security/users/2",
        t,
        json!({"password": "weakpassword"}),
        "weak password",
    )
    .await;
    c.put(
        "/security/users/{user_id}",
        "/security/users/999",
        t,
        json!({"password": "Strong-Pass-9!"}),
        "unknown user",
    )
    .await;
    c.call(
        "PUT",
        "/security/users/{user_id}",
        "/security/users/2",
        Some(t),
        None,
        Some(("text/plain", "x".into())),
        "wrong content type",
    )
    .await;
    c.put(
        "/security/users/{user_id}",
        "/security/users/2",
        t,
        json!({"password": "Strong-Pass-9!"}),
        "password changed",
    )
    .await;
    c.put(
        "/active-response",
        "/active-response?agents_list=001,004",
        t,
        json!({"command": "firewall-drop", "arguments": ["-"]}),
        "partly sent",
    )
    .await;
    c.put(
        "/active-response",
        "/active-response",
        t,
        json!({"arguments": ["-"]}),
        "no command",
    )
    .await;
    c.get("<undeclared path>", "/no/such/path", t, "unknown path")
        .await;
    c.call("DELETE", LOGIN, LOGIN, Some(t), None, None, "logout")
        .await;

    // Rate limit, then brute-force blocking (each needs its own budget).
    c.sim.faults().set_rate_limit(1);
    c.call(
        "POST",
        LOGIN,
        LOGIN,
        None,
        Some((USER, PASS)),
        None,
        "warm window",
    )
    .await;
    c.call(
        "POST",
        LOGIN,
        LOGIN,
        None,
        Some((USER, PASS)),
        None,
        "rate limited",
    )
    .await;
    c.sim.faults().set_rate_limit(0);
    for _ in 0..50 {
        c.call(
            "POST",
            LOGIN,
            LOGIN,
            None,
            Some((USER, "Wrong-Pass-1!")),
            None,
            "failure",
        )
        .await;
    }
    c.call(
        "POST",
        LOGIN,
        LOGIN,
        None,
        Some((USER, PASS)),
        None,
        "blocked ip",
    )
    .await;
}

/// (method, template, status) tuples that must have been validated, and those whose status
/// the spec does not declare (validated against RequestError / ApiError instead).
const REQUIRED: &[(&str, &str, u16)] = &[
    ("POST", LOGIN, 200),
    ("POST", LOGIN, 400),
    ("POST", LOGIN, 401),
    ("POST", LOGIN, 403),
    ("POST", LOGIN, 429),
    ("DELETE", LOGIN, 200),
    ("GET", "/", 200),
    ("GET", "/", 401),
    ("GET", "/manager/status", 200),
    ("GET", "/manager/status", 400),
    ("GET", "/manager/status", 401),
    ("PATCH", "/manager/status", 405),
    ("GET", "/manager/info", 200),
    ("GET", "/manager/configuration/validation", 200),
    ("GET", "/cluster/status", 200),
    ("GET", "/cluster/healthcheck", 200),
    ("GET", "/cluster/healthcheck", 400),
    ("GET", "/agents", 200),
    ("GET", "/agents", 400),
    ("GET", "/agents", 500),
    ("GET", "/agents/summary/status", 200),
    ("GET", "/manager/logs", 200),
    ("GET", "/manager/logs", 400),
    ("GET", "/manager/logs/summary", 200),
    ("GET", "/security/users", 200),
    ("GET", "/security/users/me", 200),
    ("GET", "/security/config", 200),
    ("PUT", "/security/users/{user_id}", 200),
    ("PUT", "/security/users/{user_id}", 400),
    ("PUT", "/security/users/{user_id}", 415),
    ("PUT", "/active-response", 200),
    ("PUT", "/active-response", 400),
    ("GET", "<undeclared path>", 404),
];

const FALLBACKS: &[(&str, &str, u16, &str)] = &[
    ("POST", LOGIN, 403, "ApiError"),
    ("GET", "/", 401, "RequestError"),
    ("GET", "/agents", 500, "ApiError"),
    ("PUT", "/security/users/{user_id}", 415, "RequestError"),
    ("GET", "<undeclared path>", 404, "RequestError"),
];

#[tokio::test]
async fn simulator_responses_conform_to_the_official_spec() {
    let path = spec_path();
    if !path.exists() {
        let why = format!(
            "{} not found; set SECOPS_WAZUH_SPEC_DIR to a folder holding the official Wazuh API \
             spec (wazuh-api-spec.yaml, v4.14.7) to run the conformance test",
            path.display()
        );
        assert!(
            !spec_required(),
            "CI or SECOPS_REQUIRE_SPEC=1 is set: {why}"
        );
        // Straight to stderr, past the test harness's capture, so that it shows.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIP: {why}");
        return;
    }
    let text = std::fs::read_to_string(&path).expect("read spec");
    let spec: Value = serde_yaml_ng::from_str(&text).expect("spec parses as YAML");
    assert_eq!(spec["info"]["version"], "4.14.7", "unexpected spec version");

    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut client = Client {
        sim,
        http,
        seen: Vec::new(),
    };
    exercise(&mut client).await;

    let mut failures = Vec::new();
    let mut validated: BTreeSet<(String, String, u16)> = BTreeSet::new();
    let mut cache: std::collections::HashMap<(String, String, u16, String), (Value, String)> =
        Default::default();
    println!(
        "{:<7} {:<36} {:>4}  {:<30} {:<22} case",
        "method", "path", "code", "content type", "schema"
    );
    for o in &client.seen {
        if o.label == "failure" || o.label == "warm window" {
            // Repeats of tuples validated elsewhere (the 401 of a login is covered).
            continue;
        }
        let status = o.status;
        let is_error = status >= 400;
        let declared_ct = if o.content_type.starts_with("text/plain") {
            "text/plain"
        } else {
            "application/json"
        };
        let expected_ct = if is_error {
            "application/problem+json"
        } else if declared_ct == "text/plain" {
            "text/plain"
        } else {
            "application/json"
        };
        if !o.content_type.starts_with(expected_ct) {
            failures.push(format!(
                "{} {} {status} ({}): content type {} (expected {expected_ct})",
                o.method, o.template, o.label, o.content_type
            ));
        }
        let key = (
            o.method.to_string(),
            o.template.to_string(),
            status,
            declared_ct.to_string(),
        );
        let (schema, source) = cache
            .entry(key)
            .or_insert_with(|| {
                let path_item = spec["paths"].get(o.template);
                let op = path_item.and_then(|p| p.get(o.method.to_lowercase()));
                let mut response = op.and_then(|op| op["responses"].get(status.to_string()));
                if status == 405 && response.is_none() {
                    // A method the path does not have: the path's other operations declare
                    // the 405 answer.
                    response = path_item
                        .and_then(Value::as_object)
                        .and_then(|m| m.values().find_map(|op| op["responses"].get("405")));
                }
                match response {
                    Some(r) => {
                        let r = resolve(&spec, r, &mut Vec::new());
                        let s = r["content"][declared_ct]["schema"].clone();
                        (to_json_schema(&s), format!("declared {status}"))
                    }
                    None => {
                        let fallback = FALLBACKS
                            .iter()
                            .find(|f| f.0 == o.method && f.1 == o.template && f.2 == status)
                            .map(|f| f.3);
                        match fallback {
                            Some(name) => {
                                let s = resolve(
                                    &spec,
                                    &spec["components"]["schemas"][name],
                                    &mut Vec::new(),
                                );
                                (to_json_schema(&s), format!("fallback {name}"))
                            }
                            None => (Value::Null, "UNDECLARED".into()),
                        }
                    }
                }
            })
            .clone();
        println!(
            "{:<7} {:<36} {:>4}  {:<30} {:<22} {}",
            o.method, o.template, status, o.content_type, source, o.label
        );
        if schema.is_null() {
            failures.push(format!(
                "{} {} answered {status} ({}), which the spec does not declare and no fallback covers",
                o.method, o.template, o.label
            ));
            continue;
        }
        let instance = if declared_ct == "text/plain" {
            if schema["type"] != "string" {
                failures.push(format!(
                    "{} {}: text/plain schema is not a string",
                    o.method, o.template
                ));
            }
            Value::String(o.body.clone())
        } else {
            if !non_trivial(&schema) {
                failures.push(format!(
                    "{} {} {status}: the spec's schema is trivial, so this response proves nothing",
                    o.method, o.template
                ));
            }
            match serde_json::from_str(&o.body) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!(
                        "{} {} {status} ({}): not JSON: {e}",
                        o.method, o.template, o.label
                    ));
                    continue;
                }
            }
        };
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| {
                panic!(
                    "schema for {} {} {status} does not compile: {e}",
                    o.method, o.template
                )
            });
        for e in validator.iter_errors(&instance) {
            failures.push(format!(
                "{} {} {status} ({}): {} at {}",
                o.method,
                o.template,
                o.label,
                e,
                e.instance_path()
            ));
        }
        let mut extra = Vec::new();
        undeclared_keys(&schema, &instance, "$", &mut extra);
        let op = format!("{} {}", o.method, o.template);
        if status == 200
            && let Some((_, whole)) = ITEM_SCHEMA_OPS.iter().find(|(x, _)| *x == op)
        {
            let envelope = to_json_schema(&resolve(
                &spec,
                &spec["components"]["schemas"]["AllItemsResponse"],
                &mut Vec::new(),
            ));
            let item_schema = if *whole {
                schema.clone()
            } else {
                let (mut props, mut open, mut items) = (Vec::new(), false, Vec::new());
                declared(&schema, &mut props, &mut open, &mut items);
                props
                    .into_iter()
                    .find(|(k, _)| k == "data")
                    .map(|(_, s)| s)
                    .unwrap_or(Value::Null)
            };
            assert!(non_trivial(&item_schema), "{op}: item schema is trivial");
            let data = &instance["data"];
            let v = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .build(&envelope)
                .expect("AllItemsResponse compiles");
            for e in v.iter_errors(data) {
                failures.push(format!("{op} ({}): envelope: {e}", o.label));
            }
            let v = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(true)
                .build(&item_schema)
                .expect("item schema compiles");
            for item in data["affected_items"].as_array().into_iter().flatten() {
                for e in v.iter_errors(item) {
                    failures.push(format!(
                        "{op} ({}): item: {e} at {}",
                        o.label,
                        e.instance_path()
                    ));
                }
                let mut item_extra = Vec::new();
                undeclared_keys(
                    &item_schema,
                    item,
                    "$.data.affected_items[]",
                    &mut item_extra,
                );
                extra.extend(item_extra);
            }
        }
        for k in extra.into_iter().filter(|k| !allowed(&op, k)) {
            failures.push(format!(
                "{op} {status} ({}): key {k} is not declared by the spec",
                o.label
            ));
        }
        validated.insert((o.method.to_string(), o.template.to_string(), status));
    }
    for (m, p, s) in REQUIRED {
        if !validated.contains(&(m.to_string(), p.to_string(), *s)) {
            failures.push(format!("{m} {p} {s} was never exercised"));
        }
    }
    println!(
        "validated {} (method, path, status) tuples:",
        validated.len()
    );
    for (m, p, s) in &validated {
        println!("  {m} {p} {s}");
    }
    assert!(
        failures.is_empty(),
        "{} conformance failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(validated.len() >= REQUIRED.len());
    assert_eq!(StatusCode::OK.as_u16(), 200);
    client.sim.stop().await;
}

#[test]
fn openapi_conversion_handles_nullable_and_drops_examples() {
    let s = to_json_schema(&json!({
        "type": "object", "nullable": true, "example": {"a": 1}, "x-rbac": [],
        "properties": {"example": {"type": "string", "example": "x"}},
    }));
    assert_eq!(
        s,
        json!({"type": ["object", "null"], "properties": {"example": {"type": "string"}}})
    );
    assert!(non_trivial(&s));
    assert!(!non_trivial(&json!({"type": "object"})));
    let mut extra = Vec::new();
    undeclared_keys(
        &json!({"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {"properties": {"c": {}}}}}]}),
        &json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}),
        "$",
        &mut extra,
    );
    assert_eq!(extra, ["$.b.d", "$.e"]);
}
