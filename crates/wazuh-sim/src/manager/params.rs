//! Query parameters and list handling the way the Wazuh API does them: unknown parameters
//! refused (strict validation), typed values checked against the spec's bounds, and the
//! shared list operations `search`, `q` (WQL), `sort`, `select`, `distinct`, `offset`/`limit`.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::error::ApiError;

/// Decoded query parameters of one request.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Params {
    /// Parse and refuse parameters the operation does not declare, as connexion's strict
    /// validation does. `pretty` and `wait_for_complete` are checked as booleans here.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((percent_decode(k), percent_decode(v)));
        }
        let mut extra: Vec<&str> = Vec::new();
        for (k, _) in &pairs {
            if !allowed.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
                extra.push(k);
            }
        }
        if !extra.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Extra query parameter(s) {} not in spec",
                extra.join(", ")
            )));
        }
        let p = Self { pairs };
        for name in ["pretty", "wait_for_complete", "raw", "distinct"] {
            if allowed.contains(&name) {
                p.bool(name)?;
            }
        }
        Ok(p)
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "'{v}' is not of type 'boolean' - '{name}'"
            ))),
        }
    }

    pub fn int(
        &self,
        name: &str,
        default: i64,
        min: i64,
        max: Option<i64>,
    ) -> Result<i64, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let v: i64 = raw.parse().map_err(|_| {
            ApiError::bad_request(format!("'{raw}' is not of type 'integer' - '{name}'"))
        })?;
        if v < min {
            return Err(ApiError::bad_request(format!(
                "{v} is less than the minimum of {min} - '{name}'"
            )));
        }
        if let Some(max) = max
            && v > max
        {
            return Err(ApiError::bad_request(format!(
                "{v} is greater than the maximum of {max} - '{name}'"
            )));
        }
        Ok(v)
    }

    /// A comma-separated list.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    /// A comma-separated list whose items must be in `allowed`.
    pub fn enum_list(&self, name: &str, allowed: &[&str]) -> Result<Option<Vec<String>>, ApiError> {
        let Some(items) = self.list(name) else {
            return Ok(None);
        };
        if items.is_empty() {
            return Err(ApiError::bad_request(format!(
                "[] should be non-empty - '{name}'"
            )));
        }
        for i in &items {
            if !allowed.contains(&i.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "'{i}' is not one of {allowed:?} - '{name}'"
                )));
            }
        }
        Ok(Some(items))
    }
}

/// The value at a dotted path (`os.name`).
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| cur.get(key))
}

/// Every dotted path (objects and leaves) present in `items`.
#[cfg(test)]
pub fn field_names(items: &[Value]) -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if !out.contains(&p) {
                    out.push(p.clone());
                }
                walk(&p, child, out);
            }
        }
    }
    let mut out = Vec::new();
    for i in items {
        walk("", i, &mut out);
    }
    out
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn contains_text(v: &Value, needle: &str) -> bool {
    match v {
        Value::Object(m) => m.values().any(|c| contains_text(c, needle)),
        Value::Array(a) => a.iter().any(|c| contains_text(c, needle)),
        other => text_of(other).is_some_and(|t| t.to_lowercase().contains(needle)),
    }
}

/// `search`: case-insensitive substring in any value; a leading `-` negates.
pub fn apply_search(items: Vec<Value>, search: Option<&str>) -> Vec<Value> {
    let Some(s) = search.filter(|s| !s.is_empty()) else {
        return items;
    };
    let (neg, needle) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.to_lowercase()),
        None => (false, s.to_lowercase()),
    };
    items
        .into_iter()
        .filter(|i| contains_text(i, &needle) != neg)
        .collect()
}

/// Compare two field values: numbers (and all-digit strings such as agent ids) as numbers,
/// everything else as text; missing values sort first.
pub fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let num = |v: Option<&Value>| -> Option<f64> {
        match v? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        }
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => {
            let t = |v: Option<&Value>| v.and_then(text_of).map(|s| s.to_lowercase());
            t(a).cmp(&t(b))
        }
    }
}

/// `sort`: `+f1,f2` or `-f1,f2` (one order for all fields, as the API parses it).
pub fn apply_sort(
    items: &mut [Value],
    sort: Option<&str>,
    valid: &[String],
) -> Result<(), ApiError> {
    let Some(s) = sort.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let (desc, fields) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let fields: Vec<&str> = fields.split(',').map(str::trim).collect();
    let bad: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| !valid.iter().any(|v| v == f))
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::wazuh(1403, Some(&bad.join(", "))));
    }
    items.sort_by(|a, b| {
        let ord = fields.iter().fold(Ordering::Equal, |acc, f| {
            acc.then_with(|| compare_values(get_path(a, f), get_path(b, f)))
        });
        if desc { ord.reverse() } else { ord }
    });
    Ok(())
}

