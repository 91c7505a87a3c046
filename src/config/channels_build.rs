//! Each configured channel built by its own notify/ constructor (the outbox's channels;
//! `config check` builds them too, so it refuses what `serve` would).

use std::sync::Arc;

use super::ConfigError;
use super::channels::{ChannelConfig, ChannelKind};
use crate::notify::Channel;
use crate::notify::email::{EmailChannel, EmailSettings};
use crate::notify::file::{FileChannel, FileSettings};
use crate::notify::log::LogChannel;
use crate::notify::pagerduty::{PagerDutyChannel, PagerDutySettings};
use crate::notify::slack::{SlackChannel, SlackSettings};
use crate::notify::sms::{SmsChannel, SmsSettings};
use crate::notify::webhook::{WebhookChannel, WebhookSettings};

pub(super) fn build_one(i: usize, c: &ChannelConfig) -> Result<Arc<dyn Channel>, ConfigError> {
    let key = format!("channels[{i}] ({})", c.name);
    let bad = |e: crate::notify::ChannelError| ConfigError::new(key.clone(), e.reason);
    Ok(match &c.kind {
        ChannelKind::Webhook {
            url,
            headers,
            hmac_secret,
            timeout_ms,
            ..
        } => Arc::new(
            WebhookChannel::new(
                &c.name,
                WebhookSettings {
                    url: url.clone(),
                    headers: headers.clone(),
                    hmac_secret: hmac_secret.clone(),
                    timeout_ms: *timeout_ms,
                },
            )
            .map_err(bad)?,
        ),
        ChannelKind::Log => Arc::new(LogChannel::new(&c.name)),
        ChannelKind::File {
            path,
            max_line_bytes,
        } => Arc::new(
            FileChannel::new(
                &c.name,
                FileSettings {
                    path: path.clone(),
                    max_line_bytes: *max_line_bytes,
                },
            )
            .map_err(bad)?,
        ),
        ChannelKind::Email {
            host,
            port,
            tls,
            username,
            password,
            from,
            to,
            timeout_ms,
            ca_file,
            subject_template,
            template,
            ..
        } => Arc::new(
            EmailChannel::new(
                &c.name,
                EmailSettings {
                    host: host.clone(),
                    port: *port,
                    tls: *tls,
                    username: username.clone(),
                    password: password.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    timeout_ms: *timeout_ms,
                    ca_file: ca_file.clone(),
                    subject_template: subject_template.clone(),
                    template: template.clone(),
                },
            )
            .map_err(bad)?,
        ),
        ChannelKind::Slack {
            url,
            timeout_ms,
            template,
            ..
        } => Arc::new(
            SlackChannel::new(
                &c.name,
                SlackSettings {
                    url: url.clone(),
                    timeout_ms: *timeout_ms,
                    template: template.clone(),
                },
            )
            .map_err(bad)?,
        ),
        ChannelKind::Sms {
            account_sid,
            auth_token,
            from,
            messaging_service_sid,
            to,
            base_url,
            timeout_ms,
            template,
            ..
        } => Arc::new(
            SmsChannel::new(
                &c.name,
                SmsSettings {
                    account_sid: account_sid.clone(),
                    auth_token: auth_token.clone(),
                    from: from.clone(),
                    messaging_service_sid: messaging_service_sid.clone(),
                    to: to.clone(),
                    base_url: base_url.clone(),
                    timeout_ms: *timeout_ms,
                    template: template.clone(),
                },
            )
            .map_err(bad)?,
        ),
        ChannelKind::Pagerduty {
            routing_key,
            source,
            base_url,
            timeout_ms,
            ..
        } => Arc::new(
            PagerDutyChannel::new(
                &c.name,
                PagerDutySettings {
                    routing_key: routing_key.clone(),
                    source: source.clone(),
                    base_url: base_url.clone(),
                    timeout_ms: *timeout_ms,
                },
            )
            .map_err(bad)?,
        ),
    })
}
