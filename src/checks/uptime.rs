//! Uptime probes of HTTP(S) endpoints (the `uptime` monitor's check): one request with its
//! own timeout and TLS verification on, judged against the expected status range, the
//! response-time budget and an optional body substring. A probe says what it saw (status,
//! time, TLS failure) and turns into an [`Observation`]: down, TLS invalid or unexpected
//! status (critical), body mismatch (critical), slow (warning), or fine.
//!
//! A URL can carry credentials (userinfo, a token in the query): reports and observations
//! show it without userinfo, query or fragment ([`display_url`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::ArgError;
use crate::alerts::{Level, Observation};
use crate::util::sanitize_untrusted;

/// How much of a body is read to look for `body_contains`.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Redirects followed (to any host the operator's target leads to).
const MAX_REDIRECTS: usize = 5;

/// The HTTP method of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
}

/// One endpoint to probe, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct UptimeTarget {
    pub url: reqwest::Url,
    pub method: Method,
    /// Accepted statuses, inclusive (default 200-399).
    pub expect_status: (u16, u16),
    /// Slower than this is a warning (default 2000 ms).
    pub max_response_ms: u64,
    pub body_contains: Option<String>,
    /// The whole request (connect, TLS, headers, body) must finish within this.
    pub timeout_ms: u64,
}

impl UptimeTarget {
    pub const DEFAULT_STATUS: (u16, u16) = (200, 399);
    pub const DEFAULT_MAX_RESPONSE_MS: u64 = 2_000;
    pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

    /// Validate a target; `key` names the setting in errors (e.g. `monitors[2].url`).
    pub fn parse(
        key: &str,
        url: &str,
        method: Option<&str>,
        expect_status: Option<&str>,
        max_response_ms: Option<u64>,
        body_contains: Option<String>,
        timeout_ms: Option<u64>,
    ) -> Result<Self, ArgError> {
        let url = parse_url(&format!("{key}.url"), url)?;
        let method = match method {
            None => Method::Get,
            Some(m) => match super::keyword(&format!("{key}.method"), m, &["GET", "HEAD"])? {
                "HEAD" => Method::Head,
                _ => Method::Get,
            },
        };
        let expect_status = match expect_status {
            None => Self::DEFAULT_STATUS,
            Some(s) => parse_status_range(&format!("{key}.expect_status"), s)?,
        };
        let max_response_ms = max_response_ms.unwrap_or(Self::DEFAULT_MAX_RESPONSE_MS);
        let timeout_ms = timeout_ms.unwrap_or(Self::DEFAULT_TIMEOUT_MS);
        if !(1..=300_000).contains(&timeout_ms) {
            return Err(ArgError::new(
                format!("{key}.timeout_ms"),
                format!("must be between 1 and 300000 (not {timeout_ms})"),
            ));
        }
        if !(1..=timeout_ms).contains(&max_response_ms) {
            return Err(ArgError::new(
                format!("{key}.max_response_ms"),
                format!("must be between 1 and timeout_ms ({timeout_ms}), not {max_response_ms}"),
            ));
        }
        if let Some(b) = &body_contains {
            if b.is_empty() || b.len() > 1024 {
                return Err(ArgError::new(
                    format!("{key}.body_contains"),
                    "must be 1 to 1024 bytes of text",
                ));
            }
            if method == Method::Head {
                return Err(ArgError::new(
                    format!("{key}.body_contains"),
                    "a HEAD response has no body: use method GET",
                ));
            }
        }
        Ok(Self {
            url,
            method,
            expect_status,
            max_response_ms,
            body_contains,
            timeout_ms,
        })
    }
}

