//! `_source` filtering: `false`, a pattern or a list, or `includes` / `excludes` with `*`
//! globs, applied to each hit's source.

use serde_json::{Map, Value};

use super::SearchError;

#[derive(Debug, Clone, Default)]
pub(super) struct SourceFilter {
    pub(super) disabled: bool,
    pub(super) includes: Vec<String>,
    pub(super) excludes: Vec<String>,
}

fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, rest)) => {
            if !s.starts_with(head) {
                return false;
            }
            let tail = &s[head.len()..];
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

fn covers(pats: &[String], path: &str) -> bool {
    pats.iter()
        .any(|p| glob(p, path) || path.starts_with(&format!("{p}.")))
}

fn may_contain(pats: &[String], path: &str) -> bool {
    let prefix = format!("{path}.");
    pats.iter().any(|p| {
        let lit = p.split('*').next().unwrap_or("");
        lit.starts_with(&prefix) || (p.contains('*') && prefix.starts_with(lit))
    })
}

pub(super) fn filter_obj(
    m: &Map<String, Value>,
    prefix: &str,
    f: &SourceFilter,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in m {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if covers(&f.excludes, &path) {
            continue;
        }
        let included = f.includes.is_empty() || covers(&f.includes, &path);
        match v {
            Value::Object(child)
                if (!included || !f.excludes.is_empty())
                    && (included || may_contain(&f.includes, &path)) =>
            {
                let sub = filter_obj(
                    child,
                    &path,
                    &SourceFilter {
                        includes: if included { vec![] } else { f.includes.clone() },
                        ..f.clone()
                    },
                );
                if !sub.is_empty() || included {
                    out.insert(k.clone(), Value::Object(sub));
                }
            }
            _ if included => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    out
}

fn str_list(v: &Value) -> Result<Vec<String>, SearchError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| SearchError::parsing("[_source] entries must be strings"))
            })
            .collect(),
        _ => Err(SearchError::parsing("[_source] malformed")),
    }
}

pub(super) fn parse_source(v: &Value) -> Result<SourceFilter, SearchError> {
    match v {
        Value::Bool(b) => Ok(SourceFilter {
            disabled: !b,
            ..Default::default()
        }),
        Value::Object(o) => {
            let mut f = SourceFilter::default();
            for (k, val) in o {
                match k.as_str() {
                    "includes" | "include" => f.includes = str_list(val)?,
                    "excludes" | "exclude" => f.excludes = str_list(val)?,
                    other => {
                        return Err(SearchError::parsing(format!(
                            "Unknown key for a START_OBJECT in [{other}]."
                        )));
                    }
                }
            }
            Ok(f)
        }
        other => Ok(SourceFilter {
            includes: str_list(other)?,
            ..Default::default()
        }),
    }
}
