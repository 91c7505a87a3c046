//! The mechanics of confirmation tokens and sealed request state: the token format
//! (`sct1_<nonce>_<expiry>_<mac>`), the HMACs binding them to tool, arguments and caller,
//! the server key file, and the checks that a presented token is one this server issued.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Call, GateError, KEY_FILE};
use crate::store::{Store, TokenRow};

pub(super) const TOKEN_PREFIX: &str = "sct1";

pub(super) fn load_or_create_key(state_dir: &Path) -> Result<[u8; 32], GateError> {
    let path = state_dir.join(KEY_FILE);
    let err = |reason: String| GateError::Key {
        path: path.clone(),
        reason,
    };
    crate::store::ensure_state_dir(state_dir).map_err(|e| err(e.to_string()))?;
    match std::fs::read(&path) {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|_| err("expected exactly 32 bytes".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = random_bytes()?;
            match crate::remediation::write_private_new(&path, &key) {
                Ok(()) => Ok(key),
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let bytes = std::fs::read(&path).map_err(|e| err(e.kind().to_string()))?;
                    bytes
                        .try_into()
                        .map_err(|_| err("expected exactly 32 bytes".into()))
                }
                Err(e) => Err(err(e.kind().to_string())),
            }
        }
        Err(e) => Err(err(e.kind().to_string())),
    }
}

/// Random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], GateError> {
    use rand::TryRng;
    let mut buf = [0u8; N];
    rand::rngs::SysRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| GateError::Key {
            path: PathBuf::from("(OS random source)"),
            reason: e.to_string(),
        })?;
    Ok(buf)
}

/// The stored row of a token that this server issued (its MAC verifies against the row's
/// binding), that is not used and not expired.
/// The stored row of a well-formed token: (nonce, expiry, digest, row). Unknown or
/// malformed tokens are one error, so a caller learns nothing about which it was.
pub(super) fn find_token<'t>(
    store: &Store,
    token: &'t str,
) -> Result<(&'t str, i64, String, TokenRow), GateError> {
    let (nonce, expires) = parse_token(token).ok_or(GateError::UnknownToken)?;
    let digest = token_digest(token);
    let row = store.token_get(&digest)?.ok_or(GateError::UnknownToken)?;
    Ok((nonce, expires, digest, row))
}

pub(super) fn verify_row(
    key: &[u8; 32],
    token: &str,
    nonce: &str,
    expires: i64,
    row: TokenRow,
) -> Result<TokenRow, GateError> {
    let bound = Call {
        tool: row.tool.clone(),
        caller: row.caller.clone(),
        args_digest: row.args_digest.clone(),
        incident_id: None,
    };
    let expected = token_mac(key, nonce, expires, &bound);
    let presented = token.rsplit('_').next().unwrap_or("");
    if !ct_eq(expected.as_bytes(), presented.as_bytes()) || expires != row.expires_at {
        return Err(GateError::UnknownToken);
    }
    if row.state == "used" {
        return Err(GateError::Replayed);
    }
    if unix_now() >= row.expires_at {
        return Err(GateError::Expired {
            expires_at: rfc3339_unix(row.expires_at),
        });
    }
    Ok(row)
}

fn parse_token(token: &str) -> Option<(&str, i64)> {
    let mut parts = token.split('_');
    let (Some(TOKEN_PREFIX), Some(nonce), Some(exp), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if nonce.len() != 32 || mac.len() != 64 {
        return None;
    }
    Some((nonce, exp.parse().ok()?))
}

pub(super) fn token_mac(key: &[u8; 32], nonce: &str, expires: i64, call: &Call) -> String {
    hex::encode(hmac_sha256(
        key,
        &encode(&[
            b"confirmation-token",
            nonce.as_bytes(),
            expires.to_string().as_bytes(),
            call.tool.as_bytes(),
            call.args_digest.as_bytes(),
            call.caller.as_bytes(),
        ]),
    ))
}

pub(super) fn state_mac(key: &[u8; 32], expires: i64, call: &Call, token_digest: &str) -> String {
    hex::encode(hmac_sha256(
        key,
        &encode(&[
            b"request-state",
            expires.to_string().as_bytes(),
            call.tool.as_bytes(),
            call.args_digest.as_bytes(),
            call.caller.as_bytes(),
            token_digest.as_bytes(),
        ]),
    ))
}

/// Hex SHA-256 of a token: what the store keeps instead of the token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Length-prefixed concatenation, so no two part lists encode alike.
pub(super) fn encode(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// HMAC-SHA256 (RFC 2104), from the `hmac` crate.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub(super) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(super) fn rfc3339_unix(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(crate::util::rfc3339)
        .unwrap_or_default()
}
