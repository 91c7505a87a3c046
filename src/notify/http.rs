//! What the provider channels (`slack`, `sms`, `pagerduty`) share: a base URL that must be
//! https unless its host is loopback, one bounded HTTP exchange within the channel's
//! timeout (the answer read up to a cap, `Retry-After` parsed), every text we say about it
//! scrubbed of the channel's secrets, and the verdict of a channel that sends several
//! requests for one notification ([`combine`]).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::webhook::parse_retry_after;
use super::{ChannelError, Delivery};

/// How much of an answer is read (bytes) and kept in an excerpt (characters).
pub(crate) const ANSWER_READ: usize = 8192;
pub(crate) const ANSWER_KEEP: usize = 200;
/// What a secret looks like wherever we would otherwise have printed it.
pub(crate) const MASK: &str = "***";

/// Check a `timeout_ms` setting (1 ms to 5 minutes).
pub(crate) fn check_timeout(channel: &str, timeout_ms: u64) -> Result<(), ChannelError> {
    if !(1..=300_000).contains(&timeout_ms) {
        return Err(ChannelError::new(
            channel,
            format!("timeout_ms must be between 1 and 300000, not {timeout_ms}"),
        ));
    }
    Ok(())
}

/// True for `localhost` and loopback addresses (where plain http is allowed: tests, a
/// local relay).
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Parse a provider URL named `key`: http(s) with a host, https unless the host is
/// loopback. `secret`: the URL itself is a secret, so the error never quotes it.
pub(crate) fn provider_url(
    channel: &str,
    key: &str,
    raw: &str,
    secret: bool,
) -> Result<reqwest::Url, ChannelError> {
    let err = |reason: String| ChannelError::new(channel, reason);
    let shown = if secret {
        String::new()
    } else {
        format!(
            " `{}`",
            crate::util::sanitize_untrusted(raw.as_bytes(), 120)
        )
    };
    let url = reqwest::Url::parse(raw)
        .map_err(|e| err(format!("{key}{shown} is not a valid URL ({e})")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err(format!("{key}{shown} has no host")));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(err(format!(
                "{key}{shown} must use https:// (plain http only to a loopback host)"
            )));
        }
        _ => return Err(err(format!("{key}{shown} must start with https://"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(format!("{key} must not carry credentials")));
    }
    Ok(url)
}

/// One provider's HTTP client and the strings scrubbed from what it says.
pub(crate) struct Http {
    pub client: reqwest::Client,
    pub timeout_ms: u64,
    redact: Vec<String>,
}

/// A provider's answer: status, `Retry-After`, the raw (bounded) body and a sanitised,
/// scrubbed excerpt of it.
pub(crate) struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub raw: Vec<u8>,
    pub excerpt: String,
}

impl Answer {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.raw).ok()
    }
}

