//! The grammar of one `check_cert` target: `host`, `host:port`, `[ipv6]:port`, a TLS URL
//! (`https://host[:port]/...` and friends) or `file:/path`, parsed into a [`Target`] or a
//! reason naming what is wrong.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use rustls_pki_types::ServerName;

use super::{DEFAULT_TLS_PORT, StartTls, sanitize};

/// Longest target string accepted (a URL with a long path is still fine).
const MAX_TARGET_LEN: usize = 2048;

/// The host part of a network target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lowercased, without a trailing dot.
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Dns(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// One parsed target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Connect to `host:port` (optionally via STARTTLS) and inspect the presented chain.
    Network { host: Host, port: u16 },
    /// Read a PEM (or DER) certificate file; the first certificate is the leaf.
    File { path: PathBuf },
}

/// Parses one target. `Err` is the reason (without the target itself, which the caller adds).
pub fn parse_target(raw: &str, starttls: Option<StartTls>) -> Result<Target, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(
            "is empty; give `host`, `host:port`, `https://host[:port]/...` or \
                    `file:/path/to/cert.pem`"
                .into(),
        );
    }
    if s.len() > MAX_TARGET_LEN {
        return Err(format!("is longer than {MAX_TARGET_LEN} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }

    if let Some(rest) = strip_prefix_ignore_case(s, "file:") {
        return parse_file_target(rest);
    }

    let default_port = starttls.map_or(DEFAULT_TLS_PORT, StartTls::default_port);
    if let Some((scheme, rest)) = s.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        let scheme_port = match scheme.as_str() {
            "https" => 443,
            "smtps" => 465,
            "imaps" => 993,
            "pop3s" => 995,
            "ldaps" => 636,
            "ftps" => 990,
            "http" => {
                return Err("uses http://, which is plaintext; use https://host[:port] \
                            or host:port"
                    .into());
            }
            _ => {
                return Err(format!(
                    "has unsupported scheme `{}://`; allowed: https://, smtps://, imaps://, \
                     pop3s://, ldaps://, ftps:// (or give host:port)",
                    sanitize(&scheme, 20)
                ));
            }
        };
        if let Some(proto) = starttls {
            return Err(format!(
                "uses {scheme}://, which is direct TLS and cannot be combined with \
                 starttls `{proto}`; give host[:port] instead"
            ));
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if authority.contains('@') {
            return Err("contains user information (`user@` or `user:password@`); \
                        remove it, check_cert needs no credentials"
                .into());
        }
        if authority.is_empty() {
            return Err("has no host after the scheme".into());
        }
        let (host, port) = parse_host_port(authority, scheme_port)?;
        return Ok(Target::Network { host, port });
    }

    if let Some(bad) = s
        .chars()
        .find(|c| matches!(c, '/' | '?' | '#' | '@' | '\\'))
    {
        return Err(format!(
            "contains `{bad}`; give `host`, `host:port`, `[ipv6]:port`, a URL with a scheme \
             (`https://host/path`) or `file:/path`"
        ));
    }
    let (host, port) = parse_host_port(s, default_port)?;
    Ok(Target::Network { host, port })
}

fn parse_file_target(rest: &str) -> Result<Target, String> {
    let path = if let Some(after) = rest.strip_prefix("//") {
        // file:///abs/path; file://host/path is not something we can read.
        if !after.starts_with('/') {
            return Err("is a file URL with a host; use `file:/absolute/path/cert.pem`".into());
        }
        after
    } else {
        rest
    };
    if path.trim().is_empty() {
        return Err("has an empty path; use `file:/path/to/cert.pem`".into());
    }
    if path.contains('\0') {
        return Err("contains a NUL byte in the path".into());
    }
    Ok(Target::File {
        path: PathBuf::from(path),
    })
}

fn parse_host_port(s: &str, default_port: u16) -> Result<(Host, u16), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err("has `[` without a closing `]`; write IPv6 as `[2001:db8::1]:443`".into());
        };
        let ip: Ipv6Addr = inside.parse().map_err(|_| {
            format!(
                "`[{}]` is not a valid IPv6 address (zone ids like `%eth0` are not supported)",
                sanitize(inside, 60)
            )
        })?;
        let port = if after.is_empty() {
            default_port
        } else if let Some(port) = after.strip_prefix(':') {
            parse_port(port)?
        } else {
            return Err("has text after `]`; write `[ipv6]` or `[ipv6]:port`".into());
        };
        return Ok((Host::Ip(IpAddr::V6(ip)), port));
    }

    if s.matches(':').count() > 1 {
        if let Ok(ip) = s.parse::<Ipv6Addr>() {
            return Ok((Host::Ip(IpAddr::V6(ip)), default_port));
        }
        return Err(
            "has more than one `:`; write an IPv6 address with brackets, e.g. `[2001:db8::1]:443`"
                .into(),
        );
    }

    let (host, port) = match s.split_once(':') {
        Some((host, port)) => (host, parse_port(port)?),
        None => (s, default_port),
    };
    Ok((parse_host(host)?, port))
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() {
        return Err("has `:` but no port after it; allowed ports are 1-65535".into());
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "port `{}` is not a number; allowed 1-65535",
            sanitize(s, 20)
        ));
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 5 {
        return Err(format!(
            "port {} is out of range; allowed 1-65535",
            sanitize(s, 20)
        ));
    }
    let value: u32 = if digits.is_empty() {
        0
    } else {
        digits
            .parse()
            .map_err(|_| "port is not a number".to_string())?
    };
    match u16::try_from(value) {
        Ok(0) => Err("port 0 is not valid; allowed 1-65535".into()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("port {value} is out of range; allowed 1-65535")),
    }
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() {
        return Err("has an empty host".into());
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    check_dns_name(&name)?;
    // The same rules rustls applies to the name it sends and verifies.
    if ServerName::try_from(name.as_str()).is_err() {
        return Err(format!("`{}` is not a valid host name", sanitize(host, 80)));
    }
    Ok(Host::Dns(name))
}

