//! The arguments of `scan_host` and their validation into a [`ScanPlan`] (target shape,
//! port spec, timeout range), with errors that name the argument.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::ports;
use crate::checks::ArgError;

/// Largest `timeout_ms`.
pub const MAX_TIMEOUT_MS: i64 = 30_000;

/// Arguments of `scan_host`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanArgs {
    /// Hostname, IP address, or CIDR of at most 256 addresses. Must be inside the scan scope
    /// (`SECOPS_SCAN_ALLOW`, loopback only by default).
    pub target: String,
    /// `top100` (default), `top1000`, `all`, one port number, or ports and ranges like
    /// `"22,80,8000-8100"` or `[22, 80, "8000-8100"]`.
    #[serde(default)]
    #[schemars(extend("default" = "top100"))]
    pub ports: Option<ports::PortSpec>,
    /// Read banners and name services on open ports, with TLS certificate details
    /// (default true).
    #[serde(default)]
    #[schemars(extend("default" = true))]
    pub detect_services: Option<bool>,
    /// Per-connection timeout in milliseconds (1 to 30000). Default: adaptive, from the
    /// measured round-trip time.
    #[serde(default)]
    #[schemars(range(min = 1, max = 30000))]
    pub timeout_ms: Option<i64>,
}

/// Validated arguments.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub target: String,
    pub ports_spec: String,
    pub ports: Vec<u16>,
    pub detect_services: bool,
    pub timeout: Option<Duration>,
}

impl ScanArgs {
    /// Check every argument; the error names the argument and what is allowed.
    pub fn validate(&self) -> Result<ScanPlan, ArgError> {
        let target = self.target.as_str();
        if target != target.trim() && !target.trim().is_empty() {
            return Err(ArgError::new(
                "target",
                "has surrounding spaces: values are exact; give a hostname, an IP address or a \
                 CIDR of at most 256 addresses",
            ));
        }
        if target.trim().is_empty() {
            return Err(ArgError::new(
                "target",
                "empty; give a hostname, an IP address or a CIDR of at most 256 addresses",
            ));
        }
        if target.len() > 253 {
            return Err(ArgError::new(
                "target",
                "longer than 253 characters; give a hostname, an IP address or a CIDR",
            ));
        }
        let spec = self.ports.as_ref().map_or("top100", |p| p.as_str());
        let ports = ports::parse(spec).map_err(|reason| ArgError::new("ports", reason))?;
        let timeout = match self.timeout_ms {
            None => None,
            Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => {
                Some(Duration::from_millis(ms as u64))
            }
            Some(ms) => {
                return Err(ArgError::new(
                    "timeout_ms",
                    format!(
                        "{ms} is out of range; allowed 1 to {MAX_TIMEOUT_MS} milliseconds, or \
                         leave it out for an adaptive timeout"
                    ),
                ));
            }
        };
        Ok(ScanPlan {
            target: target.to_string(),
            ports_spec: crate::util::sanitize_untrusted(spec.as_bytes(), 200),
            ports: ports.0,
            detect_services: self.detect_services.unwrap_or(true),
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_validated_with_precise_errors() {
        let args = |t: &str, p: Option<&str>, ms: Option<i64>| ScanArgs {
            target: t.into(),
            ports: p.map(Into::into),
            detect_services: None,
            timeout_ms: ms,
        };
        let e = args("", None, None).validate().unwrap_err();
        assert_eq!(e.argument, "target");
        let e = args("127.0.0.1", Some("22,abc"), None)
            .validate()
            .unwrap_err();
        assert_eq!(e.argument, "ports");
        assert!(e.reason.contains("abc"), "{}", e.reason);
        let e = args("127.0.0.1", Some("0-10"), None)
            .validate()
            .unwrap_err();
        assert_eq!(e.argument, "ports");
        let e = args("127.0.0.1", None, Some(0)).validate().unwrap_err();
        assert_eq!(e.argument, "timeout_ms");
        let p = args("127.0.0.1", None, None).validate().unwrap();
        assert_eq!(p.ports.len(), 100);
        assert_eq!(p.ports_spec, "top100");
        assert!(p.detect_services);
        assert!(p.timeout.is_none());
    }
}
