//! Argument validation for `check_cert`: turns the caller's [`CertArgs`] into checked
//! [`CertOptions`] (targets parsed into [`Target`]s, defaults applied) or an [`ArgError`]
//! naming the argument, the reason and what is allowed. Never panics on any input.
//!
//! The grammar of one target (`host[:port]`, URLs, `file:`) is in `grammar.rs`.

mod grammar;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use rustls_pki_types::ServerName;

use super::CertArgs;
use crate::checks::ArgError;
use grammar::check_dns_name;
pub use grammar::{Host, Target, parse_target};

/// At most this many targets per call.
pub const MAX_TARGETS: usize = 100;
/// Default `warning_days`.
pub const DEFAULT_WARNING_DAYS: i64 = 30;
/// Default `critical_days`.
pub const DEFAULT_CRITICAL_DAYS: i64 = 7;
/// Default `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: i64 = 5000;
/// Largest accepted `warning_days` / `critical_days` (ten years).
pub const MAX_DAYS: i64 = 3650;
/// Largest accepted `timeout_ms` (two minutes).
pub const MAX_TIMEOUT_MS: i64 = 120_000;
/// Default port for direct TLS.
pub const DEFAULT_TLS_PORT: u16 = 443;

/// Plaintext protocols that can be upgraded to TLS before the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    Smtp,
    Imap,
    Pop3,
    Ftp,
    Postgres,
}

impl StartTls {
    /// The values `starttls` accepts, for error messages.
    pub const ALLOWED: &'static str = "`smtp`, `imap`, `pop3`, `ftp`, `postgres`";

    /// Parses a protocol name (the CLI's `--starttls` takes any case; tool arguments are
    /// checked exactly first).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "smtp" => Some(Self::Smtp),
            "imap" => Some(Self::Imap),
            "pop3" => Some(Self::Pop3),
            "ftp" => Some(Self::Ftp),
            "postgres" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// Port used when the target names none (SMTP submission on 587 works by giving it).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Smtp => 25,
            Self::Imap => 143,
            Self::Pop3 => 110,
            Self::Ftp => 21,
            Self::Postgres => 5432,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "smtp",
            Self::Imap => "imap",
            Self::Pop3 => "pop3",
            Self::Ftp => "ftp",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for StartTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Validated arguments with defaults applied.
#[derive(Debug, Clone)]
pub struct CertOptions {
    /// `(as given, parsed)`, in input order.
    pub targets: Vec<(String, Target)>,
    pub sni: Option<ServerName<'static>>,
    pub starttls: Option<StartTls>,
    pub warning_days: i64,
    pub critical_days: i64,
    pub timeout: Duration,
    /// List every certificate of a CA bundle, not only those with a problem.
    pub details: bool,
}

impl CertArgs {
    /// Checks every argument and applies the defaults. The error names the argument,
    /// why it is wrong and what is allowed.
    pub fn validate(&self) -> Result<CertOptions, ArgError> {
        if self.targets.is_empty() {
            return Err(ArgError::new(
                "targets",
                format!(
                    "at least one target is required (1 to {MAX_TARGETS}): `host`, `host:port`, \
                     `https://host[:port]/...` or `file:/path/to/cert.pem`"
                ),
            ));
        }
        if self.targets.len() > MAX_TARGETS {
            return Err(ArgError::new(
                "targets",
                format!(
                    "{} targets given; at most {MAX_TARGETS} are allowed per call",
                    self.targets.len()
                ),
            ));
        }
        let starttls = match &self.starttls {
            None => None,
            Some(value) => {
                // Exact, like every keyword argument (a near miss is named in the error).
                let name = crate::checks::keyword(
                    "starttls",
                    value,
                    &["smtp", "imap", "pop3", "ftp", "postgres"],
                )?;
                StartTls::parse(name)
            }
        };

        let sni = match &self.sni {
            None => None,
            Some(value) => Some(parse_sni(value)?),
        };

        let warning_days = days_arg("warning_days", self.warning_days, DEFAULT_WARNING_DAYS)?;
        let critical_days = days_arg("critical_days", self.critical_days, DEFAULT_CRITICAL_DAYS)?;
        if critical_days > warning_days {
            return Err(ArgError::new(
                "critical_days",
                format!(
                    "{critical_days} is larger than warning_days ({warning_days}); \
                     critical_days must be less than or equal to warning_days"
                ),
            ));
        }

        let timeout_ms = self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(ArgError::new(
                "timeout_ms",
                format!("{timeout_ms} is out of range; allowed 1 to {MAX_TIMEOUT_MS} milliseconds"),
            ));
        }
        let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(5000));

        let mut targets = Vec::with_capacity(self.targets.len());
        for (index, raw) in self.targets.iter().enumerate() {
            let target = parse_target(raw, starttls).map_err(|reason| {
                ArgError::new(
                    "targets",
                    format!("target #{} {}: {reason}", index + 1, quoted_target(raw)),
                )
            })?;
            targets.push((raw.clone(), target));
        }

        Ok(CertOptions {
            targets,
            sni,
            starttls,
            warning_days,
            critical_days,
            timeout,
            details: self.details.unwrap_or(false),
        })
    }
}

fn days_arg(name: &str, value: Option<i64>, default: i64) -> Result<i64, ArgError> {
    let days = value.unwrap_or(default);
    if !(0..=MAX_DAYS).contains(&days) {
        return Err(ArgError::new(
            name,
            format!("{days} is out of range; allowed 0 to {MAX_DAYS} days"),
        ));
    }
    Ok(days)
}

fn parse_sni(value: &str) -> Result<ServerName<'static>, ArgError> {
    let trimmed = value.trim();
    let invalid = |why: &str| {
        ArgError::new(
            "sni",
            format!(
                "`{}` {why}; give a DNS name such as `www.example.com` or an IP address",
                sanitize(value, 80)
            ),
        )
    };
    if trimmed.is_empty() {
        return Err(ArgError::new(
            "sni",
            "is empty; give a DNS name such as `www.example.com` or an IP address, or omit it",
        ));
    }
    if let Ok(ip) = trimmed.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    let name = trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    if let Err(why) = check_dns_name(&name) {
        return Err(invalid(&why));
    }
    ServerName::try_from(name).map_err(|_| invalid("is not a valid DNS name"))
}

/// The target as shown in an error: sanitised, shortened, and never with URL credentials.
fn quoted_target(raw: &str) -> String {
    if raw.contains("://") && raw.contains('@') {
        return "(URL with credentials, not shown)".into();
    }
    format!("`{}`", sanitize(raw, 80))
}

/// Makes untrusted or user-given text safe to put in a message: printable ASCII only,
/// at most `max` characters (then `…`).
pub(crate) fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (count, c) in s.chars().enumerate() {
        if count >= max {
            out.push('…');
            break;
        }
        out.push(if c.is_ascii_graphic() || c == ' ' {
            c
        } else {
            '?'
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_control_and_truncates() {
        assert_eq!(sanitize("ab\u{1b}[31mc", 100), "ab?[31mc");
        assert_eq!(sanitize("abcdef", 3), "abc…");
    }
}
