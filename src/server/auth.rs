//! Bearer tokens for the HTTP transport, read from `SECOPS_HTTP_TOKENS_FILE`: one token per
//! line, either the token itself or `sha256:<hex>` of it, optionally followed by a principal
//! name (`<token> alice`). Tokens are kept only as SHA-256 digests and compared in constant
//! time; the principal names the caller in logs, metrics and the audit trail.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Caller;

/// Shortest plain token accepted: shorter ones are guessable.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Clone)]
pub struct TokenSet {
    entries: Vec<([u8; 32], String)>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} tokens)", self.entries.len())
    }
}

impl TokenSet {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read tokens file {}: {}", path.display(), e.kind()))?;
        Self::parse(&text).map_err(|e| format!("tokens file {}: {e}", path.display()))
    }

    /// Parse the file format. Errors name the line, never its content.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let lineno = i + 1;
            let mut parts = line.split_whitespace();
            let token = parts.next().unwrap_or_default();
            let name = parts.next();
            if parts.next().is_some() {
                return Err(format!(
                    "line {lineno}: expected `<token> [principal]`, found more fields"
                ));
            }
            let digest: [u8; 32] = if let Some(hex_digest) = token.strip_prefix("sha256:") {
                let bytes = hex::decode(hex_digest).map_err(|_| {
                    format!("line {lineno}: `sha256:` must be followed by 64 hex digits")
                })?;
                bytes.try_into().map_err(|_| {
                    format!("line {lineno}: `sha256:` must be followed by 64 hex digits")
                })?
            } else {
                if token.len() < MIN_TOKEN_LEN {
                    return Err(format!(
                        "line {lineno}: token is shorter than {MIN_TOKEN_LEN} characters; \
                         generate one with `openssl rand -hex 32`"
                    ));
                }
                Sha256::digest(token.as_bytes()).into()
            };
            let principal = match name {
                Some(n) => {
                    if !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
                        || n.len() > 64
                    {
                        return Err(format!(
                            "line {lineno}: principal may use letters, digits and -_.@ (max 64)"
                        ));
                    }
                    // Names the gate gives meaning to: the stdio caller (its own
                    // confirmation policy), the operator's CLI and the server itself.
                    if matches!(n, "stdio" | "cli" | "system") {
                        return Err(format!(
                            "line {lineno}: principal `{n}` is reserved (stdio, cli, system)"
                        ));
                    }
                    n.to_string()
                }
                None => format!("token-{}", &hex::encode(digest)[..8]),
            };
            entries.push((digest, principal));
        }
        if entries.is_empty() {
            return Err("holds no tokens".to_string());
        }
        Ok(Self { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal for a presented token. Every entry is compared (no early exit), in
    /// constant time per entry.
    pub fn authenticate(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&str> = None;
        for (d, name) in &self.entries {
            if bool::from(d.ct_eq(&digest)) && found.is_none() {
                found = Some(name);
            }
        }
        found.map(|n| Caller(n.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_hashed_tokens_authenticate() {
        let hashed = hex::encode(Sha256::digest(b"second-token-0123456789"));
        let set = TokenSet::parse(&format!(
            "# comment\nfirst-token-0123456789 alice\n\nsha256:{hashed}\n"
        ))
        .unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.authenticate("first-token-0123456789"),
            Some(Caller("alice".into()))
        );
        let p = set.authenticate("second-token-0123456789").unwrap();
        assert!(p.0.starts_with("token-"));
        assert_eq!(set.authenticate("wrong"), None);
        assert_eq!(set.authenticate(""), None);
    }

    #[test]
    fn bad_files_are_refused_without_echoing_secrets() {
        let e = TokenSet::parse("short\n").unwrap_err();
        assert!(e.contains("line 1") && !e.contains("short\n"));
        let e = TokenSet::parse("sha256:abcd\n").unwrap_err();
        assert!(e.contains("64 hex"));
        assert!(TokenSet::parse("# only comments\n").is_err());
        let e = TokenSet::parse("a-very-long-token-value x y\n").unwrap_err();
        assert!(!e.contains("a-very-long-token-value"));
        // A token may not pass itself off as the stdio caller or the operator's CLI.
        for reserved in ["stdio", "cli", "system"] {
            let e = TokenSet::parse(&format!("a-very-long-token-value {reserved}\n")).unwrap_err();
            assert!(e.contains("reserved"), "{e}");
        }
    }
}
