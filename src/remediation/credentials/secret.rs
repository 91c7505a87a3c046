//! The secrets of a rotation: generating one (Wazuh's password policy), its version name,
//! the `.pending` and `.previous` files beside the secret file, and logging in with a secret
//! to test it. Secrets never leave here except into those files and the target.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{CredentialConfig, Login, Secret, WazuhConfig};
use crate::context::AppContext;
use crate::remediation::GateError;
use crate::wazuh::{ManagerClient, ManagerOptions};

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn pending_file(cred: &CredentialConfig) -> PathBuf {
    side_file(&cred.secret_file, ".pending")
}

pub fn previous_file(cred: &CredentialConfig) -> PathBuf {
    side_file(&cred.secret_file, ".previous")
}

/// A client logging in as `user` with `password` (to test a secret or act as that user).
pub(super) fn client_as(
    ctx: &AppContext,
    user: &str,
    password: &Secret,
) -> Result<ManagerClient, String> {
    let w = ctx
        .config
        .wazuh
        .as_ref()
        .ok_or("the Wazuh manager API is not configured")?;
    let cfg = WazuhConfig {
        url: w.url.clone(),
        login: Login {
            user: user.to_string(),
            password: Some(password.clone()),
            password_source: None,
        },
        ca_file: w.ca_file.clone(),
        requests_per_minute: 60,
    };
    ManagerClient::new(
        &cfg,
        ManagerOptions {
            request_timeout: Duration::from_millis(ctx.config.health.timeout_ms),
            insecure: ctx.config.tls_insecure,
            max_rate_limit_retries: 1,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())
}

pub(super) async fn login_works(
    ctx: &AppContext,
    user: &str,
    password: &Secret,
) -> Result<(), String> {
    client_as(ctx, user, password)?
        .login()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// 32 characters from the OS CSPRNG with a lowercase and an uppercase letter, a digit and
/// a symbol (Wazuh's policy).
pub fn generate_secret() -> Result<Secret, GateError> {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%+-.:=?@^_~";
    let limit = 256 - 256 % ALPHABET.len();
    loop {
        let mut out = String::with_capacity(32);
        while out.len() < 32 {
            let bytes: [u8; 64] = crate::remediation::gate::random_bytes()?;
            for b in bytes {
                if (b as usize) < limit && out.len() < 32 {
                    out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
                }
            }
        }
        let ok = out.bytes().any(|c| c.is_ascii_lowercase())
            && out.bytes().any(|c| c.is_ascii_uppercase())
            && out.bytes().any(|c| c.is_ascii_digit())
            && out.bytes().any(|c| !c.is_ascii_alphanumeric());
        if ok {
            return Ok(Secret::new(out));
        }
    }
}

pub(super) fn new_version() -> Result<String, GateError> {
    let r: [u8; 3] = crate::remediation::gate::random_bytes()?;
    let ts = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    Ok(format!("v{ts}-{}", hex::encode(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_meet_wazuh_policy() {
        for _ in 0..50 {
            let s = generate_secret().unwrap();
            let s = s.expose();
            assert_eq!(s.len(), 32);
            assert!(s.bytes().any(|c| c.is_ascii_lowercase()));
            assert!(s.bytes().any(|c| c.is_ascii_uppercase()));
            assert!(s.bytes().any(|c| c.is_ascii_digit()));
            assert!(s.bytes().any(|c| !c.is_ascii_alphanumeric()));
        }
        assert_ne!(
            generate_secret().unwrap().expose(),
            generate_secret().unwrap().expose()
        );
    }
}
