//! The `[wazuh]` (manager API) and `[indexer]` sections: URL, login, CA file, each
//! overridable by its `SECOPS_WAZUH_*` / `SECOPS_INDEXER_*` variable.

use std::path::PathBuf;

use serde::Serialize;

use super::ConfigError;
use super::env::{Key, Layers, path, text, within};
use super::file::FileService;
use super::secrets::{PasswordKeys, Secret, SecretSource, password};

#[derive(Debug, Clone, Serialize)]
pub struct Login {
    pub user: String,
    pub password: Option<Secret>,
    pub password_source: Option<SecretSource>,
}

/// Wazuh manager API.
#[derive(Debug, Clone, Serialize)]
pub struct WazuhConfig {
    pub url: String,
    pub login: Login,
    pub ca_file: Option<PathBuf>,
    /// Our own ceiling on manager API requests, kept below Wazuh's global limit
    /// (`max_request_per_minute`, 300 by default) so other API users keep their share.
    pub requests_per_minute: u32,
}

/// Wazuh indexer (OpenSearch).
#[derive(Debug, Clone, Serialize)]
pub struct IndexerConfig {
    pub url: String,
    pub login: Login,
    pub ca_file: Option<PathBuf>,
}

/// The names of one service's settings.
struct ServiceKeys {
    url: Key,
    user: Key,
    default_user: &'static str,
    password: PasswordKeys,
    ca_file: Key,
}

const MANAGER: ServiceKeys = ServiceKeys {
    url: Key::env("wazuh.url", "SECOPS_WAZUH_URL"),
    user: Key::env("wazuh.user", "SECOPS_WAZUH_USER"),
    default_user: "wazuh",
    password: PasswordKeys {
        env: "SECOPS_WAZUH_PASSWORD",
        file: Key::env("wazuh.password_file", "SECOPS_WAZUH_PASSWORD_FILE"),
        named_env: Key::file("wazuh.password_env"),
    },
    ca_file: Key::env("wazuh.ca_file", "SECOPS_WAZUH_CA_FILE"),
};

const INDEXER: ServiceKeys = ServiceKeys {
    url: Key::env("indexer.url", "SECOPS_INDEXER_URL"),
    user: Key::env("indexer.user", "SECOPS_INDEXER_USER"),
    default_user: "admin",
    password: PasswordKeys {
        env: "SECOPS_INDEXER_PASSWORD",
        file: Key::env("indexer.password_file", "SECOPS_INDEXER_PASSWORD_FILE"),
        named_env: Key::file("indexer.password_env"),
    },
    ca_file: Key::env("indexer.ca_file", "SECOPS_INDEXER_CA_FILE"),
};

/// `[wazuh]`: `None` when no URL is set (the Wazuh tools then say `not_configured`).
pub(super) fn manager(
    l: &Layers,
    fs: Option<FileService>,
) -> Result<Option<WazuhConfig>, ConfigError> {
    let fs = fs.unwrap_or_default();
    let requests_per_minute = within(
        Key::file("wazuh.requests_per_minute"),
        fs.requests_per_minute.unwrap_or(240),
        1..=1_000_000,
    )?;
    Ok(
        service(l, &MANAGER, fs)?.map(|(url, login, ca_file)| WazuhConfig {
            url,
            login,
            ca_file,
            requests_per_minute,
        }),
    )
}

/// `[indexer]`: `None` when no URL is set.
pub(super) fn indexer(
    l: &Layers,
    fs: Option<FileService>,
) -> Result<Option<IndexerConfig>, ConfigError> {
    let fs = fs.unwrap_or_default();
    if fs.requests_per_minute.is_some() {
        return Err(Key::file("indexer.requests_per_minute")
            .error("is only a [wazuh] setting (the manager API's limit)"));
    }
    Ok(
        service(l, &INDEXER, fs)?.map(|(url, login, ca_file)| IndexerConfig {
            url,
            login,
            ca_file,
        }),
    )
}

type ServiceParts = (String, Login, Option<PathBuf>);

fn service(
    l: &Layers,
    keys: &ServiceKeys,
    fs: FileService,
) -> Result<Option<ServiceParts>, ConfigError> {
    let Some(url) = l.layer(keys.url, fs.url.clone(), text)? else {
        return Ok(None);
    };
    let parsed = url.trim().trim_end_matches('/').to_string();
    match parsed.split_once("://") {
        Some(("https", rest)) | Some(("http", rest)) if !rest.is_empty() => {}
        _ => {
            return Err(keys.url.error(format!(
                "`{url}` is not an http(s) URL, e.g. https://wazuh.example:55000"
            )));
        }
    }
    let user = l.get(keys.user, fs.user.clone(), keys.default_user.into(), text)?;
    let (password, password_source) = password(l, &keys.password, &fs)?.unzip();
    let ca_file = l.layer(keys.ca_file, fs.ca_file, path)?;
    if let Some(ca) = &ca_file
        && !ca.is_file()
    {
        return Err(keys
            .ca_file
            .error(format!("{} does not exist or is not a file", ca.display())));
    }
    Ok(Some((
        parsed,
        Login {
            user,
            password,
            password_source,
        },
        ca_file,
    )))
}
