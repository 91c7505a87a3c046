//! The `webhook` channel: one JSON POST per notification whose body follows Prometheus
//! Alertmanager's webhook format (version 4), so existing receivers accept it; custom
//! headers; an optional HMAC-SHA256 signature over the exact body bytes
//! ([`SIGNATURE_HEADER`]`: sha256=<hex>`); a timeout on the whole exchange; the answer
//! classified by [`Delivery::of_http`] with `Retry-After` (seconds or an HTTP date). The
//! URL (a secret: it often carries a token) and the HMAC secret never appear in a
//! [`Delivery`], an error or a log line.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Channel, ChannelError, Delivery};
use crate::alerts::{AlertState, NotificationBody};
use crate::config::Secret;

/// The header carrying `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Secops-Signature";
/// The header carrying the notification's dedup key (stable across redeliveries).
pub const DEDUP_HEADER: &str = "X-Secops-Dedup-Key";
/// At most this many alerts go in one payload; the rest are counted in `truncatedAlerts`.
pub const MAX_ALERTS: usize = 500;
/// How much of the receiver's answer is read (bytes) and kept (characters).
const ANSWER_READ: usize = 4096;
const ANSWER_KEEP: usize = 200;
/// Alertmanager's "not resolved yet" `endsAt`.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// What a secret looks like wherever we would otherwise have printed it.
const MASK: &str = "***";
/// Headers the channel sets itself.
const RESERVED: [&str; 5] = [
    "content-type",
    "content-length",
    "host",
    "x-secops-signature",
    "x-secops-dedup-key",
];

/// A webhook channel's settings (from the config; the URL and the secret from env or
/// files).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `http://` or `https://`; a secret.
    pub url: Secret,
    /// Extra request headers; values are secrets (they often hold tokens).
    pub headers: BTreeMap<String, Secret>,
    /// Sign the body with HMAC-SHA256 under this secret.
    pub hmac_secret: Option<Secret>,
    /// The whole exchange (connect, send, answer) must finish within this.
    pub timeout_ms: u64,
}

/// One configured webhook.
pub struct WebhookChannel {
    name: String,
    url: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    hmac_secret: Option<Secret>,
    timeout_ms: u64,
    external_url: String,
    client: reqwest::Client,
    /// Strings scrubbed from anything we say (the URL, its host, header values).
    redact: Vec<String>,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("name", &self.name)
            .field("url", &MASK)
            .finish()
    }
}

