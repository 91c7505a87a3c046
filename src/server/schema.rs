//! Tool input and output schemas as standard JSON Schema 2020-12. schemars marks Rust number
//! types with formats of its own (`int64`, `uint16`, `double`, ...) that no JSON Schema
//! validator knows and that clients such as the MCP Inspector warn about; here those become
//! `minimum`/`maximum` bounds, and any format outside the standard vocabulary is dropped.

use std::sync::Arc;

use rmcp::model::JsonObject;
use serde_json::Value;

/// The formats JSON Schema 2020-12 defines (format-annotation vocabulary).
pub const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// The input schema of a tool taking `T` (an object schema; panics at router build time,
/// in every test, if `T` is not a struct).
pub fn input<T: schemars::JsonSchema + std::any::Any>() -> Arc<JsonObject> {
    let schema = rmcp::handler::server::common::schema_for_input::<T>()
        .unwrap_or_else(|e| panic!("input schema of {}: {e}", std::any::type_name::<T>()));
    Arc::new(standardize(&schema))
}

/// The output schema of a tool returning `T`.
pub fn output<T: schemars::JsonSchema + std::any::Any>() -> Arc<JsonObject> {
    let schema = rmcp::handler::server::tool::schema_for_output::<T>();
    Arc::new(standardize(&schema))
}

fn standardize(schema: &JsonObject) -> JsonObject {
    let mut v = Value::Object(schema.clone());
    walk(&mut v);
    match v {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    }
}

/// Integer bounds implied by schemars' integer formats.
fn bounds(format: &str) -> Option<(i64, i64)> {
    Some(match format {
        "int8" => (i8::MIN as i64, i8::MAX as i64),
        "int16" => (i16::MIN as i64, i16::MAX as i64),
        "int32" => (i32::MIN as i64, i32::MAX as i64),
        "uint8" => (0, u8::MAX as i64),
        "uint16" => (0, u16::MAX as i64),
        "uint32" => (0, u32::MAX as i64),
        _ => return None,
    })
}

fn walk(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(format)) = o.get("format").cloned()
                && !STANDARD_FORMATS.contains(&format.as_str())
            {
                o.remove("format");
                if let Some((lo, hi)) = bounds(&format) {
                    o.entry("minimum").or_insert(lo.into());
                    o.entry("maximum").or_insert(hi.into());
                } else if matches!(format.as_str(), "uint" | "uint64" | "uint128") {
                    o.entry("minimum").or_insert(0.into());
                }
            }
            for (key, child) in o.iter_mut() {
                // Literal values, not subschemas.
                if matches!(key.as_str(), "default" | "examples" | "const" | "enum") {
                    continue;
                }
                walk(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Sample {
        a: u16,
        b: i64,
        c: f64,
        d: Option<u32>,
        e: Vec<u8>,
    }

    #[test]
    fn only_standard_formats_remain() {
        let s = Value::Object((*output::<Sample>()).clone());
        let text = s.to_string();
        for f in ["int64", "uint16", "uint32", "uint8", "double"] {
            assert!(!text.contains(&format!("\"{f}\"")), "{f} left in {text}");
        }
        let a = &s["properties"]["a"];
        assert_eq!(a["minimum"], 0);
        assert_eq!(a["maximum"], 65535);
        assert_eq!(s["properties"]["e"]["items"]["maximum"], 255);
    }
}
