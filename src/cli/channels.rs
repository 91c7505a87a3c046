//! `secops-mcp channels list|test NAME`: the configured notification channels (names and
//! kinds, never a URL or secret), and one test notification sent once through a channel
//! with what the receiver answered (the monitoring guide's "alerts are not sending"
//! check). The answer is the channel's own, already free of its URL and secrets.

use std::process::ExitCode;

use secops_mcp::alerts::outbox::self_body;
use secops_mcp::alerts::{Level, NotificationBody, NotificationKind};
use secops_mcp::clock::{Clock, SystemClock};
use secops_mcp::config::Config;
use secops_mcp::notify::Delivery;

pub fn list(config: Config) -> anyhow::Result<ExitCode> {
    for c in &config.notify.channels {
        let kind = c.kind.name();
        let levels: Vec<&str> = config
            .notify
            .routing
            .iter()
            .filter(|(_, names)| names.contains(&c.name))
            .map(|(level, _)| level.as_str())
            .collect();
        println!(
            "{:<24} {:<9} routed: {}",
            c.name,
            kind,
            if levels.is_empty() {
                "-".to_string()
            } else {
                levels.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The notification a test sends: one `info` alert of the `secops-mcp` monitor, kind `test`.
fn test_body(channel: &str, now: i64) -> NotificationBody {
    self_body(
        NotificationKind::Test,
        "channel_test",
        Level::Info,
        channel,
        &[],
        format!("Test notification for channel {channel}"),
        "A test sent by `secops-mcp channels test`; nothing is wrong.".into(),
        now,
    )
}

pub async fn test(config: Config, name: &str) -> anyhow::Result<ExitCode> {
    let channels = config.notify.build()?;
    let Some(channel) = channels.get(name) else {
        anyhow::bail!(
            "no channel is named `{}`; configured: {}",
            secops_mcp::util::sanitize_untrusted(name.as_bytes(), 64),
            channels
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let body = test_body(name, SystemClock.now_ms());
    let started = std::time::Instant::now();
    let delivery = channel.send(&body).await;
    let ms = started.elapsed().as_millis();
    let status = |s: &Option<u16>| s.map(|s| format!("HTTP {s}, ")).unwrap_or_default();
    match delivery {
        Delivery::Delivered { status: s, answer } => {
            println!(
                "{name} ({}): delivered in {ms} ms ({}answer: {})",
                channel.kind(),
                status(&s),
                if answer.is_empty() { "-" } else { &answer }
            );
            Ok(ExitCode::SUCCESS)
        }
        Delivery::Retry {
            status: s,
            reason,
            after,
        } => {
            println!(
                "{name} ({}): NOT delivered after {ms} ms, would be retried{} ({}{reason})",
                channel.kind(),
                after
                    .map(|a| format!(" after {} s", a.as_secs()))
                    .unwrap_or_default(),
                status(&s)
            );
            Ok(ExitCode::FAILURE)
        }
        Delivery::Failed { status: s, reason } => {
            println!(
                "{name} ({}): NOT delivered after {ms} ms, refused for good ({}{reason})",
                channel.kind(),
                status(&s)
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
