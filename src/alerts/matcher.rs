//! Label matchers, as Alertmanager writes them: `label=value`, `label!=value`,
//! `label=~regex`, `label!~regex`. They select alerts for silences, maintenance windows and
//! inhibition rules, over an alert's labels plus the fields `monitor`, `code`, `level`,
//! `id` (`ALR-n`) and `fingerprint` (which win over a label of the same name). A label the
//! alert lacks reads as the empty string (so `team!=ops` matches an alert without `team`,
//! and `team=""` matches only those). A regex matches the WHOLE value (anchored), is
//! compiled once at parse time and bounded in size, so matching is linear in the value.

use std::collections::BTreeMap;
use std::fmt;

use regex::{Regex, RegexBuilder};

use crate::store::alerts::AlertRow;

/// The longest matcher text accepted.
pub const MAX_MATCHER_CHARS: usize = 1024;
/// The most matchers one silence, window or rule side may have.
pub const MAX_MATCHERS: usize = 20;
/// The compiled size a regex may take (bytes of its program).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// The fields every alert has besides its labels.
pub const ALERT_FIELDS: [&str; 5] = ["monitor", "code", "level", "id", "fingerprint"];

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One parsed matcher.
#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Two matchers are the same when they read the same (the regex follows from the text).
impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl fmt::Display for Matcher {
    /// The canonical text (`name=value`), which [`Matcher::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), self.value)
    }
}

impl serde::Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A matcher that could not be parsed: which one (quoted, bounded) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("matcher \"{matcher}\": {reason}")]
pub struct MatcherError {
    pub matcher: String,
    pub reason: String,
}

const FORM: &str = "write `label=value`, `label!=value`, `label=~regex` or `label!~regex` (e.g. `monitor=certs`, `target=~.*\\.example\\.com`)";

impl Matcher {
    /// Parse `name<op>value`. The name is a label name (`[A-Za-z_][A-Za-z0-9_]*`); the value
    /// is the rest of the text, optionally in double quotes; a regex value must compile.
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let fail = |reason: String| MatcherError {
            matcher: crate::util::quote_untrusted(text.trim(), 80),
            reason,
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(fail(format!("is empty; {FORM}")));
        }
        if t.chars().count() > MAX_MATCHER_CHARS {
            return Err(fail(format!(
                "is longer than {MAX_MATCHER_CHARS} characters"
            )));
        }
        if t.chars().any(char::is_control) {
            return Err(fail("contains control characters".into()));
        }
        let end = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(t.len());
        let (name, rest) = t.split_at(end);
        if name.is_empty() {
            return Err(fail(format!("does not start with a label name; {FORM}")));
        }
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(fail(format!(
                "the label name `{name}` starts with a digit; a label name is letters, digits and `_`, not starting with a digit"
            )));
        }
        let rest = rest.trim_start();
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Regex, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Equal, v)
        } else {
            return Err(fail(format!(
                "no operator after the label name `{name}`; {FORM}"
            )));
        };
        let value = value.trim();
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) if value.len() >= 2 => inner,
            _ => value,
        };
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        let why = match e {
                            regex::Error::CompiledTooBig(_) => {
                                "the regex is too large once compiled; write a simpler one".into()
                            }
                            other => format!(
                                "the regex is not valid: {}",
                                other.to_string().lines().last().unwrap_or("syntax error")
                            ),
                        };
                        fail(why)
                    })?,
            ),
            _ => None,
        };
        if name == "level"
            && matches!(op, MatchOp::Equal | MatchOp::NotEqual)
            && crate::alerts::Level::parse(value).is_none()
        {
            return Err(fail(format!(
                "`{value}` is not a level; allowed: info, warning, critical, emergency"
            )));
        }
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Whether the value of this matcher's label (None: the alert lacks it) passes.
    pub fn matches_value(&self, actual: Option<&str>) -> bool {
        let actual = actual.unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => actual == self.value,
            (MatchOp::NotEqual, _) => actual != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(actual),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(actual),
            // A regex op always has its regex (parse builds it).
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether this matcher passes for `fields` ([`fields_of`] an alert).
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.matches_value(fields.get(&self.name).map(String::as_str))
    }

    /// `name=value` with this exact name and value (an equality that names something).
    pub fn is_equal(&self, name: &str, value: &str) -> bool {
        self.op == MatchOp::Equal && self.name == name && self.value == value
    }
}

/// Parse a list of matchers: at least one, at most [`MAX_MATCHERS`]; `key` names the list
/// (`matchers`, `maintenance[0].matchers`) and the error names the entry (`matchers[2]`).
pub fn parse_list(key: &str, texts: &[String]) -> Result<Vec<Matcher>, (String, String)> {
    if texts.is_empty() {
        return Err((
            key.to_string(),
            format!("needs at least one matcher; {FORM}"),
        ));
    }
    if texts.len() > MAX_MATCHERS {
        return Err((
            key.to_string(),
            format!("{} matchers; at most {MAX_MATCHERS}", texts.len()),
        ));
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Matcher::parse(t).map_err(|e| (format!("{key}[{i}]"), e.to_string())))
        .collect()
}

/// Whether every matcher passes (an empty list matches everything).
pub fn all_match(matchers: &[Matcher], fields: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(fields))
}

/// What matchers see of an alert: its labels, then `monitor`, `code`, `level`, `id` and
/// `fingerprint` over them.
pub fn fields_of(row: &AlertRow) -> BTreeMap<String, String> {
    let mut f = row.labels.clone();
    f.insert("monitor".into(), row.monitor.clone());
    f.insert("code".into(), row.code.clone());
    f.insert("level".into(), row.level.as_str().into());
    f.insert("id".into(), row.id());
    f.insert("fingerprint".into(), row.fingerprint.clone());
    f
}

/// Whether `matchers` name this alert explicitly, which an `emergency` alert requires
/// before anything mutes it: `level=emergency`, or `id=` / `fingerprint=` equal to its own.
pub fn names_explicitly(matchers: &[Matcher], row: &AlertRow) -> bool {
    matchers.iter().any(|m| {
        m.is_equal("level", "emergency")
            || m.is_equal("id", &row.id())
            || m.is_equal("fingerprint", &row.fingerprint)
    })
}

/// Whether `matchers` mute this alert: all match, and an `emergency` alert only when it is
/// named explicitly ([`names_explicitly`]).
pub fn mutes(matchers: &[Matcher], row: &AlertRow) -> bool {
    all_match(matchers, &fields_of(row))
        && (row.level != crate::alerts::Level::Emergency || names_explicitly(matchers, row))
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
pub(crate) mod tests;
