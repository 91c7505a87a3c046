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

impl ArgError {
    pub fn new(argument: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            argument: argument.into(),
            reason: reason.into(),
        }
    }
}
