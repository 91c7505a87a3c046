//! `[routing]`: which channels each alert level goes to. A level written there is kept as
//! written (every name must be a configured channel); a level left out follows the
//! monitoring guide among the channels that are configured ([`default_route`]). An entry
//! `contact:<name or role>` (in `[routing]` or a monitor's `routes`) tells that contact on
//! each of their channels, addressed to them ([`contact_targets`], checked against
//! `[[contacts]]` once they are loaded: [`check_contacts`]).

use std::collections::BTreeMap;

use super::ConfigError;
use super::channels::{ChannelConfig, FileRouting, LOG_CHANNEL, NotifyConfig};
use super::contacts::{ContactConfig, resolve_known};
use crate::alerts::Level;
use crate::store::alerts::Target;

/// What a route entry starts with when it names a contact instead of a channel.
pub const CONTACT_PREFIX: &str = "contact:";

/// The contact a route entry names (`contact:Alice Martin` -> `Alice Martin`), or None for
/// a channel name.
pub fn contact_ref(entry: &str) -> Option<&str> {
    let head = entry.get(..CONTACT_PREFIX.len())?;
    head.eq_ignore_ascii_case(CONTACT_PREFIX)
        .then(|| entry[CONTACT_PREFIX.len()..].trim())
}

/// The targets of a `contact:` entry: every contact with that name, else that role
/// (case-insensitive), on each of their channels. Err: the problem, listing the contacts.
pub(super) fn contact_targets(
    who: &str,
    contacts: &[ContactConfig],
) -> Result<Vec<Target>, String> {
    let found = resolve_known(contacts, who)?;
    Ok(found
        .into_iter()
        .flat_map(|c| c.channels.iter().map(|ch| Target::contact(ch, &c.name)))
        .collect())
}

/// Every `contact:` entry of `[routing]` names a configured contact; the error names the
/// entry (`routing.critical[2]`).
pub(super) fn check_contacts(
    notify: &NotifyConfig,
    contacts: &[ContactConfig],
) -> Result<(), ConfigError> {
    for level in Level::ALL {
        for (j, entry) in notify.route(level).iter().enumerate() {
            if let Some(who) = contact_ref(entry) {
                contact_targets(who, contacts)
                    .map_err(|p| ConfigError::new(format!("routing.{}[{j}]", level.as_str()), p))?;
            }
        }
    }
    Ok(())
}

/// The kinds the monitoring guide routes each level to: info to Slack; warning to email
/// and Slack; critical also SMS; emergency also PagerDuty.
fn guide_kinds(level: Level) -> &'static [&'static str] {
    match level {
        Level::Info => &["slack"],
        Level::Warning => &["email", "slack"],
        Level::Critical => &["email", "slack", "sms"],
        Level::Emergency => &["email", "slack", "sms", "pagerduty"],
    }
}

/// A level `[routing]` does not name: the log, then every configured channel of the
/// guide's kinds for that level, in the order they are configured (a kind that is not
/// configured does not count; webhooks and files are routed only by name).
pub(super) fn default_route(level: Level, channels: &[ChannelConfig]) -> Vec<String> {
    let kinds = guide_kinds(level);
    let mut names = vec![LOG_CHANNEL.to_string()];
    names.extend(
        channels
            .iter()
            .filter(|c| kinds.contains(&c.kind.name()))
            .map(|c| c.name.clone()),
    );
    names
}

pub(super) fn routes(
    r: FileRouting,
    channels: &[ChannelConfig],
) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (level, names) in [
        (Level::Info, r.info),
        (Level::Warning, r.warning),
        (Level::Critical, r.critical),
        (Level::Emergency, r.emergency),
    ] {
        let key = format!("routing.{}", level.as_str());
        let names = names.unwrap_or_else(|| default_route(level, channels));
        for (j, n) in names.iter().enumerate() {
            if let Some(who) = contact_ref(n) {
                if who.is_empty() {
                    return Err(ConfigError::new(
                        format!("{key}[{j}]"),
                        "`contact:` needs a contact's name or role, e.g. `contact:security lead`",
                    ));
                }
                continue;
            }
            if !channels.iter().any(|c| &c.name == n) {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "no channel is named `{}` (a contact is written `contact:<name or \
                         role>`); configured: {}",
                        crate::util::sanitize_untrusted(n.as_bytes(), 64),
                        channels
                            .iter()
                            .map(|c| format!("`{}`", c.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        out.insert(level.as_str().to_string(), names);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
