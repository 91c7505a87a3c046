//! The `SECOPS_*` layering: the one rule every setting follows (its environment variable,
//! else the config file's value, else the default; errors name the TOML key and the
//! variable), the parsers for environment text, and the list of variables the server reads.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;

use super::ConfigError;

/// Environment access, abstracted so tests can pass a map instead of mutating the process env.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned().filter(|v| !v.is_empty())
    }
}

/// Every environment variable the server reads (documented in README's reference).
pub const ENV_VARS: &[&str] = &[
    "SECOPS_CONFIG",
    "SECOPS_STATE_DIR",
    "SECOPS_LOG",
    "SECOPS_WAZUH_URL",
    "SECOPS_WAZUH_USER",
    "SECOPS_WAZUH_PASSWORD",
    "SECOPS_WAZUH_PASSWORD_FILE",
    "SECOPS_WAZUH_CA_FILE",
    "SECOPS_INDEXER_URL",
    "SECOPS_INDEXER_USER",
    "SECOPS_INDEXER_PASSWORD",
    "SECOPS_INDEXER_PASSWORD_FILE",
    "SECOPS_INDEXER_CA_FILE",
    "SECOPS_EXTRA_CA_FILE",
    "SECOPS_TLS_INSECURE",
    "SECOPS_SCAN_ALLOW",
    "SECOPS_SCAN_RATE_PER_MINUTE",
    "SECOPS_HTTP_TOKENS_FILE",
    "SECOPS_ALLOWED_ORIGINS",
    "SECOPS_ALLOWED_HOSTS",
    "SECOPS_HTTP_RATE_LIMIT",
    "SECOPS_HTTP_MAX_BODY_BYTES",
    "SECOPS_REMEDIATION",
    "SECOPS_CERT_FILE_ROOTS",
    "SECOPS_CERT_ALLOW",
    "SECOPS_HEALTH_TIMEOUT_MS",
    "SECOPS_CONTAINER_FILTER",
    "SECOPS_INCIDENTS_MIN_LEVEL",
    "SECOPS_INCIDENTS_INGEST_INTERVAL_SECS",
    "DOCKER_HOST",
];

/// A setting's names: its path in the TOML file and, when it has one, its environment
/// variable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub toml: &'static str,
    pub env: Option<&'static str>,
}

impl Key {
    /// A setting only the TOML file can give.
    pub(crate) const fn file(toml: &'static str) -> Self {
        Self { toml, env: None }
    }

    /// A setting the environment variable `var` overrides.
    pub(crate) const fn env(toml: &'static str, var: &'static str) -> Self {
        Self {
            toml,
            env: Some(var),
        }
    }

    /// A problem with this setting, naming the TOML key and the variable
    /// (`scan.allow (SECOPS_SCAN_ALLOW)`).
    pub(crate) fn error(&self, problem: impl Into<String>) -> ConfigError {
        let key = match self.env {
            Some(var) => format!("{} ({var})", self.toml),
            None => self.toml.to_string(),
        };
        ConfigError::new(key, problem)
    }
}

/// Reads settings, the environment over the file.
pub(crate) struct Layers<'a>(pub &'a dyn Env);

impl Layers<'_> {
    /// The rule: `key`'s variable (its text read by `parse`), else the file's value.
    pub fn layer<T>(
        &self,
        key: Key,
        file: Option<T>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(var) = key.env else {
            return Ok(file);
        };
        debug_assert!(ENV_VARS.contains(&var), "{var} is missing from ENV_VARS");
        match self.0.var(var) {
            Some(text) => parse(&text).map(Some).map_err(|p| key.error(p)),
            None => Ok(file),
        }
    }

    /// [`Self::layer`], else `default`.
    pub fn get<T>(
        &self,
        key: Key,
        file: Option<T>,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        Ok(self.layer(key, file, parse)?.unwrap_or(default))
    }

    /// A number, else `default`, that must lie in `range`.
    pub fn number<T: FromStr + PartialOrd + Display>(
        &self,
        key: Key,
        file: Option<T>,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T, ConfigError> {
        within(key, self.get(key, file, default, number)?, range)
    }
}

/// `v` if it lies in `range`, else an error naming the key and the bounds.
pub(crate) fn within<T: PartialOrd + Display>(
    key: Key,
    v: T,
    range: RangeInclusive<T>,
) -> Result<T, ConfigError> {
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(key.error(format!(
            "must be between {} and {} (not {v})",
            range.start(),
            range.end()
        )))
    }
}

// ----- parsers for environment text -----

pub(crate) fn text(v: &str) -> Result<String, String> {
    Ok(v.to_string())
}

pub(crate) fn path(v: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(v))
}

/// Comma-separated, entries trimmed, empty ones dropped.
pub(crate) fn list(v: &str) -> Result<Vec<String>, String> {
    Ok(v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

pub(crate) fn number<T: FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("`{v}` is not a valid number"))
}

pub(crate) fn boolean(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("`{other}` is not a boolean; use true or false")),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::Config;

    /// Records every variable asked for; sets only the state directory.
    struct Recording(RefCell<BTreeSet<String>>);

    impl Env for Recording {
        fn var(&self, key: &str) -> Option<String> {
            self.0.borrow_mut().insert(key.to_string());
            (key == "SECOPS_STATE_DIR").then(|| "/tmp/secops-test-state".to_string())
        }
    }

    #[test]
    fn every_variable_read_is_listed_in_env_vars() {
        let env = Recording(RefCell::default());
        let toml = "[wazuh]\nurl = \"https://w\"\n[indexer]\nurl = \"https://i\"\n";
        Config::from_toml_str(toml, &env).unwrap();
        Config::load_with(None, &env).unwrap();
        let read = env.0.into_inner();
        for var in &read {
            assert!(ENV_VARS.contains(&var.as_str()), "{var} not in ENV_VARS");
        }
        // And nothing is listed that no setting reads.
        for var in ENV_VARS {
            assert!(read.contains(*var), "{var} is listed but never read");
        }
        let unique: BTreeSet<_> = ENV_VARS.iter().collect();
        assert_eq!(unique.len(), ENV_VARS.len(), "duplicate in ENV_VARS");
    }

    #[test]
    fn env_text_parsers_name_the_problem() {
        let key = Key::env("tls.insecure", "SECOPS_TLS_INSECURE");
        let env: BTreeMap<String, String> = [("SECOPS_TLS_INSECURE".into(), "maybe".into())].into();
        let e = Layers(&env).get(key, None, false, boolean).unwrap_err();
        assert_eq!(e.key, "tls.insecure (SECOPS_TLS_INSECURE)");
        assert!(e.problem.contains("`maybe`"), "{e}");
        assert_eq!(list(" a, ,b ,").unwrap(), vec!["a", "b"]);
        assert!(number::<u32>("x").unwrap_err().contains("`x`"));
        let e = within(Key::file("http.max_sessions"), 0, 1..=10).unwrap_err();
        assert_eq!(e.key, "http.max_sessions");
    }
}
