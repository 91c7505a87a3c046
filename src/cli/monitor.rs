//! `secops-mcp monitor [--once]`: the monitors and their delivery without MCP (for systemd
//! or a container) until a signal; or every enabled monitor observed once, printed as a
//! table, with a monitoring plugin's exit status (0 ok, 1 warning, 2 critical, 3 a monitor
//! could not run). `--once` changes no alert and sends nothing.

use std::process::ExitCode;
use std::sync::Arc;

use secops_mcp::clock::SystemClock;
use secops_mcp::config::Config;
use secops_mcp::context::AppContext;
use secops_mcp::monitor::start::{self, OnceRow};
use tokio_util::sync::CancellationToken;

use super::{MonitorArgs, exit};

/// Monitors observed at once by `--once`.
const ONCE_CONCURRENCY: usize = 8;

pub async fn run(config: Config, args: MonitorArgs, demo: bool) -> anyhow::Result<ExitCode> {
    #[cfg(feature = "demo")]
    let (config, sim) = {
        let (mut config, sim) = super::demo::simulator_for(config, demo).await?;
        if demo {
            super::demo::add_monitors(&mut config, sim.as_ref(), None, false)?;
        }
        (config, sim.map(Arc::new))
    };
    #[cfg(not(feature = "demo"))]
    let _ = demo;
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    let ctx = AppContext::new(config, demo)?;
    let enabled = ctx.config.monitors.iter().filter(|m| m.enabled).count();
    if enabled == 0 {
        eprintln!(
            "secops-mcp: no monitor is enabled: add [[monitors]] to the configuration \
             (examples/monitoring-development.toml is a start), or try `secops-mcp monitor --demo`"
        );
        return Ok(ExitCode::from(exit::CONFIG));
    }
    if args.once {
        let rows = start::run_once(&ctx, ONCE_CONCURRENCY).await;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print!("{}", table(&rows));
        }
        return Ok(ExitCode::from(start::once_status(&rows)));
    }
    let Some(engine) = start::engine(&ctx, Arc::new(SystemClock))? else {
        return Ok(ExitCode::from(exit::CONFIG));
    };
    let shutdown = CancellationToken::new();
    secops_mcp::shutdown::on_signal_cancel(shutdown.clone());
    #[cfg(feature = "demo")]
    let attacks = sim
        .clone()
        .map(|s| super::demo::spawn_attacks(s, shutdown.child_token()));
    let channels: Vec<&str> = ctx
        .config
        .notify
        .channels
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    tracing::info!(monitors = enabled, channels = ?channels, "monitoring");
    // Tests and scripts wait for this line.
    eprintln!(
        "secops-mcp monitor: running {} (channels: {}; state in {})",
        secops_mcp::util::count(enabled as u64, "monitor", "monitors"),
        channels.join(", "),
        ctx.config.state_dir.display()
    );
    engine.run(shutdown).await;
    #[cfg(feature = "demo")]
    if let Some(a) = attacks {
        let _ = a.await;
    }
    ctx.store.flush();
    Ok(ExitCode::SUCCESS)
}

/// A plugin status as monitoring plugins print it.
fn status_name(status: u8) -> &'static str {
    match status {
        0 => "OK",
        1 => "WARNING",
        2 => "CRITICAL",
        _ => "UNKNOWN",
    }
}

/// The `--once` table: one line per monitor, its plugin status, problems and the worst one.
fn table(rows: &[OnceRow]) -> String {
    let clean = |s: &str| secops_mcp::util::sanitize_untrusted(s.as_bytes(), 160);
    let mut out = format!(
        "{:<28} {:<16} {:<9} {:>8} {:>8}  {}\n",
        "MONITOR", "KIND", "STATUS", "PROBLEMS", "MS", "DETAIL"
    );
    for r in rows {
        let status = status_name(r.status());
        let level = r
            .level
            .map(|l| format!("[{}] ", l.as_str()))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<28} {:<16} {:<9} {:>8} {:>8}  {level}{}\n",
            r.monitor,
            r.kind,
            status,
            r.problems,
            r.duration_ms,
            clean(r.detail.as_deref().unwrap_or("-"))
        ));
    }
    let worst = status_name(start::once_status(rows));
    out.push_str(&format!(
        "{worst}: {} checked\n",
        secops_mcp::util::count(rows.len() as u64, "monitor", "monitors")
    ));
    out
}
