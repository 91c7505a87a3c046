//! The simulator as a command: its flags ([`SimArgs`], shared by the `wazuh-sim` binary and
//! its alias `secops-mcp sim`) and [`run`], which starts it, prints how to connect and
//! injects scenarios until shutdown.

use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::{SimConfig, Simulator};

/// Flags of `wazuh-sim` (and `secops-mcp sim`).
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Manager API port (0 = any free port).
    #[arg(long, default_value_t = 55000)]
    pub port: u16,
    /// Indexer port (0 = any free port).
    #[arg(long, default_value_t = 9200)]
    pub indexer_port: u16,
    /// Seed for the simulated agents, logs and alerts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the simulator's CA certificate (PEM) for clients to trust (default:
    /// `sim-ca.pem` in the state directory).
    #[arg(long, value_name = "PATH")]
    pub ca_out: Option<PathBuf>,
    /// Inject a scenario every SECS seconds (0 = never), cycling: SSH brute-force burst,
    /// level-15 exploit, file-integrity trickle, below-threshold noise.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub attack_every: u64,
}

/// Run the simulator until `shutdown`. Its CA goes to `--ca-out`, else to the path
/// `default_ca` gives (called only then: it may create the state directory).
pub async fn run(
    args: SimArgs,
    default_ca: impl FnOnce() -> anyhow::Result<PathBuf>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let sim = Simulator::start(SimConfig {
        manager_port: args.port,
        indexer_port: args.indexer_port,
        seed: args.seed,
        ..SimConfig::default()
    })
    .await?;
    let ca_out = match args.ca_out {
        Some(p) => p,
        None => default_ca()?,
    };
    sim.write_ca(&ca_out)
        .map_err(|e| anyhow::anyhow!("cannot write the CA to {}: {e}", ca_out.display()))?;
    let sc = sim.config();
    let ca = ca_out.display();
    println!("Wazuh simulator running (Ctrl-C to stop); its CA certificate is in {ca}.");
    println!("Point secops-mcp (or any client) at it:");
    println!("  SECOPS_WAZUH_URL={}", sim.manager_url());
    println!("  SECOPS_WAZUH_USER={}", sc.api_user);
    println!(
        "  SECOPS_WAZUH_PASSWORD={}   (the simulator's fixed demo password)",
        sc.api_password
    );
    println!("  SECOPS_WAZUH_CA_FILE={ca}");
    println!("  SECOPS_INDEXER_URL={}", sim.indexer_url());
    println!("  SECOPS_INDEXER_USER={}", sc.indexer_user);
    println!("  SECOPS_INDEXER_PASSWORD={}   (demo)", sc.indexer_password);
    println!("  SECOPS_INDEXER_CA_FILE={ca}");
    if args.attack_every > 0 {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(args.attack_every));
        tick.tick().await;
        for n in 0.. {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let (name, count) = sim.inject_scenario(n);
            println!("injected scenario {name}: {count} alert(s)");
        }
    }
    shutdown.cancelled().await;
    sim.stop().await;
    Ok(())
}
