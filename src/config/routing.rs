//! `[routing]`: which channels each alert level goes to. A level written there is kept as
//! written (every name must be a configured channel); a level left out follows the
//! monitoring guide among the channels that are configured ([`default_route`]).

use std::collections::BTreeMap;

use super::ConfigError;
use super::channels::{ChannelConfig, FileRouting, LOG_CHANNEL};
use crate::alerts::Level;

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
        for n in &names {
            if !channels.iter().any(|c| &c.name == n) {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "no channel is named `{}`; configured: {}",
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
