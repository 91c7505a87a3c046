//! Read-only checks. Each check takes typed arguments and a context and returns a typed
//! report or a typed error; no MCP types live here, so the CLI and tests call them directly.

pub mod cert;
pub mod containers;
pub mod finding;
pub mod host;
pub mod incidents;
pub mod scan;
pub mod wazuh_health;

pub use finding::{Finding, Severity};

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
