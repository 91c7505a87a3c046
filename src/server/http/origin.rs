//! The Host and Origin allowlists (DNS rebinding and cross-site browser requests):
//! [`OriginPattern`], the `scheme://host[:port|:*]` grammar, and the layer that checks both.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::guards::remote_ip;
use super::{Guard, refuse};

/// Host and Origin checks for every route (DNS rebinding and cross-site browser requests).
pub(super) async fn host_origin_layer(
    State(guard): State<Arc<Guard>>,
    req: Request,
    next: Next,
) -> Response {
    // A 403 here counts towards the `self` monitor's burst of refusals from one address.
    let refused = |guard: &Guard| {
        if let Some(ip) = remote_ip(&req) {
            guard.ctx.selfwatch.refused(ip);
        }
    };
    if let Some(host) = request_host(&req)
        && !guard.allowed_hosts.iter().any(|h| h == &host)
    {
        refused(&guard);
        return refuse(
            &guard,
            StatusCode::FORBIDDEN,
            "host",
            format!("Host `{host}` is not allowed; add it to SECOPS_ALLOWED_HOSTS"),
        );
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .ok()
            .is_some_and(|o| guard.origins.iter().any(|p| p.matches(o)));
        if !ok {
            refused(&guard);
            return refuse(
                &guard,
                StatusCode::FORBIDDEN,
                "origin",
                "Origin is not allowed; add it to SECOPS_ALLOWED_ORIGINS".to_string(),
            );
        }
    }
    next.run(req).await
}

/// The Host header's host part, lower-cased, without port or IPv6 brackets.
fn request_host(req: &Request) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))?;
    Some(strip_port(&raw).to_ascii_lowercase())
}

fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// `scheme://host[:port|:*]` or `null`.
#[derive(Debug, Clone)]
pub struct OriginPattern {
    scheme: String,
    host: String,
    /// None: any port.
    port: Option<u16>,
    null: bool,
}

impl OriginPattern {
    pub fn parse(p: &str) -> Result<Self, String> {
        if p == "null" {
            return Ok(Self {
                scheme: String::new(),
                host: String::new(),
                port: None,
                null: true,
            });
        }
        let (scheme, host, port) =
            split_origin(p).ok_or_else(|| format!("bad allowed origin `{p}`"))?;
        let port = match port {
            Some("*") => None,
            Some(n) => Some(n.parse().map_err(|_| format!("bad port in origin `{p}`"))?),
            None => Some(default_port(&scheme)),
        };
        Ok(Self {
            scheme,
            host,
            port,
            null: false,
        })
    }

    fn matches(&self, origin: &str) -> bool {
        if origin == "null" {
            return self.null;
        }
        let Some((scheme, host, port)) = split_origin(origin) else {
            return false;
        };
        let port = match port {
            Some(n) => match n.parse::<u16>() {
                Ok(n) => n,
                Err(_) => return false,
            },
            None => default_port(&scheme),
        };
        !self.null
            && scheme == self.scheme
            && host == self.host
            && self.port.is_none_or(|p| p == port)
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

fn split_origin(o: &str) -> Option<(String, String, Option<&str>)> {
    let (scheme, rest) = o.split_once("://")?;
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns_match_scheme_host_and_port() {
        let any = OriginPattern::parse("http://localhost:*").unwrap();
        assert!(any.matches("http://localhost:6274"));
        assert!(any.matches("http://localhost"));
        assert!(!any.matches("https://localhost:6274"));
        assert!(!any.matches("http://localhost.evil.com:80"));
        let exact = OriginPattern::parse("https://app.example.com").unwrap();
        assert!(exact.matches("https://app.example.com"));
        assert!(exact.matches("https://app.example.com:443"));
        assert!(!exact.matches("https://app.example.com:8443"));
        assert!(!exact.matches("null"));
        assert!(OriginPattern::parse("null").unwrap().matches("null"));
    }

    #[test]
    fn host_header_port_is_stripped() {
        assert_eq!(strip_port("localhost:8080"), "localhost");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("example.com"), "example.com");
    }
}
