//! The `[[channels]]` kinds that speak to a provider's API: `slack` (the webhook URL from
//! env or file), `sms` (Twilio: account, auth token from env or file, sender, E.164
//! recipients, base URL) and `pagerduty` (routing key from env or file, source, base URL).
//! Each turns one entry into its `ChannelKind`; errors name the key. The channel's own
//! constructor (notify/) checks the rest when the configuration is built.

use super::ConfigError;
use super::channels::{ChannelKind, FileChannelEntry, required_secret};
use super::env::Layers;
use crate::notify::template::MessageTemplate;

/// `kind = "slack"`.
pub(super) fn slack(
    l: &Layers,
    i: usize,
    e: &FileChannelEntry,
    only: &dyn Fn(&[&str]) -> Result<(), ConfigError>,
) -> Result<ChannelKind, ConfigError> {
    let at = |k: &str| format!("channels[{i}].{k}");
    only(&[
        "url_env",
        "url_file",
        "timeout_ms",
        "template",
        "template_file",
    ])?;
    let (url, url_source) = required_secret(
        l,
        &at("url_env"),
        &at("url_file"),
        e.url_env.as_deref(),
        e.url_file.as_ref(),
        "a slack channel needs `url_env` or `url_file` (the webhook URL is a \
             secret: never inline)",
    )?;
    Ok(ChannelKind::Slack {
        url,
        url_source,
        timeout_ms: e.timeout_ms.unwrap_or(10_000),
        template: template(i, e)?,
    })
}

/// `kind = "sms"`.
pub(super) fn sms(
    l: &Layers,
    i: usize,
    e: &FileChannelEntry,
    only: &dyn Fn(&[&str]) -> Result<(), ConfigError>,
) -> Result<ChannelKind, ConfigError> {
    let at = |k: &str| format!("channels[{i}].{k}");
    only(&[
        "account_sid",
        "auth_token_env",
        "auth_token_file",
        "from",
        "messaging_service_sid",
        "to",
        "base_url",
        "timeout_ms",
        "template",
        "template_file",
    ])?;
    let account_sid = e.account_sid.clone().ok_or_else(|| {
        ConfigError::new(
            at("account_sid"),
            "an sms channel needs `account_sid` (AC...)",
        )
    })?;
    let (auth_token, auth_token_source) = required_secret(
        l,
        &at("auth_token_env"),
        &at("auth_token_file"),
        e.auth_token_env.as_deref(),
        e.auth_token_file.as_ref(),
        "an sms channel needs `auth_token_env` or `auth_token_file` (the Twilio \
             auth token is a secret: never inline)",
    )?;
    let to = e.to.clone().unwrap_or_default();
    if to.is_empty() {
        return Err(ConfigError::new(
            at("to"),
            "an sms channel needs `to`: a list of E.164 numbers (`[\"+15551230001\"]`)",
        ));
    }
    for (j, n) in to.iter().enumerate() {
        if !crate::notify::sms::is_e164(n) {
            return Err(ConfigError::new(
                format!("channels[{i}].to[{j}]"),
                format!(
                    "`{}` is not an E.164 number: `+` and 2 to 15 digits, e.g. \
                     `+15005550006`",
                    crate::util::sanitize_untrusted(n.as_bytes(), 24)
                ),
            ));
        }
    }
    Ok(ChannelKind::Sms {
        account_sid,
        auth_token,
        auth_token_source,
        from: e.from.clone(),
        messaging_service_sid: e.messaging_service_sid.clone(),
        to,
        base_url: e
            .base_url
            .clone()
            .unwrap_or_else(|| "https://api.twilio.com".into()),
        timeout_ms: e.timeout_ms.unwrap_or(10_000),
        template: template(i, e)?,
    })
}

/// `kind = "pagerduty"`.
pub(super) fn pagerduty(
    l: &Layers,
    i: usize,
    e: &FileChannelEntry,
    only: &dyn Fn(&[&str]) -> Result<(), ConfigError>,
) -> Result<ChannelKind, ConfigError> {
    let at = |k: &str| format!("channels[{i}].{k}");
    only(&[
        "routing_key_env",
        "routing_key_file",
        "source",
        "base_url",
        "timeout_ms",
    ])?;
    let (routing_key, routing_key_source) = required_secret(
        l,
        &at("routing_key_env"),
        &at("routing_key_file"),
        e.routing_key_env.as_deref(),
        e.routing_key_file.as_ref(),
        "a pagerduty channel needs `routing_key_env` or `routing_key_file` (the \
             routing key is a secret: never inline)",
    )?;
    Ok(ChannelKind::Pagerduty {
        routing_key,
        routing_key_source,
        source: e
            .source
            .clone()
            .unwrap_or_else(crate::notify::pagerduty::default_source),
        base_url: e
            .base_url
            .clone()
            .unwrap_or_else(|| "https://events.pagerduty.com".into()),
        timeout_ms: e.timeout_ms.unwrap_or(10_000),
    })
}

/// `template` (inline) or `template_file`: compiled and checked against a sample
/// notification now; the error names the key (`channels[2].template: line 1: ...`).
pub(super) fn template(
    i: usize,
    e: &FileChannelEntry,
) -> Result<Option<MessageTemplate>, ConfigError> {
    let at = |k: &str| format!("channels[{i}].{k}");
    let (key, source) = match (&e.template, &e.template_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                at("template"),
                "set `template` or `template_file`, not both",
            ));
        }
        (None, None) => return Ok(None),
        (Some(t), None) => (at("template"), t.clone()),
        (None, Some(f)) => (
            at("template_file"),
            std::fs::read_to_string(f).map_err(|err| {
                ConfigError::new(
                    at("template_file"),
                    format!("cannot read {}: {err}", f.display()),
                )
            })?,
        ),
    };
    compile(&key, &source).map(Some)
}

/// One template source compiled, its error under `key`.
pub(super) fn compile(key: &str, source: &str) -> Result<MessageTemplate, ConfigError> {
    MessageTemplate::compile(source).map_err(|r| ConfigError::new(key, r))
}
