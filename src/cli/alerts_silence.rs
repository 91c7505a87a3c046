//! `secops-mcp alerts silence [ID] --match M --for 2h --comment "..."`, `alerts unsilence
//! SIL-3`, `alerts silences [--all] [--json]`: alert_update's `silence` / `unsilence` and
//! the list of silences, from a shell (caller `cli:<user>`, audited; exit 64 naming the
//! flag on bad input).

use std::process::ExitCode;

use secops_mcp::alerts::silence;
use secops_mcp::alerts::update::{self, UpdateArgs, UpdateError, UpdateReport};
use secops_mcp::checks::ArgError;
use secops_mcp::clock::SystemClock;
use secops_mcp::config::Config;
use secops_mcp::store::Store;

use super::alerts::cli_actor;
use super::usage;

/// The flags of `alerts silence`.
#[derive(clap::Args)]
pub struct SilenceFlags {
    /// The alert to silence (ALR-5), instead of --match.
    pub id: Option<String>,
    /// A matcher: label=value, label!=value, label=~regex, label!~regex (repeatable;
    /// all must match).
    #[arg(long = "match", value_name = "MATCHER")]
    pub matchers: Vec<String>,
    /// How long: 30m, 2h, 7d (at most 90d).
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// The end instead of --for (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// The start (RFC 3339; default now).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Why (required).
    #[arg(long)]
    pub comment: Option<String>,
    #[arg(long)]
    pub json: bool,
}

fn clean(s: &str) -> String {
    secops_mcp::util::sanitize_untrusted(s.as_bytes(), 300)
}

/// The tool's argument names as this command's flags.
fn flag_error(e: ArgError) -> ExitCode {
    let flag = match e.argument.as_str() {
        "matchers" => "--match",
        "duration" => "--for",
        "ends_at" => "--until",
        "starts_at" => "--start",
        "comment" => "--comment",
        "alert_id" | "silence_id" => "ID",
        other => other,
    };
    usage(format!("invalid {flag}: {}", e.reason))
}

fn finish(result: Result<UpdateReport, UpdateError>, json: bool) -> anyhow::Result<ExitCode> {
    match result {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                use secops_mcp::checks::Summary;
                println!("{}", clean(&r.summary()));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(UpdateError::Arg(e)) => Ok(flag_error(e)),
        Err(UpdateError::Refused(why)) => {
            eprintln!("secops-mcp: {why}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn silence(config: Config, f: SilenceFlags) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.state_dir)?;
    let args = UpdateArgs {
        alert_id: f.id,
        action: "silence".into(),
        matchers: (!f.matchers.is_empty()).then_some(f.matchers),
        comment: f.comment,
        duration: f.duration,
        ends_at: f.until,
        starts_at: f.start,
        ..Default::default()
    };
    finish(
        update::run(&store, &SystemClock, &cli_actor(), &args, &[]),
        f.json,
    )
}

pub fn unsilence(config: Config, id: &str) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.state_dir)?;
    let args = UpdateArgs {
        action: "unsilence".into(),
        silence_id: Some(id.to_string()),
        ..Default::default()
    };
    finish(
        update::run(&store, &SystemClock, &cli_actor(), &args, &[]),
        false,
    )
}

pub fn silences(config: Config, all: bool, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.state_dir)?;
    let list = silence::list(&store, &SystemClock, all)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<8} {:<8} {:<24} {:<24} {:<20} MATCHERS / COMMENT",
        "ID", "STATE", "STARTS", "ENDS", "AUTHOR"
    );
    for s in &list {
        println!(
            "{:<8} {:<8} {:<24} {:<24} {:<20} {}: {}{}",
            s.id,
            s.state,
            s.starts_at,
            s.ends_at,
            clean(&s.author),
            clean(&s.matchers.join(", ")),
            clean(&s.comment),
            s.removed_by
                .as_deref()
                .map(|b| format!(" (ended by {})", clean(b)))
                .unwrap_or_default()
        );
    }
    println!(
        "{} silence(s){}",
        list.len(),
        if all {
            ""
        } else {
            " in force or starting later"
        }
    );
    Ok(ExitCode::SUCCESS)
}
