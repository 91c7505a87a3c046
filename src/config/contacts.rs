//! `[[contacts]]`: the people escalation tells (and the incidents' SLA escalation). A
//! contact has a unique `name`, an optional `role` ("security lead": what the default
//! escalation rules and `[incidents]` `*_contact` refer to), an `email`, a `phone` (E.164)
//! and a PagerDuty routing key (a secret: only `pagerduty_routing_key_env` or `_file`,
//! masked in `config show`). `channels` names the configured channels used for this
//! contact; by default every channel whose kind can address them (email channels when
//! the contact has an email, sms when a phone, pagerduty when a routing key). A contact no
//! channel can reach is a configuration error naming the contact.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::channels::{ChannelKind, NotifyConfig, secret};
use super::env::Layers;
use super::secrets::{Secret, SecretSource};
use crate::notify::Recipient;

const MAX_CONTACTS: usize = 200;

/// One `[[contacts]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileContact {
    pub name: Option<String>,
    pub role: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub pagerduty_routing_key_env: Option<String>,
    pub pagerduty_routing_key_file: Option<PathBuf>,
    pub channels: Option<Vec<String>>,
}

/// A configured contact (the routing key masked when shown).
#[derive(Debug, Clone, Serialize)]
pub struct ContactConfig {
    pub name: String,
    pub role: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub pagerduty_routing_key: Option<Secret>,
    pub pagerduty_routing_key_source: Option<SecretSource>,
    /// The channels this contact is told on (as written, or the default).
    pub channels: Vec<String>,
}

impl ContactConfig {
    /// The address book entry the outbox hands a channel.
    pub fn recipient(&self) -> Recipient {
        Recipient {
            name: self.name.clone(),
            role: self.role.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            pagerduty_routing_key: self.pagerduty_routing_key.clone(),
        }
    }

    /// Whether a channel of `kind` can address this contact.
    fn reachable_by(&self, kind: &ChannelKind) -> Result<(), &'static str> {
        match kind {
            ChannelKind::Email { .. } if self.email.is_none() => {
                Err("is an email channel, but the contact has no `email`")
            }
            ChannelKind::Sms { .. } if self.phone.is_none() => {
                Err("is an sms channel, but the contact has no `phone`")
            }
            ChannelKind::Pagerduty { .. } if self.pagerduty_routing_key.is_none() => Err(
                "is a pagerduty channel, but the contact has no `pagerduty_routing_key_env` \
                 or `pagerduty_routing_key_file`",
            ),
            _ => Ok(()),
        }
    }
}

/// The contacts whose name is `who`, else whose role is `who` (case-insensitive).
pub fn resolve<'a>(contacts: &'a [ContactConfig], who: &str) -> Vec<&'a ContactConfig> {
    let who = who.trim();
    if let Some(c) = contacts.iter().find(|c| c.name.eq_ignore_ascii_case(who)) {
        return vec![c];
    }
    contacts
        .iter()
        .filter(|c| {
            c.role
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(who))
        })
        .collect()
}

/// [`resolve`], or the problem when nobody answers to `who`: its text, listing the
/// configured contacts (what a route entry or an escalation rule's error says).
pub(super) fn resolve_known<'a>(
    contacts: &'a [ContactConfig],
    who: &str,
) -> Result<Vec<&'a ContactConfig>, String> {
    let found = resolve(contacts, who);
    if !found.is_empty() {
        return Ok(found);
    }
    Err(format!(
        "no contact has the name or role `{}`; configured: {}",
        crate::util::quote_untrusted(who, 64),
        if contacts.is_empty() {
            "none (add [[contacts]])".to_string()
        } else {
            contacts
                .iter()
                .map(|c| match &c.role {
                    Some(r) => format!("`{}` ({r})", c.name),
                    None => format!("`{}`", c.name),
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    ))
}

/// A person's name or role: 1 to 64 letters, digits, spaces and `-_.'`.
fn word_ok(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty()
        && t == s
        && s.chars().count() <= 64
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '\''))
}

