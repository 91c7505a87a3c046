//! Read-only checks, one tool one module. Each check exposes `run(&Deps, &Args) ->
//! Result<Report, Error>` (Deps borrowed from the application context) and its report
//! implements [`Summary`]; no MCP types live here, so the CLI and tests call them directly.
//! This file owns what every check shares: argument errors and parsers, `NoArgs`, `Summary`.

pub mod cert;
pub mod connections;
pub mod containers;
pub mod finding;
pub mod host;
pub mod open_incidents;
pub mod scan;
pub mod security_events;
pub mod uptime;
pub mod wazuh_health;

pub use finding::{Finding, Severity};

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// The one-paragraph text a person reads, sent next to the structured report.
pub trait Summary {
    fn summary(&self) -> String;
}

/// Arguments of tools that take none (unknown arguments are still refused).
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A bad argument from the caller: which one, why, and what is allowed.
/// At the MCP edge this becomes an `isError: true` result with this text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid argument `{argument}`: {reason}")]
pub struct ArgError {
    pub argument: String,
    pub reason: String,
}

/// Match a keyword argument exactly (the one rule for every enumerated value: lower case,
/// no surrounding spaces). A near miss (other case, spaces) is named in the error.
pub fn keyword(
    argument: &str,
    value: &str,
    allowed: &'static [&'static str],
) -> Result<&'static str, ArgError> {
    if let Some(k) = allowed.iter().find(|k| **k == value) {
        return Ok(k);
    }
    let shown = crate::util::sanitize_untrusted(value.as_bytes(), 40);
    let near = value.trim().to_ascii_lowercase();
    let hint = match allowed.iter().find(|k| **k == near) {
        Some(k) => format!(" (write `{k}`: values are exact, lower case, without spaces)"),
        None => String::new(),
    };
    let what = if value.trim().is_empty() {
        "empty".to_string()
    } else {
        format!("`{shown}` is not allowed{hint}")
    };
    Err(ArgError::new(
        argument,
        format!(
            "{what}; allowed: {}",
            allowed
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

impl ArgError {
    pub fn new(argument: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            argument: argument.into(),
            reason: reason.into(),
        }
    }
}

/// Parse `since`: `30m`, `24h`, `7d` (or `s`, `w`) or an RFC 3339 time.
pub fn parse_since(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, ArgError> {
    let bad = || {
        ArgError::new(
            "since",
            format!(
                "`{}` is not a duration like `30m`, `24h`, `7d` (units s, m, h, d, w) or an RFC 3339 time",
                crate::util::sanitize_untrusted(s.as_bytes(), 40)
            ),
        )
    };
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    if !(1..=366 * 86_400).contains(&n.saturating_mul(secs)) {
        return Err(ArgError::new("since", "must be between 1s and 366d"));
    }
    Ok(now - Duration::seconds(n * secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_and_rfc3339() {
        let now = OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
        assert_eq!(
            parse_since("30m", now).unwrap(),
            now - Duration::minutes(30)
        );
        assert_eq!(parse_since("7d", now).unwrap(), now - Duration::days(7));
        assert!(parse_since("2026-11-23T10:00:00Z", now).is_ok());
        for bad in ["", "yesterday", "5x", "0h", "-3h"] {
            assert_eq!(
                parse_since(bad, now).unwrap_err().argument,
                "since",
                "{bad}"
            );
        }
    }
}