fn insert_path(out: &mut Map<String, Value>, path: &str, v: Value) {
    match path.split_once('.') {
        None => {
            out.insert(path.to_string(), v);
        }
        Some((head, rest)) => {
            let entry = out
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                insert_path(m, rest, v);
            }
        }
    }
}

/// The list-query pipeline every collection endpoint shares, in the API's order:
/// `search`, `q`, `sort`, `select` (plus `always`), `distinct`, then `offset`/`limit`.
/// Returns the page and the total before paging.
pub fn list_query(
    mut items: Vec<Value>,
    p: &Params,
    valid: &[String],
    always: &[&str],
    offset: i64,
    limit: i64,
) -> Result<(Vec<Value>, usize), ApiError> {
    items = apply_search(items, p.get("search"));
    items = apply_q(items, p.get("q"), valid)?;
    apply_sort(&mut items, p.get("sort"), valid)?;
    let items = apply_select(items, p.list("select"), valid, always)?;
    let items = apply_distinct(items, p.bool("distinct")?);
    Ok(paginate(items, offset, limit))
}

/// `select`: keep only these (dotted) fields, plus `always`.
pub fn apply_select(
    items: Vec<Value>,
    select: Option<Vec<String>>,
    valid: &[String],
    always: &[&str],
) -> Result<Vec<Value>, ApiError> {
    let Some(fields) = select else {
        return Ok(items);
    };
    let bad: Vec<&str> = fields
        .iter()
        .map(String::as_str)
        .filter(|f| !valid.iter().any(|v| v == f))
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::wazuh(1724, Some(&bad.join(", "))));
    }
    let mut wanted: Vec<&str> = always.to_vec();
    for f in &fields {
        if !wanted.contains(&f.as_str()) {
            wanted.push(f);
        }
    }
    Ok(items
        .into_iter()
        .map(|item| {
            let mut out = Map::new();
            for f in &wanted {
                if let Some(v) = get_path(&item, f) {
                    insert_path(&mut out, f, v.clone());
                }
            }
            Value::Object(out)
        })
        .collect())
}

/// `distinct`: drop repeated items.
pub fn apply_distinct(items: Vec<Value>, distinct: bool) -> Vec<Value> {
    if !distinct {
        return items;
    }
    let mut out: Vec<Value> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// `offset` / `limit`: the page and the total before paging.
pub fn paginate(items: Vec<Value>, offset: i64, limit: i64) -> (Vec<Value>, usize) {
    let total = items.len();
    let page = items
        .into_iter()
        .skip(offset.max(0) as usize)
        .take(limit.max(0) as usize)
        .collect();
    (page, total)
}

// ---- WQL (`q`) ----

#[derive(Debug)]
enum Wql {
    Or(Vec<Wql>),
    And(Vec<Wql>),
    Cond {
        field: String,
        op: &'static str,
        value: String,
    },
}

struct WqlParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl WqlParser<'_> {
    fn or(&mut self) -> Option<Wql> {
        let mut parts = vec![self.and()?];
        while self.s.get(self.i) == Some(&b',') {
            self.i += 1;
            parts.push(self.and()?);
        }
        Some(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Wql::Or(parts)
        })
    }

    fn and(&mut self) -> Option<Wql> {
        let mut parts = vec![self.factor()?];
        while self.s.get(self.i) == Some(&b';') {
            self.i += 1;
            parts.push(self.factor()?);
        }
        Some(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Wql::And(parts)
        })
    }

    fn factor(&mut self) -> Option<Wql> {
        if self.s.get(self.i) == Some(&b'(') {
            self.i += 1;
            let inner = self.or()?;
            if self.s.get(self.i) != Some(&b')') {
                return None;
            }
            self.i += 1;
            return Some(inner);
        }
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
        {
            self.i += 1;
        }
        let field = std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .to_string();
        if field.is_empty() {
            return None;
        }
        let rest = &self.s[self.i..];
        let op = ["!=", "=", "<", ">", "~"]
            .into_iter()
            .find(|op| rest.starts_with(op.as_bytes()))?;
        self.i += op.len();
        let vstart = self.i;
        let mut depth = 0i32;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'(' => depth += 1,
                b')' if depth == 0 => break,
                b')' => depth -= 1,
                b';' | b',' if depth == 0 => break,
                _ => {}
            }
            self.i += 1;
        }
        let value = std::str::from_utf8(&self.s[vstart..self.i])
            .ok()?
            .to_string();
        Some(Wql::Cond { field, op, value })
    }
}

fn fields_of(w: &Wql, out: &mut Vec<String>) {
    match w {
        Wql::Or(p) | Wql::And(p) => p.iter().for_each(|c| fields_of(c, out)),
        Wql::Cond { field, .. } => out.push(field.clone()),
    }
}