fn parse_url(key: &str, url: &str) -> Result<reqwest::Url, ArgError> {
    let u = reqwest::Url::parse(url).map_err(|e| {
        ArgError::new(
            key,
            format!("not a URL ({e}); write e.g. https://example.com/health"),
        )
    })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(ArgError::new(
            key,
            format!(
                "scheme `{}` is not allowed; allowed: `http`, `https`",
                u.scheme()
            ),
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(ArgError::new(key, "has no host"));
    }
    Ok(u)
}

/// `200`, `200-399` (inclusive), statuses 100-599.
pub fn parse_status_range(key: &str, s: &str) -> Result<(u16, u16), ArgError> {
    let bad = || {
        ArgError::new(
            key,
            format!(
                "`{}` is not a status or a range; write e.g. `200` or `200-399` (100-599)",
                sanitize_untrusted(s.as_bytes(), 40)
            ),
        )
    };
    let num = |t: &str| {
        t.parse::<u16>()
            .ok()
            .filter(|n| (100..=599).contains(n))
            .ok_or_else(bad)
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(s)?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// The URL as reports show it: no userinfo, no query, no fragment.
pub fn display_url(u: &reqwest::Url) -> String {
    let mut shown = u.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// What went wrong with a probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// No answer: refused, unresolvable, reset, timed out.
    Down {
        reason: String,
    },
    /// The TLS handshake or the certificate failed verification.
    TlsInvalid {
        reason: String,
    },
    UnexpectedStatus {
        status: u16,
    },
    BodyMismatch,
    Slow {
        response_ms: u64,
    },
}

impl Problem {
    pub fn code(&self) -> &'static str {
        match self {
            Problem::Down { .. } => "endpoint_down",
            Problem::TlsInvalid { .. } => "endpoint_tls_invalid",
            Problem::UnexpectedStatus { .. } => "endpoint_unexpected_status",
            Problem::BodyMismatch => "endpoint_body_mismatch",
            Problem::Slow { .. } => "endpoint_slow",
        }
    }

    pub fn level(&self) -> Level {
        match self {
            Problem::Slow { .. } => Level::Warning,
            _ => Level::Critical,
        }
    }
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    /// The URL as shown (see [`display_url`]).
    pub url: String,
    pub status: Option<u16>,
    /// Time to the full answer (headers, and the body when it is read).
    pub response_ms: Option<u64>,
    pub problem: Option<Problem>,
}

impl Probe {
    /// The probe as a monitor observation (code per problem; `uptime_ok` when fine, which
    /// resolves any alert of this URL).
    pub fn observations(&self) -> Vec<Observation> {
        let subject = BTreeMap::from([("url".to_string(), self.url.clone())]);
        let fine = |code: &str| Observation {
            code: code.to_string(),
            subject: subject.clone(),
            level: None,
            title: format!("{} is up", self.url),
            summary: String::new(),
            value: self.response_ms.map(|ms| format!("{ms} ms")),
        };
        // Every problem code is observed each run, so the one that stopped holding resolves.
        let codes = [
            "endpoint_down",
            "endpoint_tls_invalid",
            "endpoint_unexpected_status",
            "endpoint_body_mismatch",
            "endpoint_slow",
        ];
        codes
            .iter()
            .map(|code| match &self.problem {
                Some(p) if p.code() == *code => Observation {
                    code: code.to_string(),
                    subject: subject.clone(),
                    level: Some(p.level()),
                    title: self.title(p),
                    summary: self.summary(p),
                    value: self.value(p),
                },
                _ => fine(code),
            })
            .collect()
    }

    fn title(&self, p: &Problem) -> String {
        match p {
            Problem::Down { .. } => format!("{} is down", self.url),
            Problem::TlsInvalid { .. } => format!("{} has an invalid TLS certificate", self.url),
            Problem::UnexpectedStatus { status } => {
                format!("{} answers HTTP {status}", self.url)
            }
            Problem::BodyMismatch => format!("{} answers without the expected text", self.url),
            Problem::Slow { response_ms } => {
                format!("{} is slow ({response_ms} ms)", self.url)
            }
        }
    }

    fn summary(&self, p: &Problem) -> String {
        match p {
            Problem::Down { reason } => format!(
                "No answer from {}: {reason}. Check that the service runs and that the network path (DNS, firewall, proxy) is open.",
                self.url
            ),
            Problem::TlsInvalid { reason } => format!(
                "The TLS certificate of {} failed verification: {reason}. Renew or fix the certificate (check_cert shows the chain).",
                self.url
            ),
            Problem::UnexpectedStatus { status } => format!(
                "{} answered HTTP {status}, outside the expected statuses. Check the service's logs.",
                self.url
            ),
            Problem::BodyMismatch => format!(
                "{} answered, but without the expected text: it may serve an error page.",
                self.url
            ),
            Problem::Slow { response_ms } => format!(
                "{} took {response_ms} ms to answer, over its budget. Check the service's load and its dependencies.",
                self.url
            ),
        }
    }

    fn value(&self, p: &Problem) -> Option<String> {
        match p {
            Problem::UnexpectedStatus { status } => Some(format!("HTTP {status}")),
            _ => self.response_ms.map(|ms| format!("{ms} ms")),
        }
    }
}

/// Probes endpoints with one shared HTTP client (connection reuse, one trust store).
#[derive(Clone)]
pub struct UptimeProber {
    client: reqwest::Client,
}

impl UptimeProber {
    /// Trust the system roots, or only `ca_file` when given (a private CA).
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("secops-mcp/", env!("CARGO_PKG_VERSION"), " uptime"))
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            // Every probe opens its own connection: an uptime check must see the endpoint's
            // connect and TLS handshake as a new client would (a reused connection hides a
            // listener that stopped accepting or a certificate that changed), and idle
            // connections to a thousand endpoints are memory kept for nothing.
            .pool_max_idle_per_host(0);
        if let Some(path) = ca_file {
            let certs = crate::util::read_ca_bundle(path).map_err(|e| anyhow::anyhow!(e))?;
            b = b.tls_certs_only(certs);
        }
        Ok(Self { client: b.build()? })
    }

    /// One probe of `t`, bounded by its timeout.
    pub async fn probe(&self, t: &UptimeTarget) -> Probe {
        let url = display_url(&t.url);
        let timeout = Duration::from_millis(t.timeout_ms);
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, self.fetch(t)).await;
        let ms = started.elapsed().as_millis() as u64;
        let (status, problem) = match result {
            Err(_) => (
                None,
                Some(Problem::Down {
                    reason: format!("no complete answer within {} ms", t.timeout_ms),
                }),
            ),
            Ok(Err(e)) => (None, Some(classify_error(&e))),
            Ok(Ok((status, body_ok))) => {
                let problem = if !(t.expect_status.0..=t.expect_status.1).contains(&status) {
                    Some(Problem::UnexpectedStatus { status })
                } else if !body_ok {
                    Some(Problem::BodyMismatch)
                } else if ms > t.max_response_ms {
                    Some(Problem::Slow { response_ms: ms })
                } else {
                    None
                };
                (Some(status), problem)
            }
        };
        let answered = status.is_some();
        Probe {
            url,
            status,
            response_ms: answered.then_some(ms),
            problem,
        }
    }

    /// The status, and whether the body holds `body_contains` (true when not asked).
    async fn fetch(&self, t: &UptimeTarget) -> Result<(u16, bool), reqwest::Error> {
        let req = match t.method {
            Method::Get => self.client.get(t.url.clone()),
            Method::Head => self.client.head(t.url.clone()),
        };
        let mut resp = req.send().await?;
        let status = resp.status().as_u16();
        let Some(needle) = &t.body_contains else {
            return Ok((status, true));
        };
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            body.extend_from_slice(&chunk);
            if contains(&body, needle.as_bytes()) {
                return Ok((status, true));
            }
            if body.len() >= MAX_BODY_BYTES {
                break;
            }
        }
        Ok((status, contains(&body, needle.as_bytes())))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A transport error as a problem: a certificate or handshake failure is TLS, the rest is
