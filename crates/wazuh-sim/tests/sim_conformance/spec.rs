//! The official spec, read and made usable: local `$ref`s inlined, OpenAPI 3.0 schemas
//! turned into JSON Schema, object keys the schema does not declare, and the documented
//! allowlist where the spec's own schemas disagree with its examples.

use serde_json::{Map, Value, json};

pub(crate) fn pointer<'a>(root: &'a Value, r: &str) -> Option<&'a Value> {
    let p = r.strip_prefix('#')?;
    root.pointer(p)
}

/// Inline every local `$ref` (a reference cycle becomes `{}` and is reported).
pub(crate) fn resolve(root: &Value, v: &Value, stack: &mut Vec<String>) -> Value {
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
pub(crate) fn to_json_schema(v: &Value) -> Value {
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
pub(crate) fn non_trivial(s: &Value) -> bool {
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
pub(crate) fn declared(
    s: &Value,
    props: &mut Vec<(String, Value)>,
    open: &mut bool,
    items: &mut Vec<Value>,
) {
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
pub(crate) fn undeclared_keys(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
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
pub(crate) const ALLOWED_UNDECLARED: &[(&str, &str, &str)] = &[
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
pub(crate) const ITEM_SCHEMA_OPS: &[(&str, bool)] = &[
    ("GET /manager/status", false),
    ("GET /manager/info", false),
    ("GET /manager/logs/summary", false),
    ("GET /manager/configuration/validation", true),
];

pub(crate) const ENVELOPE_KEYS: &[&str] = &[
    "$.data.affected_items",
    "$.data.failed_items",
    "$.data.total_affected_items",
    "$.data.total_failed_items",
];

pub(crate) fn allowed(op: &str, path: &str) -> bool {
    if ITEM_SCHEMA_OPS.iter().any(|(o, _)| *o == op) && ENVELOPE_KEYS.contains(&path) {
        return true;
    }
    ALLOWED_UNDECLARED
        .iter()
        .any(|(o, p, _)| (*o == "*" || *o == op) && *p == path)
}