pub(super) fn load(
    l: &Layers,
    entries: Vec<FileContact>,
    notify: &NotifyConfig,
) -> Result<Vec<ContactConfig>, ConfigError> {
    if entries.len() > MAX_CONTACTS {
        return Err(ConfigError::new(
            "contacts",
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    let mut out: Vec<ContactConfig> = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let c = contact(l, i, e, notify)?;
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&c.name)) {
            return Err(ConfigError::new(
                format!("contacts[{i}].name"),
                format!("`{}` is used by an earlier contact", c.name),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

fn contact(
    l: &Layers,
    i: usize,
    e: FileContact,
    notify: &NotifyConfig,
) -> Result<ContactConfig, ConfigError> {
    let at = |k: &str| format!("contacts[{i}].{k}");
    let shown = |s: &str| crate::util::quote_untrusted(s, 64);
    let name = e
        .name
        .ok_or_else(|| ConfigError::new(at("name"), "is required (a person's name)"))?;
    if !word_ok(&name) {
        return Err(ConfigError::new(
            at("name"),
            format!(
                "`{}` must be 1 to 64 letters, digits, spaces and `-_.'`, without leading or \
                 trailing spaces",
                shown(&name)
            ),
        ));
    }
    if let Some(r) = &e.role
        && !word_ok(r)
    {
        return Err(ConfigError::new(
            at("role"),
            format!(
                "`{}` must be 1 to 64 letters, digits, spaces and `-_.'` (e.g. \"security lead\")",
                shown(r)
            ),
        ));
    }
    if let Some(m) = &e.email {
        crate::notify::email::parse_address(m).map_err(|p| ConfigError::new(at("email"), p))?;
    }
    if let Some(p) = &e.phone
        && !crate::notify::sms::is_e164(p)
    {
        return Err(ConfigError::new(
            at("phone"),
            format!(
                "`{}` is not an E.164 number: `+` and 2 to 15 digits, e.g. `+15551230001`",
                shown(p)
            ),
        ));
    }
    let key = secret(
        l,
        &at("pagerduty_routing_key_env"),
        &at("pagerduty_routing_key_file"),
        e.pagerduty_routing_key_env.as_deref(),
        e.pagerduty_routing_key_file.as_ref(),
    )?;
    if let Some((k, _)) = &key {
        let k = k.expose();
        if k.is_empty() || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::new(
                at("pagerduty_routing_key_env"),
                "the routing key must be 1 to 64 letters and digits (an Events API v2 \
                 integration key)",
            ));
        }
    }
    let (pagerduty_routing_key, pagerduty_routing_key_source) = match key {
        Some((k, s)) => (Some(k), Some(s)),
        None => (None, None),
    };
    let mut c = ContactConfig {
        name,
        role: e.role,
        email: e.email,
        phone: e.phone,
        pagerduty_routing_key,
        pagerduty_routing_key_source,
        channels: Vec::new(),
    };
    c.channels = match e.channels {
        Some(names) => {
            for (j, n) in names.iter().enumerate() {
                let key = format!("contacts[{i}].channels[{j}]");
                let Some(ch) = notify.channels.iter().find(|ch| &ch.name == n) else {
                    return Err(ConfigError::new(
                        key,
                        format!(
                            "no channel is named `{}`; configured: {}",
                            shown(n),
                            notify
                                .channels
                                .iter()
                                .map(|c| format!("`{}`", c.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                };
                c.reachable_by(&ch.kind)
                    .map_err(|p| ConfigError::new(&key, format!("`{n}` {p}")))?;
                if names[..j].contains(n) {
                    return Err(ConfigError::new(key, format!("`{n}` is listed twice")));
                }
            }
            names
        }
        None => notify
            .channels
            .iter()
            .filter(|ch| {
                matches!(
                    ch.kind,
                    ChannelKind::Email { .. }
                        | ChannelKind::Sms { .. }
                        | ChannelKind::Pagerduty { .. }
                ) && c.reachable_by(&ch.kind).is_ok()
            })
            .map(|ch| ch.name.clone())
            .collect(),
    };
    if c.channels.is_empty() {
        return Err(ConfigError::new(
            at("channels"),
            format!(
                "no channel can reach contact `{}`: give them an `email` (with an email \
                 channel), a `phone` (with an sms channel) or a PagerDuty routing key (with a \
                 pagerduty channel), or list `channels` (e.g. a slack or webhook channel that \
                 names them)",
                c.name
            ),
        ));
    }
    Ok(c)
}