impl Http {
    /// `redact`: the secrets (and parts of them) never to print; short ones are ignored.
    pub fn new(channel: &str, timeout_ms: u64, redact: Vec<String>) -> Result<Self, ChannelError> {
        check_timeout(channel, timeout_ms)?;
        let timeout = Duration::from_millis(timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("secops-mcp/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| ChannelError::new(channel, "cannot build the HTTP client"))?;
        let mut redact: Vec<String> = redact.into_iter().filter(|s| s.len() >= 6).collect();
        // Longest first, so a URL is scrubbed whole before its parts.
        redact.sort_by_key(|s| std::cmp::Reverse(s.len()));
        redact.dedup();
        Ok(Self {
            client,
            timeout_ms,
            redact,
        })
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.redact {
            out = out.replace(s.as_str(), MASK);
        }
        out
    }

    /// Sanitise untrusted bytes to an excerpt and scrub it.
    pub fn excerpt(&self, raw: &[u8]) -> String {
        self.scrub(&crate::util::sanitize_untrusted(raw, ANSWER_KEEP))
    }

    /// Send `req` and read the answer; a transport error or timeout is a `Retry` whose
    /// text carries neither the URL nor a secret.
    pub async fn exchange(&self, req: reqwest::RequestBuilder) -> Result<Answer, Delivery> {
        let mut resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut raw = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    raw.extend_from_slice(&c);
                    if raw.len() >= ANSWER_READ {
                        raw.truncate(ANSWER_READ);
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(self.transport_error(e)),
            }
        }
        let excerpt = self.excerpt(&raw);
        Ok(Answer {
            status,
            retry_after,
            raw,
            excerpt,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> Delivery {
        let what = if e.is_timeout() {
            format!("timed out after {} ms", self.timeout_ms)
        } else if e.is_connect() {
            "cannot connect".to_string()
        } else {
            "request failed".to_string()
        };
        let e = e.without_url();
        let mut last = None;
        let mut src = std::error::Error::source(&e);
        while let Some(c) = src {
            last = Some(c.to_string());
            src = c.source();
        }
        let detail = match last {
            Some(c) if !e.is_timeout() => format!(": {c}"),
            _ => String::new(),
        };
        Delivery::Retry {
            status: None,
            reason: self.excerpt(format!("{what}{detail}").as_bytes()),
            after: None,
        }
    }
}

/// The verdict of several requests for one notification (one per SMS recipient, one per
/// PagerDuty event): delivered when every part was; else retried when any part may be
/// retried (the whole notification is sent again, parts already delivered included); else
/// failed. The reason names each part that was not delivered.
pub(crate) fn combine(parts: Vec<(String, Delivery)>) -> Delivery {
    if parts.len() == 1 {
        let (label, d) = parts.into_iter().next().expect("one part");
        return d.map_text(|text| format!("{label}: {text}"));
    }
    let total = parts.len();
    let mut delivered = Vec::new();
    let mut problems = Vec::new();
    let mut retry = false;
    let mut after: Option<Duration> = None;
    let mut last_status = None;
    for (label, d) in parts {
        match d {
            Delivery::Delivered { status, .. } => {
                last_status = last_status.or(status);
                delivered.push(label);
            }
            Delivery::Retry {
                status,
                reason,
                after: a,
            } => {
                retry = true;
                after = after.max(a);
                last_status = status.or(last_status);
                problems.push(format!("{label}: {reason}"));
            }
            Delivery::Failed { status, reason } => {
                last_status = status.or(last_status);
                problems.push(format!("{label}: {reason}"));
            }
        }
    }
    if problems.is_empty() {
        return Delivery::Delivered {
            status: last_status,
            answer: format!("all {total} delivered ({})", delivered.join(", ")),
        };
    }
    let reason = format!(
        "{} of {total} not delivered: {}{}",
        problems.len(),
        problems.join("; "),
        if delivered.is_empty() {
            String::new()
        } else {
            format!(" (delivered: {})", delivered.join(", "))
        }
    );
    if retry {
        Delivery::Retry {
            status: last_status,
            reason,
            after,
        }
    } else {
        Delivery::Failed {
            status: last_status,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_urls_are_https_unless_loopback() {
        for ok in [
            "https://api.twilio.com",
            "http://127.0.0.1:9/x",
            "http://[::1]:9",
            "http://localhost:8080",
        ] {
            assert!(provider_url("c", "base_url", ok, false).is_ok(), "{ok}");
        }
        let e = provider_url("c", "base_url", "http://events.example", false).unwrap_err();
        assert!(
            e.reason
                .starts_with("base_url `http://events.example` must use https")
        );
        let e = provider_url("c", "base_url", "ftp://x", false).unwrap_err();
        assert!(e.reason.contains("must start with https://"), "{e}");
        let e = provider_url("c", "url", "http://hooks.example/T0K3N", true).unwrap_err();
        assert!(
            e.reason.starts_with("url must use https") && !e.reason.contains("T0K3N"),
            "{e}"
        );
        let e = provider_url("c", "base_url", "https://u:p@x.example", false).unwrap_err();
        assert!(e.reason.contains("credentials"), "{e}");
    }

    #[test]
    fn several_parts_combine_into_one_verdict_naming_the_failures() {
        let ok = || Delivery::Delivered {
            status: Some(201),
            answer: "fine".into(),
        };
        let failed = || Delivery::Failed {
            status: Some(400),
            reason: "HTTP 400: bad To".into(),
        };
        let retry = || Delivery::Retry {
            status: Some(503),
            reason: "HTTP 503".into(),
            after: Some(Duration::from_secs(5)),
        };
        assert!(matches!(
            combine(vec![("a".into(), ok()), ("b".into(), ok())]),
            Delivery::Delivered { .. }
        ));
        match combine(vec![("a".into(), ok()), ("b".into(), failed())]) {
            Delivery::Failed { reason, .. } => {
                assert_eq!(
                    reason,
                    "1 of 2 not delivered: b: HTTP 400: bad To (delivered: a)"
                )
            }
            d => panic!("{d:?}"),
        }
        match combine(vec![("a".into(), failed()), ("b".into(), retry())]) {
            Delivery::Retry { reason, after, .. } => {
                assert!(reason.starts_with("2 of 2 not delivered"), "{reason}");
                assert_eq!(after, Some(Duration::from_secs(5)));
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn scrub_masks_every_secret_longest_first() {
        let h = Http::new(
            "c",
            1000,
            vec![
                "https://h.example/T0K3N-LONG".into(),
                "T0K3N-LONG".into(),
                "ab".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            h.scrub("posting to https://h.example/T0K3N-LONG and T0K3N-LONG ab"),
            "posting to *** and *** ab"
        );
    }
}