fn eval(w: &Wql, item: &Value) -> bool {
    match w {
        Wql::Or(p) => p.iter().any(|c| eval(c, item)),
        Wql::And(p) => p.iter().all(|c| eval(c, item)),
        Wql::Cond { field, op, value } => {
            let Some(v) = get_path(item, field) else {
                return false;
            };
            let candidates: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            let target = Value::String(value.clone());
            candidates.into_iter().any(|c| {
                let text = text_of(c).unwrap_or_default();
                match *op {
                    "=" => text == *value,
                    "!=" => text != *value,
                    "~" => text.to_lowercase().contains(&value.to_lowercase()),
                    "<" => compare_values(Some(c), Some(&target)) == Ordering::Less,
                    ">" => compare_values(Some(c), Some(&target)) == Ordering::Greater,
                    _ => false,
                }
            })
        }
    }
}

/// `q`: the Wazuh query language subset `field(=|!=|<|>|~)value`, `;` (and), `,` (or) and
/// parentheses. Unknown fields give error 1408, malformed queries 1407.
pub fn apply_q(
    items: Vec<Value>,
    q: Option<&str>,
    valid: &[String],
) -> Result<Vec<Value>, ApiError> {
    let Some(q) = q.filter(|q| !q.is_empty()) else {
        return Ok(items);
    };
    let mut p = WqlParser {
        s: q.as_bytes(),
        i: 0,
    };
    let tree = match p.or() {
        Some(t) if p.i == q.len() => t,
        _ => return Err(ApiError::wazuh(1407, Some(q))),
    };
    let mut fields = Vec::new();
    fields_of(&tree, &mut fields);
    if let Some(bad) = fields.iter().find(|f| !valid.contains(f)) {
        return Err(ApiError::wazuh(1408, Some(bad)));
    }
    Ok(items.into_iter().filter(|i| eval(&tree, i)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items() -> Vec<Value> {
        vec![
            json!({"id": "001", "name": "web-01", "status": "active", "os": {"platform": "ubuntu"}, "group": ["default", "web"]}),
            json!({"id": "1001", "name": "edge", "status": "active", "os": {"platform": "debian"}, "group": ["default"]}),
            json!({"id": "004", "name": "db-02", "status": "disconnected", "os": {"platform": "rhel"}, "group": ["default"]}),
        ]
    }

    #[test]
    fn refuses_unknown_parameters_like_connexion() {
        let err = Params::parse(Some("limit=5&bogus=1&other=2"), &["limit"]).unwrap_err();
        assert_eq!(err.body["title"], "Bad Request");
        assert_eq!(
            err.body["detail"],
            "Extra query parameter(s) bogus, other not in spec"
        );
        let p = Params::parse(Some("limit=5&search=a%20b+c"), &["limit", "search"]).unwrap();
        assert_eq!(p.get("search"), Some("a b c"));
        assert!(p.int("limit", 500, 1, Some(100_000)).is_ok());
        let p = Params::parse(Some("limit=0"), &["limit"]).unwrap();
        assert!(p.int("limit", 500, 1, Some(100_000)).is_err());
        assert!(Params::parse(Some("pretty=maybe"), &["pretty"]).is_err());
    }

    #[test]
    fn sorts_ids_numerically() {
        let mut v = items();
        let valid = field_names(&v);
        apply_sort(&mut v, Some("-id"), &valid).unwrap();
        let ids: Vec<_> = v.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["1001", "004", "001"]);
        assert_eq!(
            apply_sort(&mut v, Some("+nope"), &valid).unwrap_err().body["error"],
            1403
        );
    }

    #[test]
    fn wql_and_or_parentheses() {
        let valid = field_names(&items());
        let r = apply_q(items(), Some("status=active;os.platform=debian"), &valid).unwrap();
        assert_eq!(r.len(), 1);
        let r = apply_q(items(), Some("(name~web,name~db);status!=active"), &valid).unwrap();
        assert_eq!(r[0]["id"], "004");
        let r = apply_q(items(), Some("group=web"), &valid).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            apply_q(items(), Some("nope=1"), &valid).unwrap_err().body["error"],
            1408
        );
        assert_eq!(
            apply_q(items(), Some("name"), &valid).unwrap_err().body["error"],
            1407
        );
    }

    #[test]
    fn select_keeps_nested_fields_and_id() {
        let valid = field_names(&items());
        let r = apply_select(items(), Some(vec!["os.platform".into()]), &valid, &["id"]).unwrap();
        assert_eq!(r[0], json!({"id": "001", "os": {"platform": "ubuntu"}}));
        assert_eq!(
            apply_select(items(), Some(vec!["bogus".into()]), &valid, &["id"])
                .unwrap_err()
                .body["error"],
            1724
        );
    }
}
