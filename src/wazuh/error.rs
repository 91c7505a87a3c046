//! Errors from talking to Wazuh, each saying what failed and what to check. Wazuh's own
//! error bodies (`title`, `detail`, `remediation`, `error`) are carried through, sanitised.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WazuhError {
    #[error("{what}: no answer within {} ms; check that the service is up and reachable", timeout.as_millis())]
    Timeout { what: String, timeout: Duration },
    #[error(
        "{what}: cannot connect ({reason}); check the URL, firewall and that the service is running"
    )]
    Connect { what: String, reason: String },
    #[error(
        "{what}: TLS failure ({reason}); check the CA file (SECOPS_WAZUH_CA_FILE / SECOPS_INDEXER_CA_FILE) and the server certificate"
    )]
    Tls { what: String, reason: String },
    #[error("{what}: authentication failed ({detail}); check the user and password")]
    Unauthorized { what: String, detail: String },
    #[error("{what}: access denied ({detail})")]
    Forbidden { what: String, detail: String },
    #[error("{what}: rate limited by Wazuh (error 6001) after {attempts} attempts; retry later")]
    RateLimited { what: String, attempts: u32 },
    #[error("{what}: Wazuh returned HTTP {status}: {title}: {detail}{}", remediation.as_ref().map(|r| format!(" (remediation: {r})")).unwrap_or_default())]
    Api {
        what: String,
        status: u16,
        code: Option<i64>,
        title: String,
        detail: String,
        remediation: Option<String>,
    },
    #[error("{what}: unexpected response ({reason})")]
    Decode { what: String, reason: String },
    #[error("{what}: {reason}")]
    Config { what: String, reason: String },
}

impl WazuhError {
    /// A short stable code for findings (`wazuh_timeout`, `wazuh_unauthorized`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            WazuhError::Timeout { .. } => "timeout",
            WazuhError::Connect { .. } => "unreachable",
            WazuhError::Tls { .. } => "tls_error",
            WazuhError::Unauthorized { .. } => "unauthorized",
            WazuhError::Forbidden { .. } => "forbidden",
            WazuhError::RateLimited { .. } => "rate_limited",
            WazuhError::Api { .. } => "api_error",
            WazuhError::Decode { .. } => "bad_response",
            WazuhError::Config { .. } => "config_error",
        }
    }

    /// True when the service could not be reached at all (as opposed to answering badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            WazuhError::Timeout { .. } | WazuhError::Connect { .. } | WazuhError::Tls { .. }
        )
    }

    /// Classify a reqwest failure.
    pub(crate) fn from_reqwest(what: &str, e: &reqwest::Error, timeout: Duration) -> Self {
        let what = what.to_string();
        if e.is_timeout() {
            return WazuhError::Timeout { what, timeout };
        }
        // Walk the source chain for a TLS cause (reqwest wraps rustls errors).
        let mut chain = String::new();
        let mut src: Option<&dyn std::error::Error> = Some(e);
        while let Some(s) = src {
            if !chain.is_empty() {
                chain.push_str(": ");
            }
            chain.push_str(&s.to_string());
            src = s.source();
        }
        let lower = chain.to_ascii_lowercase();
        let reason = crate::util::sanitize_untrusted(chain.as_bytes(), 300);
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            WazuhError::Tls { what, reason }
        } else if e.is_connect() || e.is_request() {
            WazuhError::Connect { what, reason }
        } else if e.is_decode() || e.is_body() {
            WazuhError::Decode { what, reason }
        } else {
            WazuhError::Connect { what, reason }
        }
    }
}