/// down. The text never holds the URL (it may carry credentials).
fn classify_error(e: &reqwest::Error) -> Problem {
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let detail = chain
        .iter()
        .rev()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "connection failed".to_string());
    let detail = sanitize_untrusted(detail.as_bytes(), 200);
    let tls = chain.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        s.contains("certificate") || s.contains("tls") || s.contains("handshake")
    });
    if tls {
        Problem::TlsInvalid { reason: detail }
    } else if e.is_timeout() {
        Problem::Down {
            reason: "timed out".to_string(),
        }
    } else {
        Problem::Down { reason: detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<UptimeTarget, ArgError> {
        UptimeTarget::parse("monitors[0]", url, None, None, None, None, None)
    }

    #[test]
    fn targets_are_validated_with_the_key_named() {
        let t = parse("https://example.com/health").unwrap();
        assert_eq!(t.expect_status, (200, 399));
        assert_eq!((t.max_response_ms, t.timeout_ms), (2_000, 10_000));
        let e = parse("ftp://example.com/").unwrap_err();
        assert_eq!(e.argument, "monitors[0].url");
        assert!(e.reason.contains("`ftp`"), "{e}");
        assert!(parse("not a url").is_err());
        let e =
            UptimeTarget::parse("m", "http://h/", Some("get"), None, None, None, None).unwrap_err();
        assert_eq!(e.argument, "m.method");
        assert!(e.reason.contains("`GET`"), "{e}");
        let e = UptimeTarget::parse(
            "m",
            "http://h/",
            Some("HEAD"),
            None,
            None,
            Some("ok".into()),
            None,
        )
        .unwrap_err();
        assert_eq!(e.argument, "m.body_contains");
        let e = UptimeTarget::parse("m", "http://h/", None, None, Some(20_000), None, None)
            .unwrap_err();
        assert_eq!(e.argument, "m.max_response_ms");
    }

    #[test]
    fn status_ranges_parse_and_refuse_nonsense() {
        assert_eq!(parse_status_range("k", "200").unwrap(), (200, 200));
        assert_eq!(parse_status_range("k", "200-299").unwrap(), (200, 299));
        for bad in ["", "abc", "99", "600", "300-200", "200-", "2xx"] {
            let e = parse_status_range("k", bad).unwrap_err();
            assert_eq!(e.argument, "k", "{bad}");
        }
    }

    #[test]
    fn shown_urls_carry_no_credentials() {
        let u = reqwest::Url::parse("https://user:pw@example.com:8443/h?token=s3cret#x").unwrap();
        assert_eq!(display_url(&u), "https://example.com:8443/h");
    }

    #[test]
    fn a_probe_observes_every_code_so_the_cleared_one_resolves() {
        let p = Probe {
            url: "https://a.example/".into(),
            status: Some(200),
            response_ms: Some(3_100),
            problem: Some(Problem::Slow { response_ms: 3_100 }),
        };
        let obs = p.observations();
        assert_eq!(obs.len(), 5);
        let slow = obs.iter().find(|o| o.code == "endpoint_slow").unwrap();
        assert_eq!(slow.level, Some(Level::Warning));
        assert_eq!(slow.value.as_deref(), Some("3100 ms"));
        assert!(
            obs.iter()
                .filter(|o| o.code != "endpoint_slow")
                .all(|o| o.level.is_none())
        );
        assert!(obs.iter().all(|o| o.subject["url"] == "https://a.example/"));
    }
}
