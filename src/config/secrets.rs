//! Secrets: [`Secret`] (never printed, serialised as a fixed mask), where one came from
//! ([`SecretSource`]), reading one from a file, and the password rule of a service (its
//! environment variable, else a file, else a named variable, else inline).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use super::ConfigError;
use super::env::{Key, Layers, path};
use super::file::FileService;

/// What a secret looks like in `Debug`, `Display` and the masked view.
pub const MASK: &str = "***";

/// A secret value. `Debug`, `Display` and `Serialize` give `***`; read it with
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// Where a secret came from (shown by `config check`, never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    Inline,
    /// The built-in simulator's demo credential (`serve --demo`).
    Demo,
}

/// Read a secret from a file: first line, trailing newline trimmed. The error never
/// contains file content.
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret::new(first))
}

/// The names of one service's password settings.
pub(super) struct PasswordKeys {
    /// The variable holding the password itself (`SECOPS_WAZUH_PASSWORD`).
    pub env: &'static str,
    /// `wazuh.password_file (SECOPS_WAZUH_PASSWORD_FILE)`.
    pub file: Key,
    /// `wazuh.password_env`: the file names a variable of the operator's choosing.
    pub named_env: Key,
}

/// A service's password, first found of: its variable, a file (variable or TOML), a
/// variable the TOML file names, inline in the TOML file.
pub(super) fn password(
    l: &Layers,
    keys: &PasswordKeys,
    fs: &FileService,
) -> Result<Option<(Secret, SecretSource)>, ConfigError> {
    if let Some(p) = l.0.var(keys.env) {
        return Ok(Some((Secret::new(p), SecretSource::Env(keys.env.into()))));
    }
    if let Some(f) = l.layer(keys.file, fs.password_file.clone(), path)? {
        let secret = read_secret_file(&f).map_err(|problem| keys.file.error(problem))?;
        return Ok(Some((secret, SecretSource::File(f))));
    }
    if let Some(var) = &fs.password_env {
        let v = l.0.var(var).ok_or_else(|| {
            keys.named_env
                .error(format!("environment variable `{var}` is not set"))
        })?;
        return Ok(Some((Secret::new(v), SecretSource::Env(var.clone()))));
    }
    Ok(fs
        .password
        .clone()
        .map(|p| (Secret::new(p), SecretSource::Inline)))
}
