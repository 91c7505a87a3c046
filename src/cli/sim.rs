//! `secops-mcp sim` (built with the default `demo` feature): an alias of the `wazuh-sim`
//! binary, its CA written to `sim-ca.pem` in this command's state directory by default.

use std::process::ExitCode;

use secops_mcp::config::Config;
use tokio_util::sync::CancellationToken;
use wazuh_sim::cli::SimArgs;

pub async fn run(config: Config, args: SimArgs) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    secops_mcp::shutdown::on_signal_cancel(shutdown.clone());
    let default_ca = || {
        secops_mcp::store::ensure_state_dir(&config.state_dir)?;
        Ok(config.state_dir.join("sim-ca.pem"))
    };
    wazuh_sim::cli::run(args, default_ca, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
