//! `--demo` (built with the default `demo` feature): demo defaults (state in the `demo`
//! subfolder) and the built-in Wazuh simulator started in-process where a command needs a
//! Wazuh and none is configured.

use secops_mcp::config::{Config, IndexerConfig, Login, Secret, SecretSource, WazuhConfig};
use wazuh_sim::{SimConfig, Simulator};

use super::DEMO_CA_FILE;

/// The configuration with demo defaults applied.
pub fn with_defaults(mut config: Config) -> Config {
    // Demo state always lives apart from real state: the `demo` subfolder of the state
    // directory (SECOPS_STATE_DIR, the config file's, or the default), for every subcommand.
    config.state_dir = config.state_dir.join("demo");
    let remediation = if config.remediation_enabled {
        "remediation enabled (SECOPS_REMEDIATION): destructive tools are listed"
    } else {
        "remediation disabled"
    };
    tracing::info!(
        state_dir = %config.state_dir.display(),
        "demo mode: state in the demo subfolder of the state directory; {remediation}"
    );
    config
}

/// With `demo` and without a configured Wazuh: start the simulator in-process and point the
/// configuration at it (its CA written into the demo state directory). The simulator runs
/// as long as the returned handle lives.
pub async fn simulator_for(
    mut config: Config,
    demo: bool,
) -> anyhow::Result<(Config, Option<Simulator>)> {
    if !demo {
        return Ok((config, None));
    }
    if config.wazuh.is_some() {
        tracing::info!("demo mode: Wazuh is configured, the simulator is not started");
        return Ok((config, None));
    }
    let sim = Simulator::start(SimConfig::default()).await?;
    secops_mcp::store::ensure_state_dir(&config.state_dir)?;
    let ca = config.state_dir.join(DEMO_CA_FILE);
    sim.write_ca(&ca)?;
    let sc = sim.config();
    config.wazuh = Some(WazuhConfig {
        url: sim.manager_url(),
        login: Login {
            user: sc.api_user.clone(),
            password: Some(Secret::new(sc.api_password.clone())),
            password_source: Some(SecretSource::Demo),
        },
        ca_file: Some(ca.clone()),
        requests_per_minute: 240,
    });
    if config.indexer.is_none() {
        config.indexer = Some(IndexerConfig {
            url: sim.indexer_url(),
            login: Login {
                user: sc.indexer_user.clone(),
                password: Some(Secret::new(sc.indexer_password.clone())),
                password_source: Some(SecretSource::Demo),
            },
            ca_file: Some(ca),
        });
    }
    tracing::info!(
        manager = %sim.manager_url(),
        indexer = %sim.indexer_url(),
        "demo mode: built-in Wazuh simulator started"
    );
    Ok((config, Some(sim)))
}

/// The demo's own monitors, when the configuration has none: the simulator's Wazuh and
/// its attack bursts, the simulator's certificates, and (`healthz`, under `serve --http`)
/// the server's own /healthz, and (`serving`: this process answers MCP) the `self` kind;
/// routed to the built-in `log` channel unless `[routing]` says otherwise.
pub fn add_monitors(
    config: &mut Config,
    sim: Option<&Simulator>,
    healthz: Option<&str>,
    serving: bool,
) -> anyhow::Result<()> {
    if !config.monitors.is_empty() {
        tracing::info!("demo mode: [[monitors]] are configured, no demo monitors added");
        return Ok(());
    }
    let mut text = String::new();
    if let Some(sim) = sim {
        let manager = sim.manager_addr();
        let indexer = sim.indexer_url();
        let indexer = indexer.trim_start_matches("https://").trim_end_matches('/');
        text.push_str(&format!(
            "[[monitors]]\nname = \"demo-wazuh\"\nkind = \"wazuh\"\nevery = \"30s\"\n\n\
             [[monitors]]\nname = \"demo-security-events\"\nkind = \"security_events\"\n\
             every = \"30s\"\nwindow = \"5m\"\n\n\
             [[monitors]]\nname = \"demo-certificates\"\nkind = \"certificates\"\n\
             every = \"10m\"\ntargets = [\"{manager}\", \"{indexer}\"]\n\n"
        ));
    }
    if let Some(url) = healthz {
        text.push_str(&format!(
            "[[monitors]]\nname = \"demo-healthz\"\nkind = \"uptime\"\nevery = \"30s\"\n\
             url = \"{url}\"\nmax_response_ms = 500\n\n"
        ));
    }
    if serving {
        text.push_str("[[monitors]]\nname = \"demo-self\"\nkind = \"self\"\nevery = \"30s\"\n\n");
    }
    if text.is_empty() {
        return Ok(());
    }
    config.add_monitors(&text)?;
    tracing::info!(
        monitors = config.monitors.len(),
        "demo mode: demo monitors added (alerts go to the log channel)"
    );
    Ok(())
}

/// Inject one of the simulator's attack scenarios (an SSH brute-force burst, a level-15
/// exploit attempt, a file-integrity trickle, noise) after a minute and then every five,
/// until `stop`: the demo's security_events monitor has something to see.
pub fn spawn_attacks(
    sim: std::sync::Arc<Simulator>,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = std::time::Duration::from_secs(60);
        for n in 0u64.. {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let (name, count) = sim.inject_scenario(n);
            tracing::info!(
                scenario = name,
                alerts = count,
                "demo mode: simulator attack injected"
            );
            wait = std::time::Duration::from_secs(300);
        }
    })
}
