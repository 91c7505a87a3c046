//! `[[channels]]` and `[routing]`: where our alerts' notifications go. A channel is a
//! webhook (its URL, header values and HMAC secret are secrets, read only from an
//! environment variable or a file, never inline), email (SMTP; its keys in
//! channel_email.rs), the log, or a JSONL file. Every channel
//! is built once at load by its own constructor (notify/), so `config check` refuses what
//! `serve` would. A channel named `log` always exists. Routing maps each alert level to
//! channel names (default: the log plus the monitoring guide's channels for the level among
//! those configured, see [`default_route`]); an unknown name is an error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::env::Layers;
use super::secrets::{Secret, SecretSource, read_secret_file};
use crate::alerts::Level;
use crate::alerts::rate_limit::RateLimit;
use crate::notify::Channel;
use crate::notify::email::TlsMode;
use crate::notify::template::MessageTemplate;

/// The implicit channel every configuration has.
pub const LOG_CHANNEL: &str = "log";
const MAX_CHANNELS: usize = 64;
/// The channel kinds, as errors list them.
const KINDS: &str = "`webhook`, `email`, `log`, `file`, `slack`, `sms`, `pagerduty`";

/// One `[[channels]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileChannelEntry {
    pub name: Option<String>,
    pub kind: Option<String>,
    /// webhook: the variable or file holding the URL.
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    /// webhook: header name -> the variable holding its value.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    pub hmac_secret_env: Option<String>,
    pub hmac_secret_file: Option<PathBuf>,
    pub timeout_ms: Option<u64>,
    /// file: where to append.
    pub path: Option<PathBuf>,
    pub max_line_bytes: Option<usize>,
    /// email: the SMTP server, its TLS mode, the login (password from env or file only),
    /// sender, recipients (`from` and `to` are shared with sms), and a private CA to trust instead of the system roots.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub ca_file: Option<PathBuf>,
    /// sms (Twilio): the account, its auth token, the sender, the recipients.
    pub account_sid: Option<String>,
    pub auth_token_env: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub messaging_service_sid: Option<String>,
    /// sms, pagerduty: the provider's base URL.
    pub base_url: Option<String>,
    /// pagerduty: the routing key and `payload.source`.
    pub routing_key_env: Option<String>,
    pub routing_key_file: Option<PathBuf>,
    pub source: Option<String>,
    /// slack, sms, email: the message text as a minijinja template (notify::template),
    /// inline or from a file; email: `subject_template` too.
    pub template: Option<String>,
    pub template_file: Option<PathBuf>,
    pub subject_template: Option<String>,
    /// Every kind: `N/s`, `N/m`, `N/h`, `N/d` or `none` (alerts::rate_limit); default by
    /// kind.
    pub rate_limit: Option<String>,
}

/// `[routing]` as written: level -> channel names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRouting {
    pub info: Option<Vec<String>>,
    pub warning: Option<Vec<String>>,
    pub critical: Option<Vec<String>>,
    pub emergency: Option<Vec<String>>,
}

/// A configured channel (secrets masked when shown).
#[derive(Debug, Clone, Serialize)]
pub struct ChannelConfig {
    pub name: String,
    #[serde(flatten)]
    pub kind: ChannelKind,
    /// The effective limit (as written, else the kind's default): what exceeds it is
    /// gathered into one digest.
    pub rate_limit: RateLimit,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelKind {
    Webhook {
        url: Secret,
        url_source: SecretSource,
        headers: BTreeMap<String, Secret>,
        hmac_secret: Option<Secret>,
        timeout_ms: u64,
    },
    Log,
    File {
        path: PathBuf,
        max_line_bytes: usize,
    },
    Email {
        host: String,
        port: u16,
        tls: TlsMode,
        username: Option<String>,
        password: Option<Secret>,
        password_source: Option<SecretSource>,
        from: String,
        to: Vec<String>,
        timeout_ms: u64,
        ca_file: Option<PathBuf>,
        #[serde(skip_serializing_if = "Option::is_none")]
        subject_template: Option<MessageTemplate>,
        #[serde(skip_serializing_if = "Option::is_none")]
        template: Option<MessageTemplate>,
    },
    Slack {
        url: Secret,
        url_source: SecretSource,
        timeout_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        template: Option<MessageTemplate>,
    },
    Sms {
        account_sid: String,
        auth_token: Secret,
        auth_token_source: SecretSource,
        from: Option<String>,
        messaging_service_sid: Option<String>,
        to: Vec<String>,
        base_url: String,
        timeout_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        template: Option<MessageTemplate>,
    },
    Pagerduty {
        routing_key: Secret,
        routing_key_source: SecretSource,
        source: String,
        base_url: String,
        timeout_ms: u64,
    },
}

impl ChannelKind {
    /// The kind's name in the configuration (`webhook`, `slack`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Log => "log",
            ChannelKind::File { .. } => "file",
            ChannelKind::Email { .. } => "email",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Sms { .. } => "sms",
            ChannelKind::Pagerduty { .. } => "pagerduty",
        }
    }

    /// Whether channels of this kind act on acknowledgements (the same answer as their
    /// `Channel::wants(Acknowledged)`; a test holds them together).
    pub fn takes_acknowledgements(&self) -> bool {
        matches!(self, ChannelKind::Pagerduty { .. })
    }
}

