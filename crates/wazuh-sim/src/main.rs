//! The `wazuh-sim` binary: the simulator alone (what `secops-mcp sim` runs), its CA written
//! to `--ca-out` or to `sim-ca.pem` in secops-mcp's state directory (SECOPS_STATE_DIR, else
//! the platform default), so a secops-mcp on the same host finds it where the README says.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use wazuh_sim::cli::SimArgs;

/// Run the Wazuh simulator (manager API + indexer subset over HTTPS) alone.
#[derive(Parser)]
#[command(name = "wazuh-sim", version)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // --help and --version succeed; a usage error exits 64 (EX_USAGE), as secops-mcp's do.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 64 } else { 0 });
        }
    };
    let filter = std::env::var("SECOPS_LOG")
        .ok()
        .and_then(|l| tracing_subscriber::EnvFilter::try_new(l).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    // stderr: stdout carries the connection details.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                let shutdown = CancellationToken::new();
                let on_signal = shutdown.clone();
                tokio::spawn(async move {
                    terminated().await;
                    on_signal.cancel();
                });
                wazuh_sim::cli::run(cli.sim, default_ca, shutdown).await
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wazuh-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `sim-ca.pem` in secops-mcp's state directory, created (mode 0700) if missing.
fn default_ca() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("SECOPS_STATE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            dirs::state_dir()
                .or_else(|| dirs::home_dir().map(|h| h.join(".local").join("state")))
                .map(|d| d.join("secops-mcp"))
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no platform state directory could be determined; set SECOPS_STATE_DIR or --ca-out"
            )
        })?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create the state directory {}: {e}", dir.display()))?;
    Ok(dir.join("sim-ca.pem"))
}

/// Ctrl-C or (on Unix) SIGTERM.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