impl WebhookChannel {
    /// Validate the settings; the error names the setting, never its secret value.
    pub fn new(name: &str, s: WebhookSettings) -> Result<Self, ChannelError> {
        let err = |reason: String| ChannelError::new(name, reason);
        let url = reqwest::Url::parse(s.url.expose())
            .map_err(|e| err(format!("url is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err("url must start with http:// or https://".into()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err("url has no host".into()));
        }
        if !(1..=300_000).contains(&s.timeout_ms) {
            return Err(err(format!(
                "timeout_ms must be between 1 and 300000, not {}",
                s.timeout_ms
            )));
        }
        if s.hmac_secret
            .as_ref()
            .is_some_and(|k| k.expose().is_empty())
        {
            return Err(err("hmac_secret is empty".into()));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        let mut redact = vec![s.url.expose().to_string()];
        if let Some(host) = url.host_str() {
            redact.push(host.to_string());
        }
        // The path and query often are the token (`/hooks/T0K3N`, `?key=...`).
        if url.path().len() > 1 {
            redact.push(url.path().to_string());
        }
        if let Some(q) = url.query().filter(|q| !q.is_empty()) {
            redact.push(q.to_string());
        }
        for (k, v) in &s.headers {
            if RESERVED.contains(&k.to_ascii_lowercase().as_str()) {
                return Err(err(format!("headers.{k} is set by the channel itself")));
            }
            let hn = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| err(format!("headers: {k:?} is not a valid header name")))?;
            let mut hv = reqwest::header::HeaderValue::from_str(v.expose())
                .map_err(|_| err(format!("headers.{k} is not a valid header value")))?;
            hv.set_sensitive(true);
            headers.insert(hn, hv);
            if v.expose().len() >= 8 {
                redact.push(v.expose().to_string());
            }
        }
        if let Some(k) = &s.hmac_secret {
            redact.push(k.expose().to_string());
        }
        let timeout = Duration::from_millis(s.timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("secops-mcp/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| err("cannot build the HTTP client".into()))?;
        // Longest first, so a URL is scrubbed whole before its host.
        redact.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(Self {
            name: name.to_string(),
            url,
            headers,
            hmac_secret: s.hmac_secret,
            timeout_ms: s.timeout_ms,
            external_url: String::new(),
            client,
            redact,
        })
    }

    /// The `externalURL` of payloads (this server's public address), and the base of each
    /// alert's `generatorURL`.
    pub fn with_external_url(mut self, url: impl Into<String>) -> Self {
        self.external_url = url.into().trim_end_matches('/').to_string();
        self
    }

    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.redact {
            out = out.replace(s.as_str(), MASK);
        }
        out
    }

    async fn post(&self, body: &NotificationBody) -> Delivery {
        let payload = alertmanager_payload(&self.name, body, &self.external_url);
        let bytes = match serde_json::to_vec(&payload) {
            Ok(b) => b,
            Err(e) => {
                return Delivery::Failed {
                    status: None,
                    reason: format!("cannot render the payload: {e}"),
                };
            }
        };
        let mut req = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DEDUP_HEADER, body.dedup_key.as_str());
        if let Some(key) = &self.hmac_secret {
            req = req.header(SIGNATURE_HEADER, signature(key.expose().as_bytes(), &bytes));
        }
        let resp = match req.body(bytes).send().await {
            Ok(r) => r,
            Err(e) => return self.transport_error(e),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let answer = match read_bounded(resp).await {
            Ok(raw) => self.scrub(&crate::util::sanitize_untrusted(&raw, ANSWER_KEEP)),
            Err(e) => return self.transport_error(e),
        };
        Delivery::of_http(status, retry_after, answer)
    }

    /// A transport error or timeout is retried; its text never carries the URL.
    fn transport_error(&self, e: reqwest::Error) -> Delivery {
        let what = if e.is_timeout() {
            format!("timed out after {} ms", self.timeout_ms)
        } else if e.is_connect() {
            "cannot connect".to_string()
        } else {
            "request failed".to_string()
        };
        let e = e.without_url();
        let mut causes = Vec::new();
        let mut src = std::error::Error::source(&e);
        while let Some(c) = src {
            causes.push(c.to_string());
            src = c.source();
        }
        let detail = match causes.last() {
            Some(c) if !e.is_timeout() => format!(": {c}"),
            _ => String::new(),
        };
        Delivery::Retry {
            status: None,
            reason: self.scrub(&crate::util::sanitize_untrusted(
                format!("{what}{detail}").as_bytes(),
                ANSWER_KEEP,
            )),
            after: None,
        }
    }
}

impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, body: &'a NotificationBody) -> BoxFuture<'a, Delivery> {
        Box::pin(self.post(body))
    }
}

/// `sha256=<hex>` of HMAC-SHA256(`key`, `body`).
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `Retry-After`: delay-seconds or an HTTP date (a date in the past is "now").
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        out.extend_from_slice(&chunk);
        if out.len() >= ANSWER_READ {
            out.truncate(ANSWER_READ);
            break;
        }
    }
    Ok(out)
}