/// Channels and the routes from levels to them.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyConfig {
    pub channels: Vec<ChannelConfig>,
    /// Level name -> channel names.
    pub routing: BTreeMap<String, Vec<String>>,
}

impl NotifyConfig {
    /// The channel names a level routes to.
    pub fn route(&self, level: Level) -> &[String] {
        self.routing
            .get(level.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The channels an acknowledgement is sent to (when they were told the alert fired).
    pub fn acknowledging_channels(&self) -> Vec<String> {
        self.channels
            .iter()
            .filter(|c| c.kind.takes_acknowledgements())
            .map(|c| c.name.clone())
            .collect()
    }

    /// Every channel's effective rate limit, by name (the outbox's limiters).
    pub fn rate_limits(&self) -> BTreeMap<String, RateLimit> {
        self.channels
            .iter()
            .map(|c| (c.name.clone(), c.rate_limit))
            .collect()
    }

    pub fn has_channel(&self, name: &str) -> bool {
        self.channels.iter().any(|c| c.name == name)
    }

    /// Build every channel (the outbox's map from name to channel).
    pub fn build(&self) -> Result<BTreeMap<String, Arc<dyn Channel>>, ConfigError> {
        self.channels
            .iter()
            .enumerate()
            .map(|(i, c)| Ok((c.name.clone(), super::channels_build::build_one(i, c)?)))
            .collect()
    }
}

/// Parse and build `[[channels]]` and `[routing]`.
pub(super) fn load(
    l: &Layers,
    entries: Vec<FileChannelEntry>,
    routing: Option<FileRouting>,
) -> Result<NotifyConfig, ConfigError> {
    if entries.len() > MAX_CHANNELS {
        return Err(ConfigError::new(
            "channels",
            format!("at most {MAX_CHANNELS} channels"),
        ));
    }
    let mut channels = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let c = channel(l, i, e)?;
        if channels.iter().any(|o: &ChannelConfig| o.name == c.name) {
            return Err(ConfigError::new(
                format!("channels[{i}].name"),
                format!("`{}` is used by an earlier channel", c.name),
            ));
        }
        channels.push(c);
    }
    if !channels.iter().any(|c| c.name == LOG_CHANNEL) {
        channels.push(ChannelConfig {
            name: LOG_CHANNEL.into(),
            kind: ChannelKind::Log,
            rate_limit: RateLimit::Unlimited,
        });
    }
    let cfg = NotifyConfig {
        routing: super::routing::routes(routing.unwrap_or_default(), &channels)?,
        channels,
    };
    // Built once here, so a channel `serve` could not construct fails `config check` too.
    cfg.build()?;
    Ok(cfg)
}

fn channel(l: &Layers, i: usize, e: FileChannelEntry) -> Result<ChannelConfig, ConfigError> {
    let at = |k: &str| format!("channels[{i}].{k}");
    let name = e
        .name
        .clone()
        .ok_or_else(|| ConfigError::new(at("name"), "is required"))?;
    super::check_slug(at("name"), &name)?;
    let kind = e
        .kind
        .as_deref()
        .ok_or_else(|| ConfigError::new(at("kind"), format!("is required: {KINDS}")))?;
    let rate_limit = match e.rate_limit.as_deref() {
        None => RateLimit::default_for(kind),
        Some(r) => RateLimit::parse(r).map_err(|m| ConfigError::new(at("rate_limit"), m))?,
    };
    if kind == "pagerduty" && rate_limit.is_limited() {
        return Err(ConfigError::new(
            at("rate_limit"),
            "must be `none` for a pagerduty channel: PagerDuty notifications carry one \
             alert episode's dedup_key each and are never gathered into a digest",
        ));
    }
    let only = |allowed: &[&str]| -> Result<(), ConfigError> {
        let set = [
            ("url_env", e.url_env.is_some()),
            ("url_file", e.url_file.is_some()),
            ("headers_env", !e.headers_env.is_empty()),
            ("hmac_secret_env", e.hmac_secret_env.is_some()),
            ("hmac_secret_file", e.hmac_secret_file.is_some()),
            ("timeout_ms", e.timeout_ms.is_some()),
            ("path", e.path.is_some()),
            ("max_line_bytes", e.max_line_bytes.is_some()),
            ("host", e.host.is_some()),
            ("port", e.port.is_some()),
            ("tls", e.tls.is_some()),
            ("username", e.username.is_some()),
            ("password_env", e.password_env.is_some()),
            ("password_file", e.password_file.is_some()),
            ("from", e.from.is_some()),
            ("to", e.to.is_some()),
            ("ca_file", e.ca_file.is_some()),
            ("account_sid", e.account_sid.is_some()),
            ("auth_token_env", e.auth_token_env.is_some()),
            ("auth_token_file", e.auth_token_file.is_some()),
            ("messaging_service_sid", e.messaging_service_sid.is_some()),
            ("base_url", e.base_url.is_some()),
            ("routing_key_env", e.routing_key_env.is_some()),
            ("routing_key_file", e.routing_key_file.is_some()),
            ("source", e.source.is_some()),
            ("template", e.template.is_some()),
            ("template_file", e.template_file.is_some()),
            ("subject_template", e.subject_template.is_some()),
        ];
        match set.iter().find(|(k, on)| *on && !allowed.contains(k)) {
            Some((k, _)) => Err(ConfigError::new(
                at(k),
                format!("does not apply to a `{kind}` channel"),
            )),
            None => Ok(()),
        }
    };
    let kind = match kind {
        "webhook" => {
            only(&[
                "url_env",
                "url_file",
                "headers_env",
                "hmac_secret_env",
                "hmac_secret_file",
                "timeout_ms",
            ])?;
            let (url, url_source) = required_secret(
                l,
                &at("url_env"),
                &at("url_file"),
                e.url_env.as_deref(),
                e.url_file.as_ref(),
                "a webhook needs `url_env` or `url_file` (the URL is a secret: never inline)",
            )?;
            let hmac_secret = secret(
                l,
                &at("hmac_secret_env"),
                &at("hmac_secret_file"),
                e.hmac_secret_env.as_deref(),
                e.hmac_secret_file.as_ref(),
            )?
            .map(|(s, _)| s);
            let mut headers = BTreeMap::new();
            for (h, var) in &e.headers_env {
                let v = l.0.var(var).ok_or_else(|| {
                    ConfigError::new(
                        at("headers_env"),
                        format!("environment variable `{var}` (header `{h}`) is not set"),
                    )
                })?;
                headers.insert(h.clone(), Secret::new(v));
            }
            ChannelKind::Webhook {
                url,
                url_source,
                headers,
                hmac_secret,
                timeout_ms: e.timeout_ms.unwrap_or(10_000),
            }
        }
        "email" => {
            only(&[
                "host",
                "port",
                "tls",
                "username",
                "password_env",
                "password_file",
                "from",
                "to",
                "timeout_ms",
                "ca_file",
                "subject_template",
                "template",
                "template_file",
            ])?;
            super::channel_email::email(l, i, &e)?
        }
        "log" => {
            only(&[])?;
            ChannelKind::Log
        }
        "file" => {
            only(&["path", "max_line_bytes"])?;
            ChannelKind::File {
                path: e
                    .path
                    .clone()
                    .ok_or_else(|| ConfigError::new(at("path"), "a file channel needs `path`"))?,
                max_line_bytes: e.max_line_bytes.unwrap_or(65_536),
            }
        }
        "slack" => super::channels_providers::slack(l, i, &e, &only)?,
        "sms" => super::channels_providers::sms(l, i, &e, &only)?,
        "pagerduty" => super::channels_providers::pagerduty(l, i, &e, &only)?,
        other => {
            return Err(ConfigError::new(
                at("kind"),
                format!(
                    "`{}` is not a channel kind; allowed: {KINDS}",
                    crate::util::sanitize_untrusted(other.as_bytes(), 40)
                ),
            ));
        }
    };
    Ok(ChannelConfig {
        name,
        kind,
        rate_limit,
    })
}

/// A secret from the variable a file names, or from a file; both set is an error.
/// [`secret`] where the channel cannot work without it: `missing` says so, at `env_key`.
pub(super) fn required_secret(
    l: &Layers,
    env_key: &str,
    file_key: &str,
    var: Option<&str>,
    file: Option<&PathBuf>,
    missing: &str,
) -> Result<(Secret, SecretSource), ConfigError> {
    secret(l, env_key, file_key, var, file)?.ok_or_else(|| ConfigError::new(env_key, missing))
}

pub(super) fn secret(
    l: &Layers,
    env_key: &str,
    file_key: &str,
    var: Option<&str>,
    file: Option<&PathBuf>,
) -> Result<Option<(Secret, SecretSource)>, ConfigError> {
    match (var, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            env_key,
            format!("set `{env_key}` or `{file_key}`, not both"),
        )),
        (Some(var), None) => {
            let v = l.0.var(var).ok_or_else(|| {
                ConfigError::new(env_key, format!("environment variable `{var}` is not set"))
            })?;
            Ok(Some((Secret::new(v), SecretSource::Env(var.to_string()))))
        }
        (None, Some(f)) => {
            let s = read_secret_file(f).map_err(|p| ConfigError::new(file_key, p))?;
            Ok(Some((s, SecretSource::File(f.clone()))))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
#[path = "channels_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "channels_providers_tests.rs"]
mod provider_tests;
