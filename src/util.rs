//! Small shared helpers: UTC timestamps in RFC 3339 and text sanitising for anything a
//! remote party wrote (banners, server greetings) before it reaches a model's context.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, UTC, RFC 3339 with second precision.
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// Format a time as RFC 3339 UTC with second precision.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Keep printable ASCII (and spaces), replace everything else with `.`, cap the length.
/// For untrusted text from the network.
pub fn sanitize_untrusted(raw: &[u8], max_chars: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_chars));
    for &b in raw.iter() {
        if out.len() >= max_chars {
            out.push('…');
            break;
        }
        out.push(if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        });
    }
    out.trim().to_string()
}

/// Caller text quoted in an error: [`sanitize_untrusted`] to `max_chars`, and when cut,
/// the full length and a SHA-256 digest of the whole value, so the value stays
/// identifiable without being copied: `111…[truncated, 250000 characters, sha256:ab…]`.
pub fn quote_untrusted(raw: &str, max_chars: usize) -> String {
    if raw.len() <= max_chars {
        return sanitize_untrusted(raw.as_bytes(), max_chars);
    }
    use sha2::Digest;
    let mut head = sanitize_untrusted(raw.as_bytes(), max_chars);
    head.pop(); // the `…` sanitize_untrusted ends a cut with
    format!(
        "{head}…[truncated, {} characters, sha256:{}]",
        raw.chars().count(),
        hex::encode(sha2::Sha256::digest(raw.as_bytes()))
    )
}

/// `one` when `n` is 1, else `many` (`entry` / `entries`).
pub fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `1 entry`, `2 entries`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// The certificates of a PEM CA bundle file, for an HTTP client that trusts only them. The
/// error says which file and why, never its content.
pub fn read_ca_bundle(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read CA file {}: {}", path.display(), e.kind()))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("{} holds no PEM certificate", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_control_bytes_and_caps() {
        assert_eq!(
            sanitize_untrusted(b"SSH-2.0\r\n\x1b[31m", 64),
            "SSH-2.0...[31m"
        );
        assert_eq!(sanitize_untrusted(b"abcdef", 3), "abc…");
        assert_eq!(quote_untrusted("abc", 3), "abc");
        let q = quote_untrusted(&"1".repeat(250_000), 8);
        assert!(
            q.starts_with("11111111…[truncated, 250000 characters, sha256:"),
            "{q}"
        );
        assert!(q.len() < 120);
    }

    #[test]
    fn formats_utc_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
    }
}