/// The Alertmanager webhook payload (version 4) of one notification to `receiver`.
pub fn alertmanager_payload(receiver: &str, body: &NotificationBody, external_url: &str) -> Value {
    let firing = body.alerts.iter().any(|a| a.state != AlertState::Resolved);
    let status = if firing || body.alerts.is_empty() {
        "firing"
    } else {
        "resolved"
    };
    let shown = &body.alerts[..body.alerts.len().min(MAX_ALERTS)];
    let alerts: Vec<Value> = shown
        .iter()
        .map(|a| {
            let labels = alert_labels(a);
            let mut annotations = BTreeMap::from([
                ("summary".to_string(), a.title.clone()),
                ("description".to_string(), a.summary.clone()),
                ("alert_id".to_string(), a.id.clone()),
                ("episode".to_string(), a.episode.clone()),
            ]);
            if let Some(v) = &a.value {
                annotations.insert("value".into(), v.clone());
            }
            if let Some(r) = &a.runbook {
                annotations.insert("runbook_url".into(), r.clone());
            }
            if let (Some(line), Some(e)) = (super::escalation_line(body), &body.escalation) {
                annotations.insert("escalation".into(), line);
                annotations.insert("escalation_contact".into(), e.contact.clone());
            }
            let resolved = a.state == AlertState::Resolved;
            json!({
                "status": if resolved { "resolved" } else { "firing" },
                "labels": labels,
                "annotations": annotations,
                "startsAt": a.started_at,
                "endsAt": if resolved { a.resolved_at.clone().unwrap_or_else(|| ZERO_TIME.into()) } else { ZERO_TIME.into() },
                "generatorURL": if external_url.is_empty() { String::new() } else { format!("{external_url}/alerts/{}", a.id) },
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    let all_labels: Vec<BTreeMap<String, String>> = shown.iter().map(alert_labels).collect();
    let common_labels = common(&all_labels);
    let all_annotations: Vec<BTreeMap<String, String>> = shown
        .iter()
        .map(|a| {
            BTreeMap::from([
                ("summary".to_string(), a.title.clone()),
                ("description".to_string(), a.summary.clone()),
            ])
        })
        .collect();
    let mut v = json!({
        "version": "4",
        "groupKey": body.group_key,
        "truncatedAlerts": body.alerts.len() - shown.len(),
        "status": status,
        "receiver": receiver,
        "groupLabels": body.group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common(&all_annotations),
        "externalURL": external_url,
        "alerts": alerts,
    });
    // A digest (status `firing` while any carried alert fires): each carried notification's
    // kind, group, dedup key and alert ids, beside Alertmanager's own fields.
    if !body.digest.is_empty() {
        v["digest"] = json!(body.digest);
    }
    v
}

fn alert_labels(a: &crate::alerts::AlertSnapshot) -> BTreeMap<String, String> {
    let mut l = a.labels.clone();
    l.insert("alertname".into(), a.code.clone());
    l.insert("severity".into(), a.level.as_str().into());
    l.insert("monitor".into(), a.monitor.clone());
    l
}

/// The pairs every map has (Alertmanager's common labels / annotations).
fn common(maps: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some((first, rest)) = maps.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> WebhookSettings {
        WebhookSettings {
            url: Secret::new(url),
            headers: BTreeMap::new(),
            hmac_secret: None,
            timeout_ms: 1_000,
        }
    }

    #[test]
    fn bad_settings_name_the_setting_and_never_the_url() {
        let secret_url = "ftp://hooks.example/T0K3N";
        let e = WebhookChannel::new("ops", settings(secret_url)).unwrap_err();
        assert!(e.to_string().contains("url must start with"), "{e}");
        let e = WebhookChannel::new("ops", settings("not a url T0K3N")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("channel ops: url is not a valid URL"),
            "{e}"
        );
        assert!(!e.to_string().contains("T0K3N"), "{e}");
        let mut s = settings("https://hooks.example/T0K3N");
        s.timeout_ms = 0;
        let e = WebhookChannel::new("ops", s).unwrap_err();
        assert!(e.to_string().contains("timeout_ms"), "{e}");
        let mut s = settings("https://hooks.example/T0K3N");
        s.headers
            .insert("Content-Type".into(), Secret::new("text/plain"));
        let e = WebhookChannel::new("ops", s).unwrap_err();
        assert!(e.to_string().contains("headers.Content-Type"), "{e}");
        let mut s = settings("https://hooks.example/T0K3N");
        s.headers
            .insert("Authorization".into(), Secret::new("Bearer\nx"));
        let e = WebhookChannel::new("ops", s).unwrap_err();
        assert!(
            e.to_string()
                .contains("headers.Authorization is not a valid"),
            "{e}"
        );
        assert!(!e.to_string().contains("Bearer"), "{e}");
        let ok = WebhookChannel::new("ops", settings("https://hooks.example/T0K3N")).unwrap();
        assert!(!format!("{ok:?}").contains("T0K3N"));
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn common_labels_are_the_shared_pairs() {
        let a = BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
        let b = BTreeMap::from([("a".into(), "1".into()), ("b".into(), "3".into())]);
        assert_eq!(
            common(&[a.clone(), b]),
            BTreeMap::from([("a".into(), "1".into())])
        );
        assert_eq!(common(std::slice::from_ref(&a)), a);
        assert!(common(&[]).is_empty());
    }
}