/// Syntax of a DNS host name (letters, digits, `-`, `_`, dots; labels of 1-63 characters).
pub(super) fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is an empty host name".into());
    }
    if name.len() > 253 {
        return Err("is longer than 253 characters, the limit for a DNS name".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "host contains `{}`; allowed: letters, digits, `-`, `_` and `.` \
             (internationalised names in punycode, `xn--...`)",
            sanitize(&bad.to_string(), 4)
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("host has an empty label (`..` or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err("host has a label longer than 63 characters".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "host label `{}` starts or ends with `-`",
                sanitize(label, 63)
            ));
        }
    }
    Ok(())
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> (Host, u16) {
        match parse_target(s, None) {
            Ok(Target::Network { host, port }) => (host, port),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn bare_host_defaults_to_443() {
        assert_eq!(net("Example.COM."), (Host::Dns("example.com".into()), 443));
    }

    #[test]
    fn host_port_and_ipv4() {
        assert_eq!(
            net("example.com:8443"),
            (Host::Dns("example.com".into()), 8443)
        );
        assert_eq!(
            net("127.0.0.1:993"),
            (Host::Ip("127.0.0.1".parse().unwrap()), 993)
        );
    }

    #[test]
    fn https_url_with_port_and_path() {
        assert_eq!(
            net("https://example.com:8443/path?q=1#x"),
            (Host::Dns("example.com".into()), 8443)
        );
        assert_eq!(
            net("HTTPS://example.com"),
            (Host::Dns("example.com".into()), 443)
        );
        assert_eq!(
            net("imaps://mail.example.com"),
            (Host::Dns("mail.example.com".into()), 993)
        );
    }

    #[test]
    fn ipv6_forms() {
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(net("[::1]:443"), (Host::Ip(v6), 443));
        assert_eq!(net("[::1]"), (Host::Ip(v6), 443));
        assert_eq!(net("::1"), (Host::Ip(v6), 443));
        assert_eq!(net("https://[::1]:8443/x"), (Host::Ip(v6), 8443));
    }

    #[test]
    fn starttls_default_ports() {
        let cases = [
            (StartTls::Smtp, 25),
            (StartTls::Imap, 143),
            (StartTls::Pop3, 110),
            (StartTls::Ftp, 21),
            (StartTls::Postgres, 5432),
        ];
        for (proto, port) in cases {
            assert_eq!(
                parse_target("mail.example.com", Some(proto)),
                Ok(Target::Network {
                    host: Host::Dns("mail.example.com".into()),
                    port
                })
            );
        }
        assert_eq!(
            parse_target("mail.example.com:587", Some(StartTls::Smtp)),
            Ok(Target::Network {
                host: Host::Dns("mail.example.com".into()),
                port: 587
            })
        );
    }

    #[test]
    fn file_targets() {
        assert_eq!(
            parse_target("file:/etc/ssl/cert.pem", None),
            Ok(Target::File {
                path: "/etc/ssl/cert.pem".into()
            })
        );
        assert_eq!(
            parse_target("file:///etc/ssl/cert.pem", None),
            Ok(Target::File {
                path: "/etc/ssl/cert.pem".into()
            })
        );
        assert!(
            parse_target("file:", None)
                .unwrap_err()
                .contains("empty path")
        );
        assert!(
            parse_target("file://host/x", None)
                .unwrap_err()
                .contains("host")
        );
    }

    #[test]
    fn bad_targets_give_reasons() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("host:70000", "70000 is out of range"),
            ("host:0", "port 0"),
            ("host:", "no port"),
            ("host:abc", "not a number"),
            ("host:99999999999999999999", "out of range"),
            ("exa mple.com", "` `"),
            ("bad!host", "`!`"),
            ("a..b", "empty label"),
            ("-a.com", "starts or ends with `-`"),
            ("http://example.com", "plaintext"),
            ("gopher://example.com", "unsupported scheme"),
            ("https://", "no host"),
            ("https://user:pw@example.com", "user information"),
            ("[::1", "closing"),
            ("[nope]:443", "not a valid IPv6"),
            ("[::1]x", "after `]`"),
            ("1:2:3", "more than one"),
            ("example.com/path", "`/`"),
            ("ex\u{7}ample", "control"),
            ("ünïcode.example", "allowed"),
        ];
        for (input, expected) in cases {
            let err = parse_target(input, None).expect_err(input);
            assert!(err.contains(expected), "{input:?}: {err}");
        }
        let too_long = "a".repeat(3000);
        assert!(parse_target(&too_long, None).is_err());
    }

    #[test]
    fn url_with_starttls_is_refused() {
        let err = parse_target("https://example.com", Some(StartTls::Smtp)).unwrap_err();
        assert!(err.contains("cannot be combined with starttls"), "{err}");
    }
}
