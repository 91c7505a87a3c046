//! Builds the reqwest client for a Wazuh endpoint: TLS verification on by default, trusting
//! only the configured CA file when one is given (Wazuh ships a private CA), else the system
//! roots; `insecure` turns verification off (warned at start).

use std::path::Path;
use std::time::Duration;

use super::WazuhError;

pub fn http_client(
    what: &str,
    ca_file: Option<&Path>,
    insecure: bool,
    timeout: Duration,
) -> Result<reqwest::Client, WazuhError> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("secops-mcp/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_file {
        let certs = crate::util::read_ca_bundle(path).map_err(|reason| WazuhError::Config {
            what: what.to_string(),
            reason,
        })?;
        b = b.tls_certs_only(certs);
    }
    if insecure {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| WazuhError::Config {
        what: what.to_string(),
        reason: format!("cannot build HTTP client: {e}"),
    })
}
