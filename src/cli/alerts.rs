//! `secops-mcp alerts list|show ID|ack ID|silence|unsilence ID|silences`: our alerts from a
//! shell, read from the state database (the same overview, detail, acknowledgement and
//! silences as alert_status and alert_update; changes are audited with the caller
//! `cli:<user>`). Silence commands live in `alerts_silence.rs`.

use std::process::ExitCode;

use secops_mcp::alerts::AlertState;
use secops_mcp::alerts::status::{self, AlertView, ScheduledMonitor, StatusArgs};
use secops_mcp::alerts::update::{self, UpdateArgs};
use secops_mcp::clock::{Clock, SystemClock};
use secops_mcp::config::Config;
use secops_mcp::store::Store;

use super::usage;

fn clean(s: &str) -> String {
    secops_mcp::util::sanitize_untrusted(s.as_bytes(), 200)
}

fn line(a: &AlertView) -> String {
    format!(
        "{:<8} {:<9} {:<9} {:<24} {:<22} {}{}",
        a.id,
        a.level.as_str(),
        a.state.as_str(),
        clean(&a.monitor),
        a.firing_since.as_deref().unwrap_or(&a.first_seen),
        clean(&a.title),
        a.acknowledged_by
            .as_deref()
            .map(|b| format!(" (acknowledged by {})", clean(b)))
            .unwrap_or_default()
    ) + &a
        .muted
        .as_ref()
        .map(|m| format!(" [{}]", clean(&m.reason)))
        .unwrap_or_default()
}

pub fn list(config: Config, since: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.state_dir)?;
    let args = StatusArgs {
        alert_id: None,
        since,
    };
    let configured = ScheduledMonitor::of_config(&config.monitors);
    let rules = config.mute_rules();
    let report = match status::run_muted(&store, SystemClock.now_ms(), &configured, &args, &rules) {
        Ok(r) => r,
        Err(status::StatusError::Arg(e)) => return Ok(usage(e)),
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let o = &report.overview;
    println!(
        "{:<8} {:<9} {:<9} {:<24} {:<22} TITLE",
        "ID", "LEVEL", "STATE", "MONITOR", "SINCE"
    );
    // Firing by level, most severe first; then pending; then recently resolved.
    for level in ["emergency", "critical", "warning", "info"] {
        for a in o.firing.get(level).into_iter().flatten() {
            println!("{}", line(a));
        }
    }
    for a in &o.pending {
        println!("{}", line(a));
    }
    for a in &o.recently_resolved {
        println!("{}", line(a));
    }
    let firing: usize = o.firing.values().map(Vec::len).sum();
    println!(
        "{} firing, {} pending, {} resolved recently",
        firing,
        o.pending.len(),
        o.recently_resolved.len()
    );
    for m in &o.monitors {
        let uptime = m
            .uptime
            .as_ref()
            .map(|u| {
                let w =
                    |s: &secops_mcp::store::uptime::UptimeStats| match (s.uptime_percent, s.p95_ms)
                    {
                        (Some(pct), Some(p95)) => format!("{pct} % up, p95 {p95} ms"),
                        (Some(pct), None) => format!("{pct} % up"),
                        _ => "no probes".to_string(),
                    };
                format!("; 24h {}; 7d {}", w(&u.last_24h), w(&u.last_7d))
            })
            .unwrap_or_default();
        println!(
            "monitor {:<24} {:<28} last {} ({}), next {}{uptime}",
            clean(&m.name),
            m.schedule
                .as_deref()
                .unwrap_or("(not in the configuration)"),
            m.last_run.as_deref().unwrap_or("never"),
            m.last_outcome.as_deref().unwrap_or("-"),
            m.next_run.as_deref().unwrap_or("-")
        );
    }
    for c in &o.channels {
        println!(
            "channel {:<24} {} pending, {} delivered, {} failed{}{}",
            c.channel,
            c.pending,
            c.delivered,
            c.failed,
            if c.digested > 0 {
                format!(", {} digested", c.digested)
            } else {
                String::new()
            },
            c.oldest_pending_age_secs
                .map(|s| format!(", oldest pending {s} s"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(config: Config, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.state_dir)?;
    let detail = match status::detail_muted(&store, id, SystemClock.now_ms(), &config.mute_rules())
    {
        Ok(d) => d,
        Err(status::StatusError::Arg(e)) => return Ok(usage(e)),
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(ExitCode::SUCCESS);
    }
    let a = &detail.alert;
    println!("{}", line(a));
    println!("  code {}, occurrences {}", a.code, a.occurrences);
    for (k, v) in &a.labels {
        println!("  label {}={}", clean(k), clean(v));
    }
    if let Some(v) = &a.value {
        println!("  value {}", clean(v));
    }
    println!("  {}", clean(&detail.summary));
    for t in &detail.timeline {
        println!(
            "  {} {:<13} {}{}",
            t.at,
            t.kind,
            t.actor
                .as_deref()
                .map(|a| format!("by {} ", clean(a)))
                .unwrap_or_default(),
            clean(t.detail.as_deref().unwrap_or(""))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Who acknowledges from a terminal: `cli:<login>` (or `cli`).
pub(super) fn cli_actor() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(u) if !u.is_empty() => format!("cli:{}", clean(&u)),
        _ => "cli".to_string(),
    }
}

pub fn ack(config: Config, id: &str, note: Option<String>) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.state_dir)?;
    let args = UpdateArgs {
        alert_id: Some(id.to_string()),
        action: "acknowledge".into(),
        text: note,
        ..Default::default()
    };
    let ack = config.notify.acknowledging_channels();
    match update::run(&store, &SystemClock, &cli_actor(), &args, &ack) {
        Ok(update::UpdateReport {
            alert: Some(a),
            audit_id,
            ..
        }) => {
            println!(
                "acknowledged {} ({}, {}): {}; repeats stop; audit #{}",
                a.id,
                a.level.as_str(),
                a.state.as_str(),
                clean(&a.title),
                audit_id
            );
            if a.state == AlertState::Resolved {
                println!("note: it had resolved already");
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(update::UpdateError::Arg(e)) => Ok(usage(e)),
        Err(update::UpdateError::Refused(why)) => {
            eprintln!("secops-mcp: {why}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

pub use super::alerts_silence::{SilenceFlags, silence, silences, unsilence};
